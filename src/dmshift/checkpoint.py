"""Training checkpoints: write the full training state every few steps, resume from it.

A checkpoint of one training run is two files in the checkpoint folder:
``ckpt-run<r>-step<k>.safetensors`` (every tensor: model, optimiser moments, best state so
far, torch generator states, the step function's arrays) and ``ckpt-run<r>.json`` (the
step, best score, history, optimiser hyper-parameters, NumPy generator states, and a
fingerprint of the estimator's configuration and data). The JSON names the tensor file
and its SHA-256 and is replaced last (temporary file in the same folder, fsync,
``os.replace``), so a killed process leaves either the previous checkpoint or the new
one, never a mix. Nothing is pickled and nothing is loaded with ``torch.load``.

What "the step function's state" means: the training loop knows nothing of a model's
data pipeline, so :func:`step_state` looks into the closure of the ``step_loss`` function a
method passes to :func:`dmshift.train.train_loop`: every random generator reachable from
it (NumPy ``Generator``/``RandomState``, ``torch.Generator``, e.g. a sampler's ``rng``)
and the NumPy arrays and small dicts held directly in its closure (e.g. an epoch's
permutation and position). With those restored, resuming on the same machine gives the
same parameters as an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import types
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .storage import atomic_write as _atomic_write
from .storage import fsync_dir as _fsync_dir
from .storage import sha256_file as _sha256

__all__ = ["Checkpointer", "CheckpointError", "step_state", "fingerprint_of"]

logger = logging.getLogger("dmshift")

CHECKPOINT_VERSION = 1
_JSON = re.compile(r"^ckpt-run(\d+)\.json$")
_TENSORS = re.compile(r"^ckpt-run(\d+)-step(\d+)\.safetensors$")
_RNGS = (np.random.Generator, np.random.RandomState, torch.Generator)


class CheckpointError(ValueError):
    """A checkpoint is missing, damaged or belongs to another configuration."""


# ---------------------------------------------------------------------------- fingerprints
def _digest(a) -> str | None:
    if a is None:
        return None
    a = np.ascontiguousarray(np.asarray(a))
    h = hashlib.sha256(str((a.dtype.str, a.shape)).encode())
    h.update(a.data if a.dtype != object else repr(a.tolist()).encode())
    return h.hexdigest()[:16]


def fingerprint_of(estimator, X, y=None, pairs=None, *, ignore=()) -> dict:
    """What must match for a checkpoint to be resumed: class, parameters, data shape and content."""
    params = {}
    for k, v in sorted(estimator.get_params(deep=False).items()):
        if k in ignore:
            continue
        if dataclasses.is_dataclass(v) and not isinstance(v, type):  # settings: compared field by field
            v = dataclasses.asdict(v)
        try:
            json.dumps(v)
            params[k] = v
        except (TypeError, ValueError):  # e.g. a RandomState: its type is all that can be compared
            params[k] = f"<{type(v).__name__}>"
    return {"estimator": type(estimator).__name__, "params": json.loads(json.dumps(params)),
            "data_shape": list(np.shape(X)), "data": _digest(X), "y": _digest(y), "pairs": _digest(pairs)}


def _describe_mismatch(old: dict, new: dict) -> str:
    if old.get("estimator") != new["estimator"]:
        return f"it was written by {old.get('estimator')}, not {new['estimator']}"
    if old.get("data_shape") != new["data_shape"]:
        return f"it was written for data of shape {tuple(old.get('data_shape') or ())}, not {tuple(new['data_shape'])}"
    op, np_ = old.get("params", {}), new["params"]
    for k in sorted(set(op) | set(np_)):
        if op.get(k) != np_.get(k):
            return f"its parameter {k!r} was {op.get(k)!r}, now {np_.get(k)!r}"
    for k, what in (("data", "X"), ("y", "y"), ("pairs", "pairs")):
        if old.get(k) != new[k]:
            return f"it was written for a different {what}"
    return "its fingerprint differs"


# ---------------------------------------------------------------------------- step-function state
def step_state(fn) -> dict[str, object]:
    """Mutable state of a ``step_loss`` closure, by path: generators, arrays and dicts (see module notes)."""
    found: dict[str, object] = {}
    seen: set[int] = set()

    def skip(v) -> bool:
        from sklearn.base import BaseEstimator
        return isinstance(v, (torch.Tensor, torch.nn.Module, BaseEstimator, type, types.ModuleType, str, bytes))

    def visit_fn(f, prefix: str) -> None:
        if id(f) in seen:
            return
        seen.add(id(f))
        for name, cell in zip(f.__code__.co_freevars, f.__closure__ or ()):
            try:
                v = cell.cell_contents
            except ValueError:  # a cell not filled yet
                continue
            path = f"{prefix}{name}"
            if isinstance(v, _RNGS):
                found.setdefault(path, v)
            elif isinstance(v, types.FunctionType):
                visit_fn(v, path + "/")
            elif isinstance(v, np.ndarray) and v.flags.writeable and v.dtype != object:
                found.setdefault(path, v)
            elif isinstance(v, dict) and all(isinstance(k, str) for k in v):
                found.setdefault(path, v)
            elif not skip(v) and hasattr(v, "__dict__"):
                visit_obj(v, path, 2)

    def visit_obj(o, path: str, depth: int) -> None:
        if id(o) in seen or depth == 0:
            return
        seen.add(id(o))
        for k, a in vars(o).items():
            if isinstance(a, _RNGS):
                found.setdefault(f"{path}.{k}", a)
            elif not skip(a) and not isinstance(a, (np.ndarray, dict, list, tuple)) and hasattr(a, "__dict__"):
                visit_obj(a, f"{path}.{k}", depth - 1)

    visit_fn(fn, "")
    return found


def _pack_state(state: dict[str, object], tensors: dict, meta: dict) -> None:
    for path, v in state.items():
        if isinstance(v, torch.Generator):
            tensors[f"gen/{path}"] = v.get_state()
        elif isinstance(v, np.random.Generator):
            meta[path] = {"kind": "numpy_generator", "state": v.bit_generator.state}
        elif isinstance(v, np.random.RandomState):
            s = v.get_state(legacy=False)
            tensors[f"rs/{path}"] = torch.from_numpy(np.asarray(s["state"]["key"]).astype(np.int64))
            meta[path] = {"kind": "random_state", "state": {k: s[k] for k in s if k != "state"},
                          "pos": int(s["state"]["pos"])}
        elif isinstance(v, np.ndarray):
            tensors[f"arr/{path}"] = torch.from_numpy(np.ascontiguousarray(v).copy())
            meta[path] = {"kind": "array"}
        elif isinstance(v, dict):
            items = {}
            for k, x in v.items():
                if isinstance(x, np.ndarray) and x.dtype != object:
                    tensors[f"dict/{path}/{k}"] = torch.from_numpy(np.ascontiguousarray(x).copy())
                    items[k] = {"array": True}
                elif x is None or isinstance(x, (bool, int, float, str, np.integer, np.floating)):
                    items[k] = {"value": x.item() if isinstance(x, np.generic) else x}
                # other values (tensors, objects) are not part of the saved state
            meta[path] = {"kind": "dict", "items": items}


def _unpack_state(state: dict[str, object], tensors: dict, meta: dict) -> None:
    missing = sorted(set(state) - set(meta) - {p for p in state if isinstance(state[p], torch.Generator)})
    if missing:
        raise CheckpointError(f"the checkpoint holds no state for {missing[0]!r}: it was written by other code")
    for path, v in state.items():
        if isinstance(v, torch.Generator):
            v.set_state(tensors[f"gen/{path}"])
        elif isinstance(v, np.random.Generator):
            v.bit_generator.state = meta[path]["state"]
        elif isinstance(v, np.random.RandomState):
            m = meta[path]
            v.set_state({**m["state"], "state": {"key": tensors[f"rs/{path}"].numpy().astype(np.uint32),
                                                  "pos": m["pos"]}})
        elif isinstance(v, np.ndarray):
            a = tensors[f"arr/{path}"].numpy()
            if a.shape != v.shape:
                raise CheckpointError(f"the checkpoint's {path!r} has shape {a.shape}, expected {v.shape}")
            v[...] = a
        elif isinstance(v, dict):
            for k, item in meta[path]["items"].items():
                v[k] = tensors[f"dict/{path}/{k}"].numpy().copy() if item.get("array") else item["value"]


# ---------------------------------------------------------------------------- optimiser
def _pack_optimizer(opt: torch.optim.Optimizer, tensors: dict) -> dict:
    sd = opt.state_dict()
    state_meta = {}
    for idx, st in sd["state"].items():
        entry = {}
        for name, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optim/{idx}/{name}"] = v
                entry[name] = {"tensor": True}
            else:
                entry[name] = {"value": v}
        state_meta[str(idx)] = entry
    return {"state": state_meta, "param_groups": json.loads(json.dumps(sd["param_groups"]))}


def _unpack_optimizer(opt: torch.optim.Optimizer, meta: dict, tensors: dict) -> None:
    state = {}
    for idx, entry in meta["state"].items():
        state[int(idx)] = {name: (tensors[f"optim/{idx}/{name}"] if e.get("tensor") else e["value"])
                           for name, e in entry.items()}
    groups = [{k: (tuple(v) if isinstance(v, list) and k != "params" else v) for k, v in g.items()}
              for g in meta["param_groups"]]
    opt.load_state_dict({"state": state, "param_groups": groups})


class Checkpointer:
    """Writes and reads the checkpoints of one ``fit`` (one file pair per training run).

    Parameters
    ----------
    directory : path
    every : int
        Steps between checkpoints; the last step of a run is always written.
    fingerprint : dict
        Configuration and data description that a resumed fit must match.
    resume : bool
        Continue from the checkpoints in ``directory`` (an error if there are none, or if
        they were written for another fingerprint); otherwise old checkpoints there are
        removed.

    Attributes
    ----------
    seed : int or None
        The fit's seed: a resumed fit takes the checkpoint's, so ``random_state=None``
        resumes too; a new fit sets it once resolved.
    """

    def __init__(self, directory, every: int, fingerprint: dict, *, resume: bool):
        self.directory = Path(directory)
        self.every = int(every)
        self.fingerprint = fingerprint
        self.resume = bool(resume)
        self.seed: int | None = None
        self.seed_claimed = False  # set by the estimator's first _setup() of this fit
        self._next_run = 0
        if self.resume:
            first = self.directory / "ckpt-run0.json"
            if not first.is_file():
                raise CheckpointError(f"No checkpoint to resume from in {str(self.directory)!r}: fit without "
                                      "resume=True to start training (checkpoints are written there as it runs).")
            meta = self._read_json(first)
            if meta.get("fingerprint") != fingerprint:
                raise CheckpointError(f"The checkpoint in {str(self.directory)!r} cannot be resumed: "
                                      f"{_describe_mismatch(meta.get('fingerprint') or {}, fingerprint)}. "
                                      "Fit with the configuration and data it was written for, or without resume=True.")
            self.seed = int(meta["seed"])
        else:
            self.directory.mkdir(parents=True, exist_ok=True)
            old = [p for p in self.directory.iterdir() if _JSON.match(p.name) or _TENSORS.match(p.name)]
            if old:
                logger.info("Removing %d old checkpoint files from %s.", len(old), self.directory)
                for p in old:
                    p.unlink(missing_ok=True)

    # -- runs
    def begin_run(self) -> int:
        """Index of the next training run of this fit (estimators with restarts train several)."""
        r = self._next_run
        self._next_run += 1
        return r

    def json_path(self, run: int) -> Path:
        return self.directory / f"ckpt-run{run}.json"

    @staticmethod
    def _read_json(path: Path) -> dict:
        try:
            meta = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"The checkpoint {str(path)!r} is unreadable: {exc}") from None
        if not isinstance(meta, dict) or meta.get("format") != "dmshift-checkpoint":
            raise CheckpointError(f"{str(path)!r} is not a dmshift checkpoint.")
        if meta.get("version") != CHECKPOINT_VERSION:
            raise CheckpointError(f"The checkpoint {str(path)!r} has version {meta.get('version')!r}; "
                                  f"this dmshift reads version {CHECKPOINT_VERSION}.")
        return meta

    # -- write
    def save(self, run: int, *, model, optimizer, step_fn_state: dict, best_state, loop: dict) -> Path:
        """Write run ``run``'s state atomically; returns the JSON path."""
        tensors: dict[str, torch.Tensor] = {}
        for k, v in model.state_dict().items():
            tensors[f"model/{k}"] = v
        if best_state is not None:
            for k, v in best_state.items():
                tensors[f"best/{k}"] = v
        tensors["rng/torch"] = torch.get_rng_state()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            for i, s in enumerate(torch.cuda.get_rng_state_all()):
                tensors[f"rng/cuda{i}"] = s
        opt_meta = _pack_optimizer(optimizer, tensors)
        state_meta: dict = {}
        _pack_state(step_fn_state, tensors, state_meta)
        tensors = {k: v.detach().contiguous().cpu().clone() for k, v in tensors.items()}

        step = int(loop["step"])
        t_path = self.directory / f"ckpt-run{run}-step{step:08d}.safetensors"
        _atomic_write(t_path, lambda tmp: save_file(tensors, tmp))
        meta = {"format": "dmshift-checkpoint", "version": CHECKPOINT_VERSION, "run": run, "seed": self.seed,
                "fingerprint": self.fingerprint, "tensors": t_path.name, "tensors_sha256": _sha256(t_path),
                "has_best": best_state is not None, "optimizer": opt_meta, "step_state": state_meta,
                "loop": loop}
        j_path = self.json_path(run)

        def write_json(tmp):
            with open(tmp, "w") as f:
                json.dump(meta, f)
        _atomic_write(j_path, write_json)
        _fsync_dir(self.directory)
        for p in self.directory.iterdir():  # older tensor files of this run
            m = _TENSORS.match(p.name)
            if m and int(m.group(1)) == run and p.name != t_path.name:
                p.unlink(missing_ok=True)
        return j_path

    # -- read
    def load(self, run: int) -> tuple[dict, dict] | None:
        """(meta, tensors) of run ``run``, or None if that run wrote no checkpoint."""
        j_path = self.json_path(run)
        if not j_path.is_file():
            return None
        meta = self._read_json(j_path)
        if meta.get("fingerprint") != self.fingerprint:
            raise CheckpointError(f"The checkpoint {str(j_path)!r} belongs to another configuration: "
                                  f"{_describe_mismatch(meta.get('fingerprint') or {}, self.fingerprint)}.")
        name = str(meta.get("tensors", ""))
        t_path = self.directory / name
        if not _TENSORS.match(name) or not t_path.is_file():
            raise CheckpointError(f"The checkpoint {str(j_path)!r} names a missing tensor file {name!r}.")
        if _sha256(t_path) != meta.get("tensors_sha256"):
            raise CheckpointError(f"The checkpoint tensors {str(t_path)!r} do not match their checksum.")
        try:
            tensors = load_file(str(t_path), device="cpu")
        except (SafetensorError, OSError, RuntimeError) as exc:
            raise CheckpointError(f"The checkpoint tensors {str(t_path)!r} are corrupted: {exc}") from None
        return meta, tensors

    def restore(self, meta: dict, tensors: dict, *, model, optimizer, step_fn_state: dict):
        """Put a loaded checkpoint back into ``model``, ``optimizer``, the generators and the step state.

        Returns the best state dict (or None)."""
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        sd = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
        try:
            model.load_state_dict({k: v.to(device) for k, v in sd.items()})
        except RuntimeError as exc:
            raise CheckpointError(f"The checkpoint's model does not fit this model: {exc}") from None
        _unpack_optimizer(optimizer, meta["optimizer"], tensors)  # load_state_dict moves them to the params' device
        torch.set_rng_state(tensors["rng/torch"])
        cuda = sorted(k for k in tensors if k.startswith("rng/cuda"))
        if cuda and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([tensors[k] for k in cuda][:torch.cuda.device_count()])
        for path, v in step_fn_state.items():  # torch generators live on their own device
            if isinstance(v, torch.Generator) and f"gen/{path}" not in tensors:
                raise CheckpointError(f"the checkpoint holds no state for {path!r}: it was written by other code")
        _unpack_state(step_fn_state, tensors, meta["step_state"])
        if meta.get("has_best"):
            return {k[len("best/"):]: v.to(device) for k, v in tensors.items() if k.startswith("best/")}
        return None
