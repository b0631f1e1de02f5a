"""Peak memory of DMS ``predict`` (and, with ``--path fit``, of ``fit``) against ``memory_budget``: is the budget a ceiling?

A DMS model is fitted on 2,000 x 16 points (three blobs, 10% labels, defaults but a short
training) and ``predict`` then labels n x 16 points. Each measurement runs in a fresh
process: the growth of the peak resident size (``VmHWM``) over ``predict`` is reported in
MiB, measured from the size after a small warm-up ``predict`` (the peak is reset through
``/proc/self/clear_refs``, so fit's peak does not hide predict's); the input array exists
before and is not part of it. Several n, budgets and ``smoothing`` settings run on the
committed source (``HEAD``); with ``--compare REV`` the same measurements run on the
source of git revision REV too (``git archive``), in the same invocation, for
before/after ratios. Linux only.

    PYTHONPATH=src python benchmarks/perf_memory.py [--n 100000 300000] [--budget-mib 16 256] [--compare REV]

Writes ``benchmarks/results/perf-memory.md`` (``--path fit``: ``perf-memory-fit.md``, the same
measurement over a ``fit`` on n points).
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perf_common import RESULTS, ROOT, commit, machine  # noqa: E402

PREAMBLE = """
import sys
import numpy as np, torch
torch.set_num_threads(1)
from dmshift import DMSClustering

def status_kib(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])

n, budget, smoothing = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
centers = rng.normal(size=(3, 16)) * 4
"""

SCRIPT = PREAMBLE + textwrap.dedent("""
    y = np.arange(2000) % 3
    X = (rng.normal(size=(2000, 16)) + centers[y]).astype(np.float32)
    yp = np.where(rng.random(2000) < 0.1, y, -1)
    m = DMSClustering(max_steps=60, memory_budget=budget, smoothing=None if smoothing == "none" else smoothing,
                      device="cpu", random_state=0).fit(X, yp)
    Xn = (rng.normal(size=(n, 16)) + centers[rng.integers(0, 3, n)]).astype(np.float32)
    m.predict(Xn[:2000])  # warm the allocator and the lazy imports
    with open("/proc/self/clear_refs", "w") as f:  # the peak restarts from the current size (fit's is forgotten)
        f.write("5")
    base = status_kib("VmRSS")
    labels = m.predict(Xn)
    grown = (status_kib("VmHWM") - base) / 1024
    print(grown, m.smoothing_["applied"])
""")

FIT_SCRIPT = PREAMBLE + textwrap.dedent("""
    y = rng.integers(0, 3, n)
    X = (rng.normal(size=(n, 16)) + centers[y]).astype(np.float32)
    yp = np.where(rng.random(n) < 0.05, y, -1)
    params = dict(max_steps=50, memory_budget=budget, smoothing=None if smoothing == "none" else smoothing,
                  device="cpu", random_state=0)
    DMSClustering(**params).fit(X[:2000], yp[:2000])  # warm the allocator and the lazy imports
    with open("/proc/self/clear_refs", "w") as f:  # the peak restarts from the current size
        f.write("5")
    base = status_kib("VmRSS")
    m = DMSClustering(**params).fit(X, yp)
    grown = (status_kib("VmHWM") - base) / 1024
    print(grown, m.choices_["labels"]["chosen"])
""")


def source_of(rev: str, into: Path) -> Path:
    """The ``src`` folder of git revision ``rev``, extracted under ``into``."""
    data = subprocess.run(["git", "archive", rev, "src"], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def measure(src: Path, n: int, budget: int, smoothing: str, path: str = "predict") -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    script = FIT_SCRIPT if path == "fit" else SCRIPT
    out = subprocess.run([sys.executable, "-c", script, str(n), str(budget), smoothing], env=env,
                         capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    grown, applied = out.stdout.split()[-2:]
    return float(grown), applied


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[100_000, 300_000])
    ap.add_argument("--budget-mib", type=int, nargs="+", default=[16, 256])
    ap.add_argument("--smoothing", nargs="+", default=["auto", "none"])
    ap.add_argument("--compare", default=None, help="git revision to measure too (before)")
    ap.add_argument("--path", choices=("predict", "fit"), default="predict",
                    help="what is measured: predict of n points, or fit on n points (50 training steps)")
    ap.add_argument("--out", default=None, help="default: perf-memory.md, perf-memory-fit.md with --path fit")
    args = ap.parse_args()
    fit = args.path == "fit"
    args.out = args.out or str(RESULTS / ("perf-memory-fit.md" if fit else "perf-memory.md"))
    tmp = tempfile.TemporaryDirectory()
    # the committed source, so that edits made while the benchmark runs do not enter it
    sources = {"HEAD": source_of("HEAD", Path(tmp.name) / "head")}
    if args.compare:
        sources = {args.compare: source_of(args.compare, Path(tmp.name) / "before"), **sources}
    rows = []
    for smoothing in args.smoothing:
        for budget in args.budget_mib:
            for n in args.n:
                input_mib = n * 16 * 4 / 2**20
                got = {}
                for name, src in sources.items():
                    got[name] = measure(src, n, budget << 20, smoothing, args.path)
                    print(smoothing, budget, n, name, got[name], flush=True)
                rows.append((smoothing, budget, n, input_mib, got))
    names = list(sources)
    what = ("Growth of the peak resident size (VmHWM) over one `fit` on n x 16 float32 points, in MiB "
            "(three blobs, 5% labels, `max_steps=50`, other parameters at their defaults), measured from the "
            "size after a warm-up fit on 2,000 of them. The input array exists before `fit` and is not part "
            "of the growth; the fitted model is." if fit else
            "Growth of the peak resident size (VmHWM) over one `predict` of n x 16 float32 points, in MiB, "
            "for a DMS model fitted on 2,000 x 16 points (three blobs, 10% labels, `max_steps=60`, other "
            "parameters at their defaults). The input array exists before `predict` and is not part of the "
            "growth; the output (n int64 labels) is.")
    lines = [
        f"# Peak memory of DMS {args.path} against memory_budget",
        "",
        f"Command: `PYTHONPATH=src python benchmarks/perf_memory.py {' '.join(sys.argv[1:])}`  ",
        f"Commit: {commit()}  ",
        f"Machine: {machine()}",
        "",
        what + " The target: at most 1.5 x `memory_budget` plus input and output.",
        "",
        "| smoothing | budget MiB | n | input MiB | " + " | ".join(f"growth MiB ({k})" for k in names)
        + (" | ratio" if len(names) == 2 else "") + (" | labels from |" if fit else " | smoothing applied |"),
        "|---|---|---|---|" + "---|" * len(names) + ("---|" if len(names) == 2 else "") + "---|",
    ]
    for smoothing, budget, n, input_mib, got in rows:
        cells = [f"{got[k][0]:.0f}" for k in names]
        ratio = [f"{got[names[0]][0] / max(got[names[1]][0], 1e-9):.1f}x"] if len(names) == 2 else []
        lines.append(f"| {smoothing} | {budget} | {n:,} | {input_mib:.0f} | " + " | ".join(cells + ratio)
                     + f" | {got[names[-1]][1]} |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
