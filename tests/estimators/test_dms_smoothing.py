"""Graph smoothing as DMS's last step: what it may change, what it keeps, predict and save/load."""

import numpy as np
import pytest

from dmshift import NOISE, DMSClustering
from dmshift.metrics import accuracy

FAST = dict(max_steps=60, batch_size=16, instance_size=(30, 40), n_seeds=40, random_state=0)


@pytest.fixture(scope="module")
def data():
    from sklearn.datasets import make_blobs
    X, y = make_blobs(n_samples=300, centers=[[0, 0], [3.5, 0], [0, 3.5], [3.5, 3.5]], cluster_std=1.0,
                      random_state=3)
    yp = np.where(np.arange(y.size) % 10 == 0, y, -1)
    return X.astype(np.float32), y, yp


@pytest.fixture(scope="module")
def fits(data):
    X, _, yp = data
    return {s: DMSClustering(**FAST, smoothing=s).fit(X, yp) for s in (None, "graph")}


def test_without_smoothing_predict_is_the_kernel_assignment(data, fits):
    X, _, _ = data
    m = fits[None]
    assert m.smoothing_points_ is None and m.smoothing_ == {"applied": False, "agreement": None}
    np.testing.assert_array_equal(m.predict(X), m.labels_)


def test_smoothing_only_moves_points_between_the_clusters_found(data, fits):
    X, y, yp = data
    paper, smooth = fits[None], fits["graph"]
    assert smooth.smoothing_["applied"] and 0.0 <= smooth.smoothing_["agreement"] <= 1.0
    np.testing.assert_array_equal(smooth.labels_ == NOISE, paper.labels_ == NOISE)
    assert smooth.n_clusters_ <= paper.n_clusters_
    assert smooth.cluster_centers_.shape == (smooth.n_clusters_, 2)
    assert smooth.center_cluster_.max() == smooth.n_clusters_ - 1
    # clusters are renumbered by size after smoothing: match them before counting moved points
    assert accuracy(paper.labels_, smooth.labels_) > 0.5


def test_side_information_is_never_overruled(data, fits):
    X, y, yp = data
    m = fits["graph"]
    lab = yp >= 0
    for c in np.unique(y[lab]):  # each class's labelled points share a cluster, no two classes one
        assert np.unique(m.labels_[lab & (y == c)]).size == 1
    assert np.unique(m.labels_[lab]).size == np.unique(y[lab]).size


def test_predict_takes_the_neighbours_vote_and_survives_save_load(data, fits, tmp_path):
    X, _, _ = data
    m = fits["graph"]
    assert m.smoothing_points_.shape == (X.shape[0], 2)
    p = m.predict(X)
    assert (p == m.labels_).mean() > 0.97
    m.save(tmp_path / "model")
    m2 = DMSClustering.load(tmp_path / "model")
    np.testing.assert_array_equal(m2.predict(X), p)
    assert m2.smoothing_ == m.smoothing_


def test_auto_smooths_when_the_graph_agrees(data, fits):
    X, _, yp = data
    m = DMSClustering(**FAST).fit(X, yp)  # smoothing="auto"
    assert m.smoothing_["applied"] == (m.smoothing_["agreement"] >= 0.9)
    if m.smoothing_["applied"]:
        np.testing.assert_array_equal(m.labels_, fits["graph"].labels_)


@pytest.mark.parametrize("params, match", [({"smoothing": "knn"}, "'smoothing'"),
                                           ({"n_neighbors": 0}, "'n_neighbors'")])
def test_bad_smoothing_parameters(data, params, match):
    X, _, yp = data
    with pytest.raises(ValueError, match=match):
        DMSClustering(**FAST, **params).fit(X, yp)


def test_smoothing_helps_on_overlapping_blobs(data, fits):
    X, y, yp = data
    score = ~(yp >= 0)
    assert accuracy(y[score], fits["graph"].labels_[score]) > accuracy(y[score], fits[None].labels_[score]) + 0.03
