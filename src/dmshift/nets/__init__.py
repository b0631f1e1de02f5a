"""Backbone networks shared by dmshift's learned clustering methods.

MLP for vectors, LeNet-style and small VGG CNNs for images, and the residual BiLSTM set
model of Learning to Cluster.
"""

from .lenet import LeNet
from .mlp import MLP
from .set_lstm import ResidualBiLSTM, SetLSTM
from .vgg import SmallVGG

__all__ = ["MLP", "LeNet", "SmallVGG", "SetLSTM", "ResidualBiLSTM"]
