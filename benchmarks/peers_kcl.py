"""KCL robustness on MNIST from 12,000 pairwise constraints (Hsu & Kira 2016, §3.2), with MCL alongside.

Pairs are drawn uniformly from all pairs of the 60,000 MNIST training images and labelled
same/different from the digit (about 1 same : 9 different); a noisy copy flips 10% of
them. The network is the paper's LeNet. Each run trains on the pairs, clusters the
training images (``labels_``) and predicts the 10,000 test images; NMI on the test set
is the paper's measure (Figure 5). The claims checked:

* with ``n_clusters`` = 10, 30 and 100 the test NMI changes by less than 0.05, and most of
  the 100 outputs stay empty;
* with 10% of the pairs flipped, the test NMI stays within 0.1 of the clean run.

Usage::

    python benchmarks/peers_kcl.py                 # the full protocol (about 30 min on 2 CPU cores)
    python benchmarks/peers_kcl.py --quick         # a 2-minute smoke run on a subset
    python benchmarks/peers_kcl.py --runs kcl-k10,kcl-k100 --steps 3000

Results are merged, run by run, into ``benchmarks/results/peers_kcl[_quick].json`` and
the Markdown table beside it is rewritten from the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
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
from dmshift.estimators.kcl import KCLClustering  # noqa: E402
from dmshift.estimators.mcl import MCLClustering  # noqa: E402
from dmshift.metrics import evaluate  # noqa: E402

RUNS = {  # name: (estimator, n_clusters, noise)
    "kcl-k10": (KCLClustering, 10, 0.0),
    "kcl-k30": (KCLClustering, 30, 0.0),
    "kcl-k100": (KCLClustering, 100, 0.0),
    "kcl-k10-noise10": (KCLClustering, 10, 0.1),
    "mcl-k10": (MCLClustering, 10, 0.0),
    "mcl-k100": (MCLClustering, 100, 0.0),
    "mcl-k10-noise10": (MCLClustering, 10, 0.1),
}
N_TRAIN = 60_000


def sample_pairs(y: np.ndarray, m: int, noise: float, seed: int) -> np.ndarray:
    """``m`` distinct uniform pairs (i < j) of ``y``'s points with same = (y_i == y_j), a share ``noise`` flipped."""
    rng = np.random.default_rng(seed)
    n = y.size
    seen, rows = set(), []
    while len(rows) < m:
        i, j = (int(v) for v in rng.integers(0, n, 2))
        if i == j or (min(i, j), max(i, j)) in seen:
            continue
        seen.add((min(i, j), max(i, j)))
        rows.append((i, j, int(y[i] == y[j])))
    P = np.array(rows, dtype=np.int64)
    flip = np.random.default_rng(seed + 1).random(m) < noise  # independent of the pairs, same for every run
    P[flip, 2] = 1 - P[flip, 2]
    return P


def run_one(name, X_tr, y_tr, X_te, y_te, args) -> dict:
    cls, k, noise = RUNS[name]
    pairs = sample_pairs(y_tr, args.pairs, noise, args.seed)
    est = cls(n_clusters=k, input_shape=None if args.arch == "mlp" else (28, 28), max_steps=args.steps,
              batch_size=args.batch_size, lr=args.lr, schedule=args.schedule, n_init=args.n_init,
              on_conflict="majority", device=args.device, random_state=args.seed)
    t0 = time.perf_counter()
    est.fit(X_tr, pairs=pairs)
    fit_s = time.perf_counter() - t0
    pred = est.predict(X_te)
    train_m, test_m = evaluate(y_tr, est.labels_), evaluate(y_te, pred)
    sizes = np.sort(np.bincount(pred, minlength=k))[::-1]
    row = {
        "run": name, "method": cls.__name__, "n_clusters": k, "noise": noise,
        "n_pairs": int(pairs.shape[0]), "same_pairs": int(pairs[:, 2].sum()),
        "side_info": est.side_info_, "steps": est.training_["steps"], "fit_seconds": round(fit_s, 1),
        "test_nmi": test_m["nmi"], "test_acc": test_m["acc"], "test_purity": test_m["purity"],
        "train_nmi": train_m["nmi"], "train_acc": train_m["acc"],
        "outputs_used_train": int(est.n_clusters_), "outputs_used_test": int(test_m["n_clusters"]),
        "empty_outputs_train": int(k - est.n_clusters_),
        "test_share_in_10_largest": float(sizes[:10].sum() / sizes.sum()),
    }
    print(json.dumps(row), flush=True)
    return row


def verdicts(rows: dict) -> list[str]:
    out = []
    for m in ("kcl", "mcl"):
        base = rows.get(f"{m}-k10")
        if base is None:
            continue
        for k in (30, 100):
            r = rows.get(f"{m}-k{k}")
            if r is not None:
                d = abs(r["test_nmi"] - base["test_nmi"])
                out.append(f"{m.upper()} k={k} vs k=10: |dNMI| = {d:.3f} (bar < 0.05): {'PASS' if d < 0.05 else 'FAIL'}")
        r = rows.get(f"{m}-k100")
        if r is not None:
            out.append(f"{m.upper()} k=100: {r['empty_outputs_train']} of 100 outputs empty on the training set, "
                       f"{r['test_share_in_10_largest']:.1%} of test points in the 10 largest clusters "
                       f"(bar: most empty): {'PASS' if r['empty_outputs_train'] > 50 else 'FAIL'}")
        r = rows.get(f"{m}-k10-noise10")
        if r is not None:
            d = base["test_nmi"] - r["test_nmi"]
            out.append(f"{m.upper()} 10% flipped pairs: NMI {r['test_nmi']:.3f} vs clean {base['test_nmi']:.3f} "
                       f"(bar: within 0.1): {'PASS' if d < 0.1 else 'FAIL'}")
    return out


