"""Tests for data-root resolution, the missing-file error and the cache folder."""

from pathlib import Path

import pytest

from dmshift.datasets import _root, cache_dir, data_root, load


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """tmp/shared/data beside a checkout tmp/main/sub; no env var; no package hit."""
    shared = tmp_path / "shared" / "data"
    shared.mkdir(parents=True)
    checkout = tmp_path / "main" / "sub"
    checkout.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.delenv("DMSHIFT_DATA", raising=False)
    monkeypatch.setattr(_root, "_PACKAGE_DIR", elsewhere)
    return shared.resolve(), checkout, elsewhere


def test_argument_beats_env_and_discovery(tree, tmp_path, monkeypatch):
    _, checkout, _ = tree
    env_dir, arg_dir = tmp_path / "env", tmp_path / "arg"
    env_dir.mkdir()
    arg_dir.mkdir()
    monkeypatch.chdir(checkout)
    monkeypatch.setenv("DMSHIFT_DATA", str(env_dir))
    assert data_root(arg_dir) == arg_dir
    assert data_root(str(arg_dir)) == arg_dir


def test_env_beats_discovery(tree, tmp_path, monkeypatch):
    _, checkout, _ = tree
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    monkeypatch.chdir(checkout)
    monkeypatch.setenv("DMSHIFT_DATA", str(env_dir))
    assert data_root() == env_dir


def test_discovery_walks_up_from_cwd(tree, monkeypatch):
    shared, checkout, _ = tree
    monkeypatch.chdir(checkout)
    assert data_root() == shared
    monkeypatch.chdir(checkout.parent)
    assert data_root() == shared


def test_empty_env_is_ignored(tree, monkeypatch):
    shared, checkout, _ = tree
    monkeypatch.chdir(checkout)
    monkeypatch.setenv("DMSHIFT_DATA", "")
    assert data_root() == shared


def test_discovery_walks_up_from_package(tree, tmp_path, monkeypatch):
    shared, _, elsewhere = tree
    monkeypatch.chdir(elsewhere)
    package = tmp_path / "wt" / "src" / "dmshift" / "datasets"
    package.mkdir(parents=True)
    monkeypatch.setattr(_root, "_PACKAGE_DIR", package)
    assert data_root() == shared


def test_nothing_found_says_where_and_how(tmp_path, monkeypatch):
    lone = tmp_path / "lone"
    lone.mkdir()
    monkeypatch.delenv("DMSHIFT_DATA", raising=False)
    monkeypatch.chdir(lone)
    monkeypatch.setattr(_root, "_PACKAGE_DIR", lone)
    with pytest.raises(FileNotFoundError) as info:
        data_root()
    message = str(info.value)
    assert "DMSHIFT_DATA" in message
    assert str(lone / "shared" / "data") in message


def test_bad_env_or_argument_is_reported(tmp_path, monkeypatch):
    missing = tmp_path / "nope"
    monkeypatch.setenv("DMSHIFT_DATA", str(missing))
    with pytest.raises(FileNotFoundError, match="DMSHIFT_DATA"):
        data_root()
    with pytest.raises(FileNotFoundError, match="nope"):
        data_root(missing)


def test_missing_file_error_names_files_and_root(tmp_path):
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "train-images-idx3-ubyte.gz").touch()
    with pytest.raises(FileNotFoundError) as info:
        load("mnist", root=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz") in message
    assert str(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz") in message
    assert str(tmp_path / "mnist" / "train-images-idx3-ubyte.gz") not in message
    assert f"data root: {tmp_path}" in message
    assert "never downloads" in message and "DMSHIFT_DATA" in message


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("coil100", "coil100/coil100_32x32_rgb.npz"),
        ("coil20", "coil20/COIL20.mat"),
        ("usps", "usps/usps.h5"),
        ("orl", "orl_faces/ORL.mat"),
        ("umist", "umist_faces/UMIST.mat"),
        ("ar_faces", "ar_faces/ar_faces_55x40.npz"),
        ("r8", "r8_reuters/r8-test-all-terms.txt.gz"),
        ("reuters21578", "reuters21578_dengcai/Reuters21578.mat"),
        ("trec", "trec_questions/trec.tsv"),
    ],
)
def test_every_loader_names_its_missing_file(tmp_path, name, path):
    with pytest.raises(FileNotFoundError, match="never downloads") as info:
        load(name, root=tmp_path)
    assert str(tmp_path / path) in str(info.value)


def test_cache_dir_env_and_default(tmp_path, monkeypatch):
    monkeypatch.setenv("DMSHIFT_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("DMSHIFT_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == Path(tmp_path) / ".cache" / "dmshift"
