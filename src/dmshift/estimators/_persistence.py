"""Fitted estimators to model folders and back.

:mod:`dmshift.storage` writes and reads the files (atomically, with checksums); this module
turns an estimator into tensors + JSON and back. Loading trusts nothing in the file: the
estimator is looked up by name among the registered classes
(:mod:`~dmshift.estimators._registry`), its parameters go through its own checks, the
stored state through the estimator's ``_check_saved_state`` before any of it is used,
and the assembled model must predict. Every failure is a ``ValueError`` naming the path.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from pathlib import Path

import numpy as np

from ..storage import check_model_path, read_model_folder, write_model_folder
from ._registry import registered

__all__ = ["save_model", "load_model", "check_model_path", "check_saved_shape", "check_saved_scale",
           "check_saved_sizes"]


def _jsonable(v):
    if dataclasses.is_dataclass(v) and not isinstance(v, type):  # a settings object: stored as a dict
        return _jsonable(dataclasses.asdict(v))
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (tuple, list)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    raise TypeError(f"cannot store {type(v).__name__} in a model file")


def save_model(estimator, path, *, overwrite: bool = False) -> Path:
    """Write a fitted estimator to the model folder ``path``.

    Parameters
    ----------
    estimator : fitted dmshift estimator
    path : str or path-like
        A new folder, an empty folder, or (with ``overwrite=True``) a dmshift model folder.
    overwrite : bool, default=False
        Replace the dmshift model at ``path``. Nothing else is ever replaced: a file or a
        folder holding other files gives a ``ValueError`` and is left untouched.

    Returns
    -------
    path : Path

    Notes
    -----
    The write is atomic: if it is interrupted, ``path`` holds the old model or the new one.
    """
    estimator._check_fitted()
    path = check_model_path(path, overwrite=overwrite)  # before any work
    tensors, meta = estimator._export_state()
    params = estimator.get_params(deep=False)
    params = {k: v for k, v in params.items()
              if k != "random_state" or v is None or isinstance(v, (int, np.integer))}
    body = {"estimator": type(estimator).__name__, "params": _jsonable(params),
            "n_features_in": int(estimator.n_features_in_), "n_samples_fit": int(len(estimator.labels_)),
            "state": _jsonable(meta)}
    return write_model_folder(path, tensors, body, overwrite=overwrite)


def _count(config: dict, key: str, limit: int, where: str) -> int:
    v = config.get(key)
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not 1 <= v <= limit:
        raise ValueError(f"The model config {where} is corrupted: {key!r} must be an int in [1, {limit}] (the "
                         f"number of values its weights hold). Got {v!r} instead.")
    return int(v)


def load_model(path, *, device: str = "auto"):
    """Read a model folder written by :func:`save_model`; never unpickles.

    Parameters
    ----------
    path : str or path-like
    device : str, default="auto"

    Returns
    -------
    estimator : the fitted estimator

    Raises
    ------
    ValueError
        If the folder is not a dmshift model, fails its checksums, holds non-finite
        weights, invalid parameters or a state that does not fit together.
    """
    from .._validation import resolve_device
    path = Path(path)
    config, tensors = read_model_folder(path)
    where = str(path / "config.json")
    name = config.get("estimator")
    from . import __all__ as public, __getattr__ as import_estimator
    for cls_name in public:  # the package imports its estimators on first use; the file may name any of them
        import_estimator(cls_name)
    reg = registered()
    if not isinstance(name, str) or name not in reg:
        raise ValueError(f"The model at {path!s} is of unknown estimator {name!r}; known: {sorted(reg)}.")
    params, state = config.get("params"), config.get("state")
    if not isinstance(params, dict) or not isinstance(state, dict):
        raise ValueError(f"The model config {where} is corrupted: 'params' and 'state' must be objects.")
    total = max(sum(int(t.numel()) for t in tensors.values()), 1)
    d = _count(config, "n_features_in", total, where)
    n = _count(config, "n_samples_fit", total, where)

    est = reg[name]()
    valid = est.get_params(deep=False)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(f"The model config {where} is corrupted: {name} has no parameter {unknown[0]!r}.")
    try:
        est.set_params(**{k: (tuple(v) if isinstance(v, list) and isinstance(valid.get(k), tuple) else v)
                          for k, v in params.items()})
        est.n_features_in_ = d
        est._check_loaded_params()
        est._check_saved_state(tensors, state, n_samples=n)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        msg = " ".join(str(exc).split())
        raise ValueError(f"The model at {path!s} has an invalid config ({name}): {msg}") from None

    dev = resolve_device(device)
    tensors = {k: v.to(dev) for k, v in tensors.items()}
    try:
        est._import_state(tensors, state)
        expected, _ = est._export_state()
        est.predict(np.zeros((2, d), dtype=np.float32))  # the parts must fit together (centers, nets, means)
    except KeyError as exc:
        raise ValueError(f"The model at {path!s} is incomplete: missing {exc}.") from None
    except (RuntimeError, ValueError, TypeError, IndexError, AttributeError, OverflowError) as exc:
        msg = " ".join(str(exc).split())
        raise ValueError(f"The model at {path!s} does not match its config ({name}): {msg}") from None
    extra = sorted(set(tensors) - set(expected))
    missing = sorted(set(expected) - set(tensors))
    if extra or missing:
        what = f"unexpected tensors {extra}" if extra else f"missing tensors {missing}"
        raise ValueError(f"The model weights in {path!s} do not match a {name}: {what}.")
    return est


# ---------------------------------------------------------------------------- checks of a stored state
def check_saved_shape(tensors: dict, key: str, shape: tuple, *, optional: bool = False) -> None:
    """Tensor ``key`` must have ``shape`` (None: any size along that dimension)."""
    t = tensors.get(key)
    if t is None:
        if optional:
            return
        raise ValueError(f"tensor {key!r} is missing")
    if t.dim() != len(shape) or any(s is not None and t.shape[i] != s for i, s in enumerate(shape)):
        want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
        raise ValueError(f"tensor {key!r} has shape {tuple(t.shape)}, expected {want}")


def check_saved_scale(meta: dict, key: str) -> float:
    """``meta[key]`` must be a finite number > 0 (a standardisation scale, a bandwidth)."""
    v = meta.get(key)
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v <= 0:
        raise ValueError(f"{key!r} must be a finite number > 0. Got {v!r} instead")
    return float(v)


def check_saved_sizes(key: str, values, tensors: dict) -> None:
    """Layer sizes read from a file: positive ints, none larger than the largest stored dimension.

    A layer of width ``w`` stores a weight with a dimension of size ``w``, so a file that
    claims more is refused before a network of that size is allocated.
    """
    limit = max([max(t.shape) for t in tensors.values() if t.dim()] + [1])
    seq = [values] if isinstance(values, numbers.Integral) or not isinstance(values, (list, tuple)) else values
    if not seq or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or not 1 <= v <= limit for v in seq):
        raise ValueError(f"{key!r} must hold ints in [1, {limit}] (the largest dimension the weights hold). "
                         f"Got {values!r} instead")

