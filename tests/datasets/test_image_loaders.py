"""Tests of the COIL-100 and COIL-20 loaders on the real data."""

import numpy as np
import pytest
import scipy.io

from dmshift.datasets import load

pytestmark = pytest.mark.needs_data


def _mirror_lr_beats_ud(images):
    """Fraction of images more similar to their left-right than up-down mirror.

    Objects turning on a turntable about a vertical axis are, over all poses,
    mostly left-right symmetric; a transposed image set scores below 0.5.
    """
    def corr(a, b):
        return np.corrcoef(a.ravel(), b.ravel())[0, 1]

    return np.mean([corr(im, im[:, ::-1]) > corr(im, im[::-1]) for im in images])


@pytest.fixture(scope="module")
def coil100(need):
    return load("coil100", root=need("coil100").parent)


def test_coil100_shapes_and_tasks(coil100):
    ds = coil100
    assert ds.X.shape == (7200, 3072) and ds.X.dtype == np.float32
    assert ds.image_shape == (32, 32, 3)
    assert 0.0 <= ds.X.min() and ds.X.max() <= 1.0
    assert ds.default_task == "object" and set(ds.tasks) == {"object", "pose8"}
    np.testing.assert_array_equal(np.bincount(ds.y), [72] * 100)
    np.testing.assert_array_equal(np.bincount(ds.labels("pose8")), [900] * 8)
    # Object-major order, poses 0, 5, ..., 355 degrees: bins of nine poses.
    np.testing.assert_array_equal(ds.labels("pose8")[:72], np.repeat(np.arange(8), 9))
    assert ds.class_names["pose8"][1] == "45-85deg"


def test_coil100_pixels_match_npz(coil100, need):
    with np.load(need("coil100") / "coil100_32x32_rgb.npz") as npz:
        raw = npz["X"][:50]
    np.testing.assert_array_equal(
        np.rint(coil100.X[:50].reshape(-1, 32, 32, 3) * 255).astype(np.uint8), raw
    )


def test_coil100_upright(coil100):
    grey = coil100.X.reshape(-1, 32, 32, 3).mean(axis=-1)[::4]
    assert _mirror_lr_beats_ud(grey) > 0.6


def test_coil20(need):
    ds = load("coil20", root=need("coil20").parent)
    assert ds.X.shape == (1440, 1024) and ds.X.dtype == np.float32
    assert ds.image_shape == (32, 32) and ds.X.max() <= 1.0
    assert ds.default_task == "object" and list(ds.tasks) == ["object"]
    np.testing.assert_array_equal(np.bincount(ds.y), [72] * 20)
    raw = scipy.io.loadmat(need("coil20") / "COIL20.mat")["X"]
    np.testing.assert_allclose(
        ds.X[7].reshape(32, 32), raw[7].reshape(32, 32, order="F") / 255.0, atol=1e-7
    )
    images = ds.X.reshape(-1, 32, 32)
    assert _mirror_lr_beats_ud(images) > 0.6
    assert _mirror_lr_beats_ud(images.transpose(0, 2, 1)) < 0.4
