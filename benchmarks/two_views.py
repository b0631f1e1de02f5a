"""The same points grouped two ways: does the learnt kernel, not the input-space graph, decide?

digits (``X / 16``) with 8 distractor features appended: ``make_blobs(1797, n_features=8,
centers=4, cluster_std=1.0, center_box=(-6, 6), random_state=0)`` divided by 6. The task is
either the digit or the blob. 5% side information drawn with ``numpy.random.default_rng(1000 +
seed)``; scores on the other points, noise counted as wrong, no k given to DMS.

Rows: DMS at its defaults; DMS with the label choice scored on every fold by the final kernel
(``settings={"validation": {"cross_fit": False}}``, the choice before cross-fitting); DMS with
the kernel untrained (``max_steps=1``); DMS with the
labels from the learnt graph and from the input graph forced (``smoothing="learnt"`` /
``"input"``); scikit-learn's ``LabelSpreading`` (knn kernel, its defaults, on the features as
given); k-means with the true k. CPU time is ``time.process_time`` of the fit, one thread.

    python benchmarks/two_views.py --seeds 0,1,2 --out benchmarks/results/two-views.md
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
import torch

from dmshift import DMSClustering
from dmshift.bench.protocol import score
from dmshift.bench.report import git_commit, machine

ROWS = {
    "DMS (defaults)": {},
    "DMS, every fold scored by the final kernel (cross_fit=False)": {"settings": {"validation": {"cross_fit": False}}},
    "DMS, kernel untrained (max_steps=1)": {"max_steps": 1},
    "DMS, labels from the learnt graph": {"smoothing": "learnt"},
    "DMS, labels from the input graph": {"smoothing": "input"},
}


def data(task: str):
    from sklearn.datasets import load_digits, make_blobs
    Xd, yd = load_digits(return_X_y=True)
    B, yb = make_blobs(1797, n_features=8, centers=4, cluster_std=1.0, center_box=(-6, 6), random_state=0)
    return np.hstack([Xd / 16, B / 6]).astype(np.float32), (yd if task == "digit" else yb)


def run(seeds: list[int]) -> list[dict]:
    from sklearn.cluster import KMeans
    from sklearn.semi_supervised import LabelSpreading
    out = []
    for task in ("digit", "blob"):
        X, y = data(task)
        for seed in seeds:
            side = np.random.default_rng(1000 + seed).choice(len(X), size=int(round(0.05 * len(X))), replace=False)
            ys = np.full(len(X), -1)
            ys[side] = y[side]
            scored = np.setdiff1d(np.arange(len(X)), side)
            fits = {name: (lambda kw=kw: DMSClustering(random_state=seed, **kw).fit(X, ys).labels_)
                    for name, kw in ROWS.items()}
            fits["LabelSpreading (knn)"] = lambda: LabelSpreading(kernel="knn").fit(X, ys).transduction_
            fits["k-means, k given"] = lambda: KMeans(len(np.unique(y)), n_init=10,
                                                      random_state=seed).fit(X).labels_
            for name, fit in fits.items():
                t0 = time.process_time()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    labels = fit()
                cpu = time.process_time() - t0
                acc = score(y, labels, scored)["acc"]
                out.append({"task": task, "seed": seed, "method": name, "acc": acc, "cpu_s": cpu})
                print(f"{task} seed {seed} {name}: ACC {acc:.3f} ({cpu:.1f} s)", flush=True)
    return out


def report(rows: list[dict], argv: list[str]) -> str:
    methods = list(dict.fromkeys(r["method"] for r in rows))
    lines = ["# Two views of the same points: by digit and by blob", "",
             f"- command: `python benchmarks/two_views.py {' '.join(argv)}`",
             f"- commit: {git_commit()}", f"- machine: {machine()}, one thread", "",
             "Mean ACC over the seeds (each seed in brackets), and mean CPU seconds of one fit.", "",
             "| method | by digit | by blob | CPU s |", "| --- | --- | --- | --- |"]
    for m in methods:
        cells = []
        for task in ("digit", "blob"):
            a = [r["acc"] for r in rows if r["method"] == m and r["task"] == task]
            cells.append(f"{np.mean(a):.3f} ({', '.join(f'{v:.3f}' for v in a)})")
        cpu = np.mean([r["cpu_s"] for r in rows if r["method"] == m])
        lines.append(f"| {m} | {cells[0]} | {cells[1]} | {cpu:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    text = report(run([int(s) for s in args.seeds.split(",")]), [a for a in argv if a != args.out and a != "--out"])
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
