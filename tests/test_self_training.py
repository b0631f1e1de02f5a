"""Self-training rounds (``dmshift.self_training.self_train``) with stand-in training and clustering."""

import numpy as np
import torch

from dmshift.clustering import Clustering
from dmshift.constraints import SideInfo
from dmshift.instance_training import Trained
from dmshift.self_training import self_train


def _clustering(labels):
    n = labels.size
    return Clustering(labels=labels, confidence=np.ones(n), center_embeddings=torch.zeros(2, 1),
                      center_cluster=np.arange(2), cluster_centers=np.zeros((2, 1), np.float32),
                      n_clusters=int(labels.max()) + 1, n_iter=1, n_seeds_used=2, converged_fraction=1.0)


def test_rounds_restart_from_the_initial_weights_and_train_on_pseudo_labels():
    kernel = torch.nn.Linear(1, 1)
    w0 = kernel.weight.detach().clone()
    y = np.array([0, 0, -1, -1, 1, 1, -1, -1])
    side = SideInfo.build(8, y=y)
    seen = []

    def train(side_r, seed_r, rng_r, left, desc):
        seen.append((side_r.labelled.size, seed_r, rng_r is None, torch.equal(kernel.weight, w0)))
        with torch.no_grad():
            kernel.weight.add_(1.0)
        return Trained({"steps": 5, "stop_reason": "max_steps"})

    out = self_train(kernel, side, 7, rounds=2, share=1.0, time_limit=None, train=train,
                     cluster=lambda: _clustering(np.array([0, 0, 0, 0, 1, 1, 1, 1])))
    assert seen == [(4, 7, True, True), (8, 8, False, True), (8, 9, False, True)]
    assert [r["n_clusters"] for r in out.record["rounds"]] == [2, 2, 2]
    assert out.record["n_pseudo_labels"] == 4 and out.stopped is None


def test_one_cluster_stops_the_rounds():
    side = SideInfo.build(4, y=np.array([0, 0, -1, -1]))  # all in one cluster: nothing to tell apart
    out = self_train(torch.nn.Linear(1, 1), side, 0, rounds=3, share=1.0, time_limit=None,
                     train=lambda *a: Trained({"steps": 1, "stop_reason": "max_steps"}),
                     cluster=lambda: _clustering(np.zeros(4, dtype=np.int64)))
    assert out.stopped == "one_cluster" and len(out.record["rounds"]) == 1


class _Mapped(torch.nn.Linear):
    def point_map(self):
        return self.weight.T


def test_a_first_part_trains_before_the_rounds_and_its_point_map_is_kept():
    kernel = _Mapped(1, 1)
    w0 = kernel.weight.detach().clone()
    side = SideInfo.build(8, y=np.array([0, 0, -1, -1, 1, 1, -1, -1]))
    part = SideInfo.build(8, y=np.array([0, 0, -1, -1, 1, -1, -1, -1]))
    seen = []

    def train(side_r, seed_r, rng_r, left, desc):
        seen.append((side_r.labelled.size, torch.equal(kernel.weight, w0), desc))
        with torch.no_grad():
            kernel.weight.add_(1.0)
        return Trained({"steps": 3 + len(seen), "stop_reason": "plateau"})

    out = self_train(kernel, side, 7, rounds=1, share=1.0, time_limit=None, train=train, first=part,
                     cluster=lambda: _clustering(np.array([0, 0, 0, 0, 1, 1, 1, 1])))
    assert [s[:2] for s in seen] == [(3, True), (4, False), (8, True)]  # round 1 goes on; round 2 restarts
    assert "without the held-back fold" in seen[0][2]
    np.testing.assert_allclose(out.first_map.numpy(), (w0 + 1).T.numpy())  # the map after the first part alone
    assert out.record["first_steps"] == 4 and out.record["steps"] == 6
    cut = self_train(_Mapped(1, 1), side, 0, rounds=2, share=1.0, time_limit=None, first=part,
                     train=lambda *a: Trained({"steps": 2, "stop_reason": "interrupted"}),
                     cluster=lambda: _clustering(np.array([0, 0, 0, 0, 1, 1, 1, 1])))
    assert cut.stopped == "interrupted" and len(cut.record["rounds"]) == 1  # Ctrl-C there ends the fit
