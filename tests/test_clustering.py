"""The clustering stage of DMS (``dmshift.clustering``), with an analytic kernel on tiny data."""

import numpy as np
import torch

from dmshift.anchors import select_anchors
from dmshift.clustering import ClusterParams, LocalBackend, cluster, merge_threshold
from dmshift.constraints import SideInfo
from dmshift.kernels.gaussian import GaussianKernel
from dmshift.settings import ThresholdSettings


def _two_blobs():
    g = torch.Generator().manual_seed(0)
    X = torch.cat([0.3 * torch.randn(30, 2, generator=g), 0.3 * torch.randn(20, 2, generator=g) + 6.0])  # (50, 2)
    return X, np.repeat([0, 1], [30, 20])


PARAMS = ClusterParams(n_seeds=20, max_iter=30, threshold=0.8)


def test_two_blobs_give_two_clusters_ordered_by_size():
    X, y = _two_blobs()
    found = cluster(GaussianKernel(1.0), X, np.random.default_rng(0), PARAMS, to_input=lambda Z: Z)
    assert found.n_clusters == 2 and (found.labels == y).all()
    assert found.cluster_centers.shape == (2, 2) and found.cluster_centers.dtype == np.float32
    np.testing.assert_allclose(found.cluster_centers[1], [6.0, 6.0], atol=0.3)
    assert found.center_cluster.max() == 1 and found.center_embeddings.shape[0] == found.center_cluster.size
    assert 0 < found.n_seeds_used <= 20 and found.converged_fraction == 1.0


def test_to_input_maps_the_centers():
    X, _ = _two_blobs()
    a = cluster(GaussianKernel(1.0), X, np.random.default_rng(0), PARAMS, to_input=lambda Z: Z)
    b = cluster(GaussianKernel(1.0), X, np.random.default_rng(0), PARAMS, to_input=lambda Z: 2 * Z + 1)
    np.testing.assert_allclose(b.cluster_centers, 2 * a.cluster_centers + 1, rtol=1e-5)


def test_anchors_seed_and_keep_known_groups_apart():
    X, _ = _two_blobs()
    X = torch.cat([X[:30] * 0.1, X[:30] * 0.1 + 0.5])  # (60, 2): two groups the kernel cannot tell apart
    y = np.full(60, -1)
    y[:5], y[30:35] = 0, 1
    anchors = select_anchors(SideInfo.build(60, y=y))
    found = cluster(GaussianKernel(2.0), X, np.random.default_rng(0), PARAMS, to_input=lambda Z: Z, anchors=anchors)
    assert found.labels[0] != found.labels[30]


def test_the_backend_does_the_steps_that_read_all_points():
    calls = []

    class Recording(LocalBackend):
        def __getattribute__(self, name):
            calls.append(name)
            return super().__getattribute__(name)

    X, y = _two_blobs()
    found = cluster(GaussianKernel(1.0), X, np.random.default_rng(0), PARAMS, to_input=lambda Z: Z, backend=Recording())
    assert (found.labels == y).all()
    assert {"draw_seeds", "find_centers", "merge", "relabel", "input_centers"} <= set(calls)


def test_merge_threshold():
    s = ThresholdSettings(anchored=0.4, default=0.7)
    y = np.array([0, 0, 0, 1, 1, 1])
    assert merge_threshold("auto", select_anchors(SideInfo.build(6, y=y)), s) == 0.4
    assert merge_threshold("auto", None, s) == 0.7
    assert merge_threshold(0.3, None, s) == 0.3


def test_mean_shift_runs_over_a_sample_above_shift_points(monkeypatch):
    from dataclasses import replace

    import dmshift.clustering as clustering
    X, y = _two_blobs()
    sizes = []
    real = clustering.find_centers

    def spy(kernel, px, qx, seeds, **kw):
        sizes.append(px.shape[0])
        assert seeds.max() < px.shape[0]  # positions in the sample
        return real(kernel, px, qx, seeds, **kw)
    monkeypatch.setattr(clustering, "find_centers", spy)
    full = cluster(GaussianKernel(1.0), X, np.random.default_rng(0), PARAMS, to_input=lambda Z: Z)
    same = cluster(GaussianKernel(1.0), X, np.random.default_rng(0), replace(PARAMS, shift_points=50),
                   to_input=lambda Z: Z)
    sampled = cluster(GaussianKernel(1.0), X, np.random.default_rng(0), replace(PARAMS, shift_points=25),
                      to_input=lambda Z: Z)
    assert sizes[0] == sizes[1] == 50 and 25 <= sizes[2] < 45  # 25 points and the (up to 20) seeds
    np.testing.assert_array_equal(same.labels, full.labels)  # n <= shift_points: all points, as before
    assert sampled.n_clusters == 2 and (sampled.labels == y).all()  # every point still assigned


def test_sharded_points_are_never_sampled():
    from dmshift.distributed.inference import ShardBackend
    assert ShardBackend.shift_sample(None, np.random.default_rng(0), 10**6, np.arange(3), 10) is None
    sub = LocalBackend().shift_sample(np.random.default_rng(0), 100, np.array([3, 97]), 10)
    assert sub.size in (10, 11, 12) and {3, 97} <= set(sub.tolist()) and np.all(np.diff(sub) > 0)


def test_a_bad_shift_sample_size_is_refused():
    import pytest

    from dmshift import DMSClustering
    from tests._tiny import blobs
    X, _, yp = blobs()
    for bad in (0, 1, 2.5, "all"):
        with pytest.raises(ValueError, match="settings.shift.max_points"):
            DMSClustering(settings={"shift": {"max_points": bad}}).fit(X, yp)
