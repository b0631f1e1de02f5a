"""What each ``dmshift`` subcommand does, given its parsed arguments.

Each ``cmd_*`` function returns the exit status. Results go to stdout (also
with ``--quiet``), messages to stderr through the ``"dmshift"`` logger; problems a user can fix
are raised as :class:`~dmshift.cli._files.UserError` and printed on one line by ``main``.
Output paths are checked before any data is read or any model trained. PyTorch and the
estimators are imported inside the commands that use them.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from ..constants import NOISE, UNLABELLED
from ._files import PLOT_SUFFIXES, UserError, check_output, read_features, read_labels, read_pairs, write_labels
from ._methods import make_estimator, parse_params, resolve_method, valid_params

__all__ = ["cmd_fit", "cmd_predict", "cmd_evaluate", "cmd_bench", "cmd_demo", "Interrupted"]


class Interrupted(Exception):
    """Ctrl-C ended a command; the message says what was kept and how to go on (exit status 130)."""


@contextlib.contextmanager
def _noting_ctrl_c():
    """Record whether Ctrl-C (SIGINT) arrives, while it still raises KeyboardInterrupt as usual.

    The training loop catches that KeyboardInterrupt to keep the best model so far, so
    ``fit`` returns normally; the command needs to know that it was cut short.
    """
    seen = {"ctrl_c": False}
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous in (signal.SIG_IGN, None):
        yield seen
        return

    def handler(signum, frame):
        seen["ctrl_c"] = True
        if callable(previous):
            previous(signum, frame)  # Python's default raises KeyboardInterrupt
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, previous)


def _resume_hint(args, checkpoint_dir, model_written: bool = False) -> str:
    if checkpoint_dir is not None:
        flags = "--resume --overwrite" if model_written and not getattr(args, "overwrite", False) else "--resume"
        return (f"the last checkpoint is in {checkpoint_dir}: to continue the training from it, run the same "
                f"command with {flags}")
    return ("no checkpoints were written: to be able to continue an interrupted training, run the command with "
            "--checkpoint-dir DIR, and after an interruption again with --resume added")

logger = logging.getLogger("dmshift")


def _out(args, text: str = "") -> None:
    """Results go to stdout even with --quiet, which silences progress and messages only."""
    print(text, file=sys.stdout, flush=True)


def _progress(args) -> bool:
    return not args.quiet


# ---------------------------------------------------------------------------- fit
def _list_params(args) -> int:
    cls = resolve_method(args.method)
    sig = inspect.signature(cls.__init__)
    print(f"parameters of {args.method} ({cls.__module__}.{cls.__name__}), with defaults:")
    for name in valid_params(cls):
        print(f"  {name} = {sig.parameters[name].default!r}")
    return 0


def _needs_side_info(est) -> bool:
    """Does ``fit`` learn from side information? Both the class flag and scikit-learn's tag must say so."""
    try:
        required = bool(est.__sklearn_tags__().target_tags.required)
    except AttributeError:
        required = True
    return bool(getattr(type(est), "_needs_side_info", True)) and required


