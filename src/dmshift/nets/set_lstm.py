"""The set network of Learning to Cluster (Meier et al., Fig. 1 b-d): embeddings in, a clustering out.

Given a set of n embeddings z_1..z_n it returns, for every cluster count k <= k_max, a
distribution P(l | x_i, k) over cluster indices l < k for each element, and a
distribution P(k) over the number of clusters. It is the paper's architecture:

- (b) a fully connected layer (``width`` units, LeakyReLU 0.3) brings embeddings to one
  size, then ``n_layers`` residual bidirectional LSTMs (Wu et al., 2016) let every element
  see all the others;
- (c) a softmax head per k gives P(l | x_i, k);
- (d) one bidirectional LSTM (``count_units`` per direction) whose first and last outputs
  are concatenated into a fully connected layer (``count_hidden`` units, LeakyReLU 0.3)
  and a softmax give P(k).

An LSTM reads its input in order, so this module is not permutation-equivariant by
itself: the caller decides the order of the set (see :mod:`dmshift.estimators.l2c`). The
embedding network (a) is not part of this module.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ResidualBiLSTM", "SetLSTM"]


class ResidualBiLSTM(nn.Module):
    """``n_layers`` bidirectional LSTMs of ``width`` outputs, each added to its input."""

    def __init__(self, width: int, n_layers: int):
        super().__init__()
        if width % 2:
            raise ValueError(f"The 'width' of a bidirectional LSTM stack must be even. Got {width} instead.")
        self.layers = nn.ModuleList(
            nn.LSTM(width, width // 2, batch_first=True, bidirectional=True) for _ in range(n_layers))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        for lstm in self.layers:
            h = h + lstm(h)[0]  # (B, n, width)
        return h


class SetLSTM(nn.Module):
    """Cluster-assignment and cluster-count heads over a set of embeddings.

    Parameters
    ----------
    in_features : int
        Size of each element's embedding.
    k_max : int, default=5
    width : int, default=288
        Units of the input layer and of each residual BDLSTM (both directions together).
    n_layers : int, default=14
        Residual BDLSTM layers (paper: 14).
    count_units : int, default=128
        Units per direction of the count network's BDLSTM.
    count_hidden : int, default=256
    negative_slope : float, default=0.3
    """

    def __init__(self, in_features: int, *, k_max: int = 5, width: int = 288, n_layers: int = 14,
                 count_units: int = 128, count_hidden: int = 256, negative_slope: float = 0.3):
        super().__init__()
        self.k_max = k_max
        self.inp = nn.Sequential(nn.Linear(in_features, width), nn.LeakyReLU(negative_slope))
        self.body = ResidualBiLSTM(width, n_layers)
        self.assign = nn.Linear(width, k_max * k_max)
        self.count_lstm = nn.LSTM(width, count_units, batch_first=True, bidirectional=True)
        self.count_head = nn.Sequential(nn.Linear(4 * count_units, count_hidden), nn.LeakyReLU(negative_slope),
                                        nn.Linear(count_hidden, k_max))
        # row k-1 of the (k_max, k_max) block may only use indices l < k
        self.register_buffer("_invalid", torch.ones(k_max, k_max).triu(1).bool(), persistent=False)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Assignment probabilities and count logits of a batch of sets.

        Parameters
        ----------
        z : Tensor of shape (B, n, in_features)

        Returns
        -------
        assign : Tensor of shape (B, n, k_max, k_max)
            ``assign[b, i, k-1, l] = P(l | x_i, k)``, zero for ``l >= k``.
        count_logits : Tensor of shape (B, k_max)
            Logits of P(k), entry k-1 for k clusters.
        """
        B, n, _ = z.shape
        h = self.body(self.inp(z))  # (B, n, width)
        logits = self.assign(h).view(B, n, self.k_max, self.k_max)  # (B, n, K, K)
        logits = logits.masked_fill(self._invalid, float("-inf"))
        assign = logits.softmax(-1)  # (B, n, K, K)
        c = self.count_lstm(h)[0]  # (B, n, 2 * count_units)
        count_logits = self.count_head(torch.cat([c[:, 0], c[:, -1]], dim=-1))  # (B, K)
        return assign, count_logits
