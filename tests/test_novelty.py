"""Unseen groups: the cut of the Ward tree, the parts no side information reaches, and smoothing with them."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from dmshift import NOISE, DMSClustering
from dmshift.constraints import SideInfo
from dmshift.metrics import accuracy
from dmshift.novelty import best_cut, components_hold_groups, min_part_size, unreached_components, unseen_groups
from dmshift.settings import NoveltySettings
from dmshift.smoothing import knn, smooth_labels, spread_labels

MAX_CHANCE = NoveltySettings().max_chance

CENTERS = [[0, 0], [10, 0], [0, 10], [10, 10], [20, 0], [20, 10]]


def blobs(n_per=100, seed=0):
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(c, 1.0, size=(n_per, 2)) for c in CENTERS]).astype(np.float32)
    return X, np.repeat(np.arange(len(CENTERS)), n_per)


def side(y, seen, every=10):
    """Side-information groups (-1: none) on every ``every``-th point of the ``seen`` classes, and their cannot-links."""
    yp = np.where(np.isin(y, seen) & (np.arange(y.size) % every == 0), y, -1)
    s = SideInfo.build(y.size, y=yp)
    return s.group, s.cannot


def parts_of(X, group, cannot, k=10):
    Z = torch.from_numpy(X)
    idx, _ = knn(Z, Z, k, 1 << 24, exclude_self=True)
    return unseen_groups(X, idx.numpy(), group, cannot)


def test_best_cut_by_hand():
    # leaves 0, 1 of group 0 and 2, 3 of group 1 (known to differ); merges at heights 1, 2, 10
    children = np.array([[0, 1], [2, 3], [4, 5]])
    group = np.array([0, 0, 1, 1])
    cannot = sp.csr_matrix(np.array([[0, 1], [1, 0]], dtype=bool))
    h, score = best_cut(children, np.array([1.0, 2.0, 10.0]), group, cannot)
    # after the second merge every "same" pair is joined and no "different" one: score 1, held
    # until the merge at 10 joins the two groups
    assert score == pytest.approx(1.0)
    assert h == pytest.approx(np.sqrt(2.0 * 10.0))
    # one "same" pair only (group 1 is a single point): best right after the first merge
    h, score = best_cut(children, np.array([1.0, 2.0, 10.0]), np.array([0, 0, 1, -1]), cannot)
    assert score == pytest.approx(1.0) and h == pytest.approx(np.sqrt(1.0 * 10.0))


def test_best_cut_needs_both_kinds_of_pairs():
    children = np.array([[0, 1], [2, 3], [4, 5]])
    no_cannot = sp.csr_matrix((2, 2), dtype=bool)
    assert best_cut(children, np.array([1.0, 2.0, 3.0]), np.array([0, 0, 1, 1]), no_cannot)[1] == -np.inf
    singletons = sp.csr_matrix(np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=bool))
    assert best_cut(children, np.array([1.0, 2.0, 3.0]), np.array([0, 1, 2, -1]), singletons)[1] == -np.inf


def test_unseen_blobs_are_found_whole_and_apart():
    X, y = blobs()
    group, cannot = side(y, seen=[0, 1, 2])
    parts = parts_of(X, group, cannot)
    assert len(parts) == 3
    found = sorted(int(np.bincount(y[p]).argmax()) for p in parts)
    assert found == [3, 4, 5]
    for p in parts:
        c = np.bincount(y[p]).argmax()
        assert (y[p] == c).mean() > 0.95 and p.size > 0.9 * (y == c).sum()
        assert (group[p] < 0).all()  # never a point with side information
    assert np.unique(np.concatenate(parts)).size == sum(p.size for p in parts)  # disjoint


def test_nothing_is_found_when_every_group_has_side_information():
    X, y = blobs()
    group, cannot = side(y, seen=np.arange(6))
    assert parts_of(X, group, cannot) == []


def test_an_unseen_blob_with_a_stray_label_is_still_found():
    # a point of blob 0, with its side information, sits inside unseen blob 5: the blob holds
    # one labelled point against 10 that the rate gives 100 points, and group 0 has its other
    # labels elsewhere, so the blob is still unseen; the stray keeps its side information
    X, y = blobs()
    group, cannot = side(y, seen=[0, 1, 2, 3, 4])
    stray = 0  # labelled (every 10th point of blob 0)
    X[stray] = CENTERS[5]
    parts = parts_of(X, group, cannot)
    assert len(parts) == 1
    p = parts[0]
    assert (y[p] == 5).all() and p.size == 100 and stray not in p


def test_a_part_holding_most_of_a_groups_labels_is_not_unseen():
    # blob 5 holds one labelled point, of a group labelled nowhere else: the blob is that
    # group's (thinly labelled), not an unseen group with a stray in it
    X, y = blobs()
    group, cannot = side(y, seen=[0, 1, 2, 3, 4])
    yp = np.where(group >= 0, y, -1)
    yp[np.flatnonzero(y == 5)[0]] = 5
    s = SideInfo.build(y.size, y=yp)
    assert parts_of(X, s.group, s.cannot) == []


def test_an_unseen_group_cut_in_pieces_is_found_whole():
    # two unseen blobs of 40 points each, close to each other and far from the rest: the tree
    # keeps them apart at the groups' scale, each too small to judge alone (0.9 ** 40 times
    # the 16 parts of that size: 0.24), together they are not (0.9 ** 80 times 8: 0.002)
    rng = np.random.default_rng(0)
    seen = [rng.normal(c, 0.5, size=(100, 2)) for c in ([0, 0], [10, 0], [20, 0], [30, 0], [40, 0], [50, 0])]
    pieces = [rng.normal(c, 0.5, size=(40, 2)) for c in ([25, 20], [31, 20])]
    X = np.concatenate(seen + pieces).astype(np.float32)
    y = np.repeat(np.arange(8), [100] * 6 + [40, 40])
    group, cannot = side(y, seen=np.arange(6))
    parts = parts_of(X, group, cannot)
    assert len(parts) == 1
    assert sorted(parts[0].tolist()) == np.flatnonzero(y >= 6).tolist()


def test_small_unreached_parts_are_left_to_chance():
    # one unseen blob of 12 points: with side information on 10% of the others, missing 12
    # points by chance is likely (0.9 ** 12 = 0.28), so it is not called a group
    X, y = blobs()
    keep = (y != 5) | (np.arange(y.size) % 100 < 12)
    group, cannot = side(y[keep], seen=[0, 1, 2, 3, 4])
    assert parts_of(X[keep], group, cannot) == []


def test_seed_weights_decide_between_labels():
    Z = torch.arange(11, dtype=torch.float32)[:, None]  # a chain 0..10, seeds at both ends
    idx, dist = knn(Z, Z, 2, 1 << 20, exclude_self=True)
    seeds, labels = np.array([0, 10]), np.array([0, 1])
    even = spread_labels(idx, dist, seeds, labels, 2).argmax(1).numpy()
    heavy = spread_labels(idx, dist, seeds, labels, 2, seed_weights=np.array([1.0, 3.0])).argmax(1).numpy()
    assert (even == 1).sum() in (5, 6)  # the middle point is a tie
    assert (heavy == 1).sum() > 6


def test_smoothing_gives_an_unseen_blob_its_own_label():
    X, y = blobs()
    group, cannot = side(y, seen=[0, 1, 2, 3, 4])
    labels = np.where(y == 5, 3, y)  # the clustering folded blob 5 into blob 3
    fixed = np.flatnonzero(group >= 0)
    seeds = fixed
    sm = smooth_labels(torch.from_numpy(X), labels, seeds, 5, 10_000, np.random.default_rng(0), 1 << 24,
                       fixed=fixed, groups=group, cannot=cannot)
    assert sm.applied and sm.n_unseen == 1
    assert accuracy(y, sm.labels) > 0.98
    np.testing.assert_array_equal(sm.labels[fixed], labels[fixed])
    off = smooth_labels(torch.from_numpy(X), labels, seeds, 5, 10_000, np.random.default_rng(0), 1 << 24, fixed=fixed)
    assert off.n_unseen == 0 and accuracy(y, off.labels) < 0.9


def test_dms_finds_unseen_blobs_and_can_be_told_not_to():
    X, y = blobs(80)
    seen = y < 3
    yp = np.where(seen & (np.arange(y.size) % 5 == 0), y, -1)
    fast = dict(max_steps=80, batch_size=16, instance_size=(30, 40), n_seeds=40, random_state=0)
    m = DMSClustering(**fast).fit(X, yp)
    assert m.smoothing_["applied"]
    assert accuracy(y[~seen], m.labels_[~seen]) > 0.9
    assert not set(m.labels_[~seen]) & set(m.labels_[seen]) - {NOISE}
    off = DMSClustering(**fast, find_unseen=False).fit(X, yp)
    assert off.smoothing_["unseen_groups"] == 0


def test_find_unseen_must_be_a_bool():
    X, y = blobs(20)
    with pytest.raises(ValueError, match="find_unseen"):
        DMSClustering(find_unseen="yes").fit(X, y)


@pytest.mark.parametrize("n, rate", [(70_000, 0.05), (1_800, 0.043), (10_000, 0.005), (500, 0.2)])
def test_min_part_size_is_a_union_bound(n, rate):
    s = min_part_size(n, rate)
    misses = lambda size: (n / size) * (1 - rate) ** size  # noqa: E731
    assert misses(s) == pytest.approx(MAX_CHANCE, rel=1e-4)
    assert misses(0.9 * s) > MAX_CHANCE
    assert s > np.log(MAX_CHANCE) / np.log1p(-rate)  # larger than for one part alone
    assert min_part_size(n, 0.0) == np.inf


def _chains(sizes):
    """k-NN rows (n, 2) of separate chains of ``sizes`` points (each point linked to its neighbours)."""
    starts = np.cumsum([0] + list(sizes[:-1]))
    return np.concatenate([np.stack([np.minimum(np.arange(s, s + m) + 1, s + m - 1),
                                     np.maximum(np.arange(s, s + m) - 1, s)], 1) for s, m in zip(starts, sizes)])


def test_unreached_components_are_the_large_unseeded_ones():
    # three separate chains (each point linked to the next): 100, 100 and 20 points
    sizes = [100, 100, 20]
    idx = _chains(sizes)
    seeded = np.zeros(sum(sizes), dtype=bool)
    seeded[5] = True  # the first chain holds a seed
    rate = 0.05  # needs log(0.05) / log(0.95) = 58.4 points
    found = unreached_components(idx, seeded, rate)
    assert len(found) == 1 and np.array_equal(found[0], np.arange(100, 200))
    assert unreached_components(idx, seeded, 0.01) == []  # at 1% a 100-point set is missed too often
    assert unreached_components(idx, seeded, 0.0) == []


def test_a_component_is_a_group_only_where_the_components_hold_the_groups():
    # four chains of 100 points (objects); the fourth holds no side information
    idx = _chains([100, 100, 100, 100])
    comp = np.repeat(np.arange(4), 100)
    by_object = np.full(400, -1)
    by_object[[3, 50, 97, 103, 150, 197, 203, 250, 297]] = np.repeat([0, 1, 2], 3)  # each object one group
    across = np.full(400, -1)
    across[[3, 50, 97, 103, 150, 197, 203, 250, 297]] = np.tile([0, 1, 2], 3)  # each object every group (poses)
    cannot = sp.csr_matrix(1 - np.eye(3))
    assert components_hold_groups(comp, by_object, cannot)
    assert not components_hold_groups(comp, across, cannot)
    assert components_hold_groups(comp, np.full(400, -1), cannot)  # no pair shares a component: no evidence
    # one large component of many groups (similar objects joined) does not outweigh many of one group each
    comp6 = np.repeat(np.arange(6), 100)
    mixed = np.full(600, -1)
    for c in range(5):
        mixed[[100 * c + 10, 100 * c + 60]] = c  # five components, each two points of one group
    mixed[500:520] = np.arange(20) % 10  # the sixth: 20 labelled points of ten groups
    assert components_hold_groups(comp6, mixed, sp.csr_matrix(1 - np.eye(10)))
    for group, expected in ((by_object, 1), (across, 0)):
        found = unreached_components(idx, group >= 0, 0.05, group=group, cannot=cannot)
        assert len(found) == expected
        if expected:
            assert np.array_equal(found[0], np.arange(300, 400))
    assert len(unreached_components(idx, across >= 0, 0.05)) == 1  # without the side information: the old test


def test_smoothing_gives_an_unseeded_component_its_own_label(monkeypatch):
    # blob 5 lies far from every other: no k-NN edge reaches it, and it has no side information
    import dmshift.smoothing
    monkeypatch.setattr(dmshift.smoothing, "unseen_groups", lambda *args, **kwargs: [])  # the graph's test alone
    X, y = blobs()
    X[y == 5] += 1000.0
    group, cannot = side(y, seen=[0, 1, 2, 3, 4], every=20)
    labels = np.where(y == 5, 3, y)  # the clustering folded blob 5 into blob 3
    fixed = np.flatnonzero(group >= 0)
    sm = smooth_labels(torch.from_numpy(X), labels, fixed, 3, 10_000, np.random.default_rng(0), 1 << 24,
                       fixed=fixed, groups=group, cannot=cannot)
    assert sm.applied and sm.n_unseen == 1
    assert accuracy(y, sm.labels) > 0.98
    assert len(set(sm.labels[y == 5])) == 1 and not set(sm.labels[y == 5]) & set(sm.labels[y != 5])
    off = smooth_labels(torch.from_numpy(X), labels, fixed, 3, 10_000, np.random.default_rng(0), 1 << 24, fixed=fixed)
    assert off.n_unseen == 0 and np.array_equal(off.labels[y == 5], labels[y == 5])


def test_a_disconnected_graph_gives_scikit_learns_tree_in_tiles(monkeypatch):
    import warnings

    from sklearn.cluster import ward_tree

    import dmshift.novelty as novelty
    rng = np.random.default_rng(0)
    Z = np.concatenate([rng.normal(size=(40, 3)) + c for c in ([0, 0, 0], [9, 0, 0], [0, 9, 0], [9, 9, 9])])
    idx, _ = knn(torch.as_tensor(Z), torch.as_tensor(Z), 4, 1 << 20, exclude_self=True)
    idx = idx.numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns that it completes the graph
        ref_children, _, _, _, ref_heights = ward_tree(Z, connectivity=novelty._connectivity(idx), return_distance=True)
    monkeypatch.setattr(novelty, "_TILE_BYTES", 8 * 40 * 3)  # tiles of 3 rows: the search spans tiles
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # completed before scikit-learn sees it: no warning
        children, heights = novelty.knn_ward_tree(Z, idx)
    np.testing.assert_array_equal(children, ref_children)
    np.testing.assert_allclose(heights, ref_heights)


def test_ward_tree_is_kept_for_the_same_points_and_graph():
    from dmshift.novelty import knn_ward_tree
    from dmshift.smoothing import knn
    import torch
    Z = np.random.default_rng(0).normal(size=(60, 3))
    idx = knn(torch.as_tensor(Z), torch.as_tensor(Z), 5, 2**20, exclude_self=True)[0].numpy()
    a = knn_ward_tree(Z, idx)
    b = knn_ward_tree(Z.copy(), idx.copy())  # equal content, other arrays: the kept tree
    assert a[0] is b[0] and not a[0].flags.writeable
    c = knn_ward_tree(Z + 1e-9 * np.arange(3), idx)  # other points: built again
    assert c[0] is not a[0]


def test_tree_points_follow_the_memory_budget():
    from dmshift.novelty import WARD_BYTES_PER_POINT, tree_points
    assert tree_points(100_000, 256 << 20) == (256 << 20) // WARD_BYTES_PER_POINT == 32_768
    assert tree_points(500, 256 << 20) == 500  # max_points caps it first
    assert tree_points(100_000, 1024) == 2  # the smallest budget still gives a tree


def test_hole_score_is_the_hypergeometric_tail_within_the_part():
    from scipy.stats import hypergeom

    from dmshift.novelty import hole_score
    for m, k in [(100, 0), (100, 3), (200, 5), (50, 1), (399, 9)]:
        expected = hypergeom.cdf(k, 400, 30, m) * max(1.0, 400 / m)
        assert hole_score(m, k, 400, 30, 1.0) == pytest.approx(expected, rel=1e-9)
    # broadcasts over draws (rows) and subtrees (columns)
    got = hole_score(np.array([[100, 200]]), np.array([[3, 5]]), np.array([400, 400]), np.array([[30, 30]]), 1.0)
    assert got.shape == (1, 2) and got[0, 1] == pytest.approx(hypergeom.cdf(5, 400, 30, 200) * 2)
    # most of a part, against the few points left over: not a hole (it holds most of the part's labels)
    assert hole_score(390, 25, 400, 30, 1 / 3) == np.inf
    assert hole_score(100, 0, 400, 0, 1 / 3) == np.inf  # a part without side information has no holes
    assert hole_score(400, 0, 400, 30, 1 / 3) == np.inf  # nor is a part its own hole


def _search_min_score(children, size, at_cut, cut, marked, n, share):
    """The search's smallest score for the labelled leaves ``marked``, node by node (the slow way)."""
    from dmshift.novelty import hole_score, part_score
    n_nodes = size.size
    L = np.zeros(n_nodes, dtype=np.int64)
    L[:n] = marked
    for j, (a, b) in enumerate(children):
        L[n + j] = L[a] + L[b]
    held = at_cut & (L > 0)
    rate = L[held].sum() / max(size[held].sum(), 1)
    best = np.inf
    for v in range(n_nodes):
        p = cut[v]
        if p >= n and p != v and size[v] >= 2:
            best = min(best, float(hole_score(size[v], L[v], size[p], L[p], share)))
        if at_cut[v] or p < 0:
            best = min(best, float(part_score(size[v], L[v], rate, n, share)))
    return best


