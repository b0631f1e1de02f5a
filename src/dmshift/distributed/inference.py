"""Sharded inference: the clustering stage of DMS over points spread across processes.

Each rank holds a contiguous shard of the points (rank order = global order). The
per-point work stays local; only per-center quantities travel:

============================  ==============================================  =================
step                          what each rank computes on its shard            combined by
============================  ==============================================  =================
seeds                         rank 0 draws global indices                     broadcast
seed embeddings               rows of the seeds it holds, zeros elsewhere     all-reduce (sum)
one shift step                per center: sum K qx, sum K, fingerprint, count all-reduce (sum)
convergence                   decided from the summed int64 fingerprints      (same on all)
center similarity             ``H_shard H_shardᵀ`` (M x M), tile by tile      reduce to rank 0
merging, cluster ids          connected components on rank 0                  broadcast
labels                        most confident center of each local point       stay local
cluster sizes, input centers  per-cluster counts; sum K x, sum K              all-reduce (sum)
============================  ==============================================  =================

Fingerprint keys come from the global index (:func:`~dmshift.meanshift.point_keys` with
an offset) and int64 sums are exact, so convergence decisions are those of a single
process on the same data and seeds; float sums only differ in summation order, so
labels agree up to floating-point ties.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..constants import NOISE
from ..kernels.base import tile_sizes
from ..meanshift import CenterResult, ShiftStats, find_centers, max_confidence, point_keys, select, unique_centers
from ..estimators.dms import anchor_centers, concat_centers
from ..merge import assign, confidence_matrix, merge_centers, merge_constrained, similarity_from_sums, similarity_sums
from ._comm import Comm, ShardLayout

__all__ = ["ShardLabels", "sharded_cluster", "sharded_predict"]


@dataclass
class ShardLabels:
    """Labels of this rank's points.

    Attributes
    ----------
    labels : ndarray of shape (n_local,)
        Cluster ids, NOISE (-1) where no cluster is confident.
    confidence : ndarray of shape (n_local,)
    offset : int
        Global index of the first local point.
    n_total : int
    n_clusters : int
    """

    labels: np.ndarray
    confidence: np.ndarray
    offset: int
    n_total: int
    n_clusters: int


# ---------------------------------------------------------------------- collectives of the core
def _stats_reducer(comm: Comm):
    """All-reduce of :class:`ShiftStats`: two collective calls per shift step."""
    def reduce(s: ShiftStats) -> ShiftStats:
        h = s.num.shape[1]
        f = comm.all_reduce(torch.cat([s.num, s.den[:, None]], 1), "shift step (weighted sums)")  # (M, h + 1)
        i = comm.all_reduce(torch.stack([s.fingerprint, s.count], 1), "shift step (fingerprints)")  # (M, 2)
        return ShiftStats(num=f[:, :h], den=f[:, h], fingerprint=i[:, 0], count=i[:, 1])
    return reduce


def _seed_embeddings(qx: torch.Tensor, seeds: np.ndarray, layout: ShardLayout, comm: Comm) -> torch.Tensor:
    """(M, h) embeddings of global ``seeds``: each rank fills the rows it holds."""
    local = seeds - layout.offset
    mine = (local >= 0) & (local < layout.n_local)
    out = torch.zeros((seeds.size, qx.shape[1]), dtype=qx.dtype, device=qx.device)
    out[torch.as_tensor(np.flatnonzero(mine), device=qx.device)] = qx[torch.as_tensor(local[mine], device=qx.device)]
    return comm.all_reduce(out, "seed embeddings")


def _find_centers(model, px, qx, keys, layout, comm, seeds) -> CenterResult:
    init = _seed_embeddings(qx, seeds, layout, comm)
    return find_centers(model.kernel_, px, qx, seeds, max_iter=model.max_iter, memory_budget=int(model.memory_budget),
                        keys=keys, reduce=_stats_reducer(comm), init_centers=init)


def _random_centers(model, px, qx, keys, layout, comm, rng, anchors=None) -> CenterResult:
    n = layout.n_total
    m = min(model.n_seeds, n)
    seeds = np.sort(rng.choice(n, size=m, replace=False)) if comm.rank == 0 else None
    seeds = comm.broadcast_array(seeds, m, torch.int64, "seeds").astype(np.int64)
    if anchors is not None:  # as DMSClustering._cluster: anchors also seed mean shift
        seeds = np.union1d(seeds, anchors["index"])
    return _find_centers(model, px, qx, keys, layout, comm, seeds)


def _adaptive_centers(model, px, qx, keys, layout, comm, rng, *, first_batch=8, coverage_tol=0.005) -> CenterResult:
    """The sharded twin of :func:`~dmshift.meanshift.find_centers_adaptive` (same draws on rank 0)."""
    kernel, budget = model.kernel_, int(model.memory_budget)
    n = layout.n_total
    covered = torch.zeros(layout.n_local, dtype=torch.bool, device=px.device)
    tried = np.zeros(layout.n_local, dtype=bool)
    parts: list[CenterResult] = []
    batch, used = first_batch, 0
    while used < model.n_seeds:
        cand = np.flatnonzero(~covered.cpu().numpy() & ~tried)  # local indices
        counts = comm.all_gather(torch.tensor([cand.size], dtype=torch.int64), "adaptive seeding (candidates)")
        counts = counts[:, 0].numpy()
        total = int(counts.sum())
        if total == 0 or total <= coverage_tol * n:
            break
        take = min(batch, model.n_seeds - used, total)
        # positions in the global, rank-ordered candidate list: what rng.choice(cand) draws
        pos = rng.choice(total, size=take, replace=False) if comm.rank == 0 else None
        pos = comm.broadcast_array(pos, take, torch.int64, "adaptive seeding (draw)").astype(np.int64)
        start = int(counts[:comm.rank].sum())
        mine = (pos >= start) & (pos < start + cand.size)
        seeds = np.zeros(take, dtype=np.int64)
        seeds[mine] = cand[pos[mine] - start] + layout.offset
        seeds = comm.all_reduce(torch.as_tensor(seeds), "adaptive seeding (seeds)").numpy()
        tried[seeds[mine] - layout.offset] = True
        res = _find_centers(model, px, qx, keys, layout, comm, seeds)
        parts.append(res)
        # as in find_centers_adaptive: a seed's starting neighbourhood counts as covered too
        reached = torch.cat([res.qc, _seed_embeddings(qx, seeds, layout, comm)])
        covered |= max_confidence(kernel, px, reached, budget) > kernel.inlier_threshold
        used += take
        batch *= 2
    if not parts:
        h = qx.shape[1]
        z = np.zeros(0, dtype=np.int64)
        return CenterResult(qc=qx.new_zeros((0, h)), seeds=z, n_iter=z, converged=z.astype(bool), fingerprint=z, count=z)
    return CenterResult(qc=torch.cat([p.qc for p in parts]), seeds=np.concatenate([p.seeds for p in parts]),
                        n_iter=np.concatenate([p.n_iter for p in parts]),
                        converged=np.concatenate([p.converged for p in parts]),
                        fingerprint=np.concatenate([p.fingerprint for p in parts]),
                        count=np.concatenate([p.count for p in parts]))


def _sinkhorn(H: torch.Tensor, n_total: int, comm: Comm, n_iter: int = 50, eps: float = 1e-12) -> torch.Tensor:
    """:func:`~dmshift.merge.sinkhorn` on column shards: row sums are all-reduced, column sums are local."""
    M = H.shape[0]
    A = H.double() + eps  # (M, n_local)
    for _ in range(n_iter):
        A = A / comm.all_reduce(A.sum(1, keepdim=True), "similarity (Sinkhorn row sums)")
        A = A * ((M / n_total) / A.sum(0, keepdim=True))
    return A.to(H.dtype)


def _gram(kernel, px: torch.Tensor, qc: torch.Tensor, similarity: str, n_total: int, comm: Comm,
          budget: int) -> torch.Tensor:
    """This rank's share of the sums over points that the similarity needs, (M, M) or (M, M + 1).

    Cosine and Jaccard sums are accumulated tile by tile over points, so the (M, n_local)
    confidence matrix is never held whole; the Sinkhorn similarities need all of it.
    """
    if similarity in ("bistochastic", "bistochastic-cosine"):
        Ht = _sinkhorn(confidence_matrix(kernel, px, qc, budget), n_total, comm).double()  # (M, n_local)
        return Ht @ Ht.T
    return similarity_sums(kernel, px, qc, similarity, budget)


def _merge(kernel, px: torch.Tensor, qc: torch.Tensor, similarity: str, threshold: float, n_total: int,
           comm: Comm, budget: int, center_group: np.ndarray | None = None, cannot=None) -> np.ndarray:
    """Component id (M,) of each center: sums over points reduced to rank 0, merged there, broadcast.

    The same similarities as :func:`~dmshift.merge.center_similarity`, from sums over points.
    """
    M = qc.shape[0]
    G = comm.reduce_to0(_gram(kernel, px, qc, similarity, n_total, comm, budget), "center similarity")
    comp = None
    if comm.rank == 0:
        S = similarity_from_sums(G, similarity)
        if center_group is not None:
            comp = merge_constrained(S, threshold, center_group, cannot)
        else:
            comp = merge_centers(S, threshold)
    return comm.broadcast_array(comp, M, torch.int64, "cluster ids").astype(np.int64)


def _size_order(counts: np.ndarray) -> np.ndarray:
    """Mapping old id -> new id by decreasing size (ties: smaller id first), NOISE for empty ids.

    Matches :func:`~dmshift.merge.relabel_by_size` given global per-id counts.
    """
    ids = np.flatnonzero(counts)
    order = ids[np.lexsort((ids, -counts[ids]))]
    mapping = np.full(counts.size, NOISE, dtype=np.int64)
    mapping[order] = np.arange(order.size)
    return mapping


@torch.no_grad()
def _cluster_shard(model, Xs: torch.Tensor, layout: ShardLayout, comm: Comm, rng,
                   anchors: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``DMSClustering._cluster`` on this rank's standardised rows ``Xs``; returns (labels, confidence).

    ``anchors`` (:func:`~dmshift.estimators.dms.select_anchors`, global row indices) are
    the side-information centers of a fit; re-clustering other data passes none.
    """
    kernel, budget = model.kernel_, int(model.memory_budget)
    px, qx = model._embed(Xs)  # (n_local, h), (n_local, h)
    keys = point_keys(layout.n_local, px.device, offset=layout.offset)
    if model.seeding == "random":
        res = _random_centers(model, px, qx, keys, layout, comm, rng, anchors)
    else:
        res = _adaptive_centers(model, px, qx, keys, layout, comm, rng)
    model.n_seeds_used_ = int(res.seeds.size)
    model.n_iter_ = int(res.n_iter.max()) if res.n_iter.size else 0
    model.converged_fraction_ = float(res.converged.mean()) if res.converged.size else 1.0
    res = select(res, unique_centers(res))
    center_group = cannot = None
    if anchors is not None:  # as DMSClustering._cluster: labelled points stay as fixed centers
        fixed = anchor_centers(_seed_embeddings(qx, anchors["index"], layout, comm), anchors["index"])
        res = concat_centers(res, fixed)
        center_group = np.concatenate([np.full(res.qc.shape[0] - fixed.qc.shape[0], -1), anchors["group"]])
        cannot = anchors["cannot"]
    comp = _merge(kernel, px, res.qc, model.similarity, model._merge_threshold(anchors), layout.n_total, comm, budget,
                  center_group, cannot)
    a = assign(kernel, px, res.qc, comp, model.noise_threshold, budget)
    counts = np.bincount(a.labels[a.labels != NOISE], minlength=comp.size)
    counts = comm.all_reduce(torch.as_tensor(counts, dtype=torch.int64), "cluster sizes").numpy()
    mapping = _size_order(counts)
    labels = np.where(a.labels == NOISE, NOISE, mapping[np.maximum(a.labels, 0)])
    center_cluster = mapping[comp]
    keep = center_cluster != NOISE
    res = select(res, np.flatnonzero(keep))
    model.center_embeddings_ = res.qc  # (M, h)
    model.center_cluster_ = center_cluster[keep]
    model.n_clusters_ = int(mapping.max(initial=-1) + 1)
    model.cluster_centers_ = _cluster_centers(model, px, Xs, res, comm)
    return labels, a.confidence


