"""The clustering stage of DMS: seeds, mean shift to convergence, merging, assignment, centers.

:func:`cluster` runs DMS inference (paper §3.2, §4.3) with a trained kernel on the
prepared points and returns a :class:`Clustering`. The steps that touch all points at
once (drawing seeds, shifting, the sums behind center similarity, sizes, input-space
centers) go through a backend: :class:`LocalBackend` computes them in this process,
:mod:`dmshift.distributed.inference` supplies one whose points are spread over ranks,
so both run this one sequence of steps. Training and smoothing are not done here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from .anchors import Anchors, anchor_centers, concat_centers
from .constants import NOISE
from .meanshift import (CenterResult, find_centers, find_centers_adaptive, input_space_centers, select,
                        unique_centers)
from .merge import assign, center_similarity_tiled, merge_centers, merge_constrained, relabel_by_size
from .settings import ThresholdSettings

__all__ = ["ClusterParams", "Clustering", "LocalBackend", "cluster", "merge_threshold"]


@dataclass(frozen=True)
class ClusterParams:
    """How inference runs (the estimator's parameters of the same names)."""

    seeding: str = "random"
    n_seeds: int = 500
    max_iter: int = 50
    similarity: str = "cosine"
    threshold: float | str = "auto"
    noise_threshold: float = 0.01
    memory_budget: int = 256 * 2**20
    thresholds: ThresholdSettings = ThresholdSettings()
    shift_points: int | None = None  # mean shift over at most this many points (ShiftSettings.max_points)


@dataclass(frozen=True)
class Clustering:
    """Result of :func:`cluster` (and of the later stages that relabel it).

    Attributes
    ----------
    labels : ndarray of shape (n,)
        Cluster of each point (of this process's points for a distributed backend), NOISE
        where no cluster is confident.
    confidence : ndarray of shape (n,)
        Confidence of each point's most confident center.
    center_embeddings : tensor of shape (M, h)
    center_cluster : ndarray of shape (M,)
        Cluster of each center.
    cluster_centers : ndarray of shape (n_clusters, n_features)
        Input-space center of the largest inlier set of each cluster.
    n_clusters : int
    n_iter : int
        Most shift iterations any seed took.
    n_seeds_used : int
    converged_fraction : float
    """

    labels: np.ndarray
    confidence: np.ndarray
    center_embeddings: torch.Tensor
    center_cluster: np.ndarray
    cluster_centers: np.ndarray
    n_clusters: int
    n_iter: int
    n_seeds_used: int
    converged_fraction: float


def merge_threshold(threshold: float | str, anchors: Anchors | None,
                    settings: ThresholdSettings = ThresholdSettings()) -> float:
    """The merge threshold in force: ``threshold``, or for "auto" ``settings.anchored`` with label-like
    anchors, else ``settings.default``."""
    if isinstance(threshold, str):
        return settings.anchored if anchors is not None and anchors["complete"] else settings.default
    return float(threshold)


class LocalBackend:
    """The steps of :func:`cluster` that read all points, for points held by this process."""

    def begin(self, px: torch.Tensor) -> int:
        """Start a clustering of the points with embeddings ``px`` (n, h); the number of points."""
        return px.shape[0]

    def draw_seeds(self, rng: np.random.Generator, n: int, m: int) -> np.ndarray:
        return rng.choice(n, size=m, replace=False)

    def find_centers(self, kernel, px, qx, seeds, *, max_iter: int, memory_budget: int) -> CenterResult:
        return find_centers(kernel, px, qx, seeds, max_iter=max_iter, memory_budget=memory_budget)

    def shift_sample(self, rng: np.random.Generator, n: int, seeds: np.ndarray, max_points: int | None):
        """The points (sorted indices) mean shift runs over: a random ``max_points`` and the ``seeds``;
        None (all of them) when there are no more than ``max_points``."""
        if max_points is None or n <= max_points:
            return None
        return np.union1d(rng.choice(n, size=max_points, replace=False), seeds)

    def find_centers_adaptive(self, kernel, px, qx, rng, *, max_seeds: int, max_iter: int,
                              memory_budget: int) -> CenterResult:
        return find_centers_adaptive(kernel, px, qx, rng, max_seeds=max_seeds, max_iter=max_iter,
                                     memory_budget=memory_budget)

    def rows(self, qx: torch.Tensor, index: np.ndarray) -> torch.Tensor:
        """Rows ``index`` (global) of the per-point ``qx`` (n, h)."""
        return qx[torch.as_tensor(index, device=qx.device)]

    def merge(self, kernel, px, qc, similarity: str, threshold: float, memory_budget: int,
              center_group: np.ndarray | None, cannot) -> np.ndarray:
        """Component (M,) of each center."""
        S = center_similarity_tiled(kernel, px, qc, similarity, memory_budget)  # (M, M), H never whole for cosine
        if center_group is not None:
            return merge_constrained(S, threshold, center_group, cannot)
        return merge_centers(S, threshold)

    def relabel(self, labels: np.ndarray, comp: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """Clusters renumbered by decreasing size: labels (n,), cluster of each center (M,), count."""
        labels, center_cluster = relabel_by_size(labels, comp)
        return labels, center_cluster, int(labels.max(initial=-1) + 1)

    def input_centers(self, kernel, px, Xs, qc, memory_budget: int) -> torch.Tensor:
        """Kernel-weighted mean (M, c) of the points ``Xs`` for each center."""
        return input_space_centers(kernel, px, Xs, qc, memory_budget)


@torch.no_grad()
def cluster(kernel, Xs: torch.Tensor, rng: np.random.Generator | None, params: ClusterParams, *,
            to_input: Callable[[torch.Tensor], torch.Tensor], anchors: Anchors | None = None,
            backend: LocalBackend | None = None) -> Clustering:
    """Mean shift, merging and assignment of the prepared points ``Xs`` (n, c).

    ``anchors`` (:func:`~dmshift.anchors.select_anchors`) are side-information centers
    whose indices are rows of ``Xs`` (global rows for a distributed backend): they also
    seed mean shift and stay as fixed centers of their group, and merging never joins
    groups known to differ. ``to_input`` maps kernel-input points (m, c) to input features.
    """
    backend = backend or LocalBackend()
    budget = int(params.memory_budget)
    px, qx = kernel.embed_points(Xs), kernel.embed_centers(Xs)  # (n, h), (n, h)
    n = backend.begin(px)
    anchor_idx = anchors["index"] if anchors is not None else np.zeros(0, dtype=np.int64)
    if params.seeding == "random":
        seeds = backend.draw_seeds(rng, n, min(params.n_seeds, n))
        seeds = np.union1d(seeds, anchor_idx)  # anchors also start mean shift: every seen group gets a mode
        sub = backend.shift_sample(rng, n, seeds, params.shift_points)
        if sub is None:
            res = backend.find_centers(kernel, px, qx, seeds, max_iter=params.max_iter, memory_budget=budget)
        else:  # the seeds shift over a sample of the points
            t = torch.as_tensor(sub, device=px.device)
            res = backend.find_centers(kernel, px[t], qx[t], np.searchsorted(sub, seeds), max_iter=params.max_iter,
                                       memory_budget=budget)
            res = replace(res, seeds=seeds)
    else:
        res = backend.find_centers_adaptive(kernel, px, qx, rng, max_seeds=params.n_seeds, max_iter=params.max_iter,
                                            memory_budget=budget)
    n_seeds_used = int(res.seeds.size)
    n_iter = int(res.n_iter.max()) if res.n_iter.size else 0
    converged_fraction = float(res.converged.mean()) if res.converged.size else 1.0
    res = select(res, unique_centers(res))
    center_group = cannot = None
    if anchor_idx.size:  # labelled points stay as fixed centers of their group
        n_found = res.qc.shape[0]
        res = concat_centers(res, anchor_centers(backend.rows(qx, anchor_idx), anchor_idx))
        center_group = np.concatenate([np.full(n_found, -1, dtype=np.int64), anchors["group"]])
        cannot = anchors["cannot"]
    threshold = merge_threshold(params.threshold, anchors, params.thresholds)
    comp = backend.merge(kernel, px, res.qc, params.similarity, threshold, budget, center_group, cannot)
    a = assign(kernel, px, res.qc, comp, params.noise_threshold, budget)
    labels, center_cluster, n_clusters = backend.relabel(a.labels, comp)
    keep = center_cluster != NOISE
    res = select(res, np.flatnonzero(keep))
    center_cluster = center_cluster[keep]
    centers = to_input(backend.input_centers(kernel, px, Xs, res.qc, budget))  # (M, n_features)
    best = np.zeros(n_clusters, dtype=np.int64)
    for k in range(n_clusters):
        members = np.flatnonzero(center_cluster == k)
        best[k] = members[np.argmax(res.count[members])]
    cluster_centers = centers[torch.as_tensor(best, device=centers.device)].cpu().numpy().astype(np.float32)
    return Clustering(labels=labels, confidence=a.confidence, center_embeddings=res.qc,  # (M, h)
                      center_cluster=center_cluster, cluster_centers=cluster_centers, n_clusters=n_clusters,
                      n_iter=n_iter, n_seeds_used=n_seeds_used, converged_fraction=converged_fraction)
