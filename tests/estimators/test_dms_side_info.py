"""DMSClustering never overrules its side information (issue 22, item 4), sparse pairs do not shatter
the data (item 7), and fitted attributes and parameter errors are what users expect (item 10)."""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from sklearn.datasets import load_iris, load_wine
from sklearn.preprocessing import StandardScaler

from dmshift import NOISE, DMSClustering

FAST = dict(max_steps=60, batch_size=16, instance_size=(30, 40), n_seeds=40)


def _broken_relations(labels, idx, same):
    """Pairs (a, b) of ``idx`` whose relation in ``labels`` differs from ``same(a, b)`` (True, False or None)."""
    bad = []
    for i, a in enumerate(idx):
        for b in idx[i + 1:]:
            s = same(a, b)
            together = labels[a] == labels[b] and labels[a] != NOISE
            if s is not None and s != together:
                bad.append((a, b))
    return bad


def _iris_3_5_2():
    X, y = load_iris(return_X_y=True)
    idx = np.r_[np.flatnonzero(y == 0)[:3], np.flatnonzero(y == 1)[:5], np.flatnonzero(y == 2)[:2]]
    yp = np.full(y.size, -1)
    yp[idx] = y[idx]
    return X, y, yp, idx


def test_iris_small_label_groups_are_never_overruled():
    X, y, yp, idx = _iris_3_5_2()
    m = DMSClustering(random_state=0, **FAST).fit(X, yp)
    assert _broken_relations(m.labels_, idx, lambda a, b: y[a] == y[b]) == []
    assert _broken_relations(m.predict(X), idx, lambda a, b: y[a] == y[b]) == []
    assert set(m.choices_["side_info"]) >= {"absorbed", "noise_assigned", "joined", "split", "relabelled"}


@hsettings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 4), st.sampled_from(["auto", "graph", None]), st.sampled_from(["tree", None]),
       st.integers(0, 1))
def test_labels_hold_after_every_stage_combination(s, smoothing, fallback, self_training):
    X, y = load_iris(return_X_y=True)
    idx = np.random.default_rng(s).choice(y.size, 15, replace=False)
    yp = np.full(y.size, -1)
    yp[idx] = y[idx]
    m = DMSClustering(random_state=s, smoothing=smoothing, fallback=fallback, self_training=self_training,
                      **FAST).fit(StandardScaler().fit_transform(X), yp)
    assert _broken_relations(m.labels_, idx, lambda a, b: y[a] == y[b]) == []


def test_pairs_only_side_information_holds():
    X, y = load_iris(return_X_y=True)
    rng = np.random.default_rng(3)
    ij = rng.choice(y.size, (30, 2))
    ij = ij[ij[:, 0] != ij[:, 1]]
    pairs = np.c_[ij, y[ij[:, 0]] == y[ij[:, 1]]].astype(np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        m = DMSClustering(random_state=0, **FAST).fit(X, pairs=pairs)
    for i, j, same in pairs:  # "different" is known only for these pairs
        together = m.labels_[i] == m.labels_[j] and m.labels_[i] != NOISE
        assert together == bool(same), (i, j, same)


def _wine_pairs(seed, n_pairs=20):
    X, y = load_wine(return_X_y=True)
    ij = np.random.default_rng(seed).choice(y.size, (n_pairs, 2))
    ij = ij[ij[:, 0] != ij[:, 1]]
    return StandardScaler().fit_transform(X), y, np.c_[ij, y[ij[:, 0]] == y[ij[:, 1]]].astype(np.int64)


@pytest.mark.parametrize("seed", [0, 1])
def test_sparse_pairs_do_not_shatter_wine(seed):
    X, _, pairs = _wine_pairs(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # thin side information may be said so
        m = DMSClustering(random_state=0, **FAST).fit(X, pairs=pairs)
    assert m.n_clusters_ <= 8, m.choices_


def test_five_pairs_are_called_too_thin_and_do_not_shatter_wine():
    X, _, pairs = _wine_pairs(0, n_pairs=5)
    with pytest.warns(UserWarning, match="too few to learn a kernel from"):
        m = DMSClustering(random_state=0, **FAST).fit(X, pairs=pairs)
    assert m.n_clusters_ <= 8, m.choices_


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_sparse_pairs_do_not_shatter_wine_default_training(seed):
    X, _, pairs = _wine_pairs(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        m = DMSClustering(random_state=0).fit(X, pairs=pairs)
    assert m.n_clusters_ <= 8, m.choices_


def test_enough_labels_give_no_thin_side_information_warning():
    X, y = load_iris(return_X_y=True)
    yp = np.where(np.arange(y.size) % 5 == 0, y, -1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        DMSClustering(random_state=0, **FAST).fit(X, yp)


def test_components_are_numpy_and_old_models_still_predict():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 6)).astype(np.float32)
    y = np.where(np.arange(120) % 6 == 0, (X[:, 0] > 0).astype(int), -1)
    m = DMSClustering(random_state=0, n_components=3, **FAST).fit(X, y)
    assert isinstance(m.components_, np.ndarray) and m.components_.shape == (6, 3)
    expected = m.predict(X)
    del m._components  # a model pickled when components_ was a tensor
    m.components_ = torch.as_tensor(m.components_)
    assert np.array_equal(m.predict(X), expected)


@pytest.mark.parametrize("name", ["hidden", "verbose", "checkpoint_every", "lr", "weight_decay", "input_noise",
                                  "n_seeds", "threshold", "instance_size", "n_components"])
@pytest.mark.parametrize("value", [-1, "x", 1e300, [1, 2]])
def test_wrong_parameter_types_are_value_errors_naming_them(name, value):
    if name == "hidden" and value == [1, 2]:
        pytest.skip("two hidden widths for the default three layers: a valid value")
    X = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
    y = np.r_[np.zeros(5), np.ones(5), -np.ones(10)].astype(int)
    with pytest.raises(ValueError, match=f"'{name}'"):
        DMSClustering(**{name: value}).fit(X, y)
