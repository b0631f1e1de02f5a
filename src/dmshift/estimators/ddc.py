"""``DDCClustering``: Deep Divergence-based Clustering (Kampffmeyer et al.), unsupervised.

A softmax network is trained on mini-batches by the loss of eq. 4
(:func:`dmshift.losses.ddc_loss`): the Cauchy-Schwarz divergence between clusters under a
Gaussian kernel on the last hidden layer (bandwidth 15% of the batch's median distance),
the orthogonality of assignment vectors and their closeness to simplex corners. The
backbone is the paper's (§3.3): a 200-200-500 MLP with batch norm on the 500 layer for
vectors, a LeNet with 32 and 64 5x5 filters and a 100-unit batch-normalised layer for
images. DDC gets stuck in local minima, so ``n_init`` runs are trained and the one with
the lowest unsupervised loss is kept; DDC-VOTE (``vote=True``) aligns the best three
runs to the best one by the Hungarian method and takes a majority vote (§4.6).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

from .._validation import check_fraction, check_param
from ..losses import BANDWIDTHS, ddc_loss
from ._persistence import check_saved_shape
from ._softmax import SoftmaxClustering

__all__ = ["DDCClustering", "align_labels", "vote"]

#: points on which the unsupervised loss of each run is compared
_SCORE_POINTS = 10_000
_N_VOTERS = 3


def align_labels(reference: np.ndarray, labels: np.ndarray, n_labels: int) -> np.ndarray:
    """Permutation that maps ``labels`` onto ``reference`` with the largest overlap (Hungarian).

    Parameters
    ----------
    reference, labels : ndarray of shape (n,)
        Two labelings with values in 0..n_labels-1.
    n_labels : int

    Returns
    -------
    perm : ndarray of shape (n_labels,)
        ``perm[labels]`` is ``labels`` renamed to agree with ``reference`` as much as possible.
    """
    C = np.zeros((n_labels, n_labels), dtype=np.int64)  # C[a, b]: points with labels a and reference b
    np.add.at(C, (labels, reference), 1)
    rows, cols = linear_sum_assignment(-C)
    perm = np.empty(n_labels, dtype=np.int64)
    perm[rows] = cols
    return perm


def _majority(aligned: np.ndarray, n_labels: int) -> np.ndarray:
    """Vote over aligned labelings (m, n); ties go to the first (reference) labeling."""
    m, n = aligned.shape
    votes = np.zeros((n, n_labels), dtype=np.float64)
    for r in range(m):
        np.add.at(votes, (np.arange(n), aligned[r]), 1.0 if r else 1.5)
    return votes.argmax(1)


def vote(labelings, n_labels: int) -> np.ndarray:
    """DDC-VOTE: align every labeling to the first by the Hungarian method, then majority vote.

    Parameters
    ----------
    labelings : array-like of shape (m, n)
        ``m`` labelings of the same ``n`` points, the reference (best run) first.
    n_labels : int
        Labels run over 0..n_labels-1.

    Returns
    -------
    labels : ndarray of shape (n,)
        In the reference's numbering; a point with no majority keeps the reference's label.
    """
    L = np.asarray(labelings, dtype=np.int64)
    aligned = np.stack([L[0]] + [align_labels(L[0], L[r], n_labels)[L[r]] for r in range(1, L.shape[0])])
    return _majority(aligned, n_labels)


class DDCClustering(SoftmaxClustering):
    """DDC: unsupervised deep clustering by a divergence-based loss (and DDC-VOTE).

    Parameters
    ----------
    n_clusters : int, default=10
        Softmax outputs, the number of clusters sought.
    hidden : tuple of int or None, default=None
        Vectors: widths of the MLP body (None: the paper's 200-200-500). Images: widths of
        the fully connected layers after the convolutions (None: the paper's 100).
    input_shape : (H, W) or (C, H, W), optional
        Set it when the rows of ``X`` are flattened images (the paper's LeNet); None: vectors.
    rel_sigma : float, default=0.15
        Kernel bandwidth as a fraction of the batch's median pairwise distance in the
        hidden layer.
    bandwidth : {"distance", "squared"}, default="distance"
        "distance": ``sigma = rel_sigma * median distance`` (the paper's §4.6);
        "squared": ``sigma^2 = rel_sigma * median squared distance`` (a wider kernel, as in
        the DDC authors' later code). See :func:`dmshift.losses.gaussian_kernel_matrix`.
    n_init : int, default=1
        Independent runs; the one with the lowest unsupervised loss is kept (paper: 20).
    vote : bool, default=False
        DDC-VOTE: majority vote of the best three runs (needs ``n_init >= 3``).
    max_steps : int, default=5000
        Mini-batches per run (paper: 70,000).
    batch_size : int, default=100
    lr : float, default=1e-3
        Adam learning rate (paper: 1e-3 for the CNN, 1e-5 for the fully connected net).
    weight_decay : float, default=0.0
    schedule : {"constant", "cosine"}, default="constant"
        Learning-rate schedule; "cosine" decays it to 0 over ``max_steps``, which steadies
        the final model.
    standardize : bool or {"feature", "global", "image", "none"}, default=True
        Centre and scale the inputs in float64: True divides each feature by its standard
        deviation for vectors and uses one mean and standard deviation over all pixels for
        images ("image"); "feature", "global" (one RMS scale) and False ("none") as named;
        see :mod:`dmshift.scaling`.
    time_limit : float or None, default=None
        Seconds of training per run.
    verbose : bool, default=False
    device : str, default="auto"
    random_state : int, RandomState or None, default=None
    checkpoint_dir : str, path or None, default=None
        Folder for training checkpoints (see :mod:`dmshift.checkpoint`); ``fit(...,
        resume=True)`` continues from them.
    checkpoint_every : int, default=100
        Training steps between checkpoints.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of each training point, numbered by decreasing size.
    n_clusters_ : int
        Outputs chosen by at least one training point.
    nets_ : list of torch.nn.Module
        The best run's network, or the three voting networks (best first).
    vote_perms_ : ndarray of shape (len(nets_), n_clusters)
        Output permutation aligning each kept network to the best one.
    vote_labels_ : ndarray of shape (len(nets_), n_samples)
        Labels of the training points by each kept network alone, aligned and numbered
        as ``labels_`` (row 0: the best run, i.e. plain DDC).
    run_scores_ : ndarray of shape (n_init,)
        Unsupervised loss of each run (on up to 10,000 training points).
    best_run_ : int
    training_ : dict
    """

    _needs_side_info = False  # unsupervised: side information is ignored with a warning

    _default_mlp_hidden = (200, 200, 500)
    _default_image_fc = (100,)
    _lenet_channels = (32, 64)
    _lenet_conv_batch_norm = False
    _lenet_fc_batch_norm = True

    def __init__(self, *, n_clusters=10, hidden=None, input_shape=None, rel_sigma=0.15, bandwidth="distance",
                 n_init=1, vote=False, max_steps=5000, batch_size=100, lr=1e-3, weight_decay=0.0, schedule="constant",
                 standardize=True, time_limit=None, verbose=False, device="auto", random_state=None,
                 checkpoint_dir=None, checkpoint_every=100):
        self.n_clusters = n_clusters
        self.hidden = hidden
        self.input_shape = input_shape
        self.rel_sigma = rel_sigma
        self.bandwidth = bandwidth
        self.n_init = n_init
        self.vote = vote
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.standardize = standardize
        self.time_limit = time_limit
        self.verbose = verbose
        self.device = device
        self.random_state = random_state
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every

    def _check_params(self):
        self._check_common_params()
        check_fraction("rel_sigma", self.rel_sigma, low=0.0, high=math.inf)
        check_param("bandwidth", self.bandwidth, BANDWIDTHS)
        if not isinstance(self.vote, (bool, np.bool_)):
            raise ValueError(f"The 'vote' parameter must be a bool. Got {self.vote!r} instead.")
        if self.vote and self.n_init < _N_VOTERS:
            raise ValueError(f"The 'n_init' parameter must be at least {_N_VOTERS} when vote=True. "
                             f"Got {self.n_init!r} instead.")

    def _side_info(self, n, y, pairs):
        if (y is not None and np.any(np.asarray(y) != -1)) or pairs is not None:
            warnings.warn("DDCClustering is unsupervised: the side information (y, pairs) is ignored.",
                          UserWarning, stacklevel=3)
        return None

    # ------------------------------------------------------------------ training
    def _new_net(self, n_features):
        net = super()._new_net(n_features)
        for m in net.modules():  # He initialisation, as in the paper (§4.6, ref. 61)
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        return net

    def _step_loss(self, net, Xs, side, rng):
        n = Xs.shape[0]
        b = min(int(self.batch_size), n)
        state = {"perm": rng.permutation(n), "pos": 0}

        def next_batch():
            if state["pos"] + b > n:  # reshuffle each epoch; the incomplete tail is skipped
                state["perm"], state["pos"] = rng.permutation(n), 0
            idx = state["perm"][state["pos"]:state["pos"] + b]
            state["pos"] += b
            return Xs[torch.as_tensor(idx, device=Xs.device)]

        def step_loss(step):
            h, logits = net(next_batch())  # (b, D), (b, K)
            return self._loss(h, logits)
        return step_loss

    @torch.no_grad()
    def _score(self, net, Xs, side, seed) -> float:
        """Mean unsupervised loss over batches of up to 10,000 points (the same for every run)."""
        net.eval()
        n = Xs.shape[0]
        b = min(int(self.batch_size), n)
        idx = np.random.default_rng(seed).permutation(n)[:max(b, min(n, _SCORE_POINTS))]
        losses = []
        for i in range(0, idx.size - b + 1, b):
            h, logits = net(Xs[torch.as_tensor(idx[i:i + b], device=Xs.device)])
            losses.append(float(self._loss(h, logits)))
        return float(np.mean(losses))

    def _loss(self, h, logits):
        return ddc_loss(h, torch.softmax(logits, dim=1), rel_sigma=float(self.rel_sigma), bandwidth=self.bandwidth)

    def _n_kept(self) -> int:
        return _N_VOTERS if self.vote else 1

    def _keep_runs(self, runs, Xs) -> np.ndarray:
        K = int(self.n_clusters)
        self.nets_ = [r[2] for r in runs]
        outs = [self._net_proba(net, Xs).argmax(1).cpu().numpy() for net in self.nets_]  # (n,) each
        self.vote_perms_ = np.stack([np.arange(K)] + [align_labels(outs[0], o, K) for o in outs[1:]])
        aligned = np.stack([perm[o] for perm, o in zip(self.vote_perms_, outs)])  # (len(nets_), n)
        voted = _majority(aligned, K) if len(outs) > 1 else aligned[0]
        order = np.argsort(-np.bincount(voted, minlength=K), kind="stable")
        label = np.empty(K, dtype=np.int64)
        label[order] = np.arange(K)
        self.vote_labels_ = label[aligned]  # numbered as labels_ will be
        return voted

    # ------------------------------------------------------------------ inference
    def _outputs_proba(self, Xs):
        if len(self.nets_) == 1:
            return self._net_proba(self.nets_[0], Xs)
        P = 0
        for net, perm in zip(self.nets_, self.vote_perms_):
            inv = np.argsort(perm)  # aligned column c is the net's output inv[c]
            P = P + self._net_proba(net, Xs)[:, torch.as_tensor(inv, device=Xs.device)]
        return P / len(self.nets_)

    def _predict_outputs(self, Xs):
        if len(self.nets_) == 1:
            return self._net_proba(self.nets_[0], Xs).argmax(1).cpu().numpy()
        aligned = np.stack([perm[self._net_proba(net, Xs).argmax(1).cpu().numpy()]
                            for net, perm in zip(self.nets_, self.vote_perms_)])
        return _majority(aligned, int(self.n_clusters))

    def predict_proba(self, X):
        """Softmax cluster probabilities, column ``l`` for label ``l``.

        With ``vote=True`` this is the mean of the aligned voters' probabilities, while
        :meth:`predict` takes their majority vote, so the two can disagree on a few points.
        """
        return super().predict_proba(X)

    # ------------------------------------------------------------------ persistence
    def _export_state(self):
        tensors, meta = super()._export_state()
        tensors["vote_perms"] = torch.as_tensor(self.vote_perms_)
        tensors["vote_labels"] = torch.as_tensor(self.vote_labels_)
        return tensors, meta

    def _check_saved_state(self, tensors, meta, *, n_samples):
        super()._check_saved_state(tensors, meta, n_samples=n_samples)
        check_saved_shape(tensors, "vote_labels", (None, n_samples))

    def _import_state(self, tensors, meta):
        super()._import_state(tensors, meta)
        self.vote_perms_ = tensors["vote_perms"].cpu().numpy()
        self.vote_labels_ = tensors["vote_labels"].cpu().numpy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags
