"""``DMSClustering``: Differentiable Mean Shift as a scikit-learn estimator.

``fit`` learns a kernel K(x, c) from side information (partial labels and/or pairs) by
differentiable mean shift on sampled instances (paper §3.3, §4.2), then clusters the
data by mean shift with the learned kernel (§3.2, §4.3): seeds, convergence by inlier
sets, confidence matrix, center similarity, merging, assignment, noise. ``predict``
assigns new points to the fitted clusters. The torch core lives in
:mod:`dmshift.meanshift`, :mod:`dmshift.merge`, :mod:`dmshift.sampling` and
:mod:`dmshift.train`; this file wires them together and checks input.
"""

from __future__ import annotations

import logging
import math
import numbers
import time

import numpy as np
import torch
import torch.nn.functional as F

from .._validation import (as_float_tensor, check_fraction, check_param, check_positive_int, check_range_pair)
from ..constants import NOISE
from ..constraints import SideInfo
from ..kernels import DEFAULT_MEMORY_BUDGET, default_hidden_sizes, make_kernel
from ..linalg import principal_axes
from ..meanshift import (CenterResult, find_centers, find_centers_adaptive, input_space_centers, select,
                         shift_instances, unique_centers)
from ..merge import (SIMILARITIES, assign, center_similarity_tiled, merge_centers, merge_constrained,
                     relabel_by_size)
from ..sampling import InstanceSampler, SamplerConfig
from ..smoothing import RECIPROCAL_NEIGHBORS, TREE_NEIGHBORS, knn, revote, smooth_labels, vote_labels
from ..train import TrainConfig, train_loop
from ..treecut import pair_f1, tree_clusters, whitening
from ._base import BaseClustering, standardization

__all__ = ["DMSClustering", "DataParallelPlan", "select_anchors", "MAX_ANCHORS_PER_GROUP"]

logger = logging.getLogger("dmshift")


