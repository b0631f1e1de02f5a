import numpy as np
import torch

from dmshift.kernels import FlatKernel, SubtractKernel
from dmshift.meanshift import find_centers, find_centers_adaptive, input_space_centers, shift_instances, shift_step


def test_one_shift_step_is_the_weighted_mean():
    torch.manual_seed(0)
    x = torch.randn(7, 3)
    w = torch.rand(7)
    c = torch.randn(3)
    expected = (w[:, None] * x).sum(0) / w.sum()
    torch.testing.assert_close(shift_step(w, x, c), expected, rtol=1e-5, atol=1e-5)
    # no inliers: the center stays where it is
    torch.testing.assert_close(shift_step(torch.zeros(7), x, c), c)


def test_shift_in_embedding_space_equals_input_space():
    """Shifting embeddings equals embedding the input-space shift (the first layer is affine)."""
    torch.manual_seed(0)
    K = SubtractKernel(5, (4, 2))
    x = torch.randn(1, 20, 5)
    # input-space reference, T = 3 steps
    c = x[:, 0]
    for _ in range(3):
        w = K(x, c[:, None, :])  # (1, 20)
        c = (w[..., None] * x).sum(1) / w.sum(1, keepdim=True)
    ref = K.naive_logit(x, c[:, None, :])
    torch.testing.assert_close(shift_instances(K, x, 3), ref, rtol=1e-4, atol=1e-4)


def test_flat_kernel_converges_to_blob_means(blobs):
    X, y = blobs
    Xt = torch.as_tensor(X)
    K = FlatKernel(3.0)
    res = find_centers(K, Xt, Xt, np.array([0, 50, 100]), max_iter=50)
    assert res.converged.all()
    centers = input_space_centers(K, Xt, Xt, res.qc)
    for i, s in enumerate(res.seeds):
        torch.testing.assert_close(centers[i], Xt[torch.as_tensor(y == y[s])].mean(0), rtol=1e-4, atol=1e-4)
        assert res.count[i] == np.sum(y == y[s])
    # seeds in the same blob share the inlier-set fingerprint, different blobs do not
    r2 = find_centers(K, Xt, Xt, np.flatnonzero(y == y[0])[:3])
    assert len(set(r2.fingerprint.tolist())) == 1
    assert len(set(res.fingerprint.tolist())) == len(set(y[res.seeds].tolist()))


def test_convergence_rule_stops_when_inlier_set_repeats():
    # two points 1 apart, a flat kernel of radius 2: the inlier set is both points from the
    # first evaluation, so the seed moves once to the mean and the second evaluation repeats it
    X = torch.tensor([[0.0], [1.0], [10.0]])
    res = find_centers(FlatKernel(2.0), X, X, np.array([0]), max_iter=10)
    assert res.converged[0] and res.n_iter[0] == 1
    torch.testing.assert_close(res.qc[0], torch.tensor([0.5]))
    # max_iter=0: evaluated once, never moved, not converged
    res0 = find_centers(FlatKernel(2.0), X, X, np.array([0]), max_iter=0)
    assert not res0.converged[0] and res0.n_iter[0] == 0


def test_tiling_does_not_change_the_result(blobs):
    X, _ = blobs
    Xt = torch.as_tensor(X)
    torch.manual_seed(0)
    K = SubtractKernel(2, (8, 4))
    K.init_distance_prior(Xt, quantile=0.2)
    px, qx = K.embed_points(Xt), K.embed_centers(Xt)
    with torch.no_grad():
        a = find_centers(K, px, qx, np.arange(0, 200, 20), memory_budget=10**9)
        b = find_centers(K, px, qx, np.arange(0, 200, 20), memory_budget=4096)
    torch.testing.assert_close(a.qc, b.qc, rtol=1e-4, atol=1e-4)
    assert (a.fingerprint == b.fingerprint).all()


def test_adaptive_seeding_covers_every_blob(blobs):
    X, y = blobs
    Xt = torch.as_tensor(X)
    K = FlatKernel(3.0)
    res = find_centers_adaptive(K, Xt, Xt, np.random.default_rng(0), max_seeds=50, first_batch=2)
    assert set(y[res.seeds]) == {0, 1, 2, 3}
    assert res.seeds.size < 50
