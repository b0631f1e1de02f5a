"""Principal axes of a point set, shared by DMS's projection and the whitening of :mod:`dmshift.treecut`."""

from __future__ import annotations

import torch

__all__ = ["principal_axes"]


def principal_axes(Xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Variances (d,) in decreasing order and principal directions (d, d), as columns, of the rows ``Xs`` (n, d).

    Computed from the (d, d) covariance of the centred rows in float64, a chunk of rows at a
    time; variances are clamped at 0; each direction's sign is fixed (largest entry
    positive), so results do not depend on the eigensolver. Both are float64.
    """
    n, d = Xs.shape
    mean = Xs.mean(0, dtype=torch.float64)
    cov = torch.zeros((d, d), dtype=torch.float64, device=Xs.device)
    step = max(1, (16 << 20) // (8 * d))  # rows per float64 chunk of about 16 MiB
    for j in range(0, n, step):
        C = Xs[j:j + step].double() - mean
        cov += C.T @ C
    cov /= max(n - 1, 1)  # (d, d)
    evals, evecs = torch.linalg.eigh(cov)
    evals, evecs = evals.flip(0).clamp_min(0), evecs.flip(1)  # decreasing variance
    sign = torch.sign(evecs.gather(0, evecs.abs().argmax(0, keepdim=True)))  # (1, d)
    return evals, evecs * torch.where(sign == 0, 1.0, sign)
