import itertools

import numpy as np

from dmshift.constraints import SideInfo
from dmshift.sampling import InstanceSampler, SamplerConfig


def _side():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, size=400)
    lab = rng.random(400) < 0.2
    return y, np.where(lab, y, -1)


def test_instances_follow_the_paper_ratios():
    y, yp = _side()
    s = InstanceSampler(SideInfo.from_labels(yp), SamplerConfig(batch_size=64), np.random.default_rng(1))
    idx, tgt = s.sample()
    B, L = idx.shape
    assert B == 64 and 200 <= L <= 300
    n_lab = (tgt >= 0).sum(1)
    n_pos = (tgt == 1).sum(1)
    ratio = n_lab / (L - n_lab)
    assert ((ratio > 1 / 3 - 0.05) & (ratio < 1 + 0.05)).all()
    share = n_pos / n_lab
    assert ((share > 1 / 20 - 0.02) & (share < 1 / 10 + 0.02)).all()
    for b in range(B):
        i0 = idx[b, 0]
        assert tgt[b, 0] == 1
        assert (yp[idx[b, tgt[b] == 1]] == yp[i0]).all()  # positives share the initial point's class
        negs = idx[b, tgt[b] == 0]
        assert (yp[negs] >= 0).all() and (yp[negs] != yp[i0]).all()


def test_labels_and_pairs_give_the_same_training_signal():
    _, yp = _side()
    idx = np.flatnonzero(yp >= 0)
    pairs = np.array([(i, j, int(yp[i] == yp[j])) for i, j in itertools.combinations(idx, 2)])
    a = InstanceSampler(SideInfo.from_labels(yp), SamplerConfig(batch_size=8), np.random.default_rng(3))
    b = InstanceSampler(SideInfo.from_pairs(pairs, yp.size), SamplerConfig(batch_size=8), np.random.default_rng(3))
    for _ in range(3):
        ia, ta = a.sample()
        ib, tb = b.sample()
        assert (ia == ib).all() and (ta == tb).all()


def test_restricted_init_points():
    _, yp = _side()
    lab = np.flatnonzero(yp >= 0)
    s = InstanceSampler(SideInfo.from_labels(yp), SamplerConfig(batch_size=16), np.random.default_rng(0),
                        init_points=lab[:5], label_points=lab[:40])
    idx, tgt = s.sample()
    assert set(idx[:, 0]) <= set(lab[:5])
    assert set(idx[tgt >= 0].ravel()) <= set(lab[:40])


def _reference_batch(s, rng):
    """The draw order every committed result depends on, written with Generator.choice."""
    cfg, side = s.config, s.side
    L = int(rng.integers(cfg.instance_size[0], cfg.instance_size[1] + 1))
    inits = rng.choice(s.init_points, size=cfg.batch_size)
    lr = rng.uniform(*cfg.labelled_ratio, size=cfg.batch_size)
    pr = rng.uniform(*cfg.positive_ratio, size=cfg.batch_size)
    rows, tgts = [], []
    for b, i0 in enumerate(inits):
        g = side.group[i0]
        n_lab = min(max(int(round(L * lr[b] / (1.0 + lr[b]))), 2), L)
        n_pos = min(max(1, int(round(n_lab * pr[b]))), n_lab - 1)
        pool = s._pos[g]
        pos = rng.choice(pool, size=n_pos - 1) if (n_pos > 1 and pool.size) else np.full(n_pos - 1, i0)
        neg = rng.choice(s._neg[g], size=n_lab - n_pos)
        rows.append(np.concatenate(([i0], pos, neg, rng.integers(0, side.n_samples, size=L - n_lab))))
        tgts.append(np.r_[np.ones(n_pos), np.zeros(n_lab - n_pos), np.full(L - n_lab, -1.0)])
    return np.array(rows), np.array(tgts, dtype=np.float32)


def test_draws_stay_those_of_the_reference_order():
    # the sampler's fast path must draw exactly what the plain per-instance loop draws (results are pinned to it)
    _, yp = _side()
    for seed, size in [(0, (200, 300)), (1, (2, 12)), (2, (100, 150))]:
        s = InstanceSampler(SideInfo.from_labels(yp), SamplerConfig(batch_size=16, instance_size=size),
                            np.random.default_rng(seed))
        ref = np.random.default_rng(seed)
        for _ in range(4):
            idx, tgt = s.sample()
            ridx, rtgt = _reference_batch(s, ref)
            assert np.array_equal(idx, ridx) and np.array_equal(tgt, rtgt)
