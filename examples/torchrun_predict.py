"""Label points spread over several processes with a saved DMS model, under ``torchrun``.

Each process reads only its rows of the memory-mapped input, labels them, and writes
them into one output file (or one file per shard with ``--per-shard``)::

    # assign points to a saved model's clusters, 4 processes on this machine
    torchrun --nproc_per_node 4 examples/torchrun_predict.py \\
        --model model_dir --input X.npy --output labels.npy

    # cluster anew with the model's kernel, 8 GPUs on each of 2 machines
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29400 \\
        examples/torchrun_predict.py --model model_dir --input part0.npy part1.npy \\
        --output labels.npy --recluster --seed 0

    # self-contained demo on toy data: trains with DDP, then predicts both ways
    torchrun --nproc_per_node 2 examples/torchrun_predict.py --demo /tmp/dms-demo

NCCL is used when CUDA is available (one GPU per process), gloo otherwise.
"""

from __future__ import annotations

import argparse
import copy
import logging
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from dmshift.distributed import fit_ddp, init_from_env, predict_files, sharded_cluster


def demo(folder: Path, timeout: float) -> None:
    from sklearn.datasets import make_blobs

    from dmshift.estimators.dms import DMSClustering

    rank = dist.get_rank()
    X, y = make_blobs(n_samples=1500, centers=6, n_features=8, cluster_std=1.2, random_state=0)
    X = X.astype(np.float32)
    y_partial = np.where(np.arange(X.shape[0]) < 150, y, -1)  # labels for 10% of the points
    # every rank passes the same training set; each shifts part of every batch
    model = fit_ddp(DMSClustering(max_steps=30, batch_size=32, n_seeds=50, device="cpu", random_state=0),
                    X, y_partial, timeout=timeout)
    if rank == 0:
        folder.mkdir(parents=True, exist_ok=True)
        model.save(folder / "model")
        np.save(folder / "X.npy", X)
    dist.barrier()
    predict_files(folder / "model", folder / "X.npy", folder / "labels.npy", timeout=timeout)
    predict_files(folder / "model", folder / "X.npy", folder / "labels-reclustered.npy", recluster=True,
                  random_state=0, timeout=timeout)
    # the same clustering on a group of one process, for comparison
    solo = dist.new_group([0])
    if rank == 0:
        single = sharded_cluster(copy.deepcopy(model), X, random_state=0, group=solo)
        labels = np.load(folder / "labels.npy")
        reclustered = np.load(folder / "labels-reclustered.npy")
        same = np.array_equal(labels, model.predict(X)) and np.array_equal(reclustered, single.labels)
        print(f"{dist.get_world_size()} processes, {X.shape[0]} points, {single.n_clusters} clusters; "
              f"agree with one process: {same}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, help="folder written by DMSClustering.save")
    ap.add_argument("--input", type=Path, nargs="+", help=".npy file(s) of points, read as their concatenation")
    ap.add_argument("--output", type=Path, help=".npy file of labels (NOISE = -1)")
    ap.add_argument("--recluster", action="store_true", help="cluster the input anew instead of assigning it")
    ap.add_argument("--per-shard", action="store_true", help="one labels file per process (no shared file system)")
    ap.add_argument("--seed", type=int, default=None, help="seed of the seed draw with --recluster")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds before a silent process is an error")
    ap.add_argument("--demo", type=Path, help="run the toy demo, writing into this folder")
    args = ap.parse_args()
    torch.set_num_threads(1)
    init_from_env(timeout=args.timeout)
    logging.basicConfig(level=logging.INFO if dist.get_rank() == 0 else logging.WARNING)
    try:
        if args.demo is not None:
            demo(args.demo, args.timeout)
        else:
            if args.model is None or args.input is None or args.output is None:
                ap.error("--model, --input and --output are required (or --demo)")
            predict_files(args.model, [str(p) for p in args.input], args.output, recluster=args.recluster,
                          per_shard=args.per_shard, random_state=args.seed, timeout=args.timeout)
        dist.barrier()  # no process tears the group down while another still uses it
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
