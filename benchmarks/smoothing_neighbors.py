"""How many neighbours graph smoothing should spread labels over (``DMSClustering(n_neighbors=...)``).

Two measurements, on the protocol of ``dms_quality.py`` (partial labels on a random 5% of
the points, scores on the others; ``digits-novel``: labels from 5 random classes, ACC on
the points of the other 5):

* ``side``: label spreading from the side information alone over the k-NN graph that DMS's
  smoothing builds (on the kernel's input: standardised, projected on ``n_components="auto"``,
  of a projection the leading ``SmoothingSettings.components``), for each k.
  Cheap (no training), so it runs on every data set given.
* ``dms``: ``DMSClustering(smoothing=None, fallback=None)`` fitted once per data set and seed, then its
  smoothing step re-run with the graph of before, today's without its own-component rule
  (``dmshift.novelty.unreached_components``), and today's with each k (the same step ``fit`` ends with; smoothing changes
  nothing before it, so each row equals a fit with that ``n_neighbors``). Fitted models
  are cached under ``--cache`` as model folders (``DMSClustering.save``) so that later
  sweeps cost only the smoothing.

    python benchmarks/smoothing_neighbors.py --side coil20 coil100 digits usps mnist10k orl umist ar_faces r8 trec \\
        --dms coil20 digits usps digits-novel mnist10k --k 3 4 5 --out benchmarks/results/smoothing-neighbors.md

``--one-way W ...`` replaces the k sweep: both measurements at the default k, with one-way
edges (the neighbour does not return them, ``SmoothingSettings.reciprocal_neighbors``)
weighted ``W`` (``SmoothingSettings.one_way_weight``), and DMS also with every edge
counted as returned (the graph before one-way edges were told apart); these DMS columns
keep noise as noise (``smooth_noise=False``), and a last one relabels it at the default
weight (the default).
"""

from __future__ import annotations

import argparse
import copy
import platform
import subprocess
import sys
from dataclasses import replace
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dms_quality import load_task, side_information  # noqa: E402

from dmshift import DMSClustering  # noqa: E402
from dmshift.constraints import SideInfo  # noqa: E402
from dmshift.estimators._base import standardization  # noqa: E402
from dmshift.estimators._dms_params import settings_of  # noqa: E402
from dmshift.clustering import Clustering  # noqa: E402
from dmshift.metrics import evaluate  # noqa: E402
from dmshift.preprocessing import principal_components  # noqa: E402
from dmshift.settings import DMSSettings, SmoothingSettings  # noqa: E402
import dmshift.smoothing as smoothing  # noqa: E402
from dmshift.smoothing import knn, spread_labels  # noqa: E402

BUDGET = 1 << 28
#: The library's smoothing settings.
SMOOTHING = SmoothingSettings()


def graph_input(X) -> torch.Tensor:
    """What DMS's smoothing graph reads at the defaults: the kernel's input (standardised, projected on
    ``n_components="auto"``), of a projection its leading ``SMOOTHING.components``."""
    X = torch.as_tensor(np.asarray(X, dtype=np.float32))
    mean, scale = standardization(X, True)
    Xs = (X - mean) / scale
    V = principal_components(Xs, "auto")
    return Xs if V is None else (Xs @ V)[:, :SMOOTHING.components].contiguous()


def scored(y, seed, novel):
    known, seen = side_information(y, seed, 0.05, novel)
    score = ~known
    if novel:
        score &= ~np.isin(y, seen)
    return known, score


class graph_as:
    """While active: smoothing's graph with the one-ended edge scale ``exp(-(d_ij / s_i)^2)`` (``one_ended``)
    and/or on every component of a projection (``every_component``), without its own-component rule
    (``own_components`` False), as dmshift built it before; ``one_way``: the weight of an edge the
    neighbour does not return (None: every edge counts as returned, the graph before one-way edges
    were told apart). Entering gives the :class:`~dmshift.settings.SmoothingSettings` to fit with."""

    def __init__(self, one_ended: bool, every_component: bool, own_components: bool = True,
                 one_way: float | None = None):
        self.one_ended, self.every_component, self.own_components = one_ended, every_component, own_components
        self.one_way = one_way

    def __enter__(self):
        self.saved = (smoothing._pair_weights, smoothing.unreached_components, smoothing.reciprocal)
        settings = SMOOTHING
        if self.one_ended:
            smoothing._pair_weights = lambda idx, dist: smoothing._weights(dist)
        if self.every_component:
            settings = replace(settings, components=None)  # Xs[:, :None]: every component
        if not self.own_components:  # unseeded graph components keep the kernel's clusters
            smoothing.unreached_components = lambda *args, **kwargs: []
        if self.one_way is None:
            smoothing.reciprocal = lambda idx, wide: torch.ones_like(idx, dtype=torch.bool)
        else:
            settings = replace(settings, one_way_weight=self.one_way)
        return settings

    def __exit__(self, *exc):
        (smoothing._pair_weights, smoothing.unreached_components, smoothing.reciprocal) = self.saved


