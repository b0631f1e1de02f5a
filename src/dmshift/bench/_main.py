"""``dmshift bench EXPERIMENT``: run one experiment and write its Markdown and CSV results."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .data import DATASETS, DataMissing, load_case
from .experiments import EXPERIMENTS, Context, quick_context
from .methods import METHODS, NOTES, PEER_NOTES, Options
from .report import Results, stamp

__all__ = ["main", "build_parser"]

logger = logging.getLogger("dmshift")

_EPILOG = """\
experiments (dmshift bench --list):
{experiments}

methods (--methods, comma-separated): {methods}
data sets (--datasets, comma-separated; table2 also takes DATASET:TASK): {datasets}

examples:
  dmshift bench --list
  dmshift bench threshold --datasets digits --seeds 3
  dmshift bench table3 --datasets mnist10k,r8 --methods dms-subtract,kmeans,ward
  dmshift bench table2 --quick            # smoke run on a 300-point subset of digits
"""


def _list_experiments() -> str:
    w = max(map(len, EXPERIMENTS))
    return "\n".join(f"  {e.name.ljust(w)}  {e.title}; data sets: {', '.join(e.datasets)}"
                     for e in EXPERIMENTS.values())


def _csv(text: str) -> list[str]:
    return [t for part in text for t in part.split(",") if t]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dmshift bench", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Reproduce the experiments of the DMS paper (§4): every method on a random 5%% of points "
                    "with side information, scored on the other 95%%, several random seeds, results as Markdown "
                    "and CSV stamped with the command, commit and machine.",
        epilog=_EPILOG.format(experiments=_list_experiments(), methods=", ".join(METHODS),
                              datasets=", ".join(DATASETS)))
    p.add_argument("experiment", nargs="?", help="which experiment (see --list)")
    p.add_argument("--list", action="store_true", help="list the experiments and exit")
    p.add_argument("--datasets", nargs="+", metavar="NAME", help="data sets (default: the experiment's)")
    p.add_argument("--methods", nargs="+", metavar="NAME", help="methods (default: the experiment's)")
    p.add_argument("--seeds", type=int, default=3, metavar="N", help="random seeds 0..N-1 per cell (default 3)")
    p.add_argument("--first-seed", type=int, default=0, metavar="S",
                   help="run seeds S..S+N-1 instead, e.g. to add seeds to an earlier run (default 0)")
    p.add_argument("--dms", action="append", default=[], metavar="PARAM=VALUE",
                   help="a DMSClustering parameter for every DMS fit, e.g. --dms smoothing=None (a Python "
                        "literal, else a string); repeat for several; recorded in the results")
    p.add_argument("--fraction", type=float, default=0.05,
                   help="share of points with side information (default 0.05, the paper's)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 300-point subsets, small grids, learned methods train for few steps")
    p.add_argument("--device", default="auto", help="torch device of DMS, the peers and MeanShift (default auto)")
    p.add_argument("--max-steps", type=int, metavar="N", help="training steps of every learned method "
                   "(default: the library's; recorded in the results)")
    p.add_argument("--time-limit", type=float, metavar="SECONDS",
                   help="training time limit per fit of DMS, KCL and MCL (scikit-learn baselines run to the end)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch and BLAS (default 1)")
    p.add_argument("--out", default="benchmarks/results", metavar="DIR",
                   help="folder for bench-EXPERIMENT[-TAG].md and .csv (default benchmarks/results)")
    p.add_argument("--tag", help="suffix of the file names, e.g. a data-set name")
    return p


def _check(args, exp) -> tuple[list[str], list[str]]:
    if args.seeds < 1:
        raise ValueError(f"--seeds must be a positive int. Got {args.seeds} instead.")
    if args.first_seed < 0:
        raise ValueError(f"--first-seed must be a non-negative int. Got {args.first_seed} instead.")
    if not 0.0 < args.fraction < 1.0:
        raise ValueError(f"--fraction must be in (0, 1). Got {args.fraction} instead.")
    if args.max_steps is not None and args.max_steps < 1:
        raise ValueError(f"--max-steps must be a positive int. Got {args.max_steps} instead.")
    if args.time_limit is not None and not args.time_limit > 0:
        raise ValueError(f"--time-limit must be positive. Got {args.time_limit} instead.")
    if args.threads < 1:
        raise ValueError(f"--threads must be a positive int. Got {args.threads} instead.")
    methods = _csv(args.methods) if args.methods else list(exp.methods)
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ValueError(f"unknown method(s) {', '.join(bad)}; choose from {', '.join(METHODS)}")
    if exp.learned_only:
        dropped = [m for m in methods if not METHODS[m][2] or (exp.dms_only and not m.startswith("dms-"))]
        if dropped:
            what = "DMS" if exp.dms_only else "methods that learn from side information"
            raise ValueError(f"experiment {exp.name!r} runs {what} only; it does not run {', '.join(dropped)}")
    datasets = _csv(args.datasets) if args.datasets else list(exp.quick_datasets if args.quick else exp.datasets)
    bad = [d for d in datasets if d.partition(":")[0] not in DATASETS]
    if bad:
        raise ValueError(f"unknown data set(s) {', '.join(bad)}; choose from {', '.join(DATASETS)}")
    return methods, datasets


def parse_dms_params(items: list[str]) -> dict:
    """``["smoothing=None", "n_layers=3"]`` -> ``{"smoothing": None, "n_layers": 3}``, checked against DMS's parameters."""
    import ast

    from ..estimators.dms import DMSClustering

    known = DMSClustering().get_params()
    fixed = {"kernel", "random_state", "device", "max_steps", "time_limit"}
    out = {}
    for item in items:
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ValueError(f"--dms must be PARAM=VALUE, e.g. smoothing=None. Got {item!r} instead.")
        if key not in known:
            raise ValueError(f"--dms: DMSClustering has no parameter {key!r}; choose from {', '.join(sorted(known))}")
        if key in fixed:
            raise ValueError(f"--dms: {key!r} is set by the benchmark itself (the method name, the seed, --device, "
                             f"--max-steps or --time-limit); it cannot be given with --dms")
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            value = text.strip()
        out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    """Run ``dmshift bench ARGS``; returns the exit status."""
    import torch

    from .._validation import resolve_device

    argv = [] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if args.list:
        print(_list_experiments())
        return 0
    if args.experiment is None:
        raise ValueError("name an experiment, e.g. 'dmshift bench threshold' (dmshift bench --list shows them)")
    exp = EXPERIMENTS.get(args.experiment)
    if exp is None:
        raise ValueError(f"unknown experiment {args.experiment!r}; choose from {', '.join(EXPERIMENTS)}")
    methods, datasets = _check(args, exp)
    cases = exp.cases(datasets)
    device = str(resolve_device(args.device))
    threads_before = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return _run(argv, args, exp, methods, cases, device)
    finally:
        torch.set_num_threads(threads_before)


