"""Training sets for Learning to Cluster, drawn from side information."""

from __future__ import annotations

import numpy as np

from ..constraints import SideInfo


def _cluster_sizes(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Split n points into k clusters: each gets at least half its equal share (and 1), the rest at random."""
    base = max(1, n // (2 * k))
    return base + rng.multinomial(n - k * base, rng.dirichlet(np.ones(k)))


class _SetSampler:
    """Training sets from side information: 1..k_max pairwise-different groups, n points in all.

    A set of size n draws n from ``set_size``, k uniformly from 1..k_max, then k groups that
    are pairwise cannot-linked (fewer if no such k exist), and splits n among them with
    :func:`_cluster_sizes`. Groups smaller than their share are drawn with replacement.
    """

    def __init__(self, side: SideInfo, groups: np.ndarray, k_max: int, set_size: tuple[int, int],
                 rng: np.random.Generator):
        self.members = side.members()
        self.groups = np.asarray(groups, dtype=np.int64)
        usable = np.zeros(side.n_groups, dtype=bool)
        usable[self.groups] = True
        C = side.cannot.tocsr()
        self.neighbours = [C.indices[C.indptr[g]:C.indptr[g + 1]] for g in range(side.n_groups)]
        self.neighbours = [nb[usable[nb]] for nb in self.neighbours]
        self.k_max, self.set_size, self.rng = k_max, set_size, rng

    def _groups_for(self, k: int) -> list[int]:
        rng = self.rng
        chosen = [int(rng.choice(self.groups))]
        cand = self.neighbours[chosen[0]]
        while len(chosen) < k and cand.size:
            g = int(rng.choice(cand))
            chosen.append(g)
            cand = np.intersect1d(cand, self.neighbours[g], assume_unique=True)
        return chosen

    def _points(self, g: int, size: int) -> np.ndarray:
        m = self.members[g]
        if m.size >= size:
            return self.rng.choice(m, size=size, replace=False)
        return np.concatenate([m, self.rng.choice(m, size=size - m.size)])

    def sample(self, n_sets: int, n: int | None = None):
        """(S, n) point indices, (S, n, n) same matrix, (S,) number of clusters."""
        rng = self.rng
        if n is None:
            n = int(rng.integers(self.set_size[0], self.set_size[1] + 1))
        idx = np.empty((n_sets, n), dtype=np.int64)
        gid = np.empty((n_sets, n), dtype=np.int64)
        n_true = np.empty(n_sets, dtype=np.int64)
        for s in range(n_sets):
            k = int(rng.integers(1, min(self.k_max, n) + 1))
            chosen = self._groups_for(k)
            k = len(chosen)
            sizes = _cluster_sizes(n, k, rng)
            parts = [self._points(g, int(sz)) for g, sz in zip(chosen, sizes)]
            idx[s] = np.concatenate(parts)
            gid[s] = np.repeat(np.arange(k), sizes)
            n_true[s] = k
        same = (gid[:, :, None] == gid[:, None, :]).astype(np.int8)
        return idx, same, n_true
