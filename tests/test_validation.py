"""Held-back side information (dmshift.validation) and the choice of labels on it (dmshift.label_stage)."""

import itertools

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from dmshift import DMSClustering
from dmshift._validation import resolve_seed
from dmshift.constraints import SideInfo
from dmshift.kernels import make_kernel
from dmshift.label_stage import candidates_for
from dmshift.settings import ValidationSettings
from dmshift.validation import Holdout, f1_better, hold_out, k_folds, pooled_f1


def _labels_side(n_per=12, k=4, every=2):
    y = np.repeat(np.arange(k), n_per)
    yp = np.where(np.arange(y.size) % every == 0, y, -1)
    return y, SideInfo.build(y.size, y=yp)


def test_held_back_points_leave_the_training_part_and_keep_it_trainable():
    _, side = _labels_side()
    h = hold_out(side, np.random.default_rng(0), 0.25)
    assert h is not None
    held = np.flatnonzero(h.held)
    assert held.size and set(held) <= set(side.labelled)
    assert (h.train.group[held] == -1).all()
    kept = np.setdiff1d(side.labelled, held)
    np.testing.assert_array_equal(h.train.group[kept], side.group[kept])
    h.train.check_trainable()
    for members in h.train.members():  # groups of >= split_groups points keep most of their points
        assert members.size >= 3


def test_too_little_side_information_holds_nothing_back():
    _, side = _labels_side(n_per=3, k=2, every=3)  # one labelled point per group: no "same" pair
    assert hold_out(side, np.random.default_rng(0), 0.25) is None
    _, side = _labels_side()
    assert hold_out(side, np.random.default_rng(0), 0.0) is None
    assert hold_out(side, np.random.default_rng(0), 0.25, ValidationSettings(min_pairs=10**6)) is None


def test_f1_counts_exactly_the_pairs_with_a_held_back_point():
    y, side = _labels_side()
    h = hold_out(side, np.random.default_rng(1), 0.25)
    rng = np.random.default_rng(2)
    labels = np.where(rng.random(y.size) < 0.3, rng.integers(-1, 4, y.size), y)
    tp = fp = same = 0
    for i, j in itertools.combinations(side.labelled, 2):
        if not (h.held[i] or h.held[j]):
            continue
        together = labels[i] == labels[j] and labels[i] >= 0
        if side.group[i] == side.group[j]:
            same += 1
            tp += together
        else:  # labels: every two groups differ
            fp += together
    assert h.f1(labels) == pytest.approx(2 * tp / (tp + fp + same))
    assert h.n_same == same
    assert h.f1(y) == pytest.approx(1.0)


def test_point_scores_and_the_noise_aware_comparison():
    y, side = _labels_side()
    h = hold_out(side, np.random.default_rng(1), 0.25)
    good = h.point_scores(y)
    assert good.shape == (int(h.held.sum()),) and np.allclose(good, 1.0)
    one = np.zeros_like(y)  # everything together: every "different" pair wrong
    assert np.allclose(h.point_scores(one), 0.5)
    assert Holdout.better(good, h.point_scores(one), z=2.0)
    assert not Holdout.better(h.point_scores(one), good, z=2.0)
    assert not Holdout.better(good, good, z=0.0)  # no difference is no win


def test_pair_parts_pool_to_the_held_back_f1_exactly():
    y, side = _labels_side()
    pairs = [(0, 2, 1), (4, 30, 0), (40, 42, 1)]  # labels and pairs together: groups of "same" pairs, "cannot"
    side = SideInfo.build(y.size, y=np.where(np.arange(y.size) % 2 == 0, y, -1), pairs=pairs)
    rng = np.random.default_rng(3)
    for seed in range(5):
        h = hold_out(side, np.random.default_rng(seed), 0.3)
        labels = np.where(rng.random(y.size) < 0.4, rng.integers(-1, 4, y.size), y)
        parts = h.pair_parts(labels)
        assert parts.shape == (int(h.held.sum()), 3)
        assert pooled_f1(parts) == pytest.approx(h.f1(labels))
        assert parts[:, 2].sum() == pytest.approx(h.n_same)
        assert pooled_f1(h.pair_parts(labels, rows=1)) == pytest.approx(h.f1(labels))  # tiled alike


