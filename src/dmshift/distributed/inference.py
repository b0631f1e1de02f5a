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

from ..clustering import Clustering, cluster
from ..constants import NOISE
from ..estimators._dms_params import cluster_params
from ..kernels.base import tile_sizes
from ..meanshift import CenterResult, ShiftStats, find_centers, max_confidence, point_keys
from ..merge import assign, confidence_matrix, merge_centers, merge_constrained, similarity_from_sums, similarity_sums
from ._comm import Comm, ShardLayout

__all__ = ["ShardLabels", "ShardBackend", "sharded_cluster", "sharded_predict"]


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


def _find_centers(kernel, px, qx, keys, layout, comm, seeds, max_iter: int, budget: int) -> CenterResult:
    init = _seed_embeddings(qx, seeds, layout, comm)
    return find_centers(kernel, px, qx, seeds, max_iter=max_iter, memory_budget=budget,
                        keys=keys, reduce=_stats_reducer(comm), init_centers=init)


def _adaptive_centers(kernel, px, qx, keys, layout, comm, rng, *, max_seeds: int, max_iter: int, budget: int,
                      first_batch=8, coverage_tol=0.005) -> CenterResult:
    """The sharded twin of :func:`~dmshift.meanshift.find_centers_adaptive` (same draws on rank 0)."""
    n = layout.n_total
    covered = torch.zeros(layout.n_local, dtype=torch.bool, device=px.device)
    tried = np.zeros(layout.n_local, dtype=bool)
    parts: list[CenterResult] = []
    batch, used = first_batch, 0
    while used < max_seeds:
        cand = np.flatnonzero(~covered.cpu().numpy() & ~tried)  # local indices
        counts = comm.all_gather(torch.tensor([cand.size], dtype=torch.int64), "adaptive seeding (candidates)")
        counts = counts[:, 0].numpy()
        total = int(counts.sum())
        if total == 0 or total <= coverage_tol * n:
            break
        take = min(batch, max_seeds - used, total)
        # positions in the global, rank-ordered candidate list: what rng.choice(cand) draws
        pos = rng.choice(total, size=take, replace=False) if comm.rank == 0 else None
        pos = comm.broadcast_array(pos, take, torch.int64, "adaptive seeding (draw)").astype(np.int64)
        start = int(counts[:comm.rank].sum())
        mine = (pos >= start) & (pos < start + cand.size)
        seeds = np.zeros(take, dtype=np.int64)
        seeds[mine] = cand[pos[mine] - start] + layout.offset
        seeds = comm.all_reduce(torch.as_tensor(seeds), "adaptive seeding (seeds)").numpy()
        tried[seeds[mine] - layout.offset] = True
        res = _find_centers(kernel, px, qx, keys, layout, comm, seeds, max_iter, budget)
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


