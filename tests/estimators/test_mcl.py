"""MCLClustering: scikit-learn conformance, learning from labels or pairs, reproducibility, save/load."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs
from sklearn.utils.estimator_checks import parametrize_with_checks

from dmshift.estimators._registry import registered as registered_classes
from dmshift.estimators.mcl import MCLClustering
from dmshift.metrics import nmi

torch.set_num_threads(1)

FAST = {"hidden": (16,), "max_steps": 30, "batch_size": 32, "random_state": 0}

EXPECTED_FAILURES = {
    "check_clustering": "fits on X alone, but a pairwise method needs side information (y or pairs)",
    "check_estimator_sparse_array": "sparse X is accepted (densified), but the check then reads classifier "
                                    "tags because the estimator has predict_proba",
    "check_estimator_sparse_matrix": "same as check_estimator_sparse_array",
}


@parametrize_with_checks([MCLClustering(**FAST)], expected_failed_checks=lambda est: EXPECTED_FAILURES)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture
def registered():
    """Every estimator registers itself as a class a model file may name."""
    assert registered_classes().get("MCLClustering") is MCLClustering


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(300, centers=3, cluster_std=0.6, random_state=0)
    return X.astype(np.float32), y


def test_learns_from_partial_labels(blobs):
    X, y = blobs
    yp = np.full_like(y, -1)
    yp[:150] = y[:150]
    km = MCLClustering(n_clusters=8, hidden=(32,), max_steps=150, random_state=0).fit(X, yp)
    assert nmi(y, km.labels_) > 0.9
    assert km.n_clusters_ <= 4


def test_learns_from_pairs_only(blobs):
    X, y = blobs
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, 300, (2, 600))
    keep = i != j
    pairs = np.column_stack([i[keep], j[keep], (y[i] == y[j])[keep].astype(int)])
    km = MCLClustering(n_clusters=5, hidden=(32,), max_steps=200, random_state=0).fit(X, pairs=pairs)
    assert nmi(y, km.labels_) > 0.9


def test_same_seed_same_model_and_other_seed_differs(blobs):
    X, y = blobs
    a = MCLClustering(**FAST).fit(X, y)
    b = MCLClustering(**FAST).fit(X, y)
    c = MCLClustering(**{**FAST, "random_state": 1}).fit(X, y)
    assert np.array_equal(a.labels_, b.labels_)
    assert np.allclose(a.predict_proba(X), b.predict_proba(X))
    assert not np.allclose(a.predict_proba(X), c.predict_proba(X))


def test_save_and_load(tmp_path, blobs, registered):
    X, y = blobs
    km = MCLClustering(n_clusters=4, **FAST).fit(X, y)
    km.save(tmp_path / "mcl")
    back = MCLClustering.load(tmp_path / "mcl", device="cpu")
    assert np.array_equal(back.predict(X), km.predict(X))
    assert np.allclose(back.predict_proba(X), km.predict_proba(X))
    assert back.n_clusters_ == km.n_clusters_
