"""Model files: saving never deletes what is not a model, replacement is atomic, loading checks everything."""

import hashlib
import json
import os
import shutil
import warnings

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from dmshift.cli import main
from dmshift.estimators.dms import DMSClustering
from dmshift.io import check_model_path, load_model, save_model
from _tiny import blobs, make
from test_io_safety import reseal

X, _, YP = blobs()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two different fitted models (old, new) and a saved DMS folder."""
    root = tmp_path_factory.mktemp("io")
    old = make("meanshift", bandwidth=2.0).fit(X)
    new = make("meanshift", bandwidth=1.0).fit(X)
    dms = make("dms").fit(X, YP)
    dms.save(root / "dms")
    return {"old": old, "new": new, "dms": root / "dms"}


def _digest(path):
    """SHA-256 over every file name and content under ``path`` (or of the file itself)."""
    h = hashlib.sha256()
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    for p in sorted(path.rglob("*")):
        h.update(str(p.relative_to(path)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def _user_folder(tmp_path):
    d = tmp_path / "proj"
    d.mkdir()
    np.save(d / "X.npy", X)
    (d / "notes.txt").write_text("my notes")
    return d


# ---------------------------------------------------------------------------- never delete what is not a model
@pytest.mark.parametrize("overwrite", [False, True])
def test_save_refuses_a_user_folder_and_leaves_it_unchanged(models, tmp_path, overwrite):
    d = _user_folder(tmp_path)
    before = _digest(d)
    with pytest.raises(ValueError, match=r"'.*proj' is a folder that holds files that are not a dmshift model"):
        models["old"].save(d, overwrite=overwrite)
    assert _digest(d) == before


def test_save_refuses_a_folder_with_a_foreign_config(models, tmp_path):
    d = tmp_path / "hf"
    d.mkdir()
    (d / "config.json").write_text('{"model_type": "bert"}')
    save_file({"w": torch.zeros(2)}, str(d / "model.safetensors"))
    before = _digest(d)
    with pytest.raises(ValueError, match="not a dmshift model config"):
        save_model(models["old"], d, overwrite=True)
    assert _digest(d) == before


@pytest.mark.parametrize("overwrite", [False, True])
def test_save_refuses_an_existing_file(models, tmp_path, overwrite):
    f = tmp_path / "X3.npy"
    np.save(f, X)
    before = _digest(f)
    with pytest.raises(ValueError, match="X3.npy' exists and is not a dmshift model folder: it is a file"):
        models["old"].save(f, overwrite=overwrite)
    assert _digest(f) == before and sorted(p.name for p in tmp_path.iterdir()) == ["X3.npy"]


def test_save_over_a_model_needs_overwrite(models, tmp_path):
    path = tmp_path / "m"
    models["old"].save(path)
    with pytest.raises(ValueError, match="already holds a dmshift model: pass overwrite=True"):
        models["new"].save(path)
    assert load_model(path, device="cpu").bandwidth == 2.0
    models["new"].save(path, overwrite=True)
    assert load_model(path, device="cpu").bandwidth == 1.0
    models["old"].save(path, overwrite=True)  # the tensor file alternates between two names
    assert load_model(path, device="cpu").bandwidth == 2.0
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]


def test_save_fills_an_empty_folder(models, tmp_path):
    path = tmp_path / "empty"
    path.mkdir()
    models["old"].save(path)
    assert load_model(path, device="cpu").bandwidth == 2.0


def test_check_model_path_names_the_path_and_checks_overwrite(models, tmp_path):
    assert check_model_path(tmp_path / "new", overwrite=False) == tmp_path / "new"
    with pytest.raises(ValueError, match="'overwrite' parameter must be a bool"):
        check_model_path(tmp_path / "new", overwrite="yes")


# ---------------------------------------------------------------------------- crash safety
class _Crash(BaseException):
    """The process dies: not caught by ``except OSError``/``except Exception``."""


_STEPS = ("replace", "rename", "remove", "unlink", "rmdir", "mkdir", "fsync")


def _crash_at(monkeypatch, k):
    """From the k-th filesystem step on, every step fails (a dead process does nothing more)."""
    count = [0]
    for name in _STEPS:
        real = getattr(os, name)

        def step(*a, _real=real, **kw):
            count[0] += 1
            if count[0] > k:
                raise _Crash()
            return _real(*a, **kw)
        monkeypatch.setattr(os, name, step)
    return count


def _steps_of_a_save(monkeypatch, tmp_path, setup, est):
    path = setup(tmp_path / "count")
    with monkeypatch.context() as m:
        count = _crash_at(m, 10**9)
        est.save(path, overwrite=True)
    return count[0]


@pytest.mark.parametrize("existing", [True, False])
def test_a_crash_at_any_step_leaves_the_old_or_the_new_model(models, tmp_path, monkeypatch, existing):
    template = tmp_path / "template"
    models["old"].save(template)

    def setup(path):
        if existing:
            shutil.copytree(template, path)
        return path

    n = _steps_of_a_save(monkeypatch, tmp_path, setup, models["new"])
    assert n >= 4
    seen = set()
    for k in range(n):
        path = setup(tmp_path / f"k{k}")
        with monkeypatch.context() as m:
            _crash_at(m, k)
            with pytest.raises(_Crash):
                models["new"].save(path, overwrite=True)
        if not existing and not path.exists():
            seen.add("none")
        else:
            seen.add(load_model(path, device="cpu").bandwidth)
        models["new"].save(path, overwrite=True)  # what a crash left is cleaned up by the next save
        assert load_model(path, device="cpu").bandwidth == 1.0
        assert sorted(p.name for p in path.iterdir()) in (["config.json", "model.safetensors"],
                                                          ["config.json", "model.1.safetensors"])
    assert seen == ({2.0, 1.0} if existing else {"none", 1.0})


# ---------------------------------------------------------------------------- damaged files
def test_a_byte_flip_anywhere_in_the_weights_is_refused(models, tmp_path):
    size = (models["dms"] / "model.safetensors").stat().st_size
    rng = np.random.default_rng(0)
    for i, offset in enumerate(rng.choice(size, 20, replace=False)):
        d = tmp_path / f"f{i}"
        shutil.copytree(models["dms"], d)
        data = bytearray((d / "model.safetensors").read_bytes())
        data[offset] ^= 0x01
        (d / "model.safetensors").write_bytes(bytes(data))
        with pytest.raises(ValueError, match="do not match their checksum"):
            load_model(d, device="cpu")


def test_an_edited_config_is_refused(models, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(models["dms"], d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["params"]["max_iter"] = 6
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="config .* does not match its checksum"):
        load_model(d, device="cpu")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_non_finite_weight_is_refused(models, tmp_path, value):
    d = tmp_path / "m"
    shutil.copytree(models["dms"], d)
    t = load_file(str(d / "model.safetensors"))
    key = next(k for k in t if k.startswith("kernel.") and t[k].is_floating_point())
    t[key].view(-1)[0] = value
    save_file(t, str(d / "model.safetensors"))
    reseal(d)
    with pytest.raises(ValueError, match=f"tensor '{key}' holds NaN or infinite values"):
        load_model(d, device="cpu")


def _set(path):
    def edit(cfg):
        *head, last = path
        node = cfg
        for k in head:
            node = node[k]
        node[last] = edit.value
    return edit


def _drop(path):
    def edit(cfg):
        *head, last = path
        node = cfg
        for k in head:
            node = node[k]
        del node[last]
    return edit


BAD_CONFIG = {
    "scale_zero": (("state", "scale"), 0.0, r"scale must be finite and positive. Got array\(\[0\."),
    "scale_nan": (("state", "scale"), float("nan"), r"scale must be finite and positive. Got array\(\[nan"),
    "scale_negative": (("state", "scale"), -1.0, r"scale must be finite and positive. Got array\(\[-1\."),
    "scale_wrong_length": (("state", "scale"), [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], r"scale must be one number or"),
    "scale_text": (("state", "scale"), "1", r"scale must be one number or"),
    "memory_budget": (("params", "memory_budget"), -5, r"invalid config .*'memory_budget'"),
    "kernel": (("params", "kernel"), "cubic", r"invalid config .*'kernel'"),
    "unknown_param": (("params", "evil"), 1, r"has no parameter 'evil'"),
    "n_features_huge": (("n_features_in",), 10**30, r"'n_features_in' must be an int in \[1, \d+\]"),
    "n_features_text": (("n_features_in",), "2", r"'n_features_in' must be an int"),
    "n_samples_float": (("n_samples_fit",), 40.0, r"'n_samples_fit' must be an int"),
    "hidden_huge": (("state", "hidden"), [10**12, 10**12], r"'hidden' must hold ints in \[1, \d+\]"),
    "hidden_text": (("state", "hidden"), "big", r"'hidden' must hold ints"),
    "state_list": (("state",), [1], r"'params' and 'state' must be objects"),
    "estimator_number": (("estimator",), 3, r"unknown estimator 3"),
    "weights_name": (("weights",), "../../etc/passwd", r"'weights' must be one of"),
    "version_bool": (("format_version",), True, r"has format version True"),
}
MISSING = {
    "no_state_scale": (("state", "scale"), r"scale must be one number or 2 numbers. Got None"),
    "no_state_hidden": (("state", "hidden"), r"invalid config .*'hidden'"),
    "no_n_features": (("n_features_in",), r"'n_features_in' must be an int"),
    "no_params": (("params",), r"'params' and 'state' must be objects"),
    "no_estimator": (("estimator",), r"unknown estimator None"),
    "no_checksum": (("weights_sha256",), r"do not match their checksum"),
}


def _edited(models, tmp_path, edit):
    d = tmp_path / "m"
    shutil.copytree(models["dms"], d)
    cfg = json.loads((d / "config.json").read_text())
    edit(cfg)
    (d / "config.json").write_text(json.dumps(cfg))
    reseal(d)
    return d


@pytest.mark.parametrize("case", list(BAD_CONFIG))
def test_each_bad_config_field_gives_a_value_error(models, tmp_path, case):
    path, value, msg = BAD_CONFIG[case]
    edit = _set(path)
    edit.value = value
    d = _edited(models, tmp_path, edit)
    with pytest.raises(ValueError, match=msg):
        load_model(d, device="cpu")


@pytest.mark.parametrize("case", list(MISSING))
def test_each_missing_config_field_gives_a_value_error(models, tmp_path, case):
    path, msg = MISSING[case]
    d = _edited(models, tmp_path, _drop(path))
    if case == "no_checksum":  # reseal recomputed it: drop it again
        cfg = json.loads((d / "config.json").read_text())
        del cfg["weights_sha256"]
        cfg.pop("config_sha256")
        canonical = json.dumps(cfg, sort_keys=True, separators=(",", ":")).encode()
        cfg["config_sha256"] = hashlib.sha256(canonical).hexdigest()
        (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=msg):
        load_model(d, device="cpu")


def test_deep_nesting_gives_a_value_error(models, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(models["dms"], d)
    text = (d / "config.json").read_text()
    deep = "[" * 100_000 + "]" * 100_000
    (d / "config.json").write_text(text.replace('"state": {', f'"deep": {deep}, "state": {{', 1))
    with pytest.raises(ValueError, match="nests 100001 levels deep, expected at most 64"):
        load_model(d, device="cpu")


def test_a_config_claiming_a_gigabyte_is_refused_unread(models, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(models["dms"], d)
    with open(d / "config.json", "r+b") as f:  # a sparse 1 GiB file: nothing is written to disk
        f.truncate(1 << 30)
    with pytest.raises(ValueError, match=r"has 1073741824 bytes, expected at most"):
        load_model(d, device="cpu")


@pytest.mark.parametrize("text", ["[]", '"x"', "12", "{", '{"library": "dmshift", "format_version": 2, "a": 1e999999}',
                                  '{"library": "dmshift", "n": ' + "9" * 10_000 + "}"])
def test_config_that_is_not_an_object_gives_a_value_error(models, tmp_path, text):
    d = tmp_path / "m"
    shutil.copytree(models["dms"], d)
    (d / "config.json").write_text(text)
    with pytest.raises(ValueError, match="config"):
        load_model(d, device="cpu")


def test_a_model_saved_before_checksums_loads_with_a_warning(models, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(models["dms"], d)
    cfg = json.loads((d / "config.json").read_text())
    for key in ("weights", "weights_sha256", "config_sha256"):
        del cfg[key]
    cfg["format_version"] = 1
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.warns(UserWarning, match="saved by an older dmshift, without checksums"):
        m = DMSClustering.load(d, device="cpu")
    np.testing.assert_array_equal(m.predict(X), load_model(models["dms"], device="cpu").predict(X))
    t = load_file(str(d / "model.safetensors"))  # the other checks still run on such a model
    t["mean"][0] = float("nan")
    save_file(t, str(d / "model.safetensors"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="NaN or infinite"):
            load_model(d, device="cpu")


def test_a_model_resaved_over_an_old_format_folder(models, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(models["dms"], d)
    cfg = json.loads((d / "config.json").read_text())
    for key in ("weights", "weights_sha256", "config_sha256"):
        del cfg[key]
    cfg["format_version"] = 1
    (d / "config.json").write_text(json.dumps(cfg))
    models["old"].save(d, overwrite=True)
    assert load_model(d, device="cpu").bandwidth == 2.0
    assert sorted(p.name for p in d.iterdir()) == ["config.json", "model.1.safetensors"]


# ---------------------------------------------------------------------------- the command line
def _fit_args(tmp_path, out, *extra):
    return ["fit", str(tmp_path / "proj" / "X.npy"), "--labels", str(tmp_path / "proj" / "y.npy"), "-o", str(out),
            "--param", "max_steps=2", "--param", "n_seeds=8", "--param", "max_iter=5", "--param", "batch_size=4",
            "--param", "instance_size=[8,12]", "--device", "cpu", "-q", *extra]


@pytest.fixture
def proj(tmp_path, monkeypatch):
    d = _user_folder(tmp_path)
    np.save(d / "y.npy", YP)
    return d


def test_cli_fit_into_a_user_folder_fails_before_training_and_changes_nothing(proj, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(DMSClustering, "fit", lambda *a, **k: pytest.fail("trained before checking -o"))
    before = _digest(proj)
    for extra in ((), ("--overwrite",)):
        assert main(_fit_args(tmp_path, proj, *extra)) != 0
        assert f"'{proj}' is a folder that holds files that are not a dmshift model" in capsys.readouterr().err
    assert main(_fit_args(tmp_path, proj / "X.npy", "--overwrite")) != 0
    assert "X.npy' exists and is not a dmshift model folder" in capsys.readouterr().err
    assert _digest(proj) == before


def test_cli_fit_over_a_model_needs_overwrite(proj, tmp_path, capsys):
    out = tmp_path / "model"
    assert main(_fit_args(tmp_path, out)) == 0
    first = _digest(out)
    assert main(_fit_args(tmp_path, out)) != 0
    assert "already holds a dmshift model: pass overwrite=True (--overwrite" in capsys.readouterr().err
    assert _digest(out) == first
    assert main(_fit_args(tmp_path, out, "--overwrite")) == 0
    assert isinstance(load_model(out, device="cpu"), DMSClustering)