def cmd_fit(args) -> int:
    if args.list_params:
        return _list_params(args)
    if args.data is None or args.out is None:
        raise UserError("fit needs the features file and -o MODEL_DIR (see dmshift fit --help)")
    from ..storage import check_model_path
    overwrite = bool(getattr(args, "overwrite", False))
    check_model_path(args.out, overwrite=overwrite)  # before any work: never a user's folder or file
    params = parse_params(args.param)
    if args.labels_out is not None:
        check_output(args.labels_out)
    checkpoint_dir = getattr(args, "checkpoint_dir", None)
    if getattr(args, "resume", False) and checkpoint_dir is None and "checkpoint_dir" not in params:
        raise UserError("--resume needs --checkpoint-dir DIR: the folder the interrupted fit wrote its checkpoints to")
    if checkpoint_dir is not None:
        if "checkpoint_dir" not in valid_params(resolve_method(args.method)):
            raise UserError(f"method {args.method!r} does not train by steps and writes no checkpoints")
        if "checkpoint_dir" in params:
            raise UserError("give the checkpoint folder once: either --checkpoint-dir or --param checkpoint_dir")
        params["checkpoint_dir"] = checkpoint_dir
    if getattr(args, "standardize", None) is not None:
        if "standardize" in params:
            raise UserError("give the scaling once: either --standardize or --param standardize")
        if "standardize" not in valid_params(resolve_method(args.method)):
            raise UserError(f"method {args.method!r} has no standardize parameter (it reads the features as they are)")
        params["standardize"] = args.standardize
    est = make_estimator(args.method, params, seed=args.seed, device=args.device, progress=_progress(args))
    check = getattr(est, "_check_params", None)
    if callable(check) and not any(p.default is p.empty for p in inspect.signature(check).parameters.values()):
        check()  # refuse bad values before reading any data (fit checks them again)
    labels_file = args.labels is not None
    X, y = read_features(args.data, labels_col=None if labels_file else args.labels_col)
    n = X.shape[0]
    if labels_file:  # --labels-col then names the column of the labels file
        y = read_labels(args.labels, n, column=args.labels_col)
    pairs = read_pairs(args.pairs, n) if args.pairs is not None else None
    needs = _needs_side_info(est)
    has_side = (y is not None and np.any(y != UNLABELLED)) or pairs is not None
    if needs and not has_side:
        raise UserError(f"method {args.method!r} learns from side information: give partial labels "
                        "(--labels-col NAME or --labels FILE, -1 for unknown) or --pairs FILE")
    fit_kwargs = {}
    if pairs is not None:
        if "pairs" not in inspect.signature(est.fit).parameters:
            raise UserError(f"method {args.method!r} does not take pairs; give partial labels instead")
        fit_kwargs["pairs"] = pairs
    if not needs and has_side:
        logger.warning("method %r is unsupervised: the side information is not used.", args.method)
        y, fit_kwargs = None, {}
    if getattr(args, "resume", False):
        fit_kwargs["resume"] = True
        logger.info("resuming from the checkpoints in %s", est.checkpoint_dir)
    n_known = int(np.sum(y != UNLABELLED)) if y is not None else 0
    logger.info("fitting %s on %d points x %d features (%d labelled points, %d pairs) ...", args.method, n,
                X.shape[1], n_known, 0 if pairs is None else len(pairs))
    checkpoint_dir = getattr(est, "checkpoint_dir", None)
    t0 = time.perf_counter()
    with _noting_ctrl_c() as sigint:
        try:
            est.fit(X, y, **fit_kwargs)
        except KeyboardInterrupt:
            raise Interrupted(f"no model was written; {_resume_hint(args, checkpoint_dir)}") from None
    seconds = time.perf_counter() - t0
    try:
        est.save(args.out, overwrite=overwrite)
    except NotImplementedError:
        raise UserError(f"method {args.method!r} cannot be saved to a model folder yet") from None
    labels = np.asarray(est.labels_)
    if args.labels_out is not None:
        write_labels(args.labels_out, labels, getattr(est, "confidence_", None))
    if sigint["ctrl_c"]:
        raise Interrupted(f"training stopped early and the best model so far was written to {args.out}; "
                          f"{_resume_hint(args, checkpoint_dir, model_written=True)}")
    n_clusters = int(np.unique(labels[labels != NOISE]).size)
    _out(args, f"fitted {args.method} on {n} points in {seconds:.1f} s: {n_clusters} clusters, "
               f"{np.mean(labels == NOISE):.1%} noise; model written to {args.out}"
               + (f", training labels to {args.labels_out}" if args.labels_out else ""))
    return 0


# ---------------------------------------------------------------------------- predict
def _distributed(args) -> int:
    try:
        dist = importlib.import_module("dmshift.distributed")
    except ModuleNotFoundError as exc:
        if exc.name and "dmshift.distributed".startswith(exc.name):
            raise UserError("predict --distributed needs dmshift.distributed, which is not part of this "
                            "installation") from None
        raise
    if hasattr(dist, "sharded_predict_cli"):
        return int(dist.sharded_predict_cli(args) or 0)
    if hasattr(dist, "predict_files"):
        bad = [p for p in args.data if Path(p).suffix.lower() != ".npy"]
        if bad or Path(args.out).suffix.lower() != ".npy":
            raise UserError("predict --distributed reads .npy features and writes .npy labels")
        for p in args.data:
            if not Path(p).is_file():
                raise UserError(f"{p}: no such file")
        dist.predict_files(args.model, args.data if len(args.data) > 1 else args.data[0], args.out,
                           recluster=args.recluster, per_shard=args.per_shard, random_state=args.seed,
                           device=args.device)
        return 0
    raise UserError("this dmshift.distributed has no command-line entry point (sharded_predict_cli)")


