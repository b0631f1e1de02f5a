"""Sharded inference and data-parallel training on torch.distributed (gloo, CPU).

In-process tests check the sharded code paths against the single-process ones with one
process (no process group). The multi-process tests spawn 2 CPU processes on 127.0.0.1
with the gloo backend and compare their labels with a single process on the same data
and seeds; they check that errors on one rank surface on every rank instead of hanging.
"""

from __future__ import annotations

import copy
import datetime
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from sklearn.datasets import make_blobs

from dmshift.constants import NOISE
from dmshift.distributed import (DistributedError, fit_ddp, gather_labels, load_shard, shard_path, sharded_cluster,
                                 sharded_predict, write_labels)
from dmshift.distributed.inference import _size_order
from dmshift.estimators.dms import DMSClustering
from dmshift.meanshift import point_keys
from dmshift.merge import relabel_by_size

ROOT = Path(__file__).resolve().parents[1]
SIMILARITIES = ("cosine", "bistochastic", "bistochastic-cosine", "jaccard")
#: (seeding, similarity) pairs run on two processes: every similarity, both seedings
CASES = (("random", "cosine"), ("random", "bistochastic"), ("adaptive", "bistochastic-cosine"), ("adaptive", "jaccard"))


def _data():
    X, y = make_blobs(n_samples=500, centers=4, n_features=5, cluster_std=1.0, random_state=0)
    yp = y.copy()
    yp[150:] = -1
    return X.astype(np.float32), y, yp


def _model(**kw):
    params = dict(max_steps=30, batch_size=16, n_seeds=40, device="cpu", random_state=0)
    params.update(kw)
    return DMSClustering(**params)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The machine is shared: one thread avoids oversubscription (as the spawned ranks do)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def fitted():
    X, y, yp = _data()
    return _model().fit(X, yp), X


def _reference(model, X, seed, **params):
    """Single-process clustering of X with the model's kernel: DMSClustering._cluster."""
    m = copy.deepcopy(model).set_params(**params)
    m._cluster(m._transform(X), np.random.default_rng(seed))
    return m


# ---------------------------------------------------------------------- one process
def test_point_keys_of_shards_are_the_global_keys():
    full = point_keys(1000, "cpu")
    parts = [point_keys(b - a, "cpu", offset=a) for a, b in [(0, 333), (333, 734), (734, 1000)]]
    assert torch.equal(torch.cat(parts), full)


def test_size_order_matches_relabel_by_size():
    rng = np.random.default_rng(0)
    comp = rng.integers(0, 6, size=9)
    labels = np.where(rng.random(300) < 0.1, NOISE, rng.choice(comp, size=300))
    expected, expected_cc = relabel_by_size(labels, comp)
    mapping = _size_order(np.bincount(labels[labels != NOISE], minlength=comp.size))
    assert np.array_equal(np.where(labels == NOISE, NOISE, mapping[np.maximum(labels, 0)]), expected)
    assert np.array_equal(mapping[comp], expected_cc)


@pytest.mark.parametrize("seeding", ["random", "adaptive"])
@pytest.mark.parametrize("similarity", SIMILARITIES)
def test_sharded_cluster_on_one_process_is_the_single_process_clustering(fitted, seeding, similarity):
    model, X = fitted
    ref = _reference(model, X, 5, seeding=seeding, similarity=similarity)
    m = copy.deepcopy(model).set_params(seeding=seeding, similarity=similarity)
    out = sharded_cluster(m, X, random_state=5)
    assert np.array_equal(out.labels, ref.labels_)
    assert out.n_clusters == ref.n_clusters_ and (out.offset, out.n_total) == (0, X.shape[0])
    np.testing.assert_array_equal(m.center_embeddings_, ref.center_embeddings_)
    assert np.array_equal(m.center_cluster_, ref.center_cluster_)
    np.testing.assert_allclose(m.cluster_centers_, ref.cluster_centers_, rtol=1e-5, atol=1e-5)
    assert (m.n_iter_, m.n_seeds_used_) == (ref.n_iter_, ref.n_seeds_used_)
    assert np.array_equal(sharded_predict(m, X).labels, m.predict(X))


def test_fit_ddp_on_one_process_is_fit():
    X, _, yp = _data()
    params = dict(max_steps=20, validation_fraction=0.2, eval_every=10, loss_balance="balanced", input_noise=0.05)
    a = _model(**params).fit(X, yp)
    b = fit_ddp(_model(**params), X, yp)
    for (k, va), vb in zip(a.kernel_.state_dict().items(), b.kernel_.state_dict().values()):
        assert torch.equal(va, vb), k
    assert np.array_equal(a.labels_, b.labels_)
    assert [h[1:] for h in a.training_["history"]] == [h[1:] for h in b.training_["history"]]


