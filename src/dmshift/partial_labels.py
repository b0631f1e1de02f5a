"""Partial labels as people hold them, read into integer codes.

:func:`encode_partial_labels` reads ``y`` given as integers (-1, None or NaN for unknown),
strings (None or NaN for unknown), or a pandas Series or categorical, into int64 codes
(-1 unknown) and the sorted classes, comparing integers exactly (no float round trip).
:class:`dmshift.constraints.SideInfo` reads every ``y`` through it. Nothing else is here.
"""

from __future__ import annotations

import numpy as np

from .constants import UNLABELLED

__all__ = ["encode_partial_labels"]


_LABELS_EXPECTED = ("class labels: integers (-1, None or NaN for unknown) or strings (None or NaN for unknown), "
                    "or a pandas categorical")


def _is_missing(v) -> bool:
    """None, NaN (float or NumPy) and pandas' NA/NaT mark an unknown label."""
    if v is None:
        return True
    if isinstance(v, (float, np.floating)):
        return bool(np.isnan(v))
    # pandas.NA and NaT without importing pandas: both are their own type's singletons
    return type(v).__name__ in ("NAType", "NaTType")


def _as_label_array(y) -> np.ndarray:
    """A 1-D NumPy view of labels given as a list, array, pandas Series/Index or Categorical."""
    dtype = getattr(y, "dtype", None)
    if dtype is not None and not isinstance(y, np.ndarray) and not isinstance(dtype, np.dtype):
        # pandas extension arrays (categorical, nullable Int64, string): missing cells as None
        try:
            return np.asarray(y.to_numpy(dtype=object, na_value=None))
        except (AttributeError, TypeError):  # a Categorical has no to_numpy(na_value=...)
            return np.asarray([None if _is_missing(v) else v for v in np.asarray(y, dtype=object)], dtype=object)
    A = np.asarray(y)
    if A.dtype.kind in "US" and isinstance(y, (list, tuple)) and not all(isinstance(v, str) for v in y):
        A = np.asarray(y, dtype=object)  # NumPy would turn [0, "a", None] into strings
    return A


def encode_partial_labels(y, n_samples: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Partial labels as people hold them -> int64 codes with -1 for unknown, and the classes.

    Every estimator reads ``y`` through this function (by way of :meth:`SideInfo.build`).

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Integers, with -1, None or NaN for unknown (floats must be integral); strings, with
        None or NaN for unknown; or a pandas Series / Categorical of either, whose missing
        cells (None, NaN, ``pd.NA``) are unknown. Integers are compared exactly, never
        through floats, so labels beyond 2**53 held as Python ints stay distinct.
    n_samples : int, optional
        The number of labels expected.

    Returns
    -------
    codes : ndarray of shape (n_samples,), int64
        ``classes`` index of each label; -1 (``UNLABELLED``) for unknown.
    classes : ndarray of shape (n_classes,)
        The distinct known labels, sorted.

    Raises
    ------
    ValueError
        For labels that are not 1-D, of the wrong length, non-integral numbers, numbers
        below -1, infinite, booleans, or numbers mixed with strings.
    """
    A = _as_label_array(y)
    if A.ndim != 1:
        raise ValueError(f"The 'y' parameter must be a 1-D array of partial labels. Got an array of shape {A.shape} "
                         "instead.")
    if n_samples is not None and A.shape[0] != n_samples:
        raise ValueError(f"The 'y' parameter must have one label per sample ({n_samples}). Got {A.shape[0]} labels "
                         "instead.")
    kind = A.dtype.kind
    if kind == "O":
        missing = np.fromiter((_is_missing(v) for v in A), dtype=bool, count=A.size)
        values = A[~missing]
        is_text = np.fromiter((isinstance(v, (str, np.str_)) for v in values), dtype=bool, count=values.size)
        if is_text.all() and values.size:
            return _codes(values.astype(str), missing, "U")
        if is_text.any():
            raise ValueError(f"The 'y' parameter must hold {_LABELS_EXPECTED}. Got both numbers and strings "
                             f"(e.g. {values[~is_text][0]!r} and {values[is_text][0]!r}) instead.")
        ints = []
        for v in values:
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer, float, np.floating)):
                raise ValueError(f"Unknown label type: the 'y' parameter must hold {_LABELS_EXPECTED}. "
                                 f"Got non-numeric objects ({type(v).__name__}) instead.")
            if isinstance(v, (float, np.floating)):
                if not np.isfinite(v) or v != int(v):
                    raise ValueError(f"Unknown label type: the 'y' parameter must hold {_LABELS_EXPECTED}. "
                                     f"Got the non-integer number {v!r} instead.")
                v = int(v)
            ints.append(int(v))
        return _codes(np.asarray(ints, dtype=object), missing, "O")
    if kind == "f":
        if np.isinf(A).any():
            raise ValueError("The 'y' parameter must not contain inf; mark unknown points with -1, None or NaN.")
        missing = np.isnan(A)
        values = A[~missing]
        if np.any(values != np.round(values)):
            raise ValueError(f"Unknown label type: the 'y' parameter must hold {_LABELS_EXPECTED}. "
                             "Got non-integer floats instead.")
        if values.size and np.abs(values).max() >= 2.0**63:
            raise ValueError(f"The 'y' parameter must hold labels >= 0, or -1 for unknown, that fit in int64. "
                             f"Got {values[np.argmax(np.abs(values))]!r} instead.")
        return _codes(values.astype(np.int64), missing, "i")
    if kind in "iu":
        return _codes(A, np.zeros(A.shape, dtype=bool), kind)
    if kind in "US":
        return _codes(A, np.zeros(A.shape, dtype=bool), "U")
    raise ValueError(f"Unknown label type: the 'y' parameter must hold {_LABELS_EXPECTED}. Got dtype {A.dtype} "
                     "instead.")


def _codes(values: np.ndarray, missing: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Codes of ``values`` (the known labels, in order) placed into an array with -1 where ``missing``."""
    codes = np.full(missing.shape, UNLABELLED, dtype=np.int64)
    if kind == "U":
        classes, inv = np.unique(values, return_inverse=True)
        codes[~missing] = inv
        return codes, classes
    # numbers: -1 is unknown too; anything else below 0 is a mistake
    if kind == "O":
        known = np.fromiter((v != UNLABELLED for v in values), dtype=bool, count=values.size)
        low = next((v for v in values if v < UNLABELLED), None)
    else:
        known = values != UNLABELLED
        low = values.min() if kind == "i" and values.size and values.min() < UNLABELLED else None
    if low is not None:
        raise ValueError(f"The 'y' parameter must hold labels >= 0, or -1 for unknown. Got {int(low)} instead.")
    if kind == "O":
        classes = np.asarray(sorted(set(values[known].tolist())), dtype=object)
        index = {c: k for k, c in enumerate(classes.tolist())}
        sub = np.asarray([index[v] for v in values[known].tolist()], dtype=np.int64)
        if classes.size and all(c <= np.iinfo(np.int64).max for c in classes.tolist()):
            classes = classes.astype(np.int64)
    else:
        classes, sub = np.unique(values[known], return_inverse=True)
    where = np.flatnonzero(~missing)[known]
    codes[where] = sub
    return codes, classes
