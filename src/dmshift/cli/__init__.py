"""The ``dmshift`` command: ``demo``, ``fit``, ``predict``, ``evaluate``, ``bench``.

``main(argv)`` parses the command line with :mod:`argparse` and runs one subcommand
(:mod:`._commands`); file reading and writing live in :mod:`._files`, method names and
``--param`` parsing in :mod:`._methods`. Mistakes a user can fix (unknown options, missing
or malformed files, bad parameter values) end with one line on stderr and exit status 2
(command line) or 1 (files and values), never with a traceback; ``--verbose`` adds the
traceback for debugging. Ctrl-C ends with status 130.

The command routes the ``"dmshift"`` logger to stderr itself (the library only logs).
PyTorch and scikit-learn are imported by the commands that need them, so ``--help``,
argument errors and ``evaluate`` start quickly.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
import warnings

from ..demo import DEFAULT_TIME_LIMIT
from ._commands import Interrupted, cmd_bench, cmd_demo, cmd_evaluate, cmd_fit, cmd_predict
from ._files import UserError
from ._methods import METHODS

__all__ = ["main", "build_parser", "UserError", "METHODS"]

logger = logging.getLogger("dmshift")

_GLOBAL_FLAGS = {"--quiet", "-q", "--verbose", "-v"}
_GLOBAL_VALUED = {"--device", "--seed"}

_MAIN_EPILOG = """\
examples:
  dmshift demo                                   # DMS vs k-means++, Ward, HDBSCAN on digits
  dmshift fit X.csv --labels-col label -o model  # learn clusters from partial labels
  dmshift predict model X_new.csv -o labels.csv --plot clusters.png
  dmshift evaluate labels.csv truth.csv

Run 'dmshift COMMAND --help' for the options of each command."""

_FIT_EPILOG = """\
side information (at least one, except for the unsupervised ddc, mmdc, meanshift):
  --labels-col NAME   a column of the features CSV/parquet (or an array of the .npz)
                      holding a class (a number or a name) for some points and -1 or an
                      empty cell elsewhere; it is not read as a feature
  --labels FILE       the same as a separate .npy or .csv, one row per point (an empty
                      cell is an unknown label); with several columns, --labels-col
                      NAME says which one
  --pairs FILE        a CSV (or .npy) with rows i,j,same: rows i and j of the features are
                      in the same cluster (1) or not (0); row numbers start at 0

examples:
  dmshift fit X.csv --labels-col label -o model
  dmshift fit X.npy --labels y_partial.npy -o model --param max_steps=500 --param n_seeds=200
  dmshift fit X.npy --pairs pairs.csv -o model --method kcl --param n_clusters=20
  dmshift fit --method dms --list-params         # every parameter and its default
  dmshift fit X.npy --labels y.npy -o model --checkpoint-dir ckpt   # checkpoint every 100 steps
  dmshift fit X.npy --labels y.npy -o model --checkpoint-dir ckpt --resume  # after Ctrl-C or a crash

--param values are JSON or Python literals (30, 0.5, true, null, [64,32]); anything else
is a string (--param kernel=concat). Unknown parameter names are refused."""

_PREDICT_EPILOG = """\
The output type follows the extension: .csv (columns label, confidence), .npz (arrays
labels, confidence) or .npy (labels only). Label -1 means noise: no cluster is confident.

examples:
  dmshift predict model X_new.csv -o labels.csv
  dmshift predict model X_new.npy -o labels.npy --plot clusters.png
  torchrun --nproc_per_node 4 -m dmshift.cli predict model X.npy -o labels.npy --distributed"""

_EVALUATE_EPILOG = """\
Both files are .npy, .npz or .csv with one label per point (a CSV written by 'dmshift
predict' is read from its 'label' column). Predicted -1 is noise and counts as wrong;
points whose reference label is -1 or empty are skipped.

examples:
  dmshift evaluate labels.csv truth.csv
  dmshift evaluate labels.npy truth.csv --true-col class --json"""

_DEMO_EPILOG = """\
Trains DMSClustering with its default parameters on scikit-learn's digits (1,797 images
of 8 x 8 pixels) with the class of a random 5% of the images as side information, and
compares it with k-means++ and Ward (given the true k = 10) and HDBSCAN on the other 95%.