def resmooth(m: DMSClustering, Xs: torch.Tensor, side: SideInfo, seed: int) -> None:
    """The stages ``fit`` ends with (tree fallback, smoothing) re-run on ``m``'s current clustering."""
    found = Clustering(labels=m.labels_, confidence=m.confidence_, center_embeddings=m.center_embeddings_,
                       center_cluster=m.center_cluster_, cluster_centers=m.cluster_centers_, n_clusters=m.n_clusters_,
                       n_iter=m.n_iter_, n_seeds_used=m.n_seeds_used_, converged_fraction=m.converged_fraction_)
    args = (side, seed, settings_of(m), m.components_ is not None, m._to_input_space)
    fb = m._fallback(found, Xs, *args)
    sm = m._smooth(fb, Xs, *args)
    m._set_clustering(sm.clustering, fb, sm)


def side_only(name, ks, seeds, one_ways=None):
    """ACC of spreading the side information alone, for each k (``one_ways`` None: every edge weighs
    the same), or at the default k for each weight of one-way edges in ``one_ways``."""
    X, y, novel = load_task(name)
    Z = graph_input(X)
    k_default = DMSClustering().n_neighbors
    wide = max([*ks, SMOOTHING.reciprocal_neighbors] if one_ways else ks)
    idx, dist = knn(Z, Z, wide, BUDGET, exclude_self=True)
    cells = [(k, None) for k in ks] if one_ways is None else [(k_default, w) for w in one_ways]
    out = {}
    for k, w in cells:
        factor = None
        if w is not None:
            returned = smoothing.reciprocal(idx[:, :k], idx[:, :SMOOTHING.reciprocal_neighbors])
            factor = smoothing.one_way_factor(returned, w)
        accs = []
        for seed in seeds:
            known, score = scored(y, seed, novel)
            side = np.flatnonzero(known)
            classes, yl = np.unique(y[side], return_inverse=True)
            F = spread_labels(idx[:, :k], dist[:, :k], side, yl, len(classes), edge_factor=factor)
            accs.append(evaluate(y[score], classes[F.argmax(1).cpu().numpy()][score])["acc"])
        out[k if w is None else w] = accs
    return out


def dms(name, settings, seeds, cache: Path):
    """ACC per setting (label -> (k, graph_as arguments)), clusters and AMI, re-smoothing one cached fit per seed."""
    X, y, novel = load_task(name)
    out = {label: [] for label in settings}
    clusters = {label: [] for label in settings}
    ami = {label: [] for label in settings}
    for seed in seeds:
        known, score = scored(y, seed, novel)
        ys = np.where(known, y, -1)
        path = cache / f"{name}-{seed}"  # a model folder (safetensors + JSON): nothing is unpickled
        if path.exists():
            model = DMSClustering.load(path)
        else:
            model = DMSClustering(random_state=seed, smoothing=None, fallback=None).fit(X, ys)  # the kernel's clusters
            model.save(path)
        Xs = model._transform(X)
        side = SideInfo.build(Xs.shape[0], y=ys)
        for label, (k, graph, *more) in settings.items():  # more: DMS parameters of that setting
            m = copy.deepcopy(model)
            m.set_params(**{"smoothing": "auto", "fallback": DMSClustering().fallback, "n_neighbors": k,
                            **(more[0] if more else {})})
            with graph_as(*graph) as graph_settings:
                m.set_params(settings=DMSSettings(smoothing=graph_settings))
                resmooth(m, Xs, side, seed)
            e = evaluate(y[score], m.labels_[score])
            out[label].append(e["acc"])
            ami[label].append(e["ami"])
            clusters[label].append(m.n_clusters_)
        print(f"{name} seed {seed}: " + ", ".join(f"{lb} {out[lb][-1]:.3f}" for lb in settings), flush=True)
    return out, clusters, ami


def row(name, res, ks, extra=None):
    best = max(ks, key=lambda k: np.mean(res[k]))
    cells = []
    for k in ks:
        a = np.asarray(res[k])
        text = f"{a.mean():.3f} ± {a.std():.3f}"
        cells.append(f"**{text}**" if k == best else text)
    tail = "" if extra is None else " | " + " / ".join(f"{np.mean(extra[k]):.1f}" for k in ks)
    return f"| {name} | " + " | ".join(cells) + tail + " |"


