"""The smoothing stage of DMS (``dmshift.smoothing_stage``) on a clustering with a few points astray."""

import numpy as np
import torch

from dmshift.clustering import Clustering
from dmshift.constraints import SideInfo
from dmshift.settings import NoveltySettings, SmoothingSettings
from dmshift.smoothing_stage import smooth_clustering


def _case():
    g = torch.Generator().manual_seed(0)
    X = torch.cat([0.5 * torch.randn(40, 2, generator=g), 0.5 * torch.randn(40, 2, generator=g) + 5.0])  # (80, 2)
    y = np.repeat([0, 1], 40)
    labels = y.copy()
    labels[[3, 7, 50]] = 1 - labels[[3, 7, 50]]  # astray
    found = Clustering(labels=labels, confidence=np.linspace(1.0, 0.5, 80), center_embeddings=torch.zeros(2, 3),
                       center_cluster=np.array([0, 1]), cluster_centers=np.array([[0, 0], [5, 5]], np.float32),
                       n_clusters=2, n_iter=1, n_seeds_used=2, converged_fraction=1.0)
    side = SideInfo.build(80, y=np.where(np.arange(80) % 10 == 0, y, -1))
    return X, y, found, side


def _smooth(found, X, side, **kwargs):
    args = dict(mode="graph", n_neighbors=3, share=0.5, find_unseen=False, smooth_noise=True, memory_budget=1 << 24,
                projected=False, to_input=lambda Z: Z)
    return smooth_clustering(found, X, side, 0, **{**args, **kwargs})


def test_neighbours_bring_back_the_points_astray():
    X, y, found, side = _case()
    out = _smooth(found, X, side)
    assert out.record["applied"] and out.record["noise_relabelled"] and out.reason == "forced"
    assert (out.clustering.labels == y).all()
    assert out.landmarks.points.shape == (80, 2) and (out.landmarks.labels == y).all()
    assert out.clustering is not found and (found.labels != y).sum() == 3  # the input is not changed


def test_auto_applies_only_when_the_graph_agrees():
    X, _, found, side = _case()
    out = _smooth(found, X, side, mode="auto", settings=SmoothingSettings(min_agreement=1.01))
    assert not out.record["applied"] and out.clustering is found and out.landmarks is None
    assert _smooth(found, X, side, mode="auto").record["applied"]


def _split_case(fragment: int):
    """Two groups of 100 points; the kernel cut ``fragment`` points of group 1 into a cluster of their own
    that no side information holds, and clustered a third group of 100 without side information apart."""
    g = torch.Generator().manual_seed(1)
    X = torch.cat([0.5 * torch.randn(100, 2, generator=g) + torch.tensor(c) for c in ([0., 0.], [6., 0.], [0., 6.])])
    y = np.repeat([0, 1, 2], 100)
    labels = y.copy()
    labels[100:100 + fragment] = 3  # the fragment: its own cluster
    found = Clustering(labels=labels, confidence=np.ones(300), center_embeddings=torch.zeros(4, 3),
                       center_cluster=np.arange(4), cluster_centers=np.zeros((4, 2), np.float32), n_clusters=4,
                       n_iter=1, n_seeds_used=4, converged_fraction=1.0)
    side = SideInfo.build(300, y=np.where((np.arange(300) % 10 == 5) & (y < 2) & (labels != 3), y, -1))
    return X, y, found, side


def test_a_bare_cluster_random_side_information_could_have_missed_joins_its_neighbours():
    X, y, found, side = _split_case(fragment=12)  # 10% of the seen groups' points have side information:
    out = _smooth(found, X, side, novelty=NoveltySettings(test_bare_clusters=True))  # all 12 missed: chance 0.28
    lab = out.clustering.labels
    assert out.record["bare_clusters"] == 2 and out.record["bare_clusters_kept"] == 1
    assert (lab[100:112] == lab[150]).all()  # the fragment is group 1 again
    assert np.unique(lab[200:]).size == 1 and lab[200] not in (lab[0], lab[150])  # the unseen group stays apart
    assert out.clustering.n_clusters == 3
    off = _smooth(found, X, side)  # the default keeps every bare cluster
    assert off.record["bare_clusters_kept"] == 2


def test_a_bare_cluster_random_side_information_would_have_reached_stays_a_group():
    X, y, found, side = _split_case(fragment=40)  # 40 points all missed at 10%: a chance of 0.015
    out = _smooth(found, X, side, novelty=NoveltySettings(test_bare_clusters=True))
    assert out.record["bare_clusters"] == out.record["bare_clusters_kept"] == 2
    assert out.clustering.n_clusters == 4


def test_the_fused_graph_reads_the_second_graph_where_the_first_says_nothing():
    g = torch.Generator().manual_seed(2)
    y = np.repeat([0, 1], 60)
    informative = torch.as_tensor(3.0 * y, dtype=torch.float32)[:, None] + 0.3 * torch.randn(120, 1, generator=g)
    noise = torch.randn(120, 1, generator=g)  # the learnt graph's space here: no group in it
    X = torch.cat([informative, noise], 1)
    found = Clustering(labels=np.zeros(120, dtype=np.int64), confidence=np.ones(120),
                       center_embeddings=torch.zeros(1, 3), center_cluster=np.array([0]),
                       cluster_centers=np.zeros((1, 2), np.float32), n_clusters=1, n_iter=1, n_seeds_used=1,
                       converged_fraction=1.0)
    side = SideInfo.build(120, y=np.where(np.arange(120) % 8 == 0, y, -1))
    W = torch.tensor([[0.0], [1.0]])  # the noise column alone
    alone = _smooth(found, X, side, W=W).clustering.labels
    fused = _smooth(found, X, side, W=W, fuse_input=True).clustering.labels
    agree = lambda lab: max((lab == y).mean(), (lab == 1 - y).mean())  # noqa: E731
    assert agree(fused) > 0.95 > 0.8 > agree(alone)
    assert (_smooth(found, X, side, W=torch.eye(2), fuse_input=True).clustering.labels ==
            _smooth(found, X, side, W=torch.eye(2)).clustering.labels).all()  # one graph twice: the same labels
