"""Self-training in DMS: pseudo-labels from a clustering, and the extra training round."""

import numpy as np

from dmshift import NOISE, DMSClustering, SideInfo
from dmshift.self_training import pseudo_labels
from dmshift.metrics import accuracy

FAST = dict(max_steps=100, batch_size=16, instance_size=(30, 40), n_seeds=40, random_state=0)


def test_groups_take_their_cluster_and_confident_points_join():
    # points 0-1: class 5, points 2-3: class 7; the rest have no side information
    y = np.array([5, 5, 7, 7, -1, -1, -1, -1, -1, -1])
    side = SideInfo.build(10, y=y)
    labels = np.array([1, 1, 0, 0, 1, 1, 0, 0, NOISE, 2])
    conf = np.array([1, 1, 1, 1, .9, .2, .3, .8, .0, .7])
    out = pseudo_labels(side, labels, conf, share=0.5)
    np.testing.assert_array_equal(out[:4], [1, 1, 0, 0])
    # cluster 1's free points 4, 5: the more confident one (4); cluster 0's: 7; cluster 2 (a
    # cluster without side information) keeps its own label; noise is never a pseudo-label
    np.testing.assert_array_equal(out[4:], [1, -1, -1, 0, -1, 2])


def test_groups_known_to_differ_never_share_a_label():
    y = np.array([0, 0, 1, 1, -1, -1])
    side = SideInfo.build(6, y=y)
    labels = np.array([0, 0, 0, 0, 0, 0])  # the clustering joined the two classes
    out = pseudo_labels(side, labels, np.ones(6), share=1.0)
    assert out[0] == out[1] and out[2] == out[3] and out[0] != out[2]
    assert set(out[4:]) == {0}


def test_groups_not_known_to_differ_may_share_a_label():
    pairs = np.array([[0, 1, 1], [2, 3, 1], [4, 5, 0]])  # two "same" pairs, nothing between them
    side = SideInfo.build(8, pairs=pairs)
    labels = np.array([3, 3, 3, 3, 1, 2, 3, NOISE])
    out = pseudo_labels(side, labels, np.ones(8), share=1.0)
    assert out[0] == out[1] == out[2] == out[3] == 3
    assert out[4] != out[5]
    assert out[6] == 3 and out[7] == -1


def test_all_noise_group_keeps_its_own_label():
    y = np.array([0, 0, 1, 1, -1])
    side = SideInfo.build(5, y=y)
    out = pseudo_labels(side, np.array([NOISE, NOISE, 0, 0, 0]), np.ones(5), share=1.0)
    assert out[0] == out[1] and out[0] not in (0, -1)


def test_round_is_recorded_and_keeps_quality(blobs):
    X, y = blobs
    part = np.where(np.arange(y.size) % 8 == 0, y, -1)
    m0 = DMSClustering(**FAST, self_training=0).fit(X, part)
    m1 = DMSClustering(**FAST, self_training=1).fit(X, part)
    assert len(m0.training_["rounds"]) == 1 and m0.training_["n_pseudo_labels"] == 0
    assert len(m1.training_["rounds"]) == 2 and m1.training_["n_pseudo_labels"] > 0
    assert accuracy(y, m1.labels_) > 0.95
    np.testing.assert_array_equal(m1.predict(X), m1.labels_)


def test_time_limit_bounds_all_rounds(blobs):
    X, y = blobs
    part = np.where(np.arange(y.size) % 8 == 0, y, -1)
    params = {**FAST, "max_steps": 100_000, "settings": {"training": {"plateau_window": None}}}  # no plateau stop
    m = DMSClustering(**params, self_training=2, time_limit=0.5).fit(X, part)
    assert m.training_["stop_reason"] == "time_limit"
    assert len(m.training_["rounds"]) == 1  # the round the limit stopped is the last
    assert m.training_["seconds"] < 5.0
    assert m.labels_.shape == (y.size,)
