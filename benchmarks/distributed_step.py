"""Time of one sharded mean-shift step over 1, 2, 4 CPU processes (gloo), and its communication share.

A small DMS kernel is trained on blobs; the points (``--n`` of them, ``--d`` features)
are written to a ``.npy`` file that each process memory-maps and reads its rows of
(:func:`dmshift.distributed.load_shard`). Each process then runs ``--steps`` shift steps
of ``--centers`` centers over its shard, timed in three parts:

* compute: :func:`dmshift.meanshift.accumulate` on the local shard;
* wait: a barrier after it (load imbalance, and oversubscription when processes
  outnumber cores);
* communication: the all-reduce of the per-center sums and fingerprints.

It also times a whole :func:`~dmshift.distributed.sharded_cluster` run (seeds, shift to
convergence, merging, labels) and the share of it spent in collective calls (waiting
included). Results go to a Markdown table.

Usage::

    PYTHONPATH=src nice -n 10 python3 benchmarks/distributed_step.py --out benchmarks/results/distributed.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _worker(rank, world, port, folder, n_centers, n_steps):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=300))
    from dmshift.distributed import load_shard
    from dmshift.distributed._comm import Comm
    from dmshift.distributed.inference import _seed_embeddings, _stats_reducer, cluster_shard
    from dmshift.estimators._dms_params import cluster_params
    from dmshift.estimators.dms import DMSClustering
    from dmshift.meanshift import accumulate, point_keys

    folder = Path(folder)
    model = DMSClustering.load(folder / "model", device="cpu")
    t0 = time.perf_counter()
    shard = load_shard(folder / "X.npy")
    t_load = time.perf_counter() - t0
    comm = Comm()
    layout = comm.layout(shard.X.shape, "benchmark")
    Xs = model._transform(shard.X)
    kernel, budget = model.kernel_, int(model.memory_budget)
    with torch.no_grad():
        px, qx = kernel.embed_points(Xs), kernel.embed_centers(Xs)
        keys = point_keys(layout.n_local, "cpu", offset=layout.offset)
        seeds = np.sort(np.random.default_rng(0).choice(layout.n_total, size=n_centers, replace=False))
        qc = _seed_embeddings(qx, seeds, layout, comm)
        reduce = _stats_reducer(comm)
        rows = []
        for step in range(n_steps + 1):  # the first step warms up
            dist.barrier()
            a, cpu = time.perf_counter(), time.thread_time()
            stats = accumulate(kernel, px, qx, qc, keys, kernel.inlier_threshold, budget)
            b, cpu = time.perf_counter(), time.thread_time() - cpu
            dist.barrier()
            c = time.perf_counter()
            stats = reduce(stats)
            e = time.perf_counter()
            qc = (stats.num + 1e-6 * qc) / (stats.den[:, None] + 1e-6)
            if step:
                rows.append((b - a, c - b, e - c, cpu))
        # a whole clustering, as sharded_cluster runs it
        model.set_params(n_seeds=n_centers)
        cc = Comm()
        dist.barrier()
        a = time.perf_counter()
        found = cluster_shard(kernel, Xs, np.random.default_rng(0) if rank == 0 else None, cluster_params(model),
                              to_input=model._to_input_space, layout=layout, comm=cc)
        dist.barrier()
        t_cluster = time.perf_counter() - a
    out = {"rank": rank, "n_local": layout.n_local, "steps": rows, "load": t_load, "cluster": t_cluster,
           "cluster_comm": cc.seconds, "cluster_calls": cc.calls, "n_clusters": found.n_clusters,
           "n_iter": found.n_iter, "h": int(px.shape[1])}
    table = [None] * world
    dist.all_gather_object(table, out)
    if rank == 0:
        (folder / f"result-{world}.json").write_text(json.dumps(table))
    dist.barrier()
    dist.destroy_process_group()


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=32)
    ap.add_argument("--centers", type=int, default=100)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--procs", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    from sklearn.datasets import make_blobs

    from dmshift.estimators.dms import DMSClustering

    X, y = make_blobs(n_samples=args.n, centers=20, n_features=args.d, cluster_std=2.0, random_state=0)
    X = X.astype(np.float32)
    y_partial = np.where(np.arange(args.n) < 2000, y, -1)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        model = DMSClustering(max_steps=100, batch_size=32, n_seeds=args.centers, device="cpu", random_state=0)
        model.fit(X[:5000], y_partial[:5000])
        print(f"trained the kernel in {time.perf_counter() - t0:.1f}s ({model.n_clusters_} clusters)", flush=True)
        model.save(tmp / "model")
        np.save(tmp / "X.npy", X)
        for w in args.procs:
            t0 = time.perf_counter()
            mp.spawn(_worker, args=(w, _free_port(), str(tmp), args.centers, args.steps), nprocs=w, join=True)
            results[w] = json.loads((tmp / f"result-{w}.json").read_text())
            print(f"{w} process(es): {time.perf_counter() - t0:.1f}s", flush=True)

    load = os.getloadavg()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    h = results[args.procs[0]][0]["h"]
    lines = [
        "| processes | points / process | step (ms) | compute (ms) | wait (ms) | all-reduce (ms) | "
        "communication share | compute CPU time (ms) | CPU ns / (point x center) | speed-up | "
        "whole clustering (s) | its collective share |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    base = None
    for w, table in results.items():
        steps = np.array([r["steps"] for r in table])  # (world, steps, 4): compute, wait, comm, compute CPU
        per_step = steps[:, :, :3].sum(2).max(0)  # slowest rank per step
        step = float(np.median(per_step))
        comp = float(np.median(steps[:, :, 0].max(0)))
        wait = float(np.median(steps[:, :, 1].max(0)))
        comm = float(np.median(steps[:, :, 2].max(0)))
        n_local = table[0]["n_local"]
        cpu = float(np.median(steps[:, :, 3]))
        ns = cpu / (n_local * args.centers) * 1e9
        base = base or step
        cl = max(r["cluster"] for r in table)
        cl_comm = float(np.median([r["cluster_comm"] / r["cluster"] for r in table]))
        lines.append(f"| {w} | {n_local:,} | {step * 1e3:.0f} | {comp * 1e3:.0f} | {wait * 1e3:.1f} | "
                     f"{comm * 1e3:.2f} | {comm / step:.2%} | {cpu * 1e3:.0f} | {ns:.1f} | {base / step:.2f} | {cl:.1f} | {cl_comm:.1%} |")
    n_iter = {w: t[0]["n_iter"] for w, t in results.items()}
    n_clusters = {w: t[0]["n_clusters"] for w, t in results.items()}
    text = "\n".join([
        "# Sharded shift step on CPU processes (gloo)",
        "",
        f"Command: `PYTHONPATH=src nice -n 10 python3 benchmarks/distributed_step.py {' '.join(sys.argv[1:])}`  ",
        f"Commit: `{commit}`; machine: {_machine()}; load average after the run: "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (the machine is shared with other jobs).",
        "",
        f"{args.n:,} points, d = {args.d}, {args.centers} centers, kernel hidden widths {model.hidden_} "
        f"(center embedding h = {h}); one thread per process; median of {args.steps} steps after one warm-up. "
        "Step = compute + wait + all-reduce of the slowest rank; wait is the barrier after the local sums "
        "(load imbalance and, with more processes than cores, time-sharing). Compute CPU time is the "
        "thread's own CPU time for the local sums, which time-sharing does not inflate. The all-reduce carries "
        f"{args.centers} x ({h} + 1) float32 and {args.centers} x 2 int64 per step "
        f"({args.centers * ((h + 1) * 4 + 16) / 1024:.1f} KiB). "
        f"Whole clustering: seeds, shift to convergence ({n_iter} iterations at most), merging "
        f"({n_clusters} clusters), labels; collective share includes waiting for slower ranks.",
        "",
        *lines,
        "",
    ])
    print(text)
    if args.out is not None:  # replace the measured section, keep the rest of the file
        args.out.parent.mkdir(parents=True, exist_ok=True)
        old = args.out.read_text() if args.out.exists() else ""
        begin, end = "<!-- measured -->", "<!-- /measured -->"
        block = f"{begin}\n{text}{end}\n"
        if begin in old and end in old:
            block = old[:old.index(begin)] + block + old[old.index(end) + len(end) + 1:]
        args.out.write_text(block)


if __name__ == "__main__":
    main()
