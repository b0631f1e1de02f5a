"""Clusters from the Ward tree of the features, cut where it agrees best with the side information.

A kernel learns a task from its "same" pairs. When side information is thin (many groups
and a label or two in each: 5% of AR faces is about 70 images of 100 people, and only
about 25 pairs say "same") there is too little to learn from, and the kernel's clustering
joins groups the side information says differ. The features' own geometry often groups
such points far better, and the side information, too thin to train on, is enough to say
how finely to cut it.

:func:`tree_clusters` builds the Ward tree of the points (merges restricted to a
k-nearest-neighbour graph, as in :mod:`dmshift.novelty`) and cuts it where the pairwise
F1 on the side information is highest (:func:`pair_f1`: "same" pairs kept together,
"different" pairs kept apart), over every number of clusters; no k is given. Then the
side information is honoured: parts that share a group join, and a part that holds groups
known to differ is split among them, each point going to its nearest point with side
information.

:func:`whitening` gives the space in which faces are told apart by identity: the
principal components scaled to unit variance, so that the few directions of lighting and
expression, which carry most of the variance, no longer drown the many that carry identity
(nearest neighbour of the same identity on AR faces: 0.82 → 0.95). It is a candidate, not a default:
on digits, COIL or text the plain components are the better space, and the side
information decides between them (see ``DMSClustering(fallback=...)``).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from .kernels.base import DEFAULT_MEMORY_BUDGET
from .linalg import principal_axes
from .novelty import _pairs, first_best, joined_pairs, knn_ward_tree
from .smoothing import knn

__all__ = ["pair_f1", "tree_clusters", "whitening", "honour_side_info", "TreeCut"]


def pair_f1(labels: np.ndarray, group: np.ndarray, cannot: sp.spmatrix) -> tuple[float, float]:
    """Pairwise F1 of ``labels`` (n,) on the side information, and the number of "same" pairs.

    ``group`` (n,) is each point's side-information group (-1: none) and ``cannot``
    (G, G) which groups differ. A "same" pair is two points of one group, a "different"
    pair two points of groups known to differ; pairs of other points do not count. A pair
    is *together* when both points have one label other than NOISE (-1). F1 is
    ``2 TP / (2 TP + FP + FN)`` with TP the "same" pairs together, FN those apart and FP
    the "different" pairs together; 0.0 when there is no "same" pair.
    """
    labels = np.asarray(labels, dtype=np.int64)
    group = np.asarray(group, dtype=np.int64)
    n_groups, C, tot_same, _ = _pairs(group, cannot)
    if tot_same == 0:
        return 0.0, 0.0
    keep = (group >= 0) & (labels >= 0)
    lab = np.unique(labels[keep], return_inverse=True)[1].ravel()
    H = sp.csr_matrix((np.ones(lab.size), (lab, group[keep])), shape=(int(lab.max(initial=-1)) + 1, n_groups))
    together_same = float((H.multiply(H) - H).sum()) / 2
    together_diff = float(H.multiply(H @ C).sum()) / 2
    return 2 * together_same / (together_same + together_diff + tot_same), tot_same


def whitening(Xs: torch.Tensor) -> torch.Tensor:
    """Matrix W (d, c) such that ``Xs @ W`` are the principal components of ``Xs`` (n, d), each of unit variance.

    Directions with no variance (below 1e-9 of the largest) are dropped; the directions are
    those of :func:`dmshift.linalg.principal_axes` (signs fixed).
    """
    evals, evecs = principal_axes(Xs)
    keep = evals > 1e-9 * evals[0].clamp_min(1e-300)
    return (evecs[:, keep] / evals[keep].sqrt()).to(Xs.dtype)


class TreeCut:
    """What :func:`tree_clusters` returns: ``labels`` (n,), the pairwise ``f1`` on the side information at
    the cut (before honouring it), and the number of parts at the cut (``n_parts``)."""

    def __init__(self, labels: np.ndarray, f1: float, n_parts: int):
        self.labels, self.f1, self.n_parts = labels, f1, n_parts


def _parts_after(children: np.ndarray, n: int, n_merges: int) -> np.ndarray:
    """Part (0..k-1) of each of the n leaves once the first ``n_merges`` merges of ``children`` are made."""
    n_nodes = n + n_merges
    parent = np.full(n_nodes, -1, dtype=np.int64)
    parent[children[:n_merges].ravel()] = np.repeat(n + np.arange(n_merges), 2)
    root = np.arange(n_nodes)
    for v in range(n_nodes - 1, -1, -1):  # parents come after their children
        if parent[v] >= 0:
            root[v] = root[parent[v]]
    return np.unique(root[:n], return_inverse=True)[1].ravel()


def tree_clusters(Z: np.ndarray, idx: np.ndarray, group: np.ndarray, cannot: sp.spmatrix,
                  memory_budget: int = DEFAULT_MEMORY_BUDGET) -> TreeCut | None:
    """Ward tree of ``Z`` (n, d) over the k-NN graph ``idx`` (n, k), cut at the best pairwise F1.

    ``group`` (n,) and ``cannot`` (G, G) are the side information (see :func:`pair_f1`).
    The numbers of merges from the best one up to the next that joins side information
    score the same; the geometric middle of their numbers of parts is taken. The labels
    then honour the side information (:func:`honour_side_info`, its distance tiles within
    ``memory_budget`` bytes). None when the side information has no "same" or no "different" pair.
    """
    n = Z.shape[0]
    group = np.asarray(group, dtype=np.int64)
    _, _, tot_same, tot_diff = _pairs(group, cannot)
    if n < 3 or tot_same == 0 or tot_diff == 0:
        return None
    children, _ = knn_ward_tree(Z, idx)
    steps, same, diff, _, _ = joined_pairs(children, group, cannot)
    f1 = 2 * same / (same + diff + tot_same)
    i = first_best(f1)
    if i < 0:
        return None
    most = n - (steps[i] + 1)  # parts right after the best merge
    fewest = n - steps[i + 1] if i + 1 < steps.size else 1  # parts right before the next merge that counts
    k = int(round(np.sqrt(most * fewest)))
    labels = _parts_after(children, n, n - k)
    return TreeCut(honour_side_info(labels, Z, group, cannot, memory_budget), float(f1[i]), k)


def honour_side_info(labels: np.ndarray, Z: np.ndarray, group: np.ndarray, cannot: sp.spmatrix,
                     memory_budget: int = DEFAULT_MEMORY_BUDGET) -> np.ndarray:
    """Labels (n,) that keep "same" together and "different" apart: parts sharing a group join, and a part
    holding groups known to differ is split among its groups, each point to its nearest point (in ``Z``) with
    side information (one distance tile of ``memory_budget`` bytes at a time); numbered 0..k-1."""
    labels = np.asarray(labels, dtype=np.int64).copy()
    group = np.asarray(group, dtype=np.int64)
    on = np.flatnonzero(group >= 0)
    if not on.size:
        return labels
    # parts that hold one group are one part (union over the bipartite part-group graph)
    k = int(labels.max()) + 1
    G = int(group.max()) + 1
    A = sp.csr_matrix((np.ones(on.size), (labels[on], k + group[on])), shape=(k + G, k + G))
    _, comp = sp.csgraph.connected_components(A, directed=False)
    labels = np.unique(comp[labels], return_inverse=True)[1].ravel()
    C = sp.csr_matrix(cannot, dtype=bool)
    nxt = int(labels.max()) + 1
    for p in np.unique(labels[on]):
        members = np.flatnonzero(labels == p)
        sided = members[group[members] >= 0]
        gs = np.unique(group[sided])
        if gs.size < 2 or C[gs][:, gs].nnz == 0:
            continue
        Zm = torch.as_tensor(np.asarray(Z)[members], dtype=torch.float32)
        Zs = torch.as_tensor(np.asarray(Z)[sided], dtype=torch.float32)
        near = knn(Zm, Zs, 1, memory_budget)[0][:, 0].numpy()  # (m,) nearest point with side information
        own = group[sided][near]
        own[group[members] >= 0] = group[members][group[members] >= 0]
        for j, g in enumerate(gs):
            if j:
                labels[members[own == g]] = nxt
                nxt += 1
    return np.unique(labels, return_inverse=True)[1].ravel()
