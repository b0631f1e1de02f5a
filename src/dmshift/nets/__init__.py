"""Backbone networks shared by dmshift's learned clustering methods.

MLP for vectors, LeNet-style and small VGG CNNs for images, and the residual BiLSTM set
model of Learning to Cluster.
"""

from .._lazy import attach as _attach

__all__ = ["MLP", "LeNet", "SmallVGG", "SetLSTM", "ResidualBiLSTM"]

__getattr__, __dir__ = _attach(__name__, {
    "LeNet": ".lenet",
    "MLP": ".mlp",
    "ResidualBiLSTM": ".set_lstm",
    "SetLSTM": ".set_lstm",
    "SmallVGG": ".vgg",
}, globals())
