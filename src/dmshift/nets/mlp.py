"""``MLP``: a fully connected feature extractor for vector data.

It maps (B, d) inputs to (B, hidden[-1]) features through Linear -> ReLU layers, with
optional batch normalisation after the activation (DDC §3.3 puts it on the last, 500-unit
layer). It is a body only: methods put their own output head on top, so the same
backbone serves KCL, MCL and DDC.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["MLP"]

_BATCH_NORM = ("none", "last", "all")


class MLP(nn.Module):
    """Fully connected body: ``in_features -> hidden[0] -> ... -> hidden[-1]``.

    Parameters
    ----------
    in_features : int
    hidden : sequence of int
        Widths of the hidden layers (at least one), e.g. DDC's ``(200, 200, 500)``.
    batch_norm : {"none", "last", "all"}, default="last"
        Which layers get a BatchNorm1d after their ReLU.

    Attributes
    ----------
    out_features : int
        Width of the features returned by :meth:`forward` (``hidden[-1]``).
    """

    def __init__(self, in_features: int, hidden: Sequence[int], *, batch_norm: str = "last"):
        super().__init__()
        hidden = tuple(int(h) for h in hidden)
        if not hidden:
            raise ValueError("The 'hidden' parameter of MLP must hold at least one width. Got () instead.")
        if batch_norm not in _BATCH_NORM:
            raise ValueError(f"The 'batch_norm' parameter of MLP must be one of {_BATCH_NORM}. "
                             f"Got {batch_norm!r} instead.")
        layers: list[nn.Module] = []
        width = int(in_features)
        for i, h in enumerate(hidden):
            layers += [nn.Linear(width, h), nn.ReLU()]
            if batch_norm == "all" or (batch_norm == "last" and i == len(hidden) - 1):
                layers.append(nn.BatchNorm1d(h))
            width = h
        self.layers = nn.Sequential(*layers)
        self.in_features = int(in_features)
        self.out_features = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.reshape(x.shape[0], -1))  # (B, d) -> (B, out_features)
