"""L2CClustering: the paper's loss against hand loops, set sampling, equivariance, set-size rule, sklearn contract."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.utils.estimator_checks import parametrize_with_checks

from dmshift.constants import NOISE
from dmshift.constraints import SideInfo
from dmshift.estimators._registry import registered as registered_classes
from dmshift.estimators.l2c import L2CClustering, _SetSampler, l2c_loss, pair_same_probability

TINY = dict(hidden=(16,), width=16, n_layers=1, count_units=8, count_hidden=16, max_steps=10, batch_size=4,
            set_size=(10, 60), random_state=0)


@pytest.fixture
def registered():
    """Every estimator registers itself as a class a model file may name."""
    assert registered_classes().get("L2CClustering") is L2CClustering


def _blobs(n_groups=30, per=12, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-10, 10, (n_groups, 2))
    X = np.concatenate([c + 0.5 * rng.normal(size=(per, 2)) for c in centers]).astype(np.float32)
    return X, np.repeat(np.arange(n_groups), per)


def _random_outputs(B=2, n=5, K=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, n, K, K, generator=g)
    invalid = torch.ones(K, K).triu(1).bool()
    assign = logits.masked_fill(invalid, float("-inf")).softmax(-1)
    return assign, torch.randn(B, K, generator=g)


# ---------------------------------------------------------------------------- loss
def test_pair_probability_matches_the_double_sum():
    assign, count_logits = _random_outputs()
    pk = count_logits.softmax(-1)
    P = pair_same_probability(assign, pk)
    B, n, K, _ = assign.shape
    for b in range(B):
        for i in range(n):
            for j in range(n):
                ref = sum(pk[b, k - 1] * sum(assign[b, i, k - 1, c] * assign[b, j, k - 1, c] for c in range(k))
                          for k in range(1, K + 1))
                assert float(P[b, i, j]) == pytest.approx(float(ref), rel=1e-5)


def test_count_head_loss_is_the_cross_entropy_of_p_k():
    assign, count_logits = _random_outputs()
    n_true = torch.tensor([3, 1])
    same = torch.zeros(2, 5, 5)
    total, _, l_cc = l2c_loss(assign, count_logits, same, n_true, assignment_weight=0.0)
    logp = count_logits.log_softmax(-1)
    ref = -(logp[0, 2] + logp[1, 0]) / 2
    assert float(l_cc) == pytest.approx(float(ref), rel=1e-6)
    assert float(total) == pytest.approx(float(ref), rel=1e-6)


def test_count_head_loss_gradient_reaches_only_the_true_count():
    assign, count_logits = _random_outputs()
    count_logits.requires_grad_(True)
    _, _, l_cc = l2c_loss(assign, count_logits, torch.zeros(2, 5, 5), torch.tensor([2, 2]), 0.0)
    l_cc.backward()
    grad = count_logits.grad
    assert torch.all(grad[:, 1] < 0) and torch.all(grad[:, [0, 2]] > 0)  # push P(2) up, the rest down


def test_assignment_loss_is_the_weighted_pairwise_bce():
    assign, count_logits = _random_outputs(B=1, n=4)
    same = torch.tensor([[[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]], dtype=torch.float32)
    total, l_ca, l_cc = l2c_loss(assign, count_logits, same, torch.tensor([3]), assignment_weight=5.0)
    P = pair_same_probability(assign, count_logits.softmax(-1))[0]
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    phi = sum(float(same[0, i, j]) for i, j in pairs) / len(pairs)  # 1/6
    c = 2 / (np.sqrt(1 - phi) + np.sqrt(phi))
    ref = -sum(c * np.sqrt(1 - phi) * np.log(float(P[i, j])) if same[0, i, j] else
               c * np.sqrt(phi) * np.log(1 - float(P[i, j])) for i, j in pairs) / len(pairs)
    assert float(l_ca) == pytest.approx(ref, rel=1e-5)
    assert float(total) == pytest.approx(float(l_cc) + 5 * ref, rel=1e-5)


# ---------------------------------------------------------------------------- sampling
def test_sets_from_labels_hold_pairwise_different_groups():
    y = np.repeat(np.arange(8), 10)
    side = SideInfo.build(y.size, y=y)
    s = _SetSampler(side, np.arange(8), 5, (20, 30), np.random.default_rng(0))
    idx, same, k = s.sample(50)
    assert 20 <= idx.shape[1] <= 30 and idx.shape[0] == 50
    for row, sm, kk in zip(idx, same, k):
        assert len(np.unique(y[row])) == kk and 1 <= kk <= 5
        np.testing.assert_array_equal(sm, y[row][:, None] == y[row][None, :])
    assert set(k.tolist()) == {1, 2, 3, 4, 5}


def test_sets_from_pairs_stay_inside_cannot_linked_groups():
    # two "scenes" of three chains each; "different" pairs only inside a scene
    chains = [np.arange(c * 5, c * 5 + 5) for c in range(6)]
    same = [(ch[t], ch[t + 1], 1) for ch in chains for t in range(4)]
    diff = [(chains[a][0], chains[b][0], 0) for s in (0, 3) for a in range(s, s + 3) for b in range(a + 1, s + 3)]
    side = SideInfo.build(30, pairs=np.array(same + diff))
    s = _SetSampler(side, np.arange(side.n_groups), 5, (12, 12), np.random.default_rng(0))
    idx, _, k = s.sample(40)
    assert k.max() == 3  # no clique of four pairwise-different groups exists
    for row in idx:
        scenes = np.unique(row // 15)
        assert scenes.size == 1


# ---------------------------------------------------------------------------- estimator
@pytest.fixture(scope="module")
def fitted():
    X, y = _blobs()
    with pytest.warns(UserWarning, match="labels_ is all NOISE"):
        m = L2CClustering(**{**TINY, "max_steps": 30}).fit(X, y)
    return m, X, y


def test_set_model_is_permutation_equivariant(fitted):
    m, X, _ = fitted
    x = X[:40]
    perm = np.random.default_rng(3).permutation(40)
    np.testing.assert_array_equal(m.predict(x[perm]), m.predict(x)[perm])
    np.testing.assert_allclose(m.predict_count(x[perm]), m.predict_count(x), rtol=1e-5)
    with torch.no_grad():
        t = torch.as_tensor(((x - m.input_mean_) / m.input_scale_).astype(np.float32))[None]
        a, c = m.net_(t)
        ap, cp = m.net_(t[:, perm])
    torch.testing.assert_close(ap, a[:, perm], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(cp, c, rtol=1e-5, atol=1e-6)


def test_too_large_a_set_is_refused_by_name(fitted):
    m, X, _ = fitted
    assert m.max_set_size_ == 60
    with pytest.raises(ValueError, match="at most 60 points"):
        m.predict(X[:61])
    with pytest.raises(ValueError, match="at most 60 points"):
        m.predict_sets(X[:122].reshape(2, 61, 2))
    assert m.predict(X[:60]).shape == (60,)


def test_predict_sets_equals_predict_per_set(fitted):
    m, X, _ = fitted
    sets = X[:90].reshape(3, 30, 2)
    labels, proba = m.predict_sets(sets, return_count_proba=True)
    for s in range(3):
        np.testing.assert_array_equal(labels[s], m.predict(sets[s]))
        np.testing.assert_allclose(proba[s], m.predict_count(sets[s]), rtol=1e-5)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)


def test_labels_of_a_large_training_set_are_noise_with_a_warning(fitted):
    m, X, _ = fitted
    assert X.shape[0] > m.max_set_size_
    assert np.all(m.labels_ == NOISE) and m.n_clusters_ == 0 and m.count_proba_ is None


def test_labels_of_a_small_training_set_are_its_clustering():
    X, y = _blobs(n_groups=4, per=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = L2CClustering(**TINY).fit(X, y)
    np.testing.assert_array_equal(m.labels_, m.predict(X))
    assert m.n_clusters_ == m.labels_.max() + 1
    sizes = np.bincount(m.labels_)
    assert np.all(np.diff(sizes) <= 0)


def test_fit_from_pairs_only():
    X, y = _blobs(n_groups=6, per=8)
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, 48, (2, 400))
    pairs = np.stack([i, j, (y[i] == y[j]).astype(int)], 1)
    m = L2CClustering(**TINY).fit(X, pairs=pairs)
    assert m.labels_.shape == (48,)


def test_needs_side_information():
    X, _ = _blobs(n_groups=3, per=5)
    with pytest.raises(ValueError, match="requires y"):
        L2CClustering(**TINY).fit(X)


def test_same_seed_same_model():
    X, y = _blobs(n_groups=6, per=8)
    a = L2CClustering(**TINY).fit(X, y)
    b = L2CClustering(**TINY).fit(X, y)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_allclose(a.predict_count(X[:20]), b.predict_count(X[:20]))


def test_image_embedding_and_save_load(tmp_path, registered):
    rng = np.random.default_rng(0)
    X = rng.random((60, 8 * 8 * 3)).astype(np.float32)
    y = np.repeat(np.arange(6), 10)
    m = L2CClustering(**{**TINY, "image_shape": (8, 8, 3), "widths": (4, 8), "max_steps": 3}).fit(X, y)
    m.save(tmp_path / "m")
    back = L2CClustering.load(tmp_path / "m", device="cpu")
    np.testing.assert_array_equal(back.predict(X[:20]), m.predict(X[:20]))
    np.testing.assert_allclose(back.predict_count(X[:20]), m.predict_count(X[:20]), rtol=1e-6)


@pytest.mark.parametrize("params,match", [
    (dict(embedding="cnn"), "image_shape"),
    (dict(width=15), "even"),
    (dict(set_size=(1, 5)), "set_size"),
    (dict(k_max=0), "k_max"),
])
def test_parameter_errors(params, match):
    X, y = _blobs(n_groups=3, per=5)
    with pytest.raises(ValueError, match=match):
        L2CClustering(**{**TINY, **params}).fit(X, y)


@pytest.mark.filterwarnings("ignore:L2CClustering clusters sets")
@parametrize_with_checks([L2CClustering(**TINY)], expected_failed_checks=lambda est: {
    "check_clustering": "fit needs side information (y or pairs); this check fits on X alone",
    "check_methods_subset_invariance": "predict clusters its input jointly as one set, so a subset is a different set",
})
def test_sklearn_compatible(estimator, check):
    check(estimator)
