"""Groups the side information never mentions, found in the Ward tree of the features.

A kernel learned from side information on some groups maps the points of an unseen group
onto the seen group it most resembles: nothing in its training told them apart. The
features' own geometry often still does. :func:`unseen_groups` builds the Ward tree of the
points (merges restricted to a k-nearest-neighbour graph, so it scales to tens of thousands
of points) and reads two things from the side information:

- **the scale of a group**: the merge height ``h*`` at which the tree best agrees with the
  side information (share of "same" pairs joined minus share of "different" pairs joined;
  the geometric middle of the heights that agree best);
- **the rate of side information**: the share of points with side information.

A subtree is *unseen* when side information drawn at random at that rate would rarely
have left it as bare as it is. Strays are allowed: points of neighbouring groups, with
their side information, that the tree put inside an unseen group. A subtree of ``s``
points holding ``k`` with side information is unseen when all three hold:

- ``k`` is at most ``max_seen_share`` (a third, :class:`~dmshift.settings.NoveltySettings`) of the
  side information its rate gives it: it is mostly unseen, not a seen group with a few labels short;
- its score is below the search's threshold (:mod:`dmshift.novelty_stats`): the score is
  ``P(Binomial(s, f) <= k) * (n / s)`` for a part (a union bound over the ``n / s`` parts of
  that size), and for a hole the hypergeometric ``P(K <= k)`` given its part's count, times the
  part's size over ``s``; the threshold is calibrated so that the whole search, over every part
  and size it judges, finds anything in random side information with a chance of at most
  ``max_chance`` (0.05);
- no group has half or more of its labelled points inside: those are strays of groups
  that lie elsewhere, not the thin side information of a group that lies here.

Three kinds are judged:

- a *hole*: the highest unseen subtree inside a part at ``h*`` (the tree put an unseen
  group together with a seen one);
- a *whole part* at ``h*``; ``f`` is the rate in the parts that hold side information, not
  counting the holes found in them;
- above ``h*``, a subtree none of whose parts at ``h*`` is unseen alone but which is
  unseen as a whole (the tree cut an unseen group into pieces each too small to judge).

The points returned are those without side information (the strays keep theirs). With side
information drawn at random from every group, no part qualifies (but with a chance of at
most 5%, the calibration's) and nothing changes; where it was drawn from some groups only,
the others come out.

:func:`unreached_components` is the second test, on the graph labels spread over (its
reciprocal edges, :mod:`dmshift.smoothing`): a connected component that holds no seed is
joined to the seeded groups by one-way edges at most. It is a group of its own when
random side information at the observed rate would have reached a set of its size with a
chance of at least 95% (``(1 - f)^s <= 0.05``, one test per component: the graph itself,
not the side information, set it apart). It applies only where the graph's components hold
the side information's groups (:func:`components_hold_groups`: at least half of the components
that join labelled points join none known to differ); where the task cuts across the graph, a
component is no group.
"""

from __future__ import annotations

import gc

import numpy as np
import scipy.sparse as sp

from ._memo import ContentCache
from .novelty_stats import chance_threshold, hole_score, part_score
from .settings import NoveltySettings

#: bytes of one tile of distances when the k-NN graph's components are joined
_TILE_BYTES = 16 << 20
#: peak bytes per point of scikit-learn's ``ward_tree`` over a 10-NN graph (6.6 KiB measured at
#: 40,000 points in 16 dimensions), with a margin: what :func:`tree_points` budgets
WARD_BYTES_PER_POINT = 8 << 10

__all__ = ["unseen_groups", "unreached_components", "components_hold_groups", "min_part_size", "best_cut",
           "joined_pairs", "knn_ward_tree", "tree_points"]

def _connectivity(idx: np.ndarray) -> sp.csr_matrix:
    """Symmetric adjacency (n, n) of the k-NN graph ``idx`` (n, k)."""
    n, k = idx.shape
    rows = np.repeat(np.arange(n), k)
    A = sp.csr_matrix((np.ones(n * k), (rows, idx.reshape(-1))), shape=(n, n))
    return (A + A.T).tocsr()