def test_the_chance_threshold_holds_for_the_whole_search():
    # the threshold is the max_chance quantile of the search's smallest score over random draws of
    # the labelled points: fresh draws, scored node by node, fall below it about that often
    from dmshift.novelty import chance_threshold, knn_ward_tree
    X, y = blobs(n_per=40)
    Z = torch.from_numpy(X)
    idx, _ = knn(Z, Z, 10, 1 << 24, exclude_self=True)
    children, heights = knn_ward_tree(X, idx.numpy())
    n = X.shape[0]
    size = np.ones(2 * n - 1, dtype=np.int64)
    height = np.zeros(2 * n - 1)
    parent = np.full(2 * n - 1, -1, dtype=np.int64)
    for j, (a, b) in enumerate(children):
        size[n + j], height[n + j] = size[a] + size[b], heights[j]
        parent[a] = parent[b] = n + j
    h_star = np.sort(heights)[-6]  # the six blobs
    at_cut = (height <= h_star) & ((parent < 0) | (height[np.maximum(parent, 0)] > h_star))
    cut = np.full(2 * n - 1, -1, dtype=np.int64)
    for v in range(2 * n - 2, -1, -1):
        cut[v] = v if at_cut[v] else (cut[parent[v]] if parent[v] >= 0 else -1)
    q = chance_threshold(children, size, at_cut, cut, 12, 0.1, 1 / 3, 400)
    assert 0 < q < np.inf
    rng = np.random.default_rng(7)
    below = 0
    for _ in range(300):
        marked = np.zeros(n, dtype=np.int64)
        marked[rng.choice(n, 12, replace=False)] = 1
        below += _search_min_score(children, size, at_cut, cut, marked, n, 1 / 3) < q
    assert 0.04 <= below / 300 <= 0.17  # 0.1 expected; 300 draws
    assert chance_threshold(children, size, at_cut, cut, 12, 0.1, 1 / 3, 0) == 0.1  # no draws: one test's chance


