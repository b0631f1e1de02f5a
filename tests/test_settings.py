"""Settings: the tuning numbers of the DMS stages as frozen values (``dmshift.settings``)."""

import dataclasses
import json

import pytest
from sklearn.base import clone

from dmshift import DMSClustering
from dmshift.settings import DMSSettings, FallbackSettings, SmoothingSettings


def test_defaults_are_the_library_values():
    s = DMSSettings()
    assert (s.smoothing.alpha, s.smoothing.n_iter, s.smoothing.max_points, s.smoothing.components) == (0.99, 50, 100_000, 64)
    assert (s.fallback.margin, s.fallback.min_same_pairs, s.fallback.max_cluster_share) == (0.2, 10, 0.5)
    assert (s.anchors.max_per_group, s.anchors.min_group) == (64, 3)
    assert (s.threshold.anchored, s.threshold.default) == (0.5, 0.8)
    assert (s.projection.auto_max, s.projection.auto_variance) == (128, 0.95)
    assert s.novelty.max_chance == 0.05 and s.novelty.max_seen_share == pytest.approx(1 / 3)


def test_frozen_and_round_trip_through_json():
    s = DMSSettings(smoothing=SmoothingSettings(n_iter=7, components=None), fallback=FallbackSettings(margin=0.3))
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.smoothing.n_iter = 3
    assert DMSSettings.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    assert DMSSettings.from_dict({"fallback": {"margin": 0.3}}).smoothing == SmoothingSettings()
    assert DMSSettings.from_dict(None) == DMSSettings()


@pytest.mark.parametrize("bad, match", [({"smoothin": {}}, "Unknown stage 'smoothin'"),
                                        ({"smoothing": {"alpah": 1}}, "alpah"), (3, "'settings' parameter")])
def test_bad_settings_name_what_is_wrong(bad, match):
    with pytest.raises(ValueError, match=match):
        DMSSettings.from_dict(bad)


def test_estimator_parameter_clones_and_is_checked(blobs):
    s = DMSSettings(fallback=FallbackSettings(margin=0.5))
    m = DMSClustering(settings=s)
    assert clone(m).get_params()["settings"] == s
    X, y = blobs
    with pytest.raises(ValueError, match="Unknown stage"):
        DMSClustering(settings={"nope": {}}).fit(X, y)
