"""Points in and labels out, one shard per rank, without any rank holding the whole set.

Input is one memory-mapped ``.npy`` file or a list of them (read in order, as if
concatenated); each rank reads only its contiguous, balanced range of rows. Labels go
back into one ``.npy`` file that every rank writes its rows into (shared file system),
into one file per shard, or are gathered in memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ._comm import Comm, split_rows

__all__ = ["Shard", "load_shard", "gather_labels", "write_labels", "shard_path"]


@dataclass
class Shard:
    """This rank's rows of a data set.

    Attributes
    ----------
    X : ndarray of shape (n_local, d)
    offset : int
        Global index of ``X[0]``.
    n_total : int
        Rows over all shards.
    rank, world_size : int
    """

    X: np.ndarray
    offset: int
    n_total: int
    rank: int
    world_size: int


def _open(source) -> list[np.ndarray]:
    if isinstance(source, np.ndarray):
        return [source]
    if isinstance(source, (str, os.PathLike)):
        source = [source]
    arrays = []
    for p in source:
        if isinstance(p, np.ndarray):
            arrays.append(p)
            continue
        p = Path(p)
        if p.suffix != ".npy":
            raise ValueError(f"Shard files must be .npy arrays (memory-mapped); got {str(p)!r}.")
        arrays.append(np.load(p, mmap_mode="r", allow_pickle=False))
    if not arrays:
        raise ValueError("No input files were given.")
    for a, p in zip(arrays, source):
        if a.ndim != 2 or a.shape[1] != arrays[0].shape[1]:
            raise ValueError(f"Every input must be a 2-D array with {arrays[0].shape[1]} columns; "
                             f"{p if not isinstance(p, np.ndarray) else 'an array'} has shape {a.shape}.")
    return arrays


def _read_rows(arrays: list[np.ndarray], start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of the concatenation of ``arrays``, reading only those rows."""
    parts, base = [], 0
    for a in arrays:
        lo, hi = max(start - base, 0), min(stop - base, a.shape[0])
        if lo < hi:
            parts.append(np.array(a[lo:hi]))  # reads just these rows from disk
        base += a.shape[0]
    if not parts:
        return np.empty((0, arrays[0].shape[1]), dtype=arrays[0].dtype)
    return np.ascontiguousarray(np.concatenate(parts) if len(parts) > 1 else parts[0])


def load_shard(source, rank: int | None = None, world_size: int | None = None, *, group=None,
               timeout=None) -> Shard:
    """Read this rank's rows of a data set given as ``.npy`` file(s) or an array.

    Parameters
    ----------
    source : path, list of paths, or ndarray (e.g. ``np.load(path, mmap_mode="r")``)
        A list of files is read as their row-wise concatenation. Files are memory-mapped:
        only this rank's rows are read from disk.
    rank, world_size : int, optional
        Which contiguous, balanced range of rows to read. When omitted they come from the
        process group, and a failure on any rank (a missing file, a bad shape) is raised
        on every rank. When given, no collective call is made.
    group : ProcessGroup, optional
    timeout : float or timedelta, optional
        Longest wait for the other ranks.

    Returns
    -------
    Shard
    """
    comm = None
    if rank is None or world_size is None:
        comm = Comm(group, timeout)
        rank, world_size = comm.rank, comm.world_size
    if not 0 <= rank < world_size:
        raise ValueError(f"The 'rank' parameter must be in [0, world_size={world_size}). Got {rank!r} instead.")

    def read():
        arrays = _open(source)
        n = int(sum(a.shape[0] for a in arrays))
        bounds = split_rows(n, world_size)
        return Shard(X=_read_rows(arrays, int(bounds[rank]), int(bounds[rank + 1])), offset=int(bounds[rank]),
                     n_total=n, rank=rank, world_size=world_size)

    if comm is None:
        return read()
    with comm.stage("load_shard"):
        shard = read()
    return shard


def gather_labels(labels: np.ndarray, *, group=None, dst: int | None = None, timeout=None) -> np.ndarray | None:
    """Concatenate every rank's labels in rank order.

    Returns the whole array on every rank (``dst=None``) or on rank ``dst`` only (None
    elsewhere). Every rank momentarily holds the whole array; for very large data use
    :func:`write_labels`.
    """
    comm = Comm(group, timeout)
    labels = np.asarray(labels)
    sizes = comm.all_gather(torch.tensor([labels.shape[0]], dtype=torch.int64), "gather_labels (sizes)")[:, 0].numpy()
    pad = np.zeros(int(sizes.max()), dtype=labels.dtype)
    pad[:labels.shape[0]] = labels
    table = comm.all_gather(torch.from_numpy(pad), "gather_labels").numpy()
    if dst is not None and comm.rank != dst:
        return None
    return np.concatenate([table[r, :sizes[r]] for r in range(comm.world_size)])


def shard_path(path, rank: int, world_size: int) -> Path:
    """``labels.npy`` -> ``labels.00001-of-00004.npy``: the file of one shard."""
    path = Path(path)
    return path.with_name(f"{path.stem}.{rank:05d}-of-{world_size:05d}{path.suffix or '.npy'}")


def write_labels(labels: np.ndarray, path, *, per_shard: bool = False, group=None, timeout=None) -> Path:
    """Write every rank's labels to disk without gathering them.

    ``per_shard=False``: rank 0 creates ``path`` (a ``.npy`` of all rows, in rank order)
    and every rank writes its rows in place; ``path`` must be on a file system all ranks
    share. ``per_shard=True``: each rank writes :func:`shard_path` ``(path, rank, world)``.
    Returns the path this rank wrote.
    """
    comm = Comm(group, timeout)
    labels = np.asarray(labels)
    if per_shard:
        out = shard_path(path, comm.rank, comm.world_size)
        with comm.stage("write_labels"):
            out.parent.mkdir(parents=True, exist_ok=True)
            np.save(out, labels)
        return out
    path = Path(path)
    sizes = comm.all_gather(torch.tensor([labels.shape[0]], dtype=torch.int64), "write_labels (sizes)")[:, 0].numpy()
    offset = int(sizes[:comm.rank].sum())
    with comm.stage("write_labels (create)"):
        if comm.rank == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
            mm = np.lib.format.open_memmap(path, mode="w+", dtype=labels.dtype, shape=(int(sizes.sum()),))
            del mm
    with comm.stage("write_labels"):
        mm = np.lib.format.open_memmap(path, mode="r+")
        mm[offset:offset + labels.shape[0]] = labels
        mm.flush()
        del mm
    return path
