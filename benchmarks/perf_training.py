"""(d) DMS training throughput: instances per second on CPU and GPU.

Times ``--steps`` training steps (after ``--warmup``) of DMSClustering's loss and backward
pass through T differentiable mean-shift steps, via the estimator's own training loop
(``max_steps`` = warmup + steps, no validation; ``training_["seconds"]``), and reports instances/s and (center,
point) pairs/s (batch x instance size x (T + 1) forward pairs per step: one center per instance).

    PYTHONPATH=src python3 benchmarks/perf_training.py --device cpu --threads 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perf_common import header, partial_labels, table, write  # noqa: E402

from dmshift.estimators.dms import DMSClustering  # noqa: E402
from dmshift.datasets import load  # noqa: E402

CONFIGS = {
    "digits (d=64, paper widths 32/16)": ("digits", None, {"batch_size": 96, "instance_size": (200, 300)}),
    "MNIST (d=784, hidden 64/32)": ("mnist", 10000, {"hidden": (64, 32), "batch_size": 64,
                                                     "instance_size": (100, 150)}),
    "MNIST (d=784, paper widths 392/196)": ("mnist", 10000, {"width_cap": None, "batch_size": 96,
                                                             "instance_size": (200, 300)}),
}


def measure(name, device, steps, warmup):
    data, n, params = CONFIGS[name]
    ds = load(data, n=n) if n else load(data)
    y = partial_labels(ds.y, 0.2, 0)

    def train_seconds(steps_):
        est = DMSClustering(max_steps=steps_, random_state=0, device=device, max_iter=0, n_seeds=1, **params)
        est.fit(ds.X, y)  # training_["seconds"] times the training loop alone
        return est, est.training_["seconds"]

    est, total = train_seconds(warmup + steps)
    _, start_up = train_seconds(warmup)  # subtract start-up and warm-up cost
    per_step = (total - start_up) / steps
    lo, hi = params["instance_size"]
    L = (lo + hi) / 2
    B = params["batch_size"]
    return {"config": name, "device": device, "hidden": str(est.hidden_), "batch": B,
            "instance size": f"{lo}-{hi}", "s / step": per_step, "instances/s": B / per_step,
            "Mpairs/s (fwd)": B * L * (est.n_shift_steps + 1) / per_step / 1e6}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--configs", nargs="+", default=list(CONFIGS)[:2], choices=list(CONFIGS))
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.configs:
        rows.append(measure(name, args.device, args.steps, args.warmup))
        print(rows[-1], flush=True)
    notes = (f"{args.steps} timed steps after {args.warmup} warm-up steps (the difference of two runs), "
             f"{args.threads} threads, 20% labels, T = 4 shift steps, AdamW. An instance is one initial point "
             "with its positives, negatives and unlabelled points (paper §3.3).")
    out = args.out or f"perf-training-{torch.device(args.device).type}.md"
    write(out, header("DMS training throughput", notes) + "\n" + table(rows))


if __name__ == "__main__":
    main()
