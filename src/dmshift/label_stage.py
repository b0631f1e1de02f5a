"""Where DMS's labels come from: candidates after training, chosen on held-back side information.

After training, the labels can come from the kernel's own clustering, from label spreading
over the *learnt* graph (neighbours in the kernel's point embedding,
:meth:`~dmshift.kernels.base.LearnedKernel.point_map`, so that a task-specific kernel gives a
task-specific graph), from label spreading over the input-space graph, over both at once (the
fused graph: each point's score shares in the two graphs added), or from the Ward tree's cut
(:mod:`dmshift.fallback`); the fused graph can also take its seeds from the tree's clusters
instead of the kernel's ("tree_seeded"; where the kernel merges groups no side information
holds, the tree's cut can keep them apart; without a cut, the kernel's clusters seed it).
:func:`choose_labels` builds each candidate the estimator allows from the training part of
the side information, scores it by pairwise F1 on the held-back part
(:mod:`dmshift.validation`), and builds the winner again from all the side information. The kernel that trained on the held-back labels scores its own graph
optimistically; the point map of the kernel before it saw one fold's labels (cross-fitting,
``first_map``) measures by how much, and that is taken off. Without held-back side
information the first candidate is taken: by default the fused graph seeded by the tree's
clusters (where the tree and the kernel tie on the held-back points, the tree's cut is the
one that can keep apart groups no side information holds, which held-back points cannot
show). :func:`learnt_graph_f1`
is what training stops on.
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
from .smoothing import knn, smooth_labels, spread_labels
from .smoothing_stage import NOT_SMOOTHED, SmoothingOutcome, smooth_clustering
from .validation import Holdout, f1_better, pooled_f1

__all__ = ["CANDIDATES", "LabelOptions", "Chosen", "candidates_for", "cross_fitted", "choose_labels",
           "learnt_graph_f1", "held_back_score", "choose_scaling", "graph_rows"]

#: Every candidate, in the order a tie is broken (the fused graph seeded by the tree first).
CANDIDATES = ("tree_seeded", "fused_graph", "learnt_graph", "kernel", "input_graph", "tree")
#: The candidates whose graph is the kernel's: scored by the kernel that trained on the folds' labels
LEARNT = ("fused_graph", "learnt_graph", "tree_seeded")
#: The candidates that spread over the input graph as well as the learnt one
FUSED = ("fused_graph", "tree_seeded")


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
        out = ["tree_seeded", "fused_graph", "learnt_graph", "kernel", "input_graph"]
    elif smoothing == "fused":
        out = ["fused_graph"]
    elif smoothing == "tree_seeded":
        out = ["tree_seeded"]
    elif smoothing == "learnt":
        out = ["learnt_graph"]
    elif smoothing in ("input", "graph"):
        out = ["input_graph"]
    else:
        out = ["kernel"]
    return tuple(out + (["tree"] if fallback == "tree" else []))


def cross_fitted(folds: list[Holdout], candidates: tuple[str, ...], cfg: DMSSettings) -> SideInfo | None:
    """What the kernel trains on before all the side information when the learnt graph's score is
    cross-fitted (``cfg.validation.cross_fit``): the training part of ``folds[0]``. None where
    nothing would read it: no folds, or the learnt graph is not compared with another candidate."""
    if not folds or not cfg.validation.cross_fit or not set(LEARNT) & set(candidates) or len(candidates) < 2:
        return None
    return folds[0].train


def _not_taken(found: Clustering, reason: str) -> FallbackResult:
    return FallbackResult(False, dict(NOT_TAKEN), reason, found)


def _build(name: str, found: Clustering, kernel, Xs: torch.Tensor, side: SideInfo, seed: int, opts: LabelOptions,
           cfg: DMSSettings, to_input: Callable, point_map: torch.Tensor | None = None, trees: dict | None = None,
           read: np.ndarray | None = None) -> tuple[SmoothingOutcome, FallbackResult] | None:
    """One candidate from ``side``; None when it cannot be built (no tree cut, nothing to seed).
    ``point_map``: the learnt graph's map (N, h) instead of ``kernel``'s. ``trees``: the tree's
    cut of each ``side`` already made, for the tree and the tree-seeded graph to share.
    ``read``: the points whose labels the caller reads (a fold: its side-information points);
    beyond the graph's landmarks, only these take the smoothing's vote (None: all points)."""
    if name == "kernel":
        return SmoothingOutcome(found, dict(NOT_SMOOTHED), None, "kernel chosen"), _not_taken(found, "kernel chosen")
    if name in ("tree", "tree_seeded"):  # the tree's cut replaces the kernel's clustering whenever one exists
        kept = (trees or {}).get(id(side))
        fb = kept[1] if kept is not None and kept[0] is side else \
            tree_fallback(found, Xs, side, seed, enabled=True, n_neighbors=opts.n_neighbors,
                          memory_budget=opts.memory_budget, projected=opts.projected, to_input=to_input,
                          settings=replace(cfg.fallback, margin=-1.0, max_cluster_share=np.inf),
                          graph=cfg.smoothing)
        if trees is not None:
            trees[id(side)] = (side, fb)
        if name == "tree":  # validation judges it
            tree = SmoothingOutcome(fb.clustering, dict(NOT_SMOOTHED), None, "tree chosen")
            return (tree, fb) if fb.applied else None
        found = fb.clustering  # "tree_seeded": the fused graph, seeded by the tree's clusters (or the kernel's)
    if found.n_clusters < 1:
        return None
    W = None if name not in LEARNT else kernel.point_map().detach() if point_map is None else point_map
    sm = smooth_clustering(found, Xs, side, seed, mode="graph", n_neighbors=opts.n_neighbors, share=opts.share,
                           find_unseen=opts.find_unseen, smooth_noise=opts.smooth_noise,
                           memory_budget=opts.memory_budget, projected=opts.projected, to_input=to_input,
                           settings=cfg.smoothing, novelty=cfg.novelty, W=W, fuse_input=name in FUSED, voted=read)
    if not sm.record["applied"]:
        return None
    sm = replace(sm, record={**sm.record, "graph": name}, reason=f"{name} chosen")
    return sm, _not_taken(sm.clustering, f"{name} chosen")


def choose_labels(found: Clustering, kernel, Xs: torch.Tensor, side: SideInfo, folds: list[Holdout], seed: int, *,
                  candidates: tuple[str, ...], opts: LabelOptions, cfg: DMSSettings, to_input: Callable,
                  kernel_saw_folds: bool = False, first_map: torch.Tensor | None = None) -> Chosen:
    """The candidate with the best held-back scores, built again from all of ``side``.

    ``found`` is the kernel's clustering of the prepared points ``Xs`` (n, c). In each of
    ``folds`` (one holdout, or k folds that hold back every side-information point once), each
    candidate is built from the fold's training part and scored on its held-back points; the
    scores of all folds together decide. The default is the first candidate of ``candidates``;
    another replaces it only when :meth:`~dmshift.validation.Holdout.better` on the held-back
    points. Without ``folds`` (or with one candidate) the first candidate that can be built is taken.

    ``kernel_saw_folds``: the kernel was trained on the folds' held-back points too (k-fold
    validation). Its own clustering, fitted to the very points it would be scored on, is then
    compared only as the default, and the learnt graph's scores are optimistic unless
    ``first_map`` is given: the point map (N, h) of the kernel when it had trained without the
    held-back points of ``folds[0]`` (:func:`~dmshift.self_training.self_train`'s ``first``).
    The learnt graph's optimism is then measured on ``folds[0]`` (its F1 with the final kernel
    less its F1 with ``first_map``) and taken off its pooled F1 over every fold, which every
    candidate is compared on (a bias-corrected cross-validation score; ``f1_better``'s
    ``offset``). On digits (5% labels) the final kernel's graph scored 0.976-1.000 where
    kernels that had not seen the fold scored 0.898-0.973 (docs/methods.md). Every candidate of
    a fold is seeded by
    ``found``, whose centers include the held-back points as anchors: a group held back whole
    keeps a cluster of its own in all of them alike (a second clustering without anchors, for
    validation alone, cost a fifth of a fit on MNIST-10k).
    """
    scores: dict[str, float | None] = {}
    order, trees = list(candidates), {}  # trees: one tree cut per side information, for both tree candidates
    compared = [n for n in order if not kernel_saw_folds or n != "kernel" or n == order[0]]
    learnt = [n for n in compared if n in LEARNT]
    crossed = first_map is not None and bool(folds) and bool(learnt)
    in_sample, offsets = {}, {}
    if folds and len(compared) > 1:
        parts = {name: _fold_parts(name, found, kernel, Xs, folds, seed, opts, cfg, to_input, trees=trees)
                 for name in compared}
        points = {name: np.concatenate(p) for name, p in parts.items() if p is not None}  # (held-back points, 3)
        if crossed:  # the learnt graphs' optimism, measured on the first fold, taken off their score on every fold
            in_sample = {name: round(pooled_f1(p), 6) for name, p in points.items()}
            for name in learnt:
                honest = _fold_parts(name, found, kernel, Xs, folds[:1], seed, opts, cfg, to_input, first_map, trees)
                if honest is None:  # not validated: the kernel that had not seen the fold could not build it
                    points.pop(name, None)
                elif name in points:
                    offsets[name] = pooled_f1(honest[0]) - pooled_f1(parts[name][0])
        best, why = _beat_default(points, cfg.validation.z, better=f1_better, value=pooled_f1, offsets=offsets) \
            if points else (order[0], "default")
        scores = {name: None if name not in points else round(pooled_f1(points[name]) + offsets.get(name, 0.0), 6)
                  for name in compared}
        order = [best] + [n for n in order if n != best]
    else:
        why = "no held-back side information" if not folds else "the only candidate compared"
    for name in order + ["kernel"]:
        built = _build(name, found, kernel, Xs, side, seed, opts, cfg, to_input, trees=trees)
        if built is not None:
            sm, fb = built
            record = {"chosen": name, "reason": why if name == order[0] else f"{order[0]} could not be built",
                      "held_f1": scores or None, "cross_fitted": crossed, "held_f1_final_kernel": in_sample or None,
                      "optimism": {k: round(-v, 6) for k, v in offsets.items()} or None, **_folds_record(folds)}
            return Chosen(sm, fb, record)
    raise AssertionError("the kernel's clustering is always a candidate")  # pragma: no cover


def _fold_parts(name: str, found: Clustering, kernel, Xs: torch.Tensor, folds: list[Holdout], seed: int,
                opts: LabelOptions, cfg: DMSSettings, to_input: Callable, point_map: torch.Tensor | None = None,
                trees: dict | None = None) -> list[np.ndarray] | None:
    """The held-back points' pair parts (k_f, 3) of candidate ``name`` built from each fold's training
    part; None when it cannot be built in some fold."""
    out = []
    for fold in folds:
        built = _build(name, found, kernel, Xs, fold.train, seed, opts, cfg, to_input, point_map=point_map, trees=trees,
                       read=fold.side.labelled)  # scored there alone
        if built is None:
            return None
        out.append(fold.pair_parts(built[0].clustering.labels))
    return out


def _folds_record(folds: list[Holdout]) -> dict:
    if not folds:
        return {}
    parts = [f.record() for f in folds]
    return {"folds": len(folds), **{k: sum(p[k] for p in parts) for k in parts[0]}}


def _beat_default(points: dict[str, np.ndarray], z: float, better: Callable = Holdout.better,
                  value: Callable = np.nanmean, offsets: dict[str, float] | None = None) -> tuple[str, str]:
    """The first of ``points`` (each option's held-back point scores), unless another beats it by more
    than ``z`` standard errors (``better``), and why; of several that do, the best ``value``.
    ``offsets``: corrections added to some options' values (``better`` then takes an ``offset``).

    The labels' candidates are compared on pooled pairwise F1 (:func:`~dmshift.validation.f1_better`
    on :meth:`~dmshift.validation.Holdout.pair_parts`), the scalings on the mean of the points'
    balanced pair accuracy (:meth:`~dmshift.validation.Holdout.better` on
    :meth:`~dmshift.validation.Holdout.point_scores`)."""
    names, off = list(points), offsets or {}
    best = names[0]

    def val(name):
        return value(points[name]) + off.get(name, 0.0)
    for name in names[1:]:  # beyond the noise of the held-back points, and better than any other that is
        shift = {"offset": off.get(name, 0.0) - off.get(names[0], 0.0)} if off else {}
        if better(points[name], points[names[0]], z, **shift) and val(name) > val(best):
            best = name
    if best == names[0]:
        return best, "default"
    return best, f"beats {names[0]} on held-back points" + (f" by > {z:g} SE" if z > 0 else "")


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
def choose_scaling(spaces: dict[str, torch.Tensor], folds: list[Holdout], seed: int, opts: LabelOptions,
                   cfg: DMSSettings) -> tuple[str, dict]:
    """``standardize="auto"``: the first scaling of ``spaces``, unless label spreading over the input
    graph of another does better on the held-back points of ``folds`` (k-fold over all the side
    information, :func:`~dmshift.validation.k_folds`: no kernel is involved, so every labelled point
    can be held back once) by more than ``cfg.validation.scaling_z`` standard errors of the points'
    paired scores (0: a higher mean).

    ``spaces`` maps each scaling to the graph's space of all points (n, g) under it.
    """
    names = list(spaces)
    if not folds:
        return names[0], {"chosen": names[0], "reason": "too little side information to hold back"}
    rows = graph_rows(folds[0].side, seed, cfg)
    points: dict[str, list[np.ndarray]] = {name: [] for name in names}
    f1: dict[str, list[float]] = {name: [] for name in names}
    for name, Z in spaces.items():
        idx, dist = knn(Z[torch.as_tensor(rows, device=Z.device)], Z[torch.as_tensor(rows, device=Z.device)],
                        opts.n_neighbors, opts.memory_budget, exclude_self=True)
        for fold in folds:  # one graph per scaling, spread from each fold's training part
            labels = np.full(fold.side.n_samples, NOISE, dtype=np.int64)
            labels[rows] = _spread_graph(idx, dist, fold.train.group[rows], cfg)
            points[name].append(fold.point_scores(labels))
            f1[name].append(fold.f1(labels))
    best, why = _beat_default({name: np.concatenate(p) for name, p in points.items()}, cfg.validation.scaling_z)
    return best, {"chosen": best, "reason": why, "folds": len(folds),
                  "held_f1": {name: round(float(np.mean(v)), 6) for name, v in f1.items()}}


def _spread_graph(idx: torch.Tensor, dist: torch.Tensor, group: np.ndarray, cfg: DMSSettings) -> np.ndarray:
    """Label spreading over the k-NN graph ``(idx, dist)`` (m, k) seeded by the points with a ``group``
    (m,) >= 0: each point's label, NOISE where no seed reaches it."""
    seeds = np.flatnonzero(group >= 0)
    F = spread_labels(idx, dist, seeds, group[seeds], int(group.max(initial=-1)) + 1, alpha=cfg.smoothing.alpha,
                      n_iter=cfg.smoothing.n_iter)
    top, arg = F.max(1)
    return np.where(top.cpu().numpy() > 0, arg.cpu().numpy(), NOISE)


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