def _cluster_centers(model, px, Xs, res: CenterResult, comm: Comm) -> np.ndarray:
    """(n_clusters, d) input-space center of the largest inlier set of each cluster."""
    kernel, budget = model.kernel_, int(model.memory_budget)
    M, n, d = res.qc.shape[0], px.shape[0], Xs.shape[1]
    nd = torch.zeros((M, d + 1), dtype=Xs.dtype, device=Xs.device)  # [sum K x | sum K]
    _, tn = tile_sizes(M, n, kernel.bytes_per_pair(px), budget)
    for j in range(0, n, tn):
        K = kernel.pairwise(px[j:j + tn], res.qc, memory_budget=budget).to(Xs.dtype)  # (M, tn)
        nd[:, :d] += K @ Xs[j:j + tn]
        nd[:, d] += K.sum(1)
    nd = comm.all_reduce(nd, "cluster centers")
    centers = model._to_input_space(nd[:, :d] / nd[:, d].clamp_min(1e-6)[:, None])  # (M, n_features)
    best = np.zeros(model.n_clusters_, dtype=np.int64)
    for k in range(model.n_clusters_):
        members = np.flatnonzero(model.center_cluster_ == k)
        best[k] = members[np.argmax(res.count[members])]
    return centers[torch.as_tensor(best, device=centers.device)].cpu().numpy().astype(np.float32)


