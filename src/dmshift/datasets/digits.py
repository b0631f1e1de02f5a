"""Loaders for handwritten-digit images: scikit-learn digits, MNIST and USPS.

Each returns a :class:`Dataset` with the tasks ``digit`` (default), ``parity``
(even/odd) and ``ge5`` (digit >= 5), pixels scaled to [0, 1]. It reads local
files only; it does not download, augment or normalise beyond that scaling.
"""

from __future__ import annotations

import gzip
import logging
import os
from pathlib import Path

import numpy as np

from ._base import Dataset, digit_tasks, to_unit_float32
from ._root import data_root, require_files

logger = logging.getLogger(__name__)

MNIST_SIZE = 70_000
_MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
_MNIST_TRAIN = 60_000


def _digit_dataset(name: str, X: np.ndarray, digit: np.ndarray, shape) -> Dataset:
    tasks, names = digit_tasks(digit)
    return Dataset(
        name=name, X=X, y=tasks["digit"], tasks=tasks, default_task="digit",
        image_shape=shape, class_names=names,
    )


def load_digits(root: str | os.PathLike | None = None) -> Dataset:
    """Load scikit-learn's bundled 8x8 digits (1,797 images).

    Parameters
    ----------
    root : ignored
        Accepted for a uniform signature; the data ship with scikit-learn.

    Returns
    -------
    Dataset
        ``X`` of shape (1797, 64), values 0..16 divided by 16;
        ``image_shape=(8, 8)``.
    """
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    X = bunch.data.astype(np.float32) / np.float32(16.0)
    return _digit_dataset("digits", X, bunch.target, (8, 8))


def _read_idx(path: Path, magic: int, header: int) -> np.ndarray:
    """Read a gzipped IDX file into a flat uint8 array, checking its header."""
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise ValueError(
            f"{path} must be an IDX file with magic number {magic}; got {found}."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header)


def load_mnist(root: str | os.PathLike | None = None, *, n: int | None = None) -> Dataset:
    """Load MNIST, train then test (70,000 images of 28x28).

    Parameters
    ----------
    root : str or path-like, optional
        Data root; see :func:`data_root`. Files are read from ``mnist/``.
    n : int, optional
        Keep only the first ``n`` images of the concatenation train + test;
        ``n=10000`` gives the usual MNIST-10k subset. ``None`` keeps all.

    Returns
    -------
    Dataset
        ``X`` of shape (n, 784) float32 in [0, 1]; ``image_shape=(28, 28)``.

    Raises
    ------
    ValueError
        If ``n`` is not None or an int in [1, 70000].
    FileNotFoundError
        If an IDX file is missing.
    """
    if n is not None and (
        isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MNIST_SIZE
    ):
        raise ValueError(
            f"The 'n' parameter of load_mnist must be None or an int in "
            f"[1, {MNIST_SIZE}]; got {n!r}."
        )
    root = data_root(root)
    train_x, train_y, test_x, test_y = require_files(root, "mnist", *_MNIST_FILES)
    keep = MNIST_SIZE if n is None else int(n)
    images = [_read_idx(train_x, 2051, 16).reshape(-1, 784)]
    labels = [_read_idx(train_y, 2049, 8)]
    if keep > _MNIST_TRAIN:  # the test half is only read when needed
        images.append(_read_idx(test_x, 2051, 16).reshape(-1, 784))
        labels.append(_read_idx(test_y, 2049, 8))
    pixels = np.concatenate(images)[:keep] if len(images) > 1 else images[0][:keep]
    digit = np.concatenate(labels)[:keep].astype(np.int64)
    logger.info("Loaded MNIST: %d images from %s", keep, root / "mnist")
    return _digit_dataset("mnist", to_unit_float32(pixels), digit, (28, 28))


def load_usps(root: str | os.PathLike | None = None) -> Dataset:
    """Load USPS, train then test (9,298 images of 16x16).

    Parameters
    ----------
    root : str or path-like, optional
        Data root; see :func:`data_root`. Reads ``usps/usps.h5``.

    Returns
    -------
    Dataset
        ``X`` of shape (9298, 256) float32 in [0, 1]; ``image_shape=(16, 16)``.

    Raises
    ------
    ImportError
        If h5py is not installed.
    FileNotFoundError
        If ``usps.h5`` is missing.
    """
    root = data_root(root)
    (path,) = require_files(root, "usps", "usps.h5")
    try:
        import h5py
    except ImportError as err:
        raise ImportError(
            'Loading USPS needs h5py: pip install "dmshift[data]" (or pip install h5py).'
        ) from err
    with h5py.File(path, "r") as fh:
        X = np.concatenate([fh["train/data"][:], fh["test/data"][:]]).astype(np.float32)
        digit = np.concatenate([fh["train/target"][:], fh["test/target"][:]])
    return _digit_dataset("usps", X, digit.astype(np.int64), (16, 16))
