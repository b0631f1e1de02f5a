"""Graph smoothing: k-NN search, label spreading, the neighbours' vote and the agreement gate."""

import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors

from dmshift import NOISE
from dmshift.settings import SmoothingSettings
from dmshift.smoothing import knn, smooth_labels, spread_labels, vote_labels

GATE_NEIGHBORS = SmoothingSettings().gate_neighbors


def two_lines(n=51, gap=5.0):
    """Two parallel rows of points 1 apart, ``gap`` apart: (2n, 2) points, row id as label."""
    x = np.arange(n, dtype=np.float32)
    Z = np.concatenate([np.stack([x, np.zeros(n)], 1), np.stack([x, np.full(n, gap)], 1)]).astype(np.float32)
    return torch.from_numpy(Z), np.repeat([0, 1], n)


@pytest.mark.parametrize("budget", [1 << 30, 256])  # one tile, and a tile of a single row
def test_knn_matches_scikit_learn(budget):
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(300, 5)).astype(np.float32)
    R = rng.normal(size=(120, 5)).astype(np.float32)
    idx, dist = knn(torch.from_numpy(Z), torch.from_numpy(R), 4, budget)
    d_ref, i_ref = NearestNeighbors(n_neighbors=4).fit(R).kneighbors(Z)
    np.testing.assert_array_equal(idx.numpy(), i_ref)
    np.testing.assert_allclose(dist.numpy(), d_ref, atol=1e-4)


def test_knn_excludes_self():
    rng = np.random.default_rng(1)
    Z = torch.from_numpy(rng.normal(size=(50, 3)).astype(np.float32))
    idx, _ = knn(Z, Z, 3, 1 << 20, exclude_self=True)
    assert not (idx == torch.arange(50)[:, None]).any()
    _, i_ref = NearestNeighbors(n_neighbors=4).fit(Z.numpy()).kneighbors(Z.numpy())
    np.testing.assert_array_equal(idx.numpy(), i_ref[:, 1:])


def test_spreading_follows_the_graph_where_the_nearest_seed_is_wrong():
    Z, truth = two_lines()
    seeds = np.array([0, 101])  # the left end of row 0, the right end of row 1
    idx, dist = knn(Z, Z, 3, 1 << 20, exclude_self=True)
    F = spread_labels(idx, dist, seeds, truth[seeds], 2)
    np.testing.assert_array_equal(F.argmax(1).numpy(), truth)
    nearest_seed = vote_labels(Z, Z[seeds], truth[seeds], 1, 1 << 20)
    assert (nearest_seed != truth).sum() > 20  # the point-by-point rule gets far ends wrong


def test_vote_ignores_noise_and_gives_noise_without_voters():
    R = torch.tensor([[0.0], [1.0], [10.0], [11.0]])
    out = vote_labels(torch.tensor([[0.5], [10.5]]), R, np.array([3, 3, NOISE, NOISE]), 2, 1 << 20)
    np.testing.assert_array_equal(out, [3, NOISE])


def test_smoothing_relabels_but_keeps_noise():
    Z, truth = two_lines()
    labels = truth.copy()
    labels[40:51] = 1  # the far end of row 0 was given to the other cluster
    labels[5] = NOISE
    seeds = np.concatenate([np.arange(0, 20), np.arange(60, 102)])
    sm = smooth_labels(Z, labels, seeds, 3, 10_000, np.random.default_rng(0), 1 << 20)
    assert sm.applied and sm.agreement == 1.0
    expect = truth.copy()
    expect[5] = NOISE
    np.testing.assert_array_equal(sm.labels, expect)
    relabelled = smooth_labels(Z, labels, seeds, 3, 10_000, np.random.default_rng(0), 1 << 20, keep_noise=False)
    np.testing.assert_array_equal(relabelled.labels, truth)


def test_revote_keeps_noise_unless_told_not_to():
    from dmshift.smoothing import revote
    R = torch.tensor([[0.0], [1.0], [10.0], [11.0]])
    Z = torch.tensor([[0.5], [10.5], [0.2]])
    labels = np.array([NOISE, 7, 9])
    np.testing.assert_array_equal(revote(Z, R, np.array([3, 3, 4, 4]), labels, 2, 1 << 20), [NOISE, 4, 3])
    np.testing.assert_array_equal(revote(Z, R, np.array([3, 3, 4, 4]), labels, 2, 1 << 20, keep_noise=False),
                                  [3, 4, 3])


