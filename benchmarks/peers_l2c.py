"""Learning to Cluster (Meier et al.): the 2-D point experiment and the COIL-100 protocol, with DMS alongside.

Paper (Table 1, 300 evaluations, k_max = 5, λ = 5): 2-D points MR 0.004 / NMI 0.993;
COIL-100 (train on 80 objects, sets of n = 20 images from 1..5 unseen objects) MR 0.116 /
NMI 0.867.

``points``: training scenes of 5 non-overlapping clusters of varied shapes (blob, ring,
arc, line, box) in the unit square, given to ``fit`` as pairs only ("same" chains inside a
cluster, "different" pairs between the clusters of a scene), so training sets of 1..5
clusters are drawn from one scene; evaluation on fresh scenes of 72 points with
k ~ U{1..5}. k-means (told the true k) is shown for reference.

``coil``: COIL-100 at 32x32 RGB (the shared copy; the paper used 128x128). Objects are
split at random (seed 0) into 80 for training and 20 for evaluation; both L2C and DMS
train on the 80 with their labels; 300 evaluation sets of 20 images from 1..5 of the
other 20 objects are drawn once and clustered by both. DMS clusters each set by mean
shift with its learned kernel (its inference on new data).

    PYTHONPATH=src nice -n 10 python3 benchmarks/peers_l2c.py points
    PYTHONPATH=src nice -n 10 python3 benchmarks/peers_l2c.py coil
    PYTHONPATH=src python3 benchmarks/peers_l2c.py points coil --quick
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers_mmdc import RESULTS, commit, machine  # noqa: E402

from dmshift.estimators.l2c import L2CClustering, _cluster_sizes  # noqa: E402
from dmshift.metrics import misclassification_rate, nmi  # noqa: E402

# ---------------------------------------------------------------------------- 2-D scenes
SHAPES = ("blob", "ring", "arc", "line", "box")


def _shape(kind: str, m: int, r: float, rng: np.random.Generator) -> np.ndarray:
    """m points of one shape inside a disc of radius r around the origin, rotated at random."""
    if kind == "blob":
        p = rng.standard_normal((m, 2)) * np.array([1.0, rng.uniform(0.3, 1.0)]) * (r / 2.5)
    elif kind == "ring":
        t = rng.uniform(0, 2 * np.pi, m)
        p = np.stack([np.cos(t), np.sin(t)], 1) * r * (0.85 + 0.15 * rng.random((m, 1)))
    elif kind == "arc":
        t = rng.uniform(0, np.pi, m)
        p = np.stack([np.cos(t), np.sin(t) - 0.4], 1) * r * (0.85 + 0.15 * rng.random((m, 1)))
    elif kind == "line":
        p = np.stack([rng.uniform(-r, r, m), rng.normal(0, r / 12, m)], 1)
    else:
        p = rng.uniform(-1, 1, (m, 2)) * np.array([r, r * rng.uniform(0.4, 1.0)]) * 0.7
    a = rng.uniform(0, 2 * np.pi)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return p @ rot.T


def make_scene(sizes, rng: np.random.Generator, gap: float = 0.04):
    """Clusters of the given sizes whose bounding discs keep ``gap`` apart: (n, 2) points, (n,) labels."""
    k = len(sizes)
    iu = np.triu_indices(k, 1)
    while True:
        radii = rng.uniform(0.06, 0.14, k)
        centers = rng.uniform(0.15, 0.85, (k, 2))
        d = np.linalg.norm(centers[:, None] - centers[None], axis=-1)
        if k == 1 or np.all(d[iu] > (radii[:, None] + radii[None] + gap)[iu]):
            break
    pts = [centers[c] + _shape(SHAPES[rng.integers(len(SHAPES))], int(m), r, rng)
           for c, (m, r) in enumerate(zip(sizes, radii))]
    return np.concatenate(pts).astype(np.float32), np.repeat(np.arange(k), sizes)


def make_pool(n_scenes: int, per_cluster: int, rng: np.random.Generator, k: int = 5):
    """Training scenes as X and (i, j, same) pairs: same-chains per cluster, different pairs inside a scene."""
    X, pairs = [], []
    off = 0
    a, b = np.triu_indices(k, 1)
    for _ in range(n_scenes):
        x, _ = make_scene([per_cluster] * k, rng)
        X.append(x)
        idx = off + np.arange(k * per_cluster).reshape(k, per_cluster)
        pairs.append(np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel(), np.ones(idx[:, 1:].size, np.int64)], 1))
        pairs.append(np.stack([idx[a, 0], idx[b, 0], np.zeros(a.size, np.int64)], 1))
        off += x.shape[0]
    return np.concatenate(X), np.concatenate(pairs)


def make_point_sets(n_sets: int, n: int, k_max: int, rng: np.random.Generator):
    """Fresh evaluation scenes: (S, n, 2) points, (S, n) labels, (S,) true counts."""
    X = np.empty((n_sets, n, 2), np.float32)
    Y = np.empty((n_sets, n), np.int64)
    K = np.empty(n_sets, np.int64)
    for s in range(n_sets):
        k = int(rng.integers(1, k_max + 1))
        X[s], Y[s] = make_scene(_cluster_sizes(n, k, rng), rng)
        K[s] = k
    return X, Y, K


# ---------------------------------------------------------------------------- scoring
def score_sets(Y: np.ndarray, labels: np.ndarray, K: np.ndarray, counts: np.ndarray) -> dict:
    return {"mr": float(np.mean([misclassification_rate(t, p) for t, p in zip(Y, labels)])),
            "nmi": float(np.mean([nmi(t, p) for t, p in zip(Y, labels)])),
            "count_acc": float(np.mean(counts == K)), "n_sets": int(len(Y))}


def l2c_on_sets(model: L2CClustering, X_sets, Y, K) -> dict:
    t0 = time.perf_counter()
    labels, proba = model.predict_sets(X_sets, return_count_proba=True)
    res = score_sets(Y, labels, K, proba.argmax(1) + 1)
    res["count_acc_nonempty"] = float(np.mean([np.unique(lab).size == k for lab, k in zip(labels, K)]))
    res["seconds_inference"] = time.perf_counter() - t0
    return res


def kmeans_on_sets(X_sets, Y, K, seed=0) -> dict:
    from sklearn.cluster import KMeans
    labels = np.stack([KMeans(int(k), n_init=10, random_state=seed).fit_predict(x) for x, k in zip(X_sets, K)])
    return score_sets(Y, labels, K, K)


def dms_on_sets(est, X_sets, Y, K, seed=0) -> dict:
    """Cluster every set by mean shift with DMS's learned kernel (a shallow copy keeps ``est`` unchanged)."""
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    labels = []
    for x in X_sets:
        c = copy.copy(est)
        Xs = est._transform(x)
        c._cluster(Xs, rng)
        labels.append(c.labels_)
    labels = np.stack(labels)
    counts = np.array([np.unique(lab[lab >= 0]).size for lab in labels])
    res = score_sets(Y, labels, K, counts)
    res["noise_fraction"] = float(np.mean(labels < 0))
    res["seconds_inference"] = time.perf_counter() - t0
    return res


