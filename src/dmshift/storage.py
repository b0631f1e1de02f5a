"""Folders of tensors + JSON on disk: atomic writes, checksums, bounded reading.

A model folder holds ``config.json`` and the safetensors file it names
(``model.safetensors``, or ``model.1.safetensors`` after an odd number of replacements).
The JSON records the format version, the file name and SHA-256 of the tensors, and a
SHA-256 of the JSON itself; whatever else it holds is the caller's. This module knows
nothing of estimators: :mod:`dmshift.estimators` builds on it.

Replacing a model is crash-safe because ``config.json`` is the only file a reader starts
from and it changes in one ``os.replace``: the new tensors are first written, under the
name the current config does *not* use, through a temporary file, fsync and
``os.replace``; then the new config is written the same way (the commit); only then is
the old tensor file removed. A crash before the commit leaves the old config naming the
old, untouched tensors; after it, the new config names the complete new tensors. A new
folder is written beside its path and renamed into place in one ``os.rename``. Nothing
that is not a model folder (a user's folder, a data file) is ever replaced, moved or
deleted; an empty folder is filled in place.

Reading never unpickles and never trusts a size it has not checked: the JSON is refused
above :data:`MAX_CONFIG_BYTES` or :data:`MAX_JSON_DEPTH` levels of nesting before it is
parsed, the checksums are verified before the tensors are parsed, and every
floating-point tensor must be finite. Folders written before checksums existed (format
version 1) still load, with a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ._version import __version__

__all__ = ["FORMAT_VERSION", "CONFIG", "WEIGHTS", "MAX_CONFIG_BYTES", "MAX_JSON_DEPTH", "sha256_file",
           "atomic_write", "fsync_dir", "read_json", "check_model_path", "write_model_folder",
           "read_model_folder"]

FORMAT_VERSION = 2
#: versions this code reads: 1 has no checksums (read with a warning)
READABLE_VERSIONS = (1, 2)
CONFIG = "config.json"
#: the two names the tensor file alternates between, so a replacement never writes over the file in use
WEIGHTS = ("model.safetensors", "model.1.safetensors")
MAX_CONFIG_BYTES = 64 << 20
MAX_JSON_DEPTH = 64
_LIBRARY = "dmshift"
#: temporary files this module leaves in a model folder if killed mid-write
_TEMP = re.compile(r"^\.(config\.json|model(\.1)?\.safetensors)\..+\.tmp$")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


# ---------------------------------------------------------------------------- files
def sha256_file(path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fsync_dir(path) -> None:
    """Flush a folder's entries (a rename inside it) to disk, where the platform allows."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, write) -> None:
    """Create or replace ``path`` in one step: ``write(tmp)`` fills a temporary file beside it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------- JSON
def read_json(path, *, what: str = "file") -> dict:
    """A JSON object from ``path``; ``ValueError`` for anything else, however large or deep.

    The size and the nesting depth are checked before parsing, so a hostile file gives a
    ``ValueError``, never a ``MemoryError`` or ``RecursionError``.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ValueError(f"The {what} {str(path)!r} is corrupted: it has {size} bytes, expected at most "
                             f"{MAX_CONFIG_BYTES}.")
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"The {what} {str(path)!r} is unreadable: {exc}") from None
    depth = _max_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"The {what} {str(path)!r} is corrupted: it nests {depth} levels deep, expected at most "
                         f"{MAX_JSON_DEPTH}.")
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError; so are over-long integers
        raise ValueError(f"The {what} {str(path)!r} is corrupted: {exc}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"The {what} {str(path)!r} is corrupted: it must hold a JSON object. "
                         f"Got {type(obj).__name__} instead.")
    return obj


def _max_depth(text: str) -> int:
    """Deepest nesting of ``[``/``{`` outside strings (linear time, no recursion)."""
    bare = np.frombuffer(_STRING.sub("", text).encode(), dtype=np.uint8)
    step = np.zeros(bare.shape, dtype=np.int64)
    step[(bare == ord("[")) | (bare == ord("{"))] = 1
    step[(bare == ord("]")) | (bare == ord("}"))] = -1
    return int(np.cumsum(step).max(initial=0))


# ---------------------------------------------------------------------------- what is at a path
def _ours(folder: Path) -> tuple[list[str], list[str]]:
    """(this module's file names, the others) among the entries of ``folder``."""
    ours, others = [], []
    for p in folder.iterdir():
        ok = (p.name == CONFIG or p.name in WEIGHTS or _TEMP.match(p.name)) and p.is_file() and not p.is_symlink()
        (ours if ok else others).append(p.name)
    return ours, others


def _inspect(path: Path) -> str:
    """"absent", "empty" (a folder with nothing but our temporary files) or "model"; ``ValueError`` otherwise."""
    if not os.path.lexists(path):
        return "absent"
    if path.is_symlink() or not path.is_dir():
        kind = "a link" if path.is_symlink() else "a file"
        raise ValueError(f"The model path {str(path)!r} exists and is not a dmshift model folder: it is {kind}. "
                         "Give a new folder name; dmshift never replaces a file that is not its own.")
    ours, others = _ours(path)
    if others:
        shown = ", ".join(repr(n) for n in sorted(others)[:3]) + (", ..." if len(others) > 3 else "")
        raise ValueError(f"The model path {str(path)!r} is a folder that holds files that are not a dmshift model "
                         f"({shown}). Give a new folder name; dmshift never deletes files that are not its own.")
    if CONFIG not in ours:
        if any(n in WEIGHTS for n in ours):
            raise ValueError(f"The model path {str(path)!r} holds {', '.join(n for n in ours if n in WEIGHTS)} "
                             f"without a dmshift {CONFIG}: it is not a dmshift model folder. Give a new folder name.")
        return "empty"
    cfg = read_json(path / CONFIG, what="model config")
    if cfg.get("library") != _LIBRARY:
        raise ValueError(f"The model path {str(path)!r} holds a {CONFIG} that is not a dmshift model config. "
                         "Give a new folder name; dmshift never replaces files that are not its own.")
    return "model"


