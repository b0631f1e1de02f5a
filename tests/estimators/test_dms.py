import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from dmshift import NOISE, DMSClustering
from dmshift.metrics import accuracy

FAST = dict(max_steps=100, batch_size=16, instance_size=(30, 40), n_seeds=40)


def _partial(y, every=8):
    return np.where(np.arange(y.size) % every == 0, y, -1)


def _expected_failed_checks(est):
    return {
        # DMS learns its kernel from side information; fit(X) without y or pairs is refused
        # with a ValueError, so the checks that call fit(X) alone cannot apply.
        "check_clustering": "needs side information (y or pairs); fit(X) alone raises ValueError",
        "check_clustering(readonly_memmap=True)": "needs side information (y or pairs)",
    }


@parametrize_with_checks([DMSClustering(**FAST, random_state=0)], expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_clusters_blobs_without_k(blobs):
    X, y = blobs
    m = DMSClustering(**FAST, random_state=0).fit(X, _partial(y))
    assert m.n_clusters_ == 4
    assert accuracy(y, m.labels_) > 0.95
    assert m.cluster_centers_.shape == (4, 2)
    assert set(np.unique(m.labels_)) <= {NOISE, 0, 1, 2, 3}


def test_unseen_classes_become_their_own_clusters():
    from sklearn.datasets import make_blobs
    centers = [[0, 0], [10, 0], [0, 10], [10, 10], [20, 0], [20, 10]]
    X, y = make_blobs(n_samples=480, centers=centers, cluster_std=0.8, random_state=1)
    seen = y < 3  # side information on classes 0-2 only
    yp = np.where(seen & (np.arange(y.size) % 5 == 0), y, -1)
    m = DMSClustering(**{**FAST, "max_steps": 80}, random_state=0).fit(X, yp)
    unseen = ~seen
    assert accuracy(y[unseen], m.labels_[unseen]) > 0.9
    # the unseen classes are not folded into the seen ones
    assert not set(m.labels_[unseen]) & set(m.labels_[seen]) - {NOISE}


def test_same_seed_same_labels(blobs):
    X, y = blobs
    a = DMSClustering(**FAST, random_state=3).fit(X, _partial(y))
    b = DMSClustering(**FAST, random_state=3).fit(X, _partial(y))
    assert (a.labels_ == b.labels_).all()
    assert [h[1] for h in a.training_["history"]] == [h[1] for h in b.training_["history"]]


def test_labels_or_pairs(blobs):
    X, y = blobs
    yp = _partial(y, 10)
    idx = np.flatnonzero(yp >= 0)
    pairs = np.array([(i, j, int(y[i] == y[j])) for a, i in enumerate(idx) for j in idx[a + 1:]])
    a = DMSClustering(**FAST, random_state=0).fit(X, yp)
    b = DMSClustering(**FAST, random_state=0).fit(X, pairs=pairs)
    assert (a.labels_ == b.labels_).all()


def test_predict_and_save_load(blobs, tmp_path):
    X, y = blobs
    m = DMSClustering(**FAST, random_state=0).fit(X, _partial(y))
    assert (m.predict(X) == m.labels_).all()
    labels, conf = m.predict_confidence(X)
    assert conf.shape == (X.shape[0],) and (conf >= 0).all() and (conf <= 1).all()
    m.save(tmp_path / "model")
    m2 = DMSClustering.load(tmp_path / "model")
    assert (m2.predict(X) == m.labels_).all()
    assert m2.n_clusters_ == m.n_clusters_
    far = np.array([[100.0, 100.0]], dtype=np.float32)
    assert m2.predict(far)[0] == NOISE


def test_predict_refuses_wrong_dimension(blobs):
    X, y = blobs
    m = DMSClustering(**FAST, random_state=0).fit(X, _partial(y))
    with pytest.raises(ValueError, match="features"):
        m.predict(np.zeros((3, 5)))


@pytest.mark.parametrize("params, match", [
    (dict(kernel="conv"), "'kernel' parameter"),
    (dict(n_layers=0), "'n_layers' parameter"),
    (dict(hidden=(4,)), "'hidden' parameter"),
    (dict(threshold=1.5), "'threshold' parameter"),
    (dict(similarity="dot"), "'similarity' parameter"),
    (dict(seeding="grid"), "'seeding' parameter"),
    (dict(positive_ratio=(0.5, 0.1)), "'positive_ratio' parameter"),
    (dict(device="tpu"), "'device' parameter"),
])
def test_bad_parameters(blobs, params, match):
    X, y = blobs
    with pytest.raises(ValueError, match=match):
        DMSClustering(**{**FAST, **params}).fit(X, _partial(y))


def test_no_side_information_is_refused(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="requires y"):
        DMSClustering(**FAST).fit(X)
    with pytest.raises(ValueError, match="No side information"):
        DMSClustering(**FAST).fit(X, np.full(X.shape[0], -1))


@pytest.mark.parametrize("kind", ["subtract", "concat"])
@pytest.mark.parametrize("similarity", ["cosine", "bistochastic-cosine", "jaccard"])
def test_kernels_and_similarities_run(blobs, kind, similarity):
    X, y = blobs
    m = DMSClustering(**FAST, kernel=kind, similarity=similarity, random_state=0).fit(X, _partial(y))
    assert m.labels_.shape == (X.shape[0],)
    assert accuracy(y, m.labels_) > 0.8


def test_inference_side_info_keeps_known_groups_apart():
    """Two touching blobs that the kernel cannot tell apart stay two clusters when labels say so."""
    from sklearn.datasets import make_blobs
    X, y = make_blobs(n_samples=240, centers=[[0, 0], [2.0, 0], [12, 12]], cluster_std=0.9, random_state=0)
    X = X.astype(np.float32)
    yp = _partial(y, every=6)
    # an untrained, wide kernel that merges blobs 0 and 1; the labels are its clustering's
    params = {**FAST, "max_steps": 2, "threshold": 0.3, "smoothing": None, "fallback": None}
    paper = DMSClustering(**params, inference_side_info=False, random_state=0).fit(X, yp)
    side = DMSClustering(**params, random_state=0).fit(X, yp)
    lab = yp >= 0
    # labelled points of different classes never share a cluster
    a, b = side.labels_[lab & (y == 0)], side.labels_[lab & (y == 1)]
    assert not set(a[a != NOISE]) & set(b[b != NOISE])
    assert 0 < side.anchors_["index"].size <= lab.sum()  # anchors come from the side information not held back
    assert set(side.anchors_["index"]) <= set(np.flatnonzero(lab))
    assert accuracy(y[~lab], side.labels_[~lab]) > accuracy(y[~lab], paper.labels_[~lab]) + 0.2


def test_anchors_are_capped_per_group():
    from dmshift.constraints import SideInfo
    from dmshift.anchors import select_anchors
    from dmshift.settings import AnchorSettings
    MAX_ANCHORS_PER_GROUP = AnchorSettings().max_per_group
    y = np.repeat([0, 1], [3 * MAX_ANCHORS_PER_GROUP, 5])
    a = select_anchors(SideInfo.build(y.size, y=y))
    assert np.bincount(a["group"]).tolist() == [MAX_ANCHORS_PER_GROUP, 5]
    assert np.all(np.diff(a["index"]) > 0)
    assert np.array_equal(y[a["index"]], a["group"])


def test_groups_of_isolated_pairs_give_no_anchors():
    from dmshift.constraints import SideInfo
    from dmshift.anchors import select_anchors
    pairs = np.array([[0, 1, 1], [2, 3, 1], [0, 2, 0], [4, 5, 0]])
    assert select_anchors(SideInfo.build(10, pairs=pairs)) is None
    a = select_anchors(SideInfo.build(10, pairs=np.vstack([pairs, [[1, 6, 1]]])))
    assert a["index"].tolist() == [0, 1, 6]


def test_auto_threshold_follows_the_kind_of_side_information():
    from dmshift.constraints import SideInfo
    from dmshift.anchors import select_anchors
    from dmshift.clustering import merge_threshold
    from dmshift.settings import ThresholdSettings
    AUTO_THRESHOLD, AUTO_THRESHOLD_ANCHORED = ThresholdSettings().default, ThresholdSettings().anchored
    m = DMSClustering()
    labels = select_anchors(SideInfo.build(9, y=np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])))
    assert merge_threshold(m.threshold, labels) == AUTO_THRESHOLD_ANCHORED
    # same-chains of 3 points but only one "different" pair between three groups: not label-like
    pairs = np.array([[0, 1, 1], [1, 2, 1], [3, 4, 1], [4, 5, 1], [6, 7, 1], [7, 8, 1], [0, 3, 0]])
    assert merge_threshold(m.threshold, select_anchors(SideInfo.build(9, pairs=pairs))) == AUTO_THRESHOLD
    assert merge_threshold(m.threshold, None) == AUTO_THRESHOLD
    assert merge_threshold(DMSClustering(threshold=0.3).threshold, labels) == 0.3
