"""The last stage of DMS (dmshift.side_info_stage) on made-up clusterings: whatever came before, the
labels honour the side information."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings as hsettings, strategies as st

from dmshift.clustering import Clustering
from dmshift.constants import NOISE
from dmshift.constraints import SideInfo
from dmshift.kernels.gaussian import GaussianKernel
from dmshift.settings import SideInfoSettings
from dmshift.side_info_stage import honour, min_reached_size, thin_side_info_warning


def _clustering(labels, X):
    k = int(labels.max(initial=-1)) + 1
    ids = np.arange(k)
    centers = np.stack([X[labels == c].mean(0) if (labels == c).any() else X[0] for c in ids]) if k else \
        np.zeros((0, X.shape[1]), dtype=np.float32)
    return Clustering(labels=labels, confidence=np.ones(labels.size, dtype=np.float32),
                      center_embeddings=torch.as_tensor(centers, dtype=torch.float32), center_cluster=ids,
                      cluster_centers=centers.astype(np.float32), n_clusters=k, n_iter=1, n_seeds_used=k,
                      converged_fraction=1.0)


def _honour(labels, X, side, **kw):
    return honour(_clustering(labels, X), GaussianKernel(1.0), torch.as_tensor(X), side, landmarks=None,
                  memory_budget=2**20, to_input=lambda Z: Z, **kw)


def _check(labels, side):
    """Every two side-information points keep their relation: same group together (not NOISE), groups
    known to differ apart."""
    on = np.flatnonzero(side.group >= 0)
    assert (labels[on] != NOISE).all()
    C = side.cannot.tocsr()
    for a in on:
        for b in on:
            ga, gb = side.group[a], side.group[b]
            if ga == gb:
                assert labels[a] == labels[b]
            elif C[ga, gb]:
                assert labels[a] != labels[b]


def test_a_small_group_in_a_cluster_of_a_group_it_differs_from_is_split_off():
    # two blobs the clustering joined; 3 labels of class 0 in the left, 2 of class 1 in the right
    X = np.r_[np.zeros((20, 2)), np.full((20, 2), 3.0)].astype(np.float32) + \
        np.random.default_rng(0).normal(0, 0.3, (40, 2)).astype(np.float32)
    y = np.full(40, -1)
    y[[0, 1, 2]], y[[20, 21]] = 0, 1
    out = _honour(np.zeros(40, dtype=np.int64), X, SideInfo.build(40, y=y))
    _check(out.clustering.labels, SideInfo.build(40, y=y))
    assert out.record["split"] == 1 and out.clustering.n_clusters == 2
    assert (out.clustering.labels[:20] == out.clustering.labels[0]).all()  # each point went to its nearer group
    assert (out.clustering.labels[20:] == out.clustering.labels[20]).all()
    assert out.clustering.center_embeddings.shape[0] == out.clustering.center_cluster.size


def test_noise_side_information_takes_its_group_or_the_nearest_cluster():
    X = np.r_[np.zeros((10, 2)), np.full((10, 2), 5.0)].astype(np.float32)
    labels = np.r_[np.zeros(10), np.ones(10)].astype(np.int64)
    labels[[0, 15, 16]] = NOISE
    y = np.full(20, -1)
    y[[0, 1]], y[[15, 16]] = 0, 1  # point 0: noise, its group holds 1; group 1: all noise
    out = _honour(labels, X, SideInfo.build(20, y=y))
    _check(out.clustering.labels, SideInfo.build(20, y=y))
    assert out.record["noise_assigned"] == 3
    assert out.clustering.labels[15] == out.clustering.labels[10]  # the cluster nearest to group 1


def test_labels_that_already_honour_the_side_information_are_unchanged():
    X = np.random.default_rng(1).normal(size=(30, 2)).astype(np.float32)
    labels = np.repeat([0, 1, 2], 10)
    y = np.where(np.arange(30) % 5 == 0, labels, -1)
    found = _clustering(labels, X)
    out = honour(found, GaussianKernel(1.0), torch.as_tensor(X), SideInfo.build(30, y=y), landmarks=None,
                 memory_budget=2**20, to_input=lambda Z: Z)
    assert out.clustering is found and out.record["relabelled"] == 0


def test_small_clusters_join_the_most_confident_cluster_they_may_join():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2)).astype(np.float32)
    labels = np.r_[np.zeros(28), np.ones(28), [2, 2, 3, 3]].astype(np.int64)  # two 2-point clusters, no side info
    pairs = np.array([[i, i + 1, 1] for i in range(0, 20, 2)] + [[0, 30, 0]])
    side = SideInfo.build(60, pairs=pairs)
    assert min_reached_size(side, 0.05) > 2
    out = _honour(labels, X, side)
    assert out.record["absorbed"] == 2 and out.clustering.n_clusters == 2
    kept = _honour(labels, X, side, settings=SideInfoSettings(absorb=False))
    assert kept.clustering.n_clusters == 4
    # a small cluster holding a group known to differ from both large clusters' groups stays
    y = np.full(60, -1)
    y[[0, 1, 30, 31, 56, 57]] = [0, 0, 1, 1, 2, 2]
    out = _honour(labels, X, SideInfo.build(60, y=y), settings=SideInfoSettings(absorb=True))
    assert out.record["absorbed"] == 1 and out.clustering.n_clusters == 3


def test_partial_labels_keep_the_clusters_they_leave_bare():
    # with partial labels (every two groups known to differ) a cluster no label reaches is a candidate
    # class of its own: "auto" keeps it (ORL, 40 people, 5% labels: absorbing took the 29 clusters of
    # unlabelled people), while pairs, which leave fragments around single pair members, absorb
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2)).astype(np.float32)
    labels = np.r_[np.zeros(28), np.ones(28), [2, 2, 3, 3]].astype(np.int64)
    y = np.full(60, -1)
    y[[0, 1, 30, 31]] = [0, 0, 1, 1]
    labelled = SideInfo.build(60, y=y)
    assert min_reached_size(labelled, 0.05) > 2
    out = _honour(labels, X, labelled)
    assert out.record["absorbed"] == 0 and out.clustering.n_clusters == 4
    _check(out.clustering.labels, labelled)
    forced = _honour(labels, X, labelled, settings=SideInfoSettings(absorb=True))
    assert forced.record["absorbed"] == 2 and forced.clustering.n_clusters == 2
    pairs = SideInfo.build(60, pairs=np.array([[0, 1, 1], [30, 31, 1]]))  # two groups, not known to differ
    assert _honour(labels, X, pairs).record["absorbed"] >= 2


def test_absorb_must_be_a_bool_or_auto():
    from dmshift import DMSClustering
    with pytest.raises(ValueError, match="settings.side_info.absorb"):
        DMSClustering(settings={"side_info": {"absorb": "sometimes"}}).fit(np.eye(4), [0, 0, 1, 1])


def test_unseen_groups_are_kept_and_no_labelled_cluster_joins_them():
    # clusters 0, 1 hold thin side information (min_reached_size is above every cluster's size), 2 and
    # 3 none: 3 is an unseen group the search found (kept), 2 is a fragment (absorbed); the labelled
    # cluster 1 may not join the unseen group 3, even where it is most confident in it
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 0.3, (20, 2)), rng.normal(5, 0.3, (20, 2)), rng.normal(0.5, 0.3, (5, 2)),
              rng.normal(5.2, 0.3, (20, 2))].astype(np.float32)
    labels = np.repeat([0, 1, 2, 3], [20, 20, 5, 20]).astype(np.int64)
    side = SideInfo.build(65, pairs=np.array([[0, 20, 0]]))  # groups known to differ, but nothing else
    assert min_reached_size(side, 0.05) > 20
    on = SideInfoSettings(absorb=True)  # "auto" would keep every bare cluster of label-like side information
    plain = _honour(labels, X, side, settings=on)
    assert plain.clustering.n_clusters < 3  # without keep, the unseen group goes too
    out = _honour(labels, X, side, keep=np.array([3]), settings=on)
    lab = out.clustering.labels
    assert out.clustering.n_clusters == 3
    assert len(set(lab[45:])) == 1 and lab[45] not in (lab[0], lab[20])  # the unseen group, whole and apart
    assert lab[40] == lab[0]  # the fragment joined the cluster nearest to it


def test_thin_side_information_is_named():
    side = SideInfo.build(50, pairs=np.array([[0, 1, 1], [2, 3, 0]]))
    assert "1 'same' pair(s) for 13 features" in thin_side_info_warning(side, 13)
    assert thin_side_info_warning(SideInfo.build(6, y=np.array([0, 0, 0, 1, 1, 1])), 2) is None


@hsettings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 6), st.booleans(), st.integers(0, 4))
def test_any_clustering_comes_out_honouring_the_side_information(seed, n_clusters, pairs_only, n_noise):
    rng = np.random.default_rng(seed)
    n = 40
    X = rng.normal(size=(n, 2)).astype(np.float32)
    labels = rng.integers(0, n_clusters, n)
    labels[rng.choice(n, n_noise, replace=False)] = NOISE
    if pairs_only:  # "different" known for some pairs only
        ij = rng.choice(n, (12, 2))
        ij = ij[ij[:, 0] != ij[:, 1]]
        y_true = rng.integers(0, 3, n)
        side = SideInfo.build(n, pairs=np.c_[ij, y_true[ij[:, 0]] == y_true[ij[:, 1]]].astype(np.int64))
    else:
        y = np.full(n, -1)
        on = rng.choice(n, 8, replace=False)
        y[on] = rng.integers(0, 3, 8)
        side = SideInfo.build(n, y=y)
    _check(_honour(labels, X, side).clustering.labels, side)


def test_labels_with_enough_same_pairs_raise_no_thin_warning_whatever_the_width():
    # 20 classes with 4 labelled points each: 120 "same" pairs, for a kernel reading 128 features
    side = SideInfo.build(400, y=np.where(np.arange(400) < 80, np.arange(400) % 20, -1))
    assert thin_side_info_warning(side, 128) is None
    assert thin_side_info_warning(SideInfo.build(6, pairs=np.array([[0, 1, 1], [2, 3, 0]])), 128) is not None
