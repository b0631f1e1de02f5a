"""Data-parallel DMS training: DistributedDataParallel over the instances of each batch.

Every rank holds the same training set (the points with side information plus the
unlabelled points instances draw from) and draws the same batch of instance indices from
the same random stream, which costs nothing next to the shift steps. Each rank then
shifts only its contiguous slice of the batch's instances, and DistributedDataParallel
sums the gradients. Each rank's loss is its share of the whole batch's loss (its sum over
labelled points divided by the whole batch's count), so the summed gradient is exactly
the single-process gradient: one process and ``k`` processes take the same optimisation
steps up to floating-point summation order. Validation losses are summed the same way
and broadcast, so early stopping decides the same step on every rank. The model is then
clustered with :mod:`sharded inference <dmshift.distributed.inference>` over the ranks'
slices of the training set, and every rank ends with the whole ``labels_``.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from ..constraints import SideInfo
from ..instance_training import DataParallelPlan
from ._comm import Comm, ShardLayout, split_rows
from .inference import cluster_shard
from .shards import gather_labels

__all__ = ["fit_ddp"]

logger = logging.getLogger("dmshift")


class _RankPlan(DataParallelPlan):
    """Each rank shifts a contiguous slice of every batch; DDP sums the gradients."""

    def __init__(self, comm: Comm, device: torch.device):
        self.comm = comm
        self.device = device
        self.verbose = comm.rank == 0

    def rows(self, batch_size):
        b = split_rows(batch_size, self.comm.world_size)
        return int(b[self.comm.rank]), int(b[self.comm.rank + 1])

    def wrap(self, module):
        if not self.comm.initialized:
            return module
        dev = self.device
        gpu = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=gpu, process_group=self.comm.group)

    def reduce_loss(self, share):
        if not self.comm.initialized:
            return share
        # DDP averages gradients over ranks: scale by world_size so that they add up; the
        # value reported to the loop is the whole batch's loss, bit for bit the same on every rank
        # (x - x is exactly 0; scaled + (total - scaled) is not always exactly total, and the ranks
        # take their plateau decisions on it)
        scaled = share * self.comm.world_size
        total = self.comm.all_reduce(share.detach(), "training loss")
        return (scaled - scaled.detach()) + total

    def reduce_eval(self, parts):
        # broadcast rank 0's sum so that every rank takes the same early-stopping decision
        return self.comm.broadcast(self.comm.all_reduce(parts, "validation loss"), "validation loss")


def _checksum(X: np.ndarray, y, pairs) -> list[float]:
    vals = [float(X.shape[0]), float(X.shape[1]), float(X.sum(dtype=np.float64)),
            float(np.square(X, dtype=np.float64).sum())]
    for a in (y, pairs):
        a = np.zeros(0) if a is None else np.asarray(a, dtype=np.float64)
        vals += [float(a.size), float(a.sum()), float((a * np.arange(1, a.size + 1).reshape(a.shape)).sum())]
    return vals


def fit_ddp(model, X, y=None, *, pairs=None, group=None, timeout=None):
    """Fit a :class:`~dmshift.DMSClustering` with every rank of ``group`` training on part of each batch.

    Call it on every rank with the same model parameters and the same training data. The
    result matches ``model.fit(X, y, pairs=pairs)`` on one process with the same
    ``random_state`` (rank 0's decides) up to floating-point summation order, and every
    rank ends with the same fitted model, including the whole ``labels_``.

    Parameters
    ----------
    model : DMSClustering
        Unfitted or fitted; refitted in place. ``time_limit`` must be None (ranks would
        stop at different steps), and ``batch_size`` at least the number of ranks.
    X : array-like of shape (n_samples, n_features)
        The training set, the same on every rank.
    y, pairs
        Side information, as for :meth:`~dmshift.DMSClustering.fit`.
    group : ProcessGroup, optional
        Default: the default group; none initialised means one process (plain ``fit``).
        On GPUs, each rank must have selected its device (``torch.cuda.set_device``).
    timeout : float or timedelta, optional
        Longest wait for one collective call outside DDP's own gradient reduction.

    Returns
    -------
    model
    """
    comm = Comm(group, timeout)
    with comm.stage("fit_ddp (input)"):
        model._check_params()
        if model.time_limit is not None:
            raise ValueError("fit_ddp does not support 'time_limit' (ranks would stop at different steps); "
                             f"set time_limit=None and bound 'max_steps'. Got {model.time_limit!r}.")
        if model.batch_size < comm.world_size:
            raise ValueError(f"The 'batch_size' parameter must be at least the number of ranks "
                             f"({comm.world_size}) in fit_ddp. Got {model.batch_size!r} instead.")
        X = model._check_X(X, reset=True)
        n, d = X.shape
        if n < comm.world_size:
            raise ValueError(f"fit_ddp needs at least one training point per rank; got {n} points "
                             f"for {comm.world_size} ranks.")
        side = SideInfo.build(n, y=y, pairs=pairs)
        side.check_trainable()
        device, seed = model._setup()
        sums = _checksum(X, y, pairs)
    comm.require_same("fit_ddp", sums)
    seed = int(comm.broadcast_array(np.array([seed], dtype=np.int64), 1, torch.int64, "fit_ddp (seed)")[0])

    plan = _RankPlan(comm, device)
    bounds = split_rows(n, comm.world_size)
    lo, hi = int(bounds[comm.rank]), int(bounds[comm.rank + 1])
    layout = ShardLayout(sizes=tuple(int(v) for v in np.diff(bounds)), rank=comm.rank)

    def clusterer(kernel, Xs, rng, params, *, to_input, anchors):
        """The clustering stage over the ranks' slices; every rank then holds all labels, so all
        derive the same pseudo-labels."""
        found = cluster_shard(kernel, Xs[lo:hi], rng if comm.rank == 0 else None, params, to_input=to_input,
                              layout=layout, comm=comm, anchors=anchors)
        return replace(found, labels=gather_labels(found.labels, group=group, timeout=timeout),
                       confidence=gather_labels(found.confidence, group=group, timeout=timeout))

    model._fit_stages(X, side, device, seed, plan=plan, clusterer=clusterer)
    model.training_["world_size"] = comm.world_size
    return model
