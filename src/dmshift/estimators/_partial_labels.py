"""Partial labels for the estimators that learn from labels only (not from pairs).

:class:`~dmshift.estimators.label_spreading.LabelSpreadingClustering` and
:class:`~dmshift.estimators.ss_kmeans.SemiSupervisedKMeans` take ``y`` with
UNLABELLED (-1) for unknown points; pairs cannot stand in for labels there, because
neither method has a way to use a "different" relation between two points.
"""

from __future__ import annotations

import numpy as np

from ..constants import UNLABELLED
from ..constraints import encode_partial_labels

__all__ = ["partial_labels"]


def partial_labels(y, n_samples: int, pairs, who: str, *, required: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Class codes (n,) in 0..m-1 (UNLABELLED where unknown) and the m class values they stand for.

    ``y`` is read as every dmshift estimator reads partial labels
    (:func:`dmshift.constraints.encode_partial_labels`: -1, None or NaN unknown, strings
    and categoricals as classes); ``pairs`` must be None. With
    ``required=False`` a missing ``y`` means no point is labelled.
    """
    if pairs is not None:
        raise ValueError(f"The 'pairs' parameter of {who}.fit must be None: {who} learns from partial labels y "
                         "(-1 for unknown), not from pairs. Got an array of pairs instead; give class labels, or "
                         "use an estimator that takes pairs (DMSClustering, KCLClustering, MCLClustering).")
    if y is None:
        if required:
            raise ValueError(f"{who} requires y to be passed, but the target y is None: give partial labels y "
                             "(-1 for unknown) with at least one labelled point.")
        return np.full(n_samples, UNLABELLED, dtype=np.int64), np.zeros(0, dtype=np.int64)
    codes, classes = encode_partial_labels(y, n_samples)  # as every estimator reads y (SideInfo.build)
    if required and not np.any(codes != UNLABELLED):
        raise ValueError(f"{who} needs at least one labelled point in y. Got only unknown labels (-1, None or NaN) "
                         "instead.")
    return codes, classes
