"""Graph smoothing as DMS's last step: what it may change, what it keeps, predict and save/load."""

import numpy as np
import pytest

from dmshift import NOISE, DMSClustering
from dmshift.metrics import accuracy

FAST = dict(max_steps=60, batch_size=16, instance_size=(30, 40), n_seeds=40, random_state=0)


@pytest.fixture(scope="module")
def data():
    from sklearn.datasets import make_blobs
    X, y = make_blobs(n_samples=300, centers=[[0, 0], [3.5, 0], [0, 3.5], [3.5, 3.5]], cluster_std=1.0,
                      random_state=3)
    yp = np.where(np.arange(y.size) % 10 == 0, y, -1)
    return X.astype(np.float32), y, yp


@pytest.fixture(scope="module")
def fits(data):
    X, _, yp = data
    fits = {None: DMSClustering(**FAST, smoothing=None, fallback=None).fit(X, yp),  # the kernel's assignment alone
            "graph": DMSClustering(**FAST, smoothing="graph").fit(X, yp)}
    fits["graph, noise kept"] = DMSClustering(**FAST, smoothing="graph", smooth_noise=False).fit(X, yp)
    return fits


def test_without_smoothing_predict_is_the_kernel_assignment(data, fits):
    X, _, _ = data
    m = fits[None]
    assert m.smoothing_points_ is None and m.smoothing_ == {"applied": False, "agreement": None, "unseen_groups": 0}
    np.testing.assert_array_equal(m.predict(X), m.labels_)


def test_smoothing_only_moves_points_between_the_clusters_found(data, fits):
    X, y, yp = data
    paper, smooth = fits[None], fits["graph, noise kept"]
    assert smooth.smoothing_["applied"] and 0.0 <= smooth.smoothing_["agreement"] <= 1.0
    np.testing.assert_array_equal(smooth.labels_ == NOISE, paper.labels_ == NOISE)
    assert smooth.n_clusters_ <= paper.n_clusters_
    assert smooth.cluster_centers_.shape == (smooth.n_clusters_, 2)
    assert smooth.center_cluster_.max() == smooth.n_clusters_ - 1
    # clusters are renumbered by size after smoothing: match them before counting moved points
    assert accuracy(paper.labels_, smooth.labels_) > 0.5


def test_noise_takes_the_spread_label_unless_kept(data, fits):
    X, y, _ = data
    paper, kept, relabelled = fits[None], fits["graph, noise kept"], fits["graph"]
    noise = paper.labels_ == NOISE
    assert noise.sum() >= 3  # 60 training steps leave some points far from every center
    assert (relabelled.labels_[noise] != NOISE).all() and (kept.labels_[noise] == NOISE).all()
    assert relabelled.smoothing_["noise_relabelled"] and not kept.smoothing_["noise_relabelled"]
    # the same clustering elsewhere; the relabelled points mostly join their own blob's cluster
    assert accuracy(kept.labels_[~noise], relabelled.labels_[~noise]) == 1.0  # numbering aside
    assert accuracy(y, relabelled.labels_) > accuracy(y, kept.labels_)
    # predict's vote relabels noise as fit did, and keeps it where fit kept it
    assert (relabelled.predict(X)[noise] != NOISE).all()
    assert (kept.predict(X)[noise] == NOISE).all()


def test_side_information_is_never_overruled(data, fits):
    X, y, yp = data
    m = fits["graph"]
    lab = yp >= 0
    for c in np.unique(y[lab]):  # each class's labelled points share a cluster, no two classes one
        assert np.unique(m.labels_[lab & (y == c)]).size == 1
    assert np.unique(m.labels_[lab]).size == np.unique(y[lab]).size


def test_predict_takes_the_neighbours_vote_and_survives_save_load(data, fits, tmp_path):
    X, _, _ = data
    m = fits["graph"]
    assert m.smoothing_points_.shape == (X.shape[0], 2)
    p = m.predict(X)
    assert (p == m.labels_).mean() > 0.95  # the vote and the spreading differ on a few boundary points
    m.save(tmp_path / "model")
    m2 = DMSClustering.load(tmp_path / "model")
    np.testing.assert_array_equal(m2.predict(X), p)
    assert m2.smoothing_ == m.smoothing_