def test_sharded_predict_takes_the_smoothing_vote_as_predict_does():
    X, _, yp = _data()
    m = _model(smoothing="graph").fit(X, yp)
    assert m.smoothing_["applied"]
    shards = [sharded_predict(m, X[a:b]).labels for a, b in [(0, 200), (200, 500)]]
    assert np.array_equal(np.concatenate(shards), m.predict(X))


def test_reclustering_drops_the_stale_smoothing():
    X, _, yp = _data()
    m = _model(smoothing="graph").fit(X, yp)
    sharded_cluster(m, X, random_state=5)
    assert m.smoothing_points_ is None and not m.smoothing_["applied"]


def test_fit_ddp_rejects_a_time_limit():
    X, _, yp = _data()
    with pytest.raises(ValueError, match="time_limit"):
        fit_ddp(_model(time_limit=5.0), X, yp)


def test_load_shard_reads_the_rows_of_its_rank(tmp_path):
    X = np.arange(23 * 3, dtype=np.float32).reshape(23, 3)
    np.save(tmp_path / "full.npy", X)
    np.save(tmp_path / "a.npy", X[:10])
    np.save(tmp_path / "b.npy", X[10:])
    for source in (tmp_path / "full.npy", [tmp_path / "a.npy", tmp_path / "b.npy"], np.load(tmp_path / "full.npy")):
        shards = [load_shard(source, r, 4) for r in range(4)]
        assert np.array_equal(np.concatenate([s.X for s in shards]), X)
        assert [s.offset for s in shards] == [0, 6, 12, 18] and {s.n_total for s in shards} == {23}
    np.save(tmp_path / "c.npy", np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match="columns"):
        load_shard([tmp_path / "a.npy", tmp_path / "c.npy"], 0, 2)
    with pytest.raises(ValueError, match="rank"):
        load_shard(tmp_path / "a.npy", 2, 2)
    with pytest.raises(FileNotFoundError):
        load_shard(tmp_path / "missing.npy")


def test_labels_without_a_process_group(tmp_path):
    labels = np.array([3, 1, NOISE, 0])
    assert np.array_equal(gather_labels(labels), labels)
    assert np.array_equal(np.load(write_labels(labels, tmp_path / "l.npy")), labels)
    out = write_labels(labels, tmp_path / "l.npy", per_shard=True)
    assert out == shard_path(tmp_path / "l.npy", 0, 1) and out.name == "l.00000-of-00001.npy"


# ---------------------------------------------------------------------- two processes
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _init(rank, port, world=2, seconds=20):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=seconds))


def _worker(rank, port, tmp):
    """Sharded clustering from a memory-mapped file, DDP training, then errors."""
    _init(rank, port)
    tmp = Path(tmp)
    model = DMSClustering.load(tmp / "model", device="cpu")
    shard = load_shard(tmp / "X.npy")
    out = {}
    for seeding, sim in CASES:
        m = copy.deepcopy(model).set_params(seeding=seeding, similarity=sim)
        res = sharded_cluster(m, shard.X, random_state=5)
        out[f"{seeding}-{sim}"] = gather_labels(res.labels)
        out[f"{seeding}-{sim}-centers"] = m.cluster_centers_
    out["predict"] = gather_labels(sharded_predict(model, shard.X).labels)
    write_labels(out["predict"][shard.offset:shard.offset + shard.X.shape[0]], tmp / "labels.npy")
    write_labels(out["predict"][shard.offset:shard.offset + shard.X.shape[0]], tmp / "labels.npy", per_shard=True)
    X, _, yp = _data()
    ddp = fit_ddp(_model(validation_fraction=0.2, eval_every=10), X, yp)
    out["ddp_labels"] = ddp.labels_
    out["ddp_history"] = np.array([[h[1], np.nan if h[2] is None else h[2]] for h in ddp.training_["history"]])
    out.update({f"ddp.{k}": v.numpy() for k, v in ddp.kernel_.state_dict().items()})
    np.savez(tmp / f"out{rank}.npz", **out)
    _errors(rank, tmp, model)  # last: it leaves the group broken on purpose


@pytest.fixture(scope="module")
def two_ranks(fitted, tmp_path_factory):
    """Run :func:`_worker` on 2 gloo processes once; the folder of their results."""
    model, X = fitted
    tmp = tmp_path_factory.mktemp("two-ranks")
    model.save(tmp / "model")
    np.save(tmp / "X.npy", X)
    mp.spawn(_worker, args=(_free_port(), str(tmp)), nprocs=2, join=True)
    return tmp


