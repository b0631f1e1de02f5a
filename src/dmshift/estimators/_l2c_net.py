"""The Learning to Cluster network: an embedding, then the set model, fed in a canonical order;
and the per-set label helpers of the estimator."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..nets.set_lstm import SetLSTM
from ..nets.vgg import as_images


class _L2CNet(nn.Module):
    """Embedding network (a), then the set network (b-d), fed in a canonical order."""

    def __init__(self, embed: nn.Module, embed_features: int, set_net: SetLSTM, n_features: int,
                 image_shape: tuple[int, ...] | None):
        super().__init__()
        self.embed = embed
        self.set_net = set_net
        self.image_shape = image_shape
        self.register_buffer("order_key", torch.zeros(n_features))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, n, d) standardised sets -> assignments (B, n, K, K) in input order, count logits (B, K)."""
        B, n, d = x.shape
        order = (x @ self.order_key).argsort(dim=1, stable=True)  # (B, n) canonical order
        xs = x.gather(1, order[..., None].expand(B, n, d))
        flat = xs.reshape(B * n, d)
        if self.image_shape is not None:
            flat = as_images(flat, self.image_shape)
        z = self.embed(flat).reshape(B, n, -1)  # (B, n, e)
        assign, count_logits = self.set_net(z)
        inv = order.argsort(dim=1)
        assign = assign.gather(1, inv[..., None, None].expand_as(assign))  # back to input order
        return assign, count_logits


class _Identity(nn.Identity):
    def __init__(self, out_features: int):
        super().__init__()
        self.out_features = out_features


def _relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Per row, renumber clusters 0..m-1 by decreasing size, ties by the original index."""
    out = np.empty_like(labels)
    for s, row in enumerate(labels):
        ids, inv, counts = np.unique(row, return_inverse=True, return_counts=True)
        rank = np.empty(ids.size, dtype=np.int64)
        rank[np.lexsort((ids, -counts))] = np.arange(ids.size)
        out[s] = rank[inv]
    return out
