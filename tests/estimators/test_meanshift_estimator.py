"""dmshift's MeanShift against scikit-learn's: same bandwidth, seeds, centers and labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.cluster import MeanShift as SkMeanShift
from sklearn.cluster import estimate_bandwidth, get_bin_seeds
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from dmshift.constants import NOISE
from dmshift.estimators.meanshift import MeanShift, _bin_seeds, _estimate_bandwidth

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _blobs(n=400, d=2, centers=4, std=0.7, seed=0, dtype=np.float64):
    X, y = make_blobs(n_samples=n, n_features=d, centers=centers, cluster_std=std, random_state=seed)
    return X.astype(dtype), y


def _assert_same(ours, theirs, X):
    assert ours.cluster_centers_.shape == theirs.cluster_centers_.shape
    tol = 1e-4 if X.dtype == np.float32 else 1e-8
    np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, atol=tol, rtol=tol)
    assert adjusted_rand_score(theirs.labels_, ours.labels_) >= 0.99
    assert (ours.labels_ == theirs.labels_).mean() >= 0.99
    assert ours.n_iter_ == theirs.n_iter_


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("params, n, d", [
    ({}, 200, 2),
    ({"bandwidth": 1.2}, 250, 3),
    ({"bin_seeding": True}, 600, 2),
    ({"bin_seeding": True, "min_bin_freq": 5, "bandwidth": 1.0}, 600, 5),
    ({"bandwidth": 0.8, "cluster_all": False}, 200, 2),
    ({"bandwidth": 1.5, "max_iter": 2}, 200, 2),
])
def test_matches_sklearn_on_blobs(device, params, n, d):
    X, _ = _blobs(n=n, d=d)
    theirs = SkMeanShift(**params).fit(X)
    ours = MeanShift(device=device, **params).fit(X)
    _assert_same(ours, theirs, X)
    Xn = X[:50] + 0.3
    np.testing.assert_array_equal(ours.predict(Xn), theirs.predict(Xn))


def test_float32_stays_float32_and_matches():
    X, _ = _blobs(n=300, d=4, dtype=np.float32)
    theirs = SkMeanShift(bandwidth=2.0).fit(X)
    ours = MeanShift(bandwidth=2.0, device="cpu").fit(X)
    assert ours.cluster_centers_.dtype == np.float32
    _assert_same(ours, theirs, X)


def test_given_seeds_and_noise_labels():
    X, _ = _blobs(n=200, d=2, centers=[[0, 0], [6, 6]], std=0.5)
    X = np.vstack([X, [[30.0, -30.0]]])  # an orphan
    seeds = X[[0, 1, 2, 150]]
    theirs = SkMeanShift(bandwidth=2.0, seeds=seeds, cluster_all=False).fit(X)
    ours = MeanShift(bandwidth=2.0, seeds=seeds, cluster_all=False, device="cpu").fit(X)
    _assert_same(ours, theirs, X)
    assert ours.labels_[-1] == NOISE


def test_memory_budget_does_not_change_results():
    X, _ = _blobs(n=300, d=3)
    a = MeanShift(bandwidth=1.5, device="cpu").fit(X)
    b = MeanShift(bandwidth=1.5, device="cpu", memory_budget=2**16).fit(X)
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, atol=1e-10)
    np.testing.assert_array_equal(a.labels_, b.labels_)


def test_gaussian_kernel_finds_the_blobs():
    X, y = _blobs(n=600, d=3, centers=[[0, 0, 0], [8, 0, 0], [0, 8, 0]], std=1.0)
    ms = MeanShift(bandwidth=1.5, kernel="gaussian", bin_seeding=True, device="cpu").fit(X)
    assert ms.cluster_centers_.shape[0] == 3
    assert adjusted_rand_score(y, ms.labels_) >= 0.99


@pytest.mark.parametrize("quantile", [0.3, 0.05])
def test_estimate_bandwidth_matches_sklearn(quantile):
    X, _ = _blobs(n=250, d=3)
    ours = _estimate_bandwidth(torch.as_tensor(X), quantile, budget=2**14)
    assert ours == pytest.approx(estimate_bandwidth(X, quantile=quantile), rel=1e-9)


def test_bin_seeds_match_sklearn():
    X, _ = _blobs(n=500, d=2)
    theirs = get_bin_seeds(X, 1.3, min_bin_freq=3)
    ours, binned = _bin_seeds(torch.as_tensor(X), 1.3, 3)
    assert binned
    key = lambda a: sorted(map(tuple, np.round(np.asarray(a, dtype=np.float64), 5)))  # noqa: E731
    assert key(ours.numpy()) == key(theirs)
    with pytest.warns(UserWarning, match="Binning data failed"):
        seeds, binned = _bin_seeds(torch.as_tensor(X), 1e-6, 1)
    assert not binned and seeds.shape == X.shape


def test_no_point_near_any_seed_raises():
    X, _ = _blobs(n=50, d=2)
    with pytest.raises(ValueError, match="No point was within bandwidth"):
        MeanShift(bandwidth=0.1, seeds=[[1e3, 1e3]], device="cpu").fit(X)


@pytest.mark.parametrize("params, match", [
    ({"bandwidth": -1.0}, "'bandwidth' parameter"),
    ({"kernel": "epanechnikov"}, "'kernel' parameter"),
    ({"min_bin_freq": 0}, "'min_bin_freq' parameter"),
    ({"max_iter": -1}, "'max_iter' parameter"),
    ({"bin_seeding": "yes"}, "'bin_seeding' parameter"),
    ({"memory_budget": 10}, "'memory_budget' parameter"),
    ({"seeds": [[1.0, 2.0, 3.0]]}, "'seeds' parameter"),
])
def test_invalid_parameters(params, match):
    X, _ = _blobs(n=30, d=2)
    with pytest.raises(ValueError, match=match):
        MeanShift(device="cpu", **params).fit(X)


@parametrize_with_checks([MeanShift(device="cpu", max_iter=50)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
