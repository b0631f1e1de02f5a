"""Starting dmshift under ``torchrun``: the process group from the environment, and file-to-file prediction.

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT`` for each process; :func:`init_from_env` turns them into the default
process group (NCCL with one GPU per process when CUDA is available, gloo otherwise),
with a timeout on every collective call. :func:`predict_files` is what
``dmshift predict --distributed`` runs on each rank.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from ._comm import DEFAULT_TIMEOUT, Comm, _as_timedelta
from .inference import sharded_cluster, sharded_predict
from .shards import load_shard, write_labels

__all__ = ["init_from_env", "predict_files"]

logger = logging.getLogger("dmshift")

_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def init_from_env(backend: str | None = None, *, timeout=DEFAULT_TIMEOUT) -> bool:
    """Initialise the default process group from ``torchrun``'s environment variables.

    Parameters
    ----------
    backend : {"nccl", "gloo"} or None
        None: "nccl" when CUDA is available, else "gloo". With NCCL each process uses GPU
        ``LOCAL_RANK``.
    timeout : float (seconds) or timedelta
        Timeout of every collective call of the group.

    Returns
    -------
    bool
        True if this call initialised the group, False if one already existed.
    """
    if dist.is_initialized():
        return False
    missing = [k for k in _ENV if k not in os.environ]
    if missing:
        raise RuntimeError(f"No process group and no torchrun environment ({', '.join(missing)} unset): "
                           "launch with `torchrun --nproc_per_node N ...`.")
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend not in ("nccl", "gloo"):
        raise ValueError(f"The 'backend' parameter must be 'nccl', 'gloo' or None. Got {backend!r} instead.")
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend, timeout=_as_timedelta(timeout))
    return True


def predict_files(model_path, inputs, output, *, recluster: bool = False, per_shard: bool = False,
                  random_state=None, device: str = "auto", backend: str | None = None,
                  timeout=DEFAULT_TIMEOUT) -> Path:
    """Label the points in ``inputs`` with a saved model, one shard per rank; run on every rank.

    Parameters
    ----------
    model_path : path
        A folder written by ``DMSClustering.save``.
    inputs : path or list of paths
        ``.npy`` file(s) of points, memory-mapped; read as their concatenation, each rank
        reading only its rows (:func:`~dmshift.distributed.load_shard`).
    output : path
        ``.npy`` file of labels (int64, NOISE = -1) for all points, in input order.
    recluster : bool, default=False
        False: assign each point to the model's fitted clusters (no communication).
        True: cluster the inputs anew with the model's kernel (seeds, mean shift, merging;
        :func:`~dmshift.distributed.sharded_cluster`).
    per_shard : bool, default=False
        False: every rank writes its rows into the one ``output`` file (a file system
        shared by all ranks is needed). True: each rank writes
        ``<output stem>.<rank>-of-<world>.npy`` next to ``output``.
    random_state : int or None
        Seed of the seed draw when reclustering.
    device : str, default="auto"
        Where the model runs; "auto" is this rank's GPU under NCCL, else the CPU.
    backend, timeout
        For :func:`init_from_env` when no process group exists yet.

    Returns
    -------
    Path
        The file this rank wrote.
    """
    from ..estimators.dms import DMSClustering

    init_from_env(backend, timeout=timeout)
    comm = Comm(None, timeout)
    with comm.stage("predict_files (load model)"):
        if device == "auto" and dist.get_backend() == "nccl":
            device = f"cuda:{torch.cuda.current_device()}"
        model = DMSClustering.load(model_path, device=device)
    shard = load_shard(inputs, timeout=timeout)
    if recluster:
        res = sharded_cluster(model, shard.X, random_state=random_state, timeout=timeout)
    else:
        res = sharded_predict(model, shard.X, timeout=timeout)
    out = write_labels(res.labels.astype(np.int64), output, per_shard=per_shard, timeout=timeout)
    if comm.rank == 0:
        logger.info("labelled %d points on %d ranks into %d clusters: %s", res.n_total, comm.world_size,
                    res.n_clusters, out if not per_shard else Path(output).parent)
    return out
