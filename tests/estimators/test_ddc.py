"""DDCClustering: scikit-learn conformance, restarts and DDC-VOTE, the vote itself, reproducibility, save/load."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs
from sklearn.utils.estimator_checks import parametrize_with_checks

from dmshift.estimators._registry import registered as registered_classes
from dmshift.estimators.ddc import DDCClustering, align_labels, vote
from dmshift.metrics import accuracy

torch.set_num_threads(1)

FAST = {"hidden": (16,), "max_steps": 30, "batch_size": 32, "random_state": 0}

EXPECTED_FAILURES = {
    "check_estimator_sparse_array": "sparse X is accepted (densified), but the check then reads classifier "
                                    "tags because the estimator has predict_proba",
    "check_estimator_sparse_matrix": "same as check_estimator_sparse_array",
}


@pytest.mark.filterwarnings("ignore:DDCClustering is unsupervised")  # the checks pass y to every clusterer
@parametrize_with_checks([DDCClustering(**FAST)], expected_failed_checks=lambda est: EXPECTED_FAILURES)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture
def registered():
    """Every estimator registers itself as a class a model file may name."""
    assert registered_classes().get("DDCClustering") is DDCClustering


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(400, centers=4, cluster_std=0.5, random_state=3)
    return X.astype(np.float32), y


# ---------------------------------------------------------------- the vote
def test_align_labels_recovers_a_permutation():
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 5, 200)
    perm = rng.permutation(5)
    p = align_labels(ref, perm[ref], 5)
    assert np.array_equal(p[perm[ref]], ref)


def test_vote_aligns_permuted_labelings():
    rng = np.random.default_rng(1)
    ref = rng.integers(0, 4, 300)
    runs = [ref, rng.permutation(4)[ref], rng.permutation(4)[ref]]
    assert np.array_equal(vote(runs, 4), ref)


def test_vote_takes_the_majority_after_alignment():
    ref = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    b = np.array([2, 2, 2, 0, 0, 1, 1, 1, 1])  # ref relabelled 0->2, 1->0, 2->1, point 5 moved
    c = np.array([1, 1, 1, 2, 2, 0, 0, 0, 0])  # ref relabelled 0->1, 1->2, 2->0, point 5 moved the same way
    out = vote([ref, b, c], 3)
    assert np.array_equal(out, [0, 0, 0, 1, 1, 2, 2, 2, 2])  # point 5: two voters against the reference


def test_vote_ties_go_to_the_reference():
    ref = np.array([0, 0, 1, 1, 2, 2])
    b = np.array([0, 0, 1, 1, 2, 0])
    c = np.array([0, 0, 1, 1, 2, 1])
    assert vote([ref, b, c], 3)[5] == 2  # three different votes


# ---------------------------------------------------------------- the estimator
def test_clusters_blobs_unsupervised(blobs):
    X, y = blobs
    km = DDCClustering(n_clusters=4, hidden=(32, 32), max_steps=300, random_state=0).fit(X)
    assert accuracy(y, km.labels_) > 0.95
    assert km.side_info_ is None


def test_side_information_is_ignored_with_a_warning(blobs):
    X, y = blobs
    with pytest.warns(UserWarning, match="unsupervised"):
        a = DDCClustering(**FAST).fit(X, y)
    with pytest.warns(UserWarning, match="unsupervised"):
        DDCClustering(**FAST).fit(X, pairs=[[0, 1, 1]])
    b = DDCClustering(**FAST).fit(X)
    assert np.array_equal(a.labels_, b.labels_)


def test_squared_bandwidth_rule_clusters_blobs(blobs):
    X, y = blobs
    km = DDCClustering(n_clusters=4, hidden=(32, 32), bandwidth="squared", max_steps=300, random_state=0).fit(X)
    assert accuracy(y, km.labels_) > 0.95


def test_restarts_keep_the_lowest_unsupervised_loss(blobs):
    X, _ = blobs
    km = DDCClustering(n_clusters=4, n_init=3, **FAST).fit(X)
    assert np.array_equal(km.vote_labels_, km.labels_[None, :])
    assert km.run_scores_.shape == (3,)
    assert km.best_run_ == int(np.argmin(km.run_scores_))
    assert len(km.nets_) == 1


def test_vote_keeps_three_aligned_networks(blobs):
    X, y = blobs
    km = DDCClustering(n_clusters=4, hidden=(32, 32), max_steps=200, n_init=4, vote=True, random_state=0).fit(X)
    assert len(km.nets_) == 3
    assert km.vote_perms_.shape == (3, 4)
    assert all(sorted(p) == [0, 1, 2, 3] for p in km.vote_perms_.tolist())
    assert np.array_equal(km.predict(X), km.labels_)
    assert accuracy(y, km.labels_) > 0.95
    assert km.vote_labels_.shape == (3, 400)
    assert np.array_equal(vote(km.vote_labels_, 4), km.labels_)  # already aligned: the vote is the labels
    P = km.predict_proba(X)
    assert np.allclose(P.sum(1), 1.0, atol=1e-5)
    assert np.mean(P.argmax(1) == km.labels_) > 0.95


def test_vote_needs_three_runs(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="n_init"):
        DDCClustering(n_init=2, vote=True, **FAST).fit(X)


def test_same_seed_same_model(blobs):
    X, _ = blobs
    a = DDCClustering(**FAST).fit(X)
    b = DDCClustering(**FAST).fit(X)
    assert np.array_equal(a.labels_, b.labels_)
    assert np.allclose(a.predict_proba(X), b.predict_proba(X))


def test_images_use_the_ddc_lenet():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 16 * 16)).astype(np.float32)
    km = DDCClustering(n_clusters=2, input_shape=(1, 16, 16), max_steps=5, batch_size=16, random_state=0).fit(X)
    body = km.nets_[0].body
    assert type(body).__name__ == "LeNet" and body.out_features == 100


@pytest.mark.parametrize("params, match", [
    ({"rel_sigma": 0.0}, "rel_sigma"), ({"bandwidth": "median"}, "bandwidth"), ({"vote": "yes"}, "vote"), ({"n_init": 0}, "n_init"),
    ({"max_steps": 0}, "max_steps"),
])
def test_parameter_errors(blobs, params, match):
    X, _ = blobs
    with pytest.raises(ValueError, match=match):
        DDCClustering(**{**FAST, **params}).fit(X)


@pytest.mark.parametrize("use_vote", [False, True])
def test_save_and_load(tmp_path, blobs, registered, use_vote):
    X, _ = blobs
    km = DDCClustering(n_clusters=4, n_init=3 if use_vote else 1, vote=use_vote, **FAST).fit(X)
    km.save(tmp_path / "ddc")
    back = DDCClustering.load(tmp_path / "ddc", device="cpu")
    assert len(back.nets_) == len(km.nets_)
    assert np.array_equal(back.vote_perms_, km.vote_perms_)
    assert np.array_equal(back.predict(X), km.predict(X))
    assert np.allclose(back.predict_proba(X), km.predict_proba(X))
