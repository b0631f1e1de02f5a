"""The training loop's plateau stop (dmshift.train)."""

import numpy as np
import pytest
import torch

from dmshift import DMSClustering
from dmshift.train import TrainConfig, _at_plateau, train_loop
from tests._tiny import blobs


def _history(losses):
    return [(i + 1, float(v), None) for i, v in enumerate(losses)]


def test_plateau_is_a_window_not_tol_below_the_best_before():
    cfg = TrainConfig(plateau_window=2, plateau_tol=0.1)
    assert not _at_plateau(_history([4, 4]), cfg)  # one window: nothing to compare with
    assert not _at_plateau(_history([4, 4, 3]), cfg)  # not at a window's end
    assert not _at_plateau(_history([4, 4, 3, 3]), cfg)  # 3 < 0.9 * 4
    assert _at_plateau(_history([4, 4, 3, 3, 2.8, 2.8]), cfg)  # 2.8 is not below 0.9 * 3
    assert _at_plateau(_history([4, 4, 3, 3, 5, 5]), cfg)  # worse than the best is a plateau too
    assert not _at_plateau(_history([4, 4, 3, 3]), TrainConfig(plateau_window=None))


def test_train_loop_stops_at_a_plateau_of_its_loss():
    w = torch.nn.Parameter(torch.tensor([3.0]))
    module = torch.nn.Module()
    module.w = w

    def step_loss(step):  # falls to 1 and stays there: a plateau from about step 60
        return (w - 1.0).pow(2).sum() + 1.0

    cfg = TrainConfig(max_steps=1000, lr=0.1, plateau_window=20, plateau_tol=0.05)
    res = train_loop(module, step_loss, cfg)
    assert res.stop_reason == "plateau"
    assert 40 <= res.steps < 1000 and res.steps % 20 == 0
    assert abs(float(w.detach()) - 1.0) < 0.1
    longer = train_loop(module, step_loss, TrainConfig(max_steps=200, lr=0.1))
    assert longer.steps == 200 and longer.stop_reason == "max_steps"


def test_dms_stops_at_a_plateau_by_default_and_records_it():
    X, _, yp = blobs(60)
    m = DMSClustering(max_steps=2000, batch_size=8, instance_size=(30, 40), n_seeds=40, random_state=0).fit(X, yp)
    assert m.training_["stop_reason"] == "plateau" and m.choices_["training"]["stop"] == "plateau"
    assert m.training_["steps"] < 2000 and m.training_["steps"] % 100 == 0
    off = DMSClustering(max_steps=300, batch_size=8, instance_size=(30, 40), n_seeds=40, random_state=0,
                        settings={"training": {"plateau_window": None}}).fit(X, yp)
    assert off.training_["steps"] == 300 and off.training_["stop_reason"] == "max_steps"


def test_resuming_a_run_that_stopped_at_a_plateau_trains_no_further(tmp_path):
    X, _, yp = blobs(60)
    kw = dict(max_steps=2000, batch_size=8, instance_size=(30, 40), n_seeds=40, random_state=0,
              checkpoint_dir=tmp_path, checkpoint_every=50)
    first = DMSClustering(**kw).fit(X, yp)
    again = DMSClustering(**kw).fit(X, yp, resume=True)
    assert first.training_["stop_reason"] == again.training_["stop_reason"] == "plateau"
    assert again.training_["steps"] == first.training_["steps"]
    np.testing.assert_array_equal(again.labels_, first.labels_)


@pytest.mark.parametrize("training, name", [({"plateau_window": 0}, "plateau_window"),
                                            ({"plateau_window": 2.5}, "plateau_window"),
                                            ({"plateau_tol": -0.1}, "plateau_tol"),
                                            ({"plateau_tol": 1.5}, "plateau_tol")])
def test_bad_plateau_settings_are_refused(training, name):
    X, _, yp = blobs()
    with pytest.raises(ValueError, match=name):
        DMSClustering(settings={"training": training}).fit(X, yp)
