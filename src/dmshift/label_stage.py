"""Where DMS's labels come from: candidates after training, chosen on held-back side information.

After training, the labels can come from the kernel's own clustering, from label spreading
over the *learnt* graph (neighbours in the kernel's point embedding,
:meth:`~dmshift.kernels.base.LearnedKernel.point_map`, so that a task-specific kernel gives a
task-specific graph), from label spreading over the input-space graph, or from the Ward
tree's cut (:mod:`dmshift.fallback`). :func:`choose_labels` builds each candidate the
estimator allows from the training part of the side information, scores it by pairwise F1
on the held-back part (:mod:`dmshift.validation`), and builds the winner again from all the
side information. Without held-back side information the first candidate is taken: the
learnt graph by default. :func:`learnt_graph_f1` is what training stops on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from .clustering import Clustering
from .constants import NOISE
from .constraints import SideInfo
from .fallback import NOT_TAKEN, FallbackResult, tree_fallback
from .settings import DMSSettings
from .smoothing import smooth_labels
from .smoothing_stage import NOT_SMOOTHED, SmoothingOutcome, smooth_clustering
from .validation import Holdout

__all__ = ["CANDIDATES", "LabelOptions", "Chosen", "candidates_for", "choose_labels", "learnt_graph_f1",
           "held_back_score", "choose_scaling", "graph_rows"]

#: Every candidate, in the order a tie is broken (the kernel's own first).
CANDIDATES = ("learnt_graph", "kernel", "input_graph", "tree")


@dataclass(frozen=True)
class LabelOptions:
    """The estimator's parameters the candidates read."""

    n_neighbors: int = 3
    share: float = 0.5
    find_unseen: bool = True
    smooth_noise: bool = True
    memory_budget: int = 256 * 2**20
    projected: bool = False


@dataclass(frozen=True)
class Chosen:
    """Result of :func:`choose_labels`: the smoothing and fallback outcomes of the chosen candidate
    (the one that was not chosen is "not applied") and the record of the choice."""

    smoothing: SmoothingOutcome
    fallback: FallbackResult
    record: dict


def candidates_for(smoothing: str | None, fallback: str | None) -> tuple[str, ...]:
    """The candidates the estimator's ``smoothing`` and ``fallback`` allow, in tie-breaking order."""
    if smoothing == "auto":
        out = ["learnt_graph", "kernel", "input_graph"]
    elif smoothing == "learnt":
        out = ["learnt_graph"]
    elif smoothing in ("input", "graph"):
        out = ["input_graph"]
    else:
        out = ["kernel"]
    return tuple(out + (["tree"] if fallback == "tree" else []))


def _not_taken(found: Clustering, reason: str) -> FallbackResult:
    return FallbackResult(False, dict(NOT_TAKEN), reason, found)


def _build(name: str, found: Clustering, kernel, Xs: torch.Tensor, side: SideInfo, seed: int, opts: LabelOptions,
           cfg: DMSSettings, to_input: Callable) -> tuple[SmoothingOutcome, FallbackResult] | None:
    """One candidate from ``side``; None when it cannot be built (no tree cut, nothing to seed)."""
    if name == "kernel":
        return SmoothingOutcome(found, dict(NOT_SMOOTHED), None, "kernel chosen"), _not_taken(found, "kernel chosen")
    if name == "tree":  # the tree's cut replaces the kernel's clustering whenever one exists: validation judges it
        fb = tree_fallback(found, Xs, side, seed, enabled=True, n_neighbors=opts.n_neighbors,
                           memory_budget=opts.memory_budget, projected=opts.projected, to_input=to_input,
                           settings=replace(cfg.fallback, margin=-1.0, max_cluster_share=np.inf),
                           graph=cfg.smoothing)
        if not fb.applied:
            return None
        return SmoothingOutcome(fb.clustering, dict(NOT_SMOOTHED), None, "tree chosen"), fb
    if found.n_clusters < 1:
        return None
    W = kernel.point_map().detach() if name == "learnt_graph" else None
    sm = smooth_clustering(found, Xs, side, seed, mode="graph", n_neighbors=opts.n_neighbors, share=opts.share,
                           find_unseen=opts.find_unseen, smooth_noise=opts.smooth_noise,
                           memory_budget=opts.memory_budget, projected=opts.projected, to_input=to_input,
                           settings=cfg.smoothing, novelty=cfg.novelty, W=W)
    if not sm.record["applied"]:
        return None
    sm = replace(sm, record={**sm.record, "graph": name}, reason=f"{name} chosen")
    return sm, _not_taken(sm.clustering, f"{name} chosen")