def _run(argv, args, exp, methods, cases, device) -> int:
    from threadpoolctl import threadpool_limits

    dms_params = parse_dms_params(args.dms)
    ctx = Context(seeds=tuple(range(args.first_seed, args.first_seed + args.seeds)), methods=tuple(methods),
                  fraction=args.fraction, quick=args.quick,
                  opts=Options(device=device, max_steps=args.max_steps, time_limit=args.time_limit,
                               dms_params=dms_params))
    if args.quick:
        ctx = quick_context(ctx)
    name = "bench-" + exp.name + ("-quick" if args.quick else "") + (f"-{args.tag}" if args.tag else "")
    stem = Path(args.out) / name
    settings = {"seeds": ", ".join(map(str, ctx.seeds)),
                "side information": ("partial labels from a share of the classes, at most so many random points per "
                                     "class (the setting column); scores on the other points only"
                                     if exp.restricted else
                                     f"partial labels on a random {ctx.fraction:.0%} of the points "
                                     "(numpy default_rng(seed)); scores on the other points only"),
                "DMS parameters": ("library defaults" if not dms_params else "library defaults except " + ", ".join(
                    f"{k}={v!r}" for k, v in dms_params.items())) + (
                    "" if ctx.opts.max_steps is None else f", except max_steps={ctx.opts.max_steps}") + (
                    "" if ctx.opts.time_limit is None else f", time_limit={ctx.opts.time_limit:g} s"),
                "max_steps override": ctx.opts.max_steps if ctx.opts.max_steps is not None else "none",
                "time limit per fit": f"{ctx.opts.time_limit:g} s (training of DMS, KCL, MCL)"
                if ctx.opts.time_limit else "none",
                "threads": args.threads}
    if any(m.startswith("dms-") for m in methods):
        from ..estimators.dms import DMSClustering
        skip = {"kernel", "device", "verbose", "random_state", "max_steps", "time_limit"}
        defaults = {k: v for k, v in DMSClustering().get_params().items() if k not in skip}
        settings["DMSClustering defaults here"] = ", ".join(f"{k}={v!r}" for k, v in defaults.items())
    if args.quick:
        settings["quick"] = "yes: 300-point subsets and small grids; not a result"
    notes = ["Scores: ACC (Hungarian; noise counts as wrong), NMI (geometric), AMI, all on the points without "
             "side information; clusters and noise share among those points; time is the wall time of one fit "
             "on all points. Mean ± std over seeds."]
    if any(m in ("label-spreading", "ss-kmeans") for m in methods):
        notes.append(PEER_NOTES)
    if any(not METHODS[m][2] for m in methods):
        notes.append(NOTES)
    results = Results(stem, exp.name, exp.title, exp.description, stamp(argv, device, settings), notes)
    results.write()
    ran = 0
    try:
        with threadpool_limits(limits=args.threads):
            for ds, task in cases:
                try:
                    case = load_case(ds, task, quick=args.quick)
                except DataMissing as exc:
                    logger.warning("skipping %s: %s", ds, exc)
                    results.skip(f"{ds}{':' + task if task else ''} (data not found: {exc})")
                    continue
                logger.info("%s: %s task %s, %d points, %d classes", exp.name, ds, case.task, case.n, case.k)
                exp.run(exp, ctx, case, results)
                ran += 1
        results.status = "finished" if ran else "finished, every data set skipped"
    except KeyboardInterrupt:
        results.status = "interrupted; the rows so far are kept"
        results.write()
        raise
    results.write()
    md, cs = results.paths
    print(f"{exp.name}: {len(results.rows)} rows from {ran} of {len(cases)} tasks; wrote {md} and {cs}")
    return 0
