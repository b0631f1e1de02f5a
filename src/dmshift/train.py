"""A small training loop shared by every learned method in dmshift.

It owns the optimiser, the learning-rate schedule, evaluation and early stopping with
best-state restore, a wall-clock limit, Ctrl-C handling (the best model so far is kept)
and progress reporting. It knows nothing of any model: a method passes a function that
returns the loss of one step, and optionally one that scores the model on held-back data
(lower is better). Given a :class:`~dmshift.checkpoint.Checkpointer`, it writes the whole
training state every ``checkpoint.every`` steps and at the end, and resumes from it.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from ._progress import progress_bar
from .optim import AdamW

__all__ = ["TrainConfig", "TrainResult", "train_loop"]

logger = logging.getLogger("dmshift")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings.

    Parameters
    ----------
    max_steps : int
    lr : float
    weight_decay : float
        Decoupled weight decay (AdamW); 0 gives the paper's Adam.
    schedule : {"constant", "cosine"}
    warmup_steps : int
    eval_every : int
        Steps between evaluations (when an evaluation function is given).
    patience : int or None
        Evaluations without improvement before stopping; None never stops early.
    plateau_window, plateau_tol : int or None, float
        Stop at a plateau of the training loss: when the mean loss of the last
        ``plateau_window`` steps (a window ending at a multiple of it) is not ``plateau_tol``
        (relative) below the lowest mean of the windows before; None never does.
    time_limit : float or None
        Seconds of training after which the loop stops (keeping the best state).
    verbose : bool
        Show a progress bar (on a terminal only; see :func:`dmshift._progress.progress_bar`).
    desc : str
        Name of the stage the bar shows, e.g. ``"training, round 2/2"``.
    """

    max_steps: int = 1000
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_steps: int = 0
    eval_every: int = 50
    patience: int | None = None
    plateau_window: int | None = None
    plateau_tol: float = 0.1
    time_limit: float | None = None
    verbose: bool = False
    desc: str = "training"


@dataclass
class TrainResult:
    steps: int = 0
    best_step: int = 0
    best_score: float = math.inf
    stop_reason: str = "max_steps"
    history: list = field(default_factory=list)  # (step, train_loss, eval_score or None)
    resumed_from: int | None = None  # step of the checkpoint this run continued from


def _lr_factor(cfg: TrainConfig, step: int) -> float:
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "cosine":
        t = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))
    return 1.0


def _at_plateau(history: list, cfg: TrainConfig) -> bool:
    """Whether the window of ``cfg.plateau_window`` steps that the last entry of ``history`` ends is
    not ``cfg.plateau_tol`` below the lowest mean loss of the windows before it."""
    w = cfg.plateau_window
    if w is None or len(history) % w or len(history) < 2 * w:
        return False
    means = [sum(h[1] for h in history[i:i + w]) / w for i in range(0, len(history), w)]
    return not means[-1] < (1.0 - cfg.plateau_tol) * min(means[:-1])


def train_loop(model: torch.nn.Module, step_loss: Callable[[int], torch.Tensor], cfg: TrainConfig, *,
               evaluate: Callable[[], float] | None = None, params=None,
               on_step: Callable[[int, torch.optim.Optimizer], None] | None = None,
               start_step: int = 0, optimizer: torch.optim.Optimizer | None = None,
               checkpoint=None, seed: int | None = None) -> TrainResult:
    """Run optimisation steps; returns a :class:`TrainResult`. The model ends in its best state.

    With ``seed``, the loop runs on a forked global torch generator seeded with it, so what
    draws from the global generator during training (dropout) is reproducible and the
    caller's generator is left as it was.

    ``on_step(step, optimizer)`` is called after every step. ``checkpoint`` (a
    :class:`~dmshift.checkpoint.Checkpointer`) writes the model, optimiser, step, random
    generators (global torch, and those of ``step_loss``, see
    :func:`dmshift.checkpoint.step_state`), best state and history every
    ``checkpoint.every`` steps and after the last one; when it is resuming, the loop starts
    from the checkpoint this run wrote, if any.
    """
    if seed is None:
        return _train_loop(model, step_loss, cfg, evaluate, params, on_step, start_step, optimizer, checkpoint)
    devices = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        return _train_loop(model, step_loss, cfg, evaluate, params, on_step, start_step, optimizer, checkpoint)


