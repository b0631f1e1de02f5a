"""The smoothing stage of DMS: seeds from a clustering and side information, label spreading, relabelling.

:func:`smooth_clustering` takes a :class:`~dmshift.clustering.Clustering` and returns a
:class:`SmoothingOutcome`: whether the graph was trusted and smoothing applied, and if so
the relabelled clustering and the :class:`Landmarks` that ``predict`` votes with. The
graph algorithm itself (k-NN graph, label spreading, unseen groups) is
:func:`dmshift.smoothing.smooth_labels`; this module only chooses its seeds and maps
its labels back onto clusters and centers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from .clustering import Clustering
from .constants import NOISE
from .constraints import SideInfo
from .merge import relabel_by_size
from .preprocessing import graph_space
from .self_training import pseudo_labels
from .settings import NoveltySettings, SmoothingSettings
from .smoothing import revote, smooth_labels

__all__ = ["Landmarks", "SmoothingOutcome", "smooth_clustering", "landmark_vote", "landmark_rng", "NOT_SMOOTHED"]


def landmark_rng(seed: int, max_points: int) -> np.random.Generator:
    """The draw of the landmarks, where there are more points than a graph or a Ward tree is built on.

    The smoothing and the tree fallback draw the same landmarks from it, so that the graphs,
    trees and neighbour searches of one space (the input graph's, the plain tree's) are built
    once per fit and shared (:mod:`dmshift._memo`)."""
    return np.random.default_rng([int(seed), int(max_points)])


#: The smoothing record of a clustering that was not smoothed.
NOT_SMOOTHED = {"applied": False, "agreement": None, "unseen_groups": 0}


@dataclass(frozen=True)
class Landmarks:
    """The points ``predict`` votes with, after smoothing or the tree fallback.

    Attributes
    ----------
    points : tensor of shape (m, g)
        The landmarks in the graph's space.
    labels : ndarray of shape (m,)
    radius : tensor of shape (m,) or None
        Each landmark's distance to its ``reciprocal_neighbors``-th nearest; None keeps
        noise as noise in the vote.
    transform : tensor of shape (c, g) or None
        The graph's space as a map of the kernel's input (None: its leading columns).
    index : ndarray of shape (m,) or None
        The training row of each landmark (not saved: only the fit's last stage reads it).
    """

    points: torch.Tensor
    labels: np.ndarray
    radius: torch.Tensor | None = None
    transform: torch.Tensor | None = None
    index: np.ndarray | None = None


@dataclass(frozen=True)
class SmoothingOutcome:
    """Result of :func:`smooth_clustering`.

    Attributes
    ----------
    clustering : Clustering
        The smoothed clustering (the input one if not applied).
    record : dict
        ``applied``, ``agreement`` (share of graph edges between two seeds that join one
        cluster), ``unseen_groups``, ``noise_relabelled``.
    landmarks : Landmarks or None
        None if not applied.
    reason : str
        Why it was applied or not.
    unseen_clusters : ndarray
        The clusters of ``clustering`` that unseen groups seeded (the side-information stage keeps
        them: the search found them because side information at its rate would rarely miss them).
    """

    clustering: Clustering
    record: dict
    landmarks: Landmarks | None
    reason: str
    unseen_clusters: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def smooth_clustering(found: Clustering, Xs: torch.Tensor, side: SideInfo, seed: int, *, mode: str,
                      n_neighbors: int, share: float, find_unseen: bool, smooth_noise: bool, memory_budget: int,
                      projected: bool, to_input: Callable[[torch.Tensor], torch.Tensor],
                      settings: SmoothingSettings = SmoothingSettings(),
                      novelty: NoveltySettings = NoveltySettings(), W: torch.Tensor | None = None,
                      fuse_input: bool = False, voted: np.ndarray | None = None) -> SmoothingOutcome:
    """Let neighbours vote on ``found``'s labels of the prepared points ``Xs`` (n, c).

    ``mode`` "graph" always smooths, "auto" only when the graph agrees with the seeds
    (``settings.min_agreement``). Side information seeds the clusters that hold it (a
    group whose cluster holds a group known to differ gets a cluster of its own); the
    clusters no side information holds are seeded by their ``share`` most confident
    points. The graph is built on ``Xs @ W`` (the learnt graph, with ``W`` the kernel's
    :meth:`~dmshift.kernels.base.LearnedKernel.point_map`), or with ``W`` None on the kernel's
    input, of which it reads the leading ``settings.components`` when ``projected`` (``Xs``
    are principal components). ``fuse_input`` (with ``W``): the labels also spread over the
    input graph and each point takes the label of the larger sum of its two graphs' score shares
    (the fused graph, :func:`~dmshift.smoothing.smooth_labels`' ``Z_also``); ``predict`` votes in
    the learnt graph's space. Clusters are renumbered by size afterwards. ``voted``: only these
    points beyond the landmarks take their neighbours' vote (:func:`~dmshift.smoothing.smooth_labels`),
    for a clustering read at these points alone.
    """
    pl = pseudo_labels(side, found.labels, found.confidence, float(share))
    on_side = (side.group >= 0) & (pl >= 0)
    bare = (pl >= 0) & ~np.isin(pl, pl[on_side])  # confident points of the clusters no side information holds
    big = _reached_by_chance(found.labels, found.n_clusters, pl[on_side], side.group >= 0, novelty.max_chance) \
        if novelty.test_bare_clusters else np.ones(max(found.n_clusters, 1), dtype=bool)
    seeds = np.flatnonzero(on_side | bare & big[np.where(bare, pl, 0)])
    lab = found.labels.copy()
    lab[seeds] = pl[seeds]
    Zg = graph_space(Xs, W, projected=projected, n_leading=settings.components)
    Zn = None  # the learnt graph looks for unseen groups in the kernel's input (see smooth_labels)
    Zi = graph_space(Xs, projected=projected, n_leading=settings.components) if W is not None else None
    if W is not None and settings.novelty_space == "input":
        Zn = Zi
    sm = smooth_labels(Zg, lab, seeds, int(n_neighbors), settings.max_points,
                       landmark_rng(seed, settings.max_points), int(memory_budget),
                       min_agreement=settings.min_agreement if mode == "auto" else 0.0,
                       fixed=np.flatnonzero(on_side),  # side information is never overruled
                       groups=side.group if find_unseen else None, cannot=side.cannot,
                       keep_noise=not smooth_noise, settings=settings, novelty=novelty, Z_novelty=Zn,
                       Z_also=Zi if fuse_input else None, voted=voted)
    n_bare = np.unique(pl[bare])
    record = {"applied": sm.applied, "agreement": None if np.isnan(sm.agreement) else sm.agreement,
              "unseen_groups": sm.n_unseen, "noise_relabelled": bool(smooth_noise and sm.applied),
              "bare_clusters": int(n_bare.size), "bare_clusters_kept": int(big[n_bare].sum())}
    if not sm.applied:
        reason = "graph disagrees with the seeds" if not np.isnan(sm.agreement) else "no seed edges"
        return SmoothingOutcome(found, record, None, reason)
    labels, cc = relabel_by_size(sm.labels, found.center_cluster)
    unseen = np.unique(labels[np.isin(sm.labels, sm.unseen_labels)])  # renumbered; a label no point kept is gone
    keep = cc != NOISE
    new_k = int(labels.max(initial=-1)) + 1
    old_centers = found.cluster_centers
    centers = np.zeros((new_k, old_centers.shape[1]), dtype=old_centers.dtype)
    centers[cc[keep]] = old_centers[found.center_cluster[keep]]
    for k in np.setdiff1d(np.arange(new_k), cc[keep]):  # a side-information group's own cluster: its mean
        members = torch.as_tensor(np.flatnonzero(labels == k), device=Xs.device)
        centers[k] = to_input(Xs[members].mean(0, keepdim=True))[0].cpu().numpy()
    emb = found.center_embeddings
    smoothed = replace(found, labels=labels, n_clusters=new_k, center_cluster=cc[keep], cluster_centers=centers,
                       center_embeddings=emb[torch.as_tensor(np.flatnonzero(keep), device=emb.device)])
    landmarks = Landmarks(points=Zg[torch.as_tensor(sm.landmarks, device=Xs.device)].clone(),
                          labels=labels[sm.landmarks], radius=sm.radius if smooth_noise else None,
                          transform=W, index=np.asarray(sm.landmarks))
    return SmoothingOutcome(smoothed, record, landmarks, "graph agrees with the seeds" if mode == "auto" else "forced",
                            unseen[unseen != NOISE])


def _reached_by_chance(labels: np.ndarray, n_clusters: int, held: np.ndarray, has_side: np.ndarray,
                       max_chance: float) -> np.ndarray:
    """Which of the ``n_clusters`` clusters of ``labels`` (n,) random side information would have
    reached with a chance of at least ``1 - max_chance`` (bool, (n_clusters,)): those of at least
    ``log(max_chance) / log(1 - f)`` points, ``f`` the share of points with side information
    (``has_side``, (n,)) in the clusters ``held`` that hold some. A cluster no side information
    holds is a group of its own only when it is one of these; a smaller one is as likely a piece
    of a seen group the draw missed, and its points take the labels spread to them. The test of
    :func:`~dmshift.novelty.unreached_components`, one per cluster: the kernel, not the side
    information, set it apart."""
    sizes = np.bincount(labels[labels >= 0], minlength=n_clusters)[:n_clusters]
    held = np.unique(held[(held >= 0) & (held < n_clusters)])
    inside = np.isin(labels, held)
    rate = float((has_side & inside).sum()) / max(int(inside.sum()), 1)
    if not 0 < rate < 1:
        return np.full(n_clusters, rate >= 1 or not held.size)
    return sizes >= np.log(max_chance) / np.log1p(-rate)


def landmark_vote(landmarks: Landmarks, Xs: torch.Tensor, labels: np.ndarray, n_neighbors: int,
                  memory_budget: int) -> np.ndarray:
    """``labels`` (n,) of the prepared points ``Xs`` (n, c) replaced by their nearest landmarks' vote.

    What ``predict`` does after smoothing or the tree fallback. NOISE is kept when the
    landmarks have no radius; else a noise point takes the vote when it lies within the
    radius of one of its nearest landmarks (a point far from all the data stays noise).
    """
    W = landmarks.transform  # the space of the landmarks: Xs @ W, or the leading columns of Xs
    Zg = Xs @ W if W is not None else Xs[:, :landmarks.points.shape[1]]
    return revote(Zg, landmarks.points, landmarks.labels, labels, int(n_neighbors), int(memory_budget),
                  keep_noise=landmarks.radius is None, radius=landmarks.radius)
