"""The experiments of the DMS paper's §4, as a registry of :class:`Experiment`.

* ``table3``: intrinsic tasks (MNIST, COIL-100, AR faces, Reuters R8), DMS vs the baselines.
* ``table2``: non-intrinsic tasks on the same features (MNIST parity and digit >= 5, COIL-100
  pose in 8 bins, AR condition and session, TREC coarse and fine).
* ``table4``: ablation of the training shift steps T and the kernel depth.
* ``ablation``: what the learnt kernel, the input-space graph and each rule after training
  (self-training, smoothing, the tree fallback) contribute to DMS's default labels.
* ``fig5``: side information from some classes only, a few points per class; scores on the
  points of seen and of unseen classes apart.
* ``threshold``, ``seeds``: the merge threshold, and the number of random seeds (plus
  adaptive seeding), with one trained kernel per seed re-used for every setting.

Every experiment loops over cases (data set, task), random seeds and methods or settings,
and adds one row per fit to a :class:`~dmshift.bench.report.Results`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from .data import Case
from .methods import METHODS, Fit, Options, depends_on_seed, run_method
from .protocol import Split, random_split, restricted_split, score
from .report import Results

__all__ = ["Experiment", "Context", "EXPERIMENTS", "recluster"]

logger = logging.getLogger("dmshift")

#: max_steps of every learned method in a --quick run (unless --max-steps says otherwise)
QUICK_MAX_STEPS = 10

#: non-intrinsic tasks of each data set for table2
TABLE2_TASKS = {"mnist": ("parity", "ge5"), "mnist10k": ("parity", "ge5"), "digits": ("parity", "ge5"),
                "usps": ("parity", "ge5"), "coil100": ("pose8",), "ar_faces": ("condition", "session"),
                "trec": ("coarse", "fine")}


#: the DMS paper's Table 3 figures for DMS (subtract), (ACC, NMI, AMI), where a task here is the paper's
PAPER_TABLE3 = {("mnist", "digit"): ("MNIST, 70,000 images", (0.976, 0.939, 0.939)),
                ("coil100", "object"): ("COIL-100 at 128×128 (here 32×32)", (0.990, 0.996, 0.994))}


@dataclass(frozen=True)
class Context:
    """What a run was asked for: seeds, methods, the side-information share and shared fit options."""

    seeds: tuple[int, ...]
    methods: tuple[str, ...]
    opts: Options
    fraction: float = 0.05
    quick: bool = False


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    description: str
    datasets: tuple[str, ...]
    run: Callable[[Context, Case, Results], None]
    methods: tuple[str, ...]  # default methods
    grid: tuple = ()
    quick_grid: tuple = ()
    quick_datasets: tuple[str, ...] = ("digits",)
    learned_only: bool = False  # only methods that learn from side information make sense
    dms_only: bool = False  # the experiment sweeps DMS parameters
    restricted: bool = False  # side information from some classes only (fig5), not a random share
    tasks: dict = field(default_factory=dict)

    def cases(self, names) -> list[tuple[str, str | None]]:
        """(data set, task) pairs from names such as ``mnist`` or ``ar_faces:session``."""
        out = []
        for name in names:
            ds, _, task = name.partition(":")
            if task:
                out.append((ds, task))
            elif ds in self.tasks:
                out += [(ds, t) for t in self.tasks[ds]]
            elif self.tasks:
                raise ValueError(f"experiment {self.name!r} has no tasks for data set {ds!r}: name one as "
                                 f"{ds}:TASK, or choose from {', '.join(self.tasks)}")
            else:
                out.append((ds, None))
        return out


# ---------------------------------------------------------------------------- helpers
def _fit(ctx: Context, results: Results, case: Case, method: str, split: Split, seed: int,
         opts: Options | None = None) -> Fit | None:
    """Run one method; a failure is logged and listed in the results, and the run goes on."""
    try:
        return run_method(method, case.X, split.y_side, case.k, seed, opts or ctx.opts)
    except (ValueError, RuntimeError, MemoryError) as exc:
        msg = " ".join(str(exc).split())
        logger.warning("%s on %s:%s, seed %d failed: %s", method, case.dataset, case.task, seed, msg)
        results.skip(f"{METHODS[method][0]} on {case.dataset}:{case.task}, seed {seed}: "
                     f"{type(exc).__name__}: {msg[:300]}")
        return None


def _add(results: Results, case: Case, method: str, setting: str, seed: int, split: Split, labels, seconds,
         note="", subset="scored", idx=None):
    idx = split.scored if idx is None else idx
    s = score(case.y, labels, idx)
    results.add(dataset=case.dataset, task=case.task, n=case.n, k=case.k, method=METHODS[method][0],
                setting=setting, subset=subset, seed=seed, n_side=int(split.side.size), n_scored=int(idx.size),
                seconds=float(seconds), note=note, **s)
    logger.info("%s:%s %s %s seed %d [%s]: ACC %.3f NMI %.3f AMI %.3f, %d clusters, %.1f%% noise, %.1f s",
                case.dataset, case.task, method, setting, seed, subset, s["acc"], s["nmi"], s["ami"],
                s["n_clusters"], 100 * s["noise"], seconds)


def _dms_methods(ctx: Context) -> list[str]:
    return [m for m in ctx.methods if m.startswith("dms-")]


def recluster(model, X: np.ndarray, seed: int, y_side: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Re-run DMS inference (seeds, shifting, merging, assignment) with the fitted kernel and current parameters.

    :meth:`DMSClustering.recluster <dmshift.DMSClustering.recluster>`, timed, so that a
    sweep over inference parameters trains one kernel instead of one per setting.
    ``y_side`` (the partial labels of the fit) is what the fallback and smoothing read;
    without it the labels are not smoothed.
    """
    t0 = time.perf_counter()
    model.recluster(X, y_side, random_state=int(seed))  # X is the training data
    return np.asarray(model.labels_, dtype=np.int64), time.perf_counter() - t0