examples:
  dmshift demo
  dmshift demo --seed 1 --fraction 0.1 --out digits.png
  dmshift --quiet demo --json"""

_BENCH_EPILOG = """\
Everything after 'bench' is passed to dmshift.bench; run 'dmshift bench --help' for its options."""


_HANDLER_NAME = "dmshift-cli"


def _log_to_stderr(quiet: bool, verbose: bool) -> None:
    """Send the "dmshift" logger's records to stderr: warnings only when quiet, debug when verbose.

    Called again (``main`` run twice in one process), it replaces its handler rather than
    adding a second one, so no message is printed twice.
    """
    log = logging.getLogger("dmshift")
    for h in list(log.handlers):
        if h.get_name() == _HANDLER_NAME:
            log.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    log.propagate = False


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: 'dmshift fit: error: ... (see --help)'."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _global_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    d = (lambda v: argparse.SUPPRESS) if suppress else (lambda v: v)
    g = parser.add_argument_group("global options")
    g.add_argument("--device", default=d("auto"), metavar="DEV",
                   help="torch device: auto (GPU when there is one), cpu, cuda, cuda:1 (default: auto)")
    g.add_argument("--seed", type=int, default=d(None), metavar="N", help="random seed (default: none; demo: 0)")
    q = g.add_mutually_exclusive_group()
    q.add_argument("-q", "--quiet", action="store_true", default=d(False),
                   help="no progress bars or messages; results and errors only")
    q.add_argument("-v", "--verbose", action="store_true", default=d(False),
                   help="debug messages, and tracebacks on errors")


def build_parser() -> argparse.ArgumentParser:
    """The ``dmshift`` argument parser (global options work before or after the command)."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = _Parser(prog="dmshift", formatter_class=fmt, epilog=_MAIN_EPILOG,
                     description="Clustering learnt from side information: Differentiable Mean Shift and its peers.")
    from .. import __version__
    parser.add_argument("--version", action="version", version=f"dmshift {__version__}")
    _global_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def add(name, help_, epilog, func):
        p = sub.add_parser(name, help=help_, description=help_[0].upper() + help_[1:] + ".", epilog=epilog,
                           formatter_class=fmt)
        _global_options(p, suppress=True)
        p.set_defaults(func=func)
        return p

    p = add("demo", "compare DMS with classical clustering on digits and draw the result", _DEMO_EPILOG, cmd_demo)
    p.add_argument("--fraction", type=float, default=0.05, metavar="F",
                   help="share of the points with side information (default: 0.05)")
    p.add_argument("--out", default="demo.png", metavar="PNG", help="figure to write (default: demo.png)")
    p.add_argument("--no-plot", action="store_true", help="write no figure")
    p.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT, metavar="S",
                   help="seconds of DMS training after which the best model so far is used "
                        f"(default: {DEFAULT_TIME_LIMIT:g}; 0: no limit)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")

    p = add("fit", "learn a clustering from features and side information, and save the model", _FIT_EPILOG,
            cmd_fit)
    p.add_argument("data", nargs="?", metavar="FEATURES", help="features: .npy, .npz, .csv or .parquet")
    p.add_argument("-o", "--out", metavar="MODEL_DIR", help="model folder to write (a new or empty folder)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the dmshift model already in MODEL_DIR (nothing else is ever replaced)")
    p.add_argument("--method", default="dms", choices=list(METHODS), help="clustering method (default: dms)")
    p.add_argument("--labels-col", metavar="NAME",
                   help="column with the partial labels: of FEATURES, or of the --labels file when given")
    p.add_argument("--labels", metavar="FILE", help="partial labels file (.npy or .csv; -1 or empty = unknown)")
    p.add_argument("--pairs", metavar="FILE", help="pairs file: rows i,j,same")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="estimator parameter (repeatable)")
    p.add_argument("--standardize", choices=("auto", "feature", "global", "none"),
                   help="DMS's default 'auto': per feature or global, whichever the held-back side information "
                        "prefers; 'feature': each feature to unit variance (the other methods' default); 'global': "
                        "all by one common scale (keeps relative feature scales); 'none': the features as they are")
    p.add_argument("--labels-out", metavar="FILE", help="also write the labels of the training points")
    p.add_argument("--list-params", action="store_true", help="list the method's parameters and exit")
    p.add_argument("--checkpoint-dir", metavar="DIR",
                   help="write training checkpoints to DIR (every --param checkpoint_every=N steps, default 100)")
    p.add_argument("--resume", action="store_true",
                   help="continue the training whose checkpoints are in --checkpoint-dir (same data and parameters)")

    p = add("predict", "label points with a saved model", _PREDICT_EPILOG, cmd_predict)
    p.add_argument("model", metavar="MODEL_DIR", help="model folder written by 'dmshift fit'")
    p.add_argument("data", nargs="+", metavar="FEATURES", help="features: .npy, .npz, .csv or .parquet")
    p.add_argument("-o", "--out", required=True, metavar="LABELS", help="labels file: .csv, .npz or .npy")
    p.add_argument("--labels-col", metavar="NAME", help="a column of FEATURES that is not a feature (skipped)")
    p.add_argument("--plot", metavar="PNG", help="also draw the points coloured by cluster")
    p.add_argument("--no-confidence", action="store_true", help="write labels only")
    p.add_argument("--distributed", action="store_true",
                   help="run on every rank of a torchrun launch, each labelling its share of the rows")
    p.add_argument("--recluster", action="store_true",
                   help="with --distributed: cluster the points anew with the model's kernel")
    p.add_argument("--per-shard", action="store_true", help="with --distributed: one output file per rank")

    p = add("evaluate", "score predicted labels against reference labels", _EVALUATE_EPILOG, cmd_evaluate)
    p.add_argument("pred", metavar="PREDICTED", help="predicted labels file")
    p.add_argument("true", metavar="REFERENCE", help="reference labels file")
    p.add_argument("--pred-col", metavar="NAME", help="column of PREDICTED holding the labels")
    p.add_argument("--true-col", metavar="NAME", help="column of REFERENCE holding the labels")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")

    p = sub.add_parser("bench", help="run the benchmarks of dmshift.bench (arguments passed on)",
                       epilog=_BENCH_EPILOG, formatter_class=fmt, add_help=False)
    p.set_defaults(func=cmd_bench, bench_args=[])
    return parser


