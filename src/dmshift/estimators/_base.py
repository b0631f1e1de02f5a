"""What every dmshift estimator shares: input checks, device and seed handling, save/load.

Estimators follow scikit-learn: keyword-only ``__init__`` that only stores, checks in
``fit``, learned state ending in ``_``, NumPy in and out. Every public subclass registers
itself (by name) as a class a model file may name; subclasses implement
``_export_state`` / ``_import_state`` and check a stored state in ``_check_saved_state``, so
:mod:`~dmshift.estimators._persistence` can write them as safetensors + JSON and read them
back.
"""

from __future__ import annotations

import os

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from .._validation import check_positive_int, resolve_device, resolve_seed
from ..preprocessing import scaled, unscaled  # noqa: F401  (the peers' standardisation, shared with DMS)
from ..scaling import check_standardize, fit_standardization
from ._registry import register

__all__ = ["BaseClustering", "fit_scaled", "scaled", "unscaled"]


class BaseClustering(ClusterMixin, BaseEstimator):
    """Shared machinery of dmshift's clustering estimators (not an estimator itself)."""

    #: does ``fit`` need side information (labels or pairs)?
    _needs_side_info: bool = True
    #: the current fit's checkpointer (set by :meth:`_begin_checkpoint`; None: no checkpoints)
    _checkpoint = None
    #: parameters that may change between a checkpointed fit and its resumption
    _resume_may_change: tuple = ("checkpoint_dir", "checkpoint_every", "verbose", "device", "time_limit", "max_steps")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        register(cls)  # a model file may name it

    def _check_X(self, X, *, reset: bool) -> np.ndarray:
        """Validated dense float32/float64 (n, d) array; sparse input is densified.

        With ``reset`` (in ``fit``) the parameters every estimator shares are checked too
        (:meth:`_check_shared_params`).
        """
        if reset:
            self._check_shared_params()
        _check_numeric(X)
        X = validate_data(self, X, reset=reset, accept_sparse=("csr", "csc", "coo"),
                          dtype=(np.float32, np.float64), ensure_min_samples=1 if not reset else 2,
                          ensure_all_finite=True)
        if sp.issparse(X):
            X = X.toarray()
        return X

    #: whether ``standardize="auto"`` (a choice made at fit time) is accepted
    _auto_scaling = False

    def _check_shared_params(self) -> None:
        """``standardize`` and ``verbose``, for the estimators that take them."""
        if hasattr(self, "standardize") and not (self.standardize == "auto" and self._auto_scaling):
            check_standardize(self.standardize)
        verbose = getattr(self, "verbose", False)
        if not isinstance(verbose, (bool, np.bool_)):
            raise ValueError(f"The 'verbose' parameter must be a bool. Got {verbose!r} instead.")

    def _setup(self) -> tuple[torch.device, int]:
        """Resolve ``device`` and ``random_state`` once per fit (a resumed fit takes its checkpoint's seed)."""
        device = resolve_device(getattr(self, "device", "auto"))
        ckpt = getattr(self, "_checkpoint", None)
        if ckpt is not None and ckpt.seed_claimed:
            ckpt = None  # left by an earlier fit: it has nothing to say about this one
        if ckpt is not None:
            ckpt.seed_claimed = True
            if ckpt.seed is not None:
                return device, ckpt.seed
        seed = resolve_seed(getattr(self, "random_state", None))
        if ckpt is not None:
            ckpt.seed = seed
        return device, seed

    def _begin_checkpoint(self, X, y=None, pairs=None, *, resume=False) -> None:
        """Set ``self._checkpoint`` for this fit: a :class:`~dmshift.checkpoint.Checkpointer` or None.

        Called by ``fit`` after ``X`` is validated and before :meth:`_setup`; the training
        loop writes to it every ``checkpoint_every`` steps when ``checkpoint_dir`` is set.
        """
        from ..checkpoint import Checkpointer, fingerprint_of
        self._checkpoint = None
        directory = getattr(self, "checkpoint_dir", None)
        if not isinstance(resume, (bool, np.bool_)):
            raise ValueError(f"The 'resume' parameter of fit must be a bool. Got {resume!r} instead.")
        if directory is None:
            if resume:
                raise ValueError("The 'resume' parameter of fit needs the 'checkpoint_dir' parameter: set "
                                 "checkpoint_dir to the folder the interrupted fit wrote to. Got checkpoint_dir=None "
                                 "instead.")
            return
        if not isinstance(directory, (str, os.PathLike)) or not str(directory):
            raise ValueError(f"The 'checkpoint_dir' parameter must be a folder path or None. Got {directory!r} instead.")
        check_positive_int("checkpoint_every", getattr(self, "checkpoint_every", 100))
        fp = fingerprint_of(self, X, y, pairs, ignore=self._resume_may_change)
        self._checkpoint = Checkpointer(directory, int(self.checkpoint_every), fp, resume=bool(resume))

    def fit_predict(self, X, y=None, **kwargs):
        """Fit and return ``labels_`` (NOISE = -1 for points no cluster claims)."""
        return self.fit(X, y, **kwargs).labels_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # sparse input is accepted and densified
        return tags

    def _check_fitted(self):
        check_is_fitted(self, "labels_")

    # ---- persistence: subclasses fill _export_state, _import_state and _check_saved_state
    def _export_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        raise NotImplementedError

    def _import_state(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        raise NotImplementedError

    def _check_loaded_params(self) -> None:
        """The parameter checks ``fit`` runs, for a model read from a file (``n_features_in_`` is set)."""
        self._check_params()

    def _check_saved_state(self, tensors: dict[str, torch.Tensor], meta: dict, *, n_samples: int) -> None:
        """Refuse a stored state that does not fit together, before any of it is used.

        Called with the parameters set and checked; raises ``ValueError`` (or ``KeyError``
        / ``TypeError`` for a missing or mistyped entry, which the loader reports as one).
        Subclasses extend it with their own tensors and scales.
        """
        from ._persistence import check_saved_shape
        check_saved_shape(tensors, "labels", (n_samples,))
        if tensors["labels"].is_floating_point():
            raise ValueError("tensor 'labels' must hold integers")

    def save(self, path, *, overwrite: bool = False) -> None:
        """Write the fitted model to folder ``path`` (safetensors weights + JSON config).

        Parameters
        ----------
        path : str or path-like
            A new or empty folder, or a dmshift model folder to replace (``overwrite=True``).
        overwrite : bool, default=False
            Replace a dmshift model already at ``path``. A file, or a folder holding anything
            else, is never replaced: that gives a ``ValueError``. The write is atomic.
        """
        from ._persistence import save_model
        save_model(self, path, overwrite=overwrite)

    @classmethod
    def load(cls, path, *, device: str = "auto"):
        """Read a model written by :meth:`save` (checked as :func:`dmshift.io.load_model` does)."""
        from ._persistence import load_model
        model = load_model(path, device=device)
        if not isinstance(model, cls):
            raise ValueError(f"The model at {path!s} is a {type(model).__name__}, not a {cls.__name__}.")
        return model


def fit_scaled(X: np.ndarray, mode, device: torch.device, *,
               image: bool = False) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """Fit the standardisation ``mode`` (the ``standardize`` parameter) on ``X`` and apply it.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Checked input, float32 or float64.
    mode : bool or str
        See :func:`dmshift.scaling.check_standardize`.
    device : torch.device
    image : bool, default=False
        The rows are images (``True`` then means one mean and scale over all pixels).

    Returns
    -------
    mean, scale : ndarray of shape (n_features,), float64
    Xs : tensor of shape (n_samples, n_features), float32 on ``device``
    """
    mean, scale = fit_standardization(X, check_standardize(mode, image=image))
    return mean, scale, scaled(X, mean, scale, device)


def _check_numeric(X) -> None:
    """Refuse what scikit-learn would reject with a NumPy message (None, ragged rows, text)."""
    if X is None:
        raise ValueError("The 'X' parameter must be an array-like of shape (n_samples, n_features). Got None instead.")
    if sp.issparse(X) or hasattr(X, "__array_namespace__") and not isinstance(X, np.ndarray):
        return
    if hasattr(X, "dtypes") or hasattr(X, "__dataframe__"):  # data frames: scikit-learn reads them column-wise
        return
    try:
        A = np.asarray(X)
    except ValueError:
        raise ValueError("The 'X' parameter must be an array-like of shape (n_samples, n_features) with rows of one "
                         "length. Got rows of different lengths instead.") from None
    # other objects (a dict in a cell) get NumPy's TypeError, as scikit-learn's checks expect
    if A.dtype.kind in "US" or A.dtype.kind == "O" and any(isinstance(v, (str, bytes)) for v in A.ravel()):
        raise ValueError(f"The 'X' parameter must hold numbers (features as float32 or float64). Got text of "
                         f"dtype {A.dtype} instead.")
