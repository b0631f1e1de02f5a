"""Clustering scores: ACC (Hungarian), NMI (geometric mean, DMS eq. 5), AMI, purity, and more.

Every function takes ground-truth labels first and predicted labels second. Predicted
``NOISE`` (-1) points count as wrong for ACC and purity and form one extra cluster of
their own for the information-theoretic scores (so noise is never free).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

from .constants import NOISE

__all__ = ["accuracy", "nmi", "ami", "purity", "misclassification_rate", "pairwise_precision_recall",
           "contingency", "evaluate"]


def _check(y_true, y_pred):
    y_true = np.asarray(y_true).ravel()
    y_pred = np.asarray(y_pred).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"The 'y_pred' parameter must have the shape of y_true {y_true.shape}. Got {y_pred.shape} instead.")
    if y_true.size == 0:
        raise ValueError("The 'y_true' parameter must not be empty.")
    return y_true, y_pred


def contingency(y_true, y_pred) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts (n_pred_clusters, n_true_classes) over non-noise predictions, with the ids of each axis."""
    y_true, y_pred = _check(y_true, y_pred)
    keep = y_pred != NOISE
    p_ids, p = np.unique(y_pred[keep], return_inverse=True)
    t_ids, t = np.unique(y_true, return_inverse=True)
    C = np.zeros((p_ids.size, t_ids.size), dtype=np.int64)
    np.add.at(C, (p, t[keep]), 1)
    return C, p_ids, t_ids


def accuracy(y_true, y_pred) -> float:
    """Clustering accuracy: the best one-to-one map of clusters to classes (Hungarian). Noise is wrong."""
    y_true, y_pred = _check(y_true, y_pred)
    C, _, _ = contingency(y_true, y_pred)
    if C.size == 0:
        return 0.0
    r, c = linear_sum_assignment(-C)
    return float(C[r, c].sum() / y_true.size)


def _noise_as_cluster(y_pred):
    y_pred = np.asarray(y_pred).copy()
    if np.any(y_pred == NOISE):
        y_pred[y_pred == NOISE] = y_pred.max() + 1
    return y_pred


def nmi(y_true, y_pred) -> float:
    """Normalised mutual information, I / sqrt(H(true) H(pred)) (DMS eq. 5)."""
    y_true, y_pred = _check(y_true, y_pred)
    return float(normalized_mutual_info_score(y_true, _noise_as_cluster(y_pred), average_method="geometric"))


def ami(y_true, y_pred) -> float:
    """Adjusted mutual information (arithmetic normalisation, scikit-learn's default)."""
    y_true, y_pred = _check(y_true, y_pred)
    return float(adjusted_mutual_info_score(y_true, _noise_as_cluster(y_pred)))


def purity(y_true, y_pred) -> float:
    """Share of points in their cluster's majority class (noise counts as wrong)."""
    y_true, y_pred = _check(y_true, y_pred)
    C, _, _ = contingency(y_true, y_pred)
    return float(C.max(1).sum() / y_true.size) if C.size else 0.0


def misclassification_rate(y_true, y_pred) -> float:
    """1 - ACC: the share of points not explained by the best cluster-to-class map."""
    return 1.0 - accuracy(y_true, y_pred)


def pairwise_precision_recall(y_true, y_pred) -> tuple[float, float]:
    """Precision and recall of "same cluster" decisions over all pairs (noise pairs with nobody)."""
    y_true, y_pred = _check(y_true, y_pred)
    C, _, _ = contingency(y_true, y_pred)
    same_both = float((C * (C - 1) / 2).sum())
    pred_sizes = C.sum(1)
    same_pred = float((pred_sizes * (pred_sizes - 1) / 2).sum())
    _, t_counts = np.unique(y_true, return_counts=True)
    same_true = float((t_counts * (t_counts - 1) / 2).sum())
    prec = same_both / same_pred if same_pred else 0.0
    rec = same_both / same_true if same_true else 0.0
    return prec, rec


def evaluate(y_true, y_pred) -> dict:
    """ACC, NMI, AMI, purity, the number of clusters found and the noise share, as a dict."""
    y_true, y_pred = _check(y_true, y_pred)
    return {
        "acc": accuracy(y_true, y_pred),
        "nmi": nmi(y_true, y_pred),
        "ami": ami(y_true, y_pred),
        "purity": purity(y_true, y_pred),
        "n_clusters": int(np.unique(y_pred[y_pred != NOISE]).size),
        "noise": float(np.mean(y_pred == NOISE)),
    }
