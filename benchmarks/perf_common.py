"""Shared pieces of the ``perf_*`` benchmarks: machine record, timing, cached DMS models.

Run the benchmarks from the repository root with ``PYTHONPATH=src``. Each writes a
Markdown file under ``benchmarks/results/`` that starts with the command, the commit and
the machine it ran on. Trained models are cached under ``.cache/perf-models/`` (ignored
by git) so that the inference benchmarks do not retrain.
"""

from __future__ import annotations

import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MODELS = ROOT / ".cache" / "perf-models"


#: ``git status`` of the code that runs: results files written by earlier runs do not make a run "+dirty"
_STATUS_OF_CODE = ["git", "status", "--porcelain", "--untracked-files=no", "--", ":(top)",
                   ":(top,exclude)benchmarks/results"]

def commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(_STATUS_OF_CODE, cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    parts = [f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads)"]
    if torch.cuda.is_available():
        parts.append(f"GPU {torch.cuda.get_device_name()}")
    else:
        parts.append("no GPU")
    try:
        parts.append("load average at start " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    except OSError:
        pass
    return "; ".join(parts)


def header(title: str, notes: str = "") -> str:
    cmd = "PYTHONPATH=src python3 " + " ".join(shlex.quote(a) for a in sys.argv)
    lines = [f"# {title}", "", f"- command: `{cmd}`", f"- commit: `{commit()}`", f"- machine: {machine()}",
             f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}"]
    if notes:
        lines += ["", notes]
    return "\n".join(lines) + "\n"


def write(name: str, text: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(text)
    print(text)
    return path


def table(rows: list[dict], columns: list[str] | None = None) -> str:
    columns = columns or list(rows[0])
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        out.append("| " + " | ".join(_fmt(r.get(c, "")) for c in columns) + " |")
    return "\n".join(out) + "\n"


def _fmt(v) -> str:
    if isinstance(v, float):
        if v != v:
            return "—"
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"
    return str(v)


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timeit(fn, *, device="cpu", repeat: int = 3, warmup: int = 1) -> float:
    """Best wall time (s) of ``repeat`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t)
    return best


def max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def rss_bytes() -> int:
    """Current resident set size (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Highest resident set size above the size at entry, sampled every ``interval`` s in a thread."""

    def __init__(self, interval: float = 0.002):
        self.interval = interval
        self.peak = 0

    def __enter__(self):
        import threading
        self._base = rss_bytes()
        self._stop = threading.Event()

        def watch():
            while not self._stop.is_set():
                self.peak = max(self.peak, rss_bytes() - self._base)
                self._stop.wait(self.interval)

        self._thread = threading.Thread(target=watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes() - self._base)


@dataclass(frozen=True)
class ModelSpec:
    """How a cached DMS model is trained: data set, side information and estimator settings."""

    dataset: str
    n: int | None = None
    label_fraction: float = 0.2
    params: dict = field(default_factory=dict)
    seed: int = 0

    @property
    def name(self) -> str:
        size = f"{self.n}" if self.n else "all"
        extra = "-".join(f"{k}{v}" for k, v in sorted(self.params.items())).replace(" ", "").replace(",", "x")
        return f"{self.dataset}-{size}-lab{self.label_fraction}-{extra}-s{self.seed}"


#: models used by the inference benchmarks (CPU-sized: the full paper width on MNIST trains at
#: minutes per step on two cores)
DIGITS = ModelSpec("digits", params={"max_steps": 1000})
MNIST10K = ModelSpec("mnist", n=10000, params={"max_steps": 2000, "hidden": (64, 32), "batch_size": 64,
                                               "instance_size": (100, 150)})
#: the issue's GPU configuration: MNIST-70k, paper widths 392/196 (train on a GPU)
MNIST70K_PAPER = ModelSpec("mnist", params={"max_steps": 2000, "width_cap": None})
USPS = ModelSpec("usps", params={"max_steps": 2000, "hidden": (64, 32), "batch_size": 64,
                                 "instance_size": (100, 150)})


def load_data(spec: ModelSpec):
    from dmshift.datasets import load
    ds = load(spec.dataset, n=spec.n) if spec.n else load(spec.dataset)
    return ds.X, ds.y


def partial_labels(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yp = np.full_like(y, -1)
    idx = rng.choice(y.size, size=int(round(fraction * y.size)), replace=False)
    yp[idx] = y[idx]
    return yp


def trained_model(spec: ModelSpec, device: str = "cpu"):
    """A fitted DMSClustering for ``spec``, from the cache or trained now (and cached)."""
    from dmshift.estimators.dms import DMSClustering
    path = MODELS / spec.name
    if (path / "config.json").exists():
        return DMSClustering.load(path, device=device)
    X, y = load_data(spec)
    params = dict(spec.params)
    if "hidden" in params:
        params["hidden"] = tuple(params["hidden"])
    t = time.perf_counter()
    model = DMSClustering(random_state=spec.seed, device=device, **params).fit(X, partial_labels(y, spec.label_fraction,
                                                                                                   spec.seed))
    print(f"trained {spec.name} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    MODELS.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return model
