"""Tests of the digit loaders (scikit-learn digits, MNIST, USPS) on the real data."""

import gzip
import hashlib
import sys

import numpy as np
import pytest

from dmshift.datasets import load

pytestmark = pytest.mark.needs_data

# From mnist/PROVENANCE.md
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_T10K_IMAGES_MD5 = "2646ac647ad5339dbf082846283269ea"


def _row_spread_over_col_spread(image):
    """Spread of ink along rows divided by spread along columns."""
    def spread(profile):
        p = profile / profile.sum()
        idx = np.arange(p.size)
        return np.sqrt((p * (idx - (p * idx).sum()) ** 2).sum())

    return spread(image.sum(axis=1)) / spread(image.sum(axis=0))


def _check_digit_set(ds, n, shape):
    assert ds.X.shape == (n, int(np.prod(shape))) and ds.X.dtype == np.float32
    assert ds.image_shape == shape
    assert 0.0 <= ds.X.min() and ds.X.max() <= 1.0
    assert ds.default_task == "digit" and set(ds.tasks) == {"digit", "parity", "ge5"}
    for task in ds.tasks.values():
        assert task.dtype == np.int64 and task.shape == (n,)
    np.testing.assert_array_equal(ds.labels("parity"), ds.y % 2)
    np.testing.assert_array_equal(ds.labels("ge5"), (ds.y >= 5).astype(np.int64))
    assert (ds.n_classes(), ds.n_classes("parity"), ds.n_classes("ge5")) == (10, 2, 2)
    # Upright: a mean "1" is a vertical stroke, tall and narrow.
    ones = ds.X[ds.y == 1].mean(axis=0).reshape(shape)
    assert _row_spread_over_col_spread(ones) > 1.5


def test_sklearn_digits():
    ds = load("digits")
    _check_digit_set(ds, 1797, (8, 8))
    assert ds.X.max() == 1.0


@pytest.fixture(scope="module")
def mnist(need):
    return load("mnist", root=need("mnist").parent)


def test_mnist_full(mnist):
    _check_digit_set(mnist, 70000, (28, 28))
    np.testing.assert_array_equal(np.bincount(mnist.y[:60000]), MNIST_TRAIN_COUNTS)
    assert mnist.y[0] == 5  # the first MNIST training image is a 5
    train = mnist.X[:60000]
    assert train.mean() == pytest.approx(0.13066, abs=1e-4)
    assert train.std() == pytest.approx(0.30811, abs=1e-4)


def test_mnist_test_half_matches_idx_checksum(mnist):
    pixels = np.rint(mnist.X[60000:] * 255).astype(np.uint8)
    header = b"".join(v.to_bytes(4, "big") for v in (2051, 10000, 28, 28))
    assert hashlib.md5(header + pixels.tobytes()).hexdigest() == MNIST_T10K_IMAGES_MD5


@pytest.mark.parametrize("n", [1, 10000, 60001])
def test_mnist_first_n(mnist, need, n):
    ds = load("mnist", root=need("mnist").parent, n=n)
    np.testing.assert_array_equal(ds.X, mnist.X[:n])
    np.testing.assert_array_equal(ds.labels("parity"), mnist.labels("parity")[:n])


@pytest.mark.parametrize("n", [0, 70001, 2.5, True, "10"])
def test_mnist_bad_n(n):
    with pytest.raises(ValueError, match="'n' parameter"):
        load("mnist", n=n)


def test_mnist_rejects_non_idx_file(need, tmp_path):
    src = need("mnist")
    (tmp_path / "mnist").mkdir()
    for name in ("train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):
        (tmp_path / "mnist" / name).symlink_to(src / name)
    with gzip.open(tmp_path / "mnist" / "train-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(b"\x00" * 64)
    with pytest.raises(ValueError, match="magic number 2051"):
        load("mnist", root=tmp_path)


def test_usps(need):
    ds = load("usps", root=need("usps").parent)
    _check_digit_set(ds, 9298, (16, 16))


def test_usps_without_h5py_says_how_to_install(need, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"dmshift\[data\]"):
        load("usps", root=need("usps").parent)
