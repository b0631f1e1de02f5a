"""The same random_state gives the same labels, on CPU, whatever the global generators hold."""

import numpy as np
import pytest
import torch

from _tiny import SUPERVISED, TINY, blobs, make

X, _, YP = blobs(60)
MORE = {"dms": dict(max_steps=6, dropout=0.2, input_noise=0.1), "kcl": dict(max_steps=6, n_init=2),
        "mcl": dict(max_steps=6), "ddc": dict(max_steps=6, n_init=3, vote=True), "mmdc": dict(n_epochs=2),
        "l2c": dict(max_steps=6, max_set_size=80), "meanshift": dict(bandwidth=None, bin_seeding=True)}


def _fit(name, **kw):
    if name == "meanshift":  # deterministic by construction: no random_state parameter
        kw.pop("random_state", None)
    est = make(name, **{**MORE[name], **kw})
    return est.fit(X, YP) if name in SUPERVISED else est.fit(X)


@pytest.mark.parametrize("name", list(TINY))
def test_same_seed_same_labels(name):
    torch.manual_seed(123)
    np.random.seed(123)
    a = _fit(name, random_state=7)
    torch.manual_seed(999)  # the global generators must not matter
    np.random.seed(999)
    torch.rand(10)
    b = _fit(name, random_state=7)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.predict(X[:10]), b.predict(X[:10]))


@pytest.mark.parametrize("name", [n for n in TINY if n != "meanshift"])
def test_fit_leaves_global_torch_generator_alone(name):
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    _fit(name, random_state=0)
    assert torch.equal(torch.rand(3), expected)


def test_random_state_instance_is_reproducible():
    a = _fit("dms", random_state=np.random.RandomState(3))
    b = _fit("dms", random_state=np.random.RandomState(3))
    np.testing.assert_array_equal(a.labels_, b.labels_)
