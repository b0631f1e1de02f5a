"""Training DMS's kernel: differentiable mean shift on sampled instances (paper §3.3, §4.2).

:func:`build_kernel` makes and initialises the kernel; :func:`train_kernel` trains it in
place on a :class:`~dmshift.constraints.SideInfo` and returns a :class:`Trained` record.
Batches of instances come from :class:`~dmshift.sampling.InstanceSampler`, the loss is
:func:`~dmshift.losses.dms_loss`, the loop (optimiser, early stopping, checkpoints) is
:func:`~dmshift.train.train_loop`. :class:`DataParallelPlan` is how one process takes part
in a batch; :mod:`dmshift.distributed` subclasses it. Clustering is not done here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .kernels import default_hidden_sizes, make_kernel
from .losses import dms_loss
from .meanshift import shift_instances
from .sampling import InstanceSampler, SamplerConfig
from .train import TrainConfig, train_loop

__all__ = ["KernelSpec", "TrainingParams", "Trained", "DataParallelPlan", "dms_hidden_sizes", "build_kernel",
           "train_kernel"]


@dataclass(frozen=True)
class KernelSpec:
    """The kernel's architecture and initialisation (the estimator's parameters of the same names)."""

    kind: str = "subtract"
    n_layers: int = 3
    hidden: tuple | None = None
    width_cap: int | None = 256
    activation: str = "relu"
    dropout: float = 0.0
    conv_channels: int = 1
    init: str = "principal"
    init_quantile: float = 0.02

    def make(self, width: int, hidden: tuple) -> torch.nn.Module:
        """An untrained kernel reading ``width`` features with hidden widths ``hidden``."""
        kwargs = {"activation": self.activation, "dropout": self.dropout}
        if self.kind == "concat":
            kwargs["channels"] = self.conv_channels
        return make_kernel(self.kind, width, hidden, **kwargs)


@dataclass(frozen=True)
class TrainingParams:
    """How the kernel is trained (the estimator's parameters of the same names)."""

    batch_size: int = 96
    instance_size: tuple = (200, 300)
    labelled_ratio: tuple = (1 / 3, 1.0)
    positive_ratio: tuple = (1 / 20, 1 / 10)
    n_shift_steps: int = 4
    max_steps: int = 1000
    lr: float = 1e-3
    weight_decay: float = 1.0
    prior_decay: float = 0.0
    schedule: str = "constant"
    loss_balance: str = "none"
    input_noise: float = 0.3
    validation_fraction: float = 0.0
    patience: int | None = None
    eval_every: int = 50
    verbose: bool = False
    plateau_window: int | None = None
    plateau_tol: float = 0.1


@dataclass(frozen=True)
class Trained:
    """Result of :func:`train_kernel`: the training record (steps, stop reason, best step, history, ...)."""

    record: dict


class _InstanceShift(torch.nn.Module):
    """The training forward pass as a module, so that a data-parallel wrapper can hold it."""

    def __init__(self, kernel: torch.nn.Module, n_steps: int):
        super().__init__()
        self.kernel = kernel
        self.n_steps = n_steps

    def forward(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:  # (U, d), (b, L) -> (b, L) logits
        return shift_instances(self.kernel, x, self.n_steps, index)


class DataParallelPlan:
    """How one process takes part in training: all of each batch, on its own.

    :mod:`dmshift.distributed` subclasses it so that each rank shifts a slice of every
    batch's instances and the gradients and losses are summed over ranks.
    """

    verbose = True

    def rows(self, batch_size: int) -> tuple[int, int]:
        """The instances ``[lo, hi)`` of every batch that this process shifts."""
        return 0, batch_size

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        return module

    def reduce_loss(self, loss: torch.Tensor) -> torch.Tensor:
        """This process's share of the batch loss -> the loss to differentiate."""
        return loss

    def reduce_eval(self, parts: torch.Tensor) -> torch.Tensor:
        """This process's shares of the validation losses -> the whole losses."""
        return parts


def dms_hidden_sizes(n_features: int, n_layers: int, width_cap: int | None = 256) -> tuple[int, ...]:
    """DMS's hidden widths: a first layer of N units, whose ± row pairs start along the N/2 leading
    principal axes (the learnt graph reads this layer; the paper's N/2 keeps a quarter of them),
    then N/4, N/8, ...; every width at least 8 and at most ``width_cap``."""
    if n_layers <= 1:
        return ()
    first = max(8, int(n_features) if width_cap is None else min(int(n_features), int(width_cap)))
    return (first,) + default_hidden_sizes(n_features, n_layers, width_cap)[1:]


def build_kernel(Xs: torch.Tensor, spec: KernelSpec, seed: int, device: torch.device) -> tuple[torch.nn.Module, tuple]:
    """The initialised kernel for the prepared points ``Xs`` (n, c) and its hidden widths.

    The draws use ``seed`` without touching the global random state.
    """
    d = Xs.shape[1]
    hidden = tuple(spec.hidden) if spec.hidden is not None else dms_hidden_sizes(d, spec.n_layers, spec.width_cap)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        kernel = spec.make(d, hidden).to(device)
        if spec.init in ("distance", "principal"):
            g = torch.Generator(device=device)
            g.manual_seed(seed)
            kernel.init_distance_prior(Xs, quantile=spec.init_quantile, generator=g,
                                       principal=spec.init == "principal")
    return kernel, hidden


def train_kernel(kernel: torch.nn.Module, Xs: torch.Tensor, side, rng: np.random.Generator, seed: int,
                 device: torch.device, params: TrainingParams, *, plan: DataParallelPlan | None = None,
                 time_limit: float | None = None, checkpoint=None, desc: str = "training",
                 evaluate=None) -> Trained:
    """Train ``kernel`` in place on instances of the prepared points ``Xs`` (n, c) and ``side``.

    ``rng`` draws the validation points and the batches, ``seed`` the input noise and
    the validation batches; ``plan`` (default: this process alone) splits each batch
    between processes; ``checkpoint`` (a :class:`~dmshift.checkpoint.Checkpointer` or
    None) is handed to the loop. ``evaluate`` (a callable returning a score, lower is better)
    replaces the validation loss on held-out labelled points (``params.validation_fraction``)
    as what every ``params.eval_every`` steps keeps the best state and stops on ``params.patience``.
    """
    plan = plan or DataParallelPlan()
    B = int(params.batch_size)
    cfg = SamplerConfig(batch_size=B, instance_size=tuple(int(v) for v in params.instance_size),
                        labelled_ratio=tuple(params.labelled_ratio), positive_ratio=tuple(params.positive_ratio))
    labelled = side.labelled
    val_points = np.zeros(0, dtype=np.int64)
    if params.validation_fraction > 0 and evaluate is None:
        n_val = int(round(params.validation_fraction * labelled.size))
        if 0 < n_val < labelled.size:
            val_points = rng.choice(labelled, size=n_val, replace=False)
    train_points = np.setdiff1d(labelled, val_points)
    sampler = InstanceSampler(side, cfg, rng, init_points=train_points, label_points=train_points)
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    T = params.n_shift_steps
    lo, hi = plan.rows(B)
    module = plan.wrap(_InstanceShift(kernel, T))

    def batch_tensors(idx, tgt, noise=0.0):
        """This part's instances as (distinct points (U, d), their rows (b, L)) and the batch's targets."""
        uniq, inv = np.unique(idx, return_inverse=True)  # the whole batch, as every part draws it
        inv = inv.reshape(idx.shape)
        x = Xs[torch.as_tensor(uniq, device=device)]
        if noise > 0:  # one draw per distinct point of the batch, the same in every part
            x = x + noise * torch.randn(x.shape, generator=gen, device=device, dtype=x.dtype)
        if (lo, hi) != (0, len(idx)):  # a part of the batch embeds only the points it needs
            mine, rows = np.unique(inv[lo:hi], return_inverse=True)
            x, inv = x[torch.as_tensor(mine, device=device)], rows.reshape(hi - lo, -1)
        return x, torch.as_tensor(inv, device=device), torch.as_tensor(tgt, device=device)

    anchor = [p.detach().clone() for p in kernel.parameters()] if params.prior_decay > 0 else None
    anchor_norm = sum(float(a.pow(2).sum()) for a in anchor) if anchor else 1.0

    def step_loss(step):
        x, index, tgt = batch_tensors(*sampler.sample(), noise=params.input_noise)  # (U, d), (b, L), (B, L)
        loss = dms_loss(module(x, index), tgt[lo:hi], tgt, params.loss_balance)
        if anchor is not None:  # L2 pull toward the initial kernel, relative to its size
            drift = sum((p - a).pow(2).sum() for p, a in zip(kernel.parameters(), anchor))
            loss = loss + params.prior_decay * (hi - lo) / B * drift / max(anchor_norm, 1e-12)
        return plan.reduce_loss(loss)

    if val_points.size:
        vs = InstanceSampler(side, cfg, np.random.default_rng(seed + 1), init_points=val_points)
        val_batches = [batch_tensors(*vs.sample()) for _ in range(4)]
        # the initial points are held out; targets of training points are kept since
        # they still test the held-out centers

        @torch.no_grad()
        def evaluate():
            parts = torch.stack([dms_loss(shift_instances(kernel, x, T, i), t[lo:hi], t, params.loss_balance)
                                 for x, i, t in val_batches])
            return float(plan.reduce_eval(parts).mean())

    tcfg = TrainConfig(max_steps=params.max_steps, lr=params.lr, weight_decay=params.weight_decay,
                       schedule=params.schedule, eval_every=params.eval_every, patience=params.patience,
                       plateau_window=params.plateau_window, plateau_tol=params.plateau_tol, time_limit=time_limit, verbose=params.verbose and plan.verbose, desc=desc)
    res = train_loop(module, step_loss, tcfg, evaluate=evaluate, seed=seed, checkpoint=checkpoint)
    return Trained({"steps": res.steps, "best_step": res.best_step, "stop_reason": res.stop_reason,
                    "best_val_score": None if evaluate is None else res.best_score,
                    "history": res.history, "n_train_points": int(train_points.size),
                    "n_val_points": int(val_points.size)})
