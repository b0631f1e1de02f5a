"""Time of a whole default DMS fit, the committed source against an earlier revision, side by side.

Each fit is ``DMSClustering(random_state=seed).fit`` at the defaults on one of the bench's
cases with side information on a random 5% of the points (``bench.protocol.random_split``),
in a fresh process with one CPU thread. With ``--compare REV`` the same fits run on the
source of git revision REV too (``git archive``), alternating with the committed source
(``HEAD``) fit by fit, so that a change in the machine's load falls on both; the ratio
of the two times is what the file reports, with each side's ACC and the SHA-256 of its
``labels_`` (equal hashes: the change left the labels as they were).

    PYTHONPATH=src python benchmarks/perf_fit.py --cases digits mnist10k --seeds 0 1 2 --compare REV

Writes ``benchmarks/results/perf-fit-cpu.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perf_common import RESULTS, commit, machine  # noqa: E402
from perf_memory import source_of  # noqa: E402

SCRIPT = textwrap.dedent("""
    import hashlib, json, sys, time
    import torch
    torch.set_num_threads(1)
    from dmshift import DMSClustering
    from dmshift.bench.data import load_case
    from dmshift.bench.protocol import random_split, score
    name, seed = sys.argv[1], int(sys.argv[2])
    case = load_case(name)
    split = random_split(case.y, 0.05, seed)
    t = time.perf_counter()
    m = DMSClustering(random_state=seed).fit(case.X, split.y_side)
    seconds = time.perf_counter() - t
    print(json.dumps({"seconds": seconds, "acc": score(case.y, m.labels_, split.scored)["acc"],
                      "sha": hashlib.sha256(m.labels_.tobytes()).hexdigest()[:16],
                      "training_s": m.training_.get("seconds"), "inference_s": m.inference_seconds_}))
""")


def fit_once(src: Path, case: str, seed: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", SCRIPT, case, str(seed)], env=env, capture_output=True,
                         text=True, timeout=7200)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=["digits", "mnist10k"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--compare", default=None, help="git revision to time too (before)")
    ap.add_argument("--out", default=str(RESULTS / "perf-fit-cpu.md"))
    args = ap.parse_args()
    head = f"HEAD ({commit()})"  # before the fits: edits made while they run do not enter them
    tmp = tempfile.TemporaryDirectory()
    # the committed source, so that edits made while the benchmark runs do not enter it
    sources = {"HEAD": source_of("HEAD", Path(tmp.name) / "head")}
    if args.compare:
        sources = {args.compare: source_of(args.compare, Path(tmp.name) / "before"), **sources}
    names = list(sources)
    rows = []
    for case in args.cases:
        for seed in args.seeds:
            got = {}
            for name in (names if seed % 2 == 0 else names[::-1]):  # alternate which side runs first
                got[name] = fit_once(sources[name], case, seed)
                print(case, seed, name, got[name], flush=True)
            rows.append((case, seed, got))
    cols = [head if n == "HEAD" else n for n in names]
    lines = [
        "# Whole DMS fits: time on one CPU thread",
        "",
        f"Command: `PYTHONPATH=src python benchmarks/perf_fit.py {' '.join(sys.argv[1:])}`  ",
        f"Machine: {machine()}",
        "",
        "`DMSClustering(random_state=seed).fit` at the defaults, side information on a random 5% of the points "
        "(the bench's splits), one fresh process and one thread per fit"
        + (", the two sources alternating fit by fit." if len(names) > 1 else "."),
        "Seconds are wall-clock, the whole `fit`; training and inference are the fit's own records. "
        "The hash is the SHA-256 of `labels_` (first 16 hex digits).",
        "",
        "| case | seed | " + " | ".join(f"{c} s (training + rest)" for c in cols)
        + (f" | {names[0]} s / HEAD s |" if len(names) > 1 else " |") + " "
        + " | ".join(f"{c} ACC / hash" for c in cols) + " |",
        "|---|---|" + "---|" * (len(names) + (len(names) > 1) + len(names)),
    ]
    for case, seed, got in rows:
        times = [f"{got[n]['seconds']:.1f} ({got[n]['training_s']:.1f} + "
                 f"{got[n]['seconds'] - got[n]['training_s']:.1f})" for n in names]
        ratio = [f"{got[names[0]]['seconds'] / got['HEAD']['seconds']:.2f}x"] if len(names) > 1 else []
        accs = [f"{got[n]['acc']:.4f} `{got[n]['sha']}`" for n in names]
        lines.append(f"| {case} | {seed} | " + " | ".join(times + ratio + accs) + " |")
    for case in args.cases:
        mine = [got for c, _, got in rows if c == case]
        means = {n: sum(g[n]["seconds"] for g in mine) / len(mine) for n in names}
        same = sum(g[names[0]]["sha"] == g["HEAD"]["sha"] for g in mine)
        lines.append("")
        lines.append(f"{case}: mean " + ", ".join(f"{c} {means[n]:.1f} s" for c, n in zip(cols, names))
                     + (f"; {means[names[0]] / means['HEAD']:.2f}x faster; labels identical on {same} of "
                        f"{len(mine)} seeds." if len(names) > 1 else "."))
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