def test_smoothing_is_refused_when_the_graph_disagrees_with_the_seeds():
    Z, truth = two_lines()
    labels = np.arange(truth.size) % 2  # alternating along each row: neighbours always differ
    seeds = np.arange(truth.size)
    sm = smooth_labels(Z, labels, seeds, 2, 10_000, np.random.default_rng(0), 1 << 20, min_agreement=0.9)
    assert not sm.applied and sm.agreement < 0.5
    np.testing.assert_array_equal(sm.labels, labels)


def test_edge_weights_use_the_scale_at_both_ends():
    from dmshift.smoothing import _pair_weights
    # three points on a line at 0, 1, 3; two neighbours each
    idx = torch.tensor([[1, 2], [0, 2], [1, 0]])
    dist = torch.tensor([[1.0, 3.0], [1.0, 2.0], [2.0, 3.0]])
    w = _pair_weights(idx, dist)
    s = torch.tensor([3.0, 2.0, 3.0])  # each point's distance to its 2nd neighbour
    expect = torch.exp(-dist.square() / (s[:, None] * s[idx]))
    torch.testing.assert_close(w, expect)
    assert w[0, 0] == w[1, 0] and w[1, 1] == w[2, 0]  # the same edge seen from either end
    assert abs(float(w[0, 0]) - np.exp(-1 / 6)) < 1e-6


def test_the_gate_reads_its_own_graph_whatever_the_spreading_neighbours():
    # tight pairs of points, pairs labelled 0, 1, 0, 1 ... along a line: each point's nearest
    # neighbour shares its label, its next four mostly do not
    Z = torch.tensor([[p + 0.01 * j] for p in range(30) for j in range(2)], dtype=torch.float32)
    labels = np.repeat(np.arange(30) % 2, 2)
    seeds = np.arange(60)
    got = {k: smooth_labels(Z, labels, seeds, k, 10_000, np.random.default_rng(0), 1 << 20).agreement
           for k in (1, 3, GATE_NEIGHBORS, 8)}
    assert len(set(got.values())) == 1 and got[1] < 0.5


def test_landmarks_above_max_points_and_the_others_vote():
    Z, truth = two_lines(n=200, gap=10.0)
    labels = truth.copy()
    labels[150:200] = 1  # wrong end of row 0
    seeds = np.concatenate([np.arange(0, 100), np.arange(200, 400)])
    runs = [smooth_labels(Z, labels, seeds, 4, 250, np.random.default_rng(7), 1 << 20) for _ in range(2)]
    assert runs[0].landmarks.size == 250
    np.testing.assert_array_equal(runs[0].labels, runs[1].labels)  # the generator decides the landmarks
    assert (runs[0].labels == truth).mean() > 0.97
    np.testing.assert_array_equal(runs[0].landmark_labels, runs[0].labels[runs[0].landmarks])


def test_fixed_points_keep_their_label():
    Z, truth = two_lines()
    labels = truth.copy()
    labels[10] = 1  # a point whose label the graph would overrule
    seeds = np.arange(truth.size)
    free = smooth_labels(Z, labels, seeds, 3, 10_000, np.random.default_rng(0), 1 << 20)
    kept = smooth_labels(Z, labels, seeds, 3, 10_000, np.random.default_rng(0), 1 << 20, fixed=np.array([10]))
    assert free.labels[10] == 0 and kept.labels[10] == 1
    assert kept.landmark_labels[10] == 1


def test_reciprocal_edges_by_hand():
    from dmshift.smoothing import reciprocal
    # points at 0, 0.1, 0.2 and 1.5: the last one's nearest is 0.2, whose nearest two are 0.1 and 0
    Z = torch.tensor([[0.0], [0.1], [0.2], [1.5]])
    idx, _ = knn(Z, Z, 2, 1 << 20, exclude_self=True)
    back = reciprocal(idx[:, :1], idx)
    assert back[:3].all() and not back[3, 0]
    assert reciprocal(idx[:, :1], knn(Z, Z, 3, 1 << 20, exclude_self=True)[0])[3, 0]  # within 3, it is returned