def _grid(exp: Experiment, ctx: Context):
    return exp.quick_grid if ctx.quick else exp.grid


# ---------------------------------------------------------------------------- experiments
def _compare(exp, ctx, case, results):
    """table3 / table2: every method on one task, side information on a random share of the points.

    A method whose output does not depend on the seed (and ignores the side information) is
    fitted once; each seed scores it on that seed's points without side information.
    """
    if exp.name == "table3" and (case.dataset, case.task) in PAPER_TABLE3:
        results.references[(case.dataset, case.task)] = PAPER_TABLE3[(case.dataset, case.task)]
    shared: dict[str, Fit] = {}
    for seed in ctx.seeds:
        split = random_split(case.y, ctx.fraction, seed)
        for method in ctx.methods:
            fit = shared.get(method) or _fit(ctx, results, case, method, split, seed)
            if fit is None:
                continue
            note = fit.note
            if not METHODS[method][2] and not depends_on_seed(method, case.n):
                note = "; ".join(filter(None, [note, "deterministic: one fit scored per seed"]))
                if method not in shared:
                    shared[method] = fit
            _add(results, case, method, "", seed, split, fit.labels, fit.seconds, note)


def _ablation(exp, ctx, case, results):
    """table4: DMS with one parameter changed at a time; identical configurations are fitted once."""
    from ..estimators.dms import DMSClustering
    for method in _dms_methods(ctx):
        for seed in ctx.seeds:
            split = random_split(case.y, ctx.fraction, seed)
            done: dict[tuple, tuple[str, Fit]] = {}
            for param, value in _grid(exp, ctx):
                setting = f"{param}={value}"
                params = {**ctx.opts.dms_params, param: value}
                key = tuple(sorted((k, repr(v)) for k, v in DMSClustering(**params).get_params().items()
                                   if k != "kernel"))
                if key in done:
                    first, fit = done[key]
                    note = f"same configuration as {first}, fitted once"
                else:
                    fit = _fit(ctx, results, case, method, split, seed, replace(ctx.opts, dms_params=params))
                    if fit is None:
                        continue
                    done[key], note = (setting, fit), fit.note
                _add(results, case, method, setting, seed, split, fit.labels, fit.seconds, note)


def _components(exp, ctx, case, results):
    """ablation: DMS at its defaults, with parts switched off by public parameters, and label spreading alone.

    Each DMS setting of the grid is a dict of ``DMSClustering`` parameters laid over the
    run's ``--dms`` parameters (and over ``--max-steps``, which "kernel untrained" replaces
    by one step). Methods other than DMS run once per seed with setting ``input-space
    graph alone`` for label spreading: the side information spread over the k-NN graph of
    the features, with no kernel at all.
    """
    for seed in ctx.seeds:
        split = random_split(case.y, ctx.fraction, seed)
        for method in ctx.methods:
            if not method.startswith("dms-"):
                fit = _fit(ctx, results, case, method, split, seed)
                if fit is not None:
                    setting = "input-space graph alone" if method == "label-spreading" else ""
                    _add(results, case, method, setting, seed, split, fit.labels, fit.seconds, fit.note)
                continue
            for setting, params in _grid(exp, ctx):
                opts = replace(ctx.opts, dms_params={**ctx.opts.dms_params, **params})
                fit = _fit(ctx, results, case, method, split, seed, opts)
                if fit is not None:
                    _add(results, case, method, setting, seed, split, fit.labels, fit.seconds, fit.note)


