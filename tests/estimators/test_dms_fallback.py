"""DMS's fallback to the Ward tree when the side information is too thin to learn a kernel from."""

import numpy as np
import pytest
from _tiny import thin_groups as thin
from sklearn.metrics import adjusted_rand_score

from dmshift import DMSClustering
from dmshift.constraints import SideInfo
from dmshift.settings import FallbackSettings
from dmshift.treecut import pair_f1

FALLBACK_MARGIN, FALLBACK_MIN_SAME_PAIRS = FallbackSettings().margin, FallbackSettings().min_same_pairs

FAST = dict(max_steps=60, batch_size=16, instance_size=(30, 40), n_seeds=40, self_training=0, random_state=0)


@pytest.fixture(scope="module")
def data():
    return thin(k=80, m=6)  # 80 groups of 6: 44 with a label, 28 "same" pairs


@pytest.fixture(scope="module")
def fits(data):
    X, _, yp = data
    return {fb: DMSClustering(**FAST, fallback=fb).fit(X, yp) for fb in (None, "tree")}


def test_thin_side_info_takes_the_tree(data, fits):
    _, y, yp = data
    off, on = fits[None], fits["tree"]
    assert not off.fallback_["applied"] and off.fallback_["tree_f1"] is None
    assert adjusted_rand_score(y, off.labels_) < 0.5  # the kernel does not learn the groups
    assert on.fallback_["applied"] and on.fallback_["space"] == "whitened"
    assert on.fallback_["tree_f1"] >= on.fallback_["kernel_f1"] + FALLBACK_MARGIN
    assert adjusted_rand_score(y, on.labels_) > 0.9
    assert on.n_clusters_ == np.unique(on.labels_[on.labels_ >= 0]).size
    assert on.cluster_centers_.shape[0] == on.n_clusters_
    side = SideInfo.build(y.size, y=yp)
    assert pair_f1(on.labels_, side.group, side.cannot)[0] == pytest.approx(1.0)  # side information honoured


def test_predict_votes_in_the_trees_space_and_survives_save_load(data, fits, tmp_path):
    X, _, _ = data
    m = fits["tree"]
    p = m.predict(X)
    assert (p == m.labels_).mean() > 0.95
    m.save(tmp_path / "model")
    m2 = DMSClustering.load(tmp_path / "model")
    np.testing.assert_array_equal(m2.predict(X), p)
    assert m2.fallback_ == m.fallback_


def test_a_kernel_that_agrees_with_the_side_information_is_kept():
    from sklearn.datasets import make_blobs
    X, y = make_blobs(n_samples=300, centers=[[0, 0], [4, 0], [0, 4], [4, 4]], cluster_std=0.6, random_state=3)
    yp = np.where(np.arange(y.size) % 10 == 0, y, -1)
    m = DMSClustering(**FAST).fit(X.astype(np.float32), yp)
    assert not m.fallback_["applied"]
    record = m.choices_["labels"]
    assert record["chosen"] == "tree_seeded" and record["reason"] == "default"  # the tree alone proved nothing better
    assert record["folds"] >= 2 and set(record["held_f1"]) == {"tree_seeded", "fused_graph", "learnt_graph",
                                                                 "input_graph", "tree"}


def test_too_few_same_pairs_decide_nothing(data):
    X, y, _ = data
    yp = np.full(y.size, -1)
    first = np.array([np.flatnonzero(y == c)[0] for c in np.unique(y)])
    yp[first] = y[first]  # one labelled point per group: no "same" pair at all ...
    extra = [np.flatnonzero(y == c)[1] for c in range(FALLBACK_MIN_SAME_PAIRS - 1)]
    yp[extra] = y[extra]  # ... then one short of the pairs needed
    assert SideInfo.build(y.size, y=yp).n_positive_pairs() == FALLBACK_MIN_SAME_PAIRS - 1
    m = DMSClustering(**FAST).fit(X, yp)
    assert not m.fallback_["applied"] and m.fallback_["tree_f1"] is None


def test_bad_fallback_is_refused(data):
    X, _, yp = data
    with pytest.raises(ValueError, match="'fallback'"):
        DMSClustering(**FAST, fallback="ward").fit(X, yp)
