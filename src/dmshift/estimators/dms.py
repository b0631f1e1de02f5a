"""``DMSClustering``: Differentiable Mean Shift as a scikit-learn estimator.

``fit`` runs the pipeline of DMS as a sequence of stages, each a function of its own
module that takes values and returns a small result: prepare the input
(:mod:`dmshift.preprocessing`), train a kernel K(x, c) on the side information by
differentiable mean shift on sampled instances (:mod:`dmshift.instance_training`, paper
§3.3, §4.2), cluster with it (:mod:`dmshift.clustering`, §3.2, §4.3), repeat on
pseudo-labels (:mod:`dmshift.self_training`), fall back to a Ward tree on thin side
information (:mod:`dmshift.fallback`) and smooth the labels over a neighbour graph
(:mod:`dmshift.smoothing_stage`). This file holds the parameters and their checks, the
order of the stages, ``predict``, persistence and tags; the algorithms live in the
stage modules.
"""

from __future__ import annotations

import logging
import math
import numbers
import time
from functools import partial

import numpy as np
import torch

from .._validation import check_fraction, check_param, check_positive_int, check_range_pair, resolve_seed
from ..anchors import select_anchors
from ..clustering import ClusterParams, Clustering, cluster, merge_threshold
from ..constraints import SideInfo
from ..fallback import tree_fallback
from ..instance_training import KernelSpec, TrainingParams, build_kernel, train_kernel
from ..kernels import DEFAULT_MEMORY_BUDGET
from ..merge import SIMILARITIES, assign
from ..preprocessing import prepare, to_input_space, transform
from ..self_training import self_train
from ..settings import DMSSettings
from ..smoothing import revote
from ..smoothing_stage import NOT_SMOOTHED, Landmarks, SmoothingOutcome, smooth_clustering
from ._base import BaseClustering, standardization

__all__ = ["DMSClustering"]

logger = logging.getLogger("dmshift")


