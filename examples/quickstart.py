"""Cluster scikit-learn's digits from the labels of 5% of the images (``--quick``: a smoke test)."""
import sys

import numpy as np

from dmshift import DMSClustering
from dmshift.datasets import load
from dmshift.metrics import evaluate

ds = load("digits")                                          # 1,797 images of 8 x 8 pixels, 10 classes
rng = np.random.default_rng(0)
y = np.where(rng.random(len(ds.y)) < 0.05, ds.y, -1)         # side information: 5% of the labels, -1 = unknown
quick = {"max_steps": 5, "batch_size": 8, "instance_size": (40, 60), "n_seeds": 20} if "--quick" in sys.argv else {}
dms = DMSClustering(random_state=0, **quick).fit(ds.X, y)    # the number of clusters is not given
print(evaluate(ds.y[y == -1], dms.labels_[y == -1]))         # ACC, NMI, AMI on the other 95%; noise counts as wrong
