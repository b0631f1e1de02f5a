"""The concatenation kernel of the DMS paper (Table 1).

``concat(x, c)`` is read as a 2 x N image; a 2 x 1 convolution with ``channels`` filters
gives ``a_k x + b_k c + beta_k`` per filter, then the same MLP as the subtraction kernel.
No nonlinearity follows the convolution (Table 1 lists none), so the first fully
connected layer still splits into a point part and a center part.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import LearnedKernel

__all__ = ["ConcatKernel"]


class ConcatKernel(LearnedKernel):
    """K(x, c) = sigmoid(MLP(conv2x1(concat(x, c)))).

    Parameters
    ----------
    n_features : int
    hidden : tuple of int
    channels : int, default=1
        Filters of the 2 x 1 convolution (the paper's output width N means one filter).
    activation : str
    dropout : float
    """

    kind = "concat"

    def __init__(self, n_features: int, hidden: tuple[int, ...], channels: int = 1,
                 activation: str = "relu", dropout: float = 0.0):
        super().__init__(n_features, hidden, activation, dropout)
        self.channels = int(channels)
        # conv weight (channels, 1, 2, 1): row 0 multiplies x, row 1 multiplies c
        self.conv = nn.Conv2d(1, self.channels, kernel_size=(2, 1))
        with torch.no_grad():  # start near the subtraction kernel: a = 1, b = -1
            self.conv.weight[:, 0, 0, 0].normal_(1.0, 0.1)
            self.conv.weight[:, 0, 1, 0].normal_(-1.0, 0.1)
            self.conv.bias.zero_()
        self.first = nn.Linear(self.channels * n_features, self.first_width)

    @torch.no_grad()
    def init_distance_prior(self, X, **kwargs):
        # exact subtraction in every filter, then the subtraction kernel's prior
        self.conv.weight[:, 0, 0, 0] = 1.0
        self.conv.weight[:, 0, 1, 0] = -1.0
        self.conv.bias.zero_()
        super().init_distance_prior(X, **kwargs)

    def _first_weight(self):
        # all filters compute x - c, so pairing rows over the whole (h, C*N) weight keeps |u|
        return self.first.weight

    def _split_first(self):
        W = self.first.weight.view(self.first_width, self.channels, self.n_features)  # (h, C, N)
        a = self.conv.weight[:, 0, 0, 0]  # (C,)
        b = self.conv.weight[:, 0, 1, 0]  # (C,)
        Wa = torch.einsum("hcn,c->hn", W, a)  # (h, N)
        Wb = torch.einsum("hcn,c->hn", W, b)  # (h, N)
        shift = torch.einsum("hcn,c->h", W, self.conv.bias) + self.first.bias  # (h,)
        return Wa, Wb, shift

    def embed_points(self, x: torch.Tensor) -> torch.Tensor:
        Wa, _, shift = self._split_first()
        return x @ Wa.T + shift  # (..., h)

    def embed_centers(self, x: torch.Tensor) -> torch.Tensor:
        _, Wb, _ = self._split_first()
        return x @ Wb.T  # (..., h)

    def naive_logit(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        x, c = torch.broadcast_tensors(x, c)
        lead = x.shape[:-1]
        img = torch.stack([x, c], dim=-2).reshape(-1, 1, 2, self.n_features)  # (P, 1, 2, N)
        y = self.conv(img).reshape(*lead, self.channels * self.n_features)  # (..., C*N)
        pre = self.first(y)
        return pre[..., 0] if not self.hidden else self.head(pre)[..., 0]
