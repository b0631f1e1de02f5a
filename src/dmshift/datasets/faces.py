"""Loaders for face images: ORL, UMIST (32x32) and AR (55x40), grey.

All three have an ``identity`` task; AR adds ``condition`` (expression or
lighting, 7 classes) and ``session`` (2), labellings orthogonal to identity.
Pixels are scaled to [0, 1] and MATLAB column-major images are turned upright;
no alignment, cropping or normalisation is done.
"""

from __future__ import annotations

import os

import numpy as np
import scipy.io

from ._base import Dataset, column_major_to_upright, to_unit_float32
from ._root import data_root, require_files


def _load_identity_mat(name: str, root, folder: str, filename: str) -> Dataset:
    root = data_root(root)
    (path,) = require_files(root, folder, filename)
    mat = scipy.io.loadmat(path)
    pixels = column_major_to_upright(mat["X"], 32, 32)
    identity = mat["Y"].ravel().astype(np.int64) - 1
    return Dataset(
        name=name, X=to_unit_float32(pixels), y=identity, tasks={"identity": identity},
        default_task="identity", image_shape=(32, 32),
    )


def load_orl(root: str | os.PathLike | None = None) -> Dataset:
    """Load ORL / AT&T faces (400 images: 40 people x 10, 32x32 grey).

    Parameters
    ----------
    root : str or path-like, optional
        Data root; see :func:`data_root`. Reads ``orl_faces/ORL.mat``.

    Returns
    -------
    Dataset
        ``X`` of shape (400, 1024) float32 in [0, 1], upright
        (``image_shape=(32, 32)``). Task: ``identity`` (40 classes).
    """
    return _load_identity_mat("orl", root, "orl_faces", "ORL.mat")


def load_umist(root: str | os.PathLike | None = None) -> Dataset:
    """Load UMIST faces (575 images: 20 people, 19 to 48 each, 32x32 grey).

    Parameters
    ----------
    root : str or path-like, optional
        Data root; see :func:`data_root`. Reads ``umist_faces/UMIST.mat``.

    Returns
    -------
    Dataset
        ``X`` of shape (575, 1024) float32 in [0, 1], upright
        (``image_shape=(32, 32)``). Task: ``identity`` (20 unbalanced classes).
    """
    return _load_identity_mat("umist", root, "umist_faces", "UMIST.mat")


def load_ar_faces(root: str | os.PathLike | None = None) -> Dataset:
    """Load the AR faces subset (1,400 images: 100 people x 14, 55x40 grey).

    Parameters
    ----------
    root : str or path-like, optional
        Data root; see :func:`data_root`. Reads ``ar_faces/ar_faces_55x40.npz``.

    Returns
    -------
    Dataset
        ``X`` of shape (1400, 2200) float32 in [0, 1], upright
        (``image_shape=(55, 40)``). Tasks: ``identity`` (100, default),
        ``condition`` (7: neutral, smile, anger, scream, left_light,
        right_light, both_lights) and ``session`` (2).

    Notes
    -----
    The condition and session labels were derived by the data curators from
    the standard within-person order of the AR non-occluded subset.
    """
    root = data_root(root)
    (path,) = require_files(root, "ar_faces", "ar_faces_55x40.npz")
    with np.load(path) as npz:
        pixels = npz["X"]
        tasks = {
            "identity": npz["y_identity"].astype(np.int64),
            "condition": npz["y_condition"].astype(np.int64),
            "session": npz["session"].astype(np.int64),
        }
        condition_names = tuple(str(c) for c in npz["condition_names"])
    names = {"condition": condition_names, "session": ("session 1", "session 2")}
    return Dataset(
        name="ar_faces", X=to_unit_float32(pixels), y=tasks["identity"], tasks=tasks,
        default_task="identity", image_shape=(55, 40), class_names=names,
    )
