"""KCL, MCL and DDC losses against hand-computed values on tiny batches, and the masking of unknown pairs."""

import math

import numpy as np
import pytest
import torch

from dmshift.losses import (cauchy_schwarz_similarity, ddc_loss, ddc_loss_terms, gaussian_kernel_matrix, kcl_loss,
                            mcl_loss)

DTYPES = [torch.float32, torch.float64]


def _kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


def _softmax(row):
    e = [math.exp(v) for v in row]
    return [v / sum(e) for v in e]


LOGITS = [[2.0, 0.0, -1.0], [1.5, 0.2, -0.5], [-1.0, 0.5, 2.0]]
# points 0 and 1 the same, 2 different from both
SAME = [[1, 1, 0], [1, 1, 0], [0, 0, 1]]


@pytest.mark.parametrize("dtype", DTYPES)
def test_kcl_matches_hand_computation(dtype):
    P = [_softmax(r) for r in LOGITS]
    margin = 2.0

    def L(i, j, same):  # eq. 3: loss(P_i || P_j) + loss(P_j || P_i)
        if same:
            return _kl(P[i], P[j]) + _kl(P[j], P[i])
        return max(0.0, margin - _kl(P[i], P[j])) + max(0.0, margin - _kl(P[j], P[i]))

    expected = (L(0, 1, True) + L(0, 2, False) + L(1, 2, False)) / 3
    got = kcl_loss(torch.tensor(LOGITS, dtype=dtype), torch.tensor(SAME), margin=margin)
    assert got.dtype == dtype
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_kcl_hinge_is_zero_beyond_the_margin():
    logits = torch.tensor([[20.0, 0.0], [0.0, 20.0]])
    same = torch.tensor([[1, 0], [0, 1]])
    assert float(kcl_loss(logits, same, margin=2.0)) == 0.0
    assert float(kcl_loss(logits, same, margin=100.0)) > 0.0


def test_kcl_gradient_holds_the_target_side_constant():
    """Eq. 4: dL/dQ_i = -P_i / Q_i for a same pair, the P side being a constant."""
    p = torch.tensor([[0.7, 0.2, 0.1]], dtype=torch.float64)
    q = torch.tensor([[0.3, 0.3, 0.4]], dtype=torch.float64, requires_grad=True)
    # feed probabilities through log so that logits = log q and softmax(logits) = q
    logits = torch.cat([p.log(), q.log()])
    same = torch.ones(2, 2, dtype=torch.int8)
    (g,) = torch.autograd.grad(kcl_loss(logits, same), q)
    # loss over the one pair = KL(P*||Q) + KL(Q*||P); d/dQ of the second term is 0 since Q* is constant
    # there; through the softmax, d/dq of -sum p log softmax(log q) = -p/q + sum(p)/sum(q) = -p/q + 1
    expected = -p / q.detach() + 1.0
    assert torch.allclose(g, expected, atol=1e-10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_mcl_matches_hand_computation(dtype):
    P = [_softmax(r) for r in LOGITS]

    def s(i, j):
        return sum(a * b for a, b in zip(P[i], P[j]))

    expected = (-math.log(s(0, 1)) - math.log(1 - s(0, 2)) - math.log(1 - s(1, 2))) / 3
    got = mcl_loss(torch.tensor(LOGITS, dtype=dtype), torch.tensor(SAME))
    assert got.dtype == dtype
    assert float(got) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("loss", [kcl_loss, mcl_loss])
def test_unknown_pairs_are_masked_out(loss):
    """An unknown pair changes nothing: the loss is that of the known pairs alone."""
    torch.manual_seed(0)
    logits = torch.randn(5, 4, requires_grad=True)
    same = torch.full((5, 5), -1, dtype=torch.int8)
    same[0, 1] = same[1, 0] = 1
    same[0, 2] = same[2, 0] = 0
    for i in range(5):
        same[i, i] = 1
    full = loss(logits, same)
    sub = loss(logits[:3], same[:3, :3])
    assert float(full.detach()) == pytest.approx(float(sub.detach()), rel=1e-6)
    (g,) = torch.autograd.grad(full, logits)
    assert torch.all(g[3:] == 0)  # points 3 and 4 have only unknown pairs
    assert torch.any(g[:3] != 0)
    # flipping an unknown entry to anything other than -1 would change the loss: -1 is not a label
    same2 = same.clone()
    same2[3, 4] = same2[4, 3] = 0
    assert float(loss(logits, same2).detach()) != pytest.approx(float(full.detach()))


@pytest.mark.parametrize("loss", [kcl_loss, mcl_loss])
def test_no_known_pair_gives_zero_with_a_graph(loss):
    logits = torch.randn(3, 4, requires_grad=True)
    out = loss(logits, torch.full((3, 3), -1))
    assert float(out.detach()) == 0.0
    out.backward()  # still differentiable


@pytest.mark.parametrize("loss", [kcl_loss, mcl_loss])
def test_diagonal_is_not_a_pair(loss):
    logits = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    diag_only = torch.tensor([[1, -1], [-1, 1]])
    assert float(loss(logits, diag_only)) == 0.0


def test_gaussian_kernel_bandwidth_is_15_percent_of_the_median_distance():
    h = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]], dtype=torch.float64)
    # distances 3, 4, 5 -> median 4 -> sigma 0.6
    K = gaussian_kernel_matrix(h, rel_sigma=0.15)
    sigma = 0.6
    expected = np.exp(-np.array([[0, 9, 16], [9, 0, 25], [16, 25, 0]]) / (2 * sigma**2))
    assert np.allclose(K.numpy(), expected)


