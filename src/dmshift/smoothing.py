"""Graph smoothing of cluster labels: label spreading over a k-nearest-neighbour graph.

Mean shift with a learned kernel decides *which* clusters there are (their number, the
ones no side information mentions); each point then goes to the cluster of its most
confident center. That last step judges every point on its own. Smoothing lets the
points vote: seed points (the caller chooses them; DMS takes the points with side
information and the most confident points of clusters that hold none) carry their
cluster's label, and the labels spread over the graph of each point's ``n_neighbors``
nearest neighbours in the kernel's input space (Zhou et al.'s label spreading,
``F <- alpha S F + (1 - alpha) Y`` with ``S = D^-1/2 W D^-1/2``; Gaussian edge weights
with Zelnik-Manor and Perona's self-tuning scale). An edge that the neighbour does not
return (i is not among its ``reciprocal_neighbors`` nearest) weighs ``one_way_weight`` of
that (fields of :class:`~dmshift.settings.SmoothingSettings`): such edges are where one
group hangs on to another (``benchmarks/results/smoothing-reciprocal.md``).
A point takes the label with the largest spread score; a point no seed reaches keeps
its label.

Above ``max_points`` points, the graph is built on a random subset of that many points
(the landmarks) and every other point takes the vote of its nearest landmarks, so the
cost grows linearly in n. ``predict`` uses the same vote against the landmarks that
``fit`` stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .constants import NOISE
from ._memo import ContentCache
from .novelty import tree_points, unreached_components, unseen_groups
from .settings import NoveltySettings, SmoothingSettings

__all__ = ["knn", "knn_graph", "reciprocal", "one_way_factor", "spread_labels", "vote_labels", "revote",
           "smooth_labels", "Smoothed"]

@torch.no_grad()
def knn(Z: torch.Tensor, R: torch.Tensor, k: int, memory_budget: int, exclude_self: bool = False):
    """The ``k`` nearest rows of ``R`` (m, d) for each row of ``Z`` (n, d): indices and distances, (n, k).

    ``exclude_self``: ``Z`` is ``R`` and a point is not its own neighbour. Tiled over the
    rows of ``Z`` so that one (rows, m) distance tile fits in ``memory_budget`` bytes.
    """
    n, m = Z.shape[0], R.shape[0]
    k = min(k, m - int(exclude_self))
    if k < 1:
        raise ValueError(f"knn needs at least {1 + int(exclude_self)} reference points; got {m}.")
    idx = torch.empty(n, k, dtype=torch.int64, device=Z.device)
    dist = torch.empty(n, k, dtype=Z.dtype, device=Z.device)
    for s, i, v in _knn_tiles(Z, R, k, memory_budget, exclude_self):
        idx[s:s + i.shape[0]], dist[s:s + i.shape[0]] = i, v
    return idx, dist


_GRAPHS = ContentCache(8)  # the last k-NN graphs built: each graph candidate's, the input space's, the tree's two


def knn_graph(Z: torch.Tensor, k: int, memory_budget: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`knn` of ``Z`` against itself without self-neighbours, kept for equal ``Z`` and ``k``:
    a fit asks for the graph of the same points once per candidate and fold. Callers that need
    fewer neighbours take the leading columns of the same ``k``, so that they share one graph."""
    key = _GRAPHS.key(Z, k)
    if (kept := _GRAPHS.get(key)) is None:
        kept = knn(Z, Z, k, memory_budget, exclude_self=True)
        _GRAPHS.put(key, kept)
    return kept[0].clone(), kept[1].clone()  # the caller's to change


