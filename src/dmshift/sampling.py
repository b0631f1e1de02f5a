"""Training instances for DMS (paper §3.3, §4.2), drawn from side information.

An instance is an initial point, positives (points known to be in its group), negatives
(points known to differ from it) and unlabelled points drawn from the whole data set.
Points may repeat. All instances of one batch share one size, drawn per batch. This
module only draws indices and targets; it knows nothing of kernels or training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .constraints import SideInfo

__all__ = ["SamplerConfig", "InstanceSampler"]

#: target of an unlabelled point (excluded from the loss)
IGNORE = -1.0


@dataclass(frozen=True)
class SamplerConfig:
    """How instances are drawn. Ratios are drawn uniformly in their ranges per instance.

    Parameters
    ----------
    batch_size : int
        Instances per batch (paper: 96).
    instance_size : (int, int)
        Range of points per instance, drawn per batch (paper: 200-300).
    labelled_ratio : (float, float)
        Range of ``|P ∪ N| : |U|`` (paper: 1/3 to 1).
    positive_ratio : (float, float)
        Range of ``|P| : |P ∪ N|`` (paper: 1/20 to 1/10).
    """

    batch_size: int = 96
    instance_size: tuple[int, int] = (200, 300)
    labelled_ratio: tuple[float, float] = (1 / 3, 1.0)
    positive_ratio: tuple[float, float] = (1 / 20, 1 / 10)


class InstanceSampler:
    """Draws batches of instances as (indices, targets).

    Parameters
    ----------
    side : SideInfo
    config : SamplerConfig
    rng : numpy.random.Generator
    init_points : ndarray, optional
        Points allowed as initial points (default: every labelled point with a negative).
    label_points : ndarray, optional
        Points allowed as positives/negatives (default: every labelled point).
    """

    def __init__(self, side: SideInfo, config: SamplerConfig, rng: np.random.Generator,
                 init_points: np.ndarray | None = None, label_points: np.ndarray | None = None):
        self.side = side
        self.config = config
        self.rng = rng
        n = side.n_samples
        allowed = np.zeros(n, dtype=bool)
        allowed[side.labelled if label_points is None else label_points] = True
        members = [m[allowed[m]] for m in side.members()]
        cannot = side.cannot.tocsr()
        self._pos = members
        self._neg = []
        for g in range(side.n_groups):
            nb = cannot.indices[cannot.indptr[g]:cannot.indptr[g + 1]]
            self._neg.append(np.concatenate([members[h] for h in nb]) if nb.size else np.zeros(0, np.int64))
        cand = side.labelled if init_points is None else np.asarray(init_points, dtype=np.int64)
        ok = np.array([self._neg[side.group[i]].size > 0 for i in cand], dtype=bool) if cand.size else np.zeros(0, bool)
        self.init_points = cand[ok]
        if self.init_points.size == 0:
            raise ValueError("No labelled point has a known 'different' point to train against.")

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """One batch: indices (B, L) int64 and targets (B, L) float32 (1, 0, or -1 = ignore)."""
        cfg, rng = self.config, self.rng
        B = cfg.batch_size
        L = int(rng.integers(cfg.instance_size[0], cfg.instance_size[1] + 1))
        idx = np.empty((B, L), dtype=np.int64)
        tgt = np.full((B, L), IGNORE, dtype=np.float32)
        # Generator.integers here draws exactly what Generator.choice(pool, size) would, without its overhead
        inits = self.init_points[rng.integers(0, self.init_points.size, size=B)]
        lr = rng.uniform(*cfg.labelled_ratio, size=B)
        pr = rng.uniform(*cfg.positive_ratio, size=B)
        n_lab = np.clip(np.rint(L * lr / (1.0 + lr)).astype(np.int64), 2, L)
        n_pos = np.minimum(np.maximum(1, np.rint(n_lab * pr).astype(np.int64)), n_lab - 1)
        n = self.side.n_samples
        group = self.side.group
        for b in range(B):
            i0, n_l, n_p = inits[b], int(n_lab[b]), int(n_pos[b])
            g = group[i0]
            row = idx[b]
            row[0] = i0
            pos_pool, neg_pool = self._pos[g], self._neg[g]
            if n_p > 1 and pos_pool.size:
                row[1:n_p] = pos_pool[rng.integers(0, pos_pool.size, size=n_p - 1)]
            else:
                row[1:n_p] = i0
            row[n_p:n_l] = neg_pool[rng.integers(0, neg_pool.size, size=n_l - n_p)]
            row[n_l:] = rng.integers(0, n, size=L - n_l)
            tgt[b, :n_p] = 1.0
            tgt[b, n_p:n_l] = 0.0
        return idx, tgt