# ---------------------------------------------------------------------- public API
def _shape(X) -> tuple:
    shape = getattr(X, "shape", None)
    return tuple(shape) if shape is not None else np.shape(X)


def _standardised_shard(model, X_shard, comm: Comm, what: str) -> tuple[torch.Tensor, ShardLayout]:
    with comm.stage(f"{what} (model)"):
        model._check_fitted()
        n_features = int(model.n_features_in_)
    layout = comm.layout(_shape(X_shard), what, n_features=n_features)
    with comm.stage(f"{what} (input)"):
        X = model._check_X(X_shard, reset=False)
        Xs = model._transform(X)  # (n_local, kernel input width)
    return Xs, layout


def _generator(random_state) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    return np.random.default_rng(random_state)


@torch.no_grad()
def sharded_cluster(model, X_shard, *, random_state=None, group=None, timeout=None) -> ShardLabels:
    """Cluster the union of every rank's shard with a fitted model's kernel.

    The distributed counterpart of the clustering stage of
    :meth:`DMSClustering.fit <dmshift.DMSClustering.fit>`: seeds, mean shift to
    convergence, merging and labels, over all shards as if they were one array in rank
    order. Call it on every rank of ``group`` with that rank's shard.

    The result is stored in ``model`` as ``fit`` stores it (``center_embeddings_``,
    ``center_cluster_``, ``cluster_centers_``, ``n_clusters_``, ...), identical on every
    rank, so that ``model.predict`` and :func:`sharded_predict` assign new points to these
    clusters; ``labels_`` and ``confidence_`` hold this rank's shard only.

    Parameters
    ----------
    model : DMSClustering
        A fitted model (the same on every rank, e.g. loaded from one file).
    X_shard : array-like of shape (n_local, n_features)
        This rank's points; see :func:`~dmshift.distributed.load_shard`.
    random_state : int, numpy Generator or None
        Seed of the seed draw, used on rank 0 only. An int ``s`` gives the clustering that
        ``model._cluster(X, np.random.default_rng(s))`` gives on one process.
    group : ProcessGroup, optional
        Default: the default group; none initialised means one process.
    timeout : float or timedelta, optional
        Longest wait for one collective call (default: the group's timeout).

    Returns
    -------
    ShardLabels
    """
    comm = Comm(group, timeout)
    Xs, layout = _standardised_shard(model, X_shard, comm, "sharded_cluster")
    rng = _generator(random_state) if comm.rank == 0 else None
    model._clear_smoothing()
    labels, conf = _cluster_shard(model, Xs, layout, comm, rng)
    model.labels_ = labels
    model.confidence_ = conf
    return ShardLabels(labels=labels, confidence=conf, offset=layout.offset, n_total=layout.n_total,
                       n_clusters=model.n_clusters_)


@torch.no_grad()
def sharded_predict(model, X_shard, *, group=None, timeout=None) -> ShardLabels:
    """Assign this rank's points to a fitted model's clusters (``model.predict`` per shard).

    With smoothing applied in the fit, each point takes its nearest landmarks' vote, as in
    ``predict`` (every rank holds the landmarks).

    Assignment needs no communication; the ranks only check that they agree on the
    input's shape, so that a mismatch is one clear error on every rank.
    """
    comm = Comm(group, timeout)
    Xs, layout = _standardised_shard(model, X_shard, comm, "sharded_predict")
    px = model.kernel_.embed_points(Xs)
    a = assign(model.kernel_, px, model.center_embeddings_, model.center_cluster_, model.noise_threshold,
               int(model.memory_budget))
    return ShardLabels(labels=model._vote(Xs, a.labels), confidence=a.confidence, offset=layout.offset,
                       n_total=layout.n_total, n_clusters=int(model.n_clusters_))