def cmd_predict(args) -> int:
    if args.distributed:
        return _distributed(args)
    if args.recluster or args.per_shard:
        raise UserError("--recluster and --per-shard apply to predict --distributed only")
    if len(args.data) != 1:
        raise UserError("predict reads one features file (several only with --distributed)")
    check_output(args.out)
    if args.plot is not None:
        check_output(args.plot, PLOT_SUFFIXES, what="plot")
        from ..plot import _matplotlib
        _matplotlib()
    from ..io import load_model
    if not Path(args.model).exists():
        raise UserError(f"{args.model}: no such model folder")
    model = load_model(args.model, device=args.device)
    X, _ = read_features(args.data[0], labels_col=args.labels_col)
    expected = getattr(model, "n_features_in_", X.shape[1])
    if X.shape[1] != expected:
        raise UserError(f"{args.data[0]}: has {X.shape[1]} features per row, but the model was fitted on {expected}")
    projection = None
    if args.plot is not None:
        from ..plot import model_projection
        try:
            projection = model_projection(model)
        except ValueError:
            logger.warning("the %s model has no 2-D projection of its own, so the plot projects %s by its own PCA: "
                           "plots of different files are not on the same axes", type(model).__name__, args.data[0])
    confidence = None
    if hasattr(model, "predict_confidence") and not args.no_confidence:
        labels, confidence = model.predict_confidence(X)
    else:
        labels = model.predict(X)
    labels = np.asarray(labels, dtype=np.int64)
    write_labels(args.out, labels, confidence if Path(args.out).suffix.lower() != ".npy" else None)
    if args.plot is not None:
        from ..plot import save_figure, scatter_2d
        save_figure(scatter_2d(X, labels, projection=projection,
                               title=f"{Path(args.data[0]).name}: {type(model).__name__} clusters"), args.plot)
    n_clusters = int(np.unique(labels[labels != NOISE]).size)
    _out(args, f"labelled {len(labels)} points: {n_clusters} clusters, {np.mean(labels == NOISE):.1%} noise; "
               f"labels written to {args.out}" + (f", plot to {args.plot}" if args.plot else ""))
    return 0


# ---------------------------------------------------------------------------- evaluate
def _table(rows: list[tuple[str, str]]) -> str:
    w = max(len(k) for k, _ in rows)
    v = max(len(x) for _, x in rows)
    return "\n".join(f"{k.ljust(w)}  {x.rjust(v)}" for k, x in rows)


def cmd_evaluate(args) -> int:
    from ..metrics import evaluate, pairwise_precision_recall
    pred = read_labels(args.pred, column=args.pred_col, what="predicted labels", option="--pred-col")
    true = read_labels(args.true, len(pred), column=args.true_col, what="reference labels",
                       against=f"{args.pred} has {{n}} predicted labels", option="--true-col")
    known = true != UNLABELLED
    if not known.any():
        raise UserError(f"{args.true}: every reference label is unknown (-1)")
    scores = evaluate(true[known], pred[known])
    prec, rec = pairwise_precision_recall(true[known], pred[known])
    scores.update({"pair_precision": prec, "pair_recall": rec, "n_evaluated": int(known.sum()),
                   "n_skipped": int((~known).sum()), "n_classes": int(np.unique(true[known]).size)})
    if args.json:
        print(json.dumps(scores, indent=2))
        return 0
    rows = [("ACC", f"{scores['acc']:.4f}"), ("NMI", f"{scores['nmi']:.4f}"), ("AMI", f"{scores['ami']:.4f}"),
            ("purity", f"{scores['purity']:.4f}"), ("pair precision", f"{prec:.4f}"), ("pair recall", f"{rec:.4f}"),
            ("clusters", str(scores["n_clusters"])), ("classes", str(scores["n_classes"])),
            ("noise", f"{scores['noise']:.2%}"), ("points", str(scores["n_evaluated"]))]
    if scores["n_skipped"]:
        rows.append(("skipped (reference -1)", str(scores["n_skipped"])))
    print(_table(rows))
    return 0


# ---------------------------------------------------------------------------- bench, demo
def cmd_bench(args) -> int:
    try:
        bench = importlib.import_module("dmshift.bench")
    except ModuleNotFoundError as exc:
        if exc.name and "dmshift.bench".startswith(exc.name):
            raise UserError("dmshift.bench is not part of this installation, so there are no benchmarks to run") \
                from None
        raise UserError(f"dmshift bench needs the package {exc.name!r}, which is not installed") from None
    if not hasattr(bench, "main"):
        raise UserError("dmshift.bench has no main(argv) entry point")
    return int(bench.main(list(args.bench_args)) or 0)


def cmd_demo(args) -> int:
    from ..demo import format_table, run_demo
    out = None if args.no_plot else args.out
    if out is not None:
        check_output(out, PLOT_SUFFIXES, what="figure")
    res = run_demo(seed=0 if args.seed is None else args.seed, fraction=args.fraction, out=out, device=args.device,
                   time_limit=args.time_limit or None, progress=_progress(args))
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    _out(args, format_table(res))
    if res["figure"]:
        _out(args, f"figure written to {res['figure']}")
    return 0
