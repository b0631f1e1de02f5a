"""Logging set-up for programs built on dmshift (the ``dmshift`` command, the demo).

The library itself only logs to the ``"dmshift"`` logger and never configures handlers;
a program calls :func:`configure` once to route those records to stderr at the level
its ``--quiet`` / ``--verbose`` flags ask for.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["configure", "level_for"]

_HANDLER_NAME = "dmshift-cli"


def level_for(quiet: bool = False, verbose: bool = False) -> int:
    """WARNING when quiet, DEBUG when verbose, INFO otherwise."""
    if quiet:
        return logging.WARNING
    return logging.DEBUG if verbose else logging.INFO


def configure(level: int = logging.INFO, stream=None) -> logging.Logger:
    """Send the ``"dmshift"`` logger's records at ``level`` or above to ``stream`` (stderr).

    Calling it again replaces the handler it installed before rather than adding one,
    so records are never printed twice.
    """
    logger = logging.getLogger("dmshift")
    for h in list(logger.handlers):
        if h.get_name() == _HANDLER_NAME:
            logger.removeHandler(h)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger
