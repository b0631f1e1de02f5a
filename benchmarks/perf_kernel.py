"""(a) Kernel throughput: one full evaluation of H = K(points, centers) per path and dtype.

Paths, all on the subtract kernel with hidden (h1, h2) on d-dimensional points:

* ``naive``: the pair ``x - c`` materialised and pushed through every layer;
* ``unfused``: the factorised path (points projected once, per tile ``relu(px + qc)``
  then the remaining layers as matrix products), the reference;
* ``fused``: the Triton kernel of :mod:`dmshift.kernels.fused` (CUDA only).

FLOP per pair counts the multiply-adds after the factorisation, ``2 h1 h2 + 2 h2`` (the
issue's 5.4 TFLOP for 500 x 70,000 pairs at h = 392/196). Peak: the vendor's dense figure
for known GPUs (``--peak`` overrides), and on CPU a measured large fp32 GEMM. Label
agreement compares ``argmax`` over centers with the fp32 unfused path.

    PYTHONPATH=src python3 benchmarks/perf_kernel.py --device cpu --n 1000 --naive-n 200 --threads 2
    PYTHONPATH=src python3 benchmarks/perf_kernel.py --device cpu --data digits --hidden 32 16 --n 1797 --threads 2
    PYTHONPATH=src python3 benchmarks/perf_kernel.py --device cuda --n 70000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perf_common import header, table, timeit, write  # noqa: E402

from dmshift.kernels import SubtractKernel  # noqa: E402
from dmshift.kernels import fused  # noqa: E402

#: dense TFLOP/s (fp32, tf32, bf16) by GPU name fragment
GPU_PEAKS = {"H100 PCIe": (51.0, 378.0, 756.0), "H100": (67.0, 495.0, 989.0), "H200": (67.0, 495.0, 989.0),
             "A100": (19.5, 156.0, 312.0)}


def gemm_peak(device, dtype) -> float:
    """Measured TFLOP/s of a large square matrix product (the practical peak on CPU)."""
    s = 2048 if device.type == "cpu" else 8192
    a = torch.randn(s, s, device=device, dtype=dtype)
    b = torch.randn(s, s, device=device, dtype=dtype)
    t = timeit(lambda: a @ b, device=device, repeat=3)
    return 2 * s**3 / t / 1e12


def naive_eval(k, X, C, budget_pairs=2**16):
    out = torch.empty(C.shape[0], X.shape[0], device=X.device)
    tn = max(1, budget_pairs // C.shape[0])
    for j in range(0, X.shape[0], tn):
        out[:, j:j + tn] = torch.sigmoid(k.naive_logit(X[None, j:j + tn], C[:, None]))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--n", type=int, default=70000, help="points")
    p.add_argument("--m", type=int, default=500, help="centers")
    p.add_argument("--data", default="mnist", choices=("mnist", "digits"), help="points (d = 784 or 64)")
    p.add_argument("--hidden", type=int, nargs=2, default=(392, 196))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--naive-n", type=int, default=None, help="points for the naive path (default n)")
    p.add_argument("--peak", type=float, nargs=3, default=None, help="fp32 tf32 bf16 TFLOP/s")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    from dmshift.datasets import load
    if args.data == "mnist":
        X = torch.as_tensor(load("mnist", n=max(args.n, args.m)).X)
        data = "MNIST (first n images)"
    else:
        X = torch.as_tensor(load("digits").X)
        X = X[torch.arange(max(args.n, args.m)) % X.shape[0]]
        data = "digits (repeated to n)"
    args.d = X.shape[1]
    X = (X - X.mean(0)) / X.std(0).pow(2).mean().sqrt()
    X = X.to(device)
    torch.manual_seed(0)
    k = SubtractKernel(args.d, tuple(args.hidden)).to(device).eval()
    k.init_distance_prior(X[:5000])
    Xp, C = X[:args.n], X[torch.randperm(X.shape[0], device=device)[:args.m]]
    h1, h2 = args.hidden
    flop_pair = 2 * h1 * h2 + 2 * h2
    pairs = args.m * args.n

    if device.type == "cuda":
        name = torch.cuda.get_device_name()
        peaks = args.peak or next((v for key, v in GPU_PEAKS.items() if key in name), (float("nan"),) * 3)
        peak_note = f"vendor dense peak for {name}" if args.peak is None else "given on the command line"
    else:
        peaks = args.peak or (gemm_peak(device, torch.float32),) * 2 + (float("nan"),)
        peak_note = "measured fp32 GEMM 2048^3 on this CPU (tf32 = fp32 on CPU)"
    peak = dict(zip(("fp32", "tf32", "bf16"), peaks))

    rows = []
    with torch.no_grad():
        px, qc = k.embed_points(Xp), k.embed_centers(C)
        k.use_fused = False
        ref = k.pairwise(px, qc)
        ref_lab = ref.argmax(0)

        def add(path, prec, fn, n_pts=args.n, agree=True):
            t = timeit(fn, device=device, repeat=args.repeat)
            pr = args.m * n_pts
            row = {"path": path, "precision": prec, "pairs": pr, "time (ms)": 1e3 * t,
                   "Gpairs/s": pr / t / 1e9, "TFLOP/s": pr * flop_pair / t / 1e12,
                   "% of peak": 100 * pr * flop_pair / t / 1e12 / peak.get(prec, float("nan")),
                   "full H (ms)": 1e3 * t * pairs / pr}
            if agree:
                H = fn()
                row["max |ΔK|"] = float((H.float() - ref).abs().max())
                row["argmax agreement"] = float((H.float().argmax(0) == ref_lab).float().mean())
            rows.append(row)
            print(row, flush=True)

        nn = args.naive_n or args.n
        add("naive", "fp32", lambda: naive_eval(k, Xp[:nn], C), n_pts=nn, agree=nn == args.n)
        add("unfused", "fp32", lambda: k.pairwise(px, qc))
        if device.type == "cuda":
            before = torch.get_float32_matmul_precision()
            torch.set_float32_matmul_precision("high")
            add("unfused", "tf32", lambda: k.pairwise(px, qc))
            torch.set_float32_matmul_precision(before)
        kb = SubtractKernel(args.d, tuple(args.hidden)).to(device).eval()
        kb.load_state_dict(k.state_dict())
        kb = kb.to(torch.bfloat16)
        kb.use_fused = False
        pxb, qcb = px.to(torch.bfloat16), qc.to(torch.bfloat16)
        try:
            add("unfused", "bf16", lambda: kb.pairwise(pxb, qcb))
        except RuntimeError as exc:  # pragma: no cover - bf16 missing on some CPUs
            print("bf16 unfused failed:", exc)
        if device.type == "cuda" and fused.available():
            k.use_fused = None
            for prec in ("fp32", "tf32", "bf16"):
                add("fused", prec, lambda prec=prec: fused.fused_pairwise(k, px, qc, precision=prec))

    notes = (f"Subtract kernel, d = {args.d}, hidden = {tuple(args.hidden)}, {args.m} centers x {args.n} points "
             f"({data}, standardised; kernel with the distance-prior initialisation). FLOP/pair = 2 h1 h2 + 2 h2 = "
             f"{flop_pair}; one full evaluation = {pairs * flop_pair / 1e12:.3f} TFLOP. Peak: {peak_note} = "
             + ", ".join(f"{k_} {v:.4g}" for k_, v in peak.items()) + " TFLOP/s. `full H (ms)` scales the measured "
             "time to all pairs (the naive path may run on fewer points). Best of "
             f"{args.repeat} after one warm-up.")
    out = args.out or f"perf-kernel-{device.type}-{args.data}.md"
    cols = ["path", "precision", "pairs", "time (ms)", "Gpairs/s", "TFLOP/s", "% of peak", "full H (ms)", "max |ΔK|",
            "argmax agreement"]
    write(out, header("Kernel throughput: one evaluation of H", notes) + "\n" + table(rows, cols))


if __name__ == "__main__":
    main()
