"""Clustering losses on softmax outputs: pairwise KCL and MCL, and the unsupervised DDC loss.

* :func:`kcl_loss`: the symmetric, hinged pairwise KL divergence of Hsu & Kira (2016),
  eqs. 1-3, with the target side of each KL detached as in eqs. 4-5.
* :func:`mcl_loss`: the meta classification likelihood of Hsu et al. (2019): the
  probability that two points share a cluster is ``s = sum_k p_ik p_jk``; the loss is the
  binary cross-entropy of ``s`` against the pair's relation.
* :func:`ddc_loss`: eq. 4 of Kampffmeyer et al. (DDC): Cauchy-Schwarz divergence of the
  soft assignments over a Gaussian kernel on the hidden layer, the orthogonality term
  ``triu(A A^T)`` and the simplex-corner term.
* :func:`dms_loss`: eq. 3 of the DMS paper, the binary cross-entropy of the kernel's
  logits after the last training shift step against an instance's labelled points.

Pairwise losses read a (B, B) relation matrix over a mini-batch, as given by
:meth:`dmshift.constraints.SideInfo.same_matrix`: 1 same, 0 different, -1 unknown. Each
point is fed forward once and the pairs are enumerated here, in the cost layer (KCL §2.2).
Unknown pairs and the diagonal are masked out, never read as a label. The losses know
nothing of networks or data; they follow the device and dtype of their inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["dms_loss", "kcl_loss", "mcl_loss", "BANDWIDTHS", "gaussian_kernel_matrix", "cauchy_schwarz_similarity", "ddc_loss_terms",
           "ddc_loss"]

SAME, DIFFERENT, UNKNOWN = 1, 0, -1


def _known_offdiag(same: torch.Tensor) -> torch.Tensor:
    """(B, B) bool: pairs with a known relation, the diagonal excluded."""
    known = same != UNKNOWN
    return known & ~torch.eye(same.shape[0], dtype=torch.bool, device=same.device)


def kcl_loss(logits: torch.Tensor, same: torch.Tensor, *, margin: float = 2.0) -> torch.Tensor:
    """KL-divergence contrastive loss (KCL eqs. 1-3), averaged over the known pairs of a batch.

    For a pair with outputs P, Q: ``L = loss(P* || Q) + loss(Q* || P)`` where
    ``loss(P* || Q)`` is ``KL(P* || Q)`` for a same pair and ``max(0, margin - KL(P* || Q))``
    for a different pair, and ``*`` marks a side held constant (detached), which gives
    the gradients of eqs. 4-5.

    Parameters
    ----------
    logits : Tensor of shape (B, K)
        Pre-softmax outputs, one row per point of the mini-batch.
    same : Tensor of shape (B, B)
        Symmetric relation matrix: 1 same, 0 different, -1 unknown (masked out).
    margin : float, default=2.0
        Hinge margin for different pairs (the paper's value).

    Returns
    -------
    Tensor of shape ()
        Mean of ``L`` over the known unordered pairs {i, j}, i != j (0 if there are none).
    """
    logp = F.log_softmax(logits, dim=1)  # (B, K)
    p_t = logp.exp().detach()  # (B, K) target side, constant
    neg_entropy = (p_t * logp.detach()).sum(1)  # (B,) sum_k P*_k log P*_k
    kl = neg_entropy[:, None] - p_t @ logp.T  # (B, B) kl[i, j] = KL(P*_i || P_j), gradient through P_j only
    mask = _known_offdiag(same)
    per = torch.where(same == SAME, kl, F.relu(margin - kl))  # (B, B) loss(P*_i || P_j)
    n_pairs = mask.sum() / 2  # each unordered pair appears as (i, j) and (j, i): eq. 3 sums both
    return (per * mask).sum() / n_pairs.clamp_min(1)


def mcl_loss(logits: torch.Tensor, same: torch.Tensor, *, eps: float = 1e-7) -> torch.Tensor:
    """Meta classification likelihood (MCL), averaged over the known pairs of a batch.

    With ``s_ij = sum_k p_ik p_jk`` the loss of a pair is ``-log s_ij`` if it is a same pair
    and ``-log(1 - s_ij)`` if it is a different pair.

    Parameters
    ----------
    logits : Tensor of shape (B, K)
    same : Tensor of shape (B, B)
        1 same, 0 different, -1 unknown (masked out).
    eps : float, default=1e-7
        ``s`` is clipped to ``[eps, 1 - eps]`` so the logarithms stay finite.

    Returns
    -------
    Tensor of shape ()
        Mean over the known unordered pairs {i, j}, i != j (0 if there are none).
    """
    p = F.softmax(logits, dim=1)  # (B, K)
    s = (p @ p.T).clamp(eps, 1.0 - eps)  # (B, B) probability that i and j share a cluster
    per = torch.where(same == SAME, -torch.log(s), -torch.log1p(-s))  # (B, B)
    mask = torch.triu(_known_offdiag(same), diagonal=1)
    return (per * mask).sum() / mask.sum().clamp_min(1)


BANDWIDTHS = ("distance", "squared")


def gaussian_kernel_matrix(h: torch.Tensor, *, rel_sigma: float = 0.15, bandwidth: str = "distance",
                           min_sigma: float = 1e-9) -> torch.Tensor:
    """Gaussian kernel over the rows of ``h``, bandwidth from this batch's median distance (DDC §4.6).

    ``K_ij = exp(-||h_i - h_j||^2 / (2 sigma^2))``, sigma recomputed at each call from the
    pairs i < j and held constant for the gradient.

    Parameters
    ----------
    h : Tensor of shape (B, D)
    rel_sigma : float, default=0.15
    bandwidth : {"distance", "squared"}, default="distance"
        "distance": ``sigma = rel_sigma * median ||h_i - h_j||``, the paper's wording.
        "squared": ``sigma^2 = rel_sigma * median ||h_i - h_j||^2``, as in the later PyTorch
        code of the DDC authors' group; a wider kernel (sigma about 0.39 of the median distance).

    Returns
    -------
    Tensor of shape (B, B)
    """
    sq = h.pow(2).sum(1)  # (B,)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * h @ h.T).clamp_min(0.0)  # (B, B) squared distances
    iu = torch.triu_indices(h.shape[0], h.shape[0], offset=1, device=h.device)
    if iu.shape[1]:
        pair_d2 = d2.detach()[iu[0], iu[1]]
        var = (rel_sigma * pair_d2.sqrt().median()) ** 2 if bandwidth == "distance" else rel_sigma * pair_d2.median()
    else:
        var = d2.new_tensor(1.0)
    var = var.clamp_min(min_sigma * min_sigma)  # sigma^2
    return torch.exp(-d2 / (2.0 * var))


def cauchy_schwarz_similarity(A: torch.Tensor, K: torch.Tensor, *, eps: float = 1e-9) -> torch.Tensor:
    """Mean over cluster pairs i < j of ``a_i^T K a_j / sqrt(a_i^T K a_i  a_j^T K a_j)`` (DDC eq. 3).

    Parameters
    ----------
    A : Tensor of shape (B, C)
        Soft assignment of each point to each cluster (columns ``a_i``).
    K : Tensor of shape (B, B)
        Kernel matrix.

    Returns
    -------
    Tensor of shape ()
        ``exp(-D_cs)``: small when clusters are compact and far apart.
    """
    C = A.shape[1]
    if C < 2:
        return A.sum() * 0.0  # one cluster: no pair of clusters to compare
    nom = (A.T @ K @ A).clamp_min(eps)  # (C, C)
    diag = torch.diagonal(nom)
    cs = nom / torch.sqrt((diag[:, None] * diag[None, :]).clamp_min(eps * eps))  # (C, C)
    return torch.triu(cs, diagonal=1).sum() * (2.0 / (C * (C - 1)))


def ddc_loss_terms(hidden: torch.Tensor, prob: torch.Tensor, *, rel_sigma: float = 0.15, bandwidth: str = "distance"
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The three terms of DDC eq. 4 on one mini-batch.

    Parameters
    ----------
    hidden : Tensor of shape (B, D)
        Last hidden layer before the output layer (where the kernel is computed).
    prob : Tensor of shape (B, C)
        Softmax cluster assignments ``A``.
    rel_sigma : float, default=0.15
    bandwidth : {"distance", "squared"}, default="distance"
        See :func:`gaussian_kernel_matrix`.

    Returns
    -------
    d_hid_alpha, orthogonality, d_hid_m : three Tensors of shape ()
        ``d_hid_alpha``: :func:`cauchy_schwarz_similarity` of ``A`` under the hidden kernel;
        ``orthogonality``: the mean of the strictly upper-triangular entries of ``A A^T``;
        ``d_hid_m``: the same similarity with ``m_qi = exp(-||alpha_q - e_i||^2)``
        (closeness to the simplex corners) in place of ``A``.

    Notes
    -----
    The cluster-pair average is ``2 / (C (C - 1))`` (the paper's eq. 3 writes ``1 / C``) and
    ``triu(A A^T)`` is averaged over the B (B - 1) / 2 point pairs rather than summed, so
    the three terms stay on one scale whatever B and C are; this follows the loss code of
    the DDC authors' group.
    """
    B, C = prob.shape
    K = gaussian_kernel_matrix(hidden, rel_sigma=rel_sigma, bandwidth=bandwidth)  # (B, B)
    d_alpha = cauchy_schwarz_similarity(prob, K)
    orth = torch.triu(prob @ prob.T, diagonal=1).sum() * (2.0 / max(B * (B - 1), 1))
    # ||alpha_q - e_i||^2 = ||alpha_q||^2 - 2 alpha_qi + 1
    m = torch.exp(-(prob.pow(2).sum(1, keepdim=True) - 2.0 * prob + 1.0))  # (B, C)
    d_m = cauchy_schwarz_similarity(m, K)
    return d_alpha, orth, d_m


def ddc_loss(hidden: torch.Tensor, prob: torch.Tensor, *, rel_sigma: float = 0.15,
             bandwidth: str = "distance") -> torch.Tensor:
    """DDC eq. 4: ``d_hid_alpha + triu(A A^T) + d_hid_m`` (see :func:`ddc_loss_terms`)."""
    d_alpha, orth, d_m = ddc_loss_terms(hidden, prob, rel_sigma=rel_sigma, bandwidth=bandwidth)
    return d_alpha + orth + d_m


def dms_loss(logits: torch.Tensor, tgt: torch.Tensor, tgt_all: torch.Tensor | None = None,
             balance: str = "none") -> torch.Tensor:
    """Eq. 3 of DMS on the labelled points of ``tgt``, normalised by the counts of ``tgt_all``.

    ``logits`` (b, L) are the kernel's logits of some of a batch's instances, ``tgt``
    (b, L) their targets (1 same, 0 different, -1 unlabelled) and ``tgt_all`` (B, L) those
    of the whole batch (default: the same), so the losses of the parts of a batch add up
    to the loss of the whole batch (data-parallel training relies on it). ``balance``
    "none" is the mean over labelled points; "balanced" averages the positive and negative
    terms with equal weight.
    """
    tgt_all = tgt if tgt_all is None else tgt_all
    per = F.binary_cross_entropy_with_logits(logits, tgt.clamp_min(0.0), reduction="none")  # (b, L)
    lab, lab_all = tgt >= 0, tgt_all >= 0
    if balance == "balanced":
        pos, neg = lab & (tgt > 0.5), lab & (tgt < 0.5)
        n_pos = (lab_all & (tgt_all > 0.5)).sum().clamp_min(1)
        n_neg = (lab_all & (tgt_all < 0.5)).sum().clamp_min(1)
        return 0.5 * ((per * pos).sum() / n_pos + (per * neg).sum() / n_neg)
    return (per * lab).sum() / lab_all.sum().clamp_min(1)
