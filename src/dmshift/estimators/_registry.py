"""The estimators a model file may name: every public dmshift estimator class registers itself here.

:class:`~dmshift.estimators._base.BaseClustering` adds each subclass that defines its own
constructor, is public (no leading underscore) and is defined inside dmshift; a model
file is read only into one of these classes, looked up by name.
"""

from __future__ import annotations

__all__ = ["register", "registered"]

_CLASSES: dict[str, type] = {}


def register(cls: type) -> None:
    """Record ``cls`` under its name if it is a public dmshift estimator (see the module notes)."""
    if "__init__" in vars(cls) and not cls.__name__.startswith("_") and cls.__module__.startswith("dmshift."):
        _CLASSES[cls.__name__] = cls


def registered() -> dict[str, type]:
    """Name -> class of the estimators registered so far."""
    return dict(_CLASSES)
