"""DMS's pipeline seen from the estimator: the stages' decisions, settings, ``recluster``."""

import logging

import numpy as np
import pytest

from dmshift import DMSClustering
from dmshift.settings import DMSSettings, FallbackSettings, SmoothingSettings

FAST = dict(max_steps=30, batch_size=16, instance_size=(30, 40), n_seeds=30, random_state=0)


def _partial(y, every=8):
    return np.where(np.arange(y.size) % every == 0, y, -1)


@pytest.fixture(scope="module")
def fitted():
    from sklearn.datasets import make_blobs
    X, y = make_blobs(n_samples=200, centers=[[0, 0], [8, 0], [0, 8], [8, 8]], cluster_std=0.7, random_state=0)
    X = X.astype(np.float32)
    return DMSClustering(**FAST).fit(X, _partial(y)), X, y


def test_choices_say_what_each_stage_decided(fitted):
    m, _, _ = fitted
    c = m.choices_
    assert set(c) >= {"self_training", "merge_threshold", "fallback", "smoothing"}
    assert c["fallback"]["applied"] == m.fallback_["applied"] and c["fallback"]["reason"]
    assert c["smoothing"]["applied"] == m.smoothing_["applied"] and c["smoothing"]["reason"]
    assert c["self_training"]["rounds"] == len(m.training_["rounds"])


def test_verbose_logs_the_decisions(fitted, caplog):
    _, X, y = fitted
    with caplog.at_level(logging.INFO, logger="dmshift"):
        DMSClustering(**{**FAST, "max_steps": 5}, self_training=0, verbose=True).fit(X, _partial(y))
    assert any("DMS stages" in r.getMessage() and "smoothing" in r.getMessage() for r in caplog.records)


def test_fallback_is_decided_even_without_smoothing(fitted):
    _, X, y = fitted
    m = DMSClustering(**FAST, smoothing=None).fit(X, _partial(y))
    assert set(m.choices_["labels"]["held_f1"]) == {"kernel", "tree"}
    assert m.choices_["labels"]["chosen"] in ("kernel", "tree")
    assert m.smoothing_ == {"applied": False, "agreement": None, "unseen_groups": 0}


def test_recluster_repeats_the_end_of_fit(fitted):
    m, X, y = fitted
    import copy
    r = copy.deepcopy(m)
    r.recluster(X, _partial(y), random_state=1)
    assert r.labels_.shape == m.labels_.shape and r.choices_["smoothing"] is not None
    bare = copy.deepcopy(m).recluster(X, random_state=1)
    assert not bare.smoothing_["applied"] and bare.smoothing_points_ is None
    np.testing.assert_array_equal(bare.predict(X), bare.labels_)


def test_non_default_settings_survive_save_and_load(fitted, tmp_path):
    _, X, y = fitted
    s = DMSSettings(smoothing=SmoothingSettings(n_iter=10), fallback=FallbackSettings(margin=0.3))
    m = DMSClustering(**FAST, self_training=0, settings=s).fit(X, _partial(y))
    m.save(tmp_path / "m")
    back = DMSClustering.load(tmp_path / "m")
    assert DMSSettings.from_dict(back.settings) == s
    np.testing.assert_array_equal(back.predict(X), m.predict(X))


def test_a_model_file_without_settings_loads_with_the_defaults(fitted, tmp_path):
    import json
    m, X, _ = fitted
    m.save(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    del cfg["params"]["settings"]
    # a file of the format before checksums, written before the settings parameter existed
    assert cfg.pop("weights") == "model.safetensors"
    del cfg["weights_sha256"], cfg["config_sha256"]
    cfg["format_version"] = 1
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    with pytest.warns(UserWarning):
        back = DMSClustering.load(tmp_path / "m")
    assert back.settings is None
    np.testing.assert_array_equal(back.predict(X), m.predict(X))