def _split_bench(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """Split ``[global options] bench REST`` into the part for this parser and REST for dmshift.bench."""
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok in _GLOBAL_VALUED:
            i += 2
            continue
        if tok in _GLOBAL_FLAGS or any(tok.startswith(f + "=") for f in _GLOBAL_VALUED):
            i += 1
            continue
        if tok == "bench":
            return argv[:i + 1], argv[i + 1:]
        return argv, None
    return argv, None


def main(argv: list[str] | None = None) -> int:
    """Run the ``dmshift`` command; returns the exit status (0 on success)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    own, bench_args = _split_bench(argv)
    args = build_parser().parse_args(own)
    if bench_args is not None:
        args.bench_args = bench_args
    _log_to_stderr(args.quiet, args.verbose)

    def show_warning(message, category, filename, lineno, file=None, line=None):
        print(f"dmshift {args.command}: warning: {' '.join(str(message).split())}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show_warning  # one line per warning, no source line
            return int(args.func(args) or 0)
    except BrokenPipeError:  # output piped into a program that stopped reading (| head)
        sys.stderr.close()
        return 0
    except Interrupted as exc:
        print(f"dmshift {args.command}: interrupted; {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"dmshift {args.command}: interrupted", file=sys.stderr)
        return 130
    except (UserError, ValueError, ImportError, OSError) as exc:
        if args.verbose:
            traceback.print_exc()
        msg = " ".join(str(exc).split()) or type(exc).__name__
        print(f"dmshift {args.command}: error: {msg}", file=sys.stderr)
        return 1
