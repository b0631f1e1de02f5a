"""Backbone networks shared by dmshift's learned clustering methods (MLP, LeNet-style CNN, ...).

Import from the module files, e.g. ``from dmshift.nets.mlp import MLP``.
"""