def fit_timed(model, *args, **kwargs):
    t0 = time.perf_counter()
    model.fit(*args, **kwargs)
    return time.perf_counter() - t0


def _params(model) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in model.get_params().items()}


# ---------------------------------------------------------------------------- experiments
def points(args) -> dict:
    rng = np.random.default_rng(0)
    n_scenes, steps, n_eval = (200, 50, 30) if args.quick else (args.scenes, args.steps, 300)
    X, pairs = make_pool(n_scenes, 72, rng)
    model = L2CClustering(embedding="none", width=args.width, n_layers=args.layers, count_units=args.width // 2,
                          count_hidden=args.width, set_size=(72, 72), max_steps=steps, batch_size=args.batch,
                          lr=args.lr, schedule="cosine", random_state=0)
    fit_s = fit_timed(model, X, pairs=pairs)
    Xe, Ye, Ke = make_point_sets(n_eval, 72, 5, np.random.default_rng(1))
    return {"experiment": "2-D points", "train": f"{n_scenes} scenes x 5 clusters x 72 points, pairs only "
                                                 f"({len(pairs)} pairs)",
            "eval": f"{n_eval} fresh scenes of 72 points, k ~ U{{1..5}}",
            "l2c": {"params": _params(model), "fit_seconds": fit_s, "final_loss": model.training_["history"][-1][1],
                    **l2c_on_sets(model, Xe, Ye, Ke)},
            "kmeans_true_k": kmeans_on_sets(Xe, Ye, Ke),
            "paper": {"l2c": {"mr": 0.004, "nmi": 0.993}, "kmeans": {"mr": 0.178, "nmi": 0.796}}}


def coil_sets(y, objects, n_sets, n, k_max, rng):
    """Index sets of n images from k ~ U{1..k_max} of ``objects``, sizes as L2C's training sets."""
    idx = np.empty((n_sets, n), np.int64)
    K = np.empty(n_sets, np.int64)
    for s in range(n_sets):
        k = int(rng.integers(1, k_max + 1))
        objs = rng.choice(objects, size=k, replace=False)
        sizes = _cluster_sizes(n, k, rng)
        idx[s] = np.concatenate([rng.choice(np.flatnonzero(y == o), size=m, replace=False)
                                 for o, m in zip(objs, sizes)])
        K[s] = k
    return idx, K