def check_model_path(path, *, overwrite: bool = False) -> Path:
    """Check that a model may be written at ``path``, before any work is done.

    Parameters
    ----------
    path : str or path-like
        The model folder to write.
    overwrite : bool, default=False
        Whether an existing dmshift model folder at ``path`` may be replaced.

    Returns
    -------
    path : Path

    Raises
    ------
    ValueError
        If ``path`` is a file or a folder holding anything but a dmshift model, or holds a
        dmshift model and ``overwrite`` is False.
    """
    if not isinstance(overwrite, (bool, np.bool_)):
        raise ValueError(f"The 'overwrite' parameter must be a bool. Got {overwrite!r} instead.")
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise ValueError(f"The model path must be a folder path. Got {path!r} instead.")
    path = Path(path)
    if _inspect(path) == "model" and not overwrite:
        raise ValueError(f"The model path {str(path)!r} already holds a dmshift model: pass overwrite=True "
                         "(--overwrite on the command line) to replace it, or give a new folder name.")
    return path


# ---------------------------------------------------------------------------- write
def _write_into(folder: Path, tensors: dict[str, torch.Tensor], body: dict, weights: str) -> None:
    """Tensors, then the config that names them (the commit: one ``os.replace``)."""
    atomic_write(folder / weights, lambda tmp: save_file(tensors, tmp))
    config = {"format_version": FORMAT_VERSION, "library": _LIBRARY, "library_version": __version__, **body,
              "weights": weights, "weights_sha256": sha256_file(folder / weights)}
    config["config_sha256"] = hashlib.sha256(_canonical(config)).hexdigest()

    def write_json(tmp):
        with open(tmp, "w") as f:
            json.dump(config, f, indent=2)
    atomic_write(folder / CONFIG, write_json)
    fsync_dir(folder)


def write_model_folder(path, tensors: dict[str, torch.Tensor], body: dict, *, overwrite: bool = False) -> Path:
    """Write ``tensors`` and the JSON object ``body`` as a model folder at ``path``, atomically.

    ``body`` must not use the keys this module adds (``format_version``, ``library``,
    ``library_version``, ``weights``, ``weights_sha256``, ``config_sha256``). See the
    module notes for how a replacement stays crash-safe; :func:`check_model_path` says
    what may be replaced.
    """
    path = check_model_path(path, overwrite=overwrite)
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    state = _inspect(path)
    if state == "absent":
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        try:
            _write_into(tmp, tensors, body, WEIGHTS[0])
            os.rename(tmp, path)  # refuses to replace a folder that appeared meanwhile
            fsync_dir(path.parent)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return path
    current = None
    if state == "model":
        try:
            current = read_json(path / CONFIG, what="model config").get("weights", WEIGHTS[0])
        except ValueError:
            current = None
    new = WEIGHTS[1] if current == WEIGHTS[0] else WEIGHTS[0]
    _write_into(path, tensors, body, new)
    for name in _ours(path)[0]:  # the replaced tensors, and temporary files of an interrupted write
        if name not in (CONFIG, new):
            try:
                os.remove(path / name)
            except FileNotFoundError:
                pass
    return path


# ---------------------------------------------------------------------------- read
def read_model_folder(path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(config, tensors on the CPU) of a model folder, with every check of the module notes.

    Raises
    ------
    ValueError
        If a file is missing, unreadable, fails its checksum, or holds a non-finite float.
    """
    path = Path(path)
    cfg_path = path / CONFIG
    if not cfg_path.is_file():
        raise ValueError(f"{path!s} is not a dmshift model folder: {CONFIG} is missing.")
    config = read_json(cfg_path, what="model config")
    if config.get("library") != _LIBRARY:
        raise ValueError(f"{cfg_path!s} is not a dmshift model config.")
    fv = config.get("format_version")
    if isinstance(fv, bool) or fv not in READABLE_VERSIONS:
        raise ValueError(f"The model at {path!s} has format version {fv!r}; this dmshift reads versions "
                         f"{', '.join(map(str, READABLE_VERSIONS))}.")
    if fv == 1:
        weights = WEIGHTS[0]
        warnings.warn(f"The model at {path!s} was saved by an older dmshift, without checksums: damage to its "
                      "files cannot be detected. Save it again to add them.", UserWarning, stacklevel=3)
    else:
        claimed = config.pop("config_sha256", None)
        if claimed != hashlib.sha256(_canonical(config)).hexdigest():
            raise ValueError(f"The model config {cfg_path!s} does not match its checksum: it was damaged or "
                             "edited after saving.")
        weights = config.get("weights")
        if weights not in WEIGHTS:
            raise ValueError(f"The model config {cfg_path!s} is corrupted: 'weights' must be one of "
                             f"{list(WEIGHTS)}. Got {weights!r} instead.")
    w_path = path / weights
    if not w_path.is_file():
        raise ValueError(f"{path!s} is not a dmshift model folder: {weights} is missing.")
    if fv != 1 and sha256_file(w_path) != config.get("weights_sha256"):
        raise ValueError(f"The model weights {w_path!s} do not match their checksum: the file is truncated or "
                         "corrupted.")
    try:
        tensors = load_file(str(w_path), device="cpu")
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise ValueError(f"The model weights {w_path!s} are truncated or corrupted: {exc}") from None
    for k, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"The model weights {w_path!s} are corrupted: tensor {k!r} holds NaN or infinite "
                             "values.")
    return config, tensors
