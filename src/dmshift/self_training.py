"""Self-training rounds of DMS: train, cluster, and train again on confident cluster members.

:func:`pseudo_labels` turns a clustering into partial labels (the side information plus
the most confident members of each cluster); :func:`self_train` runs the rounds, each
restarting the kernel from its initial weights, and returns the last clustering with a
record of the rounds. Before the first round it can train the kernel on part of the side
information alone (``first``) and keep that kernel's point map, with which the label choice
measures how much the final kernel flatters its own graph; the first round then goes on with
all of it. How one round trains or clusters is passed in (a single process
and :func:`dmshift.distributed.fit_ddp` pass their own); smoothing is not done here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ._progress import stage_bar
from .constraints import SideInfo

__all__ = ["SelfTrained", "pseudo_labels", "self_train"]


@dataclass(frozen=True)
class SelfTrained:
    """Result of :func:`self_train`.

    Attributes
    ----------
    record : dict
        The last round's training record, with ``seconds`` (training, all rounds),
        ``rounds`` (steps and clusters of each round) and ``n_pseudo_labels``.
    clustering : Clustering
        The last round's clustering.
    seconds : float
        Clustering time, all rounds.
    stopped : str or None
        Why no further round ran, when fewer than asked did: "one_cluster",
        "time_limit" or the last training's stop reason ("interrupted", "time_limit").
    first_map : torch.Tensor or None
        The point map (:meth:`~dmshift.kernels.base.LearnedKernel.point_map`, (N, h)) of the
        kernel trained on ``first`` alone; None without ``first``.
    """

    record: dict
    clustering: object
    seconds: float
    stopped: str | None = None
    first_map: torch.Tensor | None = None


def pseudo_labels(side: SideInfo, labels: np.ndarray, confidence: np.ndarray, share: float) -> np.ndarray:
    """Partial labels (n,) for self-training: the side information plus confident cluster members.

    Each side-information group takes the cluster most of its points are in (a group
    whose points are all NOISE, or whose cluster already holds a group known to differ
    from it, keeps a label of its own), so "same" and "different" stay true. Of the
    points without side information, the ``share`` most confident of each cluster take
    the cluster's label. -1 elsewhere.
    """
    n = side.n_samples
    y = np.full(n, -1, dtype=np.int64)
    fresh = int(labels.max(initial=-1)) + 1  # labels no cluster uses
    cannot = side.cannot.tocsr()
    taken: dict[int, list[int]] = {}  # cluster -> groups labelled with it
    for g, members in enumerate(side.members()):
        lab = labels[members]
        lab = lab[lab >= 0]
        c = int(np.bincount(lab).argmax()) if lab.size else -1
        if c < 0 or any(cannot[g, h] for h in taken.get(c, ())):
            c, fresh = fresh, fresh + 1
        taken.setdefault(c, []).append(g)
        y[members] = c
    free = (side.group < 0) & (labels >= 0)
    for k in np.unique(labels[free]):
        idx = np.flatnonzero(free & (labels == k))
        m = int(np.ceil(share * idx.size))
        if m:
            y[idx[np.argsort(-confidence[idx], kind="stable")[:m]]] = k
    return y


def self_train(kernel: torch.nn.Module, side: SideInfo, seed: int, *, rounds: int, share: float,
               time_limit: float | None, train: Callable, cluster: Callable, verbose: bool = False,
               first: SideInfo | None = None) -> SelfTrained:
    """Train and cluster, then ``rounds`` more times on pseudo-labels.

    ``train(side, seed, rng, time_left, desc)`` trains ``kernel`` in place and returns a
    :class:`~dmshift.instance_training.Trained` (``rng`` None: the fit's own generator;
    later rounds get one of their own, so that the ranks of a distributed fit, whose
    generators the clustering advances differently, draw the same batches);
    ``cluster()`` returns a :class:`~dmshift.clustering.Clustering` of all points. Each
    round restarts from the kernel's initial weights; ``time_limit`` bounds the training
    of all rounds together. With ``verbose``, each stage shows a bar named after it and its
    round ("training, round 2/2" is ``desc``; "clustering, round 2/2").

    ``first`` (part of ``side``): the kernel first trains on it alone ("training without the
    held-back fold"), its point map is kept (``first_map``), and the first round goes on
    training from there with all of ``side``; its steps count in ``time_limit`` and are
    recorded as ``first_steps``. Later rounds still restart from the initial weights.
    """
    initial = {k: v.detach().clone() for k, v in kernel.state_dict().items()}
    train_seconds = infer_seconds = 0.0
    done, n_pseudo = [], 0
    record, found, stopped, first_map, first_steps, cut = None, None, None, None, None, None
    if first is not None:
        t0 = time.perf_counter()
        pre = train(first, seed, None, time_limit, "training without the held-back fold").record
        train_seconds += time.perf_counter() - t0
        first_map, first_steps = kernel.point_map().detach().clone(), pre["steps"]
        if pre["stop_reason"] in ("interrupted", "time_limit"):
            cut = pre  # the fit ends with this kernel: the first round clusters it, untrained further
    for r in range(1 + int(rounds)):
        side_r = side
        if r > 0:  # self-training: pseudo-labels from the last clustering, a fresh kernel
            side_r = SideInfo.build(side.n_samples, y=pseudo_labels(side, found.labels, found.confidence, share))
            try:
                side_r.check_trainable()
            except ValueError:  # one cluster only: nothing to tell apart
                stopped = "one_cluster"
                break
            n_pseudo = int(side_r.labelled.size - side.labelled.size)
            kernel.load_state_dict(initial)
        t0 = time.perf_counter()
        left = None if time_limit is None else float(time_limit) - train_seconds
        if cut is None and left is not None and left <= 0 and r > 0:
            stopped = "time_limit"
            break
        name = f"round {r + 1}/{1 + int(rounds)}"
        rng_r = None if r == 0 else np.random.default_rng([seed, r])
        record = cut if r == 0 and cut is not None else train(side_r, seed + r, rng_r, left, f"training, {name}").record
        train_seconds += time.perf_counter() - t0
        t0 = time.perf_counter()
        with stage_bar(f"clustering, {name}", verbose=verbose):
            found = cluster()
        infer_seconds += time.perf_counter() - t0
        done.append({"steps": record["steps"], "n_clusters": found.n_clusters})
        if record["stop_reason"] in ("interrupted", "time_limit"):
            stopped = record["stop_reason"]
            break  # Ctrl-C or the time limit ends the fit: no further round
    record = dict(record)
    record.update(seconds=train_seconds, rounds=done, n_pseudo_labels=n_pseudo, first_steps=first_steps)
    return SelfTrained(record=record, clustering=found, seconds=infer_seconds, stopped=stopped, first_map=first_map)
