"""SemiSupervisedKMeans: scikit-learn conformance, hand-checked references, the estimate of k, save/load."""

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from dmshift.estimators.ss_kmeans import SemiSupervisedKMeans, golden_section_argmax, ss_kmeans
from dmshift.metrics import accuracy

CENTERS = np.array([[6.0, 0.5], [0.5, 6.0], [-6.0, 0.5], [0.5, -6.0]])


_FEWER_CLUSTERS = ("sets n_clusters below the number of classes in the y it passes, which are partial labels "
                   "here: every labelled class needs its own cluster, so fit raises a ValueError")
EXPECTED_FAILURES = {name: _FEWER_CLUSTERS for name in (
    "check_dont_overwrite_parameters", "check_fit2d_1feature", "check_fit2d_predict1d",
    "check_methods_sample_order_invariance", "check_methods_subset_invariance")}


@parametrize_with_checks([SemiSupervisedKMeans(random_state=0)], expected_failed_checks=lambda est: EXPECTED_FAILURES)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _blobs(n=400, std=0.6, seed=0, dtype=np.float64):
    X, y = make_blobs(n, centers=CENTERS, cluster_std=std, random_state=seed)
    return X.astype(dtype), y


def _normalised(X):
    return X / np.linalg.norm(X, axis=1, keepdims=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lloyd_without_labels_is_scikit_learns(dtype):
    X, _ = _blobs(std=1.5, dtype=dtype)
    Xn = _normalised(X)
    init = Xn[[0, 1, 2, 3]]
    labels, centers, inertia, n_iter = ss_kmeans(Xn, init, np.full(len(X), -1))
    ref = KMeans(n_clusters=4, init=init, n_init=1, algorithm="lloyd").fit(Xn)
    np.testing.assert_array_equal(labels, ref.labels_)
    tol = 1e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(centers, ref.cluster_centers_, atol=tol)
    assert inertia == pytest.approx(ref.inertia_, rel=1e-4) and n_iter == ref.n_iter_
    assert centers.dtype == dtype


def test_unlabelled_with_k_given_is_kmeans_on_normalised_data():
    X, _ = _blobs()
    ours = SemiSupervisedKMeans(n_clusters=4, standardize=False, random_state=0).fit(X)
    ref = KMeans(n_clusters=4, n_init=10, random_state=0).fit(_normalised(X))
    assert adjusted_rand_score(ref.labels_, ours.labels_) == 1.0
    assert ours.k_scores_ == {} and ours.classes_.size == 0


def test_every_point_labelled_gives_the_class_means():
    X, y = _blobs(std=2.0)
    model = SemiSupervisedKMeans(n_clusters=4, standardize=False, random_state=0).fit(X, y)
    Xn = _normalised(X)
    np.testing.assert_array_equal(model.labels_, y)
    np.testing.assert_allclose(model.cluster_centers_, np.stack([Xn[y == c].mean(0) for c in range(4)]))
    assert model.n_iter_ == 1  # the means are where they start: nothing moves


def test_labelled_points_stay_in_their_class():
    X, y = _blobs()
    yp = np.where(np.arange(len(y)) % 5 == 0, y, -1)
    stray = np.flatnonzero(y == 1)[0]
    yp[stray] = 0  # a labelled point of class 0 in the middle of class 1
    model = SemiSupervisedKMeans(n_clusters=4, random_state=0).fit(X, yp)
    assert model.labels_[stray] == 0
    assert model.predict(X[stray:stray + 1])[0] == model.labels_[np.flatnonzero(y == 1)[1]]
    free = yp == -1
    np.testing.assert_array_equal(model.predict(X)[free], model.labels_[free])  # converged: nearest centroid


def test_k_is_estimated_where_labelled_classes_would_merge_or_split():
    X, y = _blobs(n=600)
    yp = np.where(np.arange(len(y)) % 10 == 0, y, -1)
    for seed in (1, 2):
        assert SemiSupervisedKMeans(n_init=3, random_state=seed).fit(X, yp).n_clusters_ == 4
    model = SemiSupervisedKMeans(n_init=3, random_state=0).fit(X, yp)
    assert model.n_clusters_ == 4
    assert model.k_scores_[4] == 1.0 and max(v for k, v in model.k_scores_.items() if k != 4) < 1.0
    assert min(model.k_scores_) >= 4 and max(model.k_scores_) <= min(600 // 5, 10 * 4)  # the default k_max
    assert accuracy(y, model.labels_) > 0.99


def test_unseen_classes_get_their_own_clusters():
    X, y = _blobs(n=600)
    yp = np.where((np.arange(len(y)) % 10 == 0) & (y < 2), y, -1)  # classes 2 and 3 never labelled
    model = SemiSupervisedKMeans(n_clusters=4, random_state=0).fit(X, yp)
    assert accuracy(y, model.labels_) > 0.99
    np.testing.assert_array_equal(model.labels_[yp >= 0], yp[yp >= 0])  # ids 0, 1 are the labelled classes
    assert set(model.labels_[y >= 2]) == {2, 3}


def test_classes_keep_the_users_coding():
    X, y = _blobs()
    yp = np.where(np.arange(len(y)) % 10 == 0, 7 * y + 3, -1)
    model = SemiSupervisedKMeans(random_state=0).fit(X, yp)
    np.testing.assert_array_equal(model.classes_, [3, 10, 17, 24])
    np.testing.assert_array_equal(model.classes_[model.labels_[yp >= 0]], yp[yp >= 0])


def test_golden_section_finds_the_maximum_with_few_evaluations():
    for peak in (2, 3, 17, 58, 99, 100):
        k, scores = golden_section_argmax(lambda k: -abs(k - peak), 2, 100)
        assert k == peak
        assert len(scores) <= 16  # against 99 for trying every k
    k, _ = golden_section_argmax(lambda k: 1.0, 3, 40)
    assert k == 3  # ties go to the smaller k
    assert golden_section_argmax(lambda k: k, 5, 5) == (5, {5: 5.0})


def test_same_seed_same_labels():
    X, y = _blobs(std=1.5)
    yp = np.where(np.arange(len(y)) % 20 == 0, y, -1)
    a = SemiSupervisedKMeans(random_state=3).fit(X, yp)
    b = SemiSupervisedKMeans(random_state=3).fit(X, yp)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.k_scores_ == b.k_scores_


@pytest.mark.parametrize("params, fit_kw, match", [
    ({}, {}, "'n_clusters' parameter is 'auto', which needs labelled points"),
    ({"n_clusters": 1}, {"y": True}, "'n_clusters' parameter must be 'auto' or an int in \\[4, 400\\]"),
    ({"n_clusters": "many"}, {}, "'n_clusters' parameter"),
    ({"k_max": 2}, {"y": True}, "'k_max' parameter"),
    ({"n_init": 0}, {"y": True}, "n_init"),
    ({"max_iter": 0}, {"y": True}, "max_iter"),
    ({"tol": -1.0}, {"y": True}, "tol"),
    ({}, {"pairs": np.array([[0, 1, 1]])}, "'pairs' parameter of SemiSupervisedKMeans.fit must be None"),
])
def test_errors(params, fit_kw, match):
    X, y = _blobs()
    kw = dict(fit_kw)
    if kw.pop("y", False):
        kw["y"] = y
    with pytest.raises(ValueError, match=match):
        SemiSupervisedKMeans(**params).fit(X, **kw)


def test_save_and_load(tmp_path):
    X, y = _blobs(dtype=np.float32)
    yp = np.where(np.arange(len(y)) % 10 == 0, y, -1)
    model = SemiSupervisedKMeans(random_state=0).fit(X, yp)
    model.save(tmp_path / "sskm")
    back = SemiSupervisedKMeans.load(tmp_path / "sskm", device="cpu")
    assert back.get_params() == model.get_params()
    np.testing.assert_array_equal(back.labels_, model.labels_)
    np.testing.assert_array_equal(back.predict(X), model.predict(X))
    assert back.k_scores_ == model.k_scores_ and back.n_clusters_ == model.n_clusters_


def test_offsets_and_scales_give_the_labels_of_x():
    X, y = _blobs()
    yp = np.where(np.arange(len(y)) % 5 == 0, y, -1)
    base = SemiSupervisedKMeans(random_state=0).fit(X, yp)
    for Z in (X + 1.7e9, X * 1e20, X * 1e-20):
        m = SemiSupervisedKMeans(random_state=0).fit(Z, yp)
        np.testing.assert_array_equal(m.labels_, base.labels_)
        np.testing.assert_array_equal(m.predict(Z), base.predict(X))
