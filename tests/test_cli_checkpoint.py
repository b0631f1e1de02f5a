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


def test_ctrl_c_during_training_exits_130_keeps_the_model_and_says_resume(tmp_path, capsys, monkeypatch):
    import signal

    from dmshift.checkpoint import Checkpointer

    save = Checkpointer.save

    def save_then_ctrl_c(self, *args, **kwargs):  # a real SIGINT right after the first checkpoint
        save(self, *args, **kwargs)
        monkeypatch.setattr(Checkpointer, "save", save)
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(Checkpointer, "save", save_then_ctrl_c)
    # a process started in the background of a shell without job control inherits SIGINT ignored:
    # give it Python's own handler, as a terminal's foreground process has
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _ctrl_c_run(tmp_path, capsys)
    finally:
        signal.signal(signal.SIGINT, previous)


def _ctrl_c_run(tmp_path, capsys):
    import signal

    X, _, yp = blobs()
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", yp)
    args = ["fit", str(tmp_path / "X.npy"), "--labels", str(tmp_path / "y.npy"), "-o", str(tmp_path / "m"),
            "--checkpoint-dir", str(tmp_path / "ckpt"), *FAST]
    assert main(args) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "run the same command with --resume --overwrite" in err
    assert str(tmp_path / "ckpt") in err
    assert (tmp_path / "m" / "model.safetensors").exists()  # the best model so far, as docs/cli.md says
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert main([*args, "--resume", "--overwrite"]) == 0


def test_ctrl_c_outside_training_exits_130_with_the_hint(tmp_path, capsys, monkeypatch):
    from dmshift.estimators.dms import DMSClustering

    def interrupted_fit(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(DMSClustering, "fit", interrupted_fit)
    X, _, yp = blobs()
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", yp)
    base = ["fit", str(tmp_path / "X.npy"), "--labels", str(tmp_path / "y.npy"), "-o", str(tmp_path / "m"), *FAST]
    assert main(base) == 130
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no model was written" in err and "--checkpoint-dir DIR" in err, err
    assert not (tmp_path / "m").exists()
    assert main([*base, "--checkpoint-dir", str(tmp_path / "ckpt")]) == 130
    assert "run the same command with --resume" in capsys.readouterr().err
