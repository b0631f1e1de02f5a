"""The shared backbones: output widths, batch-norm placement, image shapes and their checks."""

import pytest
import torch
from torch import nn

from dmshift.nets.lenet import LeNet, image_shape
from dmshift.nets.mlp import MLP


def test_mlp_shapes_and_batch_norm_on_the_last_layer():
    net = MLP(10, (7, 5, 3))
    assert net.out_features == 3
    assert net(torch.randn(4, 10)).shape == (4, 3)
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm1d)]
    assert [bn.num_features for bn in bns] == [3]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in MLP(10, (7, 5), batch_norm="all").modules()) == 2
    assert not any(isinstance(m, nn.BatchNorm1d) for m in MLP(10, (7,), batch_norm="none").modules())


def test_mlp_follows_the_input_dtype():
    net = MLP(4, (3,)).double()
    assert net(torch.randn(2, 4, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize("kwargs", [{"hidden": ()}, {"hidden": (3,), "batch_norm": "first"}])
def test_mlp_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="MLP"):
        MLP(4, **kwargs)


def test_lenet_kcl_configuration():
    net = LeNet((28, 28))  # KCL: 20 and 50 filters with batch norm, 500-unit layer
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(20, (5, 5)), (50, (5, 5))]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 2
    assert not any(isinstance(m, nn.BatchNorm1d) for m in net.modules())
    assert net.out_features == 500
    assert net(torch.randn(3, 784)).shape == (3, 500)


def test_lenet_ddc_configuration():
    net = LeNet((1, 28, 28), channels=(32, 64), fc=(100,), conv_batch_norm=False, fc_batch_norm=True)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64]
    assert [m.num_features for m in net.modules() if isinstance(m, nn.BatchNorm1d)] == [100]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 100)


def test_lenet_takes_colour_and_non_square_images():
    net = LeNet((3, 16, 20), fc=(8,))
    assert net.in_features == 3 * 16 * 20
    assert net(torch.randn(2, 3 * 16 * 20)).shape == (2, 8)


def test_lenet_refuses_images_too_small_for_two_convolutions():
    with pytest.raises(ValueError, match="16 x 16"):
        LeNet((8, 8))


@pytest.mark.parametrize("shape, expected", [((28, 28), (1, 28, 28)), ([3, 32, 32], (3, 32, 32))])
def test_image_shape(shape, expected):
    assert image_shape(shape) == expected


@pytest.mark.parametrize("shape", [(28,), (1, 2, 3, 4), (0, 28), "abc", None])
def test_image_shape_rejects(shape):
    with pytest.raises(ValueError, match="image shape"):
        image_shape(shape)