def one_way_sections(args, cache: Path) -> list[str]:
    """Markdown: spreading from the side information alone and DMS re-smoothed, for each weight of one-way edges."""
    ws = list(args.one_way)
    lines = []
    if args.side:
        lines += [f"## Label spreading from the side information alone, k = {DMSClustering().n_neighbors}, "
                  f"one-way edges (not among the neighbour's {SMOOTHING.reciprocal_neighbors} nearest) weighted",
                  "", "| data | " + " | ".join(f"one-way weight {w:g}" for w in ws) + " |",
                  "| --- |" + " --- |" * len(ws)]
        for name in args.side:
            lines.append(row(name, side_only(name, [], args.seeds, ws), ws))
            print(lines[-1], flush=True)
        lines.append("")
    if args.dms:
        k = DMSClustering().n_neighbors
        settings = {"before: every edge counts as returned, noise kept": (k, (False, False, True, None),
                                                                           {"smooth_noise": False}),
                    **{f"one-way weight {w:g}, noise kept": (k, (False, False, True, w), {"smooth_noise": False})
                       for w in ws},
                    f"one-way weight {SMOOTHING.one_way_weight:g}, noise relabelled": (
                        k, (False, False, True, SMOOTHING.one_way_weight), {"smooth_noise": True})}
        default = f"one-way weight {SMOOTHING.one_way_weight:g}, noise relabelled"
        lines += dms_table("## DMS (library defaults but the weight of one-way edges), smoothing re-run on one fit "
                           "per seed", f"({default}). \"Before\" also finds unseeded components on the whole graph, "
                           "as dmshift did.", settings, default, args, cache)
    return lines


def dms_table(title: str, note: str, settings: dict, default: str, args, cache: Path) -> list[str]:
    """Markdown: DMS re-smoothed with each setting on ``args.dms``, one row per data set."""
    lines = [title, "", f"ACC; then the clusters found with each setting, and the AMI before and at the default {note}",
             "", "| data | " + " | ".join(settings) + " | clusters | AMI before / default |",
             "| --- |" + " --- |" * (len(settings) + 2)]
    for name in args.dms:
        res, clusters, ami = dms(name, settings, args.seeds, cache)
        before = next(iter(settings))
        tail = f" {np.mean(ami[before]):.3f} / {np.mean(ami[default]):.3f} |" if default in ami else " |"
        lines.append(row(name, res, list(settings), clusters) + tail)
        print(lines[-1], flush=True)
    return lines + [""]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", nargs="*", default=[], help="data sets for spreading from the side information alone")
    ap.add_argument("--dms", nargs="*", default=[], help="data sets for DMS fits re-smoothed with each k")
    ap.add_argument("--k", type=int, nargs="+", default=[2, 3, 4, 5, 7])
    ap.add_argument("--one-way", type=float, nargs="+", default=None,
                    help="instead of the k sweep: weights of one-way edges to compare at the default k")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "dmshift" / "smoothing-neighbors"))
    ap.add_argument("--out", default=None, help="write the markdown here (default: print only)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    head = "| data | " + " | ".join(f"k = {k}" for k in args.k) + " |"
    rule = "| --- |" + " --- |" * len(args.k)
    lines = ["# Smoothing: the label-spreading graph (neighbours, edge weights, components)", "",
             f"- command: `python benchmarks/{Path(__file__).name} {' '.join(argv or sys.argv[1:])}`",
             f"- commit: `{commit}`", f"- machine: {platform.platform()}, torch {torch.__version__}, "
             f"{args.threads} thread(s)", f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
             f"- seeds: {', '.join(map(str, args.seeds))}; partial labels on a random 5% (dms_quality.py's draw); "
             "ACC on the other points (digits-novel: on the points of the unseen classes); mean ± std, best in bold",
             ""]
    if args.one_way:
        lines += one_way_sections(args, cache)
    if args.side and not args.one_way:
        for title, (one_ended, every) in (
                ("today's graph: self-tuning edge scale `exp(-d_ij^2 / (s_i s_j))`, at most 64 leading components",
                 (False, False)),
                ("self-tuning edge scale, every component", (False, True)),
                ("the graph before: one-ended edge scale `exp(-(d_ij / s_i)^2)`, every component", (True, True))):
            lines += [f"## Label spreading from the side information alone, {title}", "", head, rule]
            for name in args.side:
                with graph_as(one_ended, every):
                    lines.append(row(name, side_only(name, args.k, args.seeds), args.k))
                print(lines[-1], flush=True)
            lines.append("")
    if args.dms and not args.one_way:
        kept = {"smooth_noise": False}  # as dmshift did before one-way edges and relabelled noise
        settings = {"before: k = 5, one-ended scale, every component, no own components": (5, (True, True, False),
                                                                                            kept),
                    "k = 3, no own components": (3, (False, False, False), kept),
                    **{f"k = {k}": (k, (False, False, True)) for k in args.k}}
        default = f"k = {DMSClustering().n_neighbors}"
        lines += dms_table("## DMS (library defaults but smoothing's graph), smoothing re-run on one fit per seed",
                           f"({default}).", settings, default, args, cache)
    text = "\n".join(lines)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
