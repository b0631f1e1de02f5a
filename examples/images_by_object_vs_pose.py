"""One set of images, two clusterings: by object or by pose, as the side information says.

COIL-100 photographs 100 objects on a turntable from 72 angles. The same features
(here the first principal components of the pixels) support two tasks: group the
images by *object*, or by *pose* (``pose8``: the angle in eight 45-degree bins, which
cuts across objects). DMS learns a kernel from side information, so it is trained twice
on identical features, once with object labels and once with pose labels for a share of
the images, and each model is scored on both tasks (points without side information;
noise counts as wrong). k-means++ with the true k of each task shows what the features
give without side information.

To keep the run under two minutes on two CPU cores it uses the first 20 objects (1,440
images), 64 principal components, and a shortened training (``--max-steps``,
``--time-limit``). It needs the shared COIL-100 files (see ``dmshift.datasets``); without
them it says so and exits with status 0.

    python examples/images_by_object_vs_pose.py
    python examples/images_by_object_vs_pose.py --objects 100 --max-steps 1000 --time-limit 0
    python examples/images_by_object_vs_pose.py --quick
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from dmshift.datasets import load
from dmshift.estimators.dms import DMSClustering
from dmshift.metrics import accuracy, nmi


def load_coil(n_objects: int):
    try:
        ds = load("coil100")
    except FileNotFoundError as exc:
        print(f"COIL-100 is not available here, skipping this example ({exc})")
        sys.exit(0)
    keep = ds.tasks["object"] < n_objects
    return ds.X[keep], {task: labels[keep] for task, labels in ds.tasks.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=int, default=20, help="use the first N of the 100 objects")
    ap.add_argument("--components", type=int, default=64, help="principal components kept as features")
    ap.add_argument("--fraction", type=float, default=0.1, help="share of the images with side information")
    ap.add_argument("--max-steps", type=int, default=300, help="DMS training steps per task")
    ap.add_argument("--time-limit", type=float, default=40.0, help="seconds of training per task (0: none)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="tiny settings for a smoke test")
    args = ap.parse_args()
    if args.quick:
        args.objects, args.max_steps, args.components = 4, 5, 16

    X_pix, tasks = load_coil(args.objects)
    X = PCA(n_components=args.components, random_state=args.seed).fit_transform(X_pix).astype(np.float32)
    rng = np.random.default_rng(args.seed)
    labelled = rng.random(len(X)) < args.fraction
    test = ~labelled
    print(f"COIL-100, first {args.objects} objects: {len(X)} images, {X.shape[1]} principal components; "
          f"side information for {labelled.sum()} images")

    params = {"max_steps": args.max_steps, "time_limit": args.time_limit or None, "random_state": args.seed}
    if args.quick:
        params.update(batch_size=8, instance_size=(40, 60), n_seeds=20)
    results = {}
    for task in ("object", "pose8"):
        dms = DMSClustering(**params).fit(X, np.where(labelled, tasks[task], -1))
        results[f"DMS trained on {task}"] = (dms.labels_, dms.n_clusters_)
    for task in ("object", "pose8"):
        k = int(np.unique(tasks[task]).size)
        results[f"k-means++ (k={k}, {task})"] = (KMeans(n_clusters=k, random_state=args.seed).fit_predict(X), k)

    print(f"\n{'':28s}{'clusters':>9s}{'ACC object':>12s}{'NMI object':>12s}{'ACC pose8':>11s}{'NMI pose8':>11s}")
    for name, (labels, n_clusters) in results.items():
        cells = []
        for task in ("object", "pose8"):
            yt, yp = tasks[task][test], labels[test]
            cells += [accuracy(yt, yp), nmi(yt, yp)]
        print(f"{name:28s}{n_clusters:9d}{cells[0]:12.3f}{cells[1]:12.3f}{cells[2]:11.3f}{cells[3]:11.3f}")


if __name__ == "__main__":
    main()
