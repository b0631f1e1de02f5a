"""The tree fallback stage (``dmshift.fallback``) on a clustering that joins groups."""

import numpy as np
import torch
from _tiny import thin_groups
from sklearn.metrics import adjusted_rand_score

from dmshift.clustering import Clustering
from dmshift.constraints import SideInfo
from dmshift.fallback import tree_fallback
from dmshift.settings import FallbackSettings


def _one_cluster(n, d):
    """A clustering that joins every group: what a kernel learnt from too few "same" pairs gives."""
    return Clustering(labels=np.zeros(n, dtype=np.int64), confidence=np.ones(n), center_embeddings=torch.zeros(1, 4),
                      center_cluster=np.zeros(1, dtype=np.int64), cluster_centers=np.zeros((1, d), np.float32),
                      n_clusters=1, n_iter=1, n_seeds_used=1, converged_fraction=1.0)


def _run(found, X, yp, **kwargs):
    side = SideInfo.build(yp.size, y=yp)
    args = dict(enabled=True, n_neighbors=3, memory_budget=1 << 24, projected=False, to_input=lambda Z: Z)
    return tree_fallback(found, torch.as_tensor(X), side, 0, **{**args, **kwargs})


def test_a_clustering_that_joins_groups_is_replaced_by_the_tree():
    X, y, yp = thin_groups(k=20, m=8)
    out = _run(_one_cluster(y.size, X.shape[1]), X, yp)
    assert out.applied and out.record["applied"] and out.record["tree_f1"] >= out.record["kernel_f1"] + 0.2
    assert adjusted_rand_score(y, out.clustering.labels) > 0.8
    assert out.clustering.n_clusters == out.clustering.cluster_centers.shape[0]
    assert out.landmarks is not None and out.landmarks.labels.size == y.size
    assert out.clustering.center_cluster.shape == (1,)  # the kernel's center stands for one tree cluster


def test_off_or_unmet_conditions_keep_the_clustering_and_say_why():
    X, y, yp = thin_groups(k=20, m=8)
    found = _one_cluster(y.size, X.shape[1])
    off = _run(found, X, yp, enabled=False)
    assert not off.applied and off.reason == "off" and off.clustering is found
    assert off.record["kernel_f1"] is not None  # measured even when off
    few = _run(found, X, yp, settings=FallbackSettings(min_same_pairs=10_000))
    assert not few.applied and "fewer than 10000" in few.reason and few.record["tree_f1"] is None
    strict = _run(found, X, yp, settings=FallbackSettings(margin=1.0))
    assert not strict.applied


def test_the_tree_and_the_smoothing_draw_the_same_landmarks():
    # above the points a Ward tree holds, both build on one sample: the input graph and its tree are shared
    from dmshift.novelty import WARD_BYTES_PER_POINT
    from dmshift.smoothing_stage import smooth_clustering
    X, y, yp = thin_groups(k=20, m=8)
    found = _one_cluster(y.size, X.shape[1])
    budget = 64 * WARD_BYTES_PER_POINT  # 64 of the 160 points
    tree = _run(found, X, yp, memory_budget=budget)
    sm = smooth_clustering(tree.clustering, torch.as_tensor(X), SideInfo.build(y.size, y=yp), 0, mode="graph",
                           n_neighbors=3, share=0.5, find_unseen=True, smooth_noise=True, memory_budget=budget,
                           projected=False, to_input=lambda Z: Z)
    assert tree.applied and tree.landmarks.index.size == 64
    np.testing.assert_array_equal(sm.landmarks.index, tree.landmarks.index)
    other_seed = tree_fallback(found, torch.as_tensor(X), SideInfo.build(y.size, y=yp), 1, enabled=True, n_neighbors=3,
                               memory_budget=budget, projected=False, to_input=lambda Z: Z)
    assert not np.array_equal(other_seed.landmarks.index, tree.landmarks.index)  # the seed decides the draw
