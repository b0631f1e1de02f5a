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

__all__ = ["SIMILARITIES", "confidence_matrix", "sinkhorn", "center_similarity", "center_similarity_tiled",
           "similarity_sums", "similarity_from_sums", "merge_centers",
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


@torch.no_grad()
def similarity_sums(kernel: PairwiseKernel, px: torch.Tensor, qc: torch.Tensor, similarity: str,
                    memory_budget: int = DEFAULT_MEMORY_BUDGET) -> torch.Tensor:
    """The sums over points that ``"cosine"`` or ``"jaccard"`` needs, without holding ``H`` whole.

    Returns ``H Hᵀ`` (M, M) for cosine, and for Jaccard the inlier overlaps with the inlier
    counts as an extra column (M, M + 1); float64. ``H`` is evaluated in tiles of points
    that fit ``memory_budget``, and sums over disjoint sets of points add up, so shards of
    the points (one per process) can each call this and add the results.
    """
    if similarity not in ("cosine", "jaccard"):
        raise ValueError(f"The 'similarity' parameter must be 'cosine' or 'jaccard' for sums over points. "
                         f"Got {similarity!r} instead.")
    M, n = qc.shape[0], px.shape[0]
    G = torch.zeros((M, M + (similarity == "jaccard")), dtype=torch.float64, device=px.device)
    _, tn = tile_sizes(M, n, kernel.bytes_per_pair(px) + 12, memory_budget)  # + H and its float64 copy
    for j in range(0, n, tn):
        H = kernel.pairwise(px[j:j + tn], qc, memory_budget=memory_budget)  # (M, tn)
        if similarity == "jaccard":
            B = (H > kernel.inlier_threshold).double()
            G[:, :M] += B @ B.T
            G[:, M] += B.sum(1)
        else:
            Hd = H.double()
            G += Hd @ Hd.T
    return G


def similarity_from_sums(G: torch.Tensor, similarity: str) -> torch.Tensor:
    """Center similarity (M, M) from :func:`similarity_sums` (or ``H̃ H̃ᵀ`` for the Sinkhorn kinds)."""
    M = G.shape[0]
    if similarity == "jaccard":
        inter, size = G[:, :M], G[:, M]
        union = size[:, None] + size[None, :] - inter
        return torch.where(union > 0, inter / union.clamp_min(1.0), torch.eye(M, dtype=G.dtype, device=G.device))
    if similarity == "bistochastic":
        return G
    return _cosine(G)


@torch.no_grad()
def center_similarity_tiled(kernel: PairwiseKernel, px: torch.Tensor, qc: torch.Tensor, similarity: str = "cosine",
                            memory_budget: int = DEFAULT_MEMORY_BUDGET) -> torch.Tensor:
    """:func:`center_similarity` of the confidences of centers ``qc`` on points ``px``.

    Cosine and Jaccard are accumulated tile by tile over the points, so memory stays
    within ``memory_budget`` plus the (M, M) result for any number of points. The
    Sinkhorn similarities scale whole rows and columns and need the (M, n) matrix.
    """
    if similarity in ("cosine", "jaccard"):
        return similarity_from_sums(similarity_sums(kernel, px, qc, similarity, memory_budget), similarity)
    H = confidence_matrix(kernel, px, qc, memory_budget)
    return center_similarity(H, similarity, kernel.inlier_threshold)


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
    # groups that some group of a component is known to differ from
    forbid: dict[int, set] = {i: (set(cannot.indices[cannot.indptr[g]:cannot.indptr[g + 1]].tolist()) if g >= 0
                                  else set()) for i, g in enumerate(center_group)}

    def union(a, b):
        if len(groups[a]) < len(groups[b]):
            a, b = b, a
        parent[b] = a
        groups[a] |= groups.pop(b)
        forbid[a] |= forbid.pop(b)

    first: dict[int, int] = {}
    for i, g in enumerate(center_group):  # one component per group
        if g < 0:
            continue
        if g in first:
            a, b = root(first[g]), root(i)
            if a != b:
                union(a, b)
        else:
            first[g] = i
    Sn = S.double().cpu().numpy()
    iu, ju = np.nonzero(np.triu(Sn >= threshold, 1))
    for k in np.argsort(-Sn[iu, ju], kind="stable"):
        a, b = root(iu[k]), root(ju[k])
        if a == b or groups[a] & forbid[b]:
            continue
        union(a, b)
    comp = np.array([root(i) for i in range(M)])
    return np.unique(comp, return_inverse=True)[1].astype(np.int64)


@dataclass
class Assignment:
    labels: np.ndarray  # (n,) cluster id or NOISE
    confidence: np.ndarray  # (n,) confidence of the chosen center
    best_center: np.ndarray  # (n,) index of the most confident center


@torch.no_grad()
def assign(kernel: PairwiseKernel, px: torch.Tensor, qc: torch.Tensor, center_cluster: np.ndarray,
           noise_threshold: float, memory_budget: int = DEFAULT_MEMORY_BUDGET, *, embedded: bool = True) -> Assignment:
    """Each point to the cluster of its most confident center, NOISE below ``noise_threshold``.

    ``center_cluster`` (M,) maps centers to cluster ids. Tiled over points. With
    ``embedded=False``, ``px`` (n, d) are the kernel's input points and each tile is
    embedded on the fly, so no (n, h) embedding is ever held. Raises a ValueError where a
    confidence is NaN (never a label or confidence computed from it).
    """
    n, M = px.shape[0], qc.shape[0]
    conf = torch.empty(n, dtype=px.dtype, device=px.device)
    best = torch.empty(n, dtype=torch.int64, device=px.device)
    _, tn = tile_sizes(M, n, kernel.bytes_per_pair(px), memory_budget)
    for j in range(0, n, tn):
        p = px[j:j + tn] if embedded else kernel.embed_points(px[j:j + tn])  # (tn, h)
        H = kernel.pairwise(p, qc, memory_budget=memory_budget)  # (M, tn)
        c, b = H.max(0)
        conf[j:j + tn] = c
        best[j:j + tn] = b
    conf_np = conf.float().cpu().numpy()
    bad = np.flatnonzero(np.isnan(conf_np))
    if bad.size:  # a NaN confidence would label the point with whichever center argmax met first
        raise ValueError(f"The kernel's confidence is NaN for {bad.size} of {n} points (first: row {bad[0]}): "
                         "their standardised values overflow the kernel's float arithmetic, or the model's "
                         "weights are not finite. Check X for extreme values.")
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