def write_markdown(path: Path, result: dict) -> None:
    rows = result["rows"]
    lines = [f"# KCL / MCL robustness on MNIST ({'quick' if result['quick'] else 'full'} protocol)", "",
             "Reproduces Hsu & Kira (2016) §3.2 qualitatively: 12,000 uniform pairwise constraints on the MNIST "
             f"training set, NMI on the test images (Figure 5). Network: {result['setup']['network']}.", "",
             "| run | method | k | flipped | steps | fit (s) | test NMI | test ACC | train NMI | outputs used (train) "
             "| test share in 10 largest |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in RUNS:
        r = rows.get(name)
        if r is None:
            continue
        lines.append(f"| {name} | {r['method']} | {r['n_clusters']} | {r['noise']:.0%} | {r['steps']} | "
                     f"{r['fit_seconds']:.0f} | {r['test_nmi']:.3f} | {r['test_acc']:.3f} | {r['train_nmi']:.3f} | "
                     f"{r['outputs_used_train']} | {r['test_share_in_10_largest']:.3f} |")
    lines += ["", "## Claims", ""] + [f"- {v}" for v in verdicts(rows)]
    lines += ["", "## Setup", ""] + [f"- {k}: {v}" for k, v in result["setup"].items()
                                       if k not in ("command", "commit")]
    lines += ["- fit times are wall-clock seconds on a machine shared with other jobs, so they vary with its load",
              "", "## Runs", ""]
    lines += [f"- {name}: `{r['command']}`, commit {r['commit']}, {r['date']}" for name, r in rows.items()]
    path.write_text("\n".join(lines) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="10,000 training images, 2,000 pairs, 300 steps")
    ap.add_argument("--runs", default="kcl-k10,kcl-k30,kcl-k100,kcl-k10-noise10",
                    help=f"comma-separated subset of {','.join(RUNS)}")
    ap.add_argument("--pairs", type=int, default=12_000)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--schedule", choices=("constant", "cosine"), default="cosine")
    ap.add_argument("--n-init", type=int, default=1)
    ap.add_argument("--arch", choices=("lenet", "mlp"), default="lenet")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=None, help="results stem (default benchmarks/results/peers_kcl[_quick])")
    ap.add_argument("--render", action="store_true", help="only rewrite the Markdown table from the JSON")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    n_train = N_TRAIN
    if args.quick:
        n_train, args.pairs, args.steps = 10_000, 2_000, 300
    stem = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / ("peers_kcl_quick" if args.quick else "peers_kcl")
    if args.render:
        write_markdown(stem.with_suffix(".md"), json.loads(stem.with_suffix(".json").read_text()))
        return
    names = [r.strip() for r in args.runs.split(",") if r.strip()]
    unknown = set(names) - set(RUNS)
    if unknown:
        ap.error(f"unknown runs {sorted(unknown)}; known: {list(RUNS)}")

    ds = load("mnist")
    X_tr, y_tr = ds.X[:n_train], ds.y[:n_train]
    X_te, y_te = ds.X[N_TRAIN:], ds.y[N_TRAIN:]
    if args.quick:
        X_te, y_te = X_te[:2000], y_te[:2000]

    stem.parent.mkdir(parents=True, exist_ok=True)
    json_path = stem.with_suffix(".json")
    result = json.loads(json_path.read_text()) if json_path.exists() else {"rows": {}}
    for name in names:
        row = run_one(name, X_tr, y_tr, X_te, y_te, args)
        row["command"] = "python " + " ".join([os.path.relpath(__file__, ROOT)] + (argv if argv is not None else sys.argv[1:]))
        row["commit"] = git_commit()
        row["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        result["rows"][name] = row
        result["quick"] = args.quick
        result["setup"] = {
            "data": f"MNIST: first {n_train} training images (train), {len(y_te)} test images",
            "side information": f"{args.pairs} uniform pairs of training images (seed {args.seed}), flipped as in the run name",
            "network": "LeNet of KCL §3 (20/50 5x5 filters with batch norm, 500-unit layer)" if args.arch == "lenet"
                       else "MLP 200-200-500",
            "training": f"Adam lr {args.lr} ({args.schedule}), {args.steps} steps, batch of {args.batch_size // 2} drawn relations, "
                        f"n_init {args.n_init}",
            "command": row["command"], "commit": row["commit"], "machine": machine(),
        }
        json_path.write_text(json.dumps(result, indent=2) + "\n")
        write_markdown(stem.with_suffix(".md"), result)
    for v in verdicts(result["rows"]):
        print(v)


if __name__ == "__main__":
    main()
