"""``SemiSupervisedKMeans``: the semi-supervised k-means of Generalized Category Discovery.

Vaze, Han, Vedaldi & Zisserman, "Generalized Category Discovery", CVPR 2022, §3.2-3.3.
A peer of DMS for partial labels with classes that may never have been labelled:

* features are L2-normalised (the method works on directions);
* the centroids of the labelled classes start at their class means, and the labelled
  points are always assigned to their own class's centroid; the other points go to the
  nearest centroid; centroids for classes no label shows are seeded by greedy k-means++
  from the unlabelled points, given the class means already placed;
* Lloyd iterations then move every centroid to the mean of its points.

``n_clusters="auto"`` estimates k as GCD does: *plain* k-means (labels unused) on all the
data for each candidate k, scored by the Hungarian accuracy of its clusters on the
labelled points, maximised by a golden-section search over the integers
``[n labelled classes, k_max]``. Too few clusters merge labelled classes, too many split
them, so the accuracy on what is known peaks near the true k.

This module is NumPy only, with no torch and no device: a Lloyd step is an (n, k)
distance matrix and a sparse (k, n) @ (n, d) sum, fast on a CPU.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import scipy.sparse as sp
import torch

from .._validation import check_fraction, check_positive_int, resolve_seed
from ..constants import UNLABELLED
from ..metrics import accuracy
from ..scaling import check_standardization, check_standardize, fit_standardization
from ._base import BaseClustering
from ._partial_labels import partial_labels
from ._persistence import check_saved_shape

__all__ = ["SemiSupervisedKMeans", "ss_kmeans", "golden_section_argmax"]


# ---------------------------------------------------------------------------- k-means with fixed points
def _l2_normalise(X: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(X, axis=1, keepdims=True)  # (n, 1)
    return X / np.maximum(norm, np.finfo(X.dtype).tiny)  # a zero row stays zero


def _sq_dist(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    d2 = (X * X).sum(1)[:, None] - 2.0 * (X @ C.T) + (C * C).sum(1)[None, :]  # (n, k)
    return np.maximum(d2, 0.0)


def _plus_plus(X: np.ndarray, placed: np.ndarray, n_new: int, rng: np.random.Generator) -> np.ndarray:
    """(n_new, d) centroids drawn from the rows of X by greedy k-means++, given the centroids already ``placed``.

    Each new centroid is the best, by the resulting sum of squared distances, of
    ``2 + log(k)`` candidates drawn with probability proportional to the squared distance
    to the nearest centroid so far (scikit-learn's greedy k-means++); a single draw per
    centroid often starts two centroids in one cluster.
    """
    n = X.shape[0]
    new = np.empty((n_new, X.shape[1]), dtype=X.dtype)
    if n_new == 0:
        return new
    n_local = 2 + int(np.log(placed.shape[0] + n_new))
    if placed.shape[0]:
        d2 = _sq_dist(X, placed).min(1).astype(np.float64)  # (n,)
        start = 0
    else:
        new[0] = X[rng.integers(n)]
        d2 = _sq_dist(X, new[:1])[:, 0].astype(np.float64)
        start = 1
    for j in range(start, n_new):
        cum = np.cumsum(d2)
        if cum[-1] <= 0:
            cand = rng.integers(n, size=n_local)
        else:
            cand = np.minimum(np.searchsorted(cum, rng.random(n_local) * cum[-1]), n - 1)  # (L,)
        dc = np.minimum(d2[None, :], _sq_dist(X[cand], X))  # (L, n)
        best = int(dc.sum(1).argmin())
        new[j] = X[cand[best]]
        d2 = dc[best]
    return new


def ss_kmeans(X: np.ndarray, centers: np.ndarray, fixed: np.ndarray, *, max_iter: int = 300,
              tol: float = 1e-4) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Lloyd's k-means from ``centers``, with the points where ``fixed >= 0`` held in cluster ``fixed``.

    With no fixed point this is scikit-learn's Lloyd algorithm (same stopping rule: labels
    unchanged, or a total squared centroid shift <= ``tol`` times the mean feature variance;
    a last assignment to the final centroids). An emptied cluster keeps its centroid.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    centers : ndarray of shape (k, d)
        Initial centroids.
    fixed : ndarray of shape (n,)
        Cluster of each point that may not move (0..k-1), UNLABELLED (-1) for free points.

    Returns
    -------
    labels : ndarray of shape (n,)
    centers : ndarray of shape (k, d)
    inertia : float
        Sum of the squared distances of the points to their centroids.
    n_iter : int
    """
    n, k = X.shape[0], centers.shape[0]
    held = fixed != UNLABELLED
    threshold = float(tol) * float(X.var(0).mean())
    centers = centers.copy()
    labels = None
    strict = False
    it = 0
    for it in range(1, int(max_iter) + 1):
        new = _sq_dist(X, centers).argmin(1)  # (n,)
        new[held] = fixed[held]
        member = sp.csr_matrix((np.ones(n, dtype=X.dtype), (new, np.arange(n))), shape=(k, n))
        sums = np.asarray(member @ X)  # (k, d)
        counts = np.bincount(new, minlength=k)  # (k,)
        moved = centers.copy()
        full = counts > 0
        moved[full] = sums[full] / counts[full, None].astype(X.dtype)
        shift = float(((moved - centers) ** 2).sum())
        centers = moved
        if labels is not None and np.array_equal(new, labels):
            strict = True
            break
        labels = new
        if shift <= threshold:
            break
    d2 = _sq_dist(X, centers)  # (n, k)
    if not strict:
        labels = d2.argmin(1)
        labels[held] = fixed[held]
    inertia = float(d2[np.arange(n), labels].sum())
    return labels.astype(np.int64), centers, inertia, it


def golden_section_argmax(f, low: int, high: int) -> tuple[int, dict[int, float]]:
    """Integer k in [low, high] maximising ``f`` by golden-section search (f assumed unimodal).

    Each step keeps one inner point of the last and evaluates one new one, so the bracket
    shrinks by the golden ratio per evaluation; once at most four candidates remain they
    are all evaluated. Each k is evaluated at most once. Ties go to the smaller k.

    Returns
    -------
    k : int
    scores : dict
        ``f(k)`` of every k evaluated.
    """
    scores: dict[int, float] = {}

    def F(k: int) -> float:
        if k not in scores:
            scores[k] = float(f(k))
        return scores[k]

    inv_phi = (math.sqrt(5.0) - 1.0) / 2.0

    def inner(a: int, b: int) -> tuple[int, int]:  # two points a < c < d < b near the golden sections
        step = int(round(inv_phi * (b - a)))
        c, d = b - step, a + step
        return (c, c + 1) if d <= c else (c, d)

    a, b = int(low), int(high)
    c, d = inner(a, b) if b - a > 3 else (a, b)
    while b - a > 3:
        if F(c) >= F(d):  # the maximum is left of d
            b, d = d, c
            c = b - int(round(inv_phi * (b - a)))
        else:
            a, c = c, d
            d = a + int(round(inv_phi * (b - a)))
        if b - a > 3 and not a < c < d < b:  # rounding moved a point out of order: place both afresh
            c, d = inner(a, b)
    best = max(range(a, b + 1), key=lambda k: (F(k), -k))
    return best, dict(sorted(scores.items()))


# ---------------------------------------------------------------------------- estimator
class SemiSupervisedKMeans(BaseClustering):
    """Semi-supervised k-means (GCD): labelled points stay in their class, k estimated or given.

    Parameters
    ----------
    n_clusters : int or "auto", default="auto"
        Number of clusters k, at least the number of labelled classes. ``"auto"``
        estimates it (see the module docstring): plain k-means on all points for each
        candidate k, the k whose clusters best match the labelled points (Hungarian
        accuracy), found by golden-section search over ``[labelled classes, k_max]``.
    k_max : int or None, default=None
        Largest k the search considers. None: ``min(n_samples // 5, 10 * labelled
        classes)`` (clusters of 5 points on average at most, and at most ten times the
        classes seen), raised to the number of labelled classes if below it.
    n_init : int, default=1
        k-means++ draws per k-means run; the run with the lowest inertia is kept. Applies
        to every candidate of the search and to the final fit (run once when every
        centroid starts at a class mean: there is nothing to draw).
    max_iter : int, default=300
        Lloyd iterations per run.
    tol : float, default=1e-4
        Stop when the total squared centroid shift is at most ``tol`` times the mean
        feature variance (scikit-learn's rule).
    standardize : bool or {"feature", "global", "none"}, default=True
        Standardise the features (in float64; see :mod:`dmshift.scaling`) before the L2
        normalisation, so that an offset or a feature in large units does not decide the
        angles. GCD normalises learnt embeddings as they are: ``standardize=False``.
    random_state : int, RandomState or None, default=None
        Seeds the k-means++ draws; the same seed gives the same labels.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of each training point. Ids 0..len(classes_)-1 are the labelled classes
        (``classes_[i]`` is the label value of cluster i), the others are new clusters.
    classes_ : ndarray of shape (n_known,)
        Label values of the labelled classes, in the order of their cluster ids.
    n_clusters_ : int
        k used (estimated or given).
    cluster_centers_ : ndarray of shape (n_clusters_, n_features)
        Centroids in the L2-normalised feature space.
    inertia_ : float
        Sum of squared distances of the (normalised) points to their centroids.
    n_iter_ : int
        Lloyd iterations of the kept run.
    k_scores_ : dict
        ``n_clusters="auto"``: candidate k -> accuracy of plain k-means on the labelled
        points, for every k the search evaluated; empty when k is given.
    n_features_in_ : int

    Notes
    -----
    Labels only: ``fit(X, pairs=...)`` raises ``ValueError``. With ``y`` None (or no
    labelled point) and an int ``n_clusters`` it is k-means++ on the L2-normalised data.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_blobs
    >>> from dmshift.estimators.ss_kmeans import SemiSupervisedKMeans
    >>> X, y = make_blobs(300, centers=[[5, 0], [0, 5], [-5, 0]], cluster_std=0.5, random_state=0)
    >>> y_partial = np.where((np.arange(300) % 10 == 0) & (y < 2), y, -1)  # class 2 never labelled
    >>> km = SemiSupervisedKMeans(random_state=0).fit(X, y_partial)
    >>> km.n_clusters_
    3
    """

    def __init__(self, *, n_clusters="auto", k_max=None, n_init=1, max_iter=300, tol=1e-4, standardize=True,
                 random_state=None):
        self.n_clusters = n_clusters
        self.standardize = standardize
        self.k_max = k_max
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def _check_params(self, n: int, n_known: int) -> None:
        if not (isinstance(self.n_clusters, str) and self.n_clusters == "auto"):
            k = self.n_clusters
            if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not max(n_known, 1) <= k <= n:
                raise ValueError(f"The 'n_clusters' parameter must be 'auto' or an int in [{max(n_known, 1)}, {n}] "
                                 f"(the labelled classes .. the samples). Got {self.n_clusters!r} instead.")
        elif n_known == 0:
            raise ValueError("The 'n_clusters' parameter is 'auto', which needs labelled points to estimate k from: "
                             "give partial labels y, or an int n_clusters. Got no labelled point instead.")
        check_positive_int("k_max", self.k_max, allow_none=True)
        if isinstance(self.k_max, numbers.Integral) and self.k_max < n_known:
            raise ValueError(f"The 'k_max' parameter must be None or an int >= the number of labelled classes "
                             f"({n_known}). Got {self.k_max!r} instead.")
        check_positive_int("n_init", self.n_init)
        check_positive_int("max_iter", self.max_iter)
        check_fraction("tol", self.tol, low=0.0, high=np.inf, low_open=False)

    def _run(self, Xn: np.ndarray, codes: np.ndarray, k: int, rng: np.random.Generator):
        """Best of ``n_init`` semi-supervised k-means runs with k clusters (lowest inertia)."""
        known = codes != UNLABELLED
        m = int(codes.max()) + 1 if known.any() else 0
        means = np.stack([Xn[codes == c].mean(0) for c in range(m)]) if m else Xn[:0]  # (m, d)
        pool = Xn[~known] if (~known).sum() >= k - m else Xn  # unseen centroids come from unlabelled points
        best = None
        for _ in range(int(self.n_init) if k > m else 1):
            init = np.vstack([means, _plus_plus(pool, means, k - m, rng)])  # (k, d)
            run = ss_kmeans(Xn, init, codes, max_iter=self.max_iter, tol=self.tol)
            if best is None or run[2] < best[2]:
                best = run
        return best

    def _k_max(self, n: int, n_known: int) -> int:
        if self.k_max is not None:
            return min(int(self.k_max), n)
        return max(n_known, min(n // 5, 10 * n_known))  # the documented default

    def fit(self, X, y=None, *, pairs=None):
        """Cluster ``X``, holding the labelled points of ``y`` (-1 = unknown) in their classes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), optional
            Partial labels, -1 for unknown.
        pairs : None
            Not supported: a ``ValueError`` says so.

        Returns
        -------
        self
        """
        X = self._check_X(X, reset=True)
        n = X.shape[0]
        codes, classes = partial_labels(y, n, pairs, type(self).__name__, required=False)
        m = int(classes.size)
        self._check_params(n, m)
        seed = resolve_seed(self.random_state)
        self.mean_, self.scale_ = fit_standardization(X, check_standardize(self.standardize))  # float64 (d,)
        Xn = self._normalised(X)  # (n, d)
        known = codes != UNLABELLED
        scores: dict[int, float] = {}
        if isinstance(self.n_clusters, str):
            free = np.full(n, UNLABELLED, dtype=np.int64)

            def labelled_accuracy(k: int) -> float:
                # plain k-means, labels unused; one generator per k, so the curve does not depend on the search
                labels = self._run(Xn, free, k, np.random.default_rng([seed, k]))[0]
                return accuracy(codes[known], labels[known])

            k, scores = golden_section_argmax(labelled_accuracy, max(m, 1), self._k_max(n, m))
        else:
            k = int(self.n_clusters)
        labels, centers, inertia, n_iter = self._run(Xn, codes, k, np.random.default_rng(seed))
        self.labels_ = labels
        self.cluster_centers_ = centers
        self.classes_ = classes
        self.n_clusters_ = k
        self.inertia_ = inertia
        self.n_iter_ = n_iter
        self.k_scores_ = scores
        return self

    def predict(self, X):
        """Nearest centroid of each L2-normalised row of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)

        Returns
        -------
        labels : ndarray of shape (n_queries,)
        """
        self._check_fitted()
        X = self._check_X(X, reset=False)
        C = self.cluster_centers_
        return _sq_dist(self._normalised(X).astype(C.dtype, copy=False), C).argmin(1).astype(np.int64)

    def _normalised(self, X: np.ndarray) -> np.ndarray:
        """Rows standardised in float64 (``standardize``), then L2-normalised, in ``X``'s dtype."""
        Z = (X.astype(np.float64) - self.mean_) / self.scale_
        if not np.isfinite(Z).all():
            raise ValueError("The 'X' parameter holds values that cannot be standardised with the fitted scale "
                             "(they overflow float64).")
        return _l2_normalise(Z).astype(X.dtype, copy=False)

    def _export_state(self):
        tensors = {"cluster_centers": torch.as_tensor(self.cluster_centers_), "labels": torch.as_tensor(self.labels_),
                   "classes": torch.as_tensor(self.classes_), "mean": torch.as_tensor(self.mean_)}
        meta = {"scale": [float(v) for v in self.scale_], "n_clusters": self.n_clusters_, "inertia": self.inertia_, "n_iter": self.n_iter_,
                "k_scores": {str(k): v for k, v in self.k_scores_.items()}}
        return tensors, meta

    def _check_loaded_params(self) -> None:
        check_positive_int("k_max", self.k_max, allow_none=True)
        check_positive_int("n_init", self.n_init)
        check_positive_int("max_iter", self.max_iter)
        check_fraction("tol", self.tol, low=0.0, high=np.inf, low_open=False)

    def _check_saved_state(self, tensors, meta, *, n_samples):
        super()._check_saved_state(tensors, meta, n_samples=n_samples)
        k = meta["n_clusters"]
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= n_samples:
            raise ValueError(f"'n_clusters' must be an int in [1, {n_samples}]. Got {k!r} instead")
        check_saved_shape(tensors, "cluster_centers", (k, self.n_features_in_))
        check_saved_shape(tensors, "classes", (None,))
        check_standardization(tensors["mean"].cpu().numpy(), meta.get("scale"), self.n_features_in_)

    def _import_state(self, tensors, meta):
        self.mean_, self.scale_ = check_standardization(tensors["mean"].cpu().numpy(), meta["scale"],
                                                        self.n_features_in_)
        self.cluster_centers_ = tensors["cluster_centers"].cpu().numpy()
        self.labels_ = tensors["labels"].cpu().numpy()
        self.classes_ = tensors["classes"].cpu().numpy()
        self.n_clusters_ = int(meta["n_clusters"])
        self.inertia_ = float(meta["inertia"])
        self.n_iter_ = int(meta["n_iter"])
        self.k_scores_ = {int(k): float(v) for k, v in meta["k_scores"].items()}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags
