"""Model files: save a fitted estimator to a folder, load it back, check a path before training.

A model folder holds ``model.safetensors`` (every tensor) and ``config.json`` (the library
version, the estimator class, its parameters, the feature dimension, the fitted state, and
SHA-256 checksums of both files). Nothing is ever unpickled. The files are written and read
by :mod:`dmshift.storage` (atomic replacement, checksums, bounded reading); the estimators
turn themselves into tensors + JSON (:mod:`dmshift.estimators._persistence`). This module
is the public entry to both.
"""

from __future__ import annotations

from .estimators._persistence import check_model_path, load_model, save_model
from .storage import FORMAT_VERSION

__all__ = ["save_model", "load_model", "check_model_path", "FORMAT_VERSION"]
