import numpy as np
import pytest
import torch

from dmshift.constants import NOISE
from dmshift.kernels import FlatKernel
import scipy.sparse as sp

from dmshift.merge import assign, center_similarity, merge_centers, merge_constrained, relabel_by_size, sinkhorn


def _hand_H():
    # centers 0,1 share points 0-2; center 2 owns points 3-4; center 3 is confident about nothing
    return torch.tensor([
        [0.9, 0.95, 0.9, 0.0, 0.0, 0.1],
        [0.95, 0.9, 0.8, 0.1, 0.0, 0.0],
        [0.0, 0.05, 0.0, 0.9, 0.99, 0.0],
        [0.2, 0.1, 0.0, 0.1, 0.0, 0.3],
    ])


def test_cosine_similarity_and_components():
    H = _hand_H()
    S = center_similarity(H, "cosine")
    torch.testing.assert_close(torch.diagonal(S), torch.ones(4, dtype=S.dtype))
    comp = merge_centers(S, 0.5)
    assert comp[0] == comp[1] and comp[2] != comp[0] and comp[3] not in (comp[0], comp[2])


def test_bistochastic_literal_gives_small_entries():
    S = center_similarity(_hand_H(), "bistochastic")
    off = S - torch.diag(torch.diagonal(S))
    assert off.max() < 0.5  # why the literal reading merges nothing at threshold 0.5
    comp = merge_centers(S, 0.5)
    assert comp[0] != comp[1]  # near-identical centers 0 and 1 stay apart


