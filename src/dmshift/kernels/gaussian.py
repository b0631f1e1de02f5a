"""Analytic kernels: classic mean shift (Gaussian and flat) in the same machinery.

These have nothing to learn; the embeddings are the identity and the confidence is a
function of the Euclidean distance, evaluated with the ``|x|^2 + |c|^2 - 2 x.c`` matrix
product rather than materialised differences.
"""

from __future__ import annotations

import math

import torch

from .base import PairwiseKernel

__all__ = ["GaussianKernel", "FlatKernel"]


class _DistanceKernel(PairwiseKernel):
    def __init__(self, bandwidth: float):
        super().__init__()
        self.bandwidth = float(bandwidth)

    def embed_points(self, x):
        return x

    def embed_centers(self, x):
        return x

    def _profile(self, sq_dist: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def confidence_from(self, px, qc):
        return self._profile(((px - qc) ** 2).sum(-1))

    def bytes_per_pair(self, px):
        return 2 * px.element_size()

    def pairwise(self, px, qc, *, memory_budget=None, out=None):
        # (M, n) squared distances by the matrix-product expansion, clamped at 0
        sq = (qc * qc).sum(1, keepdim=True) + (px * px).sum(1)[None, :] - 2.0 * qc @ px.T
        K = self._profile(sq.clamp_min_(0.0))
        if out is not None:
            out.copy_(K)
            return out
        return K


class GaussianKernel(_DistanceKernel):
    """K(x, c) = exp(-|x - c|^2 / (2 bandwidth^2))."""

    kind = "gaussian"

    def _profile(self, sq_dist):
        return torch.exp(-sq_dist / (2.0 * self.bandwidth**2))

    @property
    def inlier_radius(self) -> float:
        return self.bandwidth * math.sqrt(2.0 * math.log(2.0))


class FlatKernel(_DistanceKernel):
    """K(x, c) = 1 if |x - c| <= bandwidth else 0 (scikit-learn's MeanShift kernel)."""

    kind = "flat"

    def _profile(self, sq_dist):
        return (sq_dist <= self.bandwidth**2).to(sq_dist.dtype)