def _completed(Z: np.ndarray, A: sp.csr_matrix) -> sp.csr_matrix:
    """``A`` with every two of its connected components joined by the edge between their nearest points.

    scikit-learn's ``ward_tree`` completes a disconnected graph the same way, but holds the
    whole distance matrix between two components (8.9 GB for two of 33,000 points); here
    it is searched in tiles of rows of about ``_TILE_BYTES``. Ties go to the first pair in
    row-major order, as there.
    """
    from scipy.sparse.csgraph import connected_components
    from sklearn.metrics import pairwise_distances

    n_comp, comp = connected_components(A, directed=False)
    if n_comp == 1:
        return A
    members = [np.flatnonzero(comp == c) for c in range(n_comp)]
    rows, cols = [], []
    for i in range(n_comp):
        for j in range(i):
            Zj = Z[members[j]]
            tile = max(1, _TILE_BYTES // (8 * max(1, members[j].size)))
            best, pair = np.inf, (0, 0)
            for s in range(0, members[i].size, tile):
                D = pairwise_distances(Z[members[i][s:s + tile]], Zj)  # (tile, |j|)
                a, b = np.unravel_index(D.argmin(axis=None), D.shape)
                if D[a, b] < best:
                    best, pair = D[a, b], (members[i][s + a], members[j][b])
            rows += [pair[0], pair[1]]
            cols += [pair[1], pair[0]]
    extra = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=A.shape)
    return ((A + extra) > 0).astype(np.float64).tocsr()