def coil(args) -> dict:
    from dmshift.datasets import load
    from dmshift.estimators.dms import DMSClustering
    ds = load("coil100")
    X, y = ds.X, ds.y
    rng = np.random.default_rng(0)
    objects = rng.permutation(100)
    train_obj, eval_obj = np.sort(objects[:80]), np.sort(objects[80:])
    train = np.isin(y, train_obj)
    n_eval = 30 if args.quick else 300
    idx, K = coil_sets(y, eval_obj, n_eval, 20, 5, np.random.default_rng(1))
    Xe, Ye = X[idx], y[idx]
    out = {"experiment": "COIL-100",
           "train": f"80 objects ({int(train.sum())} images, labelled), objects {train_obj.tolist()}",
           "eval": f"{n_eval} sets of 20 images from 1..5 of the other 20 objects {eval_obj.tolist()}",
           "paper": {"l2c": {"mr": 0.116, "nmi": 0.867}}}
    if "l2c" in args.methods:
        model = L2CClustering(image_shape=(32, 32, 3), widths=tuple(int(v) for v in args.cnn.split(",")),
                              width=args.width, n_layers=args.layers, count_units=args.width // 2,
                              count_hidden=args.width, set_size=(20, 20), max_steps=10 if args.quick else args.steps,
                              batch_size=args.batch, lr=args.lr, schedule="cosine", random_state=0)
        fit_s = fit_timed(model, X[train], y[train])
        out["l2c"] = {"params": _params(model), "fit_seconds": fit_s, "final_loss": model.training_["history"][-1][1],
                      **l2c_on_sets(model, Xe, Ye, K)}
        print(json.dumps({"l2c": {k: v for k, v in out["l2c"].items() if k != "params"}}), flush=True)
    if "dms" in args.methods:
        dms = DMSClustering(max_steps=20 if args.quick else args.dms_steps, time_limit=args.dms_time_limit,
                            random_state=0)
        fit_s = fit_timed(dms, X[train], y[train])
        out["dms"] = {"params": _params(dms), "fit_seconds": fit_s, "training_steps": dms.training_["steps"],
                      "stop_reason": dms.training_["stop_reason"], **dms_on_sets(dms, Xe, Ye, K)}
        print(json.dumps({"dms": {k: v for k, v in out["dms"].items() if k != "params"}}), flush=True)
    return out


def markdown(rec: dict) -> str:
    m = rec["machine"]
    dev = m["cuda"] or f"CPU ({m['cpus']} cores, {m['torch_threads']} torch thread(s))"
    lines = [f"# {rec['benchmark']}", "", f"- command: `{rec['command']}`", f"- commit: `{rec['commit']}`",
             f"- date: {rec['date']}", f"- device: {dev}; torch {m['torch']}; {m['platform']}", ""]
    for ex in rec["experiments"]:
        lines += [f"## {ex['experiment']}", "", f"- training: {ex['train']}", f"- evaluation: {ex['eval']}", "",
                  "| method | MR | NMI | count = true count | fit seconds |", "|---|---|---|---|---|"]
        for key, name in (("l2c", "L2C (this library)"), ("dms", "DMS (this library)"),
                          ("kmeans_true_k", "k-means, told the true k")):
            if key in ex:
                r = ex[key]
                fit = f"{r['fit_seconds']:.0f}" if "fit_seconds" in r else "-"
                lines.append(f"| {name} | {r['mr']:.3f} | {r['nmi']:.3f} | {r['count_acc']:.3f} | {fit} |")
        for key, r in ex["paper"].items():
            lines.append(f"| {key}, paper (Table 1) | {r['mr']:.3f} | {r['nmi']:.3f} | - | - |")
        for key in ("l2c", "dms"):
            if key in ex:
                p = ex[key]["params"]
                lines.append("")
                lines.append(f"{key} settings: `" + json.dumps({k: v for k, v in p.items() if v is not None}) + "`")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiments", nargs="+", choices=("points", "coil"))
    ap.add_argument("--quick", action="store_true", help="tiny training runs and 30 evaluation sets")
    ap.add_argument("--methods", default="l2c,dms", help="coil: which of l2c, dms to run")
    ap.add_argument("--steps", type=int, default=3000, help="L2C training batches")
    ap.add_argument("--batch", type=int, default=32, help="L2C sets per batch")
    ap.add_argument("--width", type=int, default=128, help="L2C set-network width (paper: 288)")
    ap.add_argument("--layers", type=int, default=4, help="residual BDLSTM layers (paper: 14)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--scenes", type=int, default=4000, help="points: training scenes")
    ap.add_argument("--cnn", default="16,32,32", help="coil: L2C CNN block widths")
    ap.add_argument("--dms-steps", type=int, default=300, help="coil: DMS training steps")
    ap.add_argument("--dms-time-limit", type=float, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    args.methods = args.methods.split(",")
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    exps = [{"points": points, "coil": coil}[e](args) for e in args.experiments]
    rec = {"benchmark": "Learning to Cluster: 2-D points and COIL-100 (DMS on the same sets)",
           "command": " ".join([sys.executable] + sys.argv), "commit": commit(), "machine": machine(),
           "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "experiments": exps,
           "total_seconds": time.perf_counter() - t0}
    stem = args.out or ("peers_l2c_" + "_".join(args.experiments) + ("_quick" if args.quick else ""))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(rec, indent=2))
    (RESULTS / f"{stem}.md").write_text(markdown(rec))
    print(markdown(rec))


if __name__ == "__main__":
    main()
