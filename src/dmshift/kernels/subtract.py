"""The subtraction kernel of the DMS paper (Table 1): an MLP on ``x - c`` and a sigmoid.

The first layer is factorised, ``W1 (x - c) + b1 = (W1 x + b1) - W1 c``, so each point
is projected once and each mean-shift step only moves center embeddings.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import LearnedKernel

__all__ = ["SubtractKernel"]


class SubtractKernel(LearnedKernel):
    """K(x, c) = sigmoid(MLP(x - c)).

    Parameters
    ----------
    n_features : int
        Input dimension N.
    hidden : tuple of int
        Widths of the hidden fully connected layers (paper: N/2, N/4).
    activation : str
    dropout : float
    """

    kind = "subtract"

    def __init__(self, n_features: int, hidden: tuple[int, ...], activation: str = "relu", dropout: float = 0.0):
        super().__init__(n_features, hidden, activation, dropout)
        self.first = nn.Linear(n_features, self.first_width)

    def embed_points(self, x: torch.Tensor) -> torch.Tensor:
        return self.first(x)  # (..., h)

    def embed_centers(self, x: torch.Tensor) -> torch.Tensor:
        return -(x @ self.first.weight.T)  # (..., h)

    def naive_logit(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        pre = self.first(x - c)
        return pre[..., 0] if not self.hidden else self.head(pre)[..., 0]
