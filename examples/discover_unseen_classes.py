"""Discover classes that no side information mentions.

Side information (the class label) is given for a share of the images of digits 0-4
only; digits 5-9 never appear in it. DMS learns from the seen classes what makes two
images "the same" and, since it is not told the number of clusters, can form clusters
for the unseen digits too. The script reports ACC and NMI separately on the seen and the
unseen classes (points without side information only; noise counts as wrong), and
k-means++ given the true k = 10 for reference.

    python examples/discover_unseen_classes.py            # DMS defaults: minutes on two CPU cores
    python examples/discover_unseen_classes.py --time-limit 120
    python examples/discover_unseen_classes.py --quick    # a few seconds, meaningless scores
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.cluster import KMeans

from dmshift.datasets import load
from dmshift.estimators.dms import DMSClustering
from dmshift.metrics import accuracy, nmi


def scores(y_true, y_pred, mask):
    return accuracy(y_true[mask], y_pred[mask]), nmi(y_true[mask], y_pred[mask])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fraction", type=float, default=0.1, help="share of the seen classes' images with labels")
    ap.add_argument("--seen", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="classes with side information")
    ap.add_argument("--time-limit", type=float, default=None, help="seconds of DMS training (default: no limit)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="tiny settings for a smoke test")
    args = ap.parse_args()

    ds = load("digits")
    X, y = ds.X, ds.y
    rng = np.random.default_rng(args.seed)
    seen = np.isin(y, args.seen)
    labelled = seen & (rng.random(len(y)) < args.fraction)
    y_side = np.where(labelled, y, -1)

    params = {"max_steps": 5, "batch_size": 8, "instance_size": (40, 60), "n_seeds": 20} if args.quick else {}
    if args.time_limit is not None:
        params["time_limit"] = args.time_limit
    dms = DMSClustering(random_state=args.seed, **params).fit(X, y_side)
    km = KMeans(n_clusters=10, random_state=args.seed).fit_predict(X)

    test = ~labelled
    print(f"side information: {labelled.sum()} images of digits {args.seen}; none of the other digits")
    print(f"DMS found {dms.n_clusters_} clusters, {np.mean(dms.labels_ == -1):.1%} of the points are noise\n")
    print(f"{'':26s}{'ACC':>7s}{'NMI':>7s}")
    for name, labels in (("DMS", dms.labels_), ("k-means++ (k=10)", km)):
        for part, mask in (("seen", test & seen), ("unseen", test & ~seen)):
            acc, nm = scores(y, labels, mask)
            print(f"{name + ', ' + part:26s}{acc:7.3f}{nm:7.3f}")
    # clusters whose members are mostly unseen digits: what DMS discovered on its own
    found = []
    for k in range(dms.n_clusters_):
        members = y[dms.labels_ == k]
        major = np.bincount(members).argmax()
        if major not in args.seen:
            found.append((k, int(major), members.size, float(np.mean(members == major))))
    print(f"\nclusters led by an unseen digit: {len(found)}")
    for k, d, size, purity in found:
        print(f"  cluster {k}: digit {d}, {size} images, {purity:.0%} of them that digit")


if __name__ == "__main__":
    main()
