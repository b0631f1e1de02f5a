"""DMS quality across data sets: the ablation of each change from the paper's recipe.

Every variant is ``DMSClustering`` with the library defaults plus the listed overrides.
Protocol (issue "DMS quality"): side information as partial labels on a random 5% of the
points, scores on the other 95%, noise counted as wrong, no k given; ``NAME-novel``
(``digits-novel``, ``usps-novel``, ``mnist10k-novel``, ...) keeps labels for half the
classes, drawn at random, and scores ACC on the points of the other half. Besides ACC/AMI the table shows the clusters found, the noise share and the
ACC that the same clustering gets when every point joins its most confident cluster.

    python benchmarks/dms_quality.py --datasets digits coil20 --seeds 0 1 2 \\
        --variant default= --variant paper='init:"default";similarity:"bistochastic";threshold:0.5;noise_threshold:0.5'

Results are appended to a JSON-lines file (``--log``) as each fit ends, so an
interrupted run keeps its finished cells; ``--table`` rebuilds the markdown from it.
"""

from __future__ import annotations

import argparse
import ast
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from dmshift import DMSClustering
from dmshift.constants import NOISE
from dmshift.datasets import load
from dmshift.metrics import accuracy, evaluate


def parse_variant(text: str) -> tuple[str, dict]:
    """``name=key:value;key:value`` (values are Python literals) -> (name, overrides)."""
    name, _, spec = text.partition("=")
    params = {}
    for item in filter(None, (s.strip() for s in spec.split(";"))):
        key, _, value = item.partition(":")
        params[key.strip()] = ast.literal_eval(value.strip())
    return name, params


def load_task(name: str):
    """(X, y, seen_classes or None) for a benchmark data set name."""
    novel = name.endswith("-novel")
    base = name[:-len("-novel")] if novel else name
    d = load("mnist", n=10000) if base == "mnist10k" else load(base)
    return d.X, np.asarray(d.y), novel


def side_information(y: np.ndarray, seed: int, fraction: float, novel: bool):
    rng = np.random.default_rng(seed)
    known = rng.random(len(y)) < fraction
    seen = None
    if novel:
        classes = np.unique(y)
        seen = rng.choice(classes, size=len(classes) // 2, replace=False)
        known &= np.isin(y, seen)
    return known, seen


def run_cell(X, y, novel, variant, params, seed, fraction):
    known, seen = side_information(y, seed, fraction, novel)
    t0 = time.perf_counter()
    m = DMSClustering(random_state=seed, **params).fit(X, np.where(known, y, -1))
    seconds = time.perf_counter() - t0
    score = ~known
    if novel:  # unseen classes only: Hungarian on those points
        score &= ~np.isin(y, seen)
    e = evaluate(y[score], m.labels_[score])
    # the same clusters with every point given to its most confident center
    assigned = np.asarray(m.labels_).copy()
    if (assigned == NOISE).any():
        Xs = m._transform(X[assigned == NOISE])
        from dmshift.merge import assign
        px = m.kernel_.embed_points(Xs.to(m.center_embeddings_.device))
        a = assign(m.kernel_, px, m.center_embeddings_, m.center_cluster_, 0.0)
        assigned[assigned == NOISE] = a.labels
    return {"acc": e["acc"], "ami": e["ami"], "nmi": e["nmi"], "clusters": e["n_clusters"], "noise": e["noise"],
            "purity": e["purity"],
            "acc_assigned": accuracy(y[score], assigned[score]), "seconds": seconds,
            "steps": m.training_["steps"], "best_step": m.training_["best_step"]}


def table(records: list[dict]) -> str:
    cells: dict = {}
    for r in records:
        cells.setdefault((r["dataset"], r["variant"]), []).append(r)
    lines = ["| data | variant | ACC | AMI | clusters | noise | ACC, noise assigned | fit s | seeds |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for (ds, var), rs in cells.items():
        a = {k: np.array([r[k] for r in rs], dtype=float) for k in ("acc", "ami", "clusters", "noise", "acc_assigned", "seconds")}
        lines.append(f"| {ds} | {var} | {a['acc'].mean():.3f} ± {a['acc'].std():.3f} | {a['ami'].mean():.3f} | "
                     f"{a['clusters'].mean():.1f} | {a['noise'].mean():.3f} | {a['acc_assigned'].mean():.3f} | "
                     f"{a['seconds'].mean():.0f} | {len(rs)} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["digits"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--fraction", type=float, default=0.05)
    ap.add_argument("--variant", action="append", default=[], help="name=key:value;key:value (repeatable)")
    ap.add_argument("--log", default="benchmarks/results/dms-quality.jsonl")
    ap.add_argument("--table", action="store_true", help="only rebuild the table from --log")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    log = Path(args.log)
    if not args.table:
        variants = [parse_variant(v) for v in (args.variant or ["default="])]
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        for ds in args.datasets:
            X, y, novel = load_task(ds)
            for name, params in variants:
                for seed in args.seeds:
                    r = run_cell(X, y, novel, name, params, seed, args.fraction)
                    r.update(dataset=ds, variant=name, params=params, seed=seed, commit=commit,
                             machine=f"{platform.machine()}, {args.threads} thread(s), torch {torch.__version__}")
                    with log.open("a") as f:
                        f.write(json.dumps(r) + "\n")
                    print(f"{ds} {name} seed {seed}: acc {r['acc']:.3f} ami {r['ami']:.3f} k {r['clusters']} "
                          f"noise {r['noise']:.3f} pur {r['purity']:.3f} assigned {r['acc_assigned']:.3f} ({r['seconds']:.0f} s, "
                          f"best step {r['best_step']})", flush=True)
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    print(table(records))


if __name__ == "__main__":
    sys.exit(main())
