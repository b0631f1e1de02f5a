"""A small VGG-style CNN with batch normalisation, as in MMDC's MNIST model (§IV-A).

Each block is conv 3x3 -> batch norm -> ReLU -> max pool 2x2; the network is a stack of
such blocks followed by a flatten. It is a *feature extractor*: heads (cluster
embedding, rotation classifier, ...) are added by the methods that use it. With three
blocks it is also the "simple CNN with 3 conv/max-pooling layers" of Learning to
Cluster. Inputs are (N, C, H, W) images; :func:`as_images` turns dmshift's flattened
row-major (H, W[, C]) rows into that layout.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SmallVGG", "as_images"]


def as_images(x: torch.Tensor, image_shape: tuple[int, ...]) -> torch.Tensor:
    """(N, H*W*C) rows flattened from upright (H, W) or (H, W, C) images -> (N, C, H, W)."""
    if len(image_shape) == 2:
        h, w = image_shape
        return x.reshape(-1, 1, h, w)
    h, w, c = image_shape
    return x.reshape(-1, h, w, c).permute(0, 3, 1, 2).contiguous()


class SmallVGG(nn.Module):
    """Blocks of conv 3x3 -> BN -> ReLU -> max pool 2x2, then flatten.

    Parameters
    ----------
    in_channels : int
    image_size : (int, int)
        Input height and width; used to compute :attr:`out_features`.
    widths : sequence of int, default=(32, 64, 128, 256)
        Output channels of each block (four blocks, as MMDC's MNIST model).
    batch_norm : bool, default=True
    """

    def __init__(self, in_channels: int, image_size: tuple[int, int], widths=(32, 64, 128, 256), *,
                 batch_norm: bool = True):
        super().__init__()
        layers: list[nn.Module] = []
        c, (h, w) = in_channels, image_size
        for width in widths:
            layers.append(nn.Conv2d(c, width, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.ReLU(inplace=True))
            if min(h, w) >= 2:  # a 1-pixel map cannot be pooled further
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c = width
        self.features = nn.Sequential(*layers)
        self.out_features = c * h * w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).flatten(1)  # (N, C, H, W) -> (N, out_features)
