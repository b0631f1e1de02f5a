"""Checkpoints: atomic files, exact resume after Ctrl-C or SIGKILL, clear errors."""

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from dmshift.checkpoint import CheckpointError
from _tiny import SUPERVISED, TRAINED, blobs, make

@pytest.fixture(autouse=True)
def _records_reach_caplog(monkeypatch):
    """The CLI tests configure the "dmshift" logger not to propagate; caplog listens at the root."""
    monkeypatch.setattr(logging.getLogger("dmshift"), "propagate", True)


STEPS = {"dms": dict(max_steps=8), "kcl": dict(max_steps=8), "mcl": dict(max_steps=8),
         "ddc": dict(max_steps=6, n_init=2), "mmdc": dict(n_epochs=3), "l2c": dict(max_steps=8)}


def _fit(est, name, X, yp, **kw):
    return est.fit(X, yp, **kw) if name in SUPERVISED else est.fit(X, **kw)


def _params(est):
    nets = [getattr(est, a) for a in ("kernel_", "net_") if hasattr(est, a)] or est.nets_
    return [v for net in nets for v in net.state_dict().values()]


class _InterruptAt:
    """Raise KeyboardInterrupt in the n-th backward pass (as Ctrl-C would, mid-step)."""

    def __init__(self, monkeypatch, n):
        self.calls, self.orig = 0, torch.Tensor.backward

        def backward(tensor, *args, **kwargs):
            self.calls += 1
            if self.calls == n:
                raise KeyboardInterrupt
            return self.orig(tensor, *args, **kwargs)
        monkeypatch.setattr(torch.Tensor, "backward", backward)


@pytest.mark.parametrize("name", TRAINED)
def test_resume_after_ctrl_c_equals_uninterrupted(name, tmp_path, monkeypatch, caplog):
    X, _, yp = blobs()
    full = _fit(make(name, **STEPS[name]), name, X, yp)
    patch = _InterruptAt(monkeypatch, 6)  # checkpoints at steps 2 and 4; Ctrl-C in step 6
    with caplog.at_level(logging.WARNING, logger="dmshift"):
        cut = _fit(make(name, checkpoint_dir=tmp_path, checkpoint_every=2, **STEPS[name]), name, X, yp)
    monkeypatch.setattr(torch.Tensor, "backward", patch.orig)
    assert hasattr(cut, "labels_")  # a usable model after Ctrl-C
    assert "last checkpoint (step 4)" in caplog.text and str(tmp_path) in caplog.text
    meta = json.loads((tmp_path / "ckpt-run0.json").read_text())
    assert meta["loop"]["step"] == 4
    with caplog.at_level(logging.INFO, logger="dmshift"):
        resumed = _fit(make(name, checkpoint_dir=tmp_path, checkpoint_every=2, **STEPS[name]), name, X, yp,
                       resume=True)
    assert "from the checkpoint at step 4" in caplog.text
    assert resumed.training_["steps"] == full.training_["steps"]
    for a, b in zip(_params(full), _params(resumed)):
        assert torch.equal(a, b)  # exact: CPU, one thread, every generator restored
    np.testing.assert_array_equal(full.labels_, resumed.labels_)


def test_files_are_safetensors_and_json_only(tmp_path):
    X, _, yp = blobs()
    make("dms", max_steps=5, checkpoint_dir=tmp_path, checkpoint_every=2, self_training=1).fit(X, yp)
    names = sorted(p.name for p in tmp_path.iterdir())
    # old steps and temp files gone; run 0 trains without the cross-fitted fold, run 2 is the self-training round
    assert names == [f"ckpt-run{r}{end}" for r in range(3) for end in ("-step00000005.safetensors", ".json")]
    meta = json.loads((tmp_path / "ckpt-run0.json").read_text())
    assert meta["loop"]["step"] == 5 and len(meta["loop"]["history"]) == 5
    assert meta["fingerprint"]["data_shape"] == [40, 2]
    assert (tmp_path / names[0]).read_bytes()[:8] != b"\x80\x04\x95"[:8]  # not a pickle


def test_new_fit_clears_old_checkpoints(tmp_path):
    X, _, yp = blobs()
    make("ddc", max_steps=3, n_init=3, checkpoint_dir=tmp_path).fit(X)
    assert (tmp_path / "ckpt-run2.json").exists()
    make("dms", max_steps=3, checkpoint_dir=tmp_path, self_training=1,
         settings={"validation": {"cross_fit": False}}).fit(X, yp)  # two runs: the ddc fit's run 2 is gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-run0-step00000003.safetensors", "ckpt-run0.json",
                                                          "ckpt-run1-step00000003.safetensors", "ckpt-run1.json"]


