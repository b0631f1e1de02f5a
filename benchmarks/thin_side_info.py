"""Thin side information: many small groups, at most a label or two in each (faces by identity).

With partial labels on a random 5% of the points, a data set of 100 identities with 14
images each (AR faces) gives about 70 labelled images: most identities get one label or
none, and only about 25 pairs say "same". DMS then fails (``bench-table3-ar-faces.md``:
ACC 0.094). This benchmark measures why and what the features allow, on the protocol of
``dmshift bench`` (``random_split``, 5% labels, scores on the other points):

* the side information: labels, groups seen, "same" pairs, and the Chao1 estimate of the
  number of groups from how often labels repeat (``S_obs + f1 (f1 - 1) / (2 (f2 + 1))``);
* neighbour purity of the kernel's input (standardised, projected on
  ``n_components="auto"``) and of the same projection whitened (each component scaled
  to unit variance): the share of each point's 1 and 3 nearest neighbours in its class;
* ACC of DMS at the defaults (each seed), of DMS variants (the first seed), and of Ward
  trees on both inputs: given k, cut at the Chao1 estimate, and cut where the pairwise
  F1 on the labelled points is highest (no k given).

``--decisions NAME ...`` adds what the fallback does on other data sets: DMS fitted once per
data set and seed with ``smoothing=None, fallback=None`` (cached under ``--decision-cache``, the fits that
``smoothing_neighbors.py`` re-smooths, on its draw of side information), then its last step
run with and without the fallback.

    python benchmarks/thin_side_info.py --datasets ar_faces orl umist --seeds 0 1 2 \\
        --decisions digits coil20 usps mnist10k coil100 digits-novel usps-novel mnist10k-novel ar_faces orl umist \\
        --out benchmarks/results/thin-side-info.md
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.cluster.hierarchy import fcluster, ward
from sklearn.neighbors import NearestNeighbors

from dmshift import DMSClustering
from dmshift.bench.data import load_case
from dmshift.bench.protocol import random_split, score
from dmshift.estimators._base import standardization
from dmshift.preprocessing import principal_components
from dmshift.settings import FallbackSettings, SmoothingSettings

#: The library's fallback settings, as the notes of the tables quote them.
FALLBACK = FallbackSettings()

VARIANTS = {
    "fallback off (the kernel's clusters)": {"fallback": None},
    "fallback off, no self-training": {"fallback": None, "self_training": 0},
    "fallback off, smoothing always": {"fallback": None, "smoothing": "graph"},
    "fallback off, init_quantile 0.004": {"fallback": None, "init_quantile": 0.004},
    "fallback off, whitened input": {"fallback": None, "whiten": True},
}
ALL_SEEDS = ("fallback off (the kernel's clusters)",)  # variants run on every seed, the others on the first


def inputs(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's input at the defaults (n, c), and the same whitened."""
    Xt = torch.as_tensor(X, dtype=torch.float32)
    mean, scale = standardization(Xt, True)
    Xs = (Xt - mean) / scale
    V = principal_components(Xs, "auto")
    plain = Xs if V is None else Xs @ V
    if V is None:  # no projection: whitening still needs the principal axes (those with variance)
        evals, evecs = torch.linalg.eigh(torch.cov(Xs.T.double()))
        V = evecs[:, evals > 1e-9 * evals.max()].float()
    Z = Xs @ V
    Zw = (Z - Z.mean(0)) / Z.std(0).clamp_min(1e-6)
    return plain.numpy(), Zw.numpy()