class DMSClustering(BaseClustering):
    """Differentiable Mean Shift: clusters learnt from side information, no k needed.

    Parameters
    ----------
    kernel : {"subtract", "concat"}, default="subtract"
        Kernel architecture (paper Table 1).
    init : {"distance", "default"}, default="distance"
        "distance" starts the kernel as a classical distance kernel whose bandwidth is the
        ``init_quantile`` of pairwise distances (see
        :meth:`~dmshift.kernels.LearnedKernel.init_distance_prior`); "default" is PyTorch's
        initialisation, as in the paper.
    init_quantile : float, default=0.02
    n_layers : int, default=3
        Fully connected layers in the kernel, the output layer included (paper: 3).
    hidden : tuple of int or None, default=None
        Hidden widths; None gives N/2, N/4, ... capped at ``width_cap``.
    width_cap : int or None, default=256
        Upper bound on the default hidden widths (None: the paper's N/2 whatever N).
    activation : {"relu", "gelu", "tanh"}, default="relu"
    dropout : float, default=0.0
    conv_channels : int, default=1
        Filters of the concat kernel's 2 x 1 convolution.
    n_shift_steps : int, default=4
        Mean-shift steps T in training (paper: 4).
    max_steps : int, default=1000
        Training steps (batches).
    batch_size : int, default=96
    instance_size : (int, int), default=(200, 300)
    labelled_ratio : (float, float), default=(1/3, 1)
        Range of |P ∪ N| : |U| in an instance.
    positive_ratio : (float, float), default=(1/20, 1/10)
        Range of |P| : |P ∪ N| in an instance.
    lr : float, default=1e-3
    weight_decay : float, default=1.0
        Decoupled (AdamW) weight decay toward zero (the paper: none). With few labelled
        points the kernel otherwise fits them too closely and splits or merges held-out
        points; see ``benchmarks/results/dms-quality.md``.
    prior_decay : float, default=0.0
        Strength of an L2 pull of the kernel's weights toward their initial values,
        ``prior_decay * ||θ - θ0||² / ||θ0||²`` added to the loss: with ``init="distance"``
        the kernel stays a distance kernel except where the side information says otherwise.
    schedule : {"constant", "cosine"}, default="constant"
    loss_balance : {"none", "balanced"}, default="none"
        "none" is eq. 3 (mean over labelled points); "balanced" averages the positive and
        negative terms with equal weight.
    input_noise : float, default=0.3
        Std of Gaussian noise added to the standardised training points (one draw per
        distinct point of a batch); a regulariser, 0 is the paper's training.
    validation_fraction : float, default=0.0
        Share of labelled points held back to choose the best training step.
    patience : int or None, default=None
        Evaluations without improvement before training stops.
    eval_every : int, default=50
    seeding : {"random", "adaptive"}, default="random"
        "random" draws ``n_seeds`` points (paper); "adaptive" seeds from uncovered points.
    n_seeds : int, default=500
        Seeds (random) or the cap on seeds (adaptive).
    max_iter : int, default=50
        Cap on inference shift iterations per seed.
    inference_side_info : bool, default=True
        Use the side information when clustering the training data, not only to train
        the kernel: up to ``MAX_ANCHORS_PER_GROUP`` points of each group (of at least
        ``MIN_ANCHOR_GROUP`` points) seed mean shift
        and stay as fixed centers of their group, and merging never joins groups known
        to differ (:func:`~dmshift.merge.merge_constrained`). Clusters of points no side
        information mentions are found as before. False is the paper's inference.
    similarity : {"cosine", "bistochastic", "bistochastic-cosine", "jaccard"}, default="cosine"
        How centers are compared before merging (see :mod:`dmshift.merge`).
    threshold : "auto" or float, default="auto"
        Centers with similarity >= threshold are merged. "auto" is 0.5 (the paper's value)
        when label-like side information constrains the merge (every two anchored groups
        are known to differ, and such groups are never joined, so a low threshold only
        joins what no side information separates) and 0.8 otherwise (sparse pairs, or
        ``inference_side_info=False``):
        on digits, 0.5 gave ACC 0.890 vs 0.872 at 0.8 with labels, and 0.70 vs 0.75 with
        sparse pairs.
    noise_threshold : float, default=0.01
        A point whose best confidence is below this is NOISE (0 assigns every point; the
        paper's rule is 0.5). Held-out points often get modest confidences from a kernel
        trained on few labelled points, so the default floor only calls points noise that
        no center claims at all.
    standardize : bool, default=True
        Centre the features and divide by their RMS standard deviation before training.
    n_components : "auto", int, float or None, default="auto"
        Project the (standardised) features on their leading principal components before
        the kernel sees them; the projection is fitted on all of ``X`` in ``fit`` (it
        uses no side information) and applied again by ``predict``. An int keeps that
        many components, a float in (0, 1) enough to explain that share of the variance,
        None keeps the features as they are. "auto" keeps the features when there are at
        most ``AUTO_COMPONENTS_MAX`` (128) of them, else the components that explain 95%
        of the variance, at most 128. The first layer's cost and parameter count follow
        the kernel's input width, so on wide inputs this is what keeps training fast
        (MNIST-10k, 784 pixels: ACC 0.834 ± 0.011 vs 0.845, about 10x less CPU time).
    self_training : int, default=1
        Rounds of self-training. After clustering, the most confident
        ``self_training_share`` of the points of each cluster (beyond those with side
        information) become pseudo-labels: the cluster's label, joined to the side
        information group the cluster holds. The kernel is trained again from its
        initial weights on the side information plus the pseudo-labels, and the points
        are clustered again with the original side information. Each round costs one more
        training; 0 is the paper's method. With labels on 5% of digits, one round raised
        ACC from 0.890 to 0.912 over 3 seeds (pseudo-labels 99% right).
    self_training_share : float, default=0.5
        Share of each cluster's points, the most confident first, taken as pseudo-labels.
    smoothing : {"auto", "graph", None}, default="auto"
        After the last round, let neighbours vote (:mod:`dmshift.smoothing`). Seeds: the
        points with side information carry their group's cluster (a group that shares its
        cluster with a group known to differ gets a cluster of its own), and each cluster
        that holds no side information is seeded by its ``self_training_share`` most
        confident points, weighted to count together as much as side information at its
        observed rate would (a cluster seeded by half its points would otherwise drown a
        group with a few labelled points). The seeds' labels spread over the graph of each
        point's ``n_neighbors`` nearest neighbours in the kernel's input space (label
        spreading).
        Side information is never overruled; noise takes the label spreading gives it (see
        ``smooth_noise``). Above
        ``SMOOTH_MAX_POINTS`` (100,000) points the graph is built on a random 100,000 and the
        others take their nearest landmarks' vote; ``predict`` takes the same vote.
        "graph" always smooths; "auto" only when the graph agrees with the seeds: at least
        ``SMOOTH_MIN_AGREEMENT`` (0.9) of the edges between two seeds in the 5-NN graph
        join seeds of one cluster (on a task that groups points across their nearest
        neighbours, such as faces by lighting, it does not: agreement 0.62 on AR faces by
        condition, where smoothing would cost 0.2 ACC). None is the paper's assignment (each point to its
        most confident center). See ``benchmarks/results/dms-quality.md``.
    smooth_noise : bool, default=True
        With smoothing applied, the points mean shift leaves as noise (no center's confidence
        reaches ``noise_threshold``) take the label spreading gives them, and ``predict``'s
        vote relabels them too; a point no seed reaches stays noise. False keeps noise as
        noise (the paper's noise). On 5% side information (3 seeds) the noise was 0.8% of
        COIL-20 and 0.9% of COIL-100, and mostly views of one object: ACC 0.953 -> 0.961
        and 0.960 -> 0.967; digits, USPS and MNIST-10k have next to no noise and move by
        less than 0.001 on average (``benchmarks/results/smoothing-reciprocal.md``).
    n_neighbors : int, default=3
        Neighbours per point in the smoothing graph and in ``predict``'s vote. 3 beat 5 on
        7 of 10 data sets (label spreading from 5% side information: COIL-20 0.922 vs 0.849,
        MNIST-10k 0.940 vs 0.928; behind on UMIST and TREC) and ties 4 on average; DMS at
        the defaults, COIL-20 0.936 vs 0.868 (``benchmarks/results/smoothing-neighbors.md``).
    find_unseen : bool, default=True
        With smoothing applied, look for groups the side information never mentions
        (:mod:`dmshift.novelty`): parts of the Ward tree of the kernel's input that hold no
        side information, cut at the height where the tree best agrees with the side
        information, and large enough that side information drawn at random at the rate
        seen around them would miss any part that large with a chance below 5%. Each
        becomes a cluster of its own and seeds the smoothing on all its points. A learned
        kernel maps an unseen group onto the seen group it most resembles; with labels on
        5 of digits' 10 classes, this took ACC on the unseen classes' points from 0.594
        to 0.809 (3 seeds). With side information from every group, no part qualifies
        but by chance. After spreading, a connected component of the smoothing graph that
        holds no seed, and that random side information at the observed rate would have
        reached with a chance of 95% (59 points at 5%), also becomes a cluster of its own
        instead of keeping the kernel's (COIL-100 0.939 → 0.952).
        ``smoothing_["unseen_groups"]`` counts the groups found both ways.
    fallback : {"tree", None}, default="tree"
        Thin side information (many groups and a label or two in each) has too few "same"
        pairs to learn a kernel from, and the kernel's clustering then joins groups the side
        information says differ. "tree" checks for it before smoothing: when the side
        information holds at least ``FALLBACK_MIN_SAME_PAIRS`` (10) "same" pairs, the
        kernel's clusters number at most half the groups it holds, and their pairwise F1
        on it is at most 0.8, the Ward tree of the kernel's input is cut where its F1 is
        best (:mod:`dmshift.treecut`), in the plain and in the whitened principal
        components; if the better tree's F1 beats the kernel's by ``FALLBACK_MARGIN``
        (0.2), its clusters (side information honoured) replace the kernel's and smoothing
        is skipped; ``predict`` votes among the training points in the tree's space. On AR
        faces by identity (100 people, 5% side information: about 70 images and 25 "same"
        pairs) ACC went from 0.094 to 0.734 ± 0.017 (3 seeds,
        ``benchmarks/results/bench-table3-ar-faces-fallback.md``); on digits, USPS, MNIST-10k,
        COIL, UMIST, ORL and the unseen-class tasks it is not taken
        (``benchmarks/results/thin-side-info.md``). None keeps the kernel's clusters.
    memory_budget : int, default=256 MiB
        Bytes for one tile of pairwise intermediate values.
    time_limit : float or None, default=None
        Seconds of training (all self-training rounds together) after which the best model
        so far is kept; a round stopped by it is the last.
    verbose : bool, default=False
    device : str, default="auto"
    random_state : int, RandomState or None, default=None
    on_conflict : {"raise", "majority"}, default="raise"
        Contradictory (noisy) side information: refuse it, or resolve it by vote (see
        :meth:`dmshift.constraints.SideInfo.build`).
    checkpoint_dir : str, path or None, default=None
        Folder for training checkpoints (see :mod:`dmshift.checkpoint`); ``fit(...,
        resume=True)`` continues from them.
    checkpoint_every : int, default=100
        Training steps between checkpoints.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of each training point, NOISE (-1) where no cluster is confident (with
        smoothing applied and ``smooth_noise``, where no seed's label reaches either).
    n_clusters_ : int
    cluster_centers_ : ndarray of shape (n_clusters_, n_features)
        The center (in input space) of the largest inlier set in each cluster; with a
        projection (``n_components``) it is rebuilt from the kept components.
    components_ : tensor of shape (n_features, n_components_) or None
        The projection applied after standardisation (None: none).
    n_iter_ : int
        Most inference shift iterations any seed took.
    training_ : dict
        Training record: steps, stop reason, best step, history.
    side_info_ : dict
        Summary of the side information used.
    smoothing_ : dict
        Whether smoothing was applied, the graph's agreement with the seeds, the unseen
        groups found and whether noise was relabelled.
    fallback_ : dict
        ``applied``; ``kernel_f1``, the pairwise F1 of the kernel's clusters on the side
        information (None without "same" pairs); ``tree_f1`` and ``space`` ("plain" or
        "whitened") of the better tree, where one was cut (see ``fallback``).
    """

    def __init__(self, *, kernel="subtract", init="distance", init_quantile=0.02, n_layers=3, hidden=None, width_cap=256, activation="relu",
                 dropout=0.0, conv_channels=1, n_shift_steps=4, max_steps=1000, batch_size=96,
                 instance_size=(200, 300), labelled_ratio=(1 / 3, 1.0), positive_ratio=(1 / 20, 1 / 10),
                 lr=1e-3, weight_decay=1.0, prior_decay=0.0, schedule="constant", loss_balance="none",
                 input_noise=0.3, validation_fraction=0.0, patience=None, eval_every=50, seeding="random",
                 n_seeds=500, max_iter=50, inference_side_info=True, similarity="cosine", threshold="auto",
                 noise_threshold=0.01, standardize=True, n_components="auto", self_training=1,
                 self_training_share=0.5, smoothing="auto", n_neighbors=3, find_unseen=True, smooth_noise=True, fallback="tree",
                 memory_budget=DEFAULT_MEMORY_BUDGET, time_limit=None, verbose=False, device="auto",
                 random_state=None, on_conflict="raise", checkpoint_dir=None, checkpoint_every=100):
        self.kernel = kernel
        self.init = init
        self.init_quantile = init_quantile
        self.n_layers = n_layers
        self.hidden = hidden
        self.width_cap = width_cap
        self.activation = activation
        self.dropout = dropout
        self.conv_channels = conv_channels
        self.n_shift_steps = n_shift_steps
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.instance_size = instance_size
        self.labelled_ratio = labelled_ratio
        self.positive_ratio = positive_ratio
        self.lr = lr
        self.weight_decay = weight_decay
        self.prior_decay = prior_decay
        self.schedule = schedule
        self.loss_balance = loss_balance
        self.input_noise = input_noise
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.eval_every = eval_every
        self.seeding = seeding
        self.n_seeds = n_seeds
        self.max_iter = max_iter
        self.inference_side_info = inference_side_info
        self.similarity = similarity
        self.threshold = threshold
        self.noise_threshold = noise_threshold
        self.standardize = standardize
        self.n_components = n_components
        self.self_training = self_training
        self.self_training_share = self_training_share
        self.smoothing = smoothing
        self.n_neighbors = n_neighbors
        self.find_unseen = find_unseen
        self.smooth_noise = smooth_noise
        self.fallback = fallback
        self.memory_budget = memory_budget
        self.time_limit = time_limit
        self.verbose = verbose
        self.device = device
        self.random_state = random_state
        self.on_conflict = on_conflict
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every

    # ------------------------------------------------------------------ checks
    def _check_params(self):
        check_param("kernel", self.kernel, ("subtract", "concat"))
        check_param("init", self.init, ("distance", "default"))
        check_fraction("init_quantile", self.init_quantile, low=0.0, high=1.0)
        check_positive_int("n_layers", self.n_layers)
        if self.hidden is not None:
            h = tuple(self.hidden)
            if len(h) != self.n_layers - 1 or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1 for v in h):
                raise ValueError(f"The 'hidden' parameter must be None or {self.n_layers - 1} positive ints "
                                 f"(n_layers - 1). Got {self.hidden!r} instead.")
        check_positive_int("width_cap", self.width_cap, allow_none=True)
        check_param("activation", self.activation, ("relu", "gelu", "tanh"))
        check_fraction("dropout", self.dropout, low=0.0, high=1.0, low_open=False)
        check_positive_int("conv_channels", self.conv_channels)
        check_positive_int("n_shift_steps", self.n_shift_steps, minimum=0)
        check_positive_int("max_steps", self.max_steps)
        check_positive_int("batch_size", self.batch_size)
        lo, hi = check_range_pair("instance_size", self.instance_size, low=3, high=1e9)
        if lo != int(lo) or hi != int(hi):
            raise ValueError(f"The 'instance_size' parameter must hold ints. Got {self.instance_size!r} instead.")
        check_range_pair("labelled_ratio", self.labelled_ratio, low=1e-6, high=1e6)
        check_range_pair("positive_ratio", self.positive_ratio, low=0.0, high=1.0)
        check_fraction("lr", self.lr, low=0.0, high=math.inf)
        check_fraction("weight_decay", self.weight_decay, low=0.0, high=math.inf, low_open=False)
        check_fraction("prior_decay", self.prior_decay, low=0.0, high=math.inf, low_open=False)
        check_param("schedule", self.schedule, ("constant", "cosine"))
        check_param("loss_balance", self.loss_balance, ("none", "balanced"))
        check_fraction("input_noise", self.input_noise, low=0.0, high=math.inf, low_open=False)
        check_fraction("validation_fraction", self.validation_fraction, low=0.0, high=1.0, low_open=False)
        check_positive_int("patience", self.patience, allow_none=True)
        check_positive_int("eval_every", self.eval_every)
        check_param("seeding", self.seeding, ("random", "adaptive"))
        check_positive_int("n_seeds", self.n_seeds)
        check_positive_int("max_iter", self.max_iter, minimum=0)
        if not isinstance(self.inference_side_info, (bool, np.bool_)):
            raise ValueError(f"The 'inference_side_info' parameter must be a bool. Got {self.inference_side_info!r} instead.")
        check_param("similarity", self.similarity, SIMILARITIES)
        if not (isinstance(self.threshold, str) and self.threshold == "auto"):
            if isinstance(self.threshold, str):
                raise ValueError(f"The 'threshold' parameter must be 'auto' or a float in (0, 1]. "
                                 f"Got {self.threshold!r} instead.")
            check_fraction("threshold", self.threshold, low=0.0, high=1.0, high_open=False)
        check_fraction("noise_threshold", self.noise_threshold, low=0.0, high=1.0, low_open=False)
        check_positive_int("self_training", self.self_training, minimum=0)
        check_fraction("self_training_share", self.self_training_share, low=0.0, high=1.0, high_open=False)
        if self.smoothing is not None:
            check_param("smoothing", self.smoothing, ("auto", "graph"))
        check_positive_int("n_neighbors", self.n_neighbors)
        if self.fallback is not None:
            check_param("fallback", self.fallback, ("tree",))
        for name in ("find_unseen", "smooth_noise"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"The {name!r} parameter must be a bool. Got {getattr(self, name)!r} instead.")
        nc = self.n_components
        if not (nc is None or isinstance(nc, str) and nc == "auto"
                or isinstance(nc, numbers.Integral) and not isinstance(nc, bool) and nc >= 1
                or isinstance(nc, numbers.Real) and not isinstance(nc, (bool, numbers.Integral)) and 0.0 < nc < 1.0):
            raise ValueError(f"The 'n_components' parameter must be 'auto', None, an int >= 1 or a float in (0, 1). "
                             f"Got {nc!r} instead.")
        check_positive_int("memory_budget", self.memory_budget, minimum=1024)
        if self.time_limit is not None:
            check_fraction("time_limit", self.time_limit, low=0.0, high=math.inf)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None, *, pairs=None, resume=False):
        """Learn a kernel from side information and cluster ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), optional
            Partial labels: a class id for points with side information, -1 elsewhere.
        pairs : array-like of shape (m, 3), optional
            Rows ``(i, j, same)``: points i and j are in the same cluster (1) or not (0).
        resume : bool, default=False
            Continue training from the checkpoints in ``checkpoint_dir``.

        Returns
        -------
        self
        """
        self._check_params()
        if y is None and pairs is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None: give partial labels "
                "y (-1 for unknown) and/or pairs (i, j, same) to learn the clustering from."
            )
        X = self._check_X(X, reset=True)
        n, d = X.shape
        side = SideInfo.build(n, y=y, pairs=pairs, on_conflict=self.on_conflict)
        side.check_trainable()
        self._begin_checkpoint(X, y, pairs, resume=resume)
        device, seed = self._setup()
        rng = np.random.default_rng(seed)

        Xs = self._init_kernel(X, side, seed, device)
        self.anchors_ = select_anchors(side) if self.inference_side_info else None
        self._fit_rounds(side, seed,
                         train=lambda side_r, seed_r, rng_r, left: self._train(Xs, side_r, rng_r or rng, seed_r, device,
                                                                               time_limit=left),
                         cluster=lambda: self._cluster(Xs, rng, self.anchors_), Xs=Xs)
        return self

    def _fit_rounds(self, side: SideInfo, seed: int, train, cluster, Xs: torch.Tensor) -> None:
        """Train and cluster, then ``self_training`` more rounds on pseudo-labels; sets ``training_``.

        ``train(side, seed, rng, time_left)`` returns a training record (``rng`` None: the fit's own
        generator; later rounds get one of their own, so that the ranks of a distributed fit,
        whose generators the clustering advances differently, draw the same batches) and
        ``cluster()`` sets ``labels_`` and ``confidence_`` for all points
        (:func:`dmshift.distributed.fit_ddp` passes its data-parallel versions). Each round
        restarts from the kernel's initial weights; ``time_limit`` bounds the training of
        all rounds together. Smoothing (``smoothing``) follows the last clustering; it reads
        all of ``Xs`` and is deterministic given ``seed``, so every rank agrees.
        """
        initial = {k: v.detach().clone() for k, v in self.kernel_.state_dict().items()}
        train_seconds = infer_seconds = 0.0
        rounds, n_pseudo = [], 0
        for r in range(1 + int(self.self_training)):
            side_r = side
            if r > 0:  # self-training: pseudo-labels from the last clustering, a fresh kernel
                side_r = SideInfo.build(side.n_samples, y=pseudo_labels(side, self.labels_, self.confidence_,
                                                                        float(self.self_training_share)))
                try:
                    side_r.check_trainable()
                except ValueError:  # one cluster only: nothing to tell apart
                    break
                n_pseudo = int(side_r.labelled.size - side.labelled.size)
                self.kernel_.load_state_dict(initial)
            t0 = time.perf_counter()
            left = None if self.time_limit is None else float(self.time_limit) - train_seconds
            if left is not None and left <= 0:
                break
            self.training_ = train(side_r, seed + r, None if r == 0 else np.random.default_rng([seed, r]), left)
            train_seconds += time.perf_counter() - t0
            t0 = time.perf_counter()
            cluster()
            infer_seconds += time.perf_counter() - t0
            rounds.append({"steps": self.training_["steps"], "n_clusters": self.n_clusters_})
            if self.training_["stop_reason"] in ("interrupted", "time_limit"):
                break  # Ctrl-C or the time limit ends the fit: no further round
        t0 = time.perf_counter()
        self._smooth(Xs, side, seed)
        self.training_.update(seconds=train_seconds, rounds=rounds, n_pseudo_labels=n_pseudo)
        self.inference_seconds_ = infer_seconds + time.perf_counter() - t0

    def _smooth(self, Xs: torch.Tensor, side: SideInfo, seed: int) -> None:
        """Graph smoothing of ``labels_`` (see ``smoothing``); renumbers clusters by size after it."""
        self._clear_smoothing()
        if self._tree_fallback(Xs, side, seed) or self.smoothing is None or self.n_clusters_ < 1:
            return
        # side information seeds the clusters that hold it (a group whose cluster holds a group
        # known to differ gets a cluster of its own); clusters no side information holds are
        # seeded by their most confident points
        pl = pseudo_labels(side, self.labels_, self.confidence_, float(self.self_training_share))
        on_side = (side.group >= 0) & (pl >= 0)
        seeds = np.flatnonzero(on_side | (pl >= 0) & ~np.isin(pl, pl[on_side]))
        lab = self.labels_.copy()
        lab[seeds] = pl[seeds]
        # the graph reads the leading SMOOTH_COMPONENTS principal components when the input is
        # projected: the trailing ones blur nearest-neighbour ranks
        Zg = self._graph_space(Xs)
        sm = smooth_labels(Zg, lab, seeds, int(self.n_neighbors), SMOOTH_MAX_POINTS,
                           np.random.default_rng([seed, SMOOTH_MAX_POINTS]), int(self.memory_budget),
                           min_agreement=SMOOTH_MIN_AGREEMENT if self.smoothing == "auto" else 0.0,
                           fixed=np.flatnonzero(on_side),  # side information is never overruled
                           groups=side.group if self.find_unseen else None, cannot=side.cannot,
                           keep_noise=not self.smooth_noise)
        self.smoothing_ = {"applied": sm.applied, "agreement": None if np.isnan(sm.agreement) else sm.agreement,
                           "unseen_groups": sm.n_unseen, "noise_relabelled": bool(self.smooth_noise and sm.applied)}
        if not sm.applied:
            return
        labels, cc = relabel_by_size(sm.labels, self.center_cluster_)
        keep = cc != NOISE
        new_k = int(labels.max(initial=-1)) + 1
        centers = np.zeros((new_k, self.cluster_centers_.shape[1]), dtype=self.cluster_centers_.dtype)
        centers[cc[keep]] = self.cluster_centers_[self.center_cluster_[keep]]
        for k in np.setdiff1d(np.arange(new_k), cc[keep]):  # a side-information group's own cluster: its mean
            members = torch.as_tensor(np.flatnonzero(labels == k), device=Xs.device)
            centers[k] = self._to_input_space(Xs[members].mean(0, keepdim=True))[0].cpu().numpy()
        self.center_embeddings_ = self.center_embeddings_[torch.as_tensor(np.flatnonzero(keep),
                                                                          device=self.center_embeddings_.device)]
        self.center_cluster_, self.cluster_centers_ = cc[keep], centers
        self.labels_, self.n_clusters_ = labels, new_k
        self.smoothing_points_ = Zg[torch.as_tensor(sm.landmarks, device=Xs.device)].clone()
        self.smoothing_labels_ = labels[sm.landmarks]
        self.smoothing_radius_ = sm.radius if self.smooth_noise else None

    def _tree_fallback(self, Xs: torch.Tensor, side: SideInfo, seed: int) -> bool:
        """Replace the kernel's clustering by the Ward tree's (``fallback``) when the side information
        agrees with the tree far better; True if it did. Sets ``fallback_``."""
        f_kernel, n_same = pair_f1(self.labels_, side.group, side.cannot)
        self.fallback_ = {"applied": False, "kernel_f1": f_kernel if n_same else None, "tree_f1": None, "space": None}
        if (self.fallback is None or n_same < FALLBACK_MIN_SAME_PAIRS or f_kernel > 1.0 - FALLBACK_MARGIN
                or self.n_clusters_ > FALLBACK_MAX_CLUSTER_SHARE * side.n_groups):
            return False
        n, budget = Xs.shape[0], int(self.memory_budget)
        rng = np.random.default_rng([seed, SMOOTH_MAX_POINTS, 1])
        landmarks = np.arange(n) if n <= SMOOTH_MAX_POINTS else np.sort(rng.choice(n, SMOOTH_MAX_POINTS, replace=False))
        lm_index = torch.as_tensor(landmarks, device=Xs.device)
        group = side.group[landmarks]
        spaces = {"plain": None, "whitened": whitening(Xs[lm_index])}
        best = None
        for name, W in spaces.items():  # plain first: whitened must do better, not as well
            Z = self._graph_space(Xs[lm_index], W)
            idx, dist = knn(Z, Z, max(TREE_NEIGHBORS, RECIPROCAL_NEIGHBORS), budget, exclude_self=True)
            cut = tree_clusters(Z.cpu().numpy(), idx[:, :TREE_NEIGHBORS].cpu().numpy(), group, side.cannot)
            if cut is not None and (best is None or cut.f1 > best[1].f1 + 1e-12):
                best = (name, cut, W, Z, dist[:, RECIPROCAL_NEIGHBORS - 1].clone())
        if best is not None:
            self.fallback_.update(tree_f1=best[1].f1, space=best[0])
        if best is None or best[1].f1 < f_kernel + FALLBACK_MARGIN:
            return False
        name, cut, W, Z, radius = best
        labels = np.full(n, NOISE, dtype=np.int64)
        labels[landmarks] = cut.labels
        rest = np.setdiff1d(np.arange(n), landmarks)
        if rest.size:
            Zr = self._graph_space(Xs[torch.as_tensor(rest, device=Xs.device)], W)
            labels[rest] = vote_labels(Zr, Z, cut.labels, int(self.n_neighbors), budget)
        k = int(labels.max()) + 1
        # each kernel center stands for the tree cluster most of its cluster's points are in; its
        # confidence still decides noise in predict, the landmarks' vote the label
        old = self.labels_
        to_tree = np.zeros(max(self.n_clusters_, 1), dtype=np.int64)
        for c in range(self.n_clusters_):
            inside = labels[(old == c) & (labels >= 0)]
            to_tree[c] = np.bincount(inside).argmax() if inside.size else 0
        self.center_cluster_ = to_tree[self.center_cluster_]
        centers = np.zeros((k, self.cluster_centers_.shape[1]), dtype=self.cluster_centers_.dtype)
        for c in range(k):
            members = torch.as_tensor(np.flatnonzero(labels == c), device=Xs.device)
            centers[c] = self._to_input_space(Xs[members].mean(0, keepdim=True))[0].cpu().numpy()
        self.cluster_centers_ = centers
        self.labels_, self.n_clusters_ = labels, k
        self.smoothing_points_, self.smoothing_labels_ = Z.clone(), cut.labels.copy()
        self.smoothing_radius_, self.smoothing_transform_ = radius, W
        self.fallback_["applied"] = True
        return True

    def _graph_space(self, Xs: torch.Tensor, W: torch.Tensor | None = None) -> torch.Tensor:
        """Where smoothing's graph and ``predict``'s vote look for neighbours: ``Xs @ W``, or with ``W``
        None the leading ``SMOOTH_COMPONENTS`` principal components when the input is projected."""
        if W is not None:
            return Xs @ W
        return Xs[:, :SMOOTH_COMPONENTS] if self.components_ is not None else Xs

    def _init_kernel(self, X, side: SideInfo, seed: int, device) -> torch.Tensor:
        """Standardise ``X``, build and initialise the kernel; returns the standardised points (n, d)."""
        n, d = X.shape
        Xt = as_float_tensor(X, device).float()
        mean, scale = standardization(Xt, self.standardize)
        self.mean_ = mean
        self.scale_ = scale
        Xs = (Xt - mean) / scale  # (n, d)
        del Xt
        self.components_ = principal_components(Xs, self.n_components)  # (d, c) or None
        if self.components_ is not None:
            Xs = Xs @ self.components_  # (n, c)
        d = Xs.shape[1]

        hidden = tuple(self.hidden) if self.hidden is not None else default_hidden_sizes(d, self.n_layers, self.width_cap)
        kwargs = {"activation": self.activation, "dropout": self.dropout}
        if self.kernel == "concat":
            kwargs["channels"] = self.conv_channels
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            self.kernel_ = make_kernel(self.kernel, d, hidden, **kwargs).to(device)
            if self.init == "distance":
                g = torch.Generator(device=device)
                g.manual_seed(seed)
                self.kernel_.init_distance_prior(Xs, quantile=self.init_quantile, generator=g)
        self.hidden_ = hidden
        self.side_info_ = side.summary()
        return Xs

    def _loss(self, logits: torch.Tensor, tgt: torch.Tensor, tgt_all: torch.Tensor | None = None) -> torch.Tensor:
        """Eq. 3 on the labelled points of ``tgt``, normalised by the counts of ``tgt_all``.

        ``tgt`` holds the targets of some of a batch's instances and ``tgt_all`` those of
        the whole batch (default: the same), so the losses of the parts of a batch add up
        to the loss of the whole batch (data-parallel training relies on it).
        """
        tgt_all = tgt if tgt_all is None else tgt_all
        per = F.binary_cross_entropy_with_logits(logits, tgt.clamp_min(0.0), reduction="none")
        lab, lab_all = tgt >= 0, tgt_all >= 0
        if self.loss_balance == "balanced":
            pos, neg = lab & (tgt > 0.5), lab & (tgt < 0.5)
            n_pos = (lab_all & (tgt_all > 0.5)).sum().clamp_min(1)
            n_neg = (lab_all & (tgt_all < 0.5)).sum().clamp_min(1)
            return 0.5 * ((per * pos).sum() / n_pos + (per * neg).sum() / n_neg)
        return (per * lab).sum() / lab_all.sum().clamp_min(1)

    def _train(self, Xs, side, rng, seed, device, parallel: "DataParallelPlan | None" = None,
               time_limit: float | None = None) -> dict:
        plan = parallel or DataParallelPlan()
        B = int(self.batch_size)
        cfg = SamplerConfig(batch_size=B, instance_size=tuple(int(v) for v in self.instance_size),
                            labelled_ratio=check_range_pair("labelled_ratio", self.labelled_ratio, low=1e-6, high=1e6),
                            positive_ratio=check_range_pair("positive_ratio", self.positive_ratio, low=0.0, high=1.0))
        labelled = side.labelled
        val_points = np.zeros(0, dtype=np.int64)
        if self.validation_fraction > 0:
            n_val = int(round(self.validation_fraction * labelled.size))
            if 0 < n_val < labelled.size:
                val_points = rng.choice(labelled, size=n_val, replace=False)
        train_points = np.setdiff1d(labelled, val_points)
        sampler = InstanceSampler(side, cfg, rng, init_points=train_points, label_points=train_points)
        gen = torch.Generator(device=device)
        gen.manual_seed(seed)
        T = self.n_shift_steps
        kernel = self.kernel_
        lo, hi = plan.rows(B)
        module = plan.wrap(_InstanceShift(kernel, T))

        def batch_tensors(idx, tgt, noise=0.0):
            """This part's instances as (distinct points (U, d), their rows (b, L)) and the batch's targets."""
            uniq, inv = np.unique(idx, return_inverse=True)  # the whole batch, as every part draws it
            inv = inv.reshape(idx.shape)
            x = Xs[torch.as_tensor(uniq, device=device)]
            if noise > 0:  # one draw per distinct point of the batch, the same in every part
                x = x + noise * torch.randn(x.shape, generator=gen, device=device, dtype=x.dtype)
            if (lo, hi) != (0, len(idx)):  # a part of the batch embeds only the points it needs
                mine, rows = np.unique(inv[lo:hi], return_inverse=True)
                x, inv = x[torch.as_tensor(mine, device=device)], rows.reshape(hi - lo, -1)
            return x, torch.as_tensor(inv, device=device), torch.as_tensor(tgt, device=device)

        anchor = [p.detach().clone() for p in kernel.parameters()] if self.prior_decay > 0 else None
        anchor_norm = sum(float(a.pow(2).sum()) for a in anchor) if anchor else 1.0

        def step_loss(step):
            x, index, tgt = batch_tensors(*sampler.sample(), noise=self.input_noise)  # (U, d), (b, L), (B, L)
            loss = self._loss(module(x, index), tgt[lo:hi], tgt)
            if anchor is not None:  # L2 pull toward the initial kernel, relative to its size
                drift = sum((p - a).pow(2).sum() for p, a in zip(kernel.parameters(), anchor))
                loss = loss + self.prior_decay * (hi - lo) / B * drift / max(anchor_norm, 1e-12)
            return plan.reduce_loss(loss)

        evaluate = None
        if val_points.size:
            vs = InstanceSampler(side, cfg, np.random.default_rng(seed + 1), init_points=val_points)
            val_batches = [batch_tensors(*vs.sample()) for _ in range(4)]
            # the initial points are held out; targets of training points are kept since
            # they still test the held-out centers

            @torch.no_grad()
            def evaluate():
                parts = torch.stack([self._loss(shift_instances(kernel, x, T, i), t[lo:hi], t)
                                     for x, i, t in val_batches])
                return float(plan.reduce_eval(parts).mean())

        tcfg = TrainConfig(max_steps=self.max_steps, lr=self.lr, weight_decay=self.weight_decay,
                           schedule=self.schedule, eval_every=self.eval_every, patience=self.patience,
                           time_limit=self.time_limit if time_limit is None else time_limit,
                           verbose=self.verbose and plan.verbose)
        res = train_loop(module, step_loss, tcfg, evaluate=evaluate, seed=seed,
                         checkpoint=None if parallel else self._checkpoint)
        return {"steps": res.steps, "best_step": res.best_step, "stop_reason": res.stop_reason,
                "best_val_loss": None if evaluate is None else res.best_score,
                "history": res.history, "n_train_points": int(train_points.size), "n_val_points": int(val_points.size)}

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def _embed(self, Xs):
        return self.kernel_.embed_points(Xs), self.kernel_.embed_centers(Xs)

    @torch.no_grad()
    def _cluster(self, Xs, rng, anchors: dict | None = None):
        """Mean shift, merging and assignment of the standardised points ``Xs`` (n, d).

        ``anchors`` (:func:`select_anchors`) are side-information centers whose indices
        are rows of ``Xs``: ``fit`` passes those of its training data.
        """
        kernel, budget = self.kernel_, int(self.memory_budget)
        self._clear_smoothing()
        px, qx = self._embed(Xs)  # (n, h), (n, h)
        n = Xs.shape[0]
        anchor_idx = anchors["index"] if anchors is not None else np.zeros(0, dtype=np.int64)
        if self.seeding == "random":
            seeds = rng.choice(n, size=min(self.n_seeds, n), replace=False)
            seeds = np.union1d(seeds, anchor_idx)  # anchors also start mean shift: every seen group gets a mode
            res = find_centers(kernel, px, qx, seeds, max_iter=self.max_iter, memory_budget=budget)
        else:
            res = find_centers_adaptive(kernel, px, qx, rng, max_seeds=self.n_seeds, max_iter=self.max_iter,
                                        memory_budget=budget)
        self.n_seeds_used_ = int(res.seeds.size)
        self.n_iter_ = int(res.n_iter.max()) if res.n_iter.size else 0
        self.converged_fraction_ = float(res.converged.mean()) if res.converged.size else 1.0
        res = select(res, unique_centers(res))
        center_group = np.full(res.qc.shape[0], -1, dtype=np.int64)
        if anchor_idx.size:  # labelled points stay as fixed centers of their group
            res = concat_centers(res, anchor_centers(qx[torch.as_tensor(anchor_idx, device=qx.device)], anchor_idx))
            center_group = np.concatenate([center_group, anchors["group"]])
        S = center_similarity_tiled(kernel, px, res.qc, self.similarity, budget)  # (M, M), H never whole for cosine
        if anchor_idx.size:
            comp = merge_constrained(S, self._merge_threshold(anchors), center_group, anchors["cannot"])
        else:
            comp = merge_centers(S, self._merge_threshold(None))
        del S
        a = assign(kernel, px, res.qc, comp, self.noise_threshold, budget)
        labels, center_cluster = relabel_by_size(a.labels, comp)
        keep = center_cluster != NOISE
        res = select(res, np.flatnonzero(keep))
        self.center_embeddings_ = res.qc  # (M, h)
        self.center_cluster_ = center_cluster[keep]
        self.labels_ = labels
        self.confidence_ = a.confidence
        self.n_clusters_ = int(labels.max(initial=-1) + 1)
        centers = self._to_input_space(input_space_centers(kernel, px, Xs, res.qc, budget))  # (M, d)
        best = np.zeros(self.n_clusters_, dtype=np.int64)
        for k in range(self.n_clusters_):
            members = np.flatnonzero(self.center_cluster_ == k)
            best[k] = members[np.argmax(res.count[members])]
        self.cluster_centers_ = centers[torch.as_tensor(best, device=centers.device)].cpu().numpy().astype(np.float32)

    def _transform(self, X) -> torch.Tensor:
        """Checked input (n, d) -> what the kernel reads (n, d or n_components_): standardised, projected."""
        Xs = (as_float_tensor(X, self.mean_.device).float() - self.mean_) / self.scale_
        return Xs if self.components_ is None else Xs @ self.components_

    def _to_input_space(self, Z: torch.Tensor) -> torch.Tensor:
        """Points in the kernel's input space (m, ·) -> input features (m, d)."""
        if self.components_ is not None:
            Z = Z @ self.components_.T
        return Z * self.scale_ + self.mean_

    def _merge_threshold(self, anchors: dict | None) -> float:
        """The merge threshold in force: ``threshold``, or for "auto" 0.5 with label-like anchors, else 0.8."""
        if isinstance(self.threshold, str):
            return AUTO_THRESHOLD_ANCHORED if anchors is not None and anchors["complete"] else AUTO_THRESHOLD
        return float(self.threshold)

    @torch.no_grad()
    def predict(self, X):
        """Cluster of each new point under the fitted kernel and centers (NOISE if none is confident).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        return self.predict_confidence(X)[0]

    @torch.no_grad()
    def predict_confidence(self, X):
        """Labels and the confidence of each point's most confident center: two (n,) arrays.

        The confidence decides noise. With smoothing applied in ``fit``, the label is the
        one the point's nearest landmarks vote for, which can be another cluster's.
        """
        self._check_fitted()
        X = self._check_X(X, reset=False)
        Xs = self._transform(X)
        px = self.kernel_.embed_points(Xs)
        a = assign(self.kernel_, px, self.center_embeddings_, self.center_cluster_, self.noise_threshold,
                   int(self.memory_budget))
        return self._vote(Xs, a.labels), a.confidence

    def _vote(self, Xs: torch.Tensor, labels: np.ndarray) -> np.ndarray:
        """With smoothing applied in fit: the vote of each point's nearest landmarks. NOISE is kept unless
        fit relabelled it (``smooth_noise``), and then only for points within the radius of one of their
        nearest landmarks (its distance to its ``RECIPROCAL_NEIGHBORS``-th nearest landmark): a point far
        from all the data stays noise."""
        if getattr(self, "smoothing_points_", None) is None:
            return labels
        W = getattr(self, "smoothing_transform_", None)  # the space of the landmarks (see _smooth, _tree_fallback)
        Zg = Xs @ W if W is not None else Xs[:, :self.smoothing_points_.shape[1]]
        radius = getattr(self, "smoothing_radius_", None)  # None: noise kept, or a model saved before
        return revote(Zg, self.smoothing_points_, self.smoothing_labels_, labels, int(self.n_neighbors),
                      int(self.memory_budget), keep_noise=radius is None, radius=radius)

    def _clear_smoothing(self) -> None:
        """A new clustering makes the landmarks of an earlier smoothing stale."""
        self.smoothing_points_ = self.smoothing_labels_ = self.smoothing_radius_ = self.smoothing_transform_ = None
        self.smoothing_ = {"applied": False, "agreement": None, "unseen_groups": 0}
        self.fallback_ = {"applied": False, "kernel_f1": None, "tree_f1": None, "space": None}

    # ------------------------------------------------------------------ persistence
    def _export_state(self):
        tensors = {f"kernel.{k}": v for k, v in self.kernel_.state_dict().items()}
        tensors.update({
            "mean": self.mean_, "center_embeddings": self.center_embeddings_,
            **({} if self.components_ is None else {"components": self.components_}),
            "center_cluster": torch.as_tensor(self.center_cluster_),
            "cluster_centers": torch.as_tensor(self.cluster_centers_),
            "labels": torch.as_tensor(self.labels_), "confidence": torch.as_tensor(self.confidence_),
        })
        if getattr(self, "smoothing_points_", None) is not None:
            tensors.update(smoothing_points=self.smoothing_points_,
                           smoothing_labels=torch.as_tensor(self.smoothing_labels_))
            if getattr(self, "smoothing_radius_", None) is not None:
                tensors["smoothing_radius"] = self.smoothing_radius_
            if getattr(self, "smoothing_transform_", None) is not None:
                tensors["smoothing_transform"] = self.smoothing_transform_
        meta = {"scale": self.scale_, "hidden": list(self.hidden_), "n_clusters": self.n_clusters_,
                "n_iter": self.n_iter_, "n_seeds_used": self.n_seeds_used_,
                "converged_fraction": self.converged_fraction_, "side_info": self.side_info_,
                "training": {k: v for k, v in self.training_.items() if k != "history"},
                "smoothing": getattr(self, "smoothing_", None), "fallback": getattr(self, "fallback_", None)}
        return tensors, meta

    def _import_state(self, tensors, meta):
        device = tensors["mean"].device
        kwargs = {"activation": self.activation, "dropout": self.dropout}
        if self.kernel == "concat":
            kwargs["channels"] = self.conv_channels
        self.hidden_ = tuple(meta["hidden"])
        self.components_ = tensors.get("components")
        width = self.n_features_in_ if self.components_ is None else int(self.components_.shape[1])
        self.kernel_ = make_kernel(self.kernel, width, self.hidden_, **kwargs).to(device)
        self.kernel_.load_state_dict({k[len("kernel."):]: v for k, v in tensors.items() if k.startswith("kernel.")})
        self.kernel_.eval()
        self.mean_ = tensors["mean"]
        self.scale_ = float(meta["scale"])
        self.center_embeddings_ = tensors["center_embeddings"]
        self.center_cluster_ = tensors["center_cluster"].cpu().numpy()
        self.cluster_centers_ = tensors["cluster_centers"].cpu().numpy()
        self.labels_ = tensors["labels"].cpu().numpy()
        self.confidence_ = tensors["confidence"].cpu().numpy()
        self.smoothing_ = meta.get("smoothing")
        self.smoothing_points_ = tensors.get("smoothing_points")
        self.smoothing_labels_ = (tensors["smoothing_labels"].cpu().numpy() if "smoothing_labels" in tensors
                                  else None)
        self.smoothing_radius_ = tensors.get("smoothing_radius")
        self.smoothing_transform_ = tensors.get("smoothing_transform")
        self.fallback_ = meta.get("fallback")
        self.n_clusters_ = int(meta["n_clusters"])
        self.n_iter_ = int(meta["n_iter"])
        self.n_seeds_used_ = int(meta["n_seeds_used"])
        self.converged_fraction_ = float(meta["converged_fraction"])
        self.side_info_ = dict(meta["side_info"])
        self.training_ = dict(meta["training"])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True  # side information is needed to learn a kernel
        tags.non_deterministic = False
        return tags

    def _check_saved_state(self, tensors, meta, *, n_samples):
        """A stored state must fit together: finite scale > 0, shapes that match ``n_features_in_``."""
        from ._persistence import check_saved_scale, check_saved_shape, check_saved_sizes
        super()._check_saved_state(tensors, meta, n_samples=n_samples)
        d = self.n_features_in_
        check_saved_scale(meta, "scale")
        check_saved_shape(tensors, "mean", (d,))
        check_saved_shape(tensors, "components", (d, None), optional=True)
        check_saved_shape(tensors, "cluster_centers", (None, d))
        check_saved_shape(tensors, "confidence", (n_samples,))
        check_saved_sizes("hidden", meta["hidden"], tensors)
        if self.kernel == "concat":
            check_saved_sizes("conv_channels", self.conv_channels, tensors)


#: Merge thresholds of ``threshold="auto"``: with label-like anchors (every two anchored
#: groups known to differ) merging is constrained and a low threshold only joins what no
#: side information separates; otherwise (sparse pairs, other data) a stricter threshold
#: keeps classes apart.
AUTO_THRESHOLD_ANCHORED = 0.5
AUTO_THRESHOLD = 0.8
#: Most points the smoothing graph is built on (above it: a random subset, and a vote for the rest).
SMOOTH_MAX_POINTS = 100_000
#: Least share of smoothing-graph edges between two seeds that join one cluster for ``smoothing="auto"``.
SMOOTH_MIN_AGREEMENT = 0.9
#: ``fallback="tree"``: the Ward tree's clusters replace the kernel's when their pairwise F1 on
#: the side information is higher by at least this much ...
FALLBACK_MARGIN = 0.2
#: ... the side information holds at least this many "same" pairs (fewer decide nothing) ...
FALLBACK_MIN_SAME_PAIRS = 10
#: ... and the kernel found at most this share of the groups the side information holds: it
#: joins groups, which smoothing cannot undo (a kernel that splits them, smoothing mends)
FALLBACK_MAX_CLUSTER_SHARE = 0.5
#: Most points of one side-information group kept as fixed centers at inference.
MAX_ANCHORS_PER_GROUP = 64
#: Fewest points a group needs to give fixed centers: the groups of isolated "same" pairs
#: would otherwise each become a cluster of their own.
MIN_ANCHOR_GROUP = 3


def select_anchors(side: SideInfo) -> dict | None:
    """Points of each group kept as fixed centers: all, or ``MAX_ANCHORS_PER_GROUP`` spread over the group.

    Only groups of at least ``MIN_ANCHOR_GROUP`` points give anchors. Deterministic (no
    random draw), so every process of a distributed fit picks the same. Returns None when
    no group qualifies.
    """
    idx, grp = [], []
    for g, members in enumerate(side.members()):
        if members.size < MIN_ANCHOR_GROUP:
            continue
        if members.size > MAX_ANCHORS_PER_GROUP:
            members = members[np.unique(np.linspace(0, members.size - 1, MAX_ANCHORS_PER_GROUP).astype(np.int64))]
        idx.append(members)
        grp.append(np.full(members.size, g, dtype=np.int64))
    if not idx or sum(a.size for a in idx) == 0:
        return None
    index = np.concatenate(idx)
    order = np.argsort(index, kind="stable")
    used = np.array([g[0] for g in grp])  # the anchored groups, one entry each
    known = side.cannot.tocsr()[used][:, used]
    # label-like side information: every two anchored groups are known to differ
    complete = bool(known.count_nonzero() == used.size * (used.size - 1))
    return {"index": index[order], "group": np.concatenate(grp)[order], "cannot": side.cannot, "complete": complete}


def anchor_centers(qc: torch.Tensor, index: np.ndarray) -> CenterResult:
    """Fixed centers with embeddings ``qc`` (M, h) at the points ``index`` (inlier counts not measured: 0)."""
    z = np.zeros(index.size, dtype=np.int64)
    return CenterResult(qc=qc, seeds=np.asarray(index, dtype=np.int64),
                        n_iter=z, converged=np.ones(index.size, dtype=bool), fingerprint=z, count=z)


def concat_centers(a: CenterResult, b: CenterResult) -> CenterResult:
    return CenterResult(qc=torch.cat([a.qc, b.qc]), seeds=np.concatenate([a.seeds, b.seeds]),
                        n_iter=np.concatenate([a.n_iter, b.n_iter]), converged=np.concatenate([a.converged, b.converged]),
                        fingerprint=np.concatenate([a.fingerprint, b.fingerprint]),
                        count=np.concatenate([a.count, b.count]))


class _InstanceShift(torch.nn.Module):
    """The training forward pass as a module, so that a data-parallel wrapper can hold it."""

    def __init__(self, kernel: torch.nn.Module, n_steps: int):
        super().__init__()
        self.kernel = kernel
        self.n_steps = n_steps

    def forward(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:  # (U, d), (b, L) -> (b, L) logits
        return shift_instances(self.kernel, x, self.n_steps, index)


def pseudo_labels(side: SideInfo, labels: np.ndarray, confidence: np.ndarray, share: float) -> np.ndarray:
    """Partial labels (n,) for self-training: the side information plus confident cluster members.

    Each side-information group takes the cluster most of its points are in (a group
    whose points are all NOISE, or whose cluster already holds a group known to differ
    from it, keeps a label of its own), so "same" and "different" stay true. Of the
    points without side information, the ``share`` most confident of each cluster take
    the cluster's label. -1 elsewhere.
    """
    n = side.n_samples
    y = np.full(n, -1, dtype=np.int64)
    fresh = int(labels.max(initial=-1)) + 1  # labels no cluster uses
    cannot = side.cannot.tocsr()
    taken: dict[int, list[int]] = {}  # cluster -> groups labelled with it
    for g, members in enumerate(side.members()):
        lab = labels[members]
        lab = lab[lab >= 0]
        c = int(np.bincount(lab).argmax()) if lab.size else -1
        if c < 0 or any(cannot[g, h] for h in taken.get(c, ())):
            c, fresh = fresh, fresh + 1
        taken.setdefault(c, []).append(g)
        y[members] = c
    free = (side.group < 0) & (labels >= 0)
    for k in np.unique(labels[free]):
        idx = np.flatnonzero(free & (labels == k))
        m = int(np.ceil(share * idx.size))
        if m:
            y[idx[np.argsort(-confidence[idx], kind="stable")[:m]]] = k
    return y


AUTO_COMPONENTS_MAX = 128
#: Leading principal components that smoothing's graph reads when the input is projected
#: (label spreading from 5% side information, benchmarks/results/smoothing-neighbors.md:
#: ahead on 6 of the 9 projected data sets, COIL-20 0.922 vs 0.893 on all 128, R8 0.907
#: vs 0.892, MNIST-10k 0.940 vs 0.933; behind on ORL 0.304 vs 0.317, UMIST, AR by < 0.005).
SMOOTH_COMPONENTS = 64
AUTO_VARIANCE = 0.95


def principal_components(Xs: torch.Tensor, n_components) -> torch.Tensor | None:
    """Leading principal directions (d, c) of the centred rows ``Xs`` (n, d), or None for no projection.

    ``n_components`` as in :class:`DMSClustering`; the directions are those of
    :func:`dmshift.linalg.principal_axes` (float64 covariance, signs fixed).
    """
    n, d = Xs.shape
    if n_components is None or (isinstance(n_components, str) and d <= AUTO_COMPONENTS_MAX):
        return None
    if isinstance(n_components, numbers.Integral) and n_components >= d:
        return None
    evals, evecs = principal_axes(Xs)
    if isinstance(n_components, numbers.Integral):
        c = int(n_components)
    else:
        share = AUTO_VARIANCE if isinstance(n_components, str) else float(n_components)
        total = float(evals.sum())
        c = int(torch.searchsorted(torch.cumsum(evals, 0) / max(total, 1e-300),
                                   torch.tensor(share, dtype=evals.dtype, device=evals.device)).item()) + 1
        if isinstance(n_components, str):
            c = min(c, AUTO_COMPONENTS_MAX)
    c = max(1, min(c, d, n))
    return evecs[:, :c].to(Xs.dtype)


class DataParallelPlan:
    """How one process takes part in training: all of each batch, on its own.

    :mod:`dmshift.distributed` subclasses it so that each rank shifts a slice of every
    batch's instances and the gradients and losses are summed over ranks.
    """

    verbose = True

    def rows(self, batch_size: int) -> tuple[int, int]:
        """The instances ``[lo, hi)`` of every batch that this process shifts."""
        return 0, batch_size

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        return module

    def reduce_loss(self, loss: torch.Tensor) -> torch.Tensor:
        """This process's share of the batch loss -> the loss to differentiate."""
        return loss

    def reduce_eval(self, parts: torch.Tensor) -> torch.Tensor:
        """This process's shares of the validation losses -> the whole losses."""
        return parts
