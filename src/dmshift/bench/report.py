"""Results of a benchmark run: the stamp (command, commit, machine), raw rows, Markdown and CSV.

A run writes ``<stem>.csv`` (one row per method, setting, seed and scored subset) and
``<stem>.md`` (mean ± std over seeds, one table per data set and task). Both are rewritten
after every finished row, so an interrupted run keeps what it did.
"""

from __future__ import annotations

import csv
import os
import platform
import shlex
import subprocess
import time
from pathlib import Path

import numpy as np

__all__ = ["Results", "stamp", "git_commit", "machine"]

FIELDS = ("experiment", "dataset", "task", "n", "k", "method", "setting", "subset", "seed", "n_side", "n_scored",
          "acc", "nmi", "ami", "n_clusters", "noise", "seconds", "note")


#: ``git status`` of the code that runs: results files written by earlier runs do not make a run "+dirty"
_STATUS_OF_CODE = ["git", "status", "--porcelain", "--untracked-files=no", "--", ":(top)",
                   ":(top,exclude)benchmarks/results"]

def git_commit() -> str:
    """``git rev-parse --short HEAD`` of the dmshift sources (``+dirty`` if modified), or "unknown"."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(_STATUS_OF_CODE, cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return sha + ("+dirty" if dirty else "") if sha else "unknown"


def machine() -> str:
    """Platform, CPU model and count, torch version and threads, and the GPU if any."""
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    parts = [platform.platform(), f"{cpu}, {os.cpu_count()} logical CPUs",
             f"torch {torch.__version__} ({torch.get_num_threads()} threads)"]
    if torch.cuda.is_available():
        parts.append(f"GPU {torch.cuda.get_device_name()}")
    try:
        parts.append("load average at start " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    except OSError:
        pass
    return "; ".join(parts)


def stamp(argv: list[str], device: str, settings: dict) -> list[tuple[str, str]]:
    """The lines that head every results file: how to rerun it and where it ran."""
    cmd = "dmshift bench " + " ".join(shlex.quote(a) for a in argv)
    lines = [("command", f"`{cmd}`"), ("commit", f"`{git_commit()}`"), ("machine", machine()),
             ("device", device), ("date", time.strftime("%Y-%m-%d %H:%M:%S %Z"))]
    lines += [(k, str(v)) for k, v in settings.items()]
    return lines


def _fmt(values, digits=3) -> str:
    a = np.asarray(values, dtype=float)
    if a.size == 1:
        return f"{a[0]:.{digits}f}"
    return f"{a.mean():.{digits}f} ± {a.std():.{digits}f}"


class Results:
    """Rows of one run and the files they are written to."""

    def __init__(self, stem: Path, experiment: str, title: str, description: str, stamp_lines, notes=()):
        self.stem = Path(stem)
        self.experiment = experiment
        self.title, self.description = title, description
        self.stamp_lines, self.notes = list(stamp_lines), list(notes)
        self.rows: list[dict] = []
        self.skipped: list[str] = []
        #: (dataset, task) -> (what the paper ran on, (ACC, NMI, AMI) of its DMS (subtract))
        self.references: dict[tuple[str, str], tuple[str, tuple[float, float, float]]] = {}
        self.status = "running"
        self.t0 = time.perf_counter()

    @property
    def paths(self) -> tuple[Path, Path]:
        return self.stem.with_suffix(".md"), self.stem.with_suffix(".csv")

    def add(self, **row) -> None:
        row["experiment"] = self.experiment
        self.rows.append({f: row.get(f, "") for f in FIELDS})
        self.write()

    def skip(self, what: str) -> None:
        self.skipped.append(what)
        self.write()

    def write(self) -> None:
        md, cs = self.paths
        md.parent.mkdir(parents=True, exist_ok=True)
        with open(cs, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=FIELDS)
            w.writeheader()
            for r in self.rows:
                w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
        md.write_text(self.markdown())

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        out += [f"- {k}: {v}" for k, v in self.stamp_lines]
        out += [f"- status: {self.status}, {time.perf_counter() - self.t0:.0f} s", "", self.description, ""]
        out += [n + "\n" for n in self.notes]
        for what in self.skipped:
            out += [f"Skipped: {what}", ""]
        groups: dict[tuple, dict[tuple, list[dict]]] = {}
        for r in self.rows:
            head = (r["dataset"], r["task"], r["n"], r["k"])
            groups.setdefault(head, {}).setdefault((r["method"], r["setting"], r["subset"]), []).append(r)
        for (ds, task, n, k), cells in groups.items():
            rows = [r for rs in cells.values() for r in rs]
            side = sorted({int(r["n_side"]) for r in rows})
            out += [f"## {ds}: task `{task}` ({n} points, {k} classes)", "",
                    f"Side information: {'/'.join(map(str, side))} points; scores on the other points only.", ""]
            show_setting = any(s for _, s, _ in cells)
            show_subset = any(sub != "scored" for _, _, sub in cells)
            head = ["method"] + (["setting"] if show_setting else []) + (["scored points"] if show_subset else [])
            head += ["ACC", "NMI", "AMI", "clusters", "noise", "time (s)", "seeds", "notes"]
            out += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
            for (method, setting, subset), rs in cells.items():
                cols = [method] + ([setting] if show_setting else []) + ([subset] if show_subset else [])
                notes = "; ".join(dict.fromkeys(r["note"] for r in rs if r["note"]))
                cols += [_fmt([r["acc"] for r in rs]), _fmt([r["nmi"] for r in rs]), _fmt([r["ami"] for r in rs]),
                         _fmt([r["n_clusters"] for r in rs], 1), _fmt([r["noise"] for r in rs]),
                         _fmt([r["seconds"] for r in rs], 1), str(len(rs)), notes]
                out.append("| " + " | ".join(cols) + " |")
            out.append("")
            if (ds, task) in self.references:
                out += [self._reference(ds, task, cells), ""]
        return "\n".join(out)

    def _reference(self, ds: str, task: str, cells: dict) -> str:
        """The paper's figures for this task and how far DMS (subtract) here is from them."""
        what, paper = self.references[(ds, task)]
        text = f"Paper, DMS (subtract) on {what}: ACC {paper[0]:.3f}, NMI {paper[1]:.3f}, AMI {paper[2]:.3f}."
        rs = cells.get(("DMS (subtract)", "", "scored"))
        if rs:
            here = [float(np.mean([r[m] for r in rs])) for m in ("acc", "nmi", "ami")]
            text += " Here (mean): " + ", ".join(f"{m} {h:.3f} ({h - p:+.3f})" for m, h, p in
                                                 zip(("ACC", "NMI", "AMI"), here, paper)) + "."
        return text
