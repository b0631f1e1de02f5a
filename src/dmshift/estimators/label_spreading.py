"""``LabelSpreadingClustering``: scikit-learn's label spreading over a k-NN graph, as a dmshift estimator.

A peer of DMS that uses the same partial labels with no learnt similarity: the labels
spread over the symmetric k-nearest-neighbour graph of the input space
(:class:`sklearn.semi_supervised.LabelSpreading` with ``kernel="knn"`` and its defaults,
Zhou et al., "Learning with local and global consistency", 2004). It can only return
the classes it was shown: every point joins one of the labelled classes.

This module wraps scikit-learn's estimator for ``fit`` and applies its inductive rule
(the label distributions of the ``n_neighbors`` nearest training points, summed) in
``predict``, so a model read back by :meth:`load` predicts without scikit-learn's object.
"""

from __future__ import annotations

import numpy as np
import torch

from .._validation import check_fraction, check_positive_int
from ._base import BaseClustering
from ._partial_labels import partial_labels
from ._persistence import check_saved_shape

__all__ = ["LabelSpreadingClustering"]


class LabelSpreadingClustering(BaseClustering):
    """Label spreading over the input-space k-NN graph, from partial labels (-1 = unknown).

    Parameters
    ----------
    n_neighbors : int, default=7
        Neighbours of the k-NN graph (scikit-learn's default). Capped at ``n_samples - 1``.
    alpha : float, default=0.2
        Clamping factor in (0, 1): the share of a point's label information it takes from
        its neighbours at each iteration (0.2: labelled points mostly keep their label).
    max_iter : int, default=30
        Iterations of the spreading (scikit-learn's default).
    tol : float, default=1e-3
        Convergence tolerance on the change of the label distributions.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of each training point: the index in ``classes_`` of its spread label.
    classes_ : ndarray of shape (n_clusters_,)
        The labelled class value each cluster id stands for (``classes_[labels_]`` gives
        labels in the user's own coding).
    n_clusters_ : int
        Number of labelled classes (cluster ids are 0..n_clusters_-1; a class that no
        point keeps after spreading leaves its id unused).
    label_distributions_ : ndarray of shape (n_samples, n_clusters_)
        Normalised label distribution of every training point.
    X_ : ndarray of shape (n_samples, n_features)
        Training points: ``predict`` looks up neighbours among them.
    n_iter_ : int
        Iterations run.
    n_features_in_ : int

    Notes
    -----
    ``X`` is used as given, the method as a practitioner would run it. There is no
    ``standardize`` parameter: the other estimators' standardisation (centring, one scale
    for all features) leaves every nearest-neighbour list, and so the result, unchanged.
    Features in different units should be scaled by the user first.

    Deterministic: there is no ``random_state``. Pairs cannot replace the labels (the
    method has no use for a "different" relation), so ``fit(X, pairs=...)`` raises
    ``ValueError``. Memory and time grow with ``n_samples * n_neighbors``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_blobs
    >>> from dmshift.estimators.label_spreading import LabelSpreadingClustering
    >>> X, y = make_blobs(300, centers=3, random_state=0)
    >>> y_partial = np.where(np.arange(300) % 10 == 0, y, -1)
    >>> ls = LabelSpreadingClustering().fit(X, y_partial)
    >>> ls.n_clusters_
    3
    """

    def __init__(self, *, n_neighbors=7, alpha=0.2, max_iter=30, tol=1e-3):
        self.n_neighbors = n_neighbors
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol

    def _check_params(self) -> None:
        check_positive_int("n_neighbors", self.n_neighbors)
        check_fraction("alpha", self.alpha)
        check_positive_int("max_iter", self.max_iter)
        check_fraction("tol", self.tol, low=0.0, high=np.inf, low_open=False)

    def fit(self, X, y=None, *, pairs=None):
        """Spread the partial labels ``y`` (-1 = unknown) over the k-NN graph of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Partial labels, -1 for unknown; at least one point labelled.
        pairs : None
            Not supported: a ``ValueError`` says so.

        Returns
        -------
        self
        """
        from sklearn.semi_supervised import LabelSpreading

        self._check_params()
        X = self._check_X(X, reset=True)
        n = X.shape[0]
        codes, classes = partial_labels(y, n, pairs, type(self).__name__)
        k = min(int(self.n_neighbors), n - 1)
        model = LabelSpreading(kernel="knn", n_neighbors=k, alpha=float(self.alpha), max_iter=int(self.max_iter),
                               tol=float(self.tol))
        model.fit(X, codes)  # its classes_ are the codes 0..m-1, all present
        self.X_ = X
        self.label_distributions_ = np.asarray(model.label_distributions_)  # (n, m)
        self.classes_ = classes
        self.n_clusters_ = int(classes.size)
        self.labels_ = np.asarray(model.transduction_, dtype=np.int64)
        self.n_iter_ = int(model.n_iter_)
        return self

    def predict(self, X):
        """Cluster of new points: the class with the largest summed label distribution over their neighbours.

        This is scikit-learn's ``LabelSpreading.predict`` for the k-NN kernel: the
        ``n_neighbors`` nearest training points each add their label distribution.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)

        Returns
        -------
        labels : ndarray of shape (n_queries,)
        """
        from sklearn.neighbors import NearestNeighbors

        self._check_fitted()
        X = self._check_X(X, reset=False)
        k = min(int(self.n_neighbors), self.X_.shape[0] - 1)
        nn = NearestNeighbors(n_neighbors=k).fit(self.X_)
        idx = nn.kneighbors(X, return_distance=False)  # (q, k)
        votes = self.label_distributions_[idx].sum(1)  # (q, n_clusters_)
        return votes.argmax(1).astype(np.int64)

    def _export_state(self):
        tensors = {"X": torch.as_tensor(self.X_), "label_distributions": torch.as_tensor(self.label_distributions_),
                   "labels": torch.as_tensor(self.labels_), "classes": torch.as_tensor(self.classes_)}
        return tensors, {"n_iter": self.n_iter_}

    def _check_saved_state(self, tensors, meta, *, n_samples):
        super()._check_saved_state(tensors, meta, n_samples=n_samples)
        check_saved_shape(tensors, "X", (n_samples, self.n_features_in_))
        k = int(tensors["classes"].shape[0]) if "classes" in tensors else -1
        check_saved_shape(tensors, "classes", (None,))
        check_saved_shape(tensors, "label_distributions", (n_samples, k))

    def _import_state(self, tensors, meta):
        self.X_ = tensors["X"].cpu().numpy()
        self.label_distributions_ = tensors["label_distributions"].cpu().numpy()
        self.labels_ = tensors["labels"].cpu().numpy()
        self.classes_ = tensors["classes"].cpu().numpy()
        self.n_clusters_ = int(self.classes_.size)
        self.n_iter_ = int(meta["n_iter"])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True  # the labels are what spreads
        tags.non_deterministic = False
        return tags
