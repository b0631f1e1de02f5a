"""Sharded inference and data-parallel training on ``torch.distributed`` (NCCL or gloo).

Launch with ``torchrun``; every public function takes an existing process group
(``group=None``: the default group; no group initialised: one process) and is called on
every rank.

* :func:`load_shard` reads one rank's rows of memory-mapped ``.npy`` file(s);
* :func:`sharded_cluster` clusters the union of the shards with a fitted model's kernel,
  with the labels a single process gives on the same data and seeds;
* :func:`sharded_predict` assigns each rank's points to a fitted model's clusters;
* :func:`gather_labels` / :func:`write_labels` bring the per-shard labels together;
* :func:`fit_ddp` trains with DistributedDataParallel over the instances of each batch;
* :func:`init_from_env` and :func:`predict_files` are what ``dmshift predict --distributed``
  runs on each rank.

Every collective call has a timeout, and an error on one rank (a missing file, a shape
that disagrees) is raised on every rank as a :class:`DistributedError` or ``ValueError``
rather than leaving the others waiting.
"""

from .._lazy import attach as _attach

__all__ = ["DEFAULT_TIMEOUT", "DistributedError", "Shard", "ShardLabels", "fit_ddp", "gather_labels",
           "init_from_env", "load_shard", "predict_files", "shard_path", "sharded_cluster", "sharded_predict",
           "write_labels"]

__getattr__, __dir__ = _attach(__name__, {
    "DEFAULT_TIMEOUT": "._comm",
    "DistributedError": "._comm",
    "ShardLabels": ".inference",
    "sharded_cluster": ".inference",
    "sharded_predict": ".inference",
    "init_from_env": ".launch",
    "predict_files": ".launch",
    "Shard": ".shards",
    "gather_labels": ".shards",
    "load_shard": ".shards",
    "shard_path": ".shards",
    "write_labels": ".shards",
    "fit_ddp": ".training",
}, globals())