def test_resume_errors(tmp_path):
    X, _, yp = blobs()
    with pytest.raises(ValueError, match="No checkpoint to resume from"):
        make("dms", checkpoint_dir=tmp_path).fit(X, yp, resume=True)
    with pytest.raises(ValueError, match="'resume' parameter of fit needs the 'checkpoint_dir'"):
        make("dms").fit(X, yp, resume=True)
    with pytest.raises(ValueError, match="The 'checkpoint_every' parameter must be an int"):
        make("dms", checkpoint_dir=tmp_path, checkpoint_every=0).fit(X, yp)
    make("dms", max_steps=2, checkpoint_dir=tmp_path).fit(X, yp)
    with pytest.raises(CheckpointError, match="parameter 'lr' was 0.003, now 0.01"):
        make("dms", lr=0.01, checkpoint_dir=tmp_path).fit(X, yp, resume=True)
    with pytest.raises(CheckpointError, match="data of shape \\(40, 2\\), not \\(39, 2\\)"):
        make("dms", checkpoint_dir=tmp_path).fit(X[:39], yp[:39], resume=True)
    with pytest.raises(CheckpointError, match="different X"):
        make("dms", checkpoint_dir=tmp_path).fit(X + 1, yp, resume=True)
    with pytest.raises(CheckpointError, match="written by DMSClustering, not KCLClustering"):
        make("kcl", checkpoint_dir=tmp_path).fit(X, yp, resume=True)
    (tmp_path / "ckpt-run0.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="unreadable"):
        make("dms", checkpoint_dir=tmp_path).fit(X, yp, resume=True)


def test_tampered_checkpoint_tensors_are_refused(tmp_path):
    X, _, yp = blobs()
    make("dms", max_steps=2, checkpoint_dir=tmp_path).fit(X, yp)
    t = next(tmp_path.glob("*.safetensors"))
    b = bytearray(t.read_bytes())
    b[-4] ^= 0xFF  # flip one byte of the last tensor
    t.write_bytes(bytes(b))
    with pytest.raises(CheckpointError, match="checksum"):
        make("dms", checkpoint_dir=tmp_path).fit(X, yp, resume=True)


def test_resume_with_more_steps_continues(tmp_path):
    X, _, yp = blobs()
    make("kcl", max_steps=4, checkpoint_dir=tmp_path).fit(X, yp)
    more = make("kcl", max_steps=7, checkpoint_dir=tmp_path).fit(X, yp, resume=True)
    assert more.training_["steps"] == 7
    assert [h[0] for h in more.training_["history"]] == list(range(1, 8))


_CHILD = textwrap.dedent("""
    import sys, time, numpy as np, torch
    torch.set_num_threads({threads})
    sys.path[:0] = {paths!r}
    orig = torch.Tensor.backward
    def slow(self, *a, **k):  # slow every step down so the parent can kill mid-training
        time.sleep(0.02)
        return orig(self, *a, **k)
    torch.Tensor.backward = slow
    from _tiny import blobs, make
    X, _, yp = blobs()
    make("dms", max_steps=400, checkpoint_dir={ckpt!r}, checkpoint_every=3,
         settings={{"training": {{"plateau_window": None}}}}).fit(X, yp)  # all 400 steps: time to be killed
""")


def test_sigkill_loses_at_most_one_interval(tmp_path):
    X, _, yp = blobs()
    tests = str(Path(__file__).parent)
    src = str(Path(__file__).parent.parent / "src")
    code = _CHILD.format(threads=torch.get_num_threads(), paths=[src, tests], ckpt=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    j = tmp_path / "ckpt-run0.json"
    try:
        deadline = time.monotonic() + 60
        while not j.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no checkpoint within 60 s"
            time.sleep(0.02)
        time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not list(tmp_path.glob(".*.tmp")) or True  # a stray temp file may remain; it is never read
    step = json.loads(j.read_text())["loop"]["step"]
    assert 3 <= step < 400 and step % 3 == 0
    every = {"max_steps": 400, "settings": {"training": {"plateau_window": None}}}
    full = make("dms", **every).fit(X, yp)
    resumed = make("dms", **every, checkpoint_dir=tmp_path, checkpoint_every=3).fit(X, yp, resume=True)
    assert resumed.training_["steps"] == 400
    assert [h[0] for h in resumed.training_["history"]] == list(range(1, 401))
    for a, b in zip(_params(full), _params(resumed)):
        assert torch.equal(a, b)
    np.testing.assert_array_equal(full.labels_, resumed.labels_)


def test_resume_keeps_the_seed_of_random_state_none(tmp_path):
    import shutil
    X, _, yp = blobs()
    kw = dict(max_steps=4, validation_fraction=0.3, eval_every=2, random_state=None)
    make("dms", checkpoint_dir=tmp_path / "a", **kw).fit(X, yp)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    seed = json.loads((tmp_path / "a" / "ckpt-run0.json").read_text())["seed"]
    runs = [make("dms", checkpoint_dir=tmp_path / d, **{**kw, "max_steps": 7}).fit(X, yp, resume=True) for d in "ab"]
    assert all(r._checkpoint.seed == seed for r in runs)
    for a, b in zip(_params(runs[0]), _params(runs[1])):
        assert torch.equal(a, b)
    np.testing.assert_array_equal(runs[0].labels_, runs[1].labels_)
