"""Clustering quality against the share of flipped pairwise constraints: DMS next to KCL and MCL.

The protocol of KCL (Hsu & Kira 2016, Figure 5): a share of the points is labelled, pairs
are drawn uniformly among the labelled points and marked same/different from their
classes, and a fraction of them (0, 10, 20, 30%) is flipped. Every method trains on the
pairs alone, with ``on_conflict="majority"`` (flipped pairs can close a "same" path
between two points marked different; the vote drops what is outvoted), and clusters
all the points; NMI and ACC are measured on all of them against the classes. The pairs
and the flips are drawn once per seed and shared by the methods.

About one pair per labelled point keeps the "same" graph below the percolation point even
at 30% flips (its mean degree is then about 0.7), so the transitive closure of "same"
does not glue classes into one giant group; ``--pairs-per-point`` changes that.

Usage::

    python benchmarks/noisy_side_info.py --data mnist --quick     # CPU-small: 3000 points, 1 seed
    python benchmarks/noisy_side_info.py --data mnist              # 10000 points, 3 seeds
    python benchmarks/noisy_side_info.py --data coil100            # 7200 images, 3 seeds
    python benchmarks/noisy_side_info.py --data mnist --set dms:inference_side_info=false

Results go to ``benchmarks/results/noisy_side_info_<data>[_quick].{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from dmshift.bench.report import git_commit, machine  # noqa: E402
from dmshift.datasets import load  # noqa: E402
from dmshift.estimators.dms import DMSClustering  # noqa: E402
from dmshift.estimators.kcl import KCLClustering  # noqa: E402
from dmshift.estimators.mcl import MCLClustering  # noqa: E402
from dmshift.metrics import evaluate  # noqa: E402

DATA = {  # name: (load kwargs for the full run, for --quick)
    "mnist": ({"n": 10_000}, {"n": 3_000}),
    "coil100": ({}, {}),
}


def method_params(name: str, k: int, quick: bool, steps: int | None, extra: dict | None = None) -> tuple[type, dict]:
    """Estimator and parameters; --quick shortens training, --steps and --set override them."""
    if name == "dms":
        p = dict(hidden=(64, 32), batch_size=64, instance_size=(100, 150), n_seeds=300,
                 max_steps=400 if quick else 1500)
        cls = DMSClustering
    else:
        p = dict(n_clusters=k, schedule="cosine", max_steps=600 if quick else 3000)
        cls = KCLClustering if name == "kcl" else MCLClustering
    if steps is not None:
        p["max_steps"] = steps
    return cls, {**p, "on_conflict": "majority", **(extra or {}).get(name, {})}


def parse_sets(items) -> dict:
    """``["dms:inference_side_info=false"]`` -> ``{"dms": {"inference_side_info": False}}``."""
    import ast
    out: dict = {}
    for item in items or []:
        method, _, kv = item.partition(":")
        key, _, text = kv.partition("=")
        try:
            value = json.loads(text)
        except ValueError:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                value = text
        out.setdefault(method, {})[key] = tuple(value) if isinstance(value, list) else value
    return out


def sample_pairs(y: np.ndarray, labelled: np.ndarray, m: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    """``m`` distinct uniform pairs among ``labelled`` points, same = same class, a share ``noise`` flipped."""
    seen, rows = set(), []
    while len(rows) < m:
        i, j = (int(v) for v in rng.choice(labelled, 2))
        key = (min(i, j), max(i, j))
        if i == j or key in seen:
            continue
        seen.add(key)
        rows.append((i, j, int(y[i] == y[j])))
    P = np.array(rows, dtype=np.int64)
    flip = rng.permutation(m)[:int(round(noise * m))]
    P[flip, 2] = 1 - P[flip, 2]
    return P


def write_markdown(path: Path, res: dict) -> None:
    rows = res["rows"]
    noises = sorted({r["noise"] for r in rows})
    methods = [m for m in ("dms", "kcl", "mcl") if any(r["method"] == m for r in rows)]
    lines = [f"# Quality against flipped pairs ({res['data']}{', quick' if res['quick'] else ''})", "",
             "KCL (Hsu & Kira 2016) Figure 5 protocol: pairs drawn among labelled points, a share of them "
             "flipped; every method trains on the pairs only (`on_conflict=\"majority\"`) and clusters all "
             "points. Mean over seeds (min-max in brackets when more than one).", ""]
    for metric in ("nmi", "acc"):
        lines += [f"## {metric.upper()} on all {res['n']} points", "",
                  "| flipped | " + " | ".join(m.upper() for m in methods) + " |",
                  "|---|" + "---|" * len(methods)]
        for f in noises:
            cells = []
            for m in methods:
                v = [r[metric] for r in rows if r["method"] == m and r["noise"] == f]
                spread = f" [{min(v):.3f}-{max(v):.3f}]" if len(v) > 1 else ""
                cells.append("-" if not v else f"{np.mean(v):.3f}{spread}")
            lines.append(f"| {f:.0%} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Runs", "", "| method | flipped | seed | NMI | ACC | clusters | noise share | conflicts | fit (s) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["method"], r["noise"], r["seed"])):
        lines.append(f"| {r['method']} | {r['noise']:.0%} | {r['seed']} | {r['nmi']:.3f} | {r['acc']:.3f} | "
                     f"{r['n_clusters']} | {r['noise_share']:.1%} | {r['n_conflicts']} | {r['seconds']:.0f} |")
    s = res["setup"]
    lines += ["", "## Setup", "",
              f"- data: {s['data']}",
              f"- side information: {s['n_labelled']} labelled points ({s['labelled']:.0%}), "
              f"{s['n_pairs']} uniform pairs among them per seed, the flipped share chosen at random",
              f"- methods: {s['methods']}",
              f"- command: `{res['command']}`",
              f"- commit {res['commit']}, {res['date']}",
              f"- machine: {res['machine']}",
              "- fit times are wall-clock seconds on a machine shared with other jobs", ""]
    path.write_text("\n".join(lines))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", choices=list(DATA), default="mnist")
    ap.add_argument("--quick", action="store_true", help="CPU-small: fewer points (MNIST 3000), 1 seed, short training")
    ap.add_argument("--n", type=int, help="points to load (MNIST: the first N training images)")
    ap.add_argument("--labelled", type=float, default=0.5, help="share of points that are labelled (default 0.5)")
    ap.add_argument("--pairs-per-point", type=float, default=1.0, help="pairs per labelled point (default 1)")
    ap.add_argument("--noise", default="0,0.1,0.2,0.3", help="flipped shares, comma-separated")
    ap.add_argument("--methods", default="dms,kcl,mcl")
    ap.add_argument("--seeds", type=int, help="number of seeds (default: 3, --quick: 1)")
    ap.add_argument("--steps", type=int, help="training steps of every method (overrides the defaults)")
    ap.add_argument("--set", action="append", metavar="METHOD:KEY=VALUE",
                    help="an estimator parameter of one method, e.g. dms:inference_side_info=false (repeatable)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    kw = dict(DATA[args.data][1 if args.quick else 0])
    if args.n is not None:
        kw["n"] = args.n
    ds = load(args.data, **kw)
    X, y = ds.X, np.asarray(ds.y)
    n, k = X.shape[0], int(np.unique(y).size)
    seeds = args.seeds or (1 if args.quick else 3)
    noises = [float(v) for v in args.noise.split(",")]
    methods = args.methods.split(",")
    extra = parse_sets(args.set)
    n_lab = int(round(args.labelled * n))
    m = int(round(args.pairs_per_point * n_lab))
    print(f"{args.data}: {n} points x {X.shape[1]} features, {k} classes; {n_lab} labelled, {m} pairs", flush=True)

    rows = []
    tag = f"noisy_side_info_{args.data}{'_quick' if args.quick else ''}"
    args.out.mkdir(parents=True, exist_ok=True)
    res = {"data": args.data, "quick": args.quick, "n": n, "rows": rows,
           "command": "python " + " ".join([f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
           "commit": git_commit(), "machine": machine(),
           "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "setup": {"data": f"{args.data} {kw or '(all)'}: {n} points x {X.shape[1]} features, {k} classes",
                     "labelled": args.labelled, "n_labelled": n_lab, "n_pairs": m,
                     "methods": "; ".join(f"{name}: {method_params(name, k, args.quick, args.steps, extra)[1]}"
                                         for name in methods)}}
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        labelled = np.sort(rng.choice(n, size=n_lab, replace=False))
        for f in noises:
            P = sample_pairs(y, labelled, m, f, np.random.default_rng([seed, int(round(f * 1000))]))
            for name in methods:
                cls, params = method_params(name, k, args.quick, args.steps, extra)
                est = cls(**params, device=args.device, random_state=seed)
                t0 = time.perf_counter()
                est.fit(X, pairs=P)
                secs = time.perf_counter() - t0
                sc = evaluate(y, est.labels_)
                row = {"method": name, "noise": f, "seed": seed, "nmi": float(sc["nmi"]), "acc": float(sc["acc"]),
                       "n_clusters": int(est.n_clusters_), "noise_share": float(np.mean(est.labels_ < 0)),
                       "n_conflicts": int(est.side_info_["n_conflicts"]), "seconds": secs}
                rows.append(row)
                print(json.dumps(row), flush=True)
                (args.out / f"{tag}.json").write_text(json.dumps(res, indent=1))
                write_markdown(args.out / f"{tag}.md", res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