def _restricted(exp, ctx, case, results):
    """fig5: side information from a share of the classes, at most so many points per class."""
    for class_fraction, per_class in _grid(exp, ctx):
        setting = f"classes {class_fraction:.0%}, <= {per_class} per class"
        for seed in ctx.seeds:
            split = restricted_split(case.y, class_fraction, per_class, seed)
            seen = np.isin(case.y[split.scored], split.seen_classes)
            subsets = [("all", split.scored), ("seen classes", split.scored[seen]),
                       ("unseen classes", split.scored[~seen])]
            for method in ctx.methods:
                fit = _fit(ctx, results, case, method, split, seed)
                if fit is None:
                    continue
                for subset, idx in subsets:
                    if idx.size:
                        _add(results, case, method, setting, seed, split, fit.labels, fit.seconds, fit.note,
                             subset=subset, idx=idx)


def _inference_sweep(exp, ctx, case, results):
    """threshold / seeds: one kernel per seed, inference re-run for each setting."""
    for method in _dms_methods(ctx):
        for seed in ctx.seeds:
            split = random_split(case.y, ctx.fraction, seed)
            fit = _fit(ctx, results, case, method, split, seed)
            if fit is None:
                continue
            model = fit.model
            defaults = ", ".join(f"{p}={model.get_params()[p]}" for p in ("threshold", "seeding", "n_seeds"))
            _add(results, case, method, f"fit ({defaults})", seed, split, fit.labels, fit.seconds,
                 "training and inference" + (f"; {fit.note}" if fit.note else ""))
            for params in _grid(exp, ctx):
                model.set_params(**params)
                labels, secs = recluster(model, case.X, seed, split.y_side)
                setting = ", ".join(f"{k}={v}" for k, v in params.items())
                _add(results, case, method, setting, seed, split, labels, secs,
                     "inference only, with the kernel of the fit row")


#: setting of the ablation -> the DMSClustering parameters it changes from the defaults
ABLATION_SETTINGS = {
    "default": {},
    "labels from the fused graph": {"smoothing": "fused", "fallback": None},
    "the fused graph seeded by the tree's clusters": {"smoothing": "tree_seeded", "fallback": None},
    "labels from the learnt graph": {"smoothing": "learnt", "fallback": None},
    "labels from the input graph": {"smoothing": "input", "fallback": None},
    "kernel alone": {"smoothing": None, "fallback": None},
    "no validation": {"validation_fraction": 0.0},
    "every fold, scored by the final kernel": {"settings": {"validation": {"cross_fit": False}}},
    "a quarter held back from training": {"patience": 10**6},
    "with self-training": {"self_training": 1},
    "kernel untrained": {"max_steps": 1},
    "kernel untrained, learnt graph": {"max_steps": 1, "smoothing": "learnt", "fallback": None},
    "kernel untrained alone": {"max_steps": 1, "smoothing": None, "fallback": None},
    "no search for unseen groups": {"find_unseen": False},
    "unseen groups, one test per part": {"settings": {"novelty": {"null_draws": 0}}},
    "bare clusters absorbed": {"settings": {"side_info": {"absorb": True}}},
    "bare clusters tested by chance": {"settings": {"novelty": {"test_bare_clusters": True}}},
}
_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
_N_SEEDS = (10, 20, 50, 100, 200, 500)

EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in [
    Experiment("table3", "Intrinsic tasks (paper Table 3)",
               "DMS (library defaults, no per-data-set tuning) against classical clustering on the intrinsic "
               "task of each data set.",
               ("mnist", "coil100", "ar_faces", "r8"), _compare,
               ("dms-subtract", "dms-concat", "label-spreading", "ss-kmeans", "kmeans", "ward", "dbscan", "hdbscan",
                "meanshift")),
    Experiment("table2", "Non-intrinsic tasks on the same features (paper Table 2)",
               "The same features clustered by another labelling: only the side information changes for DMS; "
               "the baselines are given the task's number of classes.",
               ("mnist:parity", "mnist:ge5", "coil100:pose8", "ar_faces:condition", "ar_faces:session",
                "trec:coarse", "trec:fine"), _compare,
               ("dms-subtract", "dms-concat", "label-spreading", "ss-kmeans", "kmeans", "ward", "dbscan", "hdbscan",
                "meanshift"),
               tasks=TABLE2_TASKS),
    Experiment("table4", "Ablation: training shift steps and kernel depth (paper Table 4)",
               "DMS with one parameter changed from the library defaults at a time: n_shift_steps (T, mean-shift "
               "steps in training) and n_layers (fully connected layers of the kernel).",
               ("orl", "mnist10k"), _ablation, ("dms-subtract",),
               grid=tuple([("n_shift_steps", t) for t in (2, 4, 6, 8)] + [("n_layers", d) for d in (1, 2, 3, 4)]),
               quick_grid=(("n_shift_steps", 2), ("n_shift_steps", 4), ("n_layers", 1), ("n_layers", 3)),
               learned_only=True, dms_only=True),
    Experiment("ablation", "Ablation: what the kernel, the graph and each rule contribute",
               "DMS at the library defaults (labels from the candidate chosen on held-back side information), then "
               "each candidate forced through public DMSClustering parameters: the fused graph (smoothing='fused'), the learnt graph "
               "(smoothing='learnt'), the input graph (smoothing='input'), the kernel's own mean-shift clusters "
               "(smoothing=None); no validation (validation_fraction=0: per-feature scaling and the learnt graph); "
               "the candidates compared on every fold with the final kernel, which trained on the folds' labels "
               "(cross_fit=False; the default compares them on the first fold, the learnt graph from the kernel "
               "as it was before it saw that fold's labels); a "
               "quarter of the side information held back from training and the labels chosen on it (a patience "
               "that never stops, the pre-k-fold validation); with a round of "
               "self-training (self_training=1); the kernel untrained (max_steps=1), at the defaults, with the "
               "learnt graph and alone; no search for unseen groups (find_unseen=False), its threshold one test per "
               "part instead of calibrated on random draws (null_draws=0), the clusters partial labels leave bare "
               "absorbed (absorb=True). Label spreading from the side information over the input-space k-NN graph "
               "(scikit-learn's LabelSpreading) is the graph alone, with no kernel. The gap between a candidate "
               "with the kernel trained and untrained is what training taught it.",
               ("digits", "coil20", "ar_faces", "mnist10k"), _components, ("dms-subtract", "label-spreading"),
               grid=tuple(ABLATION_SETTINGS.items()),
               quick_grid=tuple((s, ABLATION_SETTINGS[s]) for s in ("default", "kernel alone", "kernel untrained",
                                                                    "labels from the learnt graph")),
               learned_only=True),
    Experiment("fig5", "Side information from some classes only (paper Fig. 5)",
               "Side information from a random share of the classes, at most so many random points per class, "
               "subtract vs concat kernel. Scores on all points without side information, and on those of the "
               "classes with side information (seen) and without (unseen) apart: good scores on unseen classes "
               "mean new classes are found.",
               ("mnist10k", "coil100"), _restricted, ("dms-subtract", "dms-concat", "label-spreading", "ss-kmeans"),
               grid=tuple((f, m) for f in (1.0, 0.5, 0.25) for m in (5, 50)),
               quick_grid=((1.0, 5), (0.5, 5)), learned_only=True, restricted=True),
    Experiment("threshold", "Merge threshold of DMS",
               "One kernel per seed (library defaults); inference re-run with each merge threshold (centers "
               "whose similarity reaches it are merged). The fit row is DMSClustering.fit as is (training and "
               "inference); the other rows re-run only inference and draw their seeds from default_rng(seed), "
               "not from the generator state left after training, so the row with the default threshold can "
               "differ from the fit row by the seed draw alone. Their time is inference only.",
               ("digits", "mnist10k"), _inference_sweep, ("dms-subtract",),
               grid=tuple({"threshold": t} for t in _THRESHOLDS),
               quick_grid=({"threshold": 0.2}, {"threshold": 0.8}), learned_only=True, dms_only=True),
    Experiment("seeds", "Number of seeds of DMS inference, and adaptive seeding",
               "One kernel per seed (library defaults); inference re-run with n_seeds random seeds, and with "
               "adaptive seeding (seeds drawn from points no center covers yet, n_seeds a cap). The fit row is "
               "DMSClustering.fit as is; the other rows re-run only inference with seeds drawn from "
               "default_rng(seed), and their time is inference only.",
               ("digits", "mnist10k"), _inference_sweep, ("dms-subtract",),
               grid=tuple([{"seeding": "random", "n_seeds": m} for m in _N_SEEDS]
                          + [{"seeding": "adaptive", "n_seeds": 500}]),
               quick_grid=({"seeding": "random", "n_seeds": 10}, {"seeding": "adaptive", "n_seeds": 500}),
               learned_only=True, dms_only=True),
]}


def quick_context(ctx: Context) -> Context:
    """A --quick run trains every learned method for only a few steps."""
    if ctx.opts.max_steps is not None:
        return ctx
    return replace(ctx, opts=replace(ctx.opts, max_steps=QUICK_MAX_STEPS))

