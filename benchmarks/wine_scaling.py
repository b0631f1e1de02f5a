"""Raw wine through `dmshift fit` / `dmshift predict`: the default scaling choice against per-feature and global scaling.

Wine's proline is measured in units a thousand times larger than the other features. The
command line is run as a user would (`dmshift fit X.npy --labels y.npy -o MODEL`, then
`dmshift predict MODEL X_test.npy -o labels.npy`) on 3 stratified 70/30 splits, with the
class of a random 30% of the training points given (-1 elsewhere), and scored by ACC
(Hungarian) on the held-out 30%.

    python benchmarks/wine_scaling.py --out benchmarks/results/wine-scaling.md
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split

from dmshift.metrics import evaluate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perf_common import commit, machine  # noqa: E402


def run(split: int, standardize: str | None, folder: Path) -> tuple[float, int, int]:
    X, y = load_wine(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=split, stratify=y)
    yp = np.where(np.random.default_rng(split).random(len(ytr)) < 0.3, ytr, -1)
    np.save(folder / "Xtr.npy", Xtr), np.save(folder / "ytr.npy", yp), np.save(folder / "Xte.npy", Xte)
    cli = [sys.executable, "-m", "dmshift.cli", "--quiet"]
    fit = cli + ["--seed", str(split), "fit", str(folder / "Xtr.npy"), "--labels", str(folder / "ytr.npy"),
                 "-o", str(folder / f"m-{split}-{standardize}")]
    subprocess.run(fit + (["--standardize", standardize] if standardize else []), check=True, capture_output=True)
    subprocess.run(cli + ["predict", str(folder / f"m-{split}-{standardize}"), str(folder / "Xte.npy"),
                          "-o", str(folder / "p.npy")], check=True, capture_output=True)
    return evaluate(yte, np.load(folder / "p.npy"))["acc"], int((yp >= 0).sum()), len(ytr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for split in range(3):
            for std in (None, "feature", "global"):
                acc, n_lab, n_tr = run(split, std, Path(tmp))
                rows.append((split, std or "auto (default)", acc, n_lab, n_tr))
                print(rows[-1], flush=True)
    lines = ["# Raw wine through the command line: the scaling chosen at fit time, per-feature and global", "",
             f"- command: `python benchmarks/wine_scaling.py --out {args.out}`", f"- commit: `{commit()}`",
             f"- machine: {machine()}", "", __doc__.split("\n\n")[1].replace("\n", " "), "",
             "| split | --standardize | labelled / training points | held-out ACC |", "|---|---|---|---|"]
    lines += [f"| {s} | {m} | {a} / {n} | {acc:.3f} |" for s, m, acc, a, n in rows]
    for m in ("auto (default)", "feature", "global"):
        lines.append(f"| mean | {m} | | {np.mean([r[2] for r in rows if r[1] == m]):.3f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