def test_auto_chooses_on_held_back_side_information(data, fits):
    X, _, yp = data
    m = DMSClustering(**FAST).fit(X, yp)  # smoothing="auto"
    rec = m.choices_["labels"]
    # the kernel's clusters: only as default
    assert set(rec["held_f1"]) == {"tree_seeded", "fused_graph", "learnt_graph", "input_graph", "tree"}
    assert rec["folds"] >= 2 and rec["cross_fitted"] and rec["held_points"] > 0 and rec["chosen"] in rec["held_f1"]
    assert set(rec["held_f1_final_kernel"]) == set(rec["held_f1"])  # before the learnt graph's optimism is taken off
    assert m.smoothing_["applied"] == (rec["chosen"] in ("tree_seeded", "fused_graph", "learnt_graph", "input_graph"))


@pytest.mark.parametrize("params, match", [({"smoothing": "knn"}, "'smoothing'"),
                                           ({"n_neighbors": 0}, "'n_neighbors'"),
                                           ({"smooth_noise": "yes"}, "'smooth_noise'")])
def test_bad_smoothing_parameters(data, params, match):
    X, _, yp = data
    with pytest.raises(ValueError, match=match):
        DMSClustering(**FAST, **params).fit(X, yp)


def test_smoothing_does_not_hurt_on_overlapping_blobs(data, fits):
    # 60 training steps leave 13 clusters for 4 blobs; smoothing drops the smallest ones (and without it
    # the last stage absorbs them: dmshift.side_info_stage)
    X, y, yp = data
    score = ~(yp >= 0)
    assert accuracy(y[score], fits["graph"].labels_[score]) >= accuracy(y[score], fits[None].labels_[score])
    assert fits["graph"].n_clusters_ <= fits[None].n_clusters_


def test_a_group_merged_with_one_known_to_differ_gets_its_own_cluster():
    from sklearn.datasets import make_blobs
    X, y = make_blobs(n_samples=240, centers=[[0, 0], [2.0, 0], [12, 12]], cluster_std=0.9, random_state=0)
    X = X.astype(np.float32)
    yp = np.where(np.arange(y.size) % 6 == 0, y, -1)
    # an untrained kernel as wide as the data, the paper's inference, a threshold that merges all: one cluster
    # (fallback off: the Ward tree would replace a kernel that joins every group; here smoothing is tested)
    params = {**FAST, "max_steps": 1, "init_quantile": 0.9, "threshold": 0.01, "inference_side_info": False,
              "fallback": None}
    merged = DMSClustering(**params, smoothing=None).fit(X, yp)
    lab = yp >= 0
    assert merged.n_clusters_ == 1
    m = DMSClustering(**params, smoothing="graph").fit(X, yp)
    first = [np.unique(m.labels_[lab & (y == c)]) for c in range(3)]
    assert [f.size for f in first] == [1, 1, 1] and len({int(f[0]) for f in first}) == 3
    assert m.n_clusters_ == 3 and m.cluster_centers_.shape == (3, 2)
    fresh = sorted(set(range(m.n_clusters_)) - set(m.center_cluster_.tolist()))  # clusters no center found
    assert len(fresh) == 2
    for k in fresh:  # their center is their mean
        np.testing.assert_allclose(m.cluster_centers_[k], X[m.labels_ == k].mean(0), atol=1e-4)
    assert accuracy(y[~lab], m.labels_[~lab]) > 0.8  # blobs 0 and 1 overlap (2 apart, std 0.9)


def test_smoothing_graph_reads_the_leading_components_of_a_projection():
    from sklearn.datasets import make_blobs

    from dmshift.settings import SmoothingSettings
    SMOOTH_COMPONENTS = SmoothingSettings().components
    X, y = make_blobs(n_samples=240, n_features=100, centers=3, cluster_std=2.0, random_state=0)
    yp = np.where(np.arange(y.size) % 8 == 0, y, -1)
    m = DMSClustering(**FAST, n_components=80, smoothing="graph").fit(X.astype(np.float32), yp)
    assert m.components_.shape == (100, 80) and m.smoothing_["applied"]
    assert m.smoothing_points_.shape == (X.shape[0], SMOOTH_COMPONENTS)
    p = m.predict(X.astype(np.float32))
    assert (p == m.labels_).mean() > 0.95
    # landmarks saved at the kernel's full input width (models saved before the cap) still vote
    m.smoothing_points_ = m._transform(X.astype(np.float32))
    assert (m.predict(X.astype(np.float32)) == m.labels_).mean() > 0.9
