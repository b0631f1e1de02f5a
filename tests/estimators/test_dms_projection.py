"""DMS on wide inputs: the principal-component projection (``n_components``)."""

import numpy as np
import pytest
import torch

from dmshift import DMSClustering
from dmshift.io import load_model, save_model
from dmshift.metrics import accuracy
from dmshift.preprocessing import principal_components
from dmshift.settings import ProjectionSettings

AUTO_COMPONENTS_MAX = ProjectionSettings().auto_max

FAST = dict(max_steps=100, batch_size=16, instance_size=(30, 40), n_seeds=40, random_state=0)


def _wide_blobs(d=160, k=4, per=60, seed=0):
    """k blobs that differ in a few directions, hidden in d noisy features."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(d, 3)))[0]  # (d, 3)
    means = rng.normal(scale=8.0, size=(k, 3)) @ basis.T  # (k, d)
    y = np.repeat(np.arange(k), per)
    X = means[y] + rng.normal(scale=0.5, size=(k * per, d))
    return X.astype(np.float32), y


def _partial(y, every=6):
    return np.where(np.arange(y.size) % every == 0, y, -1)


def test_components_are_orthonormal_and_ordered_by_variance():
    rng = np.random.default_rng(0)
    X = torch.as_tensor(rng.normal(size=(300, 10)) * np.arange(10, 0, -1), dtype=torch.float32)
    X = X - X.mean(0)
    V = principal_components(X, 4)
    assert V.shape == (10, 4)
    torch.testing.assert_close(V.T @ V, torch.eye(4), atol=1e-5, rtol=0)
    var = (X @ V).var(0)
    assert torch.all(var[:-1] >= var[1:])
    # the largest-variance feature is the first direction (scales 10, 9, ...)
    assert int(V[:, 0].abs().argmax()) == 0


def test_component_counts():
    rng = np.random.default_rng(1)
    X = torch.as_tensor(rng.normal(size=(400, 200)), dtype=torch.float32)
    assert principal_components(X, None) is None
    assert principal_components(X[:, :AUTO_COMPONENTS_MAX], "auto") is None  # narrow enough: kept as is
    assert principal_components(X, 250) is None  # asking for all features is no projection
    assert principal_components(X, "auto").shape == (200, AUTO_COMPONENTS_MAX)  # isotropic: capped
    # a float keeps enough components for that share of the variance
    low = torch.as_tensor(rng.normal(size=(400, 3)) @ rng.normal(size=(3, 200)) * 10, dtype=torch.float32)
    low = low + 0.01 * X
    assert principal_components(low - low.mean(0), 0.9).shape[1] <= 3
    assert principal_components(low - low.mean(0), "auto").shape[1] <= 3


def test_sign_does_not_depend_on_the_input_order():
    rng = np.random.default_rng(2)
    X = torch.as_tensor(rng.normal(size=(200, 6)) * np.arange(6, 0, -1), dtype=torch.float32)
    X = X - X.mean(0)
    V1 = principal_components(X, 3)
    V2 = principal_components(X[torch.randperm(200, generator=torch.Generator().manual_seed(0))], 3)
    torch.testing.assert_close(V1, V2, atol=1e-4, rtol=0)


def test_wide_input_is_projected_and_clustered(tmp_path):
    X, y = _wide_blobs()
    m = DMSClustering(**FAST).fit(X, _partial(y))
    assert m.components_ is not None and m.components_.shape[0] == X.shape[1]
    assert m.components_.shape[1] <= AUTO_COMPONENTS_MAX
    assert accuracy(y, m.labels_) > 0.95
    assert m.cluster_centers_.shape == (m.n_clusters_, X.shape[1])  # back in input space
    np.testing.assert_array_equal(m.predict(X), m.labels_)
    path = tmp_path / "wide"
    save_model(m, path)
    m2 = load_model(path)
    torch.testing.assert_close(m2.components_, m.components_)
    np.testing.assert_array_equal(m2.predict(X), m.labels_)


def test_projection_on_the_signal_directions_is_no_worse_than_none():
    X, y = _wide_blobs(d=40)
    a = DMSClustering(**FAST, n_components=5).fit(X, _partial(y))
    b = DMSClustering(**FAST, n_components=None).fit(X, _partial(y))
    assert a.components_.shape == (40, 5) and b.components_ is None
    assert a.kernel_.n_features == 5 and b.kernel_.n_features == 40
    # 37 of the 40 features are noise: the projection keeps the 3 that separate the blobs
    assert accuracy(y, a.labels_) > 0.95
    assert accuracy(y, a.labels_) >= accuracy(y, b.labels_) - 0.02


@pytest.mark.parametrize("bad", [0, -3, 1.0, 1.5, 0.0, "all", True])
def test_bad_n_components_is_refused(bad):
    X, y = _wide_blobs(d=8, per=10)
    with pytest.raises(ValueError, match="'n_components' parameter"):
        DMSClustering(**FAST, n_components=bad).fit(X, _partial(y))
