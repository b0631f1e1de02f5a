"""``dmshift fit --checkpoint-dir DIR [--resume]``."""

import json

import numpy as np

from dmshift.cli import main
from _tiny import blobs

FAST = ["--param", "max_steps=6", "--param", "batch_size=4", "--param", "instance_size=[8,12]",
        "--param", "n_seeds=8", "--param", "checkpoint_every=2", "--device", "cpu", "--seed", "0", "-q"]


def test_fit_writes_checkpoints_and_resumes(tmp_path, capsys):
    X, _, yp = blobs()
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", yp)
    ck = tmp_path / "ckpt"
    args = ["fit", str(tmp_path / "X.npy"), "--labels", str(tmp_path / "y.npy"), "--checkpoint-dir", str(ck)]
    assert main([*args, "-o", str(tmp_path / "m1"), *FAST]) == 0
    assert json.loads((ck / "ckpt-run0.json").read_text())["loop"]["step"] == 6
    assert main([*args, "-o", str(tmp_path / "m2"), "--resume", *FAST]) == 0
    assert (tmp_path / "m2" / "model.safetensors").exists()


def test_resume_errors_are_one_line(tmp_path, capsys):
    X, _, yp = blobs()
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", yp)
    base = ["fit", str(tmp_path / "X.npy"), "--labels", str(tmp_path / "y.npy"), "-o", str(tmp_path / "m")]
    assert main([*base, "--resume", *FAST]) != 0
    err = capsys.readouterr().err
    assert "--resume needs --checkpoint-dir" in err
    assert main([*base, "--resume", "--checkpoint-dir", str(tmp_path / "none"), *FAST]) != 0
    assert "No checkpoint to resume from" in capsys.readouterr().err
    assert main([*base, "--checkpoint-dir", str(tmp_path / "c"), "--method", "meanshift", "-q"]) != 0
    assert "writes no checkpoints" in capsys.readouterr().err
