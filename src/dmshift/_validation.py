"""Boundary checks shared by every estimator: devices, seeds, arrays, parameters.

Private helpers; estimators call them in ``fit``/``predict`` and nowhere else, so the
torch core can assume valid input.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state

__all__ = [
    "resolve_device",
    "resolve_seed",
    "check_param",
    "check_positive_int",
    "check_fraction",
    "as_float_tensor",
]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """Turn ``"auto"``, ``None``, a string or a device into a :class:`torch.device`."""
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"The 'device' parameter must be 'auto', 'cpu', 'cuda' or 'cuda:N'. Got {device!r} instead."
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"The 'device' parameter asks for {str(dev)!r} but CUDA is not available on this machine; "
            "use device='cpu' or device='auto'."
        )
    return dev


def resolve_seed(random_state: Any) -> int:
    """Draw one integer seed from a ``random_state`` (None, int or NumPy RandomState)."""
    rs = check_random_state(random_state)
    return int(rs.randint(0, 2**31 - 1))


def check_param(name: str, value: Any, allowed: tuple) -> None:
    """Raise a ValueError unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        opts = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"The '{name}' parameter must be one of {opts}. Got {value!r} instead.")


def check_positive_int(name: str, value: Any, *, minimum: int = 1, allow_none: bool = False) -> None:
    """Raise a ValueError unless ``value`` is an integer >= ``minimum``."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(
            f"The '{name}' parameter must be an int in the range [{minimum}, inf). Got {value!r} instead."
        )


def check_fraction(name: str, value: Any, *, low: float = 0.0, high: float = 1.0,
                   low_open: bool = True, high_open: bool = True) -> None:
    """Raise a ValueError unless ``low < value < high`` (bounds open or closed as asked)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        lb = "(" if low_open else "["
        rb = ")" if high_open else "]"
        raise ValueError(f"The '{name}' parameter must be a float in the range {lb}{low}, {high}{rb}. Got {value!r} instead.")


def check_range_pair(name: str, value: Any, *, low: float, high: float) -> tuple[float, float]:
    """A ``(lo, hi)`` pair with ``low <= lo <= hi <= high`` (a single number means ``(v, v)``)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = (value, value)
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"The '{name}' parameter must be a number or a (low, high) pair. Got {value!r} instead.") from None
    if not (low <= lo <= hi <= high):
        raise ValueError(
            f"The '{name}' parameter must satisfy {low} <= low <= high <= {high}. Got {value!r} instead."
        )
    return lo, hi


def as_float_tensor(X: np.ndarray, device: torch.device) -> torch.Tensor:
    """NumPy (n, d) array to a float tensor on ``device``; float64 stays float64, the rest become float32."""
    dtype = torch.float64 if X.dtype == np.float64 else torch.float32
    X = np.ascontiguousarray(X)
    if not X.flags.writeable:  # torch cannot wrap read-only memory (e.g. a read-only memmap)
        X = X.copy()
    return torch.as_tensor(X, dtype=dtype, device=device)
