"""The statistics of the search for unseen groups (:func:`dmshift.novelty.unseen_groups`).

Each part the search judges gets a score: how rarely side information placed at random would
leave it as bare as it is, times the number of parts of its size (a union bound). A whole part
is judged by the binomial tail at the rate of the parts that hold side information
(:func:`part_score`); a hole, a subtree inside a part, by the hypergeometric tail given the
part's own count (:func:`hole_score`). The search judges many parts of many sizes, nested:
one test per part at ``max_chance`` would find a group in random side information far more
often than ``max_chance``. :func:`chance_threshold` calibrates the threshold on the search as
a whole (Westfall and Young's min-p): the ``max_chance`` quantile of its smallest score over
random draws of the labelled points, on the data's own tree.
"""

from __future__ import annotations

import numpy as np
from scipy.special import bdtr, gammaln

from ._memo import ContentCache

__all__ = ["part_score", "hole_score", "chance_threshold"]


def part_score(m, k, rate, n: int, max_seen_share: float):
    """How rarely random side information at ``rate`` leaves a part of ``m`` points with ``k`` or fewer
    labelled ones: ``P(Binomial(m, rate) <= k) * max(1, n / m)`` (the union bound over the ``n / m``
    parts of that size), ``inf`` where the part cannot be unseen (``rate`` outside (0, 1), or ``k``
    above ``max_seen_share`` of the ``rate * m`` expected). Broadcasts over arrays."""
    m, k, rate = np.asarray(m, dtype=np.int64), np.asarray(k, dtype=np.int64), np.asarray(rate, dtype=np.float64)
    ok = (rate > 0) & (rate < 1) & (k <= max_seen_share * rate * m)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = bdtr(np.minimum(k, m), m, np.clip(rate, 1e-300, 1.0)) * np.maximum(1.0, n / np.maximum(m, 1))
    return np.where(ok, p, np.inf)


