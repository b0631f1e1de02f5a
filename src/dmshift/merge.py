"""From converged centers to clusters: confidence matrix, center similarity, merging, labels.

Given center embeddings, the confidence matrix ``H[r, c] = K(x_c, center_r)`` is
evaluated in tiles over points. Centers are compared through a similarity ``S`` of
their rows of ``H``; ``S >= threshold`` links centers and the connected components are
the clusters. Each point goes to the cluster of its most confident center, or to
``NOISE`` when no center is confident enough.

Similarities (``similarity=``):

``"cosine"`` (default)
    ``S_ij = <H_i, H_j> / (|H_i| |H_j|)``: the DMS paper's ``H Hᵀ`` rescaled by its
    diagonal, so that identical inlier profiles score 1 whatever the cluster size.
``"bistochastic"``
    The paper read literally: ``H̃`` is ``H`` scaled by Sinkhorn iterations to equal row
    sums (1) and equal column sums, and ``S = H̃ H̃ᵀ``. Its entries are near
    1/cluster-size, so a fixed threshold rarely links anything.
``"bistochastic-cosine"``
    Sinkhorn first, then the cosine of the rows of ``H̃``.
``"jaccard"``
    Overlap of the binarised inlier sets, ``|A ∩ B| / |A ∪ B|``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components

from .constants import NOISE
from .kernels.base import DEFAULT_MEMORY_BUDGET, PairwiseKernel, tile_sizes

__all__ = ["SIMILARITIES", "confidence_matrix", "sinkhorn", "center_similarity", "merge_centers",
           "merge_constrained", "assign", "Assignment"]

SIMILARITIES = ("cosine", "bistochastic", "bistochastic-cosine", "jaccard")


@torch.no_grad()
def confidence_matrix(kernel: PairwiseKernel, px: torch.Tensor, qc: torch.Tensor,
                      memory_budget: int = DEFAULT_MEMORY_BUDGET) -> torch.Tensor:
    """``H`` of shape (M, n): the confidence of every center for every point."""
    return kernel.pairwise(px, qc, memory_budget=memory_budget)


def sinkhorn(H: torch.Tensor, n_iter: int = 50, eps: float = 1e-12) -> torch.Tensor:
    """Scale rows and columns of a non-negative (M, n) matrix to row sums 1 and column sums M/n."""
    M, n = H.shape
    A = H.double() + eps
    for _ in range(n_iter):
        A = A / A.sum(1, keepdim=True)
        A = A * ((M / n) / A.sum(0, keepdim=True))
    return A.to(H.dtype)


def _cosine(G: torch.Tensor) -> torch.Tensor:
    d = torch.sqrt(torch.diagonal(G).clamp_min(1e-30))
    return G / d[:, None] / d[None, :]


def center_similarity(H: torch.Tensor, similarity: str = "cosine", inlier_threshold: float = 0.5) -> torch.Tensor:
    """Similarity (M, M) between centers from their rows of ``H`` (see the module docstring)."""
    if similarity == "cosine":
        Hd = H.double()
        return _cosine(Hd @ Hd.T)
    if similarity == "bistochastic":
        Ht = sinkhorn(H).double()
        return Ht @ Ht.T
    if similarity == "bistochastic-cosine":
        Ht = sinkhorn(H).double()
        return _cosine(Ht @ Ht.T)
    if similarity == "jaccard":
        B = (H > inlier_threshold).double()
        inter = B @ B.T
        size = B.sum(1)
        union = size[:, None] + size[None, :] - inter
        return torch.where(union > 0, inter / union.clamp_min(1.0), torch.eye(H.shape[0], dtype=B.dtype, device=B.device))
    raise ValueError(f"The 'similarity' parameter must be one of {SIMILARITIES}. Got {similarity!r} instead.")


def merge_centers(S: torch.Tensor, threshold: float) -> np.ndarray:
    """Component id (M,) of each center in the graph ``S >= threshold``."""
    A = (S >= threshold).cpu().numpy()
    np.fill_diagonal(A, True)
    _, comp = connected_components(sp.csr_matrix(A), directed=False)
    return comp.astype(np.int64)


def merge_constrained(S: torch.Tensor, threshold: float, center_group: np.ndarray, cannot) -> np.ndarray:
    """Component id (M,) of each center: ``S >= threshold`` links, under side information.

    ``center_group`` (M,) gives the side-information group of a center (-1: none) and
    ``cannot`` (G, G) which groups are known to differ. Centers of one group start in one
    component; links are then taken from the most to the least similar, and a link that
    would put two groups known to differ in one component is skipped. With no group on
    any center this is :func:`merge_centers`.
    """
    M = S.shape[0]
    center_group = np.asarray(center_group, dtype=np.int64)
    cannot = sp.csr_matrix(cannot, dtype=bool)
    parent = np.arange(M)

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    groups: dict[int, set] = {i: ({int(g)} if g >= 0 else set()) for i, g in enumerate(center_group)}
    first: dict[int, int] = {}
    for i, g in enumerate(center_group):  # one component per group
        if g < 0:
            continue
        if g in first:
            r = root(first[g])
            if r != i:
                parent[i] = r
                groups[r] |= groups.pop(i)
        else:
            first[g] = i
    Sn = S.double().cpu().numpy()
    iu, ju = np.nonzero(np.triu(Sn >= threshold, 1))
    for k in np.argsort(-Sn[iu, ju], kind="stable"):
        a, b = root(iu[k]), root(ju[k])
        if a == b:
            continue
        ga, gb = groups[a], groups[b]
        if ga and gb and any(cannot[g].indices.size and np.isin(cannot[g].indices, list(gb)).any() for g in ga):
            continue
        if len(ga) < len(gb):
            a, b, ga, gb = b, a, gb, ga
        parent[b] = a
        ga |= groups.pop(b)
    comp = np.array([root(i) for i in range(M)])
    return np.unique(comp, return_inverse=True)[1].astype(np.int64)


@dataclass
class Assignment:
    labels: np.ndarray  # (n,) cluster id or NOISE
    confidence: np.ndarray  # (n,) confidence of the chosen center
    best_center: np.ndarray  # (n,) index of the most confident center


@torch.no_grad()
def assign(kernel: PairwiseKernel, px: torch.Tensor, qc: torch.Tensor, center_cluster: np.ndarray,
           noise_threshold: float, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> Assignment:
    """Each point to the cluster of its most confident center, NOISE below ``noise_threshold``.

    ``center_cluster`` (M,) maps centers to cluster ids. Tiled over points.
    """
    n, M = px.shape[0], qc.shape[0]
    conf = torch.empty(n, dtype=px.dtype, device=px.device)
    best = torch.empty(n, dtype=torch.int64, device=px.device)
    _, tn = tile_sizes(M, n, kernel.bytes_per_pair(px), memory_budget)
    for j in range(0, n, tn):
        H = kernel.pairwise(px[j:j + tn], qc, memory_budget=memory_budget)  # (M, tn)
        c, b = H.max(0)
        conf[j:j + tn] = c
        best[j:j + tn] = b
    conf_np = conf.float().cpu().numpy()
    best_np = best.cpu().numpy()
    labels = np.asarray(center_cluster, dtype=np.int64)[best_np]
    labels[conf_np < noise_threshold] = NOISE
    return Assignment(labels=labels, confidence=conf_np, best_center=best_np)


def relabel_by_size(labels: np.ndarray, center_cluster: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber clusters 0..k-1 by decreasing size; clusters with no point are dropped (-1)."""
    valid = labels[labels != NOISE]
    ids, counts = np.unique(valid, return_counts=True)
    order = ids[np.lexsort((ids, -counts))]
    mapping = np.full(int(max(center_cluster.max(initial=-1), labels.max(initial=-1))) + 2, NOISE, dtype=np.int64)
    mapping[order] = np.arange(order.size)
    new_labels = np.where(labels == NOISE, NOISE, mapping[np.maximum(labels, 0)])
    new_cc = mapping[center_cluster]
    return new_labels, new_cc
