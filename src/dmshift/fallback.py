"""The tree fallback of DMS: the Ward tree's clusters instead of the kernel's on thin side information.

Thin side information (many groups, a label or two in each) has too few "same" pairs to
learn a kernel from, and the kernel's clustering then joins groups the side information
says differ. :func:`tree_fallback` measures the kernel clustering's pairwise F1 on the
side information and, when the conditions of
:class:`~dmshift.settings.FallbackSettings` hold, cuts the Ward tree of the kernel's input
where its F1 is best (:mod:`dmshift.treecut`), in the plain and in the whitened space;
a tree that beats the kernel by the margin replaces its clustering. It returns what it
decided and why; it never smooths.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from .clustering import Clustering
from .constants import NOISE
from .constraints import SideInfo
from .novelty import tree_points
from .preprocessing import graph_space
from .settings import FallbackSettings, SmoothingSettings
from .smoothing import knn_graph, vote_labels
from .smoothing_stage import Landmarks, landmark_rng
from .treecut import pair_f1, tree_clusters, whitening

__all__ = ["FallbackResult", "tree_fallback", "NOT_TAKEN"]

#: The fallback record of a clustering no fallback was decided on.
NOT_TAKEN = {"applied": False, "kernel_f1": None, "tree_f1": None, "space": None}


@dataclass(frozen=True)
class FallbackResult:
    """Result of :func:`tree_fallback`.

    Attributes
    ----------
    applied : bool
    record : dict
        ``applied``; ``kernel_f1`` (None without "same" pairs); ``tree_f1`` and ``space``
        ("plain" or "whitened") of the better tree, where one was cut.
    reason : str
        Why it was taken or not.
    clustering : Clustering
        The tree's clustering if applied, else the kernel's (unchanged).
    landmarks : Landmarks or None
        The tree's points and labels for ``predict``'s vote, if applied.
    """

    applied: bool
    record: dict
    reason: str
    clustering: Clustering
    landmarks: Landmarks | None = None


def tree_fallback(found: Clustering, Xs: torch.Tensor, side: SideInfo, seed: int, *, enabled: bool,
                  n_neighbors: int, memory_budget: int, projected: bool,
                  to_input: Callable[[torch.Tensor], torch.Tensor], settings: FallbackSettings = FallbackSettings(),
                  graph: SmoothingSettings = SmoothingSettings()) -> FallbackResult:
    """Replace ``found`` by the Ward tree's clustering of the prepared points ``Xs`` (n, c) when the
    side information agrees with the tree far better (see the module docstring).

    The kernel's F1 is measured even when ``enabled`` is False. ``graph`` gives the tree's
    neighbours, the landmarks' count and radius rank and the leading components read
    when ``projected``. Each kernel center then stands for the tree cluster most of its
    cluster's points are in: its confidence still decides noise in ``predict``, the
    landmarks' vote the label.
    """
    f_kernel, n_same = pair_f1(found.labels, side.group, side.cannot)
    record = {**NOT_TAKEN, "kernel_f1": f_kernel if n_same else None}

    def no(reason):
        return FallbackResult(False, record, reason, found)

    if not enabled:
        return no("off")
    if n_same < settings.min_same_pairs:
        return no(f"{n_same} 'same' pairs, fewer than {settings.min_same_pairs}")
    if f_kernel > 1.0 - settings.margin:
        return no(f"kernel F1 {f_kernel:.3f} above {1.0 - settings.margin:g}")
    if found.n_clusters > settings.max_cluster_share * side.n_groups:
        return no(f"{found.n_clusters} clusters for {side.n_groups} groups: the kernel does not join groups")
    n, budget, max_points = Xs.shape[0], int(memory_budget), graph.max_points
    n_tree = tree_points(max_points, budget)  # the Ward tree's points: within the budget
    rng = landmark_rng(seed, max_points)  # the smoothing's landmarks: the input graph and its tree are shared
    landmarks = np.arange(n) if n <= n_tree else np.sort(rng.choice(n, n_tree, replace=False))
    lm_index = torch.as_tensor(landmarks, device=Xs.device)
    group = side.group[landmarks]
    spaces = {"plain": None, "whitened": whitening(Xs[lm_index])}
    best = None
    for name, W in spaces.items():  # plain first: whitened must do better, not as well
        Z = graph_space(Xs[lm_index], W, projected=projected, n_leading=graph.components)
        idx, dist = knn_graph(Z, max(graph.tree_neighbors, graph.reciprocal_neighbors), budget)  # kept per fold
        cut = tree_clusters(Z.cpu().numpy(), idx[:, :graph.tree_neighbors].cpu().numpy(), group, side.cannot, budget)
        if cut is not None and (best is None or cut.f1 > best[1].f1 + 1e-12):
            best = (name, cut, W, Z, dist[:, min(graph.reciprocal_neighbors, dist.shape[1]) - 1].clone())
    if best is not None:
        record.update(tree_f1=best[1].f1, space=best[0])
    if best is None:
        return no("no tree cut")
    if best[1].f1 < f_kernel + settings.margin:
        return no(f"tree F1 {best[1].f1:.3f} not {settings.margin:g} above the kernel's {f_kernel:.3f}")
    name, cut, W, Z, radius = best
    labels = np.full(n, NOISE, dtype=np.int64)
    labels[landmarks] = cut.labels
    rest = np.setdiff1d(np.arange(n), landmarks)
    if rest.size:
        Zr = graph_space(Xs[torch.as_tensor(rest, device=Xs.device)], W, projected=projected,
                         n_leading=graph.components)
        labels[rest] = vote_labels(Zr, Z, cut.labels, int(n_neighbors), budget, keep=True)  # once per fold
    k = int(labels.max()) + 1
    old = found.labels
    to_tree = np.zeros(max(found.n_clusters, 1), dtype=np.int64)
    for c in range(found.n_clusters):
        inside = labels[(old == c) & (labels >= 0)]
        to_tree[c] = np.bincount(inside).argmax() if inside.size else 0
    centers = np.zeros((k, found.cluster_centers.shape[1]), dtype=found.cluster_centers.dtype)
    for c in range(k):
        members = torch.as_tensor(np.flatnonzero(labels == c), device=Xs.device)
        centers[c] = to_input(Xs[members].mean(0, keepdim=True))[0].cpu().numpy()
    record["applied"] = True
    tree = replace(found, labels=labels, n_clusters=k, center_cluster=to_tree[found.center_cluster],
                   cluster_centers=centers)
    return FallbackResult(True, record, f"tree ({name}) F1 {cut.f1:.3f} vs kernel {f_kernel:.3f}", tree,
                          Landmarks(points=Z.clone(), labels=cut.labels.copy(), radius=radius, transform=W,
                                    index=np.asarray(landmarks)))
