"""Progress bars for dmshift's long stages: one named bar per stage, quiet by default.

A bar is shown only when the caller asks for it (an estimator's ``verbose=True``) and
stderr is a terminal or the code runs in a Jupyter kernel; written to a log file or a
pipe, a bar would fill it with redraws.
Redraws are throttled to a few per second whatever the step rate.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

__all__ = ["progress_bar", "stage_bar", "MIN_INTERVAL"]

#: seconds between two redraws of a bar
MIN_INTERVAL = 0.5


class _NoBar:
    """Stands in for a bar that is not shown; accepts the calls a tqdm bar does."""

    n = 0

    def update(self, n=1):
        self.n += n

    def set_postfix(self, *args, **kwargs):
        pass

    def set_description(self, *args, **kwargs):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def progress_bar(total: int | None, desc: str, *, verbose: bool, initial: int = 0, unit: str = "step",
                 stream=None):
    """A tqdm bar named ``desc``, or a silent stand-in when not ``verbose`` or not on a terminal.

    Parameters
    ----------
    total : int or None
        Number of updates the stage makes (None when unknown).
    desc : str
        The stage's name, shown before the bar ("training, round 2/2", "clustering").
    verbose : bool
        Whether the caller wants progress shown at all.
    initial : int, default=0
        Updates already done (a resumed training).
    unit : str, default="step"
    stream : file, optional
        Where the bar goes (default: stderr); it is shown only if this is a terminal (or
        in a Jupyter kernel, where tqdm draws a widget).

    Returns
    -------
    tqdm.tqdm or an object with the same ``update``, ``set_postfix`` and ``close``.
    """
    stream = sys.stderr if stream is None else stream
    on_screen = getattr(stream, "isatty", lambda: False)() or "ipykernel" in sys.modules  # a terminal or Jupyter
    if not verbose or not on_screen:
        return _NoBar()
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=False, file=stream,
                mininterval=MIN_INTERVAL, maxinterval=10.0, dynamic_ncols=True)


@contextmanager
def stage_bar(desc: str, *, verbose: bool, stream=None):
    """A one-step bar named ``desc`` around a stage with no steps of its own ("clustering", "smoothing"):
    it shows the stage's name and elapsed time while it runs, and is complete when it ends."""
    bar = progress_bar(1, desc, verbose=verbose, unit="stage", stream=stream)
    try:
        yield bar
        bar.update(1)
    finally:
        bar.close()
