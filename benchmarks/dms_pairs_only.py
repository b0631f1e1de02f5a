"""DMS on digits from pairs only: 10% of the points labelled, ~3 random pairs each, no labels.

Scores (ACC, noise counted as wrong) on the points that are in no pair; 2 seeds.

    python benchmarks/dms_pairs_only.py
"""

import numpy as np
import torch

from dmshift import DMSClustering
from dmshift.datasets import load
from dmshift.metrics import evaluate

CONFIGS = [
    ("previous defaults", dict(weight_decay=0.0, input_noise=0.0, threshold=0.8, inference_side_info=False)),
    ("regularised, side info at inference, threshold 0.5", dict(threshold=0.5)),
    ("same, inference_side_info=False", dict(threshold=0.5, inference_side_info=False)),
    ("today's defaults (threshold='auto')", {}),
]


def main():
    torch.set_num_threads(1)
    d = load("digits")
    X, y = d.X, d.y
    for seed in [0, 1]:
        rng = np.random.default_rng(seed)
        lab = np.flatnonzero(rng.random(len(y)) < 0.1)
        i, j = rng.choice(lab, 3 * lab.size), rng.choice(lab, 3 * lab.size)
        keep = i != j
        pairs = np.stack([i[keep], j[keep], (y[i] == y[j])[keep].astype(int)], 1)
        scored = np.ones(len(y), bool)
        scored[lab] = False
        for name, params in CONFIGS:
            m = DMSClustering(random_state=seed, **params).fit(X, pairs=pairs)
            e = evaluate(y[scored], m.labels_[scored])
            print(f"seed {seed} | {name} | same pairs {int(pairs[:, 2].sum())} | ACC {e['acc']:.3f} | "
                  f"{e['n_clusters']} clusters", flush=True)


if __name__ == "__main__":
    main()
