"""The small VGG backbone and the Learning-to-Cluster set network: shapes, layout, probabilities."""

import numpy as np
import pytest
import torch

from dmshift.nets.set_lstm import ResidualBiLSTM, SetLSTM
from dmshift.nets.vgg import SmallVGG, as_images


def test_as_images_reads_row_major_hwc():
    img = np.arange(2 * 3 * 4 * 3, dtype=np.float32).reshape(2, 3, 4, 3)  # (N, H, W, C)
    x = as_images(torch.as_tensor(img.reshape(2, -1)), (3, 4, 3))
    assert x.shape == (2, 3, 3, 4)
    np.testing.assert_array_equal(x.numpy(), img.transpose(0, 3, 1, 2))
    g = as_images(torch.arange(12.0).reshape(1, 12), (3, 4))
    np.testing.assert_array_equal(g[0, 0].numpy(), np.arange(12.0).reshape(3, 4))


@pytest.mark.parametrize("shape,widths,feat", [((1, 28, 28), (8, 16, 16, 32), 32), ((3, 32, 32), (4, 8, 8), 8 * 4 * 4),
                                               ((1, 8, 8), (4, 4, 4, 4), 4)])
def test_vgg_output_size(shape, widths, feat):
    net = SmallVGG(shape[0], shape[1:], widths)
    out = net(torch.randn(5, *shape))
    assert out.shape == (5, feat) == (5, net.out_features)
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert n_bn == len(widths)


def test_residual_stack_without_layers_is_identity():
    h = torch.randn(2, 5, 6)
    torch.testing.assert_close(ResidualBiLSTM(6, 0)(h), h)
    with pytest.raises(ValueError, match="even"):
        ResidualBiLSTM(5, 1)


def test_set_network_outputs_distributions():
    torch.manual_seed(0)
    net = SetLSTM(3, k_max=4, width=8, n_layers=2, count_units=4, count_hidden=8)
    assign, count_logits = net(torch.randn(2, 7, 3))
    assert assign.shape == (2, 7, 4, 4) and count_logits.shape == (2, 4)
    torch.testing.assert_close(assign.sum(-1), torch.ones(2, 7, 4))
    for k in range(1, 5):
        assert torch.all(assign[:, :, k - 1, k:] == 0)  # index l < k only
    assert torch.all(assign[:, :, 0, 0] == 1)


def test_set_network_handles_any_set_size():
    net = SetLSTM(2, k_max=3, width=4, n_layers=1, count_units=2, count_hidden=4)
    for n in (1, 2, 50):
        a, c = net(torch.randn(1, n, 2))
        assert a.shape == (1, n, 3, 3) and c.shape == (1, 3)
