"""Method names of the ``dmshift`` command and their estimator parameters.

``METHODS`` maps each name accepted by ``--method`` to the import path of its estimator
class. Classes are imported only when asked for, so one method whose module is missing
gives a clear error without breaking the others. ``--param key=value`` options become
constructor arguments; unknown keys are refused with the list of valid ones.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json

from ._files import UserError

__all__ = ["METHODS", "resolve_method", "parse_params", "make_estimator", "method_name_of"]

#: name on the command line -> "module:Class"
METHODS: dict[str, str] = {
    "dms": "dmshift.estimators.dms:DMSClustering",
    "kcl": "dmshift.estimators.kcl:KCLClustering",
    "mcl": "dmshift.estimators.mcl:MCLClustering",
    "ddc": "dmshift.estimators.ddc:DDCClustering",
    "mmdc": "dmshift.estimators.mmdc:MMDCClustering",
    "l2c": "dmshift.estimators.l2c:L2CClustering",
    "meanshift": "dmshift.estimators.meanshift:MeanShift",
    "label-spreading": "dmshift.estimators.label_spreading:LabelSpreadingClustering",
    "ss-kmeans": "dmshift.estimators.ss_kmeans:SemiSupervisedKMeans",
}


def resolve_method(name: str) -> type:
    """The estimator class of a method name, imported now."""
    if name not in METHODS:
        raise UserError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    module, cls = METHODS[name].split(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module.startswith(exc.name):
            raise UserError(f"method {name!r} ({module}.{cls}) is not part of this dmshift installation") from None
        raise UserError(f"method {name!r} needs the package {exc.name!r}, which is not installed") from None
    try:
        return getattr(mod, cls)
    except AttributeError:
        raise UserError(f"method {name!r}: {module} has no class {cls}") from None


def method_name_of(cls: type) -> str:
    """The command-line name of an estimator class (its class name when it has none)."""
    for name, path in METHODS.items():
        if path.split(":")[1] == cls.__name__:
            return name
    return cls.__name__


def _parse_value(text: str):
    """A JSON literal (``3``, ``0.5``, ``true``, ``null``, ``[64, 32]``), a Python literal, else the string."""
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    return text


def _tuples(v):
    return tuple(_tuples(x) for x in v) if isinstance(v, list) else v


def parse_params(items: list[str] | None) -> dict:
    """``["max_steps=30", "hidden=[64,32]"]`` -> ``{"max_steps": 30, "hidden": (64, 32)}``.

    Lists become tuples, the form estimators use for sizes and ranges.
    """
    params: dict = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"--param {item!r}: expected KEY=VALUE, e.g. --param max_steps=200")
        if key in params:
            raise UserError(f"--param {key} is given twice")
        params[key] = _tuples(_parse_value(value.strip()))
    return params


def valid_params(cls: type) -> list[str]:
    """Constructor parameters of an estimator class, in signature order."""
    sig = inspect.signature(cls.__init__)
    return [p.name for p in sig.parameters.values()
            if p.name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def make_estimator(name: str, params: dict, *, seed=None, device=None, progress: bool = False):
    """An estimator of method ``name`` with ``params``; the global options fill in what they name.

    ``seed`` sets ``random_state``, ``device`` sets ``device`` and ``progress`` sets
    ``verbose`` (the progress bar), each only when the estimator has that parameter and
    ``params`` does not already give it.
    """
    cls = resolve_method(name)
    valid = valid_params(cls)
    unknown = [k for k in params if k not in valid]
    if unknown:
        raise UserError(f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for "
                        f"method {name!r}; valid parameters: {', '.join(valid)}")
    kwargs = dict(params)
    for key, value in (("random_state", seed), ("device", device), ("verbose", progress)):
        if value is not None and key in valid and key not in kwargs:
            kwargs[key] = value
    return cls(**kwargs)
