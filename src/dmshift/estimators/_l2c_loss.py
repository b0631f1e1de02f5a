"""The loss of Learning to Cluster: pair probabilities from set clusterings, L_cc + λ L_ca."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["pair_same_probability", "l2c_loss"]

_EPS = 1e-7


def pair_same_probability(assign: torch.Tensor, count_proba: torch.Tensor) -> torch.Tensor:
    """P_ij = sum_k P(k) sum_l P(l|x_i,k) P(l|x_j,k).

    Parameters
    ----------
    assign : Tensor of shape (B, n, K, K)
        ``assign[b, i, k-1, l] = P(l | x_i, k)`` (zero for l >= k).
    count_proba : Tensor of shape (B, K)

    Returns
    -------
    Tensor of shape (B, n, n)
    """
    return torch.einsum("bk,bikl,bjkl->bij", count_proba, assign, assign)


def l2c_loss(assign: torch.Tensor, count_logits: torch.Tensor, same: torch.Tensor, n_true: torch.Tensor,
             assignment_weight: float = 5.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The paper's loss L_cc + λ L_ca on a batch of sets.

    Parameters
    ----------
    assign : Tensor of shape (B, n, K, K)
    count_logits : Tensor of shape (B, K)
    same : Tensor of shape (B, n, n)
        1 where two points are in the same cluster, 0 where they differ.
    n_true : Tensor of shape (B,)
        True number of clusters of each set, in 1..K.
    assignment_weight : float
        λ.

    Returns
    -------
    total, l_ca, l_cc : scalar Tensors
        L_ca is the weighted binary cross-entropy over pairs i < j, with weights
        φ1 = c sqrt(1 - φ) for same pairs and φ2 = c sqrt(φ) for different pairs, φ the
        share of same pairs in the batch and c normalising φ1 + φ2 to 2; L_cc is the
        cross-entropy of P(k).
    """
    n = assign.shape[1]
    P = pair_same_probability(assign, count_logits.softmax(-1))  # (B, n, n)
    i, j = torch.triu_indices(n, n, 1, device=assign.device)
    p = P[:, i, j].clamp(_EPS, 1 - _EPS)  # (B, n(n-1)/2)
    y = same[:, i, j].to(p.dtype)
    phi = float(y.mean().clamp(0.01, 0.99)) if y.numel() else 0.5
    w1, w2 = math.sqrt(1 - phi), math.sqrt(phi)
    c = 2.0 / (w1 + w2)
    l_ca = -(c * w1 * y * p.log() + c * w2 * (1 - y) * (1 - p).log()).mean() if y.numel() else p.sum() * 0
    l_cc = F.cross_entropy(count_logits, n_true - 1)
    return l_cc + assignment_weight * l_ca, l_ca, l_cc
