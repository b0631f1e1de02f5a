"""dmshift.MeanShift against sklearn.cluster.MeanShift: same data, same bandwidth.

Blobs (``make_blobs``, 8 centers, std 1, box (-10, 10)) of n points in d dimensions. Both
estimators get the bandwidth ``estimate_bandwidth(X, quantile=0.1, n_samples=2000,
random_state=0)`` (the default quantile 0.3 merges the blobs; the full estimate is
quadratic in n for both); seeds are every point (case ``NxD``) or the occupied bins
(``NxDb``, ``bin_seeding=True``). scikit-learn uses every core it is given (``n_jobs``), dmshift the
same number of torch threads, or the GPU. ARI compares the two labelings.

    PYTHONPATH=src python3 benchmarks/perf_meanshift.py --cases 100000x2b 100000x8b --out perf-meanshift-cpu-100k.md
    PYTHONPATH=src python3 benchmarks/perf_meanshift.py --cases 10000x2 10000x32 --out perf-meanshift-cpu-10k.md
    PYTHONPATH=src python3 benchmarks/perf_meanshift.py --devices cuda --threads 16 --cases 100000x2 100000x8 100000x32
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perf_common import header, sync, table, write  # noqa: E402

from dmshift.estimators.meanshift import MeanShift  # noqa: E402


def parse(case: str):
    """``NxD`` or ``NxDb`` (b: bin seeding)."""
    binned = case.endswith("b")
    n, d = case.rstrip("b").split("x")
    return int(n), int(d), binned


def main(argv=None):
    from sklearn.cluster import MeanShift as SkMeanShift
    from sklearn.cluster import estimate_bandwidth
    from sklearn.datasets import make_blobs
    from sklearn.metrics import adjusted_rand_score
    from threadpoolctl import threadpool_limits

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", default=["100000x2b", "100000x8b", "100000x32b", "10000x2", "10000x8"])
    p.add_argument("--devices", nargs="+", default=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quantile", type=float, default=0.1)
    p.add_argument("--no-sklearn", action="store_true", help="skip scikit-learn (GPU-only runs)")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for case in args.cases:
        n, d, binned = parse(case)
        X, _ = make_blobs(n_samples=n, n_features=d, centers=8, cluster_std=1.0, random_state=0)
        bw = float(estimate_bandwidth(X, quantile=args.quantile, n_samples=2000, random_state=0))
        base = {"n": n, "d": d, "seeding": "bins" if binned else "all points", "bandwidth": bw}
        sk = None
        if not args.no_sklearn:
            with threadpool_limits(args.threads):
                t, c = time.perf_counter(), time.process_time()
                sk = SkMeanShift(bandwidth=bw, bin_seeding=binned, n_jobs=args.threads).fit(X)
                t_sk, c_sk = time.perf_counter() - t, time.process_time() - c
            rows.append({**base, "implementation": f"sklearn (n_jobs={args.threads})", "time (s)": t_sk,
                         "CPU time (s)": c_sk,
                         "clusters": len(sk.cluster_centers_), "n_iter": sk.n_iter_})
            print(rows[-1], flush=True)
        for dev in args.devices:
            ms = MeanShift(bandwidth=bw, bin_seeding=binned, device=dev)
            if dev == "cuda":  # CUDA start-up and kernel caching outside the timing
                MeanShift(bandwidth=bw, bin_seeding=binned, device=dev).fit(X[:2000])
            with threadpool_limits(args.threads):
                sync(dev)
                t, c = time.perf_counter(), time.process_time()
                ms.fit(X)
                sync(dev)
                dt, dc = time.perf_counter() - t, time.process_time() - c
            row = {**base, "implementation": f"dmshift {dev}", "time (s)": dt, "CPU time (s)": dc,
                   "clusters": len(ms.cluster_centers_), "n_iter": ms.n_iter_}
            if sk is not None:
                row["speed-up"] = t_sk / dt
                if dev == "cpu":
                    row["speed-up (CPU time)"] = c_sk / dc
                row["ARI vs sklearn"] = adjusted_rand_score(sk.labels_, ms.labels_)
                if ms.cluster_centers_.shape == sk.cluster_centers_.shape:
                    row["max |Δcenter|"] = float(np.abs(ms.cluster_centers_ - sk.cluster_centers_).max())
            rows.append(row)
            print(rows[-1], flush=True)
    cols = ["n", "d", "seeding", "implementation", "time (s)", "CPU time (s)", "speed-up", "speed-up (CPU time)", "ARI vs sklearn", "clusters", "n_iter",
            "max |Δcenter|", "bandwidth"]
    notes = (f"{args.threads} threads / jobs on CPU. Bandwidth quantile {args.quantile}. Float64 blobs, flat kernel, cluster_all=True, max_iter=300. "
             "Speed-up = sklearn time / dmshift time on the same data; on a shared CPU the CPU-time "
             "(time.process_time) ratio is the steadier one. Processes run under nice -n 10 next to other work.")
    dev = "-".join(args.devices)
    write(args.out or f"perf-meanshift-{dev}.md", header("MeanShift: dmshift vs scikit-learn", notes) + "\n"
          + table(rows, cols))


if __name__ == "__main__":
    main()