def tree_points(max_points: int, memory_budget: int) -> int:
    """Most points a Ward tree is built on: ``max_points``, fewer where the tree would not fit in
    ``memory_budget`` bytes (:data:`WARD_BYTES_PER_POINT`; 32,768 points at 256 MiB). Above it the
    callers build the tree on a random subset and let the other points follow their neighbours."""
    return int(max(2, min(int(max_points), int(memory_budget) // WARD_BYTES_PER_POINT)))


def knn_ward_tree(Z: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ward merge tree of ``Z`` (n, d) with merges along the k-NN graph ``idx`` (n, k): ``children``
    (n - 1, 2), numbered as scikit-learn's ``ward_tree``, and the merge heights (n - 1,).

    A disconnected graph is completed by :func:`_completed` (nearest points of every two
    components, found in tiles), not by scikit-learn, which would hold the components'
    whole distance matrices."""
    from sklearn.cluster import ward_tree

    Z = np.asarray(Z, dtype=np.float64)
    key = _TREES.key(Z, np.asarray(idx))
    if (kept := _TREES.get(key)) is not None:  # the same points and graph: asked per candidate and fold
        return kept
    children, _, _, _, heights = ward_tree(Z, connectivity=_completed(Z, _connectivity(idx)), return_distance=True)
    gc.collect()  # ward_tree leaves reference cycles holding most of its peak (190 of 310 MiB at 40,000 points)
    children.setflags(write=False), heights.setflags(write=False)
    _TREES.put(key, (children, heights))
    return children, heights


_TREES = ContentCache(4)  # the last Ward trees built (read-only arrays)


def _pairs(group: np.ndarray, cannot: sp.spmatrix) -> tuple[int, sp.csr_matrix, float, float]:
    """Groups, the symmetric "different" relation (G, G) as floats, and the numbers of "same" and
    "different" pairs of points that the side information ``group`` (n,) and ``cannot`` states."""
    g = group[group >= 0]
    n_groups = max(int(g.max(initial=-1)) + 1, cannot.shape[0])  # a group may have no point left
    cnt = np.bincount(g, minlength=n_groups)
    C = sp.csr_matrix(cannot, dtype=np.float64)
    C = ((C + C.T) > 0).astype(np.float64)
    C = sp.csr_matrix(C - sp.diags(C.diagonal()))  # a group is never "different" from itself
    return n_groups, C, float((cnt * (cnt - 1) / 2).sum()), float(cnt @ (C @ cnt)) / 2


def joined_pairs(children: np.ndarray, group: np.ndarray, cannot: sp.spmatrix
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """The pairs with side information that a merge tree joins, merge by merge.

    ``children`` (n - 1, 2) is a merge tree over n leaves (nodes numbered as scikit-learn's
    ``ward_tree``), ``group`` (n,) the side-information group of each leaf (-1: none) and
    ``cannot`` (G, G) which groups are known to differ. Returns the merges that join a
    "same" or a "different" pair (indices into ``children``, increasing), the "same" and
    "different" pairs of points joined up to and including each of them (cumulative), and
    the numbers of "same" and "different" pairs the side information states.
    """
    n = group.size
    n_groups, C, tot_same, tot_diff = _pairs(group, cannot)
    hist = {int(i): np.bincount([group[i]], minlength=n_groups).astype(np.float64) for i in np.flatnonzero(group >= 0)}
    steps, same_at, diff_at = [], [], []
    same = diff = 0.0
    for j, (a, b) in enumerate(children):
        ha, hb = hist.pop(int(a), None), hist.pop(int(b), None)
        if ha is None or hb is None:  # only merges of two parts with side information change the counts
            if ha is not None or hb is not None:
                hist[n + j] = ha if ha is not None else hb
            continue
        s, d = float(ha @ hb), float(ha @ (C @ hb))
        hist[n + j] = ha + hb
        if s or d:
            same, diff = same + s, diff + d
            steps.append(j)
            same_at.append(same)
            diff_at.append(diff)
    return (np.asarray(steps, dtype=np.int64), np.asarray(same_at), np.asarray(diff_at), tot_same, tot_diff)


def first_best(score: np.ndarray) -> int:
    """Index of the first entry of ``score`` above 0 and every earlier entry (by more than 1e-12), or -1."""
    best, at = 0.0, -1
    for i, v in enumerate(score):
        if v > best + 1e-12:
            best, at = float(v), i
    return at


def best_cut(children: np.ndarray, heights: np.ndarray, group: np.ndarray, cannot: sp.spmatrix) -> tuple[float, float]:
    """Merge height at which the tree best agrees with the side information, and that agreement.

    ``children`` (n - 1, 2) and ``heights`` (n - 1,) are a merge tree over n leaves (nodes
    numbered as scikit-learn's ``ward_tree``); ``group`` (n,) the side-information group of
    each leaf (-1: none); ``cannot`` (G, G) which groups are known to differ. The agreement
    at a height is the share of "same" pairs (two points of one group) joined minus the
    share of "different" pairs joined. The heights from the best merge up to the next merge
    that joins side information agree equally; the geometric middle of that range is
    returned. ``(0.0, -inf)`` when either kind of pair is absent.
    """
    steps, same, diff, tot_same, tot_diff = joined_pairs(children, group, cannot)
    if tot_same == 0 or tot_diff == 0:
        return 0.0, -np.inf
    score = same / tot_same - diff / tot_diff
    i = first_best(score)
    if i < 0:  # no merge at all: agreement 0
        return 0.0, 0.0
    # any height from the best merge up to the next one that changes the counts agrees as well:
    # take the middle (geometric), so that well separated groups are not cut into pieces
    low = float(heights[steps[i]])
    if i + 1 == steps.size or low <= 0:
        return low, float(score[i])
    return float(np.sqrt(low * heights[steps[i + 1]])), float(score[i])


def components_hold_groups(comp: np.ndarray, group: np.ndarray, cannot: sp.spmatrix) -> bool:
    """Do the components ``comp`` (n,) of a graph group the points as the side information does?

    ``group`` (n,) and ``cannot`` (G, G) as in :func:`unseen_groups`. True when at least half of
    the components that join a pair of points with side information ("same" or known to differ)
    join no pair known to differ (or no component joins such a pair): then a component is a
    candidate group. Each component counts once, so that one large component of several groups
    does not outweigh many of one group each. Where the task cuts across the graph (poses of many
    objects, each object a component holding several poses), most components join points known
    to differ, and a component without side information is no group.
    """
    on = np.flatnonzero(group >= 0)
    if not on.size or cannot is None:
        return True
    n_groups, C, _, _ = _pairs(group, cannot)
    H = sp.csr_matrix((np.ones(on.size), (comp[on], group[on])), shape=(int(comp.max()) + 1, n_groups))
    pairs = np.asarray(H.sum(1)).ravel() >= 2  # components joining a pair of labelled points
    differ = np.asarray((H @ C).multiply(H).sum(1)).ravel() > 0  # ... of which some known to differ
    return not pairs.any() or 2 * int((pairs & ~differ).sum()) >= int(pairs.sum())


def unreached_components(idx: np.ndarray, seeded: np.ndarray, rate: float,
                         max_chance: float = NoveltySettings.max_chance, group: np.ndarray | None = None,
                         cannot: sp.spmatrix | None = None) -> list[np.ndarray]:
    """Connected components of the k-NN graph ``idx`` (n, k) that hold no ``seeded`` (n,) point and
    at least ``log(max_chance) / log(1 - rate)`` points: index arrays, largest first. With the side
    information ``group`` (n,) and ``cannot`` given, none unless the components hold its groups
    (:func:`components_hold_groups`)."""
    from scipy.sparse.csgraph import connected_components

    n = idx.shape[0]
    if n == 0 or not 0 < rate < 1:
        return []
    _, comp = connected_components(_connectivity(idx), directed=False)
    sizes = np.bincount(comp)
    has_seed = np.zeros(sizes.size, dtype=bool)
    has_seed[comp[np.asarray(seeded, dtype=bool)]] = True
    min_size = np.log(max_chance) / np.log1p(-rate) if rate < 1 else 1.0
    found = np.flatnonzero(~has_seed & (sizes >= min_size))
    if found.size and group is not None and not components_hold_groups(comp, np.asarray(group, dtype=np.int64),
                                                                        cannot):
        return []
    found = found[np.argsort(-sizes[found], kind="stable")]
    return [np.flatnonzero(comp == c) for c in found]


def min_part_size(n: int, rate: float, max_chance: float = NoveltySettings.max_chance) -> float:
    """Fewest points ``s`` of a part such that random side information at ``rate`` misses any of the
    ``n / s`` parts of that size that ``n`` points hold with a chance below ``max_chance``.

    The smallest ``s`` with ``(n / s) * (1 - rate) ** s <= max_chance`` (a union bound).
    """
    if rate <= 0:
        return np.inf
    if rate >= 1:  # every point has side information: no part is missed
        return 1.0
    log_miss = np.log1p(-rate)  # < 0
    s = np.log(max_chance) / log_miss  # one part alone
    for _ in range(50):  # fixed point of s = log(max_chance * s / n) / log(1 - rate)
        s_new = np.log(max_chance * s / n) / log_miss if n > s else s
        if abs(s_new - s) < 1e-6:
            break
        s = s_new
    return float(max(s, 1.0))


def unseen_groups(Z: np.ndarray, idx: np.ndarray, group: np.ndarray, cannot: sp.spmatrix,
                  max_chance: float = NoveltySettings.max_chance,
                  max_seen_share: float = NoveltySettings.max_seen_share,
                  null_draws: int = NoveltySettings.null_draws) -> list[np.ndarray]:
    """Parts of ``Z`` (n, d) that side information all but misses, where chance alone would not explain it.

    ``idx`` (n, k) are each point's nearest neighbours (the graph the tree's merges follow),
    ``group`` (n,) the side-information group of each point (-1: none) and ``cannot``
    (G, G) which groups are known to differ. Returns index arrays into ``Z``, disjoint,
    none holding a point with side information (see the module docstring); an empty list
    when the side information has no "same" or no "different" pairs.

    The parts are kept for equal inputs (read-only): every candidate of a validation fold asks
    for the same search, in the same space with the same side information.
    """
    group = np.asarray(group, dtype=np.int64)
    C = sp.csr_matrix(cannot)
    key = _PARTS.key(np.asarray(Z), np.asarray(idx), group, C.indptr, C.indices, C.data, C.shape,
                     float(max_chance), float(max_seen_share), int(null_draws))
    if (kept := _PARTS.get(key)) is None:
        kept = _unseen_groups(Z, idx, group, cannot, max_chance, max_seen_share, null_draws)
        for part in kept:
            part.setflags(write=False)
        _PARTS.put(key, kept)
    return list(kept)


_PARTS = ContentCache(8)  # the last searches' parts


def _unseen_groups(Z: np.ndarray, idx: np.ndarray, group: np.ndarray, cannot: sp.spmatrix, max_chance: float,
                   max_seen_share: float, null_draws: int) -> list[np.ndarray]:
    n = Z.shape[0]
    if n < 3 or not (group >= 0).any():
        return []
    _, _, tot_same, tot_diff = _pairs(group, cannot)
    if tot_same == 0 or tot_diff == 0:  # nothing to cut by: spare the tree
        return []
    children, heights = knn_ward_tree(Z, idx)
    h_star, score = best_cut(children, heights, group, cannot)
    if not score > 0:
        return []
    n_nodes = n + children.shape[0]
    size = np.ones(n_nodes, dtype=np.int64)
    labelled = np.zeros(n_nodes, dtype=np.int64)
    labelled[:n] = group >= 0
    height = np.zeros(n_nodes)
    parent = np.full(n_nodes, -1, dtype=np.int64)
    for j, (a, b) in enumerate(children):  # children come before their parent
        v = n + j
        size[v], labelled[v], height[v] = size[a] + size[b], labelled[a] + labelled[b], heights[j]
        parent[a] = parent[b] = v
    top = parent < 0
    # the parts at h*: the highest nodes not above it; cut[v]: the part at h* holding node v (-1: above)
    at_cut = (height <= h_star) & (top | (height[np.maximum(parent, 0)] > h_star))
    cut = np.full(n_nodes, -1, dtype=np.int64)
    for v in range(n_nodes - 1, -1, -1):  # parents come after their children
        cut[v] = v if at_cut[v] else (cut[parent[v]] if parent[v] >= 0 else -1)
    kids = {n + j: (int(a), int(b)) for j, (a, b) in enumerate(children)}

    def leaves(v: int, side: bool = False) -> np.ndarray:  # v's points without (side: only those with) side information
        out, stack = [], [v]
        while stack:
            u = stack.pop()
            if u < n:
                out.append(u)
            else:
                stack.extend(kids[u])
        out = np.asarray(out, dtype=np.int64)
        return np.sort(out[(group[out] >= 0) == side])

    n_labelled = np.bincount(group[group >= 0])  # labelled points of each side-information group

    def unseen(v: int, rate: float | None, p: int | None = None) -> bool:  # see the module docstring
        m, k = int(size[v]), int(labelled[v])
        score = part_score(m, k, rate, n, max_seen_share) if p is None else \
            hole_score(m, k, int(size[p]), int(labelled[p]), max_seen_share)
        if not score < chance:
            return False
        if k:  # only strays: no group with side information lies mostly inside
            inside = np.bincount(group[leaves(v, side=True)], minlength=n_labelled.size)
            if (2 * inside[inside > 0] >= n_labelled[inside > 0]).any():
                return False
        return True

    # the chance a part's score stands for: the family-wise one of the whole search under random
    # side information at the observed rate (see chance_threshold), not one test's
    chance = chance_threshold(children, size, at_cut, cut, int(labelled[:n].sum()), max_chance, max_seen_share,
                              null_draws)

    def too_small(m: int, rate: float) -> bool:  # no part of m points (nor any smaller) can be unseen
        return not 0 < rate < 1 or m * np.log1p(-rate) >= np.log(max(chance, 1e-300))

    parts, found = [], np.zeros(n_nodes, dtype=bool)  # found[v]: v holds a part found
    hole_size = hole_labelled = 0
    # 1. holes: the highest subtrees inside a part at h* that are unseen by the rate of side
    #    information in the rest of that part
    for p in np.flatnonzero(at_cut & (labelled > 0) & (np.arange(n_nodes) >= n)):
        stack = list(kids[int(p)])
        while stack:
            v = stack.pop()
            # with no labelled point, a subtree's score only grows as subtrees get smaller
            if not hole_score(int(size[v]), 0, int(size[p]), int(labelled[p]), max_seen_share) < chance:
                continue
            if unseen(v, None, int(p)):
                parts.append(leaves(v))
                found[p] = True
                hole_size, hole_labelled = hole_size + size[v], hole_labelled + labelled[v]
            elif v >= n:
                stack.extend(kids[v])
    # 2. whole parts, judged by the rate in the parts at h* that hold side information, not
    #    counting the holes (their points would dilute it); above h*, a subtree none of whose
    #    parts at h* is unseen alone but which is unseen as a whole (a group that the tree
    #    cut into pieces each too small to judge)
    held = at_cut & (labelled > 0)
    rate = (labelled[held].sum() - hole_labelled) / max(size[held].sum() - hole_size, 1)
    for v in map(int, np.flatnonzero(at_cut | (cut < 0))):  # children before parents
        if not at_cut[v]:  # above h*: judged only when no part below it was found
            a, b = kids[v]
            found[v] = found[a] or found[b]
        if not found[v] and not too_small(int(size[v]), rate) and unseen(v, rate):
            parts.append(leaves(v))
            found[v] = True
    return parts