def test_gaussian_kernel_squared_bandwidth_rule():
    h = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]], dtype=torch.float64)
    # squared distances 9, 16, 25 -> median 16 -> sigma^2 = 0.15 * 16 = 2.4
    K = gaussian_kernel_matrix(h, rel_sigma=0.15, bandwidth="squared")
    expected = np.exp(-np.array([[0, 9, 16], [9, 0, 25], [16, 25, 0]]) / (2 * 2.4))
    assert np.allclose(K.numpy(), expected)


def test_cauchy_schwarz_similarity_by_hand():
    A = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], dtype=torch.float64)
    K = torch.tensor([[1.0, 0.2, 0.5], [0.2, 1.0, 0.4], [0.5, 0.4, 1.0]], dtype=torch.float64)
    nom = A.T @ K @ A
    expected = float(nom[0, 1] / math.sqrt(nom[0, 0] * nom[1, 1]))  # one pair of clusters
    assert float(cauchy_schwarz_similarity(A, K)) == pytest.approx(expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_ddc_loss_matches_hand_computation(dtype):
    hidden = [[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]]
    A = [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]]
    B, C = 3, 3
    d = [[math.dist(a, b) for b in hidden] for a in hidden]
    sigma = 0.15 * 4.0  # median of the distances 3, 4, 5
    K = [[math.exp(-d[i][j] ** 2 / (2 * sigma**2)) for j in range(B)] for i in range(B)]

    def cs(M):
        def ip(a, b):
            return sum(M[q][a] * K[q][l] * M[l][b] for q in range(B) for l in range(B))
        pairs = [(a, b) for a in range(C) for b in range(a + 1, C)]
        return sum(ip(a, b) / math.sqrt(ip(a, a) * ip(b, b)) for a, b in pairs) / len(pairs)

    m = [[math.exp(-sum((A[q][k] - (1.0 if k == i else 0.0)) ** 2 for k in range(C))) for i in range(C)]
         for q in range(B)]
    orth = sum(sum(A[q][k] * A[l][k] for k in range(C)) for q in range(B) for l in range(q + 1, B)) / 3
    terms = ddc_loss_terms(torch.tensor(hidden, dtype=dtype), torch.tensor(A, dtype=dtype))
    assert [float(t) for t in terms] == pytest.approx([cs(A), orth, cs(m)], rel=1e-5)
    total = ddc_loss(torch.tensor(hidden, dtype=dtype), torch.tensor(A, dtype=dtype))
    assert total.dtype == dtype
    assert float(total) == pytest.approx(cs(A) + orth + cs(m), rel=1e-5)


def test_ddc_loss_prefers_compact_separated_corners():
    """Points at simplex corners that match the hidden clusters score lower than mixed ones."""
    hidden = torch.tensor([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
    good = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    bad = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    soft = torch.full((4, 2), 0.5)
    assert float(ddc_loss(hidden, good)) < float(ddc_loss(hidden, bad))
    assert float(ddc_loss(hidden, good)) < float(ddc_loss(hidden, soft))


def test_ddc_loss_gradient_is_finite_for_collapsed_outputs():
    hidden = torch.randn(6, 3, requires_grad=True)
    logits = torch.zeros(6, 4, requires_grad=True)
    logits.data[:, 0] = 30.0  # everything in one cluster: empty clusters must not give NaN
    loss = ddc_loss(hidden, torch.softmax(logits, 1))
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(logits.grad).all() and torch.isfinite(hidden.grad).all()
