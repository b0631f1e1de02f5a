"""Ward-tree clusters cut by the side information: pairwise F1, whitening, honouring the side information."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.metrics import adjusted_rand_score

from _tiny import thin_groups as thin

from dmshift.constraints import SideInfo
from dmshift.smoothing import knn
from dmshift.treecut import _parts_after, honour_side_info, pair_f1, tree_clusters, whitening


def test_pair_f1_by_hand():
    side = SideInfo.build(6, y=np.array([0, 0, 0, 1, 1, -1]))
    # same pairs: (0,1) (0,2) (1,2) (3,4); labels keep (0,1) together, 2 apart, 3 and 4 together with 1
    labels = np.array([5, 5, 6, 5, 5, 7])
    f1, n_same = pair_f1(labels, side.group, side.cannot)
    tp, fn = 2, 2  # (0,1), (3,4) together; (0,2), (1,2) apart
    fp = 4  # 0-3, 0-4, 1-3, 1-4 are different pairs joined
    assert n_same == 4
    assert f1 == pytest.approx(2 * tp / (2 * tp + fp + fn))
    # noise joins nobody
    f1_noise, _ = pair_f1(np.array([-1, -1, -1, 1, 1, 2]), side.group, side.cannot)
    assert f1_noise == pytest.approx(2 * 1 / (2 * 1 + 0 + 3))


def test_pair_f1_counts_only_groups_known_to_differ():
    # two "same" pairs and no statement between them: joining them is no error
    side = SideInfo.build(4, pairs=np.array([[0, 1, 1], [2, 3, 1]]))
    assert pair_f1(np.zeros(4, dtype=int), side.group, side.cannot)[0] == pytest.approx(1.0)
    side = SideInfo.build(4, pairs=np.array([[0, 1, 1], [2, 3, 1], [0, 2, 0]]))
    assert pair_f1(np.zeros(4, dtype=int), side.group, side.cannot)[0] == pytest.approx(2 * 2 / (2 * 2 + 4))
    assert pair_f1(np.zeros(4, dtype=int), np.full(4, -1), sp.csr_matrix((0, 0), dtype=bool)) == (0.0, 0.0)


def test_whitening_gives_unit_variance_and_drops_flat_directions():
    r = np.random.default_rng(0)
    X = torch.as_tensor(r.normal(size=(500, 3)) @ np.diag([10.0, 1.0, 0.1]) @ r.normal(size=(3, 3)), dtype=torch.float32)
    X = torch.cat([X, torch.zeros(500, 1)], 1)  # a direction with no variance
    W = whitening(X)
    assert W.shape == (4, 3)
    Z = (X - X.mean(0)) @ W
    np.testing.assert_allclose(torch.cov(Z.T).numpy(), np.eye(3), atol=1e-3)


def test_parts_after_replays_the_first_merges():
    children = np.array([[0, 1], [2, 3], [5, 6], [4, 7]])  # leaves 0..4: (0 1), (2 3), then (0 1 2 3), then all
    assert _parts_after(children, 5, 0).tolist() == [0, 1, 2, 3, 4]
    p = _parts_after(children, 5, 2)
    assert p[0] == p[1] and p[2] == p[3] and len({p[0], p[2], p[4]}) == 3
    p = _parts_after(children, 5, 3)
    assert len(set(p[:4])) == 1 and p[4] != p[0]
    assert set(_parts_after(children, 5, 4)) == {0}


def test_honour_joins_parts_of_one_group_and_splits_groups_that_differ():
    Z = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0], [20.0]])
    group = np.array([0, -1, -1, 1, -1, 0, -1])
    side = SideInfo.build(7, y=group)
    # parts: {0,1,2} {3,4,5} {6}; group 0 lies in the first two, group 1 in the second
    out = honour_side_info(np.array([0, 0, 0, 1, 1, 1, 2]), Z, side.group, side.cannot)
    # joined into {0..5}, then split between groups 0 and 1 by the nearest point with side information
    assert out[0] == out[1] == out[2] == out[5]
    assert out[3] == out[4] != out[0]
    assert out[6] not in (out[0], out[3])
    # groups not known to differ are not split
    side = SideInfo.build(7, pairs=np.array([[0, 5, 1]]))
    single = SideInfo.build(7, pairs=np.array([[0, 5, 1], [3, 4, 1]]))
    for s in (side, single):
        out = honour_side_info(np.array([0, 0, 0, 1, 1, 1, 2]), Z, s.group, s.cannot)
        assert len(set(out[:6])) == 1


def test_tree_cut_recovers_thin_groups_in_the_whitened_space():
    X, y, yp = thin()
    side = SideInfo.build(y.size, y=yp)
    Xt = torch.as_tensor(X)
    Xt = (Xt - Xt.mean(0)) / Xt.std(0)
    scores = {}
    for name, Z in (("plain", Xt), ("whitened", Xt @ whitening(Xt))):
        idx, _ = knn(Z, Z, 10, 1 << 24, exclude_self=True)
        cut = tree_clusters(Z.numpy(), idx.numpy(), side.group, side.cannot)
        scores[name] = (cut.f1, adjusted_rand_score(y, cut.labels))
        assert pair_f1(cut.labels, side.group, side.cannot)[0] == pytest.approx(1.0)  # side information honoured
    assert scores["whitened"][1] > 0.95
    assert scores["whitened"][0] > scores["plain"][0] + 0.2  # the side information tells the spaces apart


def test_tree_cut_needs_both_kinds_of_pairs():
    X, y, _ = thin()
    idx, _ = knn(torch.as_tensor(X), torch.as_tensor(X), 10, 1 << 24, exclude_self=True)
    one_group = np.where(y == 0, 0, -1)
    side = SideInfo.build(y.size, y=one_group)
    assert tree_clusters(X, idx.numpy(), side.group, side.cannot) is None
    singles = np.full(y.size, -1)
    singles[[0, 20, 40]] = [0, 1, 2]
    side = SideInfo.build(y.size, y=singles)
    assert tree_clusters(X, idx.numpy(), side.group, side.cannot) is None
