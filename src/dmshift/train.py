"""A small training loop shared by every learned method in dmshift.

It owns the optimiser, the learning-rate schedule, evaluation and early stopping with
best-state restore, a wall-clock limit, Ctrl-C handling (the best model so far is kept)
and progress reporting. It knows nothing of any model: a method passes a function that
returns the loss of one step, and optionally one that scores the model on held-back data
(lower is better).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

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
    time_limit : float or None
        Seconds of training after which the loop stops (keeping the best state).
    verbose : bool
        Show a progress bar.
    """

    max_steps: int = 1000
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_steps: int = 0
    eval_every: int = 50
    patience: int | None = None
    time_limit: float | None = None
    verbose: bool = False


@dataclass
class TrainResult:
    steps: int = 0
    best_step: int = 0
    best_score: float = math.inf
    stop_reason: str = "max_steps"
    history: list = field(default_factory=list)  # (step, train_loss, eval_score or None)


def _lr_factor(cfg: TrainConfig, step: int) -> float:
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "cosine":
        t = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))
    return 1.0


def train_loop(model: torch.nn.Module, step_loss: Callable[[int], torch.Tensor], cfg: TrainConfig, *,
               evaluate: Callable[[], float] | None = None, params=None,
               on_step: Callable[[int, torch.optim.Optimizer], None] | None = None,
               start_step: int = 0, optimizer: torch.optim.Optimizer | None = None) -> TrainResult:
    """Run optimisation steps; returns a :class:`TrainResult`. The model ends in its best state.

    ``on_step(step, optimizer)`` is called after every step (checkpointing hooks use it).
    """
    params = list(model.parameters()) if params is None else list(params)
    opt = optimizer or torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(cfg, s + start_step))
    res = TrainResult(steps=start_step)
    best_state = None
    bad_evals = 0
    t0 = time.monotonic()
    bar = None
    if cfg.verbose:
        from tqdm.auto import tqdm
        bar = tqdm(total=cfg.max_steps, initial=start_step, desc="training", unit="step", leave=False)
    running = None
    try:
        for step in range(start_step, cfg.max_steps):
            model.train()
            loss = step_loss(step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
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
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{running:.4f}", **({} if score is None else {"val": f"{score:.4f}"}))
            if on_step is not None:
                on_step(step + 1, opt)
            if cfg.patience is not None and bad_evals >= cfg.patience:
                res.stop_reason = "early_stopping"
                break
            if cfg.time_limit is not None and time.monotonic() - t0 > cfg.time_limit:
                res.stop_reason = "time_limit"
                break
    except KeyboardInterrupt:
        res.stop_reason = "interrupted"
        logger.warning("Training interrupted at step %d; keeping the best model so far (step %d).",
                       res.steps, res.best_step or res.steps)
    finally:
        if bar is not None:
            bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return res
