"""Mean shift with any :class:`~dmshift.kernels.PairwiseKernel`: training and inference.

* :func:`shift_instances` is the differentiable path used in training: ``T`` shift steps
  from each instance's initial point, then the inlier logits of every point.
* :func:`find_centers` is the inference path: shift each seed until two consecutive
  centers predict the same inlier set (K > threshold), with a cap on iterations, only
  moving the seeds that have not converged. Work is tiled over points and centers to a
  memory budget and never materialises the (centers x points) matrix.

Shifting runs in the kernel's center-embedding space (see :mod:`dmshift.kernels.base`);
input-space centers are recovered once at the end with the final weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .kernels.base import DEFAULT_MEMORY_BUDGET, PairwiseKernel, tile_sizes

__all__ = ["shift_instances", "shift_step", "find_centers", "CenterResult", "ShiftStats", "accumulate"]

#: weight given to the previous center in a step, so a center with no inliers stays put
_EPS = 1e-6


def shift_step(weights: torch.Tensor, qx: torch.Tensor, qc: torch.Tensor) -> torch.Tensor:
    """One mean-shift step: the weighted mean of ``qx``, falling back on ``qc`` when weights vanish.

    Parameters
    ----------
    weights : Tensor of shape (..., L)
    qx : Tensor of shape (..., L, h)
    qc : Tensor of shape (..., h)
    """
    num = torch.einsum("...l,...lh->...h", weights, qx) + _EPS * qc  # (..., h)
    den = weights.sum(-1, keepdim=True) + _EPS  # (..., 1)
    return num / den


def shift_instances(kernel, x: torch.Tensor, n_steps: int, index: torch.Tensor | None = None) -> torch.Tensor:
    """Differentiable mean shift from point 0 of each instance; returns inlier logits.

    Parameters
    ----------
    kernel : LearnedKernel
    x : Tensor of shape (B, L, d), or (U, d) with ``index``
        Training instances; ``x[:, 0]`` is each instance's initial point.
    n_steps : int
        Mean-shift steps T before the final inlier prediction.
    index : Tensor of shape (B, L), optional
        Rows of ``x`` (then the distinct points of a batch) that make up each instance:
        every distinct point is embedded once however often the batch repeats it.

    Returns
    -------
    Tensor of shape (B, L): logits of K(x, center_T).
    """
    px = kernel.embed_points(x)  # (B, L, h) or (U, h)
    qx = kernel.embed_centers(x)
    if index is not None:
        px, qx = px[index], qx[index]  # (B, L, h)
    qc = qx[:, 0]  # (B, h)
    for _ in range(n_steps):
        w = kernel.confidence_from(px, qc[:, None, :])  # (B, L)
        qc = shift_step(w, qx, qc)
    return kernel.logit_from(px, qc[:, None, :])


@dataclass
class ShiftStats:
    """Per-center sums over points, the quantities one shift step needs (all-reducible)."""

    num: torch.Tensor  # (M, h)  sum_j K_ij qx_j
    den: torch.Tensor  # (M,)    sum_j K_ij
    fingerprint: torch.Tensor  # (M,) int64  sum_j [K_ij > t] r_j  (wrapping)
    count: torch.Tensor  # (M,) int64  |inliers|


def accumulate(kernel: PairwiseKernel, px: torch.Tensor, qx: torch.Tensor, qc: torch.Tensor,
               keys: torch.Tensor, threshold: float, memory_budget: int) -> ShiftStats:
    """Sums over points of the weights, weighted embeddings and inlier fingerprints.

    ``keys`` (n,) int64 are random per-point keys; two centers with the same inlier set
    have the same fingerprint, and a change of inlier set changes it with overwhelming
    probability.
    """
    M, n = qc.shape[0], px.shape[0]
    num = torch.zeros_like(qc)
    den = torch.zeros(M, dtype=qc.dtype, device=qc.device)
    fp = torch.zeros(M, dtype=torch.int64, device=qc.device)
    cnt = torch.zeros(M, dtype=torch.int64, device=qc.device)
    tm, tn = tile_sizes(M, n, kernel.bytes_per_pair(px), memory_budget)
    for j in range(0, n, tn):
        K = kernel.pairwise(px[j:j + tn], qc, memory_budget=memory_budget)  # (M, tn)
        num += K @ qx[j:j + tn]
        den += K.sum(1)
        inl = K > threshold  # (M, tn)
        fp += torch.where(inl, keys[j:j + tn][None, :], 0).sum(1)
        cnt += inl.sum(1)
    return ShiftStats(num, den, fp, cnt)


@dataclass
class CenterResult:
    """Converged centers of a set of seeds."""

    qc: torch.Tensor  # (M, h) center embeddings
    seeds: np.ndarray  # (M,) seed point indices
    n_iter: np.ndarray  # (M,) iterations each seed took
    converged: np.ndarray  # (M,) bool
    fingerprint: np.ndarray  # (M,) int64 inlier-set fingerprint at convergence
    count: np.ndarray  # (M,) inlier count at convergence


def point_keys(n: int, device, seed: int = 0, *, offset: int = 0) -> torch.Tensor:
    """Random int64 keys for inlier-set fingerprints (deterministic given ``seed``).

    ``offset`` gives the keys of points ``offset .. offset + n - 1`` of the same sequence,
    so a process holding a shard gets exactly the keys a single process would give it.
    """
    g = np.random.default_rng(seed)
    # a bounded draw over a power-of-two range consumes exactly one PCG64 output per value
    # (Lemire's method never rejects), so skipping ``offset`` outputs skips ``offset`` keys
    g.bit_generator.advance(offset)
    return torch.as_tensor(g.integers(0, 2**40, size=n, dtype=np.int64), device=device)


@torch.no_grad()
def find_centers(kernel: PairwiseKernel, px: torch.Tensor, qx: torch.Tensor, seeds: np.ndarray, *,
                 max_iter: int = 50, memory_budget: int = DEFAULT_MEMORY_BUDGET, keys: torch.Tensor | None = None,
                 reduce=None, init_centers: torch.Tensor | None = None) -> CenterResult:
    """Shift every seed until its inlier set stops changing, or ``max_iter`` steps.

    Parameters
    ----------
    kernel : PairwiseKernel
    px, qx : Tensor of shape (n, h)
        Point- and center-role embeddings of the points.
    seeds : ndarray of shape (M,)
        Indices of the initial points: into ``px``/``qx``, or global indices when the points
        are sharded over processes (then ``init_centers`` gives their embeddings).
    keys : Tensor of shape (n,), optional
        Fingerprint keys of the points (default :func:`point_keys`); sharded callers pass
        the slice of the global keys that belongs to their points.
    reduce : callable, optional
        Combines :class:`ShiftStats` across processes (sharded inference); identity when None.
    init_centers : Tensor of shape (M, h), optional
        Starting center embeddings; default ``qx[seeds]``.
    """
    seeds = np.asarray(seeds, dtype=np.int64)
    M = seeds.size
    thr = kernel.inlier_threshold
    if keys is None:
        keys = point_keys(px.shape[0], px.device)
    if init_centers is None:
        qc = qx[torch.as_tensor(seeds, device=qx.device)].clone()  # (M, h)
    else:
        qc = init_centers.to(device=qx.device, dtype=qx.dtype).clone()  # (M, h)
    prev_fp = torch.full((M,), -1, dtype=torch.int64, device=qc.device)
    prev_cnt = torch.full((M,), -1, dtype=torch.int64, device=qc.device)
    fp_out = torch.zeros(M, dtype=torch.int64, device=qc.device)
    cnt_out = torch.zeros(M, dtype=torch.int64, device=qc.device)
    active = torch.ones(M, dtype=torch.bool, device=qc.device)
    n_iter = np.zeros(M, dtype=np.int64)
    for it in range(max_iter + 1):
        idx = torch.nonzero(active).squeeze(1)
        if idx.numel() == 0:
            break
        stats = accumulate(kernel, px, qx, qc[idx], keys, thr, memory_budget)
        if reduce is not None:
            stats = reduce(stats)
        same = (stats.fingerprint == prev_fp[idx]) & (stats.count == prev_cnt[idx])
        fp_out[idx] = stats.fingerprint
        cnt_out[idx] = stats.count
        prev_fp[idx] = stats.fingerprint
        prev_cnt[idx] = stats.count
        done = idx[same]
        active[done] = False
        if it == max_iter:
            break
        move = idx[~same]
        if move.numel():
            keep = ~same
            qc[move] = (stats.num[keep] + _EPS * qc[move]) / (stats.den[keep, None] + _EPS)
            n_iter[move.cpu().numpy()] += 1
    converged = (~active).cpu().numpy()
    return CenterResult(qc=qc, seeds=seeds, n_iter=n_iter, converged=converged,
                        fingerprint=fp_out.cpu().numpy(), count=cnt_out.cpu().numpy())


@torch.no_grad()
def input_space_centers(kernel: PairwiseKernel, px: torch.Tensor, X: torch.Tensor, qc: torch.Tensor,
                        memory_budget: int = DEFAULT_MEMORY_BUDGET) -> torch.Tensor:
    """The input-space weighted means whose center embeddings are ``qc``: (M, d)."""
    M, n = qc.shape[0], px.shape[0]
    num = torch.zeros((M, X.shape[1]), dtype=X.dtype, device=X.device)
    den = torch.zeros(M, dtype=X.dtype, device=X.device)
    _, tn = tile_sizes(M, n, kernel.bytes_per_pair(px), memory_budget)
    for j in range(0, n, tn):
        K = kernel.pairwise(px[j:j + tn], qc, memory_budget=memory_budget).to(X.dtype)
        num += K @ X[j:j + tn]
        den += K.sum(1)
    return num / den.clamp_min(_EPS)[:, None]


@torch.no_grad()
def max_confidence(kernel: PairwiseKernel, px: torch.Tensor, qc: torch.Tensor,
                   memory_budget: int = DEFAULT_MEMORY_BUDGET) -> torch.Tensor:
    """(n,) the highest confidence any center in ``qc`` gives each point."""
    n, M = px.shape[0], qc.shape[0]
    out = torch.empty(n, dtype=px.dtype, device=px.device)
    _, tn = tile_sizes(M, n, kernel.bytes_per_pair(px), memory_budget)
    for j in range(0, n, tn):
        out[j:j + tn] = kernel.pairwise(px[j:j + tn], qc, memory_budget=memory_budget).amax(0)
    return out


def unique_centers(res: CenterResult) -> np.ndarray:
    """Indices of one center per distinct converged inlier set (first seed kept)."""
    key = res.fingerprint.astype(np.int64) * 1_000_003 + res.count.astype(np.int64)
    _, first = np.unique(key, return_index=True)
    return np.sort(first)


@torch.no_grad()
def find_centers_adaptive(kernel: PairwiseKernel, px: torch.Tensor, qx: torch.Tensor, rng: np.random.Generator, *,
                          max_seeds: int = 500, first_batch: int = 8, coverage_tol: float = 0.005,
                          max_iter: int = 50, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> CenterResult:
    """Seed from points no center covers yet, in growing batches, until (almost) all are covered.

    A point is covered when some found center, or some tried seed's starting point, gives it
    confidence above the inlier threshold.
    Seeds are drawn at random among points that are neither covered nor tried as seeds; the
    batch doubles each round. Stops when the uncovered, untried points are at most
    ``coverage_tol`` of the data, or after ``max_seeds`` seeds.
    """
    n = px.shape[0]
    keys = point_keys(n, px.device)
    covered = torch.zeros(n, dtype=torch.bool, device=px.device)
    tried = np.zeros(n, dtype=bool)
    parts: list[CenterResult] = []
    batch, used = first_batch, 0
    while used < max_seeds:
        cand = np.flatnonzero(~covered.cpu().numpy() & ~tried)
        if cand.size == 0 or cand.size <= coverage_tol * n:
            break
        take = min(batch, max_seeds - used, cand.size)
        seeds = rng.choice(cand, size=take, replace=False)
        tried[seeds] = True
        res = find_centers(kernel, px, qx, seeds, max_iter=max_iter, memory_budget=memory_budget, keys=keys)
        parts.append(res)
        # a seed's starting neighbourhood shares its basin: count it as covered as well
        reached = torch.cat([res.qc, qx[torch.as_tensor(seeds, device=qx.device)]])  # (2 take, h)
        covered |= max_confidence(kernel, px, reached, memory_budget) > kernel.inlier_threshold
        used += take
        batch *= 2
    return CenterResult(
        qc=torch.cat([p.qc for p in parts]),
        seeds=np.concatenate([p.seeds for p in parts]),
        n_iter=np.concatenate([p.n_iter for p in parts]),
        converged=np.concatenate([p.converged for p in parts]),
        fingerprint=np.concatenate([p.fingerprint for p in parts]),
        count=np.concatenate([p.count for p in parts]),
    )


def select(res: CenterResult, keep: np.ndarray) -> CenterResult:
    """The centers of ``res`` at positions ``keep``."""
    k = torch.as_tensor(keep, device=res.qc.device)
    return CenterResult(qc=res.qc[k], seeds=res.seeds[keep], n_iter=res.n_iter[keep], converged=res.converged[keep],
                        fingerprint=res.fingerprint[keep], count=res.count[keep])