def purity(Z: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    _, idx = NearestNeighbors(n_neighbors=4).fit(Z).kneighbors(Z)
    return float((y[idx[:, 1]] == y).mean()), float((y[idx[:, 1:]] == y[:, None]).mean())


def chao1(labels: np.ndarray) -> float:
    cnt = np.bincount(np.unique(labels, return_inverse=True)[1])
    f1, f2 = int((cnt == 1).sum()), int((cnt == 2).sum())
    return cnt.size + f1 * (f1 - 1) / (2 * (f2 + 1))


def pair_f1(labels: np.ndarray, ys: np.ndarray) -> float:
    """Pairwise F1 of ``labels`` against the groups ``ys`` of the same points."""
    iu = np.triu_indices(ys.size, 1)
    same = (ys[:, None] == ys[None])[iu]
    together = (labels[:, None] == labels[None])[iu]
    tp = int((same & together).sum())
    return 2 * tp / max(2 * tp + int((same ^ together).sum()), 1)


def ward_cuts(Z: np.ndarray, y: np.ndarray, split, k_est: float) -> dict:
    """ACC of a Ward tree on ``Z`` cut at the true k, at ``k_est``, and at the best pairwise F1 on the side information."""
    T = ward(Z.astype(np.float64))
    side, ys = split.side, y[split.side]
    out = {}
    for name, k in (("given k", np.unique(y).size), ("Chao1 k", int(round(k_est)))):
        out[name] = (score(y, fcluster(T, k, "maxclust") - 1, split.scored)["acc"], k)
    best = (-1.0, 0, None)
    for k in np.unique(np.geomspace(2, y.size // 2, 60).round().astype(int)):
        lab = fcluster(T, k, "maxclust") - 1
        f = pair_f1(lab[side], ys)
        if f > best[0] + 1e-12:
            best = (f, int(k), lab)
    out["best side-info F1"] = (score(y, best[2], split.scored)["acc"], best[1])
    return out


def dms_fit(X, y_side, seed, params, cache: Path, key: str):
    """Labels, seconds and decisions of one DMS fit, cached as NPZ (labels + JSON text; nothing is unpickled)."""
    path = cache / f"{key}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as f:
            return {"labels": f["labels"], **json.loads(str(f["meta"]))}
    params = dict(params)
    if params.pop("whiten", False):
        X = inputs(X)[1]
    t0 = time.perf_counter()
    m = DMSClustering(random_state=seed, **params).fit(X, y_side)
    res = {"labels": m.labels_, "seconds": time.perf_counter() - t0, "smoothing": m.smoothing_,
           "fallback": m.fallback_, "rounds": m.training_["rounds"]}
    meta = json.dumps({k: v for k, v in res.items() if k != "labels"},
                      default=lambda o: o.item() if isinstance(o, np.generic) else o.tolist())
    np.savez(path, labels=np.asarray(res["labels"]), meta=np.array(meta))
    return res


def decisions(args) -> list[str]:
    """Markdown: ACC of cached ``smoothing=None, fallback=None`` fits finished with and without the fallback."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from smoothing_neighbors import dms_table

    k = DMSClustering().n_neighbors
    graph = (False, False, True, SmoothingSettings().one_way_weight)  # today's smoothing graph
    settings = {"fallback off": (k, graph, {"fallback": None}),
                "default (fallback=\"tree\")": (k, graph, {})}
    ns = argparse.Namespace(dms=args.decisions, seeds=args.seeds)
    cache = Path(args.decision_cache)
    cache.mkdir(parents=True, exist_ok=True)
    return dms_table("## The fallback on other data sets", "(the clusters differ only where the fallback is "
                     "taken). Side information: `dms_quality.py`'s draw, 5%; `NAME-novel`: labels from half the "
                     "classes, ACC on the others.", settings, next(reversed(settings)), ns, cache)


def mean_std(v) -> str:
    return f"{np.mean(v):.3f} ± {np.std(v):.3f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["ar_faces", "orl", "umist"],
                    help="NAME or NAME:TASK (the intrinsic task by default)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--variants-on", default="ar_faces", help="data set the DMS variants run on (first seed)")
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "dmshift" / "thin-side-info"))
    ap.add_argument("--decisions", nargs="*", default=[], help="data sets (dms_quality.py names) to show the "
                    "fallback's decision on, re-running the last step of cached fits")
    ap.add_argument("--decision-cache", default=str(Path.home() / ".cache" / "dmshift" / "smoothing-neighbors"))
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = ["# Thin side information: many small groups, a label or two in each", "",
             f"- command: `python benchmarks/{Path(__file__).name} {' '.join(argv or sys.argv[1:])}`",
             f"- commit: `{commit}`", f"- machine: {platform.platform()}, torch {torch.__version__}, 1 thread",
             f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
             f"- seeds: {', '.join(map(str, args.seeds))}; partial labels on a random 5% (`random_split`, as "
             "`dmshift bench`); ACC on the other points, noise counted as wrong; mean ± std", ""]
    side_rows, purity_rows, acc_rows = [], [], []
    for spec in args.datasets:
        name, _, task = spec.partition(":")
        case = load_case(name, task or None)
        X, y = case.X, case.y
        plain, white = inputs(X)
        p, w = purity(plain, y), purity(white, y)
        purity_rows.append(f"| {spec} ({case.task}) | {p[0]:.3f} | {p[1]:.3f} | {w[0]:.3f} | {w[1]:.3f} |")
        cells: dict[str, list] = {}
        stats = []
        for seed in args.seeds:
            split = random_split(y, 0.05, seed)
            ys = y[split.side]
            cnt = np.bincount(np.unique(ys, return_inverse=True)[1])
            k_est = chao1(ys)
            stats.append((ys.size, cnt.size, int((cnt * (cnt - 1) // 2).sum()), int((cnt == 1).sum()), k_est))
            key = f"{name}-{case.task}-{seed}"
            res = dms_fit(X, split.y_side, seed, {}, cache, f"{key}-default")
            s = score(y, res["labels"], split.scored)
            cells.setdefault("DMS, defaults", []).append((s["acc"], s["n_clusters"]))
            fb = res["fallback"]
            stats[-1] += (fb["kernel_f1"], fb["tree_f1"], fb["space"] if fb["applied"] else None)
            for label, Z in (("plain", plain), ("whitened", white)):
                for cut, (acc, k) in ward_cuts(Z, y, split, k_est).items():
                    cells.setdefault(f"Ward, {label} input, {cut}", []).append((acc, k))
            if name == args.variants_on:
                for label, params in VARIANTS.items():
                    if label not in ALL_SEEDS and seed != args.seeds[0]:
                        continue
                    tag = "".join(ch if ch.isalnum() else "_" for ch in label)
                    r = dms_fit(X, split.y_side, seed, params, cache, f"{key}-{tag}")
                    s = score(y, r["labels"], split.scored)
                    row = f"DMS, {label}" + ("" if label in ALL_SEEDS else f" (seed {seed} only)")
                    cells.setdefault(row, []).append((s["acc"], s["n_clusters"]))
            print(spec, seed, json.dumps({k: v[-1] for k, v in cells.items()}, default=float), flush=True)
        st = np.array([row[:5] for row in stats], dtype=float)
        f1 = " / ".join(f"{'–' if k is None else f'{k:.2f}'} → {'–' if t is None else f'{t:.2f}'}"
                        for *_, k, t, _ in stats)
        applied = [row[-1] for row in stats if row[-1]]
        side_rows.append(f"| {spec} ({case.task}) | {case.n} | {case.k} | {st[:, 0].mean():.0f} | {st[:, 1].mean():.1f} | "
                         f"{st[:, 2].mean():.1f} | {st[:, 3].mean():.1f} | {st[:, 4].mean():.1f} | {f1} | "
                         f"{len(applied)} of {len(stats)}{' (' + ', '.join(sorted(set(applied))) + ')' if applied else ''} |")
        acc_rows.append(f"### {spec} ({case.task}): {case.n} points, {case.k} classes")
        acc_rows += ["", "| method | ACC | clusters |", "| --- | --- | --- |"]
        for label, v in cells.items():
            a = np.array(v, dtype=float)
            acc_rows.append(f"| {label} | {mean_std(a[:, 0])} | {a[:, 1].mean():.1f} |")
        acc_rows.append("")
    lines += ["## Side information (mean over seeds)", "",
              "| data | points | classes | labels | groups seen | same pairs | groups with one label | Chao1 k | "
              "pairwise F1 on the side information, kernel → tree (each seed) | fallback taken |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |", *side_rows, "",
              "The tree's F1 is computed only when the fallback's first tests pass (at least "
              f"{FALLBACK.min_same_pairs} \"same\" pairs, kernel F1 at most {1 - FALLBACK.margin:g}, at most "
              f"{FALLBACK.max_cluster_share:g} clusters per group seen); \"–\" where it was not.", "",
              "## Neighbour purity of the input", "",
              "| data | plain 1-NN | plain 3-NN | whitened 1-NN | whitened 3-NN |", "| --- | --- | --- | --- | --- |",
              *purity_rows, "", "## ACC", "", *acc_rows]
    if args.decisions:
        lines += decisions(args)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