class ShardBackend:
    """The steps of :func:`dmshift.clustering.cluster` that read all points, for points spread over ranks.

    Per-point work stays on this rank's shard (``layout``); per-center sums travel
    through ``comm`` (see the module docstring). Random draws happen on rank 0 (the other
    ranks pass ``rng`` None).
    """

    def __init__(self, layout: ShardLayout, comm: Comm):
        self.layout, self.comm = layout, comm
        self._keys = None

    def begin(self, px: torch.Tensor) -> int:
        """Start a clustering of this rank's points (embeddings ``px``); the number of points of all ranks."""
        self._keys = point_keys(self.layout.n_local, px.device, offset=self.layout.offset)  # global fingerprint keys
        return self.layout.n_total

    def draw_seeds(self, rng, n: int, m: int) -> np.ndarray:
        seeds = np.sort(rng.choice(n, size=m, replace=False)) if self.comm.rank == 0 else None
        return self.comm.broadcast_array(seeds, m, torch.int64, "seeds").astype(np.int64)

    def shift_sample(self, rng, n: int, seeds: np.ndarray, max_points: int | None):
        """Sharded points all take part in mean shift (no sample): None."""
        return None

    def find_centers(self, kernel, px, qx, seeds, *, max_iter: int, memory_budget: int) -> CenterResult:
        return _find_centers(kernel, px, qx, self._keys, self.layout, self.comm, seeds, max_iter, memory_budget)

    def find_centers_adaptive(self, kernel, px, qx, rng, *, max_seeds: int, max_iter: int,
                              memory_budget: int) -> CenterResult:
        return _adaptive_centers(kernel, px, qx, self._keys, self.layout, self.comm, rng, max_seeds=max_seeds,
                                 max_iter=max_iter, budget=memory_budget)

    def rows(self, qx: torch.Tensor, index: np.ndarray) -> torch.Tensor:
        return _seed_embeddings(qx, index, self.layout, self.comm)

    def merge(self, kernel, px, qc, similarity: str, threshold: float, memory_budget: int,
              center_group: np.ndarray | None, cannot) -> np.ndarray:
        return _merge(kernel, px, qc, similarity, threshold, self.layout.n_total, self.comm, memory_budget,
                      center_group, cannot)

    def relabel(self, labels: np.ndarray, comp: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        counts = np.bincount(labels[labels != NOISE], minlength=comp.size)
        counts = self.comm.all_reduce(torch.as_tensor(counts, dtype=torch.int64), "cluster sizes").numpy()
        mapping = _size_order(counts)
        labels = np.where(labels == NOISE, NOISE, mapping[np.maximum(labels, 0)])
        return labels, mapping[comp], int(mapping.max(initial=-1) + 1)

    def input_centers(self, kernel, px, Xs, qc, memory_budget: int) -> torch.Tensor:
        """Kernel-weighted mean (M, c) of all ranks' points for each center."""
        M, n, d = qc.shape[0], px.shape[0], Xs.shape[1]
        nd = torch.zeros((M, d + 1), dtype=Xs.dtype, device=Xs.device)  # [sum K x | sum K]
        _, tn = tile_sizes(M, n, kernel.bytes_per_pair(px), memory_budget)
        for j in range(0, n, tn):
            K = kernel.pairwise(px[j:j + tn], qc, memory_budget=memory_budget).to(Xs.dtype)  # (M, tn)
            nd[:, :d] += K @ Xs[j:j + tn]
            nd[:, d] += K.sum(1)
        nd = self.comm.all_reduce(nd, "cluster centers")
        return nd[:, :d] / nd[:, d].clamp_min(1e-6)[:, None]


def cluster_shard(kernel, Xs: torch.Tensor, rng, params, *, to_input, layout: ShardLayout, comm: Comm,
                  anchors=None) -> Clustering:
    """:func:`dmshift.clustering.cluster` on this rank's prepared rows ``Xs`` (n_local, c).

    ``anchors`` (:func:`~dmshift.anchors.select_anchors`, global row indices) are the
    side-information centers of a fit; re-clustering other data passes none. The labels
    and confidences are this rank's; the rest is the same on every rank.
    """
    return cluster(kernel, Xs, rng, params, to_input=to_input, anchors=anchors, backend=ShardBackend(layout, comm))


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
        ``model.recluster(X, random_state=s)`` gives on one process without anchors
        (``inference_side_info=False``).
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
    found = cluster_shard(model.kernel_, Xs, rng, cluster_params(model), to_input=model._to_input_space,
                          layout=layout, comm=comm)
    model._set_clustering(found)  # labels_ and confidence_: this rank's shard
    return ShardLabels(labels=found.labels, confidence=found.confidence, offset=layout.offset,
                       n_total=layout.n_total, n_clusters=found.n_clusters)


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
    qc = torch.as_tensor(model.center_embeddings_, device=px.device)  # (M, h)
    a = assign(model.kernel_, px, qc, model.center_cluster_, model.noise_threshold, int(model.memory_budget))
    return ShardLabels(labels=model._vote(Xs, a.labels), confidence=a.confidence, offset=layout.offset,
                       n_total=layout.n_total, n_clusters=int(model.n_clusters_))