def _tile_rows(n: int, bytes_per_row: int, memory_budget: int) -> int:
    """Rows of a tile of ``bytes_per_row`` each that fit in ``memory_budget`` (at least one)."""
    return max(1, min(n, memory_budget // max(1, bytes_per_row)))


def _knn_tiles(Z: torch.Tensor, R: torch.Tensor, k: int, memory_budget: int, exclude_self: bool = False):
    """Yield ``(start, idx (t, k), dist (t, k))`` for consecutive row tiles of ``Z``, nearest first.

    One (t, m) buffer, reused by every tile, holds a tile's squared distances (``|r|^2 -
    2 z.r`` written by one matrix product, ``|z|^2`` added in place), so the tiles cost
    ``4 m t`` bytes of the budget together.
    """
    n, m = Z.shape[0], R.shape[0]
    rows = _tile_rows(n, Z.element_size() * m, memory_budget)
    r2 = (R * R).sum(1)  # (m,)
    buf = torch.empty(rows, m, dtype=Z.dtype, device=Z.device)  # reused: one tile's worth, however many tiles
    for s in range(0, n, rows):
        z = Z[s:s + rows]  # (t, d)
        d2 = torch.addmm(r2[None, :], z, R.T, alpha=-2.0, out=buf[:z.shape[0]])  # (t, m)
        d2.add_((z * z).sum(1, keepdim=True)).clamp_min_(0)
        if exclude_self:
            d2[torch.arange(z.shape[0], device=Z.device), torch.arange(s, s + z.shape[0], device=Z.device)] = float("inf")
        v, i = d2.topk(k, dim=1, largest=False)  # (t, k)
        yield s, i, v.sqrt_()


def _weights(dist: torch.Tensor) -> torch.Tensor:
    """Gaussian edge weights with a per-point scale: the distance to the farthest of its k neighbours."""
    sigma = dist[:, -1:].clamp_min(1e-12)
    return torch.exp(-(dist / sigma) ** 2)


def _pair_weights(idx: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    """Gaussian edge weights (n, k) with the self-tuning scale of Zelnik-Manor and Perona (2004).

    ``exp(-d_ij^2 / (s_i s_j))``, ``s`` a point's distance to the farthest of its k
    neighbours: symmetric in i and j, and it adapts to the density at both ends of an edge
    (label spreading from 5% side information over 3 neighbours: ahead of the one-ended
    scale of :func:`_weights` on 9 of 10 data sets, behind on TREC,
    ``benchmarks/results/smoothing-neighbors.md``).
    """
    s = dist[:, -1].clamp_min(1e-12)  # (n,)
    return torch.exp(-dist.square() / (s[:, None] * s[idx]))


def one_way_factor(returned: torch.Tensor, weight: float = SmoothingSettings.one_way_weight) -> torch.Tensor:
    """Edge factors (n, k) for :func:`spread_labels`: 1 for a returned edge, ``weight`` for a one-way one."""
    return weight + (1.0 - weight) * returned.float()


def reciprocal(idx: torch.Tensor, idx_wide: torch.Tensor) -> torch.Tensor:
    """Which edges of the k-NN graph ``idx`` (n, k) are returned: i is among the nearest ``idx_wide``
    (n, k') of its neighbour. A bool tensor (n, k)."""
    me = torch.arange(idx.shape[0], device=idx.device)[:, None, None]
    return (idx_wide[idx] == me).any(-1)


@torch.no_grad()
def spread_labels(idx: torch.Tensor, dist: torch.Tensor, seeds: np.ndarray, seed_labels: np.ndarray,
                  n_labels: int, alpha: float = SmoothingSettings.alpha, n_iter: int = SmoothingSettings.n_iter,
                  seed_weights: np.ndarray | None = None, edge_factor: torch.Tensor | None = None) -> torch.Tensor:
    """Label spreading on the symmetrised k-NN graph ``(idx, dist)`` (n, k): scores (n, n_labels).

    ``seeds`` (s,) are node indices with labels ``seed_labels`` (s,) in ``[0, n_labels)``
    and weights ``seed_weights`` (s,) (default 1); ``edge_factor`` (n, k) scales the edges'
    Gaussian weights (default 1).
    """
    n, k = idx.shape
    dev = idx.device
    rows = torch.arange(n, device=dev).repeat_interleave(k)
    w = _pair_weights(idx, dist.float())
    if edge_factor is not None:
        w = w * edge_factor.to(w.dtype)
    w = w.reshape(-1)
    W = torch.sparse_coo_tensor(torch.stack([rows, idx.reshape(-1)]), w, (n, n), check_invariants=False)
    W = (W + W.t()).coalesce()  # symmetric: an edge counts if either end chose it
    deg = torch.zeros(n, device=dev).index_add_(0, W.indices()[0], W.values())
    inv = deg.clamp_min(1e-12).rsqrt()
    vals = inv[W.indices()[0]] * W.values() * inv[W.indices()[1]]
    S = torch.sparse_coo_tensor(W.indices(), vals, (n, n), check_invariants=False).coalesce()
    Y = torch.zeros(n, n_labels, device=dev)
    w = 1.0 if seed_weights is None else torch.as_tensor(seed_weights, dtype=Y.dtype, device=dev)
    Y[torch.as_tensor(seeds, device=dev), torch.as_tensor(seed_labels, device=dev)] = w
    F = Y.clone()
    for _ in range(n_iter):
        F = alpha * torch.sparse.mm(S, F) + (1.0 - alpha) * Y
    return F


@torch.no_grad()
def vote_labels(Z: torch.Tensor, R: torch.Tensor, r_labels: np.ndarray, k: int, memory_budget: int, *,
                keep: bool = False) -> np.ndarray:
    """Label of each row of ``Z``: the weighted vote of its ``k`` nearest rows of ``R`` (labels ``r_labels``).

    Rows of ``R`` labelled NOISE (-1) do not vote; a row of ``Z`` none of whose neighbours
    votes gets NOISE. Tiled over the rows of ``Z`` within ``memory_budget`` bytes. ``keep``:
    the neighbour search is kept for the next vote over the same points (see :func:`_vote_tiles`).
    """
    out = np.empty(Z.shape[0], dtype=np.int64)
    for s, idx, dist in _vote_tiles(Z, R, r_labels, k, memory_budget, keep):
        out[s:s + idx.shape[0]] = _vote(idx, dist, r_labels)
    return out


_VOTES = ContentCache(8)  # the last kept neighbour searches: a fit votes over the same points once per fold


def _vote_tiles(Z: torch.Tensor, R: torch.Tensor, r_labels: np.ndarray, k: int, memory_budget: int, keep: bool):
    """``(start, idx, dist)`` row tiles of the ``k`` nearest rows of ``R`` for the rows of ``Z``, each
    of which a vote of ``r_labels`` fits in ``memory_budget`` with.

    Without ``keep``, each tile's search shares the budget with its vote and nothing of size (rows
    of ``Z``, k) is held whole. With ``keep`` (a fit's candidates: every fold votes the same points
    over the same landmarks), the search, which does not read the labels, runs in tiles of its
    own (a row's m distances and its k neighbours, about 8 values of 4 bytes each) and is kept
    for equal points; the votes then run on rows whose ``n_labels`` scores fit.
    """
    n_labels = max(1, int(np.max(r_labels, initial=-1)) + 1)
    m = R.shape[0]
    if not keep:
        per_row = R.element_size() * m + 4 * n_labels + 32 * k
        return _knn_tiles(Z, R, k, max(1, memory_budget * (R.element_size() * m) // per_row))
    budget = max(1, memory_budget * (R.element_size() * m) // (R.element_size() * m + 32 * k))
    key = _VOTES.key(Z, R, k, budget)
    if (kept := _VOTES.get(key)) is None:
        kept = list(_knn_tiles(Z, R, k, budget))
        _VOTES.put(key, kept)
    rows = _tile_rows(Z.shape[0], 4 * n_labels + 32 * k, memory_budget)
    return [(s + j, idx[j:j + rows], dist[j:j + rows]) for s, idx, dist in kept for j in range(0, idx.shape[0], rows)]


def _vote(idx: torch.Tensor, dist: torch.Tensor, r_labels: np.ndarray) -> np.ndarray:
    """The weighted vote (n,) of the reference rows ``idx`` (n, k) at distances ``dist`` (see :func:`vote_labels`)."""
    lab = torch.as_tensor(r_labels, device=idx.device)[idx]  # (n, k)
    n_labels = int(r_labels.max(initial=-1)) + 1
    votes = torch.zeros(idx.shape[0], max(1, n_labels), device=idx.device)
    votes.scatter_add_(1, lab.clamp_min(0), _weights(dist.float()) * (lab >= 0))
    out = votes.argmax(1)
    out[votes.sum(1) <= 0] = NOISE
    return out.cpu().numpy()


@torch.no_grad()
def revote(Z: torch.Tensor, R: torch.Tensor, r_labels: np.ndarray, labels: np.ndarray, k: int,
           memory_budget: int, keep_noise: bool = True, radius: torch.Tensor | None = None, *,
           keep: bool = False) -> np.ndarray:
    """``labels`` of the rows of ``Z`` replaced by their neighbours' vote (:func:`vote_labels`).

    A row labelled NOISE stays NOISE (``keep_noise``; else it takes the vote too, if
    ``radius`` (m,) is given only when it lies within the radius of one of its ``k``
    nearest rows of ``R``: a point far from every reference point stays noise); a row
    none of whose neighbours votes keeps its label. Tiled over the rows of ``Z`` within
    ``memory_budget`` bytes. A row equal to a row of ``R`` takes that row's label (unless NOISE).
    ``keep`` as in :func:`vote_labels`.
    """
    labels = np.asarray(labels)
    out = labels.copy()
    if radius is not None:
        radius = radius.to(Z.device, Z.dtype)
    for s, idx, dist in _vote_tiles(Z, R, r_labels, k, memory_budget, keep):
        e = s + idx.shape[0]
        voted = _vote(idx, dist, r_labels)
        # a row equal to a reference row takes that row's label: the vote extends the reference
        # labels to other points, it does not relabel the references (the search's distance is
        # not exact in float32, so the nearest is measured again)
        first = idx[:, 0]
        own = np.asarray(r_labels)[first.cpu().numpy()]
        equal = ((Z[s:e] - R[first]).abs().amax(1) == 0).cpu().numpy() & (own != NOISE)
        voted = np.where(equal, own, voted)
        kept = labels[s:e] == NOISE
        if not keep_noise:
            near = np.ones_like(kept) if radius is None else (dist <= radius[idx]).any(1).cpu().numpy()
            kept &= ~near
        out[s:e] = np.where(kept | (voted == NOISE), labels[s:e], voted)
    return out


@dataclass
class Smoothed:
    labels: np.ndarray  # (n,) smoothed labels, NOISE kept where it was unless relabelled (the input labels if not applied)
    landmarks: np.ndarray  # (m,) indices of the points the graph was built on
    landmark_labels: np.ndarray  # (m,)
    agreement: float  # share of graph edges between two seeds that join seeds of one label (nan: none)
    applied: bool
    n_unseen: int = 0  # groups found that no side information mentions (see ``groups``)
    radius: torch.Tensor | None = None  # (m,) each landmark's distance to its reciprocal_neighbors-th nearest
    unseen_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # the labels they seed


@torch.no_grad()
def smooth_labels(Z: torch.Tensor, labels: np.ndarray, seeds: np.ndarray, n_neighbors: int, max_points: int,
                  rng: np.random.Generator, memory_budget: int, min_agreement: float = 0.0,
                  fixed: np.ndarray | None = None, groups: np.ndarray | None = None,
                  cannot=None, keep_noise: bool = True, settings: SmoothingSettings = SmoothingSettings(),
                  novelty: NoveltySettings = NoveltySettings(), Z_novelty: torch.Tensor | None = None,
                  Z_also: torch.Tensor | None = None, voted: np.ndarray | None = None) -> Smoothed:
    """Spread the labels of ``seeds`` (indices into ``Z``) over the k-NN graph of ``Z`` (n, d).

    ``labels`` (n,) are the current labels (NOISE allowed); the seeds' labels are
    ``labels[seeds]`` and must not be NOISE. Points labelled NOISE stay NOISE
    (``keep_noise``; else the landmarks are relabelled like the others, and the other
    points when they lie within the radius of one of their nearest landmarks, see
    :func:`revote`); the others take the label with the largest spread score (their own
    where no seed reaches them).
    Points in ``fixed`` (indices, such as those with side information) keep their label.

    The graph is only trusted when it agrees with the seeds: when fewer than
    ``min_agreement`` of the edges between two seeds in the ``settings.gate_neighbors``-NN graph
    join seeds of one label (the neighbourhoods of ``Z`` group the points some other way
    than the labels do), the labels are returned unchanged with ``applied`` False.

    ``groups`` (n,) and ``cannot`` (G, G), the side-information group of each point (-1:
    none) and which groups differ, turn on the search for unseen groups
    (:func:`dmshift.novelty.unseen_groups`, on the landmarks, once the graph is trusted):
    each group found seeds a new label on all its points, NOISE and other seeds included
    (a cluster whose seeds all lie in one such group thus gives way to it). With ``fixed``
    given, a connected component of the spreading graph's reciprocal edges that no seed is
    in, and that side information at the rate of ``fixed`` would have reached with a chance
    of at least 95%, seeds a label of its own on its points but NOISE, where the components
    hold the groups of ``groups`` (:func:`dmshift.novelty.unreached_components`).

    ``Z_novelty`` (n, e), when given, is the space whose Ward tree the search for unseen groups
    cuts instead of ``Z``'s (a kernel learnt from some groups maps the points of a group it never
    saw onto the seen ones; the input space keeps them apart).

    ``Z_also`` (n, e), when given, is a second graph's space (the fused graph): the same seeds
    spread over the k-NN graph of each, each point's scores in each graph are divided by their
    sum, and the two are added. Everything else (the gate, the unseen groups, the landmarks'
    radius, the vote of the points beyond the landmarks) reads ``Z``'s graph.

    With ``groups``, at most :func:`~dmshift.novelty.tree_points` landmarks (fewer than
    ``max_points`` where their Ward tree would not fit in ``memory_budget``). ``voted``: the
    points beyond the landmarks whose labels are wanted (indices; None: all); the others keep
    their input labels. A validation fold reads its side-information points alone.

    ``settings`` holds the graph's numbers (the fields but ``max_points``,
    ``min_agreement`` and ``components``, which the caller passes or uses itself) and
    ``novelty`` those of the search for unseen groups.
    """
    n = Z.shape[0]
    labels = np.asarray(labels, dtype=np.int64)
    out = labels.copy()
    if groups is not None:  # the landmarks' Ward tree must fit in the budget too
        max_points = tree_points(max_points, memory_budget)
    landmarks = np.arange(n) if n <= max_points else np.sort(rng.choice(n, size=max_points, replace=False))
    if landmarks.size < 2 or seeds.size == 0:
        return Smoothed(out, landmarks, out[landmarks], float("nan"), False)
    pos = np.full(n, -1, dtype=np.int64)
    pos[landmarks] = np.arange(landmarks.size)
    seeds = seeds[pos[seeds] >= 0]  # seeds among the landmarks
    Zl = Z[torch.as_tensor(landmarks, device=Z.device)]
    gate, wide = settings.gate_neighbors, settings.reciprocal_neighbors
    k_graph = max(n_neighbors, gate, wide, settings.tree_neighbors if groups is not None else 0)
    idx_tree, dist = knn_graph(Zl, k_graph, memory_budget)  # ascending distance
    radius = dist[:, min(wide, dist.shape[1]) - 1].clone()  # (m,)
    idx, dist = idx_tree[:, :n_neighbors], dist[:, :n_neighbors]
    returned = reciprocal(idx, idx_tree[:, :wide])  # (m, n_neighbors)
    seed_label = np.full(landmarks.size, -1, dtype=np.int64)
    seed_label[pos[seeds]] = labels[seeds]
    a, b = seed_label[:, None], seed_label[idx_tree[:, :gate].cpu().numpy()]
    both = (a >= 0) & (b >= 0)
    agreement = float(((a == b) & both).sum() / both.sum()) if both.any() else float("nan")
    if min_agreement > 0 and not agreement >= min_agreement:  # nan (no edge joins two seeds) fails too
        return Smoothed(out, landmarks, out[landmarks], agreement, False)
    n_labels = int(labels.max(initial=-1)) + 1
    first_unseen = n_labels
    lm = labels[landmarks].copy()
    stays_noise = (lm == NOISE) if keep_noise else np.zeros(lm.shape, dtype=bool)  # (m,)
    n_unseen = 0
    in_part = np.zeros(landmarks.size, dtype=bool)
    if groups is not None:  # each unseen group seeds a label of its own, also over NOISE and other seeds
        Zt, idx_t = Zl, idx_tree
        if Z_novelty is not None:
            Zt = Z_novelty[torch.as_tensor(landmarks, device=Z_novelty.device)]
            idx_t = knn_graph(Zt, k_graph, memory_budget)[0][:, :settings.tree_neighbors]  # the input graph's
        for part in unseen_groups(Zt.cpu().numpy(), idx_t.cpu().numpy(),
                                  np.asarray(groups)[landmarks], cannot,
                                  max_chance=novelty.max_chance, max_seen_share=novelty.max_seen_share,
                                  null_draws=novelty.null_draws):
            seed_label[part] = n_labels
            stays_noise[part] = False
            in_part[part] = True
            n_labels += 1
            n_unseen += 1
    weights = None
    if fixed is not None and fixed.size:
        is_fixed = np.zeros(landmarks.size, dtype=bool)
        is_fixed[pos[fixed[pos[fixed] >= 0]]] = True
        rate = min(1.0, is_fixed.sum() / landmarks.size)
        if groups is not None:
            # a component of the graph of reciprocal edges that no seed is in is joined to the
            # seeded ones by one-way edges at most: large enough, it is a group of its own (it
            # seeds a label over its points; the points that hang on to it by one-way edges
            # follow through the spreading) rather than whatever cluster the kernel gave it
            self_loop = torch.arange(landmarks.size, device=idx.device)[:, None]  # stands in for a one-way edge
            for part in unreached_components(torch.where(returned, idx, self_loop).cpu().numpy(), seed_label >= 0,
                                             rate, max_chance=novelty.max_chance,
                                             group=np.asarray(groups)[landmarks], cannot=cannot):
                members = part[~stays_noise[part]]
                if members.size:
                    seed_label[members] = n_labels
                    in_part[members] = True
                    n_labels += 1
                    n_unseen += 1
    seeds_l = np.flatnonzero(seed_label >= 0)
    if fixed is not None and fixed.size:
        # a label seeded by fixed points weighs one per point; any other label is seeded as
        # densely as the fixed points seed theirs: its seeds weigh ``rate * size / n_seeds``
        # together, so that a cluster seeded by its confident half, or an unseen group seeded
        # whole, does not drown a group with a few points of side information
        sl = seed_label[seeds_l]
        # a cluster's size: its points outside the unseen groups; an unseen group's: its own
        own = np.bincount(lm[(lm >= 0) & ~in_part], minlength=n_labels)
        size = np.where(own > 0, own, np.bincount(sl, minlength=n_labels))
        count = np.bincount(sl[~is_fixed[seeds_l]], minlength=n_labels)
        weights = np.where(is_fixed[seeds_l], 1.0, rate * size[sl] / np.maximum(count[sl], 1))
    F = spread_labels(idx, dist, seeds_l, seed_label[seeds_l], n_labels, seed_weights=weights,
                      alpha=settings.alpha, n_iter=settings.n_iter,
                      edge_factor=one_way_factor(returned, settings.one_way_weight))
    if Z_also is not None:  # each graph's scores as shares, added: neither graph's scale decides
        idx_a, dist_a = knn_graph(Z_also[torch.as_tensor(landmarks, device=Z_also.device)], k_graph, memory_budget)
        F_a = spread_labels(idx_a[:, :n_neighbors], dist_a[:, :n_neighbors], seeds_l, seed_label[seeds_l], n_labels,
                            seed_weights=weights, alpha=settings.alpha, n_iter=settings.n_iter,
                            edge_factor=one_way_factor(reciprocal(idx_a[:, :n_neighbors], idx_a[:, :wide]),
                                                       settings.one_way_weight))
        F = F / F.sum(1, keepdim=True).clamp_min(1e-30) + F_a / F_a.sum(1, keepdim=True).clamp_min(1e-30)
    reached = (F.sum(1) > 0).cpu().numpy()
    new = F.argmax(1).cpu().numpy()
    lm = np.where(reached & ~stays_noise, new, lm)
    if fixed is not None and fixed.size:
        fl = pos[fixed] >= 0
        lm[pos[fixed[fl]]] = labels[fixed[fl]]
    out[landmarks] = lm
    rest = np.flatnonzero(pos < 0)
    if voted is not None:
        rest = rest[np.isin(rest, voted)]
    if rest.size:
        out[rest] = revote(Z[torch.as_tensor(rest, device=Z.device)], Zl, lm, out[rest], n_neighbors, memory_budget,
                           keep_noise=keep_noise, radius=radius, keep=True)  # a fit's: once per fold
    if fixed is not None and fixed.size:
        out[fixed] = labels[fixed]
    return Smoothed(out, landmarks, lm, agreement, True, n_unseen, radius=radius,
                    unseen_labels=np.arange(first_unseen, n_labels))
