"""The ``dmshift demo``: DMS against classical clustering on scikit-learn's digits.

Side information (the class) is given for a random ``fraction`` of the 1,797 images;
:class:`~dmshift.estimators.dms.DMSClustering` with its default parameters learns a
kernel from it and clusters all points without being told the number of classes. It is
compared with k-means++ and Ward (both given the true k = 10) and HDBSCAN (scikit-learn
defaults), which use no side information. Every method is scored on the points *without*
side information, with noise counted as wrong. A figure shows the clusters on a 2-D PCA
projection and the confusion matrix of DMS against the true digits.

:func:`run_demo` returns the results as a dict; :func:`format_table` renders them.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from .constants import NOISE, UNLABELLED

__all__ = ["run_demo", "format_table", "partial_labels", "DEFAULT_TIME_LIMIT"]

logger = logging.getLogger("dmshift")

#: seconds of DMS training after which the best kernel so far is used, so that the demo
#: ends in about three minutes on two CPU cores whatever the default ``max_steps``
DEFAULT_TIME_LIMIT = 140.0


def partial_labels(y: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A copy of ``y`` with all but a random ``fraction`` of the points set to UNLABELLED (-1).

    At least one point is kept, and at least two when there are two points.
    """
    n = len(y)
    m = min(n, max(2, int(round(fraction * n))))
    keep = rng.choice(n, size=m, replace=False)
    out = np.full(n, UNLABELLED, dtype=np.int64)
    out[keep] = y[keep]
    return out


def _score(y_true, y_pred, seconds):
    from .metrics import evaluate
    r = evaluate(y_true, y_pred)
    return {"acc": r["acc"], "nmi": r["nmi"], "ami": r["ami"], "n_clusters": r["n_clusters"],
            "noise": r["noise"], "seconds": float(seconds)}


def _baselines(X, k, seed):
    """Labels and seconds of each classical method (none uses side information)."""
    from sklearn.cluster import HDBSCAN, AgglomerativeClustering, KMeans

    methods = {
        f"k-means++ (k={k})": lambda: KMeans(n_clusters=k, init="k-means++", random_state=seed).fit_predict(X),
        f"Ward (k={k})": lambda: AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(X),
        "HDBSCAN": lambda: HDBSCAN(copy=True).fit_predict(X),  # copy: only silences a FutureWarning
    }
    out = {}
    for name, fn in methods.items():
        t0 = time.perf_counter()
        labels = np.asarray(fn(), dtype=np.int64)
        labels[labels < 0] = NOISE
        out[name] = (labels, time.perf_counter() - t0)
    return out


def _has_matplotlib() -> bool:
    import importlib.util
    return importlib.util.find_spec("matplotlib") is not None


def _figure(X, y, labels, test, path, title):
    from .plot import cluster_colors, confusion, matched_colors, new_figure, save_figure, scatter_2d

    fig, axes = new_figure((16.0, 5.2), ncols=3)
    classes = np.unique(y)
    digit_colors = {c: tuple(col) for c, col in zip(classes, cluster_colors(classes.size))}
    # a DMS cluster is drawn in the colour of the digit it is matched to, so the panels read alike
    scatter_2d(X, y, ax=axes[0], title="true digits (PCA)", legend=True, colors=digit_colors)
    scatter_2d(X, labels, ax=axes[1], title=title, colors=matched_colors(y, labels, digit_colors))
    confusion(y[test], labels[test], ax=axes[2], title="DMS vs true digits (points without side information)")
    return save_figure(fig, path)


