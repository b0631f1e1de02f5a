import pytest
import torch

from dmshift.kernels import ConcatKernel, FlatKernel, GaussianKernel, SubtractKernel, default_hidden_sizes, make_kernel
from dmshift.kernels.base import tile_sizes


@pytest.mark.parametrize("n_layers", [1, 2, 3, 4])
@pytest.mark.parametrize("kind", ["subtract", "concat"])
def test_factorised_equals_naive(kind, n_layers):
    torch.manual_seed(0)
    d = 12
    K = make_kernel(kind, d, default_hidden_sizes(d, n_layers), **({"channels": 2} if kind == "concat" else {}))
    x, c = torch.randn(9, d), torch.randn(5, d)
    fact = K.pairwise(K.embed_points(x), K.embed_centers(c), memory_budget=2048)  # tiny tiles
    naive = torch.sigmoid(K.naive_logit(x[None, :, :], c[:, None, :]))
    assert fact.shape == (5, 9)
    torch.testing.assert_close(fact, naive, rtol=1e-5, atol=1e-6)
    assert ((fact >= 0) & (fact <= 1)).all()


def test_table1_widths():
    assert default_hidden_sizes(784, 3) == (392, 196)
    assert default_hidden_sizes(784, 4) == (392, 196, 98)
    assert default_hidden_sizes(784, 1) == ()
    assert default_hidden_sizes(784, 3, width_cap=256) == (256, 196)


def test_subtract_depends_only_on_difference():
    torch.manual_seed(1)
    K = SubtractKernel(6, (4, 2))
    x, c, t = torch.randn(3, 6), torch.randn(3, 6), torch.randn(6)
    torch.testing.assert_close(K(x, c), K(x + t, c + t), rtol=1e-5, atol=1e-6)


def test_concat_layers_are_table1():
    K = ConcatKernel(10, (5, 2), channels=1)
    assert K.conv.kernel_size == (2, 1)
    assert K.first.in_features == 10 and K.first.out_features == 5


def test_distance_prior_starts_as_a_distance_kernel():
    torch.manual_seed(0)
    X = torch.randn(300, 8)
    for kind in ("subtract", "concat"):
        K = make_kernel(kind, 8, (8, 4))
        K.init_distance_prior(X, quantile=0.1)
        c = X[:1]
        near = c + 0.01 * torch.randn(1, 8)
        far = c + 10 * torch.randn(1, 8)
        assert K(near, c).item() > 0.95
        assert K(far, c).item() < 0.05
        # about the asked share of random pairs is inside
        conf = K.pairwise(K.embed_points(X), K.embed_centers(X[:50]))
        share = (conf > 0.5).float().mean().item()
        assert 0.03 < share < 0.3


def test_analytic_kernels():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])
    c = torch.tensor([[0.0, 0.0]])
    g = GaussianKernel(1.0).pairwise(x, c)
    torch.testing.assert_close(g, torch.exp(-torch.tensor([[0.0, 1.0, 9.0]]) / 2))
    f = FlatKernel(1.5).pairwise(x, c)
    assert f.tolist() == [[1.0, 1.0, 0.0]]


def test_tile_sizes_respect_budget():
    tm, tn = tile_sizes(500, 70000, 4 * 392, 64 * 2**20)
    assert tm * tn * 4 * 392 <= 64 * 2**20
    assert tile_sizes(0, 10, 4, 100) == (1, 10)