def test_f1_comparison_weighs_the_points_that_hold_same_pairs():
    # many groups, few labels each: most held-back points have only "different" pairs, which both
    # candidates keep apart; the mean of the points' balanced accuracies barely moves, F1 does
    k, per = 40, 6
    y = np.repeat(np.arange(k), per)
    known = np.zeros(y.size, dtype=bool)
    known[::per] = True
    known[np.arange(0, k * per, per * 4) + 1] = True  # every fourth group: a second labelled point
    side = SideInfo.build(y.size, y=np.where(known, y, -1))
    folds = k_folds(side, np.random.default_rng(0), 4)
    assert folds
    good = y.copy()  # every group its own cluster
    lumped = y // 4  # groups joined four by four: the "same" pairs held, few "different" ones broken
    lumped[np.flatnonzero(known)[1::2]] += 100  # ... and half the labelled points astray
    a = np.concatenate([f.pair_parts(good) for f in folds])
    b = np.concatenate([f.pair_parts(lumped) for f in folds])
    assert pooled_f1(a) > pooled_f1(b)
    assert f1_better(a, b, z=2.0) and not f1_better(b, a, z=0.0)
    assert not f1_better(a, a, z=0.0)  # no difference is no win
    assert not f1_better(a[:1], b[:1], z=0.0)  # one point proves nothing


def test_folds_are_kept_on_the_pairs_they_hold_together():
    _, side = _labels_side(n_per=3, k=6, every=1)  # groups of 3, each held back whole in one fold
    folds = k_folds(side, np.random.default_rng(0), 4)
    assert folds and all(f.n_same >= 1 and f.n_different >= 1 for f in folds)
    assert any(f.n_same < ValidationSettings().min_pairs for f in folds)  # kept: the folds together decide
    assert sum(f.n_same for f in folds) >= ValidationSettings().min_pairs
    assert k_folds(side, np.random.default_rng(0), 4, ValidationSettings(min_pairs=10**6)) == []


def test_point_map_is_the_linear_part_of_the_point_embedding():
    torch.manual_seed(0)
    for kind in ("subtract", "concat"):
        k = make_kernel(kind, 5, (6, 3))
        x = torch.randn(7, 5)
        W = k.point_map()
        assert W.shape == (5, 6)
        torch.testing.assert_close(k.embed_points(x) - k.embed_points(torch.zeros(1, 5)), x @ W)


def test_principal_init_starts_in_the_data_main_directions():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(500, 6, generator=g) * torch.tensor([10.0, 5.0, 1.0, 1.0, 1.0, 1.0])
    k = make_kernel("subtract", 6, (4, 2))
    k.init_distance_prior(X, principal=True, generator=g)
    W = k.first.weight.detach()
    rows = W[:2] / W[:2].norm(dim=1, keepdim=True)
    assert abs(float(rows[0, 0])) > 0.99 and abs(float(rows[1, 1])) > 0.99  # the two largest axes
    torch.testing.assert_close(W[2:4], -W[:2])  # (w, -w) pairs: |u| at the first layer


def test_candidates_follow_the_parameters():
    assert candidates_for("auto", "tree") == ("tree_seeded", "fused_graph", "learnt_graph", "kernel", "input_graph", "tree")
    assert candidates_for("learnt", None) == ("learnt_graph",)
    assert candidates_for("fused", None) == ("fused_graph",)
    assert candidates_for("tree_seeded", "tree") == ("tree_seeded", "tree")
    assert candidates_for("graph", None) == candidates_for("input", None) == ("input_graph",)
    assert candidates_for(None, "tree") == ("kernel", "tree")


FAST = dict(max_steps=30, batch_size=8, instance_size=(40, 60), n_seeds=60, random_state=0)