def test_edge_factor_scales_the_flow():
    Z = torch.arange(11, dtype=torch.float32)[:, None]  # a chain 0..10, a seed at each end
    idx, dist = knn(Z, Z, 2, 1 << 20, exclude_self=True)
    seeds, labels = np.array([0, 10]), np.array([0, 1])
    F = spread_labels(idx, dist, seeds, labels, 2)
    assert torch.equal(spread_labels(idx, dist, seeds, labels, 2, edge_factor=torch.ones_like(dist)), F)
    cut = torch.ones_like(dist)
    cut[5] = 0.0  # the edges of point 5, both ways
    cut[idx == 5] = 0.0
    G = spread_labels(idx, dist, seeds, labels, 2, edge_factor=cut)
    assert float(F[6:, 0].min()) > 0 and float(G[6:, 0].max()) == 0.0  # label 0 no longer crosses
    half = spread_labels(idx, dist, seeds, labels, 2, edge_factor=0.5 + 0.5 * cut)
    assert 0 < float(half[6:, 0].sum()) < float(F[6:, 0].sum())


def test_a_group_joined_only_by_one_way_edges_gets_its_own_label(monkeypatch):
    # A: 200 points 0.1 apart (labelled 1 in 20); B: 100 points 1 apart, 1.5 beyond A's end
    # (no label); C: far away, labelled, so that groups are known to differ. B's first point
    # chooses A's last, which does not choose it back: B hangs on A by one-way edges only
    a = np.arange(200) * 0.1
    b = a[-1] + 1.5 + np.arange(100, dtype=np.float64)
    c = 1000 + np.arange(200) * 0.1
    Z = torch.from_numpy(np.concatenate([a, b, c])[:, None].astype(np.float32))
    truth = np.repeat([0, 1, 2], [200, 100, 200])
    labels = np.where(truth == 1, 0, truth)  # the kernel put B with A
    fixed = np.flatnonzero((truth != 1) & (np.arange(truth.size) % 20 == 0))
    groups = np.full(truth.size, -1)
    groups[fixed] = truth[fixed] // 2
    from dmshift.constraints import SideInfo
    import dmshift.smoothing
    monkeypatch.setattr(dmshift.smoothing, "unseen_groups", lambda *args, **kwargs: [])  # the graph's test alone
    # 8 MiB: the Ward tree of all 500 points fits in the budget (no landmark subset)
    side = SideInfo.build(truth.size, y=np.where(groups >= 0, groups, -1))
    sm = smooth_labels(Z, labels, fixed, 3, 10_000, np.random.default_rng(0), 8 << 20, fixed=fixed,
                       groups=side.group, cannot=side.cannot)
    assert sm.applied and sm.n_unseen == 1
    assert len(set(sm.labels[truth == 1])) == 1 and not set(sm.labels[truth == 1]) & set(sm.labels[truth != 1])


def test_revote_relabels_noise_only_within_a_landmarks_radius():
    from dmshift.smoothing import revote
    R = torch.tensor([[0.0], [1.0], [2.0]])
    Z = torch.tensor([[0.5], [50.0]])
    labels = np.array([NOISE, NOISE])
    out = revote(Z, R, np.array([3, 3, 3]), labels, 2, 1 << 20, keep_noise=False, radius=torch.tensor([2.0, 1.0, 2.0]))
    np.testing.assert_array_equal(out, [3, NOISE])  # the far point stays noise


def test_the_graph_is_kept_for_equal_points_and_changes_with_them():
    import torch
    from dmshift.smoothing import knn, knn_graph
    Z = torch.as_tensor(np.random.default_rng(1).normal(size=(50, 4)), dtype=torch.float32)
    a = knn_graph(Z, 5, 2**20)
    a[0][:] = 0  # a caller changing its copy leaves the kept graph alone
    b = knn_graph(Z.clone(), 5, 2**20)
    ref = knn(Z, Z, 5, 2**20, exclude_self=True)
    assert torch.equal(b[0], ref[0]) and torch.equal(b[1], ref[1])
    c = knn_graph(Z * 2 + 1, 5, 2**20)  # other points: another graph (distances double)
    assert torch.allclose(c[1], 2 * ref[1])