def run_demo(*, seed: int = 0, fraction: float = 0.05, out: str | os.PathLike | None = "demo.png",
             device: str = "auto", time_limit: float | None = DEFAULT_TIME_LIMIT, progress: bool = True,
             _n_samples: int | None = None, _dms_params: dict | None = None) -> dict:
    """Cluster digits with DMS from partial labels and compare with classical methods.

    Parameters
    ----------
    seed : int, default=0
        Chooses the points with side information and seeds every method.
    fraction : float, default=0.05
        Share of the points whose class is given to DMS.
    out : path or None, default="demo.png"
        Where the figure goes; None writes none. Needs matplotlib.
    device : str, default="auto"
    time_limit : float or None, default=140
        Seconds of DMS training after which the best kernel so far is kept.
    progress : bool, default=True
        Show a progress bar while DMS trains.
    _n_samples : int, optional
        For tests only: cluster a random subset of this many points.
    _dms_params : dict, optional
        For tests only: parameters of DMSClustering that replace its defaults (e.g. fewer
        ``max_steps``). The demo itself always uses the defaults.

    Returns
    -------
    dict
        ``dataset``, ``n_samples``, ``n_side_info``, ``n_eval``, ``n_classes``, ``seed``,
        ``fraction``, ``methods`` (name -> acc, nmi, ami, n_clusters, noise, seconds, in
        the order DMS, k-means++, Ward, HDBSCAN), ``dms_training`` (steps, stop reason,
        seconds) and ``figure`` (the path written, or None).
    """
    from ._validation import check_fraction
    from .datasets import load
    from .estimators.dms import DMSClustering

    check_fraction("fraction", fraction, low=0.0, high=1.0)
    if out is not None and not _has_matplotlib():
        logger.warning('matplotlib is not installed, so no figure is written (pip install "dmshift[plot]").')
        out = None
    rng = np.random.default_rng(seed)
    ds = load("digits")
    X, y = ds.X, ds.y
    if _n_samples is not None and _n_samples < len(y):
        idx = np.sort(rng.choice(len(y), size=_n_samples, replace=False))
        X, y = X[idx], y[idx]
    k = int(np.unique(y).size)
    y_side = partial_labels(y, fraction, rng)
    test = y_side == UNLABELLED
    logger.info("digits: %d images of %d x %d pixels, %d classes; side information for %d (%.0f%%), "
                "scores on the other %d", len(y), 8, 8, k, int((~test).sum()), 100 * (~test).mean(), int(test.sum()))

    params = {"random_state": seed, "device": device, "verbose": progress, "time_limit": time_limit}
    params.update(_dms_params or {})
    dms = DMSClustering(**params)
    logger.info("training DMS (default parameters) ...")
    t0 = time.perf_counter()
    dms.fit(X, y_side)
    dms_seconds = time.perf_counter() - t0
    tr = dms.training_
    if tr.get("stop_reason") == "time_limit":
        logger.warning("DMS training reached the %.0f s limit after %d of %d steps; the kernel so far is used "
                       "(--time-limit 0 trains all steps).", time_limit, tr["steps"], dms.max_steps)
    methods = {"DMS (subtract)": _score(y[test], dms.labels_[test], dms_seconds)}
    logger.info("running k-means++, Ward and HDBSCAN ...")
    base = _baselines(X, k, seed)
    for name, (labels, secs) in base.items():
        methods[name] = _score(y[test], labels[test], secs)

    figure = None
    if out is not None:
        figure = str(_figure(X, y, dms.labels_, test, Path(out), "DMS clusters (PCA), noise grey"))
    return {
        "dataset": "digits", "n_samples": int(len(y)), "n_side_info": int((~test).sum()), "n_eval": int(test.sum()),
        "n_classes": k, "seed": seed, "fraction": fraction, "methods": methods,
        "dms_training": {"steps": int(tr["steps"]), "max_steps": int(dms.max_steps),
                         "stop_reason": tr.get("stop_reason"), "seconds": float(tr.get("seconds", dms_seconds))},
        "figure": figure,
    }


def format_table(results: dict) -> str:
    """The methods of a :func:`run_demo` result as an aligned text table."""
    head = ("method", "ACC", "NMI", "AMI", "clusters", "noise", "time")
    rows = [head]
    for name, r in results["methods"].items():
        rows.append((name, f"{r['acc']:.3f}", f"{r['nmi']:.3f}", f"{r['ami']:.3f}", str(r["n_clusters"]),
                     f"{r['noise']:.1%}", f"{r['seconds']:.1f} s"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = []
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    title = (f"digits: {results['n_samples']} points, {results['n_classes']} classes; side information for "
             f"{results['n_side_info']} ({results['fraction']:.0%}); scored on the other {results['n_eval']} "
             f"(noise counts as wrong)")
    note = "k-means++ and Ward are given the true number of classes; DMS and HDBSCAN find it."
    return "\n".join([title, "", *lines, "", note])