def _three_blobs(seed):
    """Three separated blobs of 40 points in 4 features, every fourth point labelled."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1, 2], 40)
    X = (rng.normal(size=(120, 4)) + 6 * np.eye(4)[y]).astype(np.float32)
    return X, np.where(np.arange(120) % 4 == 0, y, -1)


def test_a_learnt_graph_fit_predicts_in_the_learnt_space_and_survives_save_load(tmp_path):
    X, yp = _three_blobs(0)
    m = DMSClustering(**FAST, smoothing="learnt", fallback=None).fit(X, yp)
    assert m.choices_["labels"]["chosen"] == "learnt_graph"
    W = m.kernel_.point_map().detach().cpu().numpy()
    np.testing.assert_allclose(m.smoothing_transform_, W, rtol=1e-5, atol=1e-6)
    assert (m.predict(X) == m.labels_).mean() > 0.95
    m.save(tmp_path / "model")
    np.testing.assert_array_equal(DMSClustering.load(tmp_path / "model").predict(X), m.predict(X))


def test_the_choice_is_recorded_with_every_candidates_held_back_f1():
    X, yp = _three_blobs(1)
    m = DMSClustering(**FAST).fit(X, yp)
    rec = m.choices_["labels"]
    assert rec["chosen"] in ("tree_seeded", "fused_graph", "learnt_graph", "kernel", "input_graph", "tree")
    assert rec["held_points"] > 0 and rec["held_same_pairs"] > 0
    assert all(v is None or 0.0 <= v <= 1.0 for v in rec["held_f1"].values())
    off = DMSClustering(**FAST, validation_fraction=0.0).fit(X, yp)
    assert off.choices_["labels"]["chosen"] == "tree_seeded" and off.choices_["labels"]["held_f1"] is None
    assert set(off.anchors_["index"]) == set(np.flatnonzero(yp >= 0))  # nothing held back


def test_the_tree_seeded_fused_graph_finds_groups_without_side_information():
    # four blobs, labels on two: the tree's cut gives the other two their clusters, the fused
    # graph spreads from them; with too few "same" pairs there is no cut and the fused graph is
    # seeded by the kernel's clusters
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1, 2, 3], 40)
    X = (rng.normal(size=(160, 4)) + 8 * np.eye(4)[y]).astype(np.float32)
    yp = np.where((np.arange(160) % 4 == 0) & (y < 2), y, -1)
    m = DMSClustering(**FAST, smoothing="tree_seeded", fallback=None).fit(X, yp)
    assert m.choices_["labels"]["chosen"] == "tree_seeded" and m.smoothing_["graph"] == "tree_seeded"
    assert m.n_clusters_ == 4 and adjusted_rand_score(y, m.labels_) > 0.95
    assert np.array_equal(m.labels_[yp == 0], np.full(10, m.labels_[yp == 0][0]))  # side information kept
    np.testing.assert_allclose(m.smoothing_transform_, m.kernel_.point_map().detach().cpu().numpy(), rtol=1e-5,
                               atol=1e-6)  # predict votes in the learnt space
    few = np.where(np.isin(np.arange(160), [0, 1, 40, 41]), y, -1)  # 2 "same" pairs: no tree cut
    fits = {}
    for s in ("tree_seeded", "fused"):
        with pytest.warns(UserWarning, match="too few"):
            fits[s] = DMSClustering(**FAST, smoothing=s, fallback=None, validation_fraction=0.0).fit(X, few)
    assert fits["tree_seeded"].choices_["labels"]["chosen"] == "tree_seeded"
    np.testing.assert_array_equal(fits["tree_seeded"].labels_, fits["fused"].labels_)  # the kernel's clusters seed it
    with pytest.raises(ValueError, match="smoothing"):
        DMSClustering(smoothing="tree").fit(X, yp)


def test_the_tree_and_the_tree_seeded_graph_share_one_cut_per_fold(monkeypatch):
    import dmshift.label_stage as label_stage
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1, 2, 3], 40)
    X = (rng.normal(size=(160, 4)) + 8 * np.eye(4)[y]).astype(np.float32)
    yp = np.where((np.arange(160) % 4 == 0) & (y < 2), y, -1)
    calls = []
    real = label_stage.tree_fallback
    monkeypatch.setattr(label_stage, "tree_fallback", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    m = DMSClustering(**FAST, smoothing="tree_seeded", fallback="tree").fit(X, yp)
    rec = m.choices_["labels"]
    assert set(rec["held_f1"]) == {"tree_seeded", "tree"} and rec["folds"] >= 2
    assert len(calls) == len({id(side) for side in calls})  # each side information cut once, for both candidates
    assert len(calls) <= rec["folds"] + 2  # the folds, the full side information, the fold the kernel had not seen


def test_with_a_patience_training_stops_on_the_learnt_graphs_held_back_f1():
    X, yp = _three_blobs(2)
    m = DMSClustering(**{**FAST, "max_steps": 200}, patience=1, eval_every=5).fit(X, yp)
    t = m.choices_["training"]
    assert 0.0 <= t["held_back_f1"] <= 1.0 and t["best_step"] % 5 == 0
    assert t["stop"] == "early_stopping" and t["steps"] < 200  # separable blobs: nothing left to learn
    assert DMSClustering(**FAST).fit(X, yp).choices_["training"]["held_back_f1"] is None  # no patience: all steps


def test_unseen_groups_are_searched_in_the_input_unless_told_otherwise():
    from dmshift.settings import DMSSettings, SmoothingSettings
    with pytest.raises(ValueError, match="novelty_space"):
        DMSClustering(settings={"smoothing": {"novelty_space": "elsewhere"}}).fit(np.eye(4), [0, 0, 1, 1])
    # three blobs, side information on two: the third is found as a group of its own either way here
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1, 2], 60)
    X = (rng.normal(size=(180, 3)) + 8 * np.eye(3)[y]).astype(np.float32)
    yp = np.where((np.arange(180) % 5 == 0) & (y < 2), y, -1)
    for space in ("input", "graph"):
        m = DMSClustering(**FAST, smoothing="learnt", fallback=None,
                          settings=DMSSettings(smoothing=SmoothingSettings(novelty_space=space))).fit(X, yp)
        third = m.labels_[y == 2]
        assert np.bincount(third[third >= 0]).max() > 50 and not set(third) & set(m.labels_[y < 2])


def test_auto_scaling_keeps_per_feature_unless_global_clearly_wins_and_records_it():
    rng = np.random.default_rng(4)
    y = np.repeat([0, 1, 2], 60)
    X = rng.normal(size=(180, 4)) + 5 * np.eye(4)[y][:, :4]
    X[:, 3] = rng.normal(size=180) * 1e3  # a loud feature that carries no class: per feature it is one of four
    yp = np.where(np.arange(180) % 4 == 0, y, -1)
    m = DMSClustering(**FAST).fit(X.astype(np.float32), yp)
    rec = m.choices_["scaling"]
    assert rec["chosen"] in ("feature", "global") and set(rec["held_f1"]) == {"feature", "global"}
    assert rec["held_f1"]["feature"] > rec["held_f1"]["global"]  # globally, the loud feature decides the graph
    assert rec["chosen"] == "feature"
    assert np.ptp(m.scale_) > 100  # per-feature scales were kept
    assert DMSClustering(**FAST, standardize="global").fit(X.astype(np.float32), yp).choices_["scaling"] is None


def test_auto_scaling_drops_a_scaling_float32_cannot_hold():
    rng = np.random.default_rng(5)
    y = np.repeat([0, 1], 50)
    X = rng.normal(size=(100, 3)) + 4 * y[:, None]
    X[0, 0] = 1e30  # one extreme value: a global scale would round every other value to one
    yp = np.where(np.arange(100) % 3 == 0, y, -1)
    m = DMSClustering(**FAST).fit(X, yp)
    assert m.choices_["scaling"] == {"chosen": "feature", "reason": "global cannot be held"}


def test_the_learnt_graph_is_scored_by_a_kernel_that_never_saw_the_held_back_labels():
    rng = np.random.default_rng(0)
    X = (np.eye(90) + 0.01 * rng.normal(size=(90, 90))).astype(np.float32)  # each point a direction of its own:
    yp = np.where(rng.random(90) < 0.6, np.arange(90) % 3, -1)               # a kernel can only memorise the labels
    rec = DMSClustering(**{**FAST, "max_steps": 300}).fit(X, yp).choices_["labels"]
    assert rec["cross_fitted"] and rec["folds"] > 1
    assert rec["held_f1_final_kernel"]["learnt_graph"] > 0.99  # scored by the kernel that trained on those labels
    assert rec["optimism"]["learnt_graph"] > 0.2  # measured with the kernel before it saw one fold's labels
    assert rec["held_f1"]["learnt_graph"] == pytest.approx(rec["held_f1_final_kernel"]["learnt_graph"]
                                                           - rec["optimism"]["learnt_graph"], abs=1e-5)
    assert rec["held_f1"]["learnt_graph"] < 0.8


def test_cross_fitting_trains_first_without_the_fold_and_is_recorded():
    X, yp = _three_blobs(3)
    m = DMSClustering(**FAST).fit(X, yp)
    t, rec = m.choices_["training"], m.choices_["labels"]
    assert t["steps_without_the_fold"] > 0 and t["steps"] > 0 and rec["cross_fitted"] and rec["folds"] > 1
    assert set(rec["held_f1_final_kernel"]) == set(rec["held_f1"]) \
        and set(rec["optimism"]) == {"tree_seeded", "fused_graph", "learnt_graph"}
    fit_seed = resolve_seed(0)  # what the fit drew its folds from
    assert m.recluster(X, yp, random_state=fit_seed).choices_["labels"]["cross_fitted"]  # its folds: its fold kernel
    other = m.recluster(X, yp, random_state=fit_seed + 1).choices_["labels"]  # other folds: no kernel without them
    assert not other["cross_fitted"] and other["folds"] > 1 and other["optimism"] is None
    off = DMSClustering(**FAST, settings={"validation": {"cross_fit": False}}).fit(X, yp)
    assert off.choices_["training"]["steps_without_the_fold"] is None
    assert not off.choices_["labels"]["cross_fitted"] and off.choices_["labels"]["held_f1_final_kernel"] is None
    one = DMSClustering(**FAST, smoothing="learnt", fallback=None).fit(X, yp)  # nothing compared: no first part
    assert one.choices_["training"]["steps_without_the_fold"] is None
    with pytest.raises(ValueError, match="settings.validation.cross_fit"):
        DMSClustering(**FAST, settings={"validation": {"cross_fit": "yes"}}).fit(X, yp)
