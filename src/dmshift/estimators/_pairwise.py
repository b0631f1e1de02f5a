"""What KCL and MCL share: mini-batches built around known pairs, and the estimator around a pairwise loss.

:class:`PairBatchSampler` draws relations (same or different pairs) uniformly from all the
relations the side information implies and feeds their end points forward once; the
loss then enumerates every known pair among those points (KCL §2.2), and masks the rest.
Drawing relations rather than points matters when supervision is sparse: with 12,000
pairs over 60,000 images a batch of random points would hold almost no known pair.
With partial labels every pair of labelled points is a relation, so this reduces to
drawing labelled points uniformly.
"""

from __future__ import annotations

import numpy as np
import torch

from .._validation import check_fraction, check_param
from ..constraints import SideInfo
from ._softmax import SoftmaxClustering

__all__ = ["PairBatchSampler", "PairwiseClustering"]


class PairBatchSampler:
    """Mini-batches of points that carry known relations.

    Parameters
    ----------
    side : SideInfo
    batch_size : int
        Upper bound on the points of a batch; ``batch_size // 2`` relations are drawn and
        their distinct end points form the batch.
    rng : numpy.random.Generator
    """

    def __init__(self, side: SideInfo, batch_size: int, rng: np.random.Generator):
        self.side, self.rng = side, rng
        self.n_relations = max(1, int(batch_size) // 2)
        members = side.members()
        sizes = np.array([m.size for m in members], dtype=np.int64)
        self._flat = np.concatenate(members) if members else np.zeros(0, np.int64)
        self._start = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self._sizes = sizes
        w_same = (sizes * (sizes - 1) / 2.0)  # relations inside each group
        C = sp_upper(side.cannot)
        self._gi, self._gj = C[0], C[1]
        w_diff = sizes[self._gi].astype(np.float64) * sizes[self._gj]  # relations across each cannot-link
        self._cdf_same = np.cumsum(w_same)
        self._cdf_diff = np.cumsum(w_diff)
        tot_s = self._cdf_same[-1] if self._cdf_same.size else 0.0
        tot_d = self._cdf_diff[-1] if self._cdf_diff.size else 0.0
        self.p_same = tot_s / max(tot_s + tot_d, 1.0)

    def _draw(self, cdf: np.ndarray, size: int) -> np.ndarray:
        u = self.rng.random(size) * cdf[-1]
        return np.minimum(np.searchsorted(cdf, u, side="right"), cdf.size - 1)

    def _member(self, g: np.ndarray, offset: np.ndarray) -> np.ndarray:
        return self._flat[self._start[g] + offset]

    def sample(self) -> np.ndarray:
        """Sorted indices of the points of one batch (at least two)."""
        r = self.n_relations
        n_same = int(self.rng.binomial(r, self.p_same))
        parts = []
        if n_same:
            g = self._draw(self._cdf_same, n_same)
            s = self._sizes[g]
            a = (self.rng.random(n_same) * s).astype(np.int64)
            b = (self.rng.random(n_same) * (s - 1)).astype(np.int64)
            b += b >= a  # a different member of the same group
            parts += [self._member(g, a), self._member(g, b)]
        if r - n_same:
            e = self._draw(self._cdf_diff, r - n_same)
            gi, gj = self._gi[e], self._gj[e]
            parts += [self._member(gi, (self.rng.random(e.size) * self._sizes[gi]).astype(np.int64)),
                      self._member(gj, (self.rng.random(e.size) * self._sizes[gj]).astype(np.int64))]
        return np.unique(np.concatenate(parts))


def sp_upper(M):
    """Row and column indices of the strictly upper-triangular non-zeros of a sparse matrix."""
    C = M.tocoo()
    keep = C.row < C.col
    return C.row[keep].astype(np.int64), C.col[keep].astype(np.int64)


class PairwiseClustering(SoftmaxClustering):
    """Base of the estimators trained by a pairwise loss on the softmax (KCL, MCL)."""

    #: number of fixed batches on which restarts are compared
    _n_score_batches = 20

    def _pair_loss(self, logits: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _check_params(self):
        self._check_common_params()
        check_param("on_conflict", self.on_conflict, ("raise", "majority"))

    def _side_info(self, n, y, pairs) -> SideInfo:
        if y is None and pairs is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None: give "
                             "partial labels y (-1 for unknown) and/or pairs (i, j, same).")
        side = SideInfo.build(n, y=y, pairs=pairs, on_conflict=self.on_conflict)
        side.check_trainable()
        return side

    def _batch(self, Xs, side, idx):
        same = torch.as_tensor(side.same_matrix(idx), device=Xs.device)  # (b, b) 1/0/-1
        return Xs[torch.as_tensor(idx, device=Xs.device)], same

    def _step_loss(self, net, Xs, side, rng):
        sampler = PairBatchSampler(side, self.batch_size, rng)

        def step_loss(step):
            x, same = self._batch(Xs, side, sampler.sample())  # (b, d), (b, b)
            return self._pair_loss(net(x)[1], same)
        return step_loss

    @torch.no_grad()
    def _score(self, net, Xs, side, seed) -> float:
        """Mean pairwise loss over fixed batches (the same for every restart), in eval mode."""
        net.eval()
        sampler = PairBatchSampler(side, self.batch_size, np.random.default_rng(seed))
        losses = []
        for _ in range(self._n_score_batches):
            x, same = self._batch(Xs, side, sampler.sample())
            losses.append(float(self._pair_loss(net(x)[1], same)))
        return float(np.mean(losses))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True  # side information is needed to learn anything
        tags.non_deterministic = False
        return tags


def check_margin(margin) -> None:
    check_fraction("margin", margin, low=0.0, high=np.inf)
