"""Layers shared by MMDC and Learning to Cluster: the batch-normalised MLP body for vectors,
the random affine augmentation of images, and MMDC's network (backbone + heads).

Not a public API: the estimators in :mod:`dmshift.estimators.mmdc` and
:mod:`dmshift.estimators.l2c` build their networks from these.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class _MLP(nn.Sequential):
    """Linear -> BN -> ReLU per hidden width (BatchNorm before the ReLU, unlike :class:`dmshift.nets.MLP`)."""

    def __init__(self, in_features: int, hidden: tuple[int, ...]):
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(in_features, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True)]
            in_features = width
        super().__init__(*layers)
        self.out_features = in_features


def _mlp(in_features: int, hidden: tuple[int, ...]) -> nn.Module:
    """The vector backbone; must expose ``out_features``. (Swap point for ``dmshift.nets.mlp.MLP``.)"""
    return _MLP(in_features, hidden)


def _random_affine(x: torch.Tensor, gen: torch.Generator, shift: float, rotate: float, scale: float) -> torch.Tensor:
    """Random translation (fraction of the size), rotation (degrees) and scaling of (N, C, H, W) images."""
    N = x.shape[0]

    def u(lo, hi):
        return lo + (hi - lo) * torch.rand(N, generator=gen, device=x.device, dtype=x.dtype)

    ang = u(-rotate, rotate) * (math.pi / 180)
    s = 1.0 / u(1 - scale, 1 + scale)  # the grid maps output to input coordinates
    cos, sin = torch.cos(ang) * s, torch.sin(ang) * s
    tx, ty = u(-2 * shift, 2 * shift), u(-2 * shift, 2 * shift)  # grid coordinates span [-1, 1]
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)  # (N, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)


class _MMDCNet(nn.Module):
    """Backbone, a linear head onto the target sphere and, optionally, a 4-way rotation head."""

    def __init__(self, backbone: nn.Module, target_dim: int, rotation: bool):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.out_features, target_dim)
        self.rotation_head = nn.Linear(backbone.out_features, 4) if rotation else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.backbone(x)), dim=1)  # (N, target_dim), unit norm

    def rotation_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.rotation_head(self.backbone(x))  # (N, 4)
