"""``LeNet``: the LeNet-style convolutional feature extractor of the KCL and DDC papers.

Two 5x5 convolutions, each followed by 2x2 max pooling and a ReLU, then fully connected
ReLU layers. The papers differ only in widths and where batch normalisation goes:

* KCL (Hsu & Kira 2016, §3): 20 and 50 filters with batch norm on the convolutions,
  one 500-unit layer: ``LeNet(shape, channels=(20, 50), fc=(500,), conv_batch_norm=True)``.
* DDC (Kampffmeyer et al., §3.3): 32 and 64 filters, one 100-unit layer with batch norm:
  ``LeNet(shape, channels=(32, 64), fc=(100,), fc_batch_norm=True)``.

Inputs are flat (B, C*H*W) rows or (B, C, H, W) images. Like :class:`~dmshift.nets.mlp.MLP`
it is a body only; methods add their own output head.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["LeNet", "image_shape"]

_KERNEL = 5


def image_shape(shape: Sequence[int]) -> tuple[int, int, int]:
    """``(H, W)`` or ``(C, H, W)`` as ``(C, H, W)``; raises ValueError for anything else."""
    try:
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"An image shape must be (H, W) or (C, H, W) positive ints. Got {shape!r} instead.") from None
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"An image shape must be (H, W) or (C, H, W) positive ints. Got {shape!r} instead.")
    return shape


def _conv_out(size: int) -> int:
    return (size - _KERNEL + 1) // 2  # valid 5x5 convolution, then 2x2 max pooling


class LeNet(nn.Module):
    """Convolutional body: ``[conv5x5 (-> BN) -> maxpool2 -> ReLU] x 2 -> [FC -> ReLU (-> BN)] x len(fc)``.

    Parameters
    ----------
    input_shape : (H, W) or (C, H, W)
        Each side must be at least 16 pixels (two valid 5x5 convolutions and two poolings).
    channels : (int, int), default=(20, 50)
    fc : sequence of int, default=(500,)
        Widths of the fully connected layers after the convolutions (at least one).
    conv_batch_norm : bool, default=True
        BatchNorm2d after each convolution (KCL).
    fc_batch_norm : bool, default=False
        BatchNorm1d after the ReLU of the last fully connected layer (DDC).

    Attributes
    ----------
    out_features : int
        Width of the features returned by :meth:`forward` (``fc[-1]``).
    """

    def __init__(self, input_shape: Sequence[int], *, channels: Sequence[int] = (20, 50), fc: Sequence[int] = (500,),
                 conv_batch_norm: bool = True, fc_batch_norm: bool = False):
        super().__init__()
        c, h, w = image_shape(input_shape)
        oh, ow = _conv_out(_conv_out(h)), _conv_out(_conv_out(w))
        if oh < 1 or ow < 1:
            raise ValueError(f"LeNet needs images of at least 16 x 16 pixels. Got {h} x {w} instead.")
        channels = tuple(int(v) for v in channels)
        fc = tuple(int(v) for v in fc)
        if len(channels) != 2 or not fc:
            raise ValueError(f"LeNet takes two conv widths and at least one fc width. "
                             f"Got {channels!r}, {fc!r} instead.")
        convs: list[nn.Module] = []
        width = c
        for out in channels:
            convs.append(nn.Conv2d(width, out, _KERNEL))
            if conv_batch_norm:
                convs.append(nn.BatchNorm2d(out))
            convs += [nn.MaxPool2d(2), nn.ReLU()]
            width = out
        self.convs = nn.Sequential(*convs)
        layers: list[nn.Module] = []
        width = channels[-1] * oh * ow
        for i, f in enumerate(fc):
            layers += [nn.Linear(width, f), nn.ReLU()]
            if fc_batch_norm and i == len(fc) - 1:
                layers.append(nn.BatchNorm1d(f))
            width = f
        self.fc = nn.Sequential(*layers)
        self.input_shape = (c, h, w)
        self.in_features = math.prod(self.input_shape)
        self.out_features = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], *self.input_shape)  # (B, C, H, W)
        x = self.convs(x)  # (B, channels[1], h', w')
        return self.fc(x.flatten(1))  # (B, out_features)
