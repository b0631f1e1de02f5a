"""Loaders for text: Reuters R8, Reuters-21578 (term counts) and TREC questions.

Each returns dense float32 features, tf-idf of the 2,000 most frequent terms
by default or MiniLM sentence embeddings (raw-text sets only), cached on disk
(see :func:`cache_dir`). The raw text is read locally; nothing is downloaded.
"""

from __future__ import annotations

import csv
import gzip
import os
from pathlib import Path

import numpy as np
import scipy.io

from . import _text_features
from ._base import Dataset, encode
from ._cache import cached, source_stamp
from ._root import data_root, require_files

# Bump when a change to the code alters the features, to invalidate caches.
FEATURE_VERSION = 1
REUTERS21578_CLASSES = 65


def _check_features(loader: str, features, allowed: tuple[str, ...]) -> None:
    if features not in allowed:
        raise ValueError(
            f"The 'features' parameter of {loader} must be one of {list(allowed)}; "
            f"got {features!r}."
        )


def _text_features_cached(
    name: str, texts: list[str], features: str, sources: list[Path], device
) -> np.ndarray:
    params = {"version": FEATURE_VERSION, "sources": source_stamp(sources)}
    if features == "tfidf":
        params["max_features"] = _text_features.MAX_FEATURES
        return cached(
            name, "tfidf", params, lambda: _text_features.tfidf_texts(texts), len(texts)
        )
    params["model"] = _text_features.MINILM_MODEL
    params["bundle"] = _text_features.minilm_version()
    return cached(
        name, "minilm", params,
        lambda: _text_features.embed_minilm(texts, device=device), len(texts),
    )


def load_r8(
    root: str | os.PathLike | None = None, *, features: str = "tfidf",
    device: str | None = None,
) -> Dataset:
    """Load Reuters R8 (7,674 newswire documents, 8 topics), train then test.

    Parameters
    ----------
    root : str or path-like, optional
        Data root; see :func:`data_root`. Reads ``r8_reuters/r8-*-all-terms.txt.gz``.
    features : {"tfidf", "minilm"}, default="tfidf"
        tf-idf of the 2,000 most frequent terms, or 384-d MiniLM embeddings
        (needs ``pip install "dmshift[text]"``).
    device : str, optional
        Torch device for MiniLM; ignored for tf-idf.

    Returns
    -------
    Dataset
        ``X`` of shape (7674, 2000) or (7674, 384), float32. Task: ``topic``
        (8 classes, alphabetical: acq, crude, earn, grain, interest,
        money-fx, ship, trade; very unbalanced).
    """
    _check_features("load_r8", features, ("tfidf", "minilm"))
    root = data_root(root)
    sources = require_files(
        root, "r8_reuters", "r8-train-all-terms.txt.gz", "r8-test-all-terms.txt.gz"
    )
    topics, texts = [], []
    for path in sources:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    topic, text = line.rstrip("\r\n").split("\t", 1)
                    topics.append(topic)
                    texts.append(text)
    topic, names = encode(topics)
    X = _text_features_cached("r8", texts, features, sources, device)
    return Dataset(
        name="r8", X=X, y=topic, tasks={"topic": topic}, default_task="topic",
        class_names={"topic": names},
    )


def load_trec(
    root: str | os.PathLike | None = None, *, features: str = "tfidf",
    device: str | None = None,
) -> Dataset:
    """Load the TREC question set (5,952 questions, 6 coarse / 50 fine classes).

    Parameters
    ----------
    root : str or path-like, optional
        Data root; see :func:`data_root`. Reads ``trec_questions/trec.tsv``.
    features : {"tfidf", "minilm"}, default="tfidf"
        tf-idf of the 2,000 most frequent terms, or 384-d MiniLM embeddings
        (needs ``pip install "dmshift[text]"``).
    device : str, optional
        Torch device for MiniLM; ignored for tf-idf.

    Returns
    -------
    Dataset
        Rows in file order (5,452 train then 500 test). Tasks: ``coarse``
        (6, default) and ``fine`` (50, named ``COARSE:fine``), both numbered
        in alphabetical order of the class names.
    """
    _check_features("load_trec", features, ("tfidf", "minilm"))
    root = data_root(root)
    (path,) = require_files(root, "trec_questions", "trec.tsv")
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    coarse, coarse_names = encode([r["coarse"] for r in rows])
    fine, fine_names = encode([r["fine"] for r in rows])
    texts = [r["text"] for r in rows]
    X = _text_features_cached("trec", texts, features, [path], device)
    return Dataset(
        name="trec", X=X, y=coarse, tasks={"coarse": coarse, "fine": fine},
        default_task="coarse", class_names={"coarse": coarse_names, "fine": fine_names},
    )


def load_reuters21578(
    root: str | os.PathLike | None = None, *, top_k: int | None = 10,
    features: str = "tfidf",
) -> Dataset:
    """Load Deng Cai's Reuters-21578 term counts, keeping the largest topics.

    Parameters
    ----------
    root : str or path-like, optional
        Data root; see :func:`data_root`. Reads
        ``reuters21578_dengcai/Reuters21578.mat``.
    top_k : int or None, default=10
        Keep the documents of the ``top_k`` largest topics, relabelled 0..k-1
        by decreasing size (ties by original label). ``None`` keeps all 65.
    features : {"tfidf"}, default="tfidf"
        tf-idf of the 2,000 columns with the largest total count among the
        kept documents. No raw text ships with this set, so no embeddings.

    Returns
    -------
    Dataset
        ``X`` of shape (n_kept, 2000) float32 (7,285 documents for top 10).
        Task: ``topic``.
    """
    _check_features("load_reuters21578", features, ("tfidf",))
    if top_k is not None and (
        isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer))
        or not 1 <= top_k <= REUTERS21578_CLASSES
    ):
        raise ValueError(
            f"The 'top_k' parameter of load_reuters21578 must be None or an int in "
            f"[1, {REUTERS21578_CLASSES}]; got {top_k!r}."
        )
    root = data_root(root)
    (path,) = require_files(root, "reuters21578_dengcai", "Reuters21578.mat")
    mat = scipy.io.loadmat(path)
    original = mat["gnd"].ravel().astype(np.int64)
    labels, sizes = np.unique(original, return_counts=True)
    by_size = labels[np.argsort(-sizes, kind="stable")]
    kept = by_size if top_k is None else by_size[:top_k]
    rank = np.full(original.max() + 1, -1, dtype=np.int64)
    rank[kept] = np.arange(kept.size)
    topic_all = rank[original]
    rows = np.flatnonzero(topic_all >= 0)
    counts = mat["fea"].tocsr()[rows]
    params = {
        "version": FEATURE_VERSION, "sources": source_stamp([path]), "top_k": top_k,
        "max_features": _text_features.MAX_FEATURES,
    }
    X = cached(
        "reuters21578", "tfidf", params,
        lambda: _text_features.tfidf_counts(counts), rows.size,
    )
    topic = topic_all[rows]
    return Dataset(
        name="reuters21578", X=X, y=topic, tasks={"topic": topic}, default_task="topic",
        class_names={"topic": tuple(f"topic {c}" for c in kept)},
    )
