"""Tests of the ORL, UMIST and AR face loaders on the real data."""

import numpy as np
import pytest
import scipy.io

from dmshift.datasets import load
from dmshift.datasets._base import column_major_to_upright

pytestmark = pytest.mark.needs_data


def _corr(a, b):
    return np.corrcoef(a.ravel(), b.ravel())[0, 1]


def _looks_upright(face):
    """A frontal face is close to its left-right mirror, not its up-down one."""
    return _corr(face, face[:, ::-1]) > _corr(face, face[::-1]) + 0.2


def _check_faces(ds, n, shape):
    assert ds.X.shape == (n, int(np.prod(shape))) and ds.X.dtype == np.float32
    assert ds.image_shape == shape
    assert 0.0 <= ds.X.min() and ds.X.max() <= 1.0
    assert ds.default_task == "identity" and ds.y.dtype == np.int64


def test_orl(need):
    ds = load("orl", root=need("orl_faces").parent)
    _check_faces(ds, 400, (32, 32))
    np.testing.assert_array_equal(np.bincount(ds.y), [10] * 40)
    mean_face = ds.X.mean(axis=0).reshape(32, 32)
    assert _looks_upright(mean_face) and not _looks_upright(mean_face.T)


def test_umist(need):
    ds = load("umist", root=need("umist_faces").parent)
    _check_faces(ds, 575, (32, 32))
    counts = np.bincount(ds.y)
    assert counts.size == 20 and counts.min() == 19 and counts.max() == 48
    # Each person's images run from profile to frontal: the last is frontal.
    last = [np.flatnonzero(ds.y == k)[-1] for k in range(20)]
    frontal = ds.X[last].mean(axis=0).reshape(32, 32)
    assert _looks_upright(frontal) and not _looks_upright(frontal.T)


@pytest.fixture(scope="module")
def ar(need):
    return load("ar_faces", root=need("ar_faces").parent)


def test_ar_shapes_and_tasks(ar):
    _check_faces(ar, 1400, (55, 40))
    assert set(ar.tasks) == {"identity", "condition", "session"}
    np.testing.assert_array_equal(np.bincount(ar.y), [14] * 100)
    np.testing.assert_array_equal(ar.y[:15], [0] * 14 + [1])
    np.testing.assert_array_equal(np.bincount(ar.labels("condition")), [200] * 7)
    np.testing.assert_array_equal(np.bincount(ar.labels("session")), [700] * 2)
    np.testing.assert_array_equal(ar.labels("condition")[:14], list(range(7)) * 2)
    np.testing.assert_array_equal(ar.labels("session")[:14], [0] * 7 + [1] * 7)
    assert ar.class_names["condition"][0] == "neutral"
    assert (ar.n_classes(), ar.n_classes("condition"), ar.n_classes("session")) == (100, 7, 2)


def test_ar_upright_and_equal_to_original_mat(ar, need):
    path = need("ar_faces") / "AR_55_40.mat"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    mat = scipy.io.loadmat(path)
    upright = column_major_to_upright(mat["DAT"].T, 55, 40)
    np.testing.assert_array_equal(np.rint(ar.X * 255).astype(np.uint8), upright)
    np.testing.assert_array_equal(ar.y, mat["labels"].ravel().astype(np.int64) - 1)
    mean_face = ar.X.mean(axis=0).reshape(55, 40)
    assert _looks_upright(mean_face)
