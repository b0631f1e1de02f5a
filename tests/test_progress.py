"""Progress bars and logging: silent unless asked for and on a terminal, named by stage, throttled."""

import io
import logging

import numpy as np
import pytest
import torch

from dmshift._progress import MIN_INTERVAL, progress_bar
from dmshift.train import TrainConfig, train_loop


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _fit(cfg, monkeypatch, stream):
    monkeypatch.setattr("sys.stderr", stream)
    model = torch.nn.Linear(2, 1)
    x = torch.ones(4, 2)
    return train_loop(model, lambda step: model(x).pow(2).mean(), cfg)


def test_no_bar_unless_verbose_and_on_a_terminal(monkeypatch):
    for verbose, stream in ((False, _Terminal()), (True, io.StringIO())):  # quiet, or a log file / pipe
        _fit(TrainConfig(max_steps=20, verbose=verbose), monkeypatch, stream)
        assert stream.getvalue() == ""


def test_bar_is_named_by_stage_and_throttled(monkeypatch):
    pytest.importorskip("tqdm")
    stream = _Terminal()
    _fit(TrainConfig(max_steps=1000, verbose=True, desc="training, round 2/2"), monkeypatch, stream)
    out = stream.getvalue()
    assert "training, round 2/2" in out
    redraws = out.count("\r")
    # a few redraws per second, however many steps: 1000 steps used to give one redraw each
    assert redraws < 50, redraws
    assert len(out) < 5000


def test_default_stage_name_and_the_stand_in_bar():
    assert TrainConfig().desc == "training"
    bar = progress_bar(10, "clustering", verbose=False)
    bar.update(3)
    bar.set_postfix(loss="1.0", refresh=False)
    bar.close()
    assert bar.n == 3 and MIN_INTERVAL >= 0.1


def test_library_logger_has_a_null_handler_and_no_other():
    import dmshift

    log = logging.getLogger("dmshift")
    assert any(isinstance(h, logging.NullHandler) for h in log.handlers)
    assert not hasattr(dmshift, "_logging") or "configure" not in dir(getattr(dmshift, "_logging"))


def test_a_verbose_dms_fit_names_one_bar_per_stage(monkeypatch):
    import dmshift._progress as progress
    import dmshift.train as train
    from dmshift import DMSClustering

    names = []

    def recording(total, desc, *, verbose, **kw):
        names.append((desc, verbose))
        return progress._NoBar()

    monkeypatch.setattr(progress, "progress_bar", recording)
    monkeypatch.setattr(train, "progress_bar", recording)
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 30)
    X = rng.normal(size=(90, 3)) + 5 * np.eye(3)[y]
    DMSClustering(max_steps=5, batch_size=4, instance_size=(10, 20), n_seeds=10, smoothing="graph", verbose=True,
                  self_training=1, random_state=0).fit(X, np.where(np.arange(90) % 3 == 0, y, -1))
    assert [d for d, _ in names] == ["training, round 1/2", "clustering, round 1/2", "training, round 2/2",
                                     "clustering, round 2/2", "choosing the labels"]
    assert all(v for _, v in names)
