"""Did a change leave DMS's labels as they were? Fingerprints of default fits on the bench's splits.

Fits ``DMSClustering(random_state=seed)`` at its defaults on the bench's digits and COIL-20
cases with side information on a random 5% of the points (``bench.protocol.random_split``,
seeds 0-2, one CPU thread so that reductions run in one order), and records the SHA-256 of
each ``labels_`` array with its ACC on the scored points.

    python benchmarks/labels_unchanged.py --write benchmarks/results/labels-unchanged.md
    python benchmarks/labels_unchanged.py --check benchmarks/results/labels-unchanged.md

``--check`` re-fits and exits 1 when any fingerprint differs from the file's.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import time

import numpy as np
import torch

from dmshift import DMSClustering
from dmshift.bench.data import load_case
from dmshift.bench.protocol import random_split, score

CASES = ("digits", "coil20")
SEEDS = (0, 1, 2)


def fingerprints(cases=CASES, seeds=SEEDS, params=None):
    torch.set_num_threads(1)
    rows = []
    for name in cases:
        case = load_case(name)
        for seed in seeds:
            split = random_split(case.y, 0.05, seed)
            t0 = time.perf_counter()
            model = DMSClustering(random_state=seed, **(params or {})).fit(case.X, split.y_side)
            seconds = time.perf_counter() - t0
            labels = np.ascontiguousarray(model.labels_, dtype=np.int64)
            digest = hashlib.sha256(labels.tobytes()).hexdigest()[:16]
            acc = score(case.y, labels, split.scored)["acc"]
            rows.append((name, seed, digest, acc, int(model.n_clusters_), seconds))
            print(f"{name} seed {seed}: {digest} ACC {acc:.4f} k={model.n_clusters_} {seconds:.0f} s", flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", metavar="FILE")
    g.add_argument("--check", metavar="FILE")
    args = ap.parse_args(argv)
    if args.check:
        text = open(args.check).read()
        want = {(m[0], int(m[1])): m[2] for m in re.findall(r"^\| (\w+) \| (\d+) \| `([0-9a-f]+)`", text, re.M)}
        rows = fingerprints()
        bad = [(n, s) for n, s, d, *_ in rows if want.get((n, s)) != d]
        print("identical" if not bad else f"changed: {bad}")
        return 1 if bad else 0
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    rows = fingerprints()
    with open(args.write, "w") as f:
        f.write("# DMS labels at the defaults: fingerprints\n\n")
        f.write(f"Written at {commit} by `python benchmarks/labels_unchanged.py --write {args.write}`; "
                f"`--check` re-fits and compares. One CPU thread.\n\n")
        f.write("| case | seed | sha256(labels_)[:16] | ACC (scored) | clusters | fit s |\n|---|---|---|---|---|---|\n")
        for n, s, d, acc, k, sec in rows:
            f.write(f"| {n} | {s} | `{d}` | {acc:.4f} | {k} | {sec:.0f} |\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