def choose_labels(found: Clustering, kernel, Xs: torch.Tensor, side: SideInfo, holdout: Holdout | None, seed: int, *,
                  candidates: tuple[str, ...], opts: LabelOptions, cfg: DMSSettings, to_input: Callable) -> Chosen:
    """The candidate with the best held-back F1, built again from all of ``side``.

    ``found`` is the kernel's clustering of the prepared points ``Xs`` (n, c). Each candidate
    is first built from ``holdout.train`` and scored on the held-back pairs; a tie keeps the
    earlier candidate of ``candidates``. Without ``holdout`` (or with one candidate) the first
    candidate that can be built is taken. The default is the first candidate; another replaces
    it only when :meth:`~dmshift.validation.Holdout.better` on the held-back points.
    """
    scores: dict[str, float | None] = {}
    order = list(candidates)
    if holdout is not None and len(order) > 1:
        points = {}
        for name in order:
            built = _build(name, found, kernel, Xs, holdout.train, seed, opts, cfg, to_input)
            labels = None if built is None else built[0].clustering.labels
            scores[name] = None if built is None else round(holdout.f1(labels), 6)
            if built is not None:
                points[name] = holdout.point_scores(labels)
        best, why = _beat_default(points, cfg.validation.z) if points else (order[0], "default")
        order = [best] + [n for n in order if n != best]
    else:
        why = "no held-back side information" if holdout is None else "the only candidate"
    for name in order + ["kernel"]:
        built = _build(name, found, kernel, Xs, side, seed, opts, cfg, to_input)
        if built is not None:
            sm, fb = built
            record = {"chosen": name, "reason": why if name == order[0] else f"{order[0]} could not be built",
                      "held_f1": scores or None, **({} if holdout is None else holdout.record())}
            return Chosen(sm, fb, record)
    raise AssertionError("the kernel's clustering is always a candidate")  # pragma: no cover


def _beat_default(points: dict[str, np.ndarray], z: float) -> tuple[str, str]:
    """The first of ``points`` (each option's held-back point scores), unless another beats it by more
    than ``z`` standard errors of the paired differences (the best mean of those that do), and why."""
    names = list(points)
    best = names[0]
    for name in names[1:]:  # beyond the noise of the held-back points, and better than any other that is
        if Holdout.better(points[name], points[names[0]], z) and np.nanmean(points[name]) > np.nanmean(points[best]):
            best = name
    return best, "default" if best == names[0] else f"beats {names[0]} on held-back points by > {z:g} SE"


@torch.no_grad()
def learnt_graph_f1(kernel, Xs: torch.Tensor, holdout: Holdout, rows: np.ndarray, opts: LabelOptions,
                    cfg: DMSSettings) -> float:
    """Held-back F1 of label spreading over the learnt graph of the points ``rows``, seeded by
    ``holdout.train`` alone: what training's early stopping reads (cheaper than clustering).

    ``rows`` must hold every side-information point; points outside ``rows`` count as NOISE.
    """
    return holdout.f1(_spread(Xs[torch.as_tensor(rows, device=Xs.device)] @ kernel.point_map().detach(), holdout,
                              rows, opts, cfg))


def graph_rows(side: SideInfo, seed: int, cfg: DMSSettings) -> np.ndarray:
    """The side-information points and at most ``cfg.validation.graph_points`` others, sorted."""
    others = np.flatnonzero(side.group < 0)
    return np.sort(np.concatenate([side.labelled, np.random.default_rng([seed, 1]).choice(
        others, size=min(others.size, cfg.validation.graph_points), replace=False)]))


@torch.no_grad()
def choose_scaling(spaces: dict[str, torch.Tensor], holdout: Holdout | None, seed: int, opts: LabelOptions,
                   cfg: DMSSettings) -> tuple[str, dict]:
    """``standardize="auto"``: the first scaling of ``spaces``, unless the input graph of another spreads
    the training side information onto the held-back part better by more than ``cfg.validation.z``
    standard errors of the held-back points' paired scores (as :func:`choose_labels` decides).

    ``spaces`` maps each scaling to the graph's space of all points (n, g) under it.
    """
    names = list(spaces)
    if holdout is None:
        return names[0], {"chosen": names[0], "reason": "no held-back side information"}
    rows = graph_rows(holdout.side, seed, cfg)
    labels = {name: _spread(Z[torch.as_tensor(rows, device=Z.device)], holdout, rows, opts, cfg)
              for name, Z in spaces.items()}
    best, why = _beat_default({name: holdout.point_scores(lab) for name, lab in labels.items()}, cfg.validation.z)
    return best, {"chosen": best, "reason": why,
                  "held_f1": {name: round(holdout.f1(lab), 6) for name, lab in labels.items()}}


def _spread(Z: torch.Tensor, holdout: Holdout, rows: np.ndarray, opts: LabelOptions, cfg: DMSSettings) -> np.ndarray:
    """Labels (n,) of label spreading over the graph of ``Z`` (the points ``rows``) seeded by
    ``holdout.train`` alone; NOISE outside ``rows``."""
    group = holdout.train.group[rows]
    seeds = np.flatnonzero(group >= 0)
    sm = smooth_labels(Z, np.where(group >= 0, group, NOISE), seeds, opts.n_neighbors, rows.size,
                       np.random.default_rng(0), opts.memory_budget, fixed=seeds, keep_noise=False,
                       settings=cfg.smoothing)
    labels = np.full(holdout.side.n_samples, NOISE, dtype=np.int64)
    labels[rows] = sm.labels
    return labels


def held_back_score(kernel, Xs: torch.Tensor, holdout: Holdout | None, seed: int, opts: LabelOptions,
                    cfg: DMSSettings) -> Callable[[], float] | None:
    """What training's early stopping minimises: minus the mean of the last ``cfg.validation.window``
    held-back F1s of the learnt graph (:func:`learnt_graph_f1`) on the side-information points and
    at most ``cfg.validation.graph_points`` others; None without ``holdout``."""
    if holdout is None:
        return None
    rows = graph_rows(holdout.side, seed, cfg)
    seen: list[float] = []

    def evaluate() -> float:  # one F1 on a few held-back points is noisy: their recent mean
        seen.append(learnt_graph_f1(kernel, Xs, holdout, rows, opts, cfg))
        return -float(np.mean(seen[-cfg.validation.window:]))
    return evaluate
