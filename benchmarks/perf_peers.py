"""(c) DMS against the clusterers users would otherwise run, side by side on the same data.

For each data set, in one run: DMSClustering (a cached model trained with 20% of the
labels; training time as recorded when it was trained, inference re-timed here),
dmshift.MeanShift, scikit-learn's MeanShift, HDBSCAN, k-means and Ward. ACC (Hungarian,
noise counts as wrong) and NMI on every point. Unsupervised methods get no labels; k-means
and Ward are given the true number of classes. Both mean shifts use their defaults
(bandwidth estimated at quantile 0.3, every point a seed). A method that runs past
``--limit`` seconds is stopped (it runs in a child process) and reported as such. CPU time
(``time.process_time``, all threads of the process) is the figure to compare on a shared
machine; wall time is listed too.

    PYTHONPATH=src python3 benchmarks/perf_peers.py --data digits --out perf-peers-digits.md
    PYTHONPATH=src python3 benchmarks/perf_peers.py --data mnist10k --limit 300 --out perf-peers-mnist10k.md
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import queue
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perf_common import DIGITS, MNIST10K, USPS, header, load_data, table, trained_model, write  # noqa: E402

SPECS = {"digits": DIGITS, "mnist10k": MNIST10K, "usps": USPS}
METHODS = ["DMS (inference)", "DMS (inference, no noise)", "dmshift.MeanShift", "sklearn MeanShift", "HDBSCAN", "k-means", "Ward"]


def run_method(method: str, data: str, threads: int):
    torch.set_num_threads(threads)
    from sklearn.cluster import HDBSCAN, AgglomerativeClustering, KMeans
    from sklearn.cluster import MeanShift as SkMeanShift
    from threadpoolctl import threadpool_limits

    from dmshift.estimators.meanshift import MeanShift
    spec = SPECS[data]
    X, y = load_data(spec)
    k = int(np.unique(y).size)
    extra = {}
    with threadpool_limits(threads):
        t, c = time.perf_counter(), time.process_time()
        if method.startswith("DMS (inference"):
            model = trained_model(spec)
            if "no noise" in method:  # every point to its most confident cluster
                model.set_params(noise_threshold=0.0)
            Xs = model._transform(X)
            model._cluster(Xs, np.random.default_rng(0))
            labels = model.labels_
            extra["training (s)"] = float(model.training_.get("seconds", float("nan")))
        elif method == "dmshift.MeanShift":
            m = MeanShift(device="cpu").fit(X)
            labels, extra["bandwidth"] = m.labels_, m.bandwidth_
        elif method == "sklearn MeanShift":
            labels = SkMeanShift(n_jobs=threads).fit(X).labels_
        elif method == "HDBSCAN":
            labels = HDBSCAN(n_jobs=threads).fit(X).labels_
        elif method == "k-means":
            labels = KMeans(n_clusters=k, n_init=10, random_state=0).fit(X).labels_
        elif method == "Ward":
            labels = AgglomerativeClustering(n_clusters=k, linkage="ward").fit(X).labels_
        else:
            raise ValueError(method)
        dt = time.perf_counter() - t
        extra["CPU time (s)"] = time.process_time() - c
    return dt, np.asarray(labels), extra


def _child(q, method, data, threads):
    try:
        q.put(("ok",) + run_method(method, data, threads))
    except Exception as exc:  # reported in the table
        q.put(("error", repr(exc)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", default=["digits", "mnist10k"], choices=sorted(SPECS))
    p.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--limit", type=float, default=540.0, help="wall-clock seconds per method")
    p.add_argument("--out", default="perf-peers.md")
    args = p.parse_args(argv)
    from dmshift.metrics import accuracy, nmi
    rows = []
    ctx = mp.get_context("spawn")
    for data in args.data:
        trained_model(SPECS[data])  # train and cache outside the timed runs
        _, y = load_data(SPECS[data])
        for method in args.methods:
            q = ctx.Queue()
            proc = ctx.Process(target=_child, args=(q, method, data, args.threads))
            proc.start()
            row = {"data": f"{data} (n={y.size})", "method": method}
            try:  # read before joining: a child blocks on exit until its result is read
                res = q.get(timeout=args.limit)
            except queue.Empty:
                res = None
                proc.terminate()
            proc.join(None if res is None else 30)
            if proc.is_alive():
                proc.terminate()
                proc.join()
            if res is None:
                row.update({"wall (s)": f"> {args.limit:.0f} (stopped)"})
            elif res[0] == "error":
                row["wall (s)"] = res[1]
            else:
                _, dt, labels, extra = res
                row.update({"wall (s)": dt, "ACC": accuracy(y, labels), "NMI": nmi(y, labels),
                            "clusters": int(np.unique(labels[labels >= 0]).size),
                            "noise": float((labels < 0).mean()), **extra})
            rows.append(row)
            print(json.dumps(row, default=str), flush=True)
    cols = ["data", "method", "CPU time (s)", "wall (s)", "ACC", "NMI", "clusters", "noise", "training (s)", "bandwidth"]
    notes = ("DMS models: " + "; ".join(f"{d}: `{SPECS[d].name}`" for d in args.data) + f". {args.threads} threads "
             "for every method (torch, BLAS/OpenMP and n_jobs). DMS time is inference only (seeds, shifts, merging, "
             "assignment); its training time is listed separately. DMS used 20% of the labels as side "
             "information; the other methods are unsupervised (k-means and Ward know k).")
    write(args.out, header("DMS and peers: time and accuracy on the same data", notes) + "\n" + table(rows, cols))


if __name__ == "__main__":
    main()
