"""(b) End-to-end DMS inference time and peak memory against the number of points n.

A DMS model trained once (``--model``, see ``perf_common``) clusters n points from scratch:
embedding, 500 random seeds shifted to convergence, confidence matrix, merging and
assignment (what ``DMSClustering.fit`` does after training), and ``predict`` on the same
points. Points: the first n MNIST images; beyond 70,000, MNIST images again with
Gaussian pixel noise (std 0.05, clipped to [0, 1]). Each n runs in a fresh process.
Extra peak memory: on CPU the highest resident set size during inference above the size
at its start (sampled every 2 ms), on GPU ``torch.cuda.max_memory_allocated`` above the
memory held by the points and the model. Kernel pairs count every (center, point) pair
evaluated, so time per pair separates the cost of a pair from the number of iterations
the seeds happen to need at each n.

    PYTHONPATH=src python3 benchmarks/perf_dms_scaling.py --device cpu --sizes 1000 3000 10000 30000 70000 100000
    PYTHONPATH=src python3 benchmarks/perf_dms_scaling.py --device cuda --sizes 1000 10000 100000 1000000
    PYTHONPATH=src python3 benchmarks/perf_dms_scaling.py --device cuda --model mnist70k-paper --sizes 70000 \
        --precision bf16 --compare-reference --out perf-dms-mnist70k-cuda-bf16.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perf_common import MNIST10K, MNIST70K_PAPER, PeakRSS, header, sync, table, trained_model, write  # noqa: E402


def points(n: int) -> np.ndarray:
    from dmshift.datasets import load
    X = load("mnist").X
    if n <= X.shape[0]:
        return X[:n]
    rng = np.random.default_rng(0)
    extra = X[rng.integers(0, X.shape[0], size=n - X.shape[0])]
    extra = np.clip(extra + rng.normal(0, 0.05, size=extra.shape).astype(np.float32), 0, 1)
    return np.concatenate([X, extra])


MODELS = {"mnist10k-small": MNIST10K, "mnist70k-paper": MNIST70K_PAPER}


def one(n: int, device: str, threads: int, budget: int, seeding: str, model_name: str, precision: str,
        compare: bool) -> dict:
    """Run one size in this process and return its record."""
    torch.set_num_threads(threads)
    model = trained_model(MODELS[model_name], device=device)
    model.set_params(memory_budget=budget, seeding=seeding)
    model.kernel_.precision = precision  # the fused GPU path's precision (CUDA + Triton only)
    X = points(n)
    dev = torch.device(device)
    Xs = model._transform(X)
    sync(dev)
    ref = None
    if compare:  # the unfused fp32 path's labels, same seeds
        model.kernel_.use_fused = False
        model._cluster(Xs, np.random.default_rng(0))
        ref = model.labels_.copy()
        model.kernel_.use_fused = None
    kernel, counter = model.kernel_, [0]
    cls_pairwise = type(kernel).pairwise

    def counting(px, qc, **kw):
        counter[0] += px.shape[0] * qc.shape[0]
        return cls_pairwise(kernel, px, qc, **kw)

    kernel.pairwise = counting  # count the (center, point) pairs evaluated
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    rss = PeakRSS()
    with rss:
        t, c = time.perf_counter(), time.process_time()
        model._cluster(Xs, np.random.default_rng(0))
        sync(dev)
        t_cluster, c_cluster = time.perf_counter() - t, time.process_time() - c
    peak = torch.cuda.max_memory_allocated() - base if dev.type == "cuda" else rss.peak
    pairs = counter[0]
    del kernel.pairwise
    t, c = time.perf_counter(), time.process_time()
    model.predict(X)
    sync(dev)
    t_predict, c_predict = time.perf_counter() - t, time.process_time() - c
    agree = {} if ref is None else {"labels = fp32 reference": float((ref == model.labels_).mean())}
    return {"n": n, "precision": precision, **agree, "seeding": seeding, "seeds used": model.n_seeds_used_, "max iter": model.n_iter_,
            "clusters": model.n_clusters_, "inference (s)": t_cluster, "inference CPU (s)": c_cluster,
            "CPU µs / point": 1e6 * c_cluster / n, "kernel pairs (M)": pairs / 1e6,
            "ns / pair": 1e9 * (c_cluster if dev.type == "cpu" else t_cluster) / max(1, pairs), "predict (s)": t_predict, "predict CPU (s)": c_predict, "extra peak memory (MiB)": peak / 2**20,
            "points+embeddings (MiB)": (X.nbytes * 2 + n * 2 * sum(model.hidden_[:1]) * 4) / 2**20}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 10000, 30000, 100000])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--budget", type=int, default=256 * 2**20)
    p.add_argument("--seeding", default="random", choices=("random", "adaptive"))
    p.add_argument("--model", default="mnist10k-small", choices=sorted(MODELS))
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "tf32", "bf16"),
                   help="fused GPU path precision (ignored on CPU)")
    p.add_argument("--compare-reference", action="store_true",
                   help="also cluster with the unfused fp32 path and report label agreement")
    p.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if args.one is not None:
        print("RESULT " + json.dumps(one(args.one, args.device, args.threads, args.budget, args.seeding, args.model,
                                         args.precision, args.compare_reference)))
        return
    spec = MODELS[args.model]
    trained_model(spec, device=args.device)  # train (and cache) once, outside the timed runs
    rows = []
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--one", str(n), "--device", args.device, "--threads", str(args.threads),
               "--budget", str(args.budget), "--seeding", args.seeding, "--model", args.model,
               "--precision", args.precision] + (["--compare-reference"] if args.compare_reference else [])
        proc = subprocess.run(cmd, capture_output=True, text=True)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not line:
            print(proc.stderr[-2000:], file=sys.stderr)
            rows.append({"n": n, "inference (s)": float("nan")})
            continue
        rows.append(json.loads(line[0][len("RESULT "):]))
        print(rows[-1], flush=True)
    ok = [r for r in rows if r.get("inference (s)") == r.get("inference (s)")]
    fit = ""
    if len(ok) >= 2:
        ns = np.log([r["n"] for r in ok])
        key = "inference CPU (s)" if torch.device(args.device).type == "cpu" else "inference (s)"
        ts = np.log([r[key] for r in ok])
        slope = float(np.polyfit(ns, ts, 1)[0])
        fit = f"\nLog-log slope of {key} against n: **{slope:.2f}** (1 = linear).\n"
    notes = (f"Model: DMSClustering trained on {spec.dataset}-{spec.n or 70000} with {spec.label_fraction:.0%} of labels, "
             f"{spec.params} (d = 784). Inference with {args.seeding} seeding (500 seeds cap), "
             f"memory_budget = {args.budget / 2**20:.0f} MiB, {args.threads} threads. The confidence matrix H "
             "(centers x n, float32) is materialised by the estimator's merging step, so extra memory grows "
             "by 4 bytes per center per point on top of the budget.")
    out = args.out or f"perf-dms-scaling-{torch.device(args.device).type}.md"
    write(out, header("DMS inference time and memory against n", notes) + "\n" + table(rows) + fit)


if __name__ == "__main__":
    main()