def hole_score(m, k, part_size, part_labelled, max_seen_share: float):
    """The score of a subtree of ``m`` points holding ``k`` labelled ones inside a part of
    ``part_size`` points holding ``part_labelled``: ``P(K <= k) * max(1, part_size / m)`` with ``K``
    hypergeometric (the part's labelled points placed at random within it; the union bound over
    the ``part_size / m`` subtrees of that size); ``inf`` where the subtree cannot be a hole (the
    part holds no side information, the subtree is the whole part, or ``k`` is above
    ``max_seen_share`` of the ``part_labelled * m / part_size`` expected). Broadcasts over arrays.

    Conditioning on the part's count is what keeps a subtree that is most of its part from
    looking bare against the few points left over (their rate is a noisy estimate)."""
    m, k = np.asarray(m, dtype=np.float64), np.asarray(k, dtype=np.float64)
    M, K = np.asarray(part_size, dtype=np.float64), np.asarray(part_labelled, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = (K > 0) & (M > m) & (k <= max_seen_share * K * m / M)
        # P(K = lo) (the least count the part allows) by log-gamma, then
        # P(K = j + 1) / P(K = j) = (K - j)(m - j) / ((j + 1)(M - K - m + j + 1))
        lo = np.maximum(0.0, m - (M - K))

        def log_comb(a, b):
            return gammaln(a + 1) - gammaln(b + 1) - gammaln(a - b + 1)
        pmf = np.exp(log_comb(K, lo) + log_comb(M - K, m - lo) - log_comb(M, m))
        cdf = np.where(k >= lo, pmf, 0.0)
        j = lo
        for _ in range(int(np.max(np.where(ok, k - lo, 0), initial=0))):
            pmf = pmf * np.clip(K - j, 0, None) * np.clip(m - j, 0, None) / ((j + 1) * (M - K - m + j + 1))
            j = j + 1
            cdf = cdf + np.where(j <= k, pmf, 0.0)
        score = np.minimum(cdf, 1.0) * np.maximum(1.0, M / np.maximum(m, 1.0))
    return np.where(ok, score, np.inf)


def _leaf_starts(children: np.ndarray, size: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Where each node's leaves begin in a depth-first order of the leaves (a node's leaves are the
    ``size[v]`` consecutive ones from ``start[v]``)."""
    n = children.shape[0] + 1 if size.size else 0
    start = np.zeros(size.size, dtype=np.int64)
    roots = np.flatnonzero(parent < 0)
    start[roots] = np.concatenate([[0], np.cumsum(size[roots])[:-1]])
    for j in range(children.shape[0] - 1, -1, -1):  # parents come after their children
        a, b = children[j]
        start[a] = start[n + j]
        start[b] = start[n + j] + size[a]
    return start


_THRESHOLDS = ContentCache(8)


def chance_threshold(children: np.ndarray, size: np.ndarray, at_cut: np.ndarray, cut: np.ndarray, n_labelled: int,
                     max_chance: float, max_seen_share: float, null_draws: int) -> float:
    """The score (:func:`part_score`) below which a part is unseen, such that side information drawn
    at random (``n_labelled`` of the tree's points) would make the search find any part with a
    chance of at most ``max_chance``.

    The search judges every subtree inside a part at ``h*`` (holes) and every part at or above
    ``h*``, of every size: one test per part at ``max_chance`` would find a group in random side
    information far more often than that. The threshold is the ``max_chance`` quantile of the
    search's smallest score over ``null_draws`` random draws of the labelled points (Westfall and
    Young's min-p: it holds for the family of tests as the tree shapes it). The tree and ``h*``
    stay those of the data; the rule on strays (which only removes parts) is not applied to the
    draws. ``null_draws`` 0 gives ``max_chance`` itself.
    """
    if null_draws <= 0 or n_labelled <= 0:
        return float(max_chance)
    n = children.shape[0] + 1
    key = _THRESHOLDS.key(children, at_cut, n_labelled, float(max_chance), float(max_seen_share), int(null_draws))
    if (kept := _THRESHOLDS.get(key)) is not None:
        return kept
    n_nodes = size.size
    parent = np.full(n_nodes, -1, dtype=np.int64)
    parent[children.reshape(-1)] = np.repeat(np.arange(n, n_nodes), 2)
    start = _leaf_starts(children, size, parent)
    nodes = np.arange(n_nodes)
    hole = np.flatnonzero((cut >= n) & (cut != nodes) & (size >= 2))  # strictly inside a part of several points
    part = np.flatnonzero(at_cut | (cut < 0))
    held_parts = np.flatnonzero(at_cut)
    rng = np.random.default_rng([n, n_labelled, int(null_draws)])
    mins = np.empty(int(null_draws))
    rows = max(1, (16 << 20) // (8 * n_nodes))  # draws at a time: a few (rows, nodes) arrays of 16 MiB
    for s in range(0, int(null_draws), rows):
        r = min(rows, int(null_draws) - s)
        marked = np.zeros((r, n + 1), dtype=np.int32)
        chosen = np.argpartition(rng.random((r, n)), n_labelled - 1, axis=1)[:, :n_labelled] if n_labelled < n \
            else np.broadcast_to(np.arange(n), (r, n))
        np.put_along_axis(marked, start[chosen] + 1, 1, axis=1)
        csum = np.cumsum(marked, axis=1)
        L = csum[:, start + size] - csum[:, start]  # (r, n_nodes): labelled points of each node
        best = np.full(r, np.inf)
        if hole.size:
            p = cut[hole]
            best = np.minimum(best, hole_score(size[hole], L[:, hole], size[p], L[:, p], max_seen_share).min(1))
        held = L[:, held_parts] > 0
        rate = (L[:, held_parts] * held).sum(1) / np.maximum((size[held_parts] * held).sum(1), 1)
        best = np.minimum(best, part_score(size[part], L[:, part], rate[:, None], n, max_seen_share).min(1))
        mins[s:s + r] = best
    mins.sort()
    # a part is unseen when its score is below the draws' j-th smallest minimum: at most j of the
    # draws (a share max_chance) would have found anything
    out = float(mins[int(np.floor(max_chance * null_draws))]) if max_chance * null_draws < null_draws else np.inf
    _THRESHOLDS.put(key, out)
    return out
