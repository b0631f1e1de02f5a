"""LabelSpreadingClustering: scikit-learn conformance, agreement with LabelSpreading, errors, save/load."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.semi_supervised import LabelSpreading
from sklearn.utils.estimator_checks import parametrize_with_checks

from dmshift.estimators.label_spreading import LabelSpreadingClustering

EXPECTED_FAILURES = {
    "check_clustering": "fits on X alone, but label spreading needs partial labels y",
    "check_clustering(readonly_memmap=True)": "needs partial labels y",
}


@parametrize_with_checks([LabelSpreadingClustering()], expected_failed_checks=lambda est: EXPECTED_FAILURES)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(300, centers=3, cluster_std=1.5, random_state=0)
    y_partial = np.where(np.arange(300) % 10 == 0, y, -1)
    return X, y, y_partial


def test_labels_are_label_spreading_transduction_in_cluster_ids(blobs):
    X, _, yp = blobs
    yp = np.where(yp >= 0, 10 * yp + 5, -1)  # the user's own coding: 5, 15, 25
    ours = LabelSpreadingClustering().fit(X, yp)
    ref = LabelSpreading(kernel="knn").fit(X, yp)
    np.testing.assert_array_equal(ours.classes_, [5, 15, 25])
    np.testing.assert_array_equal(ours.classes_[ours.labels_], ref.transduction_)
    np.testing.assert_allclose(ours.label_distributions_, ref.label_distributions_)
    assert ours.n_clusters_ == 3 and ours.n_iter_ == ref.n_iter_


def test_predict_is_label_spreading_predict(blobs):
    X, _, yp = blobs
    ours = LabelSpreadingClustering(n_neighbors=5).fit(X, yp)
    ref = LabelSpreading(kernel="knn", n_neighbors=5).fit(X, yp)
    Q = np.random.default_rng(0).normal(scale=4.0, size=(50, 2))
    np.testing.assert_array_equal(ours.classes_[ours.predict(Q)], ref.predict(Q))


def test_recovers_separated_blobs():
    X, y = make_blobs(300, centers=3, cluster_std=0.5, random_state=0)
    yp = np.where(np.arange(300) % 10 == 0, y, -1)
    labels = LabelSpreadingClustering().fit_predict(X, yp)
    assert np.mean(labels == y) > 0.99  # classes 0, 1, 2 are cluster ids 0, 1, 2


def test_pairs_and_missing_labels_are_refused(blobs):
    X, _, yp = blobs
    with pytest.raises(ValueError, match="'pairs' parameter of LabelSpreadingClustering.fit must be None"):
        LabelSpreadingClustering().fit(X, pairs=np.array([[0, 1, 1], [0, 2, 0]]))
    with pytest.raises(ValueError, match="requires y"):
        LabelSpreadingClustering().fit(X)
    with pytest.raises(ValueError, match="at least one labelled point"):
        LabelSpreadingClustering().fit(X, np.full(300, -1))
    with pytest.raises(ValueError, match="'y' parameter"):
        LabelSpreadingClustering().fit(X, yp[:10])


@pytest.mark.parametrize("params, match", [
    ({"n_neighbors": 0}, "n_neighbors"), ({"alpha": 1.0}, "alpha"), ({"max_iter": 0}, "max_iter"),
    ({"tol": -1.0}, "tol"),
])
def test_parameter_errors(blobs, params, match):
    X, _, yp = blobs
    with pytest.raises(ValueError, match=match):
        LabelSpreadingClustering(**params).fit(X, yp)


def test_tiny_data_caps_the_neighbours():
    X = np.array([[0.0], [0.1], [5.0], [5.1]])
    model = LabelSpreadingClustering().fit(X, [0, -1, 1, -1])
    np.testing.assert_array_equal(model.labels_, [0, 0, 1, 1])


def test_save_and_load(tmp_path, blobs):
    X, _, yp = blobs
    model = LabelSpreadingClustering().fit(X.astype(np.float32), yp)
    model.save(tmp_path / "ls")
    back = LabelSpreadingClustering.load(tmp_path / "ls", device="cpu")
    assert back.get_params() == model.get_params()
    np.testing.assert_array_equal(back.labels_, model.labels_)
    np.testing.assert_array_equal(back.classes_, model.classes_)
    np.testing.assert_array_equal(back.predict(X), model.predict(X))


def test_labels_as_people_hold_them_give_the_same_clusters():
    """Strings with None, floats with NaN and integers with -1 are one labelling (every estimator reads y alike)."""
    from dmshift.estimators.ss_kmeans import SemiSupervisedKMeans

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 20)
    X = rng.normal(size=(60, 2)) + 5 * np.eye(3)[y][:, :2]
    y_int = np.where(np.arange(60) % 2 == 0, y, -1)
    y_nan = np.where(y_int < 0, np.nan, y_int)
    y_str = np.where(y_int < 0, None, np.array(["a", "b", "c"], dtype=object)[y])
    for cls in (LabelSpreadingClustering, SemiSupervisedKMeans):
        seeded = {"random_state": 0} if "random_state" in cls().get_params() else {}
        ref = cls(**seeded).fit(X, y_int).labels_
        for yy in (y_nan, y_str):
            np.testing.assert_array_equal(cls(**seeded).fit(X, yy).labels_, ref)


def test_offsets_and_scales_give_the_labels_of_x():
    rng = np.random.default_rng(0)
    y = np.arange(90) % 3
    X = np.round((rng.normal(size=(90, 3)) * 0.3 + 4 * np.eye(3)[y]) * 1024) / 1024  # exact under the offset
    yp = np.where(np.arange(90) % 4 == 0, y, -1)
    base = LabelSpreadingClustering().fit(X, yp)
    for Z in (X + 1.7e9, X * 1e20, X * 1e-20):
        np.testing.assert_array_equal(LabelSpreadingClustering().fit(Z, yp).labels_, base.labels_)