def test_sinkhorn_row_and_column_sums():
    H = torch.rand(5, 20) + 0.01
    A = sinkhorn(H, n_iter=200)
    torch.testing.assert_close(A.sum(1), torch.ones(5), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(A.sum(0), torch.full((20,), 5 / 20), rtol=1e-4, atol=1e-4)


def test_jaccard():
    S = center_similarity(_hand_H(), "jaccard")
    assert S[0, 1] == 1.0 and S[0, 2] == 0.0


def test_assign_and_noise():
    # a flat kernel makes H exactly 0/1: points 0-1 near center 0, 2 near center 1, 3 far away
    X = torch.tensor([[0.0], [0.5], [5.0], [50.0]])
    C = torch.tensor([[0.2], [5.0]])
    a = assign(FlatKernel(1.0), X, C, np.array([7, 3]), noise_threshold=0.5)
    assert a.labels.tolist() == [7, 7, 3, NOISE]
    a0 = assign(FlatKernel(1.0), X, C, np.array([7, 3]), noise_threshold=0.0)
    assert a0.labels[3] in (7, 3)  # every point assigned when the floor is 0


def test_relabel_by_size_drops_empty_clusters():
    labels = np.array([5, 5, 2, NOISE, 2, 2])
    new, cc = relabel_by_size(labels, np.array([2, 5, 9]))
    assert new.tolist() == [1, 1, 0, NOISE, 0, 0]
    assert cc.tolist() == [0, 1, NOISE]


def _cannot(G, pairs):
    i, j = np.array(pairs, dtype=np.int64).reshape(-1, 2).T
    return sp.csr_matrix((np.ones(2 * i.size, bool), (np.r_[i, j], np.r_[j, i])), shape=(G, G))


def test_merge_constrained_without_groups_is_merge_centers():
    rng = np.random.default_rng(0)
    A = rng.random((12, 12))
    S = torch.as_tensor((A + A.T) / 2)
    comp = merge_constrained(S, 0.8, np.full(12, -1), _cannot(0, []))
    ref = merge_centers(S, 0.8)
    # the same partition (component ids may be numbered differently)
    assert np.array_equal(comp[:, None] == comp[None], ref[:, None] == ref[None])


def test_merge_constrained_never_joins_groups_known_to_differ():
    # everything is similar, but centers 0 and 1 carry groups known to differ
    S = torch.full((4, 4), 0.9, dtype=torch.float64)
    S[2, 0] = S[0, 2] = 0.95  # center 2 is closest to center 0
    comp = merge_constrained(S, 0.5, np.array([0, 1, -1, -1]), _cannot(2, [(0, 1)]))
    assert comp[0] != comp[1]
    assert comp[2] == comp[0]
    assert comp[3] in (comp[0], comp[1])


def test_merge_constrained_joins_one_group_and_allows_groups_not_known_to_differ():
    S = torch.eye(3, dtype=torch.float64)  # nothing similar
    comp = merge_constrained(S, 0.5, np.array([0, 0, 1]), _cannot(2, []))
    assert comp[0] == comp[1] != comp[2]
    S2 = torch.ones((3, 3), dtype=torch.float64)  # groups 0 and 1 not known to differ: similarity may join them
    assert np.unique(merge_constrained(S2, 0.5, np.array([0, 0, 1]), _cannot(2, []))).size == 1


def _tiny_kernel():
    from dmshift.kernels import make_kernel
    torch.manual_seed(0)
    return make_kernel("subtract", 3, (8, 4)).eval()


@pytest.mark.parametrize("similarity", ["cosine", "jaccard", "bistochastic", "bistochastic-cosine"])
def test_tiled_similarity_equals_the_whole_matrix(similarity):
    from dmshift.merge import center_similarity_tiled, confidence_matrix
    kernel = _tiny_kernel()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(500, 3, generator=g)
    with torch.no_grad():
        px, qc = kernel.embed_points(x), kernel.embed_centers(x[:7])
        whole = center_similarity(confidence_matrix(kernel, px, qc), similarity, kernel.inlier_threshold)
        # a budget of a few kB forces tiles of a handful of points
        tiled = center_similarity_tiled(kernel, px, qc, similarity, memory_budget=4096)
    torch.testing.assert_close(tiled.double(), whole.double(), atol=1e-9, rtol=1e-6)


def test_similarity_sums_of_shards_add_up():
    from dmshift.merge import similarity_from_sums, similarity_sums
    kernel = _tiny_kernel()
    x = torch.randn(300, 3, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        px, qc = kernel.embed_points(x), kernel.embed_centers(x[:5])
        whole = similarity_sums(kernel, px, qc, "cosine")
        parts = similarity_sums(kernel, px[:120], qc, "cosine") + similarity_sums(kernel, px[120:], qc, "cosine")
    torch.testing.assert_close(parts, whole)
    assert torch.allclose(torch.diagonal(similarity_from_sums(whole, "cosine")), torch.ones(5, dtype=whole.dtype))
    with pytest.raises(ValueError, match="'similarity' parameter"):
        similarity_sums(kernel, px, qc, "bistochastic")


def test_assign_refuses_nan_confidences():
    from dmshift.kernels import GaussianKernel
    px = torch.tensor([[0.0, 0.0], [float("nan"), 1.0], [2.0, 0.0]])
    qc = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    with pytest.raises(ValueError, match=r"confidence is NaN for 1 of 3 points \(first: row 1\)"):
        assign(GaussianKernel(1.0), px, qc, np.array([0, 1]), 0.5)


def test_assign_embeds_tile_by_tile_as_the_whole():
    from dmshift.kernels import SubtractKernel
    torch.manual_seed(0)
    k = SubtractKernel(4, (8,)).eval()
    X, C = torch.randn(50, 4), torch.randn(5, 4)
    with torch.no_grad():
        whole = assign(k, k.embed_points(X), k.embed_centers(C), np.arange(5), 0.2, memory_budget=4096)
        tiled = assign(k, X, k.embed_centers(C), np.arange(5), 0.2, memory_budget=4096, embedded=False)
    np.testing.assert_array_equal(whole.labels, tiled.labels)
    np.testing.assert_allclose(whole.confidence, tiled.confidence, rtol=1e-6)