def _train_loop(model, step_loss, cfg, evaluate, params, on_step, start_step, optimizer, checkpoint) -> TrainResult:
    params = list(model.parameters()) if params is None else list(params)
    opt = optimizer or AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    res = TrainResult(steps=start_step)
    best_state = None
    bad_evals = 0
    run, fn_state = None, None
    if checkpoint is not None:
        from .checkpoint import step_state
        run, fn_state = checkpoint.begin_run(), step_state(step_loss)
        loaded = checkpoint.load(run) if checkpoint.resume else None
        if loaded is not None:
            meta, tensors = loaded
            best_state = checkpoint.restore(meta, tensors, model=model, optimizer=opt, step_fn_state=fn_state)
            loop = meta["loop"]
            start_step = int(loop["step"])
            res = TrainResult(steps=start_step, best_step=int(loop["best_step"]),
                              best_score=math.inf if loop["best_score"] is None else float(loop["best_score"]),
                              stop_reason=loop["stop_reason"], history=[tuple(h) for h in loop["history"]],
                              resumed_from=start_step)
            bad_evals = int(loop["bad_evals"])
            logger.info("Resuming training run %d from the checkpoint at step %d in %s.", run, start_step,
                        checkpoint.directory)
            if loop["stop_reason"] in ("early_stopping", "plateau"):
                start_step = cfg.max_steps  # that run had finished; nothing is left to do
            res.stop_reason = "max_steps" if start_step < cfg.max_steps else res.stop_reason
    base_lr = [g.setdefault("initial_lr", g["lr"]) for g in opt.param_groups]
    last_saved = start_step

    def save(step: int) -> None:
        checkpoint.save(run, model=model, optimizer=opt, step_fn_state=fn_state, best_state=best_state,
                        loop={"step": step, "best_step": res.best_step,
                              "best_score": None if math.isinf(res.best_score) else res.best_score,
                              "bad_evals": bad_evals, "stop_reason": res.stop_reason,
                              "history": [list(h) for h in res.history]})
    t0 = time.monotonic()
    bar = progress_bar(cfg.max_steps, cfg.desc, verbose=cfg.verbose, initial=start_step)
    running = None
    try:
        for step in range(start_step, cfg.max_steps):
            model.train()
            for group, lr in zip(opt.param_groups, base_lr):  # the schedule
                group["lr"] = lr * _lr_factor(cfg, step)
            loss = step_loss(step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            lv = float(loss.detach())
            running = lv if running is None else 0.95 * running + 0.05 * lv
            res.steps = step + 1
            score = None
            last = step + 1 == cfg.max_steps
            if evaluate is not None and ((step + 1) % cfg.eval_every == 0 or last):
                model.eval()
                score = float(evaluate())
                if score < res.best_score - 1e-6:
                    res.best_score, res.best_step = score, step + 1
                    best_state = copy.deepcopy(model.state_dict())
                    bad_evals = 0
                else:
                    bad_evals += 1
            res.history.append((step + 1, lv, score))
            bar.set_postfix(loss=f"{running:.4f}", **({} if score is None else {"val": f"{score:.4f}"}),
                            refresh=False)  # update() redraws, at most every MIN_INTERVAL s
            bar.update(1)
            if on_step is not None:
                on_step(step + 1, opt)
            stop = None
            if cfg.patience is not None and bad_evals >= cfg.patience:
                stop = "early_stopping"
            elif _at_plateau(res.history, cfg):
                stop = "plateau"
            elif cfg.time_limit is not None and time.monotonic() - t0 > cfg.time_limit:
                stop = "time_limit"
            if checkpoint is not None and (stop is not None or last or (step + 1) % checkpoint.every == 0):
                res.stop_reason = stop or "max_steps"
                save(step + 1)
                last_saved = step + 1
            if stop is not None:
                res.stop_reason = stop
                break
    except KeyboardInterrupt:
        res.stop_reason = "interrupted"
        where = ""
        if checkpoint is not None:
            where = (f" The last checkpoint (step {last_saved}) is in {checkpoint.directory}; fit again with "
                     "resume=True to continue from it." if last_saved > 0 else
                     f" No checkpoint was written yet (every {checkpoint.every} steps, in {checkpoint.directory}).")
        logger.warning("Training interrupted at step %d; keeping the best model so far (step %d).%s",
                       res.steps, res.best_step or res.steps, where)
    finally:
        bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return res
