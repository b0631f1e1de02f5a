"""Loaders for object images: COIL-100 (32x32 RGB) and COIL-20 (32x32 grey).

COIL-100 offers two labellings of the same images, ``object`` (default) and
``pose8`` (turntable angle in eight 45-degree bins), which makes it a test of
task-specific clustering. Pixels are scaled to [0, 1]; nothing else is done.
"""

from __future__ import annotations

import os

import numpy as np
import scipy.io

from ._base import Dataset, column_major_to_upright, to_unit_float32
from ._root import data_root, require_files

POSE_BIN_DEGREES = 45


def load_coil100(root: str | os.PathLike | None = None) -> Dataset:
    """Load COIL-100 (7,200 images: 100 objects x 72 poses, 32x32 RGB).

    Parameters
    ----------
    root : str or path-like, optional
        Data root; see :func:`data_root`. Reads ``coil100/coil100_32x32_rgb.npz``.

    Returns
    -------
    Dataset
        ``X`` of shape (7200, 3072) float32 in [0, 1], each row an H x W x C
        RGB image (``image_shape=(32, 32, 3)``). Tasks: ``object`` (100
        classes, default) and ``pose8`` (8 classes, ``angle // 45``).
    """
    root = data_root(root)
    (path,) = require_files(root, "coil100", "coil100_32x32_rgb.npz")
    with np.load(path) as npz:
        pixels, obj, angle = npz["X"], npz["y"], npz["angle"]
    pose8 = (angle.astype(np.int64) % 360) // POSE_BIN_DEGREES
    tasks = {"object": obj.astype(np.int64), "pose8": pose8}
    names = {
        "pose8": tuple(
            f"{a}-{a + POSE_BIN_DEGREES - 5}deg" for a in range(0, 360, POSE_BIN_DEGREES)
        ),
    }
    return Dataset(
        name="coil100", X=to_unit_float32(pixels), y=tasks["object"], tasks=tasks,
        default_task="object", image_shape=(32, 32, 3), class_names=names,
    )


def load_coil20(root: str | os.PathLike | None = None) -> Dataset:
    """Load COIL-20 (1,440 images: 20 objects x 72 poses, 32x32 grey).

    Parameters
    ----------
    root : str or path-like, optional
        Data root; see :func:`data_root`. Reads ``coil20/COIL20.mat``.

    Returns
    -------
    Dataset
        ``X`` of shape (1440, 1024) float32 in [0, 1], converted from MATLAB's
        column-major layout so that ``image_shape=(32, 32)`` is upright.
        Task: ``object`` (20 classes).
    """
    root = data_root(root)
    (path,) = require_files(root, "coil20", "COIL20.mat")
    mat = scipy.io.loadmat(path)
    pixels = column_major_to_upright(mat["X"], 32, 32)
    obj = mat["Y"].ravel().astype(np.int64) - 1
    return Dataset(
        name="coil20", X=to_unit_float32(pixels), y=obj, tasks={"object": obj},
        default_task="object", image_shape=(32, 32),
    )