class DMSClustering(BaseClustering):
    """Differentiable Mean Shift: clusters learnt from side information, no k needed.

    Measured effects of the choices below are in ``docs/methods.md`` and
    ``benchmarks/results/`` (see its README); this docstring says what each does.

    Parameters
    ----------
    kernel : {"subtract", "concat"}, default="subtract"
        Kernel architecture (paper Table 1).
    init : {"distance", "default"}, default="distance"
        "distance" starts the kernel as a distance kernel whose bandwidth is the
        ``init_quantile`` of pairwise distances; "default" is PyTorch's initialisation (paper).
    init_quantile : float, default=0.02
    n_layers : int, default=3
        Fully connected layers in the kernel, the output layer included (paper: 3).
    hidden : tuple of int or None, default=None
        Hidden widths; None gives N/2, N/4, ... capped at ``width_cap``.
    width_cap : int or None, default=256
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
        Decoupled (AdamW) weight decay (the paper: none): with few labelled points the
        kernel otherwise fits them too closely.
    prior_decay : float, default=0.0
        Strength of an L2 pull of the weights toward their initial values, relative to their size.
    schedule : {"constant", "cosine"}, default="constant"
    loss_balance : {"none", "balanced"}, default="none"
        "none" is eq. 3; "balanced" weighs the positive and negative terms equally.
    input_noise : float, default=0.3
        Std of Gaussian noise added to the training points (0: the paper's training).
    validation_fraction : float, default=0.0
        Share of labelled points held back to choose the best training step.
    patience : int or None, default=None
        Evaluations without improvement before training stops.
    eval_every : int, default=50
    seeding : {"random", "adaptive"}, default="random"
        "random" draws ``n_seeds`` points (paper); "adaptive" seeds from uncovered points.
    n_seeds : int, default=500
    max_iter : int, default=50
        Cap on inference shift iterations per seed.
    inference_side_info : bool, default=True
        Side-information points (``settings.anchors``) also seed mean shift and stay fixed
        centers of their group, and merging never joins groups known to differ. False is
        the paper's inference.
    similarity : {"cosine", "bistochastic", "bistochastic-cosine", "jaccard"}, default="cosine"
        How centers are compared before merging (:mod:`dmshift.merge`).
    threshold : "auto" or float, default="auto"
        Centers with similarity >= threshold are merged; "auto" is ``settings.threshold``
        (a lower value when label-like side information constrains the merge).
    noise_threshold : float, default=0.01
        A point whose best confidence is below this is NOISE (the paper: 0.5).
    standardize : bool, default=True
        Centre the features and divide by their RMS standard deviation.
    n_components : "auto", int, float or None, default="auto"
        Project the standardised features on their leading principal components (fitted on
        all of ``X``, no side information): an int keeps that many, a float in (0, 1) that
        share of the variance, None none; "auto" follows ``settings.projection``. Keeps the
        first layer's cost down on wide inputs.
    self_training : int, default=1
        Rounds of self-training: the most confident ``self_training_share`` of each
        cluster become pseudo-labels and the kernel is trained again from its initial
        weights (0: the paper's method).
    self_training_share : float, default=0.5
    smoothing : {"auto", "graph", None}, default="auto"
        After the last round, spread labels seeded by the side information and by each
        cluster's most confident points over the ``n_neighbors`` graph of the kernel's input
        (:mod:`dmshift.smoothing_stage`); side information is never overruled. "auto" only
        when the graph agrees with the seeds (``settings.smoothing.min_agreement``), "graph"
        always, None never (the paper's assignment).
    smooth_noise : bool, default=True
        With smoothing applied, noise takes the label spreading gives it, in ``fit`` and in
        ``predict``'s vote; False keeps it noise.
    n_neighbors : int, default=3
        Neighbours per point in the smoothing graph and in ``predict``'s vote.
    find_unseen : bool, default=True
        With smoothing applied, parts of the data that no side information reaches and
        that random side information would hardly have missed become clusters of their own
        (:mod:`dmshift.novelty`).
    fallback : {"tree", None}, default="tree"
        On thin side information, replace the kernel's clustering by the Ward tree's when
        the side information agrees with the tree far better (:mod:`dmshift.fallback`,
        ``settings.fallback``); smoothing is then skipped. Runs whatever ``smoothing``.
    memory_budget : int, default=256 MiB
        Bytes for one tile of pairwise intermediate values.
    time_limit : float or None, default=None
        Seconds of training (all rounds) after which the best model so far is kept.
    verbose : bool, default=False
        Log progress and a summary of the stages' decisions (logger "dmshift").
    device : str, default="auto"
    random_state : int, RandomState or None, default=None
    on_conflict : {"raise", "majority"}, default="raise"
        Contradictory side information: refuse it, or resolve it by vote.
    checkpoint_dir : str, path or None, default=None
        Folder for training checkpoints; ``fit(..., resume=True)`` continues from them.
    checkpoint_every : int, default=100
    settings : DMSSettings, dict or None, default=None
        Tuning numbers of the stages (:mod:`dmshift.settings`); None gives the defaults.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of each training point, NOISE (-1) where no cluster is confident.
    n_clusters_ : int
    cluster_centers_ : ndarray of shape (n_clusters_, n_features)
        The input-space center of the largest inlier set of each cluster.
    confidence_ : ndarray of shape (n_samples,)
    center_embeddings_ : tensor of shape (n_centers, h)
    center_cluster_ : ndarray of shape (n_centers,)
    components_ : tensor of shape (n_features, n_components_) or None
    n_iter_ : int
        Most inference shift iterations any seed took.
    training_ : dict
        Training record: steps, stop reason, best step, history, rounds.
    side_info_ : dict
        Summary of the side information used.
    smoothing_ : dict
        Whether smoothing was applied, the graph's agreement with the seeds, the unseen
        groups found and whether noise was relabelled.
    fallback_ : dict
        ``applied``, ``kernel_f1``, and ``tree_f1`` and ``space`` of the better tree.
    choices_ : dict
        What each deciding stage decided and why (self-training, fallback, smoothing) and
        the merge threshold in force.
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
                 random_state=None, on_conflict="raise", checkpoint_dir=None, checkpoint_every=100, settings=None):
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
        self.settings = settings

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
        self._settings()  # raises a ValueError naming a bad stage or field

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
        side = SideInfo.build(X.shape[0], y=y, pairs=pairs, on_conflict=self.on_conflict)
        side.check_trainable()
        self._begin_checkpoint(X, y, pairs, resume=resume)
        device, seed = self._setup()
        return self._fit_stages(X, side, device, seed)

    def _fit_stages(self, X, side: SideInfo, device, seed: int, *, plan=None, clusterer=None):
        """The pipeline of ``fit``; :func:`dmshift.distributed.fit_ddp` passes its data-parallel
        training ``plan`` and a ``clusterer`` with the signature of :func:`~dmshift.clustering.cluster`."""
        cfg, rng = self._settings(), np.random.default_rng(seed)
        data = prepare(X, device, partial(standardization, enabled=self.standardize), self.n_components,
                       cfg.projection)                                                      # -> Prepared
        kernel, hidden = build_kernel(data.X_std, self._kernel_spec(), seed, device)
        anchors = select_anchors(side, cfg.anchors) if self.inference_side_info else None  # -> Anchors | None
        to_input = partial(to_input_space, mean=data.mean, scale=data.scale, components=data.components)
        params, clusterer = self._cluster_params(), clusterer or cluster

        def train(side_r, seed_r, rng_r, time_left):                                        # -> Trained
            return train_kernel(kernel, data.X_std, side_r, rng_r or rng, seed_r, device, self._training_params(),
                                plan=plan, time_limit=time_left, checkpoint=None if plan else self._checkpoint)

        rounds = self_train(kernel, side, seed, rounds=self.self_training, share=float(self.self_training_share),
                            time_limit=self.time_limit, train=train,
                            cluster=lambda: clusterer(kernel, data.X_std, rng, params, to_input=to_input,
                                                      anchors=anchors))                      # -> SelfTrained
        t0 = time.perf_counter()
        fb, sm = self._refine(rounds.clustering, data.X_std, side, seed, cfg, data.components is not None, to_input)
        self.mean_, self.scale_, self.components_ = data.mean, data.scale, data.components
        self.kernel_, self.hidden_, self.side_info_, self.anchors_ = kernel, hidden, side.summary(), anchors
        self.training_, self.inference_seconds_ = rounds.record, rounds.seconds + time.perf_counter() - t0
        choices = {"self_training": {"rounds": len(rounds.record["rounds"]), "stopped": rounds.stopped},
                   "merge_threshold": merge_threshold(self.threshold, anchors, cfg.threshold),
                   "projection": None if data.components is None else int(data.components.shape[1])}
        self._set_clustering(sm.clustering, fb, sm, choices)
        return self

    def _refine(self, found: Clustering, Xs, side: SideInfo, seed: int, cfg: DMSSettings, projected: bool, to_input):
        """The stages after clustering: the tree fallback, then smoothing unless the fallback was taken."""
        fb = tree_fallback(found, Xs, side, seed, enabled=self.fallback is not None, n_neighbors=int(self.n_neighbors),
                           memory_budget=int(self.memory_budget), projected=projected, to_input=to_input,
                           settings=cfg.fallback, graph=cfg.smoothing)                       # -> FallbackResult
        if fb.applied or self.smoothing is None or found.n_clusters < 1:
            why = "tree fallback taken" if fb.applied else "off" if self.smoothing is None else "no cluster"
            return fb, SmoothingOutcome(fb.clustering, dict(NOT_SMOOTHED), None, why)
        sm = smooth_clustering(found, Xs, side, seed, mode=self.smoothing, n_neighbors=int(self.n_neighbors),
                               share=float(self.self_training_share), find_unseen=bool(self.find_unseen),
                               smooth_noise=bool(self.smooth_noise), memory_budget=int(self.memory_budget),
                               projected=projected, to_input=to_input, settings=cfg.smoothing,
                               novelty=cfg.novelty)                                          # -> SmoothingOutcome
        return fb, sm

    def _set_clustering(self, found: Clustering, fb=None, sm=None, choices: dict | None = None) -> None:
        """Write a clustering and the decisions of the later stages into the fitted attributes."""
        self.labels_, self.confidence_, self.n_clusters_ = found.labels, found.confidence, found.n_clusters
        self.center_embeddings_, self.center_cluster_ = found.center_embeddings, found.center_cluster
        self.cluster_centers_, self.n_iter_ = found.cluster_centers, found.n_iter
        self.n_seeds_used_, self.converged_fraction_ = found.n_seeds_used, found.converged_fraction
        self.smoothing_ = dict(NOT_SMOOTHED) if sm is None else sm.record
        self.fallback_ = ({"applied": False, "kernel_f1": None, "tree_f1": None, "space": None} if fb is None
                          else fb.record)
        lm = (sm.landmarks if sm is not None else None) or (fb.landmarks if fb is not None else None)
        self.smoothing_points_ = None if lm is None else lm.points
        self.smoothing_labels_ = None if lm is None else lm.labels
        self.smoothing_radius_ = None if lm is None else lm.radius
        self.smoothing_transform_ = None if lm is None else lm.transform
        self.choices_ = dict(choices or {})
        self.choices_["fallback"] = None if fb is None else {"applied": fb.applied, "reason": fb.reason}
        self.choices_["smoothing"] = None if sm is None else {"applied": sm.record["applied"], "reason": sm.reason}
        if self.verbose:
            logger.info("DMS stages: %s", "; ".join(f"{k}: {v}" for k, v in self.choices_.items()))

    def recluster(self, X, y=None, *, pairs=None, random_state=None):
        """Cluster the training data again with the fitted kernel and the current parameters.

        Runs the stages after training (clustering, tree fallback, smoothing) as ``fit``
        ends with them, so that a sweep over inference parameters needs one kernel. The
        side information of the fit's anchors is used; ``y`` / ``pairs`` (the fit's side
        information) feed the fallback and smoothing, which are skipped without them.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The training data of the fit.
        y, pairs : as for :meth:`fit`, optional
        random_state : int, RandomState or None, default=None
            An int seeds the seed draw and smoothing directly.

        Returns
        -------
        self
        """
        self._check_fitted()
        self._check_params()
        X = self._check_X(X, reset=False)
        if getattr(self, "anchors_", None) is not None and int(self.anchors_["index"].max()) >= X.shape[0]:
            raise ValueError(f"recluster needs the training data of the fit; got {X.shape[0]} points.")
        seed = int(random_state) if isinstance(random_state, numbers.Integral) else resolve_seed(random_state)
        Xs = self._transform(X)
        found = cluster(self.kernel_, Xs, np.random.default_rng(seed), self._cluster_params(),
                        to_input=self._to_input_space, anchors=getattr(self, "anchors_", None))
        if y is None and pairs is None:
            self._set_clustering(found)
            return self
        side = SideInfo.build(Xs.shape[0], y=y, pairs=pairs, on_conflict=self.on_conflict)
        fb, sm = self._refine(found, Xs, side, seed, self._settings(), self.components_ is not None,
                              self._to_input_space)
        self._set_clustering(sm.clustering, fb, sm, {k: v for k, v in getattr(self, "choices_", {}).items()
                                                    if k not in ("fallback", "smoothing")})
        return self

    def _cluster(self, Xs: torch.Tensor, rng, anchors=None) -> None:
        """The clustering stage alone on prepared points ``Xs`` (n, c), smoothing cleared (for benchmarks)."""
        self._set_clustering(cluster(self.kernel_, Xs, rng, self._cluster_params(), to_input=self._to_input_space,
                                     anchors=anchors))

    # ------------------------------------------------------------------ stage parameters
    def _settings(self) -> DMSSettings:
        s = self.settings
        return s if isinstance(s, DMSSettings) else DMSSettings.from_dict(s)

    def _kernel_spec(self) -> KernelSpec:
        return KernelSpec(kind=self.kernel, n_layers=self.n_layers, hidden=self.hidden, width_cap=self.width_cap,
                          activation=self.activation, dropout=self.dropout, conv_channels=self.conv_channels,
                          init=self.init, init_quantile=self.init_quantile)

    def _training_params(self) -> TrainingParams:
        return TrainingParams(
            batch_size=int(self.batch_size), instance_size=tuple(int(v) for v in self.instance_size),
            labelled_ratio=check_range_pair("labelled_ratio", self.labelled_ratio, low=1e-6, high=1e6),
            positive_ratio=check_range_pair("positive_ratio", self.positive_ratio, low=0.0, high=1.0),
            n_shift_steps=self.n_shift_steps, max_steps=self.max_steps, lr=self.lr, weight_decay=self.weight_decay,
            prior_decay=self.prior_decay, schedule=self.schedule, loss_balance=self.loss_balance,
            input_noise=self.input_noise, validation_fraction=self.validation_fraction, patience=self.patience,
            eval_every=self.eval_every, verbose=self.verbose)

    def _cluster_params(self) -> ClusterParams:
        return ClusterParams(seeding=self.seeding, n_seeds=self.n_seeds, max_iter=self.max_iter,
                             similarity=self.similarity, threshold=self.threshold, noise_threshold=self.noise_threshold,
                             memory_budget=int(self.memory_budget), thresholds=self._settings().threshold)

    # ------------------------------------------------------------------ inference
    def _transform(self, X) -> torch.Tensor:
        """Checked input (n, d) -> what the kernel reads (n, d or n_components_): standardised, projected."""
        return transform(X, self.mean_, self.scale_, self.components_)

    def _to_input_space(self, Z: torch.Tensor) -> torch.Tensor:
        """Points in the kernel's input space (m, ·) -> input features (m, d)."""
        return to_input_space(Z, self.mean_, self.scale_, self.components_)

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

        The confidence decides noise. With smoothing or the fallback applied in ``fit``,
        the label is the one the point's nearest landmarks vote for.
        """
        self._check_fitted()
        X = self._check_X(X, reset=False)
        Xs = self._transform(X)
        px = self.kernel_.embed_points(Xs)
        a = assign(self.kernel_, px, self.center_embeddings_, self.center_cluster_, self.noise_threshold,
                   int(self.memory_budget))
        return self._vote(Xs, a.labels), a.confidence

    def _vote(self, Xs: torch.Tensor, labels: np.ndarray) -> np.ndarray:
        """The vote of each point's nearest landmarks. NOISE is kept unless fit relabelled it
        (``smooth_noise``), and then only within the radius of one of its nearest landmarks."""
        if getattr(self, "smoothing_points_", None) is None:
            return labels
        W = getattr(self, "smoothing_transform_", None)  # the space of the landmarks
        Zg = Xs @ W if W is not None else Xs[:, :self.smoothing_points_.shape[1]]
        radius = getattr(self, "smoothing_radius_", None)  # None: noise kept, or a model saved before
        return revote(Zg, self.smoothing_points_, self.smoothing_labels_, labels, int(self.n_neighbors),
                      int(self.memory_budget), keep_noise=radius is None, radius=radius)

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
                "smoothing": getattr(self, "smoothing_", None), "fallback": getattr(self, "fallback_", None),
                "choices": getattr(self, "choices_", None)}
        return tensors, meta

    def _import_state(self, tensors, meta):
        device = tensors["mean"].device
        self.hidden_ = tuple(meta["hidden"])
        self.components_ = tensors.get("components")
        width = self.n_features_in_ if self.components_ is None else int(self.components_.shape[1])
        self.kernel_ = self._kernel_spec().make(width, self.hidden_).to(device)
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
        self.choices_ = dict(meta.get("choices") or {})
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
