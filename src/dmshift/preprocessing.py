"""What DMS's kernel reads: standardised input, optionally projected on principal components.

:func:`prepare` is the first stage of :meth:`DMSClustering.fit <dmshift.DMSClustering.fit>`:
it standardises the input (in float64, with the scaler it is given, before the cast to
float32) and, when asked, projects it on its
leading principal components. :func:`transform` applies a fitted preparation to new
points, :func:`to_input_space` maps back, :func:`graph_space` picks the coordinates the
smoothing graph reads. No side information is used here and nothing is learnt beyond
mean, scale and directions.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .scaling import standardize
from .linalg import principal_axes
from .settings import ProjectionSettings

__all__ = ["Prepared", "prepare", "principal_components", "scaled", "unscaled", "transform", "to_input_space",
           "graph_space"]


@dataclass(frozen=True)
class Prepared:
    """Result of :func:`prepare`.

    Attributes
    ----------
    X_std : tensor of shape (n, c)
        The points as the kernel reads them (standardised, projected).
    mean, scale : ndarray of shape (d,), float64
        The standardisation (:mod:`dmshift.scaling`): ``(X - mean) / scale``.
    components : tensor of shape (d, c) or None
        The projection applied after standardisation (None: none).
    """

    X_std: torch.Tensor
    mean: np.ndarray
    scale: np.ndarray
    components: torch.Tensor | None


def principal_components(Xs: torch.Tensor, n_components,
                         settings: ProjectionSettings = ProjectionSettings()) -> torch.Tensor | None:
    """Leading principal directions (d, c) of the centred rows ``Xs`` (n, d), or None for no projection.

    ``n_components`` as in :class:`~dmshift.DMSClustering`; the directions are those of
    :func:`dmshift.linalg.principal_axes` (float64 covariance, signs fixed).
    """
    n, d = Xs.shape
    if n_components is None or (isinstance(n_components, str) and d <= settings.auto_max):
        return None
    if isinstance(n_components, numbers.Integral) and n_components >= d:
        return None
    evals, evecs = principal_axes(Xs)
    if isinstance(n_components, numbers.Integral):
        c = int(n_components)
    else:
        share = settings.auto_variance if isinstance(n_components, str) else float(n_components)
        total = float(evals.sum())
        c = int(torch.searchsorted(torch.cumsum(evals, 0) / max(total, 1e-300),
                                   torch.tensor(share, dtype=evals.dtype, device=evals.device)).item()) + 1
        if isinstance(n_components, str):
            c = min(c, settings.auto_max)
    c = max(1, min(c, d, n))
    return evecs[:, :c].to(Xs.dtype)


def prepare(X: np.ndarray, scaler: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, torch.Tensor]],
            n_components, settings: ProjectionSettings = ProjectionSettings()) -> Prepared:
    """Standardise ``X`` (n, d) and project it (see :func:`principal_components`).

    ``scaler`` maps the checked input (n, d) to its mean (d,), scale (d,) and the
    standardised float32 points (n, d) on the device they are computed on; DMS passes
    the estimators' shared :func:`~dmshift.estimators._base.fit_scaled`.
    """
    mean, scale, Xs = scaler(X)  # (d,), (d,), (n, d)
    components = principal_components(Xs, n_components, settings)  # (d, c) or None
    if components is not None:
        Xs = Xs @ components  # (n, c)
    return Prepared(X_std=Xs, mean=mean, scale=scale, components=components)


def scaled(X: np.ndarray, mean: np.ndarray, scale: np.ndarray, device: torch.device, *,
           name: str = "X") -> torch.Tensor:
    """``(X - mean) / scale`` computed in float64: a float32 tensor (n, d) on ``device``.

    Raises a ValueError naming ``name`` where a value cannot be represented
    (:func:`dmshift.scaling.standardize`).
    """
    return torch.from_numpy(standardize(X, mean, scale, name=name)).to(device)


def unscaled(Z: torch.Tensor, mean: np.ndarray, scale: np.ndarray) -> torch.Tensor:
    """Standardised points (m, d) back in input units, in ``Z``'s dtype: ``Z * scale + mean``."""
    s = torch.as_tensor(scale, dtype=Z.dtype, device=Z.device)  # (d,)
    return Z * s + torch.as_tensor(mean, dtype=Z.dtype, device=Z.device)


def transform(X, mean: np.ndarray, scale: np.ndarray, components: torch.Tensor | None,
              device: torch.device) -> torch.Tensor:
    """Checked input (n, d) -> what the kernel reads (n, c) on ``device``: standardised in float64, projected."""
    Xs = scaled(X, mean, scale, device)  # (n, d) float32
    return Xs if components is None else Xs @ components


def to_input_space(Z: torch.Tensor, mean: np.ndarray, scale: np.ndarray, components: torch.Tensor | None) -> torch.Tensor:
    """Points in the kernel's input space (m, c) -> input features (m, d), in ``Z``'s dtype."""
    return unscaled(Z if components is None else Z @ components.T, mean, scale)


def graph_space(Xs: torch.Tensor, W: torch.Tensor | None = None, *, projected: bool = False,
                n_leading: int | None = None) -> torch.Tensor:
    """Where smoothing's graph looks for neighbours: ``Xs @ W``, or with ``W`` None the leading
    ``n_leading`` columns of ``Xs`` (n, c) when it is a projection, else ``Xs`` itself."""
    if W is not None:
        return Xs @ W
    return Xs[:, :n_leading] if projected else Xs
