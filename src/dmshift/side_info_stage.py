"""The last stage of DMS: labels that honour the side information, and no stray unconstrained clusters.

Every earlier stage (clustering with anchors, self-training, the tree fallback,
smoothing) tries to respect the side information, but only some guarantee it: a group
too small to be an anchor, or a "different" known for some pairs only, can end up in
the cluster of a group it is known to differ from. :func:`honour` runs after all of
them and makes the guarantee hold whatever ran before:

1. **noise**: a side-information point labelled NOISE takes its group's cluster (the
   one most of its group is in); a group all of whose points are NOISE takes the cluster
   whose center its points are most confident in.
2. **absorb** (:func:`absorb_small`): a cluster smaller than what random side information
   at the observed rate would almost surely have reached, every such cluster at once
   (``(n / s) (1 - f)^s > alpha``, ``f`` the share of points with side information, the
   union bound of :mod:`dmshift.novelty`) is no evidence of a group of its own: smallest first, it joins,
   whole, the cluster whose centers its points are most confident in, among those holding
   no group known to differ from its own groups (none: it stays; so a small labelled class
   that every other cluster differs from keeps its cluster). Sparse pairs otherwise leave the points no
   pair constrains, and the fragments around single pair members, as many tiny clusters. By default
   (``SideInfoSettings.absorb="auto"``) only pairs absorb: with partial labels a cluster they leave
   bare is a candidate class of its own, and the unseen groups smoothing found are kept always.
3. **join**: clusters that share a group are one cluster.
4. **split**: a cluster holding groups known to differ is divided among them. Its groups
   are put into as few sides as possible, no two groups known to differ on one side
   (greedy, largest group first); each point of the cluster goes to the side of the
   side-information point it is most confident in under the kernel (so no cluster of the
   labelled points alone is created), and the sides other than the largest become
   clusters of their own, with the group's points as centers (so ``predict`` finds them).

A cluster without a center (the tree fallback's and smoothing's can have none) first gets
some of its points as centers, so that it can be joined and ``predict`` finds it. It
returns what it changed, for ``choices_``; nothing is changed where the labels
already honour the side information and no small unconstrained cluster exists.
:func:`thin_side_info_warning` says when the side information is too thin to trust.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp
import torch

from .clustering import Clustering
from .constants import NOISE
from .constraints import SideInfo
from .merge import relabel_by_size
from .novelty import min_part_size
from .settings import SideInfoSettings
from .smoothing import knn
from .smoothing_stage import Landmarks

__all__ = ["Honoured", "honour", "absorb_small", "min_reached_size", "label_like", "thin_side_info_warning",
           "recall"]

#: side-information points :func:`recall` measures directly, nearest first by the tiled search
_RECALL_CANDIDATES = 8


@dataclass(frozen=True)
class Honoured:
    """Result of :func:`honour`: the ``clustering``, the ``landmarks`` relabelled to match it (None if
    there were none), a ``record`` of what changed (``absorbed`` clusters, ``noise_assigned``
    side-information points, ``joined`` and ``split`` clusters, ``relabelled`` points), and the
    side-information points (m, c) with their labels (m,), for :func:`recall`."""

    clustering: Clustering
    landmarks: Landmarks | None
    record: dict
    side_points: np.ndarray | None = None
    side_labels: np.ndarray | None = None


def label_like(side: SideInfo) -> bool:
    """Is ``side`` partial labels (every two groups known to differ), not sparse pairs?"""
    G = side.n_groups
    return side.cannot.count_nonzero() == G * (G - 1)


def min_reached_size(side: SideInfo, max_chance: float) -> int:
    """Least size ``s`` a cluster needs for random side information at the observed rate ``f`` to reach
    every one of the ``n / s`` clusters of that size with a chance of at least ``1 - max_chance``:
    ``(n / s) (1 - f)^s <= max_chance``, the union bound of :func:`dmshift.novelty.min_part_size`."""
    f = float(np.mean(side.group >= 0))
    s = min_part_size(side.n_samples, f, max_chance)
    return side.n_samples + 1 if not np.isfinite(s) else int(math.ceil(s))


def thin_side_info_warning(side: SideInfo, n_features: int, min_same_pairs: int = 10) -> str | None:
    """A warning (or None) when the side information is too thin to learn a kernel from: fewer "same"
    pairs than the features the kernel reads (each "same" pair constrains one direction at most), and
    fewer than ``min_same_pairs`` (``SideInfoSettings.thin_same_pairs``), the count below which the
    tree fallback too finds nothing to decide by."""
    n_same, needed = side.n_positive_pairs(), min(int(n_features), int(min_same_pairs))
    if n_same >= needed:
        return None
    return (f"The side information holds {n_same} 'same' pair(s) for {n_features} features the kernel reads: too "
            "few to learn a kernel from, so the clusters follow the features' own structure more than the side "
            f"information. Give more pairs (at least {needed} 'same' pairs) or partial labels y (a few points "
            "of each class).")


def _confidence(kernel, Xs: torch.Tensor, rows: np.ndarray, qc: torch.Tensor, budget: int) -> torch.Tensor:
    """Confidence (len(rows), M) of the points ``rows`` of ``Xs`` in the centers with embeddings ``qc``."""
    px = kernel.embed_points(Xs[torch.as_tensor(rows, device=Xs.device)])
    return kernel.pairwise(px, qc, memory_budget=budget).T


def _most_confident(kernel, Xs: torch.Tensor, rows: np.ndarray, qc: torch.Tensor, budget: int) -> np.ndarray:
    """Index (len(rows),) of the center of ``qc`` (M, h) each point ``rows`` of ``Xs`` is most confident in,
    ``budget`` bytes of confidences at a time."""
    step = max(1, budget // max(1, 4 * qc.shape[0]))
    return np.concatenate([_confidence(kernel, Xs, rows[i:i + step], qc, budget).argmax(1).cpu().numpy()
                           for i in range(0, rows.size, step)])


def absorb_small(labels: np.ndarray, center_cluster: np.ndarray, side: SideInfo, min_size: int, conf,
                 keep=()):
    """Clusters of fewer than ``min_size`` points joined, smallest first and whole, to the cluster whose
    centers their points are most confident in, among those holding no group known to differ from one
    of theirs (none such: it stays). ``conf(rows, centers)`` gives the confidence (len(rows),
    len(centers)) of points in centers. Returns the labels (n,), the cluster of each center (M,) and the
    number of clusters joined. The clusters ``keep`` (unseen groups) are never joined to another, and
    no cluster holding side information joins them.
    """
    labels, cc = labels.copy(), center_cluster.copy()
    on = np.flatnonzero((side.group >= 0) & (labels != NOISE))
    k = int(max(labels.max(initial=-1), cc.max(initial=-1))) + 1
    H = sp.csr_matrix((np.ones(on.size), (labels[on], side.group[on])), shape=(k, side.n_groups))  # cluster-group
    clash = (H @ sp.csr_matrix(side.cannot, dtype=float) @ H.T).toarray() > 0  # (k, k) clusters known to differ
    keep = np.asarray(keep, dtype=np.int64)
    stays, joined = set(keep.tolist()), 0
    kept, holds = np.isin(np.arange(k), keep), np.zeros(k, dtype=bool)
    holds[labels[on]] = True
    while True:
        ids, sizes = np.unique(labels[labels != NOISE], return_counts=True)
        small = [(s, c) for s, c in zip(sizes, ids) if s < min_size and c not in stays]
        if not small:
            break
        c = min(small)[1]
        centers = np.flatnonzero((cc != c) & np.isin(cc, ids))
        if not centers.size:
            break
        rows = np.flatnonzero(labels == c)
        K = conf(rows, centers).sum(0).cpu().numpy()  # (len(centers),) the cluster's confidence in each center
        K[clash[c, cc[centers]]] = -np.inf
        if holds[c]:  # an unseen group holds no side information: none joins it
            K[kept[cc[centers]]] = -np.inf
        if not np.isfinite(K.max()):
            stays.add(c)
            continue
        t = cc[centers[K.argmax()]]
        labels[rows], cc[cc == c], joined = t, t, joined + 1
        clash[t] |= clash[c]
        holds[t] |= holds[c]
        clash[:, t] |= clash[:, c]
    return labels, cc, joined


def _sides(groups: np.ndarray, sizes: np.ndarray, C: sp.csr_matrix) -> list[list[int]]:
    """``groups`` put into as few sides as possible (largest first), no two known to differ on one side."""
    sides: list[list[int]] = []
    for g in groups[np.argsort(-sizes, kind="stable")]:
        for s in sides:
            if C[g, s].nnz == 0:
                s.append(int(g))
                break
        else:
            sides.append([int(g)])
    return sides


def _moved(old: np.ndarray, new: np.ndarray) -> int:
    """How many points (of n) changed cluster from ``old`` to ``new``, whatever the numbering: those not where
    most of their old cluster went, or not from where most of their new cluster came (NOISE counts as a cluster)."""
    a = np.unique(old, return_inverse=True)[1].ravel()
    b = np.unique(new, return_inverse=True)[1].ravel()
    counts = sp.csr_matrix((np.ones(a.size), (a, b))).toarray()  # (old clusters, new clusters)
    follows = (counts.argmax(1)[a] == b) & (counts.argmax(0)[b] == a)
    return int((~follows).sum())


@torch.no_grad()
def honour(found: Clustering, kernel, Xs: torch.Tensor, side: SideInfo, *, landmarks: Landmarks | None,
           memory_budget: int, to_input: Callable[[torch.Tensor], torch.Tensor],
           settings: SideInfoSettings = SideInfoSettings(), tree_taken: bool = False, keep=()) -> Honoured:
    """Labels of the prepared points ``Xs`` (n, c) that honour ``side`` (see the module docstring).

    ``tree_taken``: ``found`` is the tree fallback's clustering. With label-like side information
    (every two groups known to differ) its cut is where the labels put it, its small parts are
    groups the labels leave bare, and they are not absorbed; with pairs, many cuts agree with the
    few pairs equally well and the small parts are absorbed as the kernel's are.

    ``keep``: clusters never absorbed (the unseen groups smoothing found: their search already
    judged them against chance). ``settings.absorb`` "auto" absorbs for pairs only
    (:func:`label_like`): with partial labels, a cluster they leave bare is a candidate class.
    """
    labels_given = label_like(side)
    absorb = settings.absorb if settings.absorb != "auto" else not labels_given
    absorb = bool(absorb) and not (tree_taken and labels_given)
    labels, cc = found.labels.copy(), found.center_cluster.copy()
    qc = found.center_embeddings
    budget = int(memory_budget)
    qx_all = kernel.embed_centers(Xs)  # (n, h): points as centers, for confidence in a labelled point

    def spread(r):  # at most max_new_centers of the points r, spread over them
        return r[np.unique(np.linspace(0, r.size - 1, settings.max_new_centers).astype(np.int64))]

    def conf(rows, centers):
        return _confidence(kernel, Xs, rows, qc[torch.as_tensor(centers, device=qc.device)], budget)

    group, members = side.group, side.members()
    # clusters without a center (the tree fallback's, or smoothing's) get some of their points as centers
    ids = np.unique(labels[labels != NOISE])
    bare = np.setdiff1d(ids, cc)
    if bare.size:
        rows = [spread(np.flatnonzero(labels == c)) for c in bare]
        qc = torch.cat([qc, qx_all[torch.as_tensor(np.concatenate(rows), device=Xs.device)]])
        cc = np.concatenate([cc, *[np.full(r.size, c) for r, c in zip(rows, bare)]])
    # 1. side-information points labelled NOISE take their group's cluster, or the nearest one
    noise_assigned, nxt = 0, int(max(labels.max(initial=-1), cc.max(initial=-1))) + 1
    for g, m in enumerate(members):
        lost = m[labels[m] == NOISE]
        if not lost.size:
            continue
        held = labels[m][labels[m] != NOISE]
        if held.size:
            labels[lost] = np.bincount(held).argmax()
        elif cc.size and (cc != NOISE).any():
            centers = np.flatnonzero(cc != NOISE)
            labels[lost] = cc[centers[conf(lost, centers).sum(0).argmax().item()]]
        else:
            labels[lost], nxt = nxt, nxt + 1
        noise_assigned += int(lost.size)
    # 2. small clusters join the one their points are most confident in, unless known to differ
    labels, cc, absorbed = absorb_small(labels, cc, side, min_reached_size(side, settings.max_chance), conf,
                                         keep=keep) \
        if absorb else (labels, cc, 0)
    # 3. clusters that share a group are one
    on = np.flatnonzero(group >= 0)
    k, G = int(max(labels.max(initial=-1), cc.max(initial=-1))) + 1, side.n_groups
    A = sp.csr_matrix((np.ones(on.size), (labels[on], k + group[on])), shape=(k + G, k + G))
    _, comp = sp.csgraph.connected_components(A, directed=False)
    joined = int(np.unique(labels[on]).size - np.unique(comp[labels[on]]).size)
    labels = np.where(labels == NOISE, NOISE, comp[np.maximum(labels, 0)])
    cc = np.where(cc == NOISE, NOISE, comp[np.maximum(cc, 0)])
    # 4. a cluster holding groups known to differ is divided among them
    C, split = sp.csr_matrix(side.cannot, dtype=bool), 0
    nxt = int(comp.max()) + 1
    new_qc, new_cc = [], []
    for p in np.unique(labels[on]):
        gs = np.unique(group[on][labels[on] == p])
        if gs.size < 2 or C[gs][:, gs].nnz == 0:
            continue
        sides = _sides(gs, np.array([members[g].size for g in gs]), C)
        side_of = {g: i for i, s in enumerate(sides) for g in s}
        pts = np.flatnonzero(labels == p)
        sided = np.concatenate([spread(members[g]) for g in gs])  # at most max_new_centers of each group
        best = _most_confident(kernel, Xs, pts, qx_all[torch.as_tensor(sided, device=Xs.device)], budget)
        to = np.array([side_of[g] for g in group[sided]])[best]
        own = group[pts] >= 0
        to[own] = [side_of[g] for g in group[pts][own]]
        ids = np.full(len(sides), p)
        ids[np.arange(len(sides)) != np.bincount(to, minlength=len(sides)).argmax()] = \
            np.arange(nxt, nxt + len(sides) - 1)
        nxt += len(sides) - 1
        labels[pts] = ids[to]
        for i, s in enumerate(sides):  # the groups' points stand as centers of their side
            rows = np.concatenate([spread(members[g]) for g in s])
            new_qc.append(qx_all[torch.as_tensor(rows, device=Xs.device)])
            new_cc.append(np.full(rows.size, ids[i]))
        split += 1
    if new_qc:
        qc = torch.cat([qc, *new_qc])
        cc = np.concatenate([cc, *new_cc])
    moved = _moved(found.labels, labels)
    on_t = torch.as_tensor(on, device=Xs.device)
    if not moved:
        return Honoured(found, landmarks, {"absorbed": 0, "noise_assigned": 0, "joined": 0, "split": 0,
                                           "relabelled": 0}, Xs[on_t].cpu().numpy(), found.labels[on])
    labels, cc = relabel_by_size(labels, cc)
    keep = cc != NOISE
    n_clusters = int(labels.max(initial=-1)) + 1
    centers = np.zeros((n_clusters, found.cluster_centers.shape[1]), dtype=found.cluster_centers.dtype)
    old_sizes = np.bincount(found.labels[found.labels != NOISE], minlength=found.n_clusters)
    for c in range(n_clusters):  # an unchanged cluster keeps its center; a changed one: the mean of its points
        rows = np.flatnonzero(labels == c)
        was = np.unique(found.labels[rows])
        if was.size == 1 and was[0] != NOISE and old_sizes[was[0]] == rows.size:
            centers[c] = found.cluster_centers[was[0]]
            continue
        rows_t = torch.as_tensor(rows, device=Xs.device)
        centers[c] = to_input(Xs[rows_t].mean(0, keepdim=True))[0].cpu().numpy()
    done = replace(found, labels=labels, center_embeddings=qc[torch.as_tensor(np.flatnonzero(keep), device=qc.device)],
                   center_cluster=cc[keep], cluster_centers=centers, n_clusters=n_clusters)
    if landmarks is not None and landmarks.index is not None:  # predict's vote follows the new labels
        landmarks = replace(landmarks, labels=labels[landmarks.index])
    else:  # predict assigns by the most confident center: it recalls the points whose label that would not give
        every = np.arange(labels.size)
        by_center = done.center_cluster[_most_confident(kernel, Xs, every, done.center_embeddings, memory_budget)]
        on = np.union1d(on, np.flatnonzero(by_center != labels))  # NOISE too: predict would label it
        on_t = torch.as_tensor(on, device=Xs.device)
    return Honoured(done, landmarks, {"absorbed": absorbed, "noise_assigned": noise_assigned, "joined": joined,
                                      "split": split, "relabelled": moved}, Xs[on_t].cpu().numpy(),
                    labels[on])


def recall(points: np.ndarray | None, point_labels: np.ndarray | None, Xs: torch.Tensor, labels: np.ndarray,
           distance: float, memory_budget: int) -> np.ndarray:
    """``labels`` (n,) of the prepared points ``Xs`` (n, c), where a point lies within ``distance`` of a
    side-information point of the fit (``points`` (m, c)), replaced by that point's label: what
    ``predict`` gives the training points agrees with the side information, whatever the vote says."""
    if points is None or not len(points):
        return labels
    P = torch.as_tensor(points, device=Xs.device, dtype=Xs.dtype)  # (m, c)
    # the search's |x|^2 - 2 x.y + |y|^2 leaves ~1e-3 where x == y in float32, enough to rank two
    # side-information points a hair apart the wrong way: of its nearest few, the nearest directly
    n, r, c = Xs.shape[0], min(_RECALL_CANDIDATES, P.shape[0]), Xs.shape[1]
    idx = torch.empty(n, dtype=torch.int64, device=Xs.device)
    exact = torch.empty(n, dtype=Xs.dtype, device=Xs.device)
    rows = max(1, int(memory_budget) // (Xs.element_size() * (P.shape[0] + 2 * r * c) + 12 * r))
    for s in range(0, n, rows):  # a tile's distances to P, then its (rows, r, c) differences
        near = knn(Xs[s:s + rows], P, r, int(memory_budget))[0]  # (rows, r)
        exact[s:s + rows], pick = (Xs[s:s + rows, None, :] - P[near]).norm(dim=2).min(1)
        idx[s:s + rows] = near.gather(1, pick[:, None])[:, 0]  # nearest recalled point
    hit = (exact <= distance).cpu().numpy()
    return np.where(hit, np.asarray(point_labels)[idx.cpu().numpy()], labels)