def test_unseen_groups_survive_the_side_information_stage():
    # side information (3 labels each) on 2 of 6 blobs: at that rate, random side information would miss
    # clusters of a blob's size, so the last stage's absorption would join them to the seen ones; the
    # unseen groups the search found are kept, and the seen blobs are not joined into them
    X, y = blobs(n_per=100)
    rng = np.random.default_rng(0)
    yp = np.full(y.size, -1)
    for c in (0, 1):
        pick = rng.choice(np.flatnonzero(y == c), 3, replace=False)
        yp[pick] = c
    m = DMSClustering(random_state=0, max_steps=50).fit(X, yp)
    assert m.smoothing_["unseen_groups"] >= 2
    assert m.choices_["side_info"]["absorbed"] == 0
    assert m.n_clusters_ >= 4 and accuracy(y, m.labels_) > 0.6
    assert (m.labels_[yp == 0] == m.labels_[yp == 0][0]).all() and m.labels_[yp == 0][0] != m.labels_[yp == 1][0]


def test_the_search_is_kept_for_equal_inputs_and_runs_again_for_others(monkeypatch):
    # every candidate of a validation fold searches the same space with the same side information
    import dmshift.novelty as nv
    runs = []
    real = nv._unseen_groups
    monkeypatch.setattr(nv, "_unseen_groups", lambda *a, **k: runs.append(1) or real(*a, **k))
    X, y = blobs()
    group, cannot = side(y, seen=[0, 1, 2])
    first = parts_of(X, group, cannot)
    again = parts_of(X.copy(), group.copy(), cannot.copy())  # equal content: the kept parts
    assert len(runs) == 1 and len(first) == 3
    assert all(a is b and not a.flags.writeable for a, b in zip(first, again))
    again.pop()  # the caller's list: the kept one is untouched
    assert len(parts_of(X, group, cannot)) == 3 and len(runs) == 1
    other_group, other_cannot = side(y, seen=[0, 1, 2, 3])  # other side information: searched again
    assert len(parts_of(X, other_group, other_cannot)) == 2 and len(runs) == 2
