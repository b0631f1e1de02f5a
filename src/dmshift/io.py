"""Model files: a folder with ``model.safetensors`` (every tensor) and ``config.json``.

Nothing is ever unpickled. The JSON records the library version, the estimator class,
its parameters and the feature dimension; the tensors hold the network weights and the
fitted arrays. Writes go to a temporary folder that is renamed into place, so a crash
never leaves a half-written model behind a good name.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

__all__ = ["save_model", "load_model", "FORMAT_VERSION"]

FORMAT_VERSION = 1
_CONFIG = "config.json"
_WEIGHTS = "model.safetensors"


def _registry() -> dict[str, type]:
    from . import estimators
    return {name: getattr(estimators, name) for name in estimators.__all__}


def _jsonable(v):
    if dataclasses.is_dataclass(v) and not isinstance(v, type):  # a settings object: stored as a dict
        return _jsonable(dataclasses.asdict(v))
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    raise TypeError(f"cannot store {type(v).__name__} in a model file")


def save_model(estimator, path) -> Path:
    """Write a fitted estimator to folder ``path`` (created or replaced atomically)."""
    from . import __version__
    estimator._check_fitted()
    tensors, meta = estimator._export_state()
    params = estimator.get_params(deep=False)
    params = {k: v for k, v in params.items() if k != "random_state" or v is None or isinstance(v, (int, np.integer))}
    config = {
        "format_version": FORMAT_VERSION,
        "library": "dmshift",
        "library_version": __version__,
        "estimator": type(estimator).__name__,
        "params": _jsonable(params),
        "n_features_in": int(estimator.n_features_in_),
        "n_samples_fit": int(len(estimator.labels_)),
        "state": _jsonable(meta),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp / _WEIGHTS))
        with open(tmp / _CONFIG, "w") as f:
            json.dump(config, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            old = path.with_name(path.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def load_model(path, *, device: str = "auto"):
    """Read a model folder written by :func:`save_model`; never unpickles."""
    from ._validation import resolve_device
    path = Path(path)
    cfg_path, w_path = path / _CONFIG, path / _WEIGHTS
    for p in (cfg_path, w_path):
        if not p.is_file():
            raise ValueError(f"{path!s} is not a dmshift model folder: {p.name} is missing.")
    try:
        config = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"The model config {cfg_path!s} is corrupted: {exc}") from None
    if not isinstance(config, dict) or config.get("library") != "dmshift":
        raise ValueError(f"{cfg_path!s} is not a dmshift model config.")
    fv = config.get("format_version")
    if fv != FORMAT_VERSION:
        raise ValueError(f"The model at {path!s} has format version {fv!r}; this dmshift reads version {FORMAT_VERSION}.")
    name = config.get("estimator")
    reg = _registry()
    if not isinstance(name, str) or name not in reg:
        raise ValueError(f"The model at {path!s} is of unknown estimator {name!r}; known: {sorted(reg)}.")
    dev = resolve_device(device)
    try:
        tensors = load_file(str(w_path), device="cpu")
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise ValueError(f"The model weights {w_path!s} are truncated or corrupted: {exc}") from None
    tensors = {k: v.to(dev) for k, v in tensors.items()}
    params = config.get("params")
    if not isinstance(params, dict) or not isinstance(config.get("state"), dict):
        raise ValueError(f"The model config {cfg_path!s} is corrupted: 'params' and 'state' must be objects.")
    params = dict(params)
    est = reg[name]()
    valid = est.get_params(deep=False)
    est.set_params(**{k: (tuple(v) if isinstance(v, list) and isinstance(valid.get(k), tuple) else v)
                      for k, v in params.items() if k in valid})
    try:
        est.n_features_in_ = int(config["n_features_in"])
        est._import_state(tensors, config["state"])
        expected, _ = est._export_state()
        d = est.n_features_in_
        est.predict(np.zeros((2, d), dtype=np.float32))  # the parts must fit together (centers, nets, means)
    except KeyError as exc:
        raise ValueError(f"The model at {path!s} is incomplete: missing {exc}.") from None
    except (RuntimeError, ValueError, TypeError, IndexError, AttributeError) as exc:
        msg = " ".join(str(exc).split())
        raise ValueError(f"The model at {path!s} does not match its config ({name}): {msg}") from None
    # the file must hold exactly the tensors this estimator writes, with the shapes it writes
    extra = sorted(set(tensors) - set(expected))
    missing = sorted(set(expected) - set(tensors))
    if extra or missing:
        what = f"unexpected tensors {extra}" if extra else f"missing tensors {missing}"
        raise ValueError(f"The model weights {w_path!s} do not match a {name}: {what}.")
    n = config.get("n_samples_fit")
    for k, dim in (("labels", 0), ("confidence", 0), ("vote_labels", 1), ("mean", 0), ("input_mean", 0),
                   ("cluster_centers", 1)):
        size = d if k in ("mean", "input_mean", "cluster_centers") else n
        t = tensors.get(k)
        if t is not None and size is not None and (t.dim() <= dim or t.shape[dim] != size):
            raise ValueError(f"The model weights {w_path!s} do not match a {name}: tensor {k!r} has shape "
                             f"{tuple(t.shape)}, expected {size} along dimension {dim}.")
    return est
