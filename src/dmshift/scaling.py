"""The standardisation every estimator applies to its input, computed in float64.

The networks and kernels compute in float32, which keeps about 7 significant digits.
Casting the input to float32 *before* centring loses every digit that an offset or a
scale takes up (``X + 1.7e9`` rounds to multiples of 128; ``X * 1e20`` squares to
infinity), so the mean and scale are fitted and applied here in float64 on the NumPy
input, and only the standardised values are cast to float32.

Modes (the estimators' ``standardize`` parameter):

- ``"feature"`` (``True``): centre each feature and divide it by its own standard
  deviation (scikit-learn's ``StandardScaler``);
- ``"global"``: centre each feature and divide all by one scale, the root of their mean
  variance (relative feature scales are kept);
- ``"image"``: one mean and one standard deviation over all values (pixels);
- ``"none"`` (``False``): the identity (the data are only cast to float32).

Where the standardised data cannot be represented in float32 a ``ValueError`` says why:
values whose squares overflow float32, or features whose values (all but a few) differ by
less than float32 resolves next to the feature's scale, so that distinct points would
become one. This module is NumPy only; the estimators move its output to torch.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

__all__ = [
    "STANDARDIZE_MODES",
    "MAX_STANDARDIZED",
    "MIN_RESOLVED",
    "check_standardize",
    "fit_standardization",
    "standardize",
    "check_standardization",
]

#: accepted values of ``standardize``: the modes and the two bools
STANDARDIZE_MODES = ("feature", "global", "image", "none")
_ALIASES = {True: "feature", False: "none"}

#: largest absolute standardised value: beyond it a squared distance overflows float32
#: (sqrt of float32's largest value, 1.8e19), which the kernels and networks compute
MAX_STANDARDIZED = float(np.sqrt(np.finfo(np.float32).max))
#: a feature whose typical deviation (median absolute deviation) is below this fraction of
#: its scale is rounded away next to values of order one in float32 (eps 1.2e-7; the
#: margin covers the sums of a layer)
MIN_RESOLVED = 1e-6

#: rows on which the bulk's spread is measured
_MAD_ROWS = 100_000
_FLOAT64_MAX = float(np.finfo(np.float64).max)
#: values standardised at a time (bounds the float64 intermediate to a few MiB)
_CHUNK_VALUES = 1 << 19


def check_standardize(value, *, image: bool = False) -> str:
    """The mode that ``standardize=value`` asks for, or a ValueError naming the parameter.

    Parameters
    ----------
    value : bool or str
        ``True`` (per feature; ``"image"`` when ``image``), ``False`` (none), or one of
        :data:`STANDARDIZE_MODES`.
    image : bool, default=False
        The rows are images: ``True`` means one mean and scale over all pixels.

    Returns
    -------
    mode : str
        One of :data:`STANDARDIZE_MODES`.
    """
    if isinstance(value, (bool, np.bool_)):
        return "image" if image and value else _ALIASES[bool(value)]
    if isinstance(value, str) and value in STANDARDIZE_MODES:
        return value
    raise ValueError(f"The 'standardize' parameter must be a bool or one of {', '.join(map(repr, STANDARDIZE_MODES))}."
                     f" Got {value!r} instead.")


def _column_stats(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (d,) of each column in float64, free of overflow up to float64's range.

    The mean is summed directly (exact for offsets such as ``X + 1.7e9``) unless the sum
    could overflow, then over the columns divided by their largest magnitude; the
    deviations from it are divided by their largest magnitude before squaring.
    """
    n, d = X.shape
    rows = max(1, _CHUNK_VALUES // max(1, d))
    chunks = [slice(s, s + rows) for s in range(0, n, rows)]
    peak = np.abs(X).max(axis=0).astype(np.float64)  # (d,)
    peak[~(peak > 0)] = 1.0
    if peak.max() < _FLOAT64_MAX / (4 * n):
        mean = X.mean(axis=0, dtype=np.float64)
    else:
        mean = sum((X[c] / peak).sum(0) for c in chunks) / n * peak
    spread = np.zeros(d)
    for c in chunks:
        spread = np.maximum(spread, np.abs(X[c] - mean).max(0))
    spread[~(spread > 0)] = 1.0
    sq = sum(np.square((X[c] - mean) / spread).sum(0) for c in chunks)
    return mean, np.sqrt(sq / n) * spread


def fit_standardization(X: np.ndarray, mode="feature") -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale, two float64 arrays of shape (n_features,), of the standardisation ``mode``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Finite float32 or float64 values (as the estimators' input checks leave them).
    mode : bool or str, default="feature"
        See :func:`check_standardize`.

    Returns
    -------
    mean, scale : ndarray of shape (n_features,)
        ``(X - mean) / scale`` is the standardised data; a constant feature gets scale 1.

    Raises
    ------
    ValueError
        If the standardised data cannot be represented in float32 (see :func:`standardize`)
        or every varying feature would be rounded away.
    """
    mode = check_standardize(mode)
    n, d = X.shape
    if mode == "none":
        mean, scale = np.zeros(d), np.ones(d)
    elif mode == "image":
        m, s = _column_stats(X.reshape(-1, 1))
        mean, scale = np.full(d, m[0]), np.full(d, s[0])
    else:
        mean, std = _column_stats(X)
        if mode == "global":
            top = std.max(initial=0.0)
            rms = top * np.sqrt(np.mean(np.square(std / top))) if top > 0 else 0.0
            scale = np.full(d, rms)
        else:
            scale = std
    scale = np.where(scale > 0, scale, 1.0)
    _check_resolved(X, mean, scale, mode)
    return mean, scale


def _check_resolved(X: np.ndarray, mean: np.ndarray, scale: np.ndarray, mode: str) -> None:
    """Refuse a standardisation under which float32 would merge the bulk of every varying feature's values.

    The bulk's spread is the median absolute deviation (blind to a few extreme values),
    measured on at most ``_MAD_ROWS`` evenly spaced rows.
    """
    S = X[::max(1, -(-X.shape[0] // _MAD_ROWS))]
    med = np.median(S, axis=0)
    mad = np.median(np.abs(S - med), axis=0)  # (d,)
    varying = mad > 0
    where = np.maximum(1.0, np.abs(med - mean) / scale)  # the bulk's magnitude after standardising
    lost = varying & (mad / scale < MIN_RESOLVED * where)
    if not lost.any():
        return
    cols = np.flatnonzero(lost)
    shown = ", ".join(map(str, cols[:10])) + (", ..." if cols.size > 10 else "")
    if mode == "none":
        what = (f"in feature(s) {shown} most values differ by less than {MIN_RESOLVED:g} (typical deviation "
                f"{mad[cols[0]]:.3g}), so float32 arithmetic next to values of order one rounds them away")
        fix = "Standardise the features (standardize=True) or rescale them before fitting."
    else:
        what = (f"in feature(s) {shown} most values differ by less than {MIN_RESOLVED:g} of the feature's scale "
                f"(typical deviation {mad[cols[0]]:.3g} against a scale of {scale[cols[0]]:.3g}, set by a few "
                "extreme values), so float32 rounds them to one value")
        fix = "Remove or clip the extreme values, or transform the features (e.g. a logarithm) before fitting."
    if lost[varying].all():
        raise ValueError(f"The 'X' parameter cannot be standardised into float32 (standardize={mode!r}): {what} "
                         f"and every point would fall into one cluster. {fix}")
    warnings.warn(f"Standardising X (standardize={mode!r}): {what}; these features are lost to the clustering. "
                  f"{fix}", UserWarning, stacklevel=4)


def standardize(X: np.ndarray, mean: np.ndarray, scale: np.ndarray, *, name: str = "X") -> np.ndarray:
    """``(X - mean) / scale`` computed in float64, returned as float32 (n, d).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    mean, scale : ndarray of shape (n_features,)
        From :func:`fit_standardization` (or a model file).
    name : str, default="X"
        The parameter named in errors.

    Returns
    -------
    Xs : ndarray of shape (n_samples, n_features), float32

    Raises
    ------
    ValueError
        If a standardised value lies beyond :data:`MAX_STANDARDIZED` in magnitude (its
        square overflows float32) or is not finite.
    """
    n, d = X.shape
    out = np.empty((n, d), dtype=np.float32)
    rows = max(1, _CHUNK_VALUES // max(1, d))
    for s in range(0, n, rows):
        z = (X[s:s + rows] - mean) / scale  # (rows, d) float64
        bad = ~(np.abs(z) <= MAX_STANDARDIZED)  # nan and inf too
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise ValueError(
                f"The '{name}' parameter holds a value that cannot be represented after standardisation: row "
                f"{s + i}, feature {j} is {float(X[s + i, j]):g}, {abs(z[i, j]):.3g} times the feature's scale "
                f"({scale[j]:.3g}) from its mean; at most {MAX_STANDARDIZED:.3g} fit in float32 arithmetic. "
                "Remove or clip the extreme values, or transform the features before fitting.")
        out[s:s + rows] = z
    return out


def check_standardization(mean, scale, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale read from a model, as float64 (n_features,) arrays; a scalar scale is broadcast.

    Models written before the per-feature default store one scale for all features.

    Raises
    ------
    ValueError
        If the shapes do not match ``n_features``, the mean is not finite or a scale is
        not a finite positive number.
    """
    mean = np.asarray(mean, dtype=np.float64).reshape(-1)
    values = scale if isinstance(scale, (list, tuple)) else [scale]
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
        raise ValueError(f"The model's scale must be one number or {n_features} numbers. Got {scale!r:.80} instead.")
    try:
        scale = np.broadcast_to(np.asarray(scale, dtype=np.float64).reshape(-1), (n_features,)).copy()
    except (ValueError, TypeError):
        raise ValueError(f"The model's scale must be one number or {n_features} numbers. Got {scale!r} instead.") from None
    if mean.shape != (n_features,):
        raise ValueError(f"The model's mean must hold {n_features} numbers. Got shape {mean.shape} instead.")
    if not np.isfinite(mean).all():
        raise ValueError("The model's mean must be finite. Got non-finite values instead.")
    if not (np.isfinite(scale) & (scale > 0)).all():
        raise ValueError(f"The model's scale must be finite and positive. Got {scale[~(np.isfinite(scale) & (scale > 0))][:3]!r} instead.")
    return mean, scale
