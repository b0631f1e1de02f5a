"""The smoothing stage of DMS (``dmshift.smoothing_stage``) on a clustering with a few points astray."""

import numpy as np
import torch

from dmshift.clustering import Clustering
from dmshift.constraints import SideInfo
from dmshift.settings import SmoothingSettings
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
