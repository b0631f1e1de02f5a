"""Model folders are read as safetensors + JSON only: tampered files give clear errors, never run code.

The edits below re-seal the checksums (as someone writing files by hand could), so that the
checks behind the checksums are tested; ``tests/test_io.py`` tests the checksums themselves.
"""

import hashlib
import json
import os
import pickle
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from dmshift.io import load_model
from _tiny import SUPERVISED, TINY, blobs, make

X, _, YP = blobs()


class _Payload:
    """Unpickling this would create a marker file: the tests check that it never appears."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """One saved model folder per estimator."""
    root = tmp_path_factory.mktemp("models")
    out = {}
    for name in TINY:
        est = make(name)
        est.fit(X) if name not in SUPERVISED else est.fit(X, YP)
        est.save(root / name)
        out[name] = root / name
    return out


def _copy(saved, name, tmp_path):
    dst = tmp_path / name
    shutil.copytree(saved[name], dst)
    return dst


def reseal(folder):
    """Recompute the checksums of a hand-edited model folder."""
    cfg = json.loads((folder / "config.json").read_text())
    cfg.pop("config_sha256", None)
    w = folder / str(cfg.get("weights", "model.safetensors"))
    if w.is_file():
        cfg["weights_sha256"] = hashlib.sha256(w.read_bytes()).hexdigest()
    canonical = json.dumps(cfg, sort_keys=True, separators=(",", ":")).encode()
    cfg["config_sha256"] = hashlib.sha256(canonical).hexdigest()
    (folder / "config.json").write_text(json.dumps(cfg))


def _edit_config(folder, fn):
    cfg = json.loads((folder / "config.json").read_text())
    fn(cfg)
    (folder / "config.json").write_text(json.dumps(cfg))
    reseal(folder)


def _edit_tensors(folder, fn):
    t = load_file(str(folder / "model.safetensors"))
    fn(t)
    save_file(t, str(folder / "model.safetensors"))
    reseal(folder)


@pytest.mark.parametrize("name", list(TINY))
def test_round_trip(saved, name):
    est = load_model(saved[name], device="cpu")
    assert type(est).__name__ == TINY[name][0].__name__
    np.testing.assert_array_equal(est.predict(X), est.predict(X))


def _first_weight(t):
    return next(k for k, v in t.items() if v.dim() == 2 and v.dtype.is_floating_point)


TAMPER = {
    "unknown_estimator": (lambda f: _edit_config(f, lambda c: c.update(estimator="os.system")),
                          r"unknown estimator 'os.system'; known: \["),
    "estimator_not_a_name": (lambda f: _edit_config(f, lambda c: c.update(estimator=["DMSClustering"])),
                             "unknown estimator"),
    "format_version": (lambda f: _edit_config(f, lambda c: c.update(format_version=99)),
                       "has format version 99; this dmshift reads versions 1, 2"),
    "not_dmshift": (lambda f: _edit_config(f, lambda c: c.update(library="other")), "is not a dmshift model config"),
    "config_not_json": (lambda f: (f / "config.json").write_text("{'python': True}"), "config .* is corrupted"),
    "params_not_object": (lambda f: _edit_config(f, lambda c: c.update(params=[1, 2])), "is corrupted: 'params'"),
    "extra_tensor": (lambda f: _edit_tensors(f, lambda t: t.update(evil=torch.zeros(3))),
                     r"do not match a \w+: unexpected tensors \['evil'\]"),
    "missing_tensor": (lambda f: _edit_tensors(f, lambda t: t.pop(_first_weight(t))), "incomplete|missing|does not match"),
    "wrong_shape": (lambda f: _edit_tensors(f, lambda t: t.update({_first_weight(t): torch.zeros(5, 7)})),
                    "does not match|shape"),
    "wrong_shape_labels": (lambda f: _edit_tensors(f, lambda t: t.update(labels=torch.zeros(3, dtype=torch.int64))),
                           r"tensor 'labels' has shape \(3,\), expected \(40,\)|'n_samples_fit' must be an int in \[1, \d+\]"),
    "n_features": (lambda f: _edit_config(f, lambda c: c.update(n_features_in=7)), "does not match|expected"),
    "weights_truncated": (lambda f: ((f / "model.safetensors").write_bytes(
        (f / "model.safetensors").read_bytes()[:100]), reseal(f)), "truncated or corrupted"),
    "weights_missing": (lambda f: (f / "model.safetensors").unlink(), "model.safetensors is missing"),
}


@pytest.mark.parametrize("case", list(TAMPER))
@pytest.mark.parametrize("name", list(TINY))
def test_tampered_model_gives_clear_error(saved, name, case, tmp_path):
    folder = _copy(saved, name, tmp_path)
    tamper, msg = TAMPER[case]
    tamper(folder)
    if case == "wrong_shape_labels" and "labels" not in load_file(str(folder / "model.safetensors")):
        pytest.skip("this estimator stores no labels tensor")
    with pytest.raises(ValueError, match=msg):
        load_model(folder, device="cpu")


@pytest.mark.parametrize("name", ["dms", "kcl"])
def test_pickle_files_are_never_loaded(saved, name, tmp_path):
    marker = tmp_path / "pwned"
    folder = _copy(saved, name, tmp_path)
    payload = pickle.dumps(_Payload(marker))
    for extra in ("model.pkl", "pytorch_model.bin", "model.pt", "config.pkl"):
        (folder / extra).write_bytes(payload)
    load_model(folder, device="cpu")  # loads fine: files it does not know are never opened
    assert not marker.exists()
    (folder / "model.safetensors").write_bytes(payload)  # a pickle where the weights should be
    reseal(folder)
    with pytest.raises(ValueError, match="truncated or corrupted"):
        load_model(folder, device="cpu")
    torch.save({"kernel.first.weight": torch.zeros(2)}, folder / "model.safetensors")  # a torch.save file
    reseal(folder)
    with pytest.raises(ValueError, match="truncated or corrupted"):
        load_model(folder, device="cpu")
    assert not marker.exists()


def test_tampered_param_value_is_refused(saved, tmp_path):
    folder = _copy(saved, "dms", tmp_path)
    _edit_config(folder, lambda c: c["params"].update(kernel="__import__('os')"))
    with pytest.raises(ValueError, match="invalid config .*'kernel'"):
        load_model(folder, device="cpu")
