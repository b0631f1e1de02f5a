"""Adaptive seeding against the paper's 500 random seeds: accuracy, kernel evaluations, time.

Each trained model (``perf_common``) re-clusters its training points with
``seeding="random"`` (500 seeds) and ``seeding="adaptive"`` (seeds drawn from points no
center covers yet, batches 8, 16, 32, ..., cap 500), over several random states.
Kernel evaluations are (center, point) pairs passed to the kernel during the whole
inference (seeds' shifts, the coverage checks, the confidence matrix and assignment).

    PYTHONPATH=src python3 benchmarks/perf_seeding.py --threads 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perf_common import DIGITS, MNIST10K, USPS, header, load_data, table, trained_model, write  # noqa: E402

from dmshift.metrics import accuracy, nmi  # noqa: E402

SPECS = {"digits": DIGITS, "mnist10k": MNIST10K, "usps": USPS}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", default=["digits", "usps"], choices=sorted(SPECS))
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="perf-seeding.md")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows, detail = [], []
    for name in args.data:
        spec = SPECS[name]
        model = trained_model(spec)
        X, y = load_data(spec)
        Xs = model._transform(X)
        kernel = model.kernel_
        counter = [0]
        cls_pairwise = type(kernel).pairwise

        def counting(px, qc, **kw):
            counter[0] += px.shape[0] * qc.shape[0]
            return cls_pairwise(kernel, px, qc, **kw)

        kernel.pairwise = counting
        for seeding in ("random", "adaptive"):
            rec = []
            for run in range(args.runs):
                model.set_params(seeding=seeding, n_seeds=500)
                counter[0] = 0
                t = time.perf_counter()
                model._cluster(Xs, np.random.default_rng(run))
                dt = time.perf_counter() - t
                lab = model.labels_
                rec.append({"acc": accuracy(y, lab), "nmi": nmi(y, lab), "k": model.n_clusters_,
                            "noise": float((lab < 0).mean()), "seeds": model.n_seeds_used_,
                            "pairs": counter[0], "time": dt})
                detail.append({"data": name, "seeding": seeding, "run": run, **rec[-1]})
                print(detail[-1], flush=True)
            agg = {k: float(np.mean([r[k] for r in rec])) for k in rec[0]}
            sd = {k: float(np.std([r[k] for r in rec])) for k in ("acc", "nmi")}
            rows.append({"data": f"{name} (n={len(y)})", "seeding": seeding, "ACC": agg["acc"], "ACC sd": sd["acc"],
                         "NMI": agg["nmi"], "clusters": agg["k"], "noise": agg["noise"], "seeds used": agg["seeds"],
                         "kernel pairs (M)": agg["pairs"] / 1e6, "time (s)": agg["time"]})
        del kernel.pairwise
    for name in args.data:
        r, a = [row for row in rows if row["data"].startswith(name)]
        rows.append({"data": f"{name}: adaptive / random", "seeding": "", "ACC": a["ACC"] - r["ACC"],
                     "kernel pairs (M)": a["kernel pairs (M)"] / r["kernel pairs (M)"],
                     "time (s)": a["time (s)"] / r["time (s)"]})
    models = "; ".join(f"{n}: {SPECS[n].name}" for n in args.data)
    notes = (f"Models (trained with {SPECS[args.data[0]].label_fraction:.0%} labels): {models}. Means over "
             f"{args.runs} random states; the ratio rows give ACC difference, pairs ratio and time ratio.")
    write(args.out, header("Adaptive vs random seeding", notes) + "\n" + table(rows) + "\n## Runs\n\n" + table(detail))


if __name__ == "__main__":
    main()
