"""Data sets of the benchmarks by name, and the labelling ("task") each experiment scores.

Names are those of :func:`dmshift.datasets.load`, plus ``mnist10k`` (the first 10,000 MNIST
images) for CPU-sized runs. A missing data set raises :class:`DataMissing`, which the
experiments turn into a "skipped" line rather than a failure. With ``quick`` a data set is
cut to a fixed random :data:`QUICK_SIZE` points, for smoke tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Case", "DataMissing", "load_case", "QUICK_SIZE", "DATASETS"]

QUICK_SIZE = 300

#: bench name -> (name for dmshift.datasets.load, keyword arguments)
DATASETS = {
    "digits": ("digits", {}),
    "mnist": ("mnist", {}),
    "mnist10k": ("mnist", {"n": 10_000}),
    "usps": ("usps", {}),
    "coil20": ("coil20", {}),
    "coil100": ("coil100", {}),
    "orl": ("orl", {}),
    "umist": ("umist", {}),
    "ar_faces": ("ar_faces", {}),
    "r8": ("r8", {}),
    "trec": ("trec", {}),
    "reuters21578": ("reuters21578", {}),
}


class DataMissing(Exception):
    """The files of a data set are not on this machine."""


@dataclass(frozen=True)
class Case:
    """One clustering task: features, the labelling scored, and its name for the tables."""

    dataset: str
    task: str
    X: np.ndarray  # (n, d) float32
    y: np.ndarray  # (n,) int64

    @property
    def k(self) -> int:
        return int(np.unique(self.y).size)

    @property
    def n(self) -> int:
        return int(self.X.shape[0])


_cache: dict[str, object] = {}


def _dataset(name: str):
    from ..datasets import load
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose from {', '.join(DATASETS)}")
    if name not in _cache:
        _cache.clear()  # hold one data set at a time: MNIST and COIL-100 are large
        loader, kwargs = DATASETS[name]
        try:
            _cache[name] = load(loader, **kwargs)
        except FileNotFoundError as exc:
            raise DataMissing(" ".join(str(exc).split())) from None
    return _cache[name]


def load_case(name: str, task: str | None = None, *, quick: bool = False) -> Case:
    """Features and the labels of ``task`` (None: the data set's default task) of data set ``name``."""
    ds = _dataset(name)
    task = task or ds.default_task
    y = ds.labels(task)
    X = ds.X
    if quick and X.shape[0] > QUICK_SIZE:
        idx = np.sort(np.random.default_rng(0).choice(X.shape[0], size=QUICK_SIZE, replace=False))
        X, y = X[idx], y[idx]
    # labels 0..k-1 over the points kept
    y = np.unique(y, return_inverse=True)[1].astype(np.int64).ravel()
    return Case(dataset=name, task=task, X=np.ascontiguousarray(X, dtype=np.float32), y=y)
