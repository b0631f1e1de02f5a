"""The methods compared in the benchmarks: DMS, its peers and scikit-learn's classical clusterers.

Each method is a function ``(X, y_side, k, seed, opts) -> Fit`` that clusters every point of
``X``. DMS and the peers (KCL, MCL) learn from the partial labels ``y_side``; the classical
methods ignore them and are given the true number of classes ``k`` where they take one.
DMS runs with the library defaults; :class:`Options` carries only what the command line
overrides for every learned method (``max_steps``, ``time_limit``, ``device``) and the
per-experiment parameter sweeps (``dms_params``).

Choices for the classical methods (also written into every results file, see :data:`NOTES`):

* k-means++: ``KMeans(n_clusters=k, init="k-means++")``, scikit-learn's ``n_init="auto"``.
* Ward: ``AgglomerativeClustering(n_clusters=k, linkage="ward")``, no connectivity. Its memory
  is quadratic, so above :data:`WARD_MAX` points it is fitted on a random subsample and the
  other points join the nearest Ward centroid.
* DBSCAN: ``min_samples=5`` (scikit-learn's default) and ``eps`` from the k-distance heuristic:
  the distances of up to :data:`KDIST_QUERIES` random points to their 4th nearest other point,
  sorted, and ``eps`` at the knee, the point farthest below the chord from the smallest to the
  largest distance (both axes scaled to [0, 1]).
* HDBSCAN: ``sklearn.cluster.HDBSCAN`` with its defaults.
* MeanShift: :class:`dmshift.estimators.meanshift.MeanShift` (scikit-learn's algorithm, flat
  kernel, bandwidth from ``estimate_bandwidth`` with quantile 0.3); above :data:`MEANSHIFT_SEEDS`
  points it starts from that many random points instead of all.
* KCL, MCL: ``n_clusters=k`` (an upper bound: outputs may stay empty), library defaults.

The peers that use the same partial labels as DMS and learn no similarity:

* LabelSpreading: :class:`dmshift.estimators.label_spreading.LabelSpreadingClustering`,
  scikit-learn's ``LabelSpreading(kernel="knn")`` with its defaults (7 neighbours,
  alpha 0.2, 30 iterations) on the features as given.
* Semi-supervised k-means: :class:`dmshift.estimators.ss_kmeans.SemiSupervisedKMeans`,
  GCD's k-means on L2-normalised features, k estimated (not given), ``random_state=seed``.

Every fit is timed around the runner in :func:`run_method`; that time is the results'
``seconds`` column.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..constants import NOISE

__all__ = ["Fit", "Options", "METHODS", "DEFAULT_METHODS", "NOTES", "PEER_NOTES", "run_method", "dbscan_eps",
           "depends_on_seed"]

WARD_MAX = 20_000
KDIST_QUERIES = 2_000
MEANSHIFT_SEEDS = 2_000
DBSCAN_MIN_SAMPLES = 5


@dataclass(frozen=True)
class Options:
    """Settings shared by every fit of a run."""

    device: str = "auto"
    max_steps: int | None = None
    time_limit: float | None = None
    dms_params: dict = field(default_factory=dict)


@dataclass
class Fit:
    """Labels of every point (NOISE = -1), the wall time of the fit, notes for the results file, the model."""

    labels: np.ndarray
    seconds: float = 0.0  # set by run_method, which times every runner around its fit
    note: str = ""
    model: object = None


def _learned_params(opts: Options, seed: int) -> dict:
    p = {"random_state": seed, "device": opts.device}
    if opts.max_steps is not None:
        p["max_steps"] = opts.max_steps
    if opts.time_limit is not None:
        p["time_limit"] = opts.time_limit
    return p


def _training_note(model) -> str:
    tr = getattr(model, "training_", None) or {}
    if tr.get("stop_reason") == "time_limit":
        return f"time limit after {tr.get('steps')} steps"
    return ""


def _dms(kernel):
    def run(X, y_side, k, seed, opts):
        from ..estimators.dms import DMSClustering

        params = _learned_params(opts, seed)
        params.update(opts.dms_params)
        params["kernel"] = kernel
        model = DMSClustering(**params).fit(X, y_side)
        return Fit(model.labels_, note=_training_note(model), model=model)
    return run


def _peer(name):
    def run(X, y_side, k, seed, opts):
        if name == "kcl":
            from ..estimators.kcl import KCLClustering as cls
        else:
            from ..estimators.mcl import MCLClustering as cls
        model = cls(n_clusters=k, **_learned_params(opts, seed)).fit(X, y_side)
        return Fit(model.labels_, note=_training_note(model), model=model)
    return run


def _unsupervised_peer(name):
    def run(X, y_side, k, seed, opts):
        p = _learned_params(opts, seed)
        if name == "ddc":
            from ..estimators.ddc import DDCClustering as cls
        else:
            from ..estimators.mmdc import MMDCClustering as cls
            p.pop("max_steps", None)  # MMDC trains for n_epochs
        model = cls(n_clusters=k, **p).fit(X)  # unsupervised: the side information is not given
        return Fit(model.labels_, note=_training_note(model), model=model)
    return run


def _label_spreading(X, y_side, k, seed, opts):
    from ..estimators.label_spreading import LabelSpreadingClustering
    model = LabelSpreadingClustering().fit(X, y_side)  # deterministic, scikit-learn's defaults
    return Fit(model.labels_, model=model)


def _ss_kmeans(X, y_side, k, seed, opts):
    from ..estimators.ss_kmeans import SemiSupervisedKMeans
    model = SemiSupervisedKMeans(random_state=seed).fit(X, y_side)  # k estimated, not given
    return Fit(model.labels_, note=f"k={model.n_clusters_} estimated", model=model)


def _kmeans(X, y_side, k, seed, opts):
    from sklearn.cluster import KMeans
    return Fit(KMeans(n_clusters=k, init="k-means++", random_state=seed).fit_predict(X))


def _ward(X, y_side, k, seed, opts):
    from sklearn.cluster import AgglomerativeClustering
    n = X.shape[0]
    if n <= WARD_MAX:
        return Fit(AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(X))
    sub = np.sort(np.random.default_rng(seed).choice(n, size=WARD_MAX, replace=False))
    lab = AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(X[sub])
    centroids = np.stack([X[sub][lab == c].mean(0) for c in range(k)])  # (k, d)
    d2 = (X * X).sum(1)[:, None] - 2.0 * X @ centroids.T + (centroids * centroids).sum(1)[None, :]  # (n, k)
    labels = d2.argmin(1)
    labels[sub] = lab
    return Fit(labels, note=f"fitted on a random {WARD_MAX:,} of {n:,} points, the rest joined the nearest centroid")


def dbscan_eps(X: np.ndarray, min_samples: int = DBSCAN_MIN_SAMPLES, seed: int = 0,
               n_queries: int = KDIST_QUERIES) -> float:
    """``eps`` for DBSCAN at the knee of the sorted k-distance curve (k = ``min_samples`` - 1 other points)."""
    from sklearn.neighbors import NearestNeighbors
    n = X.shape[0]
    q = np.random.default_rng(seed).choice(n, size=min(n, n_queries), replace=False)
    # the query points are in X, so the first neighbour is the point itself, as in DBSCAN's count
    dist, _ = NearestNeighbors(n_neighbors=min(min_samples, n)).fit(X).kneighbors(X[q])
    d = np.sort(dist[:, -1])
    if d[-1] <= d[0]:
        return float(max(d[-1], 1e-12))
    x = np.linspace(0.0, 1.0, d.size)
    y = (d - d[0]) / (d[-1] - d[0])
    return float(max(d[int(np.argmax(x - y))], 1e-12))


def _dbscan(X, y_side, k, seed, opts):
    from sklearn.cluster import DBSCAN
    eps = dbscan_eps(X, DBSCAN_MIN_SAMPLES, seed)
    return Fit(DBSCAN(eps=eps, min_samples=DBSCAN_MIN_SAMPLES).fit_predict(X), note=f"eps={eps:.4g}")


def _hdbscan(X, y_side, k, seed, opts):
    from sklearn.cluster import HDBSCAN
    return Fit(HDBSCAN(copy=True).fit_predict(X))  # copy=True only silences a FutureWarning


def _meanshift(X, y_side, k, seed, opts):
    from ..estimators.meanshift import MeanShift
    n = X.shape[0]
    seeds, note = None, ""
    if n > MEANSHIFT_SEEDS:
        seeds = X[np.sort(np.random.default_rng(seed).choice(n, size=MEANSHIFT_SEEDS, replace=False))]
        note = f"{MEANSHIFT_SEEDS:,} random points as seeds"
    model = MeanShift(seeds=seeds, device=opts.device).fit(X)
    return Fit(model.labels_, note=(note + "; " if note else "") + f"bandwidth={model.bandwidth_:.4g}")


#: name -> (row label, runner, learns from side information)
METHODS = {
    "dms-subtract": ("DMS (subtract)", _dms("subtract"), True),
    "dms-concat": ("DMS (concat)", _dms("concat"), True),
    "kmeans": ("k-means++ (true k)", _kmeans, False),
    "ward": ("Ward (true k)", _ward, False),
    "dbscan": ("DBSCAN (k-distance eps)", _dbscan, False),
    "hdbscan": ("HDBSCAN", _hdbscan, False),
    "meanshift": ("MeanShift (estimated bandwidth)", _meanshift, False),
    "label-spreading": ("LabelSpreading (knn)", _label_spreading, True),
    "ss-kmeans": ("Semi-supervised k-means (estimated k)", _ss_kmeans, True),
    "kcl": ("KCL (n_clusters = true k)", _peer("kcl"), True),
    "mcl": ("MCL (n_clusters = true k)", _peer("mcl"), True),
    "ddc": ("DDC (true k)", _unsupervised_peer("ddc"), False),
    "mmdc": ("MMDC (true k)", _unsupervised_peer("mmdc"), False),
}
DEFAULT_METHODS = ("dms-subtract", "dms-concat", "label-spreading", "ss-kmeans", "kmeans", "ward", "dbscan", "hdbscan",
                   "meanshift")

NOTES = (
    "Baselines: k-means++ and Ward are given the true number of classes of the task; Ward is fitted on "
    f"at most {WARD_MAX:,} random points (the rest join the nearest centroid; the note column says when); "
    f"DBSCAN uses min_samples={DBSCAN_MIN_SAMPLES} and eps at the knee of the sorted "
    f"{DBSCAN_MIN_SAMPLES - 1}-th-neighbour distances of up to {KDIST_QUERIES:,} random points; HDBSCAN has "
    "scikit-learn's defaults; MeanShift is dmshift's (scikit-learn's algorithm, bandwidth estimated with "
    f"quantile 0.3, at most {MEANSHIFT_SEEDS:,} random seeds); KCL and MCL get n_clusters = true k as an "
    "upper bound; DDC and MMDC are unsupervised and given the true k. None of the classical methods, nor DDC "
    "or MMDC, uses the side information. Learning to Cluster is not a row: it clusters one set of at most "
    "its max_set_size points jointly, not a whole data set (see benchmarks/results/peers_l2c_coil.md)."
)

#: written into the results when LabelSpreading or semi-supervised k-means is a row
PEER_NOTES = (
    "Peers on the same partial labels as DMS, neither given k: LabelSpreading is scikit-learn's "
    "LabelSpreading(kernel='knn') with its defaults (7 neighbours, alpha 0.2, 30 iterations) on the features as "
    "given; semi-supervised k-means is that of Generalized Category Discovery (Vaze et al., 2022: L2-normalised "
    "features, labelled points held in their class, k estimated by golden-section search for the k whose plain "
    "k-means best matches the labelled points; the note column gives k)."
)


def depends_on_seed(name: str, n: int) -> bool:
    """Does the method's output change with the random seed on ``n`` points? If not, one fit serves every seed."""
    if name == "hdbscan":
        return False
    if name == "ward":
        return n > WARD_MAX
    if name == "dbscan":
        return n > KDIST_QUERIES
    if name == "meanshift":
        return n > MEANSHIFT_SEEDS
    return True


def run_method(name: str, X: np.ndarray, y_side: np.ndarray, k: int, seed: int, opts: Options) -> Fit:
    """Fit method ``name`` on all of ``X`` and time it; labels come back with NOISE for noise."""
    _, runner, _ = METHODS[name]
    t0 = time.perf_counter()
    fit = runner(X, y_side, k, seed, opts)
    fit.seconds = time.perf_counter() - t0
    labels = np.asarray(fit.labels, dtype=np.int64).copy()
    labels[labels < 0] = NOISE
    fit.labels = labels
    return fit
