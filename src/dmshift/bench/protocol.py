"""The evaluation protocol of the DMS paper (§4): who gets side information, who is scored.

Side information is the class of a random share of the points (5% by default, drawn with
``numpy.random.default_rng(seed)``); every method is scored on the *other* points only, so
a point whose label a method was given never counts towards its score. :func:`restricted_split`
is the variant of Fig. 5: side information only from some classes, at most a few points each.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..constants import UNLABELLED
from ..metrics import evaluate

__all__ = ["Split", "random_split", "restricted_split", "score"]


@dataclass(frozen=True)
class Split:
    """Which points carry side information and which are scored.

    Attributes
    ----------
    side : ndarray of int64
        Sorted indices of the points whose class is given.
    scored : ndarray of int64
        Sorted indices of every other point: exactly the complement of ``side``.
    y_side : ndarray of shape (n,), int64
        Partial labels for ``fit``: the class at ``side``, UNLABELLED (-1) elsewhere.
    seen_classes : ndarray or None
        For :func:`restricted_split`, the classes that have side information.
    """

    side: np.ndarray
    scored: np.ndarray
    y_side: np.ndarray
    seen_classes: np.ndarray | None = None


def _make(y: np.ndarray, side: np.ndarray, seen=None) -> Split:
    n = len(y)
    side = np.sort(np.asarray(side, dtype=np.int64))
    mask = np.zeros(n, dtype=bool)
    mask[side] = True
    y_side = np.full(n, UNLABELLED, dtype=np.int64)
    y_side[side] = y[side]
    return Split(side=side, scored=np.flatnonzero(~mask), y_side=y_side, seen_classes=seen)


def random_split(y: np.ndarray, fraction: float, seed: int) -> Split:
    """Side information for a random ``fraction`` of the points (at least two), chosen with ``default_rng(seed)``."""
    y = np.asarray(y, dtype=np.int64)
    n = len(y)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"The 'fraction' parameter must be a float in the range (0, 1). Got {fraction!r} instead.")
    m = min(n - 1, max(2, int(round(fraction * n))))
    side = np.random.default_rng(seed).choice(n, size=m, replace=False)
    return _make(y, side)


def restricted_split(y: np.ndarray, class_fraction: float, per_class: int, seed: int) -> Split:
    """Side information from a random ``class_fraction`` of the classes (at least two), ``per_class`` points each.

    Classes with fewer points give all but one of them, so every class keeps a scored point.
    """
    y = np.asarray(y, dtype=np.int64)
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    n_seen = min(classes.size, max(2, int(round(class_fraction * classes.size))))
    seen = np.sort(rng.choice(classes, size=n_seen, replace=False))
    side = []
    for c in seen:
        members = np.flatnonzero(y == c)
        take = min(int(per_class), members.size - 1)
        side.append(rng.choice(members, size=take, replace=False))
    return _make(y, np.concatenate(side), seen)


def score(y: np.ndarray, labels: np.ndarray, idx: np.ndarray) -> dict:
    """ACC, NMI, AMI, clusters and noise share over the points ``idx`` only (noise counts as wrong)."""
    idx = np.asarray(idx, dtype=np.int64)
    r = evaluate(np.asarray(y)[idx], np.asarray(labels)[idx])
    return {"acc": r["acc"], "nmi": r["nmi"], "ami": r["ami"], "n_clusters": r["n_clusters"], "noise": r["noise"]}
