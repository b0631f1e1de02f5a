"""A small on-disk cache of computed feature matrices (.npy files).

Entries live at ``cache_dir() / <data set> / <kind>-<hash>.npy`` where the hash
covers every parameter that changes the result. Writes are atomic (temporary
file, then ``os.replace``), so an interrupted run never leaves a half-written
entry. This is not a general memoiser and it never evicts anything.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from ._root import cache_dir

logger = logging.getLogger(__name__)


def source_stamp(paths: Iterable[Path]) -> list[list]:
    """Identify source files by name, size and modification time for cache keys."""
    stamps = []
    for path in paths:
        stat = path.stat()
        stamps.append([path.name, stat.st_size, stat.st_mtime_ns])
    return stamps


def cache_path(dataset: str, kind: str, params: dict) -> Path:
    """Return the cache file for one data set, feature kind and parameter set."""
    blob = json.dumps(params, sort_keys=True, default=str).encode()
    digest = hashlib.sha256(blob).hexdigest()[:16]
    return cache_dir() / dataset / f"{kind}-{digest}.npy"


def _store(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name in the same folder (so os.replace is atomic); opened with
    # "xb" rather than mkstemp so that the file gets the user's umask.
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as fh:
            np.save(fh, array)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def cached(
    dataset: str,
    kind: str,
    params: dict,
    compute: Callable[[], np.ndarray],
    n_rows: int,
) -> np.ndarray:
    """Return ``compute()``, reading it from the cache when a valid entry exists.

    Parameters
    ----------
    dataset, kind : str
        Data set name and feature kind; they name the cache file.
    params : dict
        JSON-serialisable parameters; their hash is part of the file name.
    compute : callable
        Produces the (n_rows, d) array on a cache miss.
    n_rows : int
        Expected number of rows; an entry with another shape is recomputed.
    """
    path = cache_path(dataset, kind, params)
    if path.is_file():
        try:
            array = np.load(path)
        except (OSError, ValueError) as err:
            logger.warning("Ignoring unreadable cache entry %s (%s)", path, err)
        else:
            if array.ndim == 2 and array.shape[0] == n_rows:
                logger.info("Loaded %s features of %s from cache %s", kind, dataset, path)
                return array
            logger.warning("Ignoring cache entry %s of shape %s", path, array.shape)
    array = compute()
    try:
        _store(path, array)
    except OSError as err:
        logger.warning("Could not write feature cache %s (%s)", path, err)
    else:
        logger.info("Cached %s features of %s at %s", kind, dataset, path)
    return array
