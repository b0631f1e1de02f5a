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
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._validation import as_float_tensor, check_range_pair
from ..constraints import SideInfo
from ..kernels import default_hidden_sizes, make_kernel
from ..meanshift import shift_instances
from ..sampling import InstanceSampler, SamplerConfig
from ..train import TrainConfig, train_loop
from ._comm import Comm, ShardLayout, split_rows
from .inference import _cluster_shard
from .shards import gather_labels

__all__ = ["fit_ddp"]

logger = logging.getLogger("dmshift")


class _InstanceShift(nn.Module):
    """The training forward pass as a module, so DistributedDataParallel can wrap it."""

    def __init__(self, kernel: nn.Module, n_steps: int):
        super().__init__()
        self.kernel = kernel
        self.n_steps = n_steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (b, L, d) -> (b, L) logits
        return shift_instances(self.kernel, x, self.n_steps)


def _loss_share(balance: str, logits: torch.Tensor, tgt: torch.Tensor, tgt_all: torch.Tensor) -> torch.Tensor:
    """This slice's share of ``DMSClustering._loss`` over the whole batch ``tgt_all``.

    Sums over the slice ``tgt`` divided by counts over the whole batch, so the shares of
    all slices add up to the batch loss.
    """
    per = F.binary_cross_entropy_with_logits(logits, tgt.clamp_min(0.0), reduction="none")  # (b, L)
    lab, lab_all = tgt >= 0, tgt_all >= 0
    if balance == "balanced":
        pos, neg = lab & (tgt > 0.5), lab & (tgt < 0.5)
        n_pos = (lab_all & (tgt_all > 0.5)).sum().clamp_min(1)
        n_neg = (lab_all & (tgt_all < 0.5)).sum().clamp_min(1)
        return 0.5 * ((per * pos).sum() / n_pos + (per * neg).sum() / n_neg)
    return (per * lab).sum() / lab_all.sum().clamp_min(1)


def _train(model, Xs, side, rng, seed, device, comm: Comm) -> dict:
    """``DMSClustering._train`` with each rank shifting its slice of every batch."""
    B = int(model.batch_size)
    cfg = SamplerConfig(batch_size=B, instance_size=tuple(int(v) for v in model.instance_size),
                        labelled_ratio=check_range_pair("labelled_ratio", model.labelled_ratio, low=1e-6, high=1e6),
                        positive_ratio=check_range_pair("positive_ratio", model.positive_ratio, low=0.0, high=1.0))
    labelled = side.labelled
    val_points = np.zeros(0, dtype=np.int64)
    if model.validation_fraction > 0:
        n_val = int(round(model.validation_fraction * labelled.size))
        if 0 < n_val < labelled.size:
            val_points = rng.choice(labelled, size=n_val, replace=False)
    train_points = np.setdiff1d(labelled, val_points)
    sampler = InstanceSampler(side, cfg, rng, init_points=train_points, label_points=train_points)
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    T = model.n_shift_steps
    kernel = model.kernel_
    lo, hi = (int(v) for v in split_rows(B, comm.world_size)[comm.rank:comm.rank + 2])
    module = _InstanceShift(kernel, T)
    if comm.initialized:
        gpu = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
        module = nn.parallel.DistributedDataParallel(module, device_ids=gpu, process_group=comm.group)

    def batch_tensors(idx, tgt):
        return Xs[torch.as_tensor(idx[lo:hi], device=device)], torch.as_tensor(tgt, device=device)

    def step_loss(step):
        x, tgt = batch_tensors(*sampler.sample())  # (b, L, d) this rank's slice, (B, L) whole batch
        if model.input_noise > 0:
            noise = torch.randn((B, *x.shape[1:]), generator=gen, device=device, dtype=x.dtype)  # whole batch
            x = x + model.input_noise * noise[lo:hi]
        share = _loss_share(model.loss_balance, module(x), tgt[lo:hi], tgt)
        if not comm.initialized:
            return share
        # DDP averages gradients over ranks: scale by world_size so that they add up; the
        # value reported to the loop is the whole batch's loss
        scaled = share * comm.world_size
        total = comm.all_reduce(share.detach(), "training loss")
        return scaled + (total - scaled).detach()

    evaluate = None
    if val_points.size:
        vs = InstanceSampler(side, cfg, np.random.default_rng(seed + 1), init_points=val_points)
        val_batches = [batch_tensors(*vs.sample()) for _ in range(4)]

        @torch.no_grad()
        def evaluate():
            shares = torch.stack([_loss_share(model.loss_balance, shift_instances(kernel, x, T), t[lo:hi], t)
                                  for x, t in val_batches])
            # broadcast rank 0's sum so that every rank takes the same early-stopping decision
            v = comm.broadcast(comm.all_reduce(shares, "validation loss"), "validation loss")
            return float(np.mean([float(s) for s in v]))

    tcfg = TrainConfig(max_steps=model.max_steps, lr=model.lr, weight_decay=model.weight_decay,
                       schedule=model.schedule, eval_every=model.eval_every, patience=model.patience,
                       time_limit=None, verbose=model.verbose and comm.rank == 0)
    res = train_loop(module, step_loss, tcfg, evaluate=evaluate)
    return {"steps": res.steps, "best_step": res.best_step, "stop_reason": res.stop_reason,
            "best_val_loss": None if evaluate is None else res.best_score,
            "history": res.history, "n_train_points": int(train_points.size), "n_val_points": int(val_points.size),
            "world_size": comm.world_size}


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
    rng = np.random.default_rng(seed)

    # from here on, as DMSClustering.fit
    Xt = as_float_tensor(X, device).float()
    if model.standardize:
        mean = Xt.mean(0)
        scale = float(torch.sqrt(Xt.var(0, unbiased=False).mean()).clamp_min(1e-12))
    else:
        mean, scale = torch.zeros(d, device=device), 1.0
    model.mean_ = mean
    model.scale_ = scale
    Xs = (Xt - mean) / scale  # (n, d)
    hidden = tuple(model.hidden) if model.hidden is not None else default_hidden_sizes(d, model.n_layers, model.width_cap)
    kwargs = {"activation": model.activation, "dropout": model.dropout}
    if model.kernel == "concat":
        kwargs["channels"] = model.conv_channels
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        model.kernel_ = make_kernel(model.kernel, d, hidden, **kwargs).to(device)
        if model.init == "distance":
            g = torch.Generator(device=device)
            g.manual_seed(seed)
            model.kernel_.init_distance_prior(Xs, quantile=model.init_quantile, generator=g)
    model.hidden_ = hidden
    model.side_info_ = side.summary()

    t0 = time.perf_counter()
    model.training_ = _train(model, Xs, side, rng, seed, device, comm)
    model.training_["seconds"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    bounds = split_rows(n, comm.world_size)
    layout = ShardLayout(sizes=tuple(int(v) for v in np.diff(bounds)), rank=comm.rank)
    local = Xs[int(bounds[comm.rank]):int(bounds[comm.rank + 1])]
    labels, conf = _cluster_shard(model, local, layout, comm, rng if comm.rank == 0 else None)
    model.labels_ = gather_labels(labels, group=group, timeout=timeout)
    model.confidence_ = gather_labels(conf, group=group, timeout=timeout)
    model.inference_seconds_ = time.perf_counter() - t0
    return model
