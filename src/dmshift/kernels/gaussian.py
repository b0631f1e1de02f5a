"""Analytic kernels: classic mean shift (Gaussian and flat) in the same machinery.

These have nothing to learn; the embeddings are the identity and the confidence is a
function of the Euclidean distance, evaluated with the ``|x|^2 + |c|^2 - 2 x.c`` matrix
product rather than materialised differences. Each tile lives in one buffer: the matrix
product writes it and the profile is applied in place (the flat kernel is a single
comparison against a per-center threshold), so a tile costs one element per pair.
"""

from __future__ import annotations

import math

import torch

from .base import DEFAULT_MEMORY_BUDGET, PairwiseKernel, tile_sizes

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

    def _profile_(self, partial: torch.Tensor, cn: torch.Tensor, pn: torch.Tensor) -> torch.Tensor:
        """Confidences from ``partial = |x|^2 - 2 c.x`` (m, t), in place; ``cn`` (m,), ``pn`` (t,) squared norms."""
        return partial.copy_(self._profile(partial.add_(cn[:, None]).clamp_min_(0.0)))

    def confidence_from(self, px, qc):
        return self._profile(((px - qc) ** 2).sum(-1))

    def bytes_per_pair(self, px):
        return 2 * px.element_size()

    def _tile(self, px: torch.Tensor, qc: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Confidences (m, t) of centers ``qc`` (m, d) for points ``px`` (t, d) in one buffer."""
        pn = (px * px).sum(1)  # (t,)
        cn = (qc * qc).sum(1)  # (m,)
        if out is None:
            buf = torch.addmm(pn[None, :], qc, px.T, alpha=-2.0)  # (m, t)
        else:
            buf = torch.addmm(pn[None, :], qc, px.T, alpha=-2.0, out=out)
        return self._profile_(buf, cn, pn)

    def pairwise(self, px, qc, *, memory_budget=DEFAULT_MEMORY_BUDGET, out=None):
        """Confidences (M, n) of centers ``qc`` (M, d) for points ``px`` (n, d), tiled to ``memory_budget``."""
        M, n = qc.shape[0], px.shape[0]
        tm, tn = tile_sizes(M, n, px.element_size(), memory_budget)
        if tm == M and tn == n and (out is None or out.is_contiguous()):
            return self._tile(px, qc, out)
        if out is None:
            out = torch.empty((M, n), dtype=px.dtype, device=px.device)
        for i in range(0, M, tm):
            for j in range(0, n, tn):
                out[i:i + tm, j:j + tn] = self._tile(px[j:j + tn], qc[i:i + tm])
        return out


class GaussianKernel(_DistanceKernel):
    """K(x, c) = exp(-|x - c|^2 / (2 bandwidth^2))."""

    kind = "gaussian"

    def _profile(self, sq_dist):
        return torch.exp(-sq_dist / (2.0 * self.bandwidth**2))

    def _profile_(self, partial, cn, pn):
        return partial.add_(cn[:, None]).clamp_min_(0.0).mul_(-0.5 / self.bandwidth**2).exp_()

    @property
    def inlier_radius(self) -> float:
        return self.bandwidth * math.sqrt(2.0 * math.log(2.0))


class FlatKernel(_DistanceKernel):
    """K(x, c) = 1 if |x - c| <= bandwidth else 0 (scikit-learn's MeanShift kernel)."""

    kind = "flat"

    def _profile(self, sq_dist):
        return (sq_dist <= self.bandwidth**2).to(sq_dist.dtype)

    def _profile_(self, partial, cn, pn):
        # |x|^2 - 2 c.x <= h^2 - |c|^2, with slack for the expansion's rounding so that
        # a point at distance 0 (or exactly h) is not lost to cancellation; the slack is the
        # pair's own (4 eps (|x|^2 + |c|^2 + h^2)), so one far point does not widen every pair's
        eps = torch.finfo(partial.dtype).eps
        slack = 4 * eps * (cn + self.bandwidth**2)  # (m,)
        partial.sub_(4 * eps * pn[None, :])  # (m, t)
        return partial.le_((self.bandwidth**2 - cn + slack)[:, None])
