"""``MeanShift``: scikit-learn's mean shift on the GPU (or CPU) with dmshift's kernels.

A drop-in for :class:`sklearn.cluster.MeanShift` with the same parameters and results:
flat kernel (or Gaussian) of a given or estimated bandwidth, every point or bin as a
seed, a seed stops when its mean moves by at most ``1e-3 * bandwidth``, then centers are
sorted by intensity, near-duplicates within the bandwidth removed, and each point
labelled with its nearest center. What differs is how the work is done: all seeds shift
at once as tiled matrix products (:class:`~dmshift.kernels.FlatKernel`,
:class:`~dmshift.kernels.GaussianKernel`) within a memory budget; converged seeds leave
the batch, and seeds whose means coincide are shifted once.

The private ``_*`` functions at the top are the torch core (no scikit-learn); the class
below validates input and wraps them.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
import torch

from .._validation import as_float_tensor, check_param, check_positive_int, resolve_device, resolve_seed
from ..constants import NOISE
from ..kernels.base import CPU_TILE_BYTES, DEFAULT_MEMORY_BUDGET, tile_sizes
from ..kernels.gaussian import FlatKernel, GaussianKernel
from ._base import BaseClustering
from ._persistence import check_saved_scale, check_saved_shape

__all__ = ["MeanShift"]

_KERNELS = {"flat": FlatKernel, "gaussian": GaussianKernel}
#: the kernels compare squared distances with ``bandwidth**2``, which must be a finite float64
_MAX_BANDWIDTH = math.sqrt(np.finfo(np.float64).max)


# ---------------------------------------------------------------------- torch core
def _tiles(m: int, n: int, X: torch.Tensor, budget: int) -> tuple[int, int]:
    """Tile shape for (m centers, n points): one buffer element per pair, cache-sized on CPU."""
    if X.device.type == "cpu":
        budget = min(budget, CPU_TILE_BYTES)
    return tile_sizes(m, n, X.element_size(), budget)


@torch.no_grad()
def _sq_dist_min(X: torch.Tensor, C: torch.Tensor, budget: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row of ``X`` (n, d), the smallest squared distance to ``C`` (m, d) and its index."""
    n, m = X.shape[0], C.shape[0]
    best = torch.empty(n, dtype=X.dtype, device=X.device)
    arg = torch.empty(n, dtype=torch.int64, device=X.device)
    cn = (C * C).sum(1)  # (m,)
    cap = min(budget, CPU_TILE_BYTES) if X.device.type == "cpu" else budget
    tn = max(1, min(n, cap // max(1, m * X.element_size())))
    for j in range(0, n, tn):
        x = X[j:j + tn]
        D = torch.addmm(cn[None, :], x, C.T, alpha=-2.0)  # (t, m) |c|^2 - 2 x.c
        v, i = D.min(1)
        best[j:j + tn] = (v + (x * x).sum(1)).clamp_min_(0.0)
        arg[j:j + tn] = i
    return best, arg


@torch.no_grad()
def _estimate_bandwidth(X: torch.Tensor, quantile: float, budget: int) -> float:
    """Mean over points of the distance to their ``int(n * quantile)``-th nearest point (itself included).

    scikit-learn's ``estimate_bandwidth(X, quantile=quantile)`` with every sample, in
    tiles of rows: quadratic time, linear memory.
    """
    n = X.shape[0]
    k = max(1, int(n * quantile))
    pn = (X * X).sum(1)
    rows = max(1, min(n, budget // max(1, 2 * n * X.element_size())))
    total = 0.0
    for i in range(0, n, rows):
        x = X[i:i + rows]
        D = torch.addmm(pn[None, :], x, X.T, alpha=-2.0).add_(pn[i:i + rows, None]).clamp_min_(0.0)  # (r, n)
        D[torch.arange(D.shape[0], device=X.device), torch.arange(i, i + D.shape[0], device=X.device)] = 0.0
        total += float(torch.kthvalue(D, k, dim=1).values.sqrt_().sum())
    return total / n


def _bin_seeds(X: torch.Tensor, bin_size: float, min_bin_freq: int) -> tuple[torch.Tensor, bool]:
    """scikit-learn's ``get_bin_seeds``: grid cells of side ``bin_size`` holding >= ``min_bin_freq`` points.

    Returns the seeds and whether binning was used (False: every point is a seed).
    """
    if bin_size == 0:
        return X, False
    cells, counts = torch.unique(torch.round(X / bin_size), dim=0, return_counts=True)
    cells = cells[counts >= min_bin_freq]
    if cells.shape[0] == X.shape[0]:
        warnings.warn(f"Binning data failed with provided bin_size={bin_size:f}, using data points as seeds.")
        return X, False
    return cells.to(X.dtype) * bin_size, True  # in X's dtype: float32 would round large coordinates


@torch.no_grad()
def _shift_seeds(kernel, X: torch.Tensor, seeds: torch.Tensor, max_iter: int, stop_thresh: float,
                 budget: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Shift every seed to its mode; scikit-learn's ``_mean_shift_single_seed`` for all seeds at once.

    Parameters
    ----------
    kernel : FlatKernel or GaussianKernel
    X : Tensor of shape (n, d)
    seeds : Tensor of shape (m, d)

    Returns
    -------
    centers : Tensor of shape (k, d)
        Final means of the seeds with at least one inlier (seeds that ended on the same
        mean appear once).
    intensity : Tensor of shape (k,)
        Kernel mass around each center's previous mean (the inlier count, flat kernel).
    n_iter : int
        Most iterations any seed completed.
    """
    n, d = X.shape
    Xa = torch.cat([X, torch.ones(n, 1, dtype=X.dtype, device=X.device)], 1)  # (n, d + 1): sums and counts
    mean = seeds.clone()  # (a, d) the active seeds' means
    done_c, done_w = [], []
    n_iter = 0
    for it in range(max_iter + 1):
        a = mean.shape[0]
        if a == 0:
            break
        n_iter = it
        acc = torch.zeros(a, d + 1, dtype=X.dtype, device=X.device)
        tm, tn = _tiles(a, n, X, budget)
        for i in range(0, a, tm):
            for j in range(0, n, tn):
                K = kernel.pairwise(X[j:j + tn], mean[i:i + tm], memory_budget=budget)  # (tm, tn)
                acc[i:i + tm] += K @ Xa[j:j + tn]
        w = acc[:, d]  # (a,)
        empty = w <= 0
        new = acc[:, :d] / torch.where(empty, 1.0, w)[:, None]
        moved = torch.linalg.vector_norm(new - mean, dim=1)
        stop = (moved <= stop_thresh) | (it == max_iter)
        fin = stop & ~empty
        done_c.append(new[fin])
        done_w.append(w[fin])
        keep = ~stop & ~empty
        # seeds now on the same mean have the same future: shift them once
        mean = torch.unique(new[keep], dim=0)
    centers = torch.cat(done_c) if done_c else X.new_zeros((0, d))
    intensity = torch.cat(done_w) if done_w else X.new_zeros((0,))
    return centers, intensity, n_iter


def _sort_by_intensity(centers: torch.Tensor, intensity: torch.Tensor) -> torch.Tensor:
    """Centers (k, d) by decreasing (intensity, coordinates), exact duplicates merged (highest intensity kept)."""
    c = centers.cpu().numpy()
    w = intensity.cpu().numpy()
    order = np.lexsort(tuple(c[:, j] for j in range(c.shape[1] - 1, -1, -1)) + (w,))[::-1]
    c, w = c[order], w[order]
    _, first = np.unique(c, axis=0, return_index=True)
    order = np.sort(first)  # the first of each duplicate group has the highest intensity
    return torch.as_tensor(c[order], device=centers.device)


@torch.no_grad()
def _remove_near_duplicates(centers: torch.Tensor, bandwidth: float, block: int = 1024) -> torch.Tensor:
    """Greedy in the given order: keep a center unless a kept one is within ``bandwidth`` (inclusive)."""
    flat = FlatKernel(bandwidth)
    kept = centers[:0]
    for s in range(0, centers.shape[0], block):
        blk = centers[s:s + block]  # (b, d)
        free = torch.ones(blk.shape[0], dtype=torch.bool, device=blk.device)
        if kept.shape[0]:
            free &= flat.pairwise(kept, blk).amax(1) == 0  # (b,)
        near = flat.pairwise(blk, blk).bool().cpu().numpy()  # (b, b)
        free_np = free.cpu().numpy()
        take = np.zeros(blk.shape[0], dtype=bool)
        for i in range(blk.shape[0]):
            if free_np[i]:
                take[i] = True
                free_np &= ~near[i]
        kept = torch.cat([kept, blk[torch.as_tensor(take, device=blk.device)]])
    return kept


# ---------------------------------------------------------------------- estimator
class MeanShift(BaseClustering):
    """Mean shift clustering on the GPU: a drop-in for :class:`sklearn.cluster.MeanShift`.

    Parameters
    ----------
    bandwidth : float or None, default=None
        Kernel bandwidth; None estimates it as ``sklearn.cluster.estimate_bandwidth(X)``
        does (quantile 0.3 over every sample; quadratic time).
    kernel : {"flat", "gaussian"}, default="flat"
        "flat" is scikit-learn's kernel (mean of the points within ``bandwidth``);
        "gaussian" weighs every point by ``exp(-|x - c|^2 / (2 bandwidth^2))``.
    seeds : array-like of shape (n_seeds, n_features) or None, default=None
        Initial kernel locations; None uses every point, or the bins (``bin_seeding``).
    bin_seeding : bool, default=False
        Seed from the occupied cells of a grid of side ``bandwidth``.
    min_bin_freq : int, default=1
        Only cells with at least this many points become seeds.
    cluster_all : bool, default=True
        Label every point with its nearest center; False labels points farther than
        ``bandwidth`` from every center NOISE (-1).
    max_iter : int, default=300
        Iterations per seed before it is stopped.
    memory_budget : int, default=256 MiB
        Bytes for one tile of (seed, point) values; peak extra memory is about this plus
        O((n + n_seeds) * n_features).
    device : str, default="auto"
        "auto" takes CUDA when available.
    random_state : int, RandomState or None, default=None
        Accepted as by every dmshift estimator; mean shift draws nothing at random (every
        point or occupied bin is a seed), so the labels do not depend on it.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
    labels_ : ndarray of shape (n_samples,)
    n_iter_ : int
        Most iterations any seed took.
    bandwidth_ : float
        The bandwidth used (given or estimated).
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from dmshift.estimators.meanshift import MeanShift
    >>> X = np.array([[1, 1], [2, 1], [1, 0], [4, 7], [3, 5], [3, 6]], dtype=float)
    >>> ms = MeanShift(bandwidth=2, device="cpu").fit(X)
    >>> ms.labels_
    array([1, 1, 1, 0, 0, 0])
    >>> ms.predict([[0, 0], [5, 5]])
    array([1, 0])
    """

    _needs_side_info = False

    def __init__(self, *, bandwidth=None, kernel="flat", seeds=None, bin_seeding=False, min_bin_freq=1,
                 cluster_all=True, max_iter=300, memory_budget=DEFAULT_MEMORY_BUDGET, device="auto",
                 random_state=None):
        self.bandwidth = bandwidth
        self.kernel = kernel
        self.seeds = seeds
        self.bin_seeding = bin_seeding
        self.min_bin_freq = min_bin_freq
        self.cluster_all = cluster_all
        self.max_iter = max_iter
        self.memory_budget = memory_budget
        self.device = device
        self.random_state = random_state

    def _check_params(self):
        if self.bandwidth is not None:
            b = self.bandwidth
            if isinstance(b, bool) or not isinstance(b, numbers.Real) or not (0 < b < _MAX_BANDWIDTH):
                raise ValueError(f"The 'bandwidth' parameter must be a float in the range (0, {_MAX_BANDWIDTH:.3g}) "
                                 f"or None (its square must be a finite float64). Got {b!r} instead.")
        check_param("kernel", self.kernel, tuple(_KERNELS))
        for name in ("bin_seeding", "cluster_all"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"The '{name}' parameter must be an instance of 'bool'. "
                                 f"Got {getattr(self, name)!r} instead.")
        check_positive_int("min_bin_freq", self.min_bin_freq)
        check_positive_int("max_iter", self.max_iter, minimum=0)
        check_positive_int("memory_budget", self.memory_budget, minimum=1024)
        resolve_seed(self.random_state)  # an invalid random_state fails here, as in the other estimators

    def fit(self, X, y=None):
        """Cluster ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : Ignored

        Returns
        -------
        self
        """
        self._check_params()
        X = self._check_X(X, reset=True)
        device = resolve_device(self.device)
        budget = int(self.memory_budget)
        Xt = as_float_tensor(X, device)  # (n, d), float32 stays float32
        # mean shift is translation invariant; centring keeps |x|^2 - 2 x.c accurate (X + 1.7e9 in
        # float64 would lose every digit of its distances). The median, unlike the mean, is not
        # moved by one extreme value, so it keeps the digits of the other points too.
        shift = Xt.median(0).values  # (d,)
        Xc = Xt - shift
        if self.bandwidth is None:
            bandwidth = _estimate_bandwidth(Xc, 0.3, budget)
            if not 0 < bandwidth < _MAX_BANDWIDTH:
                raise ValueError(f"The bandwidth estimated from X is {bandwidth!r}; mean shift needs a positive "
                                 "bandwidth whose square is finite. Pass the 'bandwidth' parameter.")
        else:
            bandwidth = float(self.bandwidth)
        if self.seeds is not None:
            seeds = np.asarray(self.seeds, dtype=X.dtype)
            if seeds.ndim != 2 or seeds.shape[1] != X.shape[1]:
                raise ValueError(f"The 'seeds' parameter must be an array of shape (n_seeds, {X.shape[1]}). "
                                 f"Got shape {seeds.shape} instead.")
            seeds = torch.as_tensor(seeds, device=device)
        elif self.bin_seeding:
            seeds, _ = _bin_seeds(Xt, bandwidth, int(self.min_bin_freq))
        else:
            seeds = Xt
        kern = _KERNELS[self.kernel](bandwidth)
        centers, intensity, n_iter = _shift_seeds(kern, Xc, seeds - shift, int(self.max_iter), 1e-3 * bandwidth,
                                                  budget)
        self.n_iter_ = int(n_iter)
        if centers.shape[0] == 0:
            raise ValueError(f"No point was within bandwidth={bandwidth:f} of any seed. Try a different seeding "
                             "strategy or increase the bandwidth.")
        centers = _remove_near_duplicates(_sort_by_intensity(centers, intensity), bandwidth)  # centred
        sq, idx = _sq_dist_min(Xc, centers, budget)
        centers = centers + shift
        labels = idx.cpu().numpy().astype(np.int64)
        if not self.cluster_all:
            labels[(sq.sqrt() > bandwidth).cpu().numpy()] = NOISE
        self.bandwidth_ = bandwidth
        self.cluster_centers_ = centers.cpu().numpy().astype(X.dtype, copy=False)
        self.labels_ = labels
        return self

    def predict(self, X):
        """Index of the nearest cluster center for each row of ``X`` (as scikit-learn's).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        self._check_fitted()
        X = self._check_X(X, reset=False)
        device = resolve_device(self.device)
        Xt = as_float_tensor(X, device)
        C = torch.as_tensor(self.cluster_centers_).to(device=device, dtype=Xt.dtype)
        shift = C.median(0).values  # distances from nearby origin keep their digits (see fit)
        _, idx = _sq_dist_min(Xt - shift, C - shift, int(self.memory_budget))
        return idx.cpu().numpy().astype(np.int64)

    def fit_predict(self, X, y=None):
        """Fit and return ``labels_``."""
        return self.fit(X).labels_

    # ---- persistence
    def _export_state(self):
        tensors = {"cluster_centers": torch.as_tensor(self.cluster_centers_),
                   "labels": torch.as_tensor(self.labels_)}
        return tensors, {"n_iter": self.n_iter_, "bandwidth": self.bandwidth_}

    def _check_saved_state(self, tensors, meta, *, n_samples):
        super()._check_saved_state(tensors, meta, n_samples=n_samples)
        check_saved_shape(tensors, "cluster_centers", (None, self.n_features_in_))
        check_saved_scale(meta, "bandwidth")

    def _import_state(self, tensors, meta):
        self.cluster_centers_ = tensors["cluster_centers"].cpu().numpy()
        self.labels_ = tensors["labels"].cpu().numpy()
        self.n_iter_ = int(meta["n_iter"])
        self.bandwidth_ = float(meta["bandwidth"])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        tags.input_tags.sparse = True  # densified in _check_X
        return tags
