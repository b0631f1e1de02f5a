"""Parameter checks shared by the MMDC and Learning to Cluster estimators (int tuples, image shapes)."""

from __future__ import annotations

import math
import numbers


def _check_int_tuple(name: str, value, *, lengths: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """A non-empty tuple of positive ints (of one of ``lengths`` if given), or a ValueError."""
    try:
        t = tuple(value)
    except TypeError:
        t = ()
    ok = bool(t) and (lengths is None or len(t) in lengths)
    if not ok or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1 for v in t):
        n = "" if lengths is None else " or ".join(map(str, lengths)) + " "
        what = f"a tuple of {n}positive ints"
        raise ValueError(f"The '{name}' parameter must be {what}. Got {value!r} instead.")
    return tuple(int(v) for v in t)


def check_image_shape(image_shape, n_features: int) -> tuple[int, ...] | None:
    """Validate ``image_shape`` ((H, W) or (H, W, C)) against the number of features."""
    if image_shape is None:
        return None
    shape = _check_int_tuple("image_shape", image_shape, lengths=(2, 3))
    if math.prod(shape) != n_features:
        raise ValueError(f"The 'image_shape' parameter must multiply to the number of features ({n_features}). "
                         f"Got {image_shape!r} instead.")
    return shape