def test_a_vote_searches_once_for_equal_points_and_follows_new_labels(monkeypatch):
    # every fold's candidates vote the same points over the same landmarks with other labels
    import dmshift.smoothing as sm
    rng = np.random.default_rng(3)
    Z = torch.as_tensor(rng.normal(size=(40, 3)), dtype=torch.float32)
    R = torch.as_tensor(rng.normal(size=(30, 3)), dtype=torch.float32)
    searches = []
    real = sm._knn_tiles
    monkeypatch.setattr(sm, "_knn_tiles", lambda *a, **k: searches.append(1) or real(*a, **k))
    first = rng.integers(0, 3, 30)
    a = vote_labels(Z, R, first, 3, 2**20, keep=True)
    b = vote_labels(Z.clone(), R.clone(), 2 - first, 3, 2**20, keep=True)  # the same search, other labels
    assert len(searches) == 1
    np.testing.assert_array_equal(b, 2 - a)
    many = rng.integers(0, 30, 30)  # more labels: still the same search
    ref = vote_labels(Z, R, many, 3, 2**20, keep=True)
    assert len(searches) == 1
    vote_labels(Z + 1, R, first, 3, 2**20, keep=True)  # other points: a new search
    assert len(searches) == 2
    # a budget that holds few rows' votes: the same labels, searched and voted in more tiles
    np.testing.assert_array_equal(vote_labels(Z, R, many, 3, 1200, keep=True), ref)
    assert len(searches) == 3
    # without keep (predict: new points each call) nothing is kept and each vote searches
    np.testing.assert_array_equal(vote_labels(Z, R, many, 3, 2**20), ref)
    vote_labels(Z, R, many, 3, 2**20)
    assert len(searches) == 5


def test_fewer_neighbours_are_the_leading_columns_of_the_shared_graph():
    # the unseen-group search and the fused graph read the first columns of one wider graph
    import torch
    from dmshift.smoothing import knn, knn_graph
    Z = torch.as_tensor(np.random.default_rng(2).normal(size=(300, 6)), dtype=torch.float32)
    wide = knn_graph(Z, 15, 2**12)  # a small budget: many row tiles
    for k in (3, 10):
        idx, dist = knn(Z, Z, k, 2**12, exclude_self=True)
        assert torch.equal(wide[0][:, :k], idx) and torch.allclose(wide[1][:, :k], dist)


def test_the_search_for_unseen_groups_builds_its_tree_within_the_budget():
    # 1,000 points, a budget whose Ward tree holds 256 of them: the graph is built on 256 landmarks
    from dmshift.constraints import SideInfo
    from dmshift.novelty import WARD_BYTES_PER_POINT
    rng = np.random.default_rng(0)
    truth = np.repeat([0, 1], 500)
    Z = torch.from_numpy((rng.normal(size=(1000, 2)) + truth[:, None] * 6).astype(np.float32))
    fixed = np.flatnonzero(np.arange(1000) % 25 == 0)
    side = SideInfo.build(1000, y=np.where(np.isin(np.arange(1000), fixed), truth, -1))
    budget = 256 * WARD_BYTES_PER_POINT
    sm = smooth_labels(Z, truth.copy(), fixed, 3, 10_000, np.random.default_rng(0), budget, fixed=fixed,
                       groups=side.group, cannot=side.cannot)
    assert sm.landmarks.size == 256 and sm.applied
    np.testing.assert_array_equal(sm.labels, truth)  # the others follow their nearest landmarks
    without = smooth_labels(Z, truth.copy(), fixed, 3, 10_000, np.random.default_rng(0), budget, fixed=fixed)
    assert without.landmarks.size == 1000  # no tree: the budget does not limit the graph's points


def test_only_the_points_asked_for_take_the_vote_and_they_take_the_same_one():
    # a validation fold reads the labels of its side-information points alone
    Z, truth = two_lines(n=200, gap=10.0)
    labels = truth.copy()
    labels[150:200] = 1  # wrong end of row 0
    seeds = np.concatenate([np.arange(0, 100), np.arange(200, 400)])
    full = smooth_labels(Z, labels, seeds, 4, 250, np.random.default_rng(7), 1 << 20)
    rest = np.setdiff1d(np.arange(400), full.landmarks)
    asked = rest[::3]
    part = smooth_labels(Z, labels, seeds, 4, 250, np.random.default_rng(7), 1 << 20, voted=asked)
    np.testing.assert_array_equal(part.landmarks, full.landmarks)
    np.testing.assert_array_equal(part.labels[full.landmarks], full.labels[full.landmarks])
    np.testing.assert_array_equal(part.labels[asked], full.labels[asked])
    others = np.setdiff1d(rest, asked)
    np.testing.assert_array_equal(part.labels[others], labels[others])  # not voted: as given
    assert (full.labels[others] != labels[others]).any()  # where the vote would have changed some
