"""Tiny, fast configurations of every estimator, shared by the reliability tests."""

from __future__ import annotations

import numpy as np

from dmshift.estimators.ddc import DDCClustering
from dmshift.estimators.dms import DMSClustering
from dmshift.estimators.kcl import KCLClustering
from dmshift.estimators.l2c import L2CClustering
from dmshift.estimators.mcl import MCLClustering
from dmshift.estimators.meanshift import MeanShift
from dmshift.estimators.mmdc import MMDCClustering

#: name -> (class, tiny parameters)
TINY = {
    "dms": (DMSClustering, dict(max_steps=2, batch_size=4, instance_size=(8, 12), n_seeds=8, max_iter=5,
                                device="cpu", random_state=0)),
    "kcl": (KCLClustering, dict(n_clusters=4, hidden=(8,), max_steps=2, batch_size=16, device="cpu", random_state=0)),
    "mcl": (MCLClustering, dict(n_clusters=4, hidden=(8,), max_steps=2, batch_size=16, device="cpu", random_state=0)),
    "ddc": (DDCClustering, dict(n_clusters=3, hidden=(8,), max_steps=2, batch_size=16, device="cpu", random_state=0)),
    "mmdc": (MMDCClustering, dict(n_clusters=3, hidden=(8,), n_epochs=1, batch_size=16, device="cpu", random_state=0)),
    "l2c": (L2CClustering, dict(hidden=(8,), width=8, n_layers=1, count_units=4, count_hidden=8, k_max=3,
                                set_size=(6, 10), max_set_size=64, max_steps=2, batch_size=2, device="cpu", random_state=0)),
    "meanshift": (MeanShift, dict(bandwidth=2.0, device="cpu")),
}
SUPERVISED = ("dms", "kcl", "mcl", "l2c")
UNSUPERVISED = ("ddc", "mmdc", "meanshift")
TRAINED = ("dms", "kcl", "mcl", "ddc", "mmdc", "l2c")


def make(name: str, **overrides):
    cls, params = TINY[name]
    return cls(**{**params, **overrides})


def blobs(n: int = 40, seed: int = 0):
    """Three 2-D blobs as float32, labels 0..2, and partial labels (every other point known)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = (rng.normal(size=(n, 2)) * 0.3 + np.array([[0, 0], [4, 0], [0, 4]])[y]).astype(np.float32)
    yp = np.where(np.arange(n) % 2 == 0, y, -1)
    return X, y, yp


def thin_groups(seed: int = 0, k: int = 30, m: int = 12, d: int = 30, nuisance: int = 2, rate: float = 0.12,
                light: float = 10.0):
    """Thin side information: k groups of m points told apart in d directions, plus ``nuisance``
    directions of large variance that every group shares (as lighting in faces), and partial labels on
    a random ``rate`` of the points (a label or two per group). float32 X, labels y, partial labels."""
    r = np.random.default_rng(seed)
    y = np.repeat(np.arange(k), m)
    shared = light * r.normal(size=(k * m, nuisance)) @ np.linalg.qr(r.normal(size=(d, nuisance)))[0].T
    X = r.normal(size=(k, d))[y] + 0.3 * r.normal(size=(k * m, d)) + shared
    yp = np.where(r.random(y.size) < rate, y, -1)
    return X.astype(np.float32), y, yp
