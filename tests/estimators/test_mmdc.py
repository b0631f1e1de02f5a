"""MMDCClustering: target sampling and assignment, training switches, sklearn contract, persistence."""

import itertools
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, make_blobs
from sklearn.utils.estimator_checks import parametrize_with_checks

from dmshift.estimators._registry import registered as registered_classes
from dmshift.estimators.mmdc import MMDCClustering, assign_targets, mixture_means, sample_targets
from dmshift.metrics import accuracy

SMALL = dict(n_clusters=3, n_epochs=20, batch_size=16, hidden=(32,), random_state=0)


@pytest.fixture
def registered():
    """Every estimator registers itself as a class a model file may name."""
    assert registered_classes().get("MMDCClustering") is MMDCClustering


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return (d.data / 16).astype(np.float32), d.target


# ---------------------------------------------------------------------------- targets
def test_assignment_is_the_cheapest_permutation():
    rng = np.random.default_rng(0)
    out = torch.as_tensor(rng.normal(size=(6, 3)), dtype=torch.float32)
    tgt = torch.as_tensor(rng.normal(size=(6, 3)), dtype=torch.float32)
    perm = assign_targets(out, tgt)
    assert sorted(perm.tolist()) == list(range(6))  # a permutation
    dist = torch.cdist(out, tgt).numpy()
    cost = dist[np.arange(6), perm].sum()
    best = min(dist[np.arange(6), list(p)].sum() for p in itertools.permutations(range(6)))
    assert cost == pytest.approx(best, rel=1e-6)


def test_assignment_recovers_a_shuffle():
    tgt = torch.eye(4)
    shuffle = np.array([2, 0, 3, 1])
    perm = assign_targets(tgt[shuffle] + 0.01, tgt)
    np.testing.assert_array_equal(perm, shuffle)


def test_targets_with_zero_variance_are_the_one_hot_means():
    rng = np.random.default_rng(0)
    means = mixture_means(4, 4, "onehot", rng)
    np.testing.assert_array_equal(means, np.eye(4, dtype=np.float32))
    t = sample_targets(400, means, 0.0, rng)
    assert {tuple(r) for r in t} <= {tuple(r) for r in means}
    counts = np.bincount(t.argmax(1), minlength=4)
    assert counts.min() > 60  # equal mixture weights


def test_targets_lie_on_the_unit_sphere():
    rng = np.random.default_rng(1)
    means = mixture_means(3, 8, "random", rng)
    t = sample_targets(50, means, 0.5, rng)
    np.testing.assert_allclose(np.linalg.norm(means, axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1, rtol=1e-5)


# ---------------------------------------------------------------------------- estimator
def test_clusters_blobs_and_predict_matches_labels():
    X, y = make_blobs(240, centers=3, random_state=0)
    m = MMDCClustering(**{**SMALL, "n_epochs": 30}).fit(X)
    assert accuracy(y, m.labels_) > 0.9
    np.testing.assert_array_equal(m.predict(X), m.labels_)
    assert m.n_clusters_ == 3
    sizes = np.bincount(m.labels_)
    assert np.all(np.diff(sizes) <= 0)  # numbered by decreasing size
    assert m.embed(X).shape == (240, 3)


def test_same_seed_same_labels():
    X, _ = make_blobs(120, centers=3, random_state=2)
    a = MMDCClustering(**SMALL).fit(X).labels_
    b = MMDCClustering(**SMALL).fit(X).labels_
    np.testing.assert_array_equal(a, b)


def test_side_information_is_ignored_with_a_warning():
    X, y = make_blobs(60, centers=3, random_state=0)
    with pytest.warns(UserWarning, match="unsupervised"):
        a = MMDCClustering(**SMALL).fit(X, y).labels_
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = MMDCClustering(**SMALL).fit(X).labels_
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("rotation,refine", [(True, 0), (False, 2), (True, 1)])
def test_image_switches_run(digits, rotation, refine):
    X, y = digits
    X, y = X[:256], y[:256]
    m = MMDCClustering(n_clusters=10, image_shape=(8, 8), widths=(8, 16), n_epochs=2, n_refine_epochs=refine,
                       batch_size=64, rotation=rotation, random_state=0).fit(X)
    tr = m.training_
    assert tr["main_steps"] == 2 * (2 if rotation else 1) * 4 and tr["refine_steps"] == refine * 4
    assert tr["steps"] == tr["main_steps"] + tr["refine_steps"]
    assert m.labels_.shape == (256,) and m.labels_.max() < 10


def test_rotation_defaults_on_for_images_only(digits):
    X, _ = digits
    m = MMDCClustering(n_clusters=10, image_shape=(8, 8), widths=(4,), n_epochs=1, batch_size=128, random_state=0)
    assert m.fit(X[:256]).net_.rotation_head is not None
    v = MMDCClustering(n_clusters=10, hidden=(8,), n_epochs=1, batch_size=128, random_state=0).fit(X[:256])
    assert v.net_.rotation_head is None


@pytest.mark.parametrize("params,match", [
    (dict(rotation=True), "square images"),
    (dict(image_shape=(4, 16), rotation=True), "square images"),
    (dict(image_shape=(8, 9)), "multiply"),
    (dict(target_dim=2), "target_dim"),
    (dict(means="spread"), "means"),
    (dict(sigma=-1.0), "sigma"),
    (dict(n_epochs=0), "n_epochs"),
])
def test_parameter_errors(params, match):
    X = np.random.default_rng(0).normal(size=(20, 64))
    with pytest.raises(ValueError, match=match):
        MMDCClustering(**{**SMALL, **params}).fit(X)


def test_save_and_load(tmp_path, registered):
    X, _ = make_blobs(90, centers=3, random_state=0)
    m = MMDCClustering(**SMALL).fit(X)
    m.save(tmp_path / "m")
    back = MMDCClustering.load(tmp_path / "m", device="cpu")
    np.testing.assert_array_equal(back.predict(X), m.predict(X))
    np.testing.assert_array_equal(back.labels_, m.labels_)
    np.testing.assert_allclose(back.embed(X), m.embed(X), rtol=1e-6)


def test_save_and_load_images(tmp_path, registered, digits):
    X, _ = digits
    m = MMDCClustering(n_clusters=10, image_shape=(8, 8), widths=(4, 8), n_epochs=1, batch_size=128,
                       random_state=0).fit(X[:256])
    m.save(tmp_path / "m")
    back = MMDCClustering.load(tmp_path / "m", device="cpu")
    np.testing.assert_array_equal(back.predict(X[256:400]), m.predict(X[256:400]))


@pytest.mark.filterwarnings("ignore:MMDCClustering is unsupervised")
@parametrize_with_checks([MMDCClustering(**SMALL)])
def test_sklearn_compatible(estimator, check):
    check(estimator)