def test_two_gloo_processes_cluster_and_train_like_one(fitted, two_ranks):
    model, X = fitted
    tmp_path = two_ranks
    r0, r1 = (np.load(tmp_path / f"out{r}.npz") for r in (0, 1))
    for key in r0.files:  # every rank ends with the same results
        np.testing.assert_array_equal(r0[key], r1[key], err_msg=key)
    for seeding, sim in CASES:
        ref = _reference(model, X, 5, seeding=seeding, similarity=sim)
        assert np.array_equal(r0[f"{seeding}-{sim}"], ref.labels_), (seeding, sim)
        np.testing.assert_allclose(r0[f"{seeding}-{sim}-centers"], ref.cluster_centers_, rtol=1e-4, atol=1e-4)
    assert np.array_equal(r0["predict"], model.predict(X))
    assert np.array_equal(np.load(tmp_path / "labels.npy"), model.predict(X))
    per_shard = [np.load(shard_path(tmp_path / "labels.npy", r, 2)) for r in range(2)]
    assert np.array_equal(np.concatenate(per_shard), model.predict(X))
    # DDP training: the same steps as one process, up to float summation order
    X, y, yp = _data()
    single = _model(validation_fraction=0.2, eval_every=10).fit(X, yp)
    for k, v in single.kernel_.state_dict().items():
        np.testing.assert_allclose(r0[f"ddp.{k}"], v.numpy(), rtol=1e-3, atol=1e-4, err_msg=k)
    hist = r0["ddp_history"]
    np.testing.assert_allclose(hist[:, 0], [h[1] for h in single.training_["history"]], rtol=1e-3)
    assert hist[-5:, 0].mean() < 0.5 * hist[:5, 0].mean()  # training converges
    assert np.mean(r0["ddp_labels"] == single.labels_) > 0.99


def _errors(rank, tmp, model):
    """Disagreeing shapes, a failing rank and a silent rank: errors on every rank, no hang."""
    msgs = []
    X = np.zeros((10, 5 if rank == 0 else 4), dtype=np.float32)
    for fn in (sharded_cluster, sharded_predict):
        try:
            fn(model, X)
        except ValueError as exc:
            msgs.append(f"shape: {exc}")
    try:
        load_shard(tmp / ("X.npy" if rank == 0 else "missing.npy"))
    except DistributedError as exc:
        msgs.append(f"failed rank: {exc}")
    X, _, yp = _data()
    try:
        fit_ddp(_model(), X + rank, yp)
    except ValueError as exc:
        msgs.append(f"training data: {exc}")
    # rank 1 stops answering: rank 0 must give up within the timeout
    t0 = time.perf_counter()
    if rank == 0:
        try:
            sharded_cluster(model, X[:250], timeout=1.0)
        except DistributedError as exc:
            msgs.append(f"silent rank after {time.perf_counter() - t0:.1f}s: {exc}")
    (tmp / f"msgs{rank}.txt").write_text("\n###\n".join(msgs))
    while rank == 1 and not (tmp / "msgs0.txt").exists() and time.perf_counter() - t0 < 30:
        time.sleep(0.05)  # stay alive (and silent) until rank 0 has given up
    os._exit(0)  # the group is broken on purpose: skip its teardown


def test_errors_reach_every_rank_instead_of_hanging(two_ranks):
    tmp_path = two_ranks
    for rank in (0, 1):
        msgs = (tmp_path / f"msgs{rank}.txt").read_text().split("\n###\n")
        shape = [m for m in msgs if m.startswith("shape:")]
        assert len(shape) == 2 and all("disagree on the number of features" in m and "rank 1: (10, 4)" in m
                                       for m in shape)
        failed = [m for m in msgs if m.startswith("failed rank:")]
        assert len(failed) == 1 and "rank 1: FileNotFoundError" in failed[0] and "missing.npy" in failed[0]
        assert any(m.startswith("training data:") and "ranks [1]" in m for m in msgs)
    silent = [m for m in (tmp_path / "msgs0.txt").read_text().split("\n###\n") if m.startswith("silent")]
    assert len(silent) == 1 and "rank 0 of 2" in silent[0] and "timed out" in silent[0].lower()
    assert float(silent[0].split("after ")[1].split("s:")[0]) < 10


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun is not installed")
def test_torchrun_example(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    cmd = ["torchrun", "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
           str(ROOT / "examples" / "torchrun_predict.py"), "--demo", str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-6000:]
    labels = np.load(tmp_path / "labels.npy")
    reclustered = np.load(tmp_path / "labels-reclustered.npy")
    assert labels.shape == reclustered.shape == (np.load(tmp_path / "X.npy").shape[0],)
    assert "agree with one process: True" in proc.stdout
