"""KCLClustering: scikit-learn conformance, side information in every form, batches, reproducibility, save/load."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs
from sklearn.utils.estimator_checks import parametrize_with_checks

from dmshift.constraints import SideInfo
from dmshift.estimators._pairwise import PairBatchSampler
from dmshift.estimators._registry import registered as registered_classes
from dmshift.estimators.kcl import KCLClustering
from dmshift.metrics import nmi

torch.set_num_threads(1)

FAST = {"hidden": (16,), "max_steps": 30, "batch_size": 32, "random_state": 0}

PAIRWISE_EXPECTED_FAILURES = {
    "check_clustering": "fits on X alone, but a pairwise method needs side information (y or pairs)",
    "check_estimator_sparse_array": "sparse X is accepted (densified), but the check then reads classifier "
                                    "tags because the estimator has predict_proba",
    "check_estimator_sparse_matrix": "same as check_estimator_sparse_array",
}


@parametrize_with_checks([KCLClustering(**FAST)], expected_failed_checks=lambda est: PAIRWISE_EXPECTED_FAILURES)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture
def registered():
    """Every estimator registers itself as a class a model file may name."""
    assert registered_classes().get("KCLClustering") is KCLClustering


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(300, centers=3, cluster_std=0.6, random_state=0)
    return X.astype(np.float32), y


def _pairs_from(y, m, rng):
    i, j = rng.integers(0, y.size, (2, m))
    keep = i != j
    i, j = i[keep], j[keep]
    return np.column_stack([i, j, (y[i] == y[j]).astype(int)])


def test_learns_from_partial_labels_and_leaves_extra_outputs_empty(blobs):
    X, y = blobs
    yp = np.full_like(y, -1)
    yp[:150] = y[:150]
    km = KCLClustering(n_clusters=8, hidden=(32,), max_steps=300, random_state=0).fit(X, yp)
    assert nmi(y, km.labels_) > 0.9
    assert km.n_clusters_ <= 4
    assert np.mean(km.labels_ < 3) > 0.95  # the three largest clusters hold almost every point
    assert km.side_info_["n_labelled"] == 150


def test_learns_from_pairs_only(blobs):
    X, y = blobs
    pairs = _pairs_from(y, 600, np.random.default_rng(0))
    km = KCLClustering(n_clusters=5, hidden=(32,), max_steps=300, random_state=0).fit(X, pairs=pairs)
    assert nmi(y, km.labels_) > 0.9


def test_accepts_labels_and_pairs_together(blobs):
    X, y = blobs
    yp = np.full_like(y, -1)
    yp[:20] = y[:20]
    pairs = _pairs_from(y, 100, np.random.default_rng(1))
    km = KCLClustering(n_clusters=3, **{**FAST, "max_steps": 5}).fit(X, yp, pairs=pairs)
    assert km.side_info_["n_labelled"] > 20


def test_contradictory_pairs_raise_unless_majority(blobs):
    X, _ = blobs
    pairs = np.array([[0, 1, 1], [1, 2, 1], [0, 2, 0], [3, 4, 0]])
    with pytest.raises(ValueError, match="contradictory"):
        KCLClustering(**FAST).fit(X, pairs=pairs)
    KCLClustering(**FAST, on_conflict="majority").fit(X, pairs=np.vstack([pairs, [[5, 6, 1], [5, 7, 1]]]))


def test_needs_side_information(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="requires y"):
        KCLClustering(**FAST).fit(X)
    with pytest.raises(ValueError, match="no 'different'"):
        KCLClustering(**FAST).fit(X, np.r_[np.zeros(10, int), np.full(290, -1)])


def test_same_seed_same_model(blobs):
    X, y = blobs
    a = KCLClustering(**FAST).fit(X, y)
    b = KCLClustering(**FAST).fit(X, y)
    assert np.array_equal(a.labels_, b.labels_)
    assert np.allclose(a.predict_proba(X), b.predict_proba(X))


def test_predict_and_proba_agree_with_labels(blobs):
    X, y = blobs
    km = KCLClustering(n_clusters=6, **{**FAST, "max_steps": 60}).fit(X, y)
    P = km.predict_proba(X)
    assert P.shape == (300, 6)
    assert np.allclose(P.sum(1), 1.0, atol=1e-5)
    assert np.array_equal(km.predict(X), km.labels_)
    assert np.array_equal(P.argmax(1), km.labels_)
    sizes = np.bincount(km.labels_, minlength=6)
    assert np.all(np.diff(sizes) <= 0)  # numbered by decreasing size
    assert km.n_clusters_ == np.count_nonzero(sizes)


def test_restarts_keep_the_lowest_loss(blobs):
    X, y = blobs
    km = KCLClustering(n_init=3, **{**FAST, "max_steps": 10}).fit(X, y)
    assert km.run_scores_.shape == (3,)
    assert km.best_run_ == int(np.argmin(km.run_scores_))
    assert len(km.nets_) == 1


def test_images_use_the_lenet(blobs):
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 20)
    X = rng.normal(size=(40, 16 * 16)).astype(np.float32) + 3 * y[:, None] * (np.arange(256) < 128)
    km = KCLClustering(n_clusters=4, input_shape=(16, 16), hidden=(8,), max_steps=20, batch_size=16,
                       random_state=0).fit(X, y)
    assert type(km.nets_[0].body).__name__ == "LeNet"
    assert km.predict(X[:5]).shape == (5,)


def _params(est):
    # JSON has no tuples: a tuple-valued parameter whose default is None comes back as a list
    return {k: tuple(v) if isinstance(v, list) else v for k, v in est.get_params().items()}


def test_save_and_load(tmp_path, blobs, registered):
    X, y = blobs
    km = KCLClustering(n_clusters=5, **FAST).fit(X, y)
    km.save(tmp_path / "kcl")
    back = KCLClustering.load(tmp_path / "kcl", device="cpu")
    assert _params(back) == _params(km)
    assert np.array_equal(back.labels_, km.labels_)
    assert np.array_equal(back.predict(X), km.predict(X))
    assert np.allclose(back.predict_proba(X), km.predict_proba(X))
    assert back.n_clusters_ == km.n_clusters_


@pytest.mark.parametrize("params, match", [
    ({"margin": 0.0}, "margin"), ({"n_clusters": 0}, "n_clusters"), ({"hidden": (0,)}, "hidden"),
    ({"on_conflict": "ignore"}, "on_conflict"), ({"input_shape": (3, 3)}, "input_shape"),
    ({"input_shape": (7,)}, "image shape"), ({"batch_size": 1}, "batch_size"), ({"lr": -1.0}, "lr"),
])
def test_parameter_errors(blobs, params, match):
    X, y = blobs
    with pytest.raises(ValueError, match=match):
        KCLClustering(**{**FAST, **params}).fit(X, y)


# ---------------------------------------------------------------- batches
def test_pair_batches_hold_known_pairs_when_supervision_is_sparse():
    n = 5000
    y = np.random.default_rng(0).integers(0, 10, n)
    pairs = _pairs_from(y, 200, np.random.default_rng(1))
    side = SideInfo.build(n, pairs=pairs)
    sampler = PairBatchSampler(side, 64, np.random.default_rng(2))
    n_same = n_diff = 0
    for _ in range(50):
        idx = sampler.sample()
        assert 2 <= idx.size <= 64
        assert np.all(side.group[idx] >= 0)  # only points that carry side information
        S = side.same_matrix(idx)
        off = ~np.eye(idx.size, dtype=bool)
        n_same += int((S[off] == 1).sum())
        n_diff += int((S[off] == 0).sum())
    assert n_same > 0 and n_diff > 0
    # relations are drawn uniformly: the share of same relations is that of the side information
    share = n_same / (n_same + n_diff)
    expected = side.n_positive_pairs() / (side.n_positive_pairs() + side.n_negative_pairs())
    assert abs(share - expected) < 0.08


def test_pair_batches_from_labels_draw_labelled_points_uniformly():
    y = np.full(1000, -1)
    y[:300] = np.arange(300) % 3
    side = SideInfo.build(1000, y=y)
    sampler = PairBatchSampler(side, 40, np.random.default_rng(0))
    counts = np.zeros(1000)
    for _ in range(500):
        counts[sampler.sample()] += 1
    assert counts[300:].sum() == 0
    assert counts[:300].min() > 0.4 * counts[:300].mean()
