"""The preparation stage: standardise, project, and map back (``dmshift.preprocessing``)."""

import numpy as np
import torch

from dmshift.estimators._base import fit_scaled
from dmshift.preprocessing import graph_space, prepare, principal_components, to_input_space, transform
from dmshift.settings import ProjectionSettings


def test_prepare_standardises_and_transform_repeats_it():
    X = np.random.default_rng(0).normal(3.0, 2.0, size=(50, 4)).astype(np.float32)
    p = prepare(X, lambda A: fit_scaled(A, "feature", torch.device("cpu")), None)
    assert p.components is None and p.X_std.shape == (50, 4)
    torch.testing.assert_close(p.X_std.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(transform(X, p.mean, p.scale, p.components, torch.device("cpu")), p.X_std)
    torch.testing.assert_close(to_input_space(p.X_std, p.mean, p.scale, None), torch.as_tensor(X), atol=1e-5, rtol=0)


def test_auto_projection_follows_the_settings():
    X = torch.randn(40, 10, generator=torch.Generator().manual_seed(0))
    X = X - X.mean(0)
    assert principal_components(X, "auto") is None  # 10 features: at most auto_max, kept
    V = principal_components(X, "auto", ProjectionSettings(auto_max=3))
    assert V.shape == (10, 3)
    p = prepare(X.numpy(), lambda A: fit_scaled(A, "none", torch.device("cpu")), 3)
    back = to_input_space(p.X_std, p.mean, p.scale, p.components)  # (40, 10): the projection onto 3 axes
    torch.testing.assert_close(back @ p.components, p.X_std, atol=1e-5, rtol=0)


def test_graph_space_reads_leading_columns_of_a_projection_only():
    Xs = torch.arange(12.0).reshape(3, 4)
    assert graph_space(Xs, projected=False, n_leading=2).shape == (3, 4)
    assert graph_space(Xs, projected=True, n_leading=2).shape == (3, 2)
    W = torch.eye(4)[:, :1]
    assert torch.equal(graph_space(Xs, W), Xs[:, :1])
