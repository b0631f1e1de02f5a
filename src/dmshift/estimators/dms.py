"""``DMSClustering``: Differentiable Mean Shift as a scikit-learn estimator.

``fit`` runs DMS as stages, each a function of its own module returning a small result:
prepare the input (:mod:`dmshift.preprocessing`, the scaling chosen by k-fold validation,
:mod:`dmshift.validation`), train a kernel K(x, c) by differentiable mean shift
(:mod:`dmshift.instance_training`, paper §3.3, §4.2), cluster with it (:mod:`dmshift.clustering`,
§3.2, §4.3; :mod:`dmshift.self_training`), choose where the labels come from on the folds
(:mod:`dmshift.label_stage`) and honour the side information (:mod:`dmshift.side_info_stage`).
"""

from __future__ import annotations

import logging
import numbers
import time
import warnings
from functools import partial

import numpy as np
import torch

from .._progress import stage_bar
from .._validation import resolve_seed
from ..anchors import select_anchors
from ..clustering import Clustering, cluster, merge_threshold
from ..constraints import SideInfo
from ..fallback import NOT_TAKEN
from ..instance_training import build_kernel, train_kernel
from ..label_stage import candidates_for, choose_labels, cross_fitted, held_back_score
from ..kernels import DEFAULT_MEMORY_BUDGET
from ..merge import assign
from ..preprocessing import to_input_space, transform
from ..self_training import self_train
from ..settings import DMSSettings
from ..side_info_stage import honour, recall, thin_side_info_warning
from ..smoothing_stage import NOT_SMOOTHED, Landmarks, landmark_vote
from ._base import BaseClustering
from ._dms_params import (as_numpy, check_params, check_saved_state, cluster_params, export_state, fit_choices,
                          held_back, import_state, kernel_spec, label_options, on_device, prepare_input, settings_of,
                          training_params)

__all__ = ["DMSClustering"]

logger = logging.getLogger("dmshift")


class DMSClustering(BaseClustering):
    """Differentiable Mean Shift: clusters learnt from side information, no k needed (figures: docs/methods.md).

    Parameters
    ----------
    kernel : {"subtract", "concat"}, default="subtract"
        Kernel architecture (paper Table 1).
    init, init_quantile : {"principal", "distance", "default"}, float, default="principal", 0.02
        "principal" starts as a distance in the data's principal directions, "distance" in random
        ones, with a bandwidth the ``init_quantile`` of pairwise distances; "default" is PyTorch's (paper).
    n_layers : int, default=3
        Fully connected layers, the output layer included (paper: 3).
    hidden : tuple of int or None, default=None
        Hidden widths; None: N (± pairs along N/2 principal axes), N/4, ... capped at ``width_cap``.
    width_cap, activation, dropout : int or None, {"relu", "gelu", "tanh"}, float, default=256, "relu", 0.0
    conv_channels : int, default=1
        Filters of the concat kernel's 2 x 1 convolution.
    n_shift_steps : int, default=4
        Mean-shift steps T in training (paper: 4).
    max_steps, batch_size, instance_size : int, int, (int, int), default=1000, 32, (100, 150)
        Most training steps (batches), instances per batch, range of points per instance. Training
        stops earlier at a plateau of its loss (:class:`~dmshift.settings.TrainingSettings`).
    labelled_ratio, positive_ratio : (float, float), default=(1/3, 1), (1/20, 1/10)
        Ranges of |P ∪ N| : |U| and of |P| : |P ∪ N| in an instance.
    lr, weight_decay : float, default=3e-3, 0.3
        AdamW; the decay (the paper: none) keeps the kernel from fitting few labelled points too closely.
    prior_decay : float, default=0.0
        L2 pull of the weights toward their initial values, relative to their size.
    schedule : {"constant", "cosine"}, default="constant"
    loss_balance : {"none", "balanced"}, default="none"
        "none" is eq. 3; "balanced" weighs the positive and negative terms equally.
    input_noise : float, default=0.3
        Std of Gaussian noise added to the training points (0: the paper's training).
    validation_fraction : float, default=0.25
        The scaling and the labels' source are chosen by k-fold validation on all the side
        information, k = round(1 / fraction), the kernel trained on all of it (first without one
        fold, on which its graph's optimism is measured: ``settings.validation.cross_fit``); 0: none.
    patience, eval_every : int or None, int, default=None, 50
        With a patience, that share is held back from training instead: training stops after that
        many evaluations (every ``eval_every`` steps) of the learnt graph's F1 on it without gain,
        keeping the best state, and the labels are chosen on it. None: no early stopping.
    seeding : {"random", "adaptive"}, default="random"
        "random" draws ``n_seeds`` points (paper); "adaptive" seeds from uncovered points.
    n_seeds, max_iter : int, default=500, 50
        Seeds (or their cap), and inference shift iterations per seed.
    inference_side_info : bool, default=True
        Side-information points (``settings.anchors``) also seed mean shift and stay fixed
        centers, merging never joins groups known to differ, and the last stage makes the labels
        honour the side information (:mod:`dmshift.side_info_stage`). False: the paper's inference.
    similarity : {"cosine", "bistochastic", "bistochastic-cosine", "jaccard"}, default="cosine"
        How centers are compared before merging (:mod:`dmshift.merge`).
    threshold : "auto" or float, default="auto"
        Centers at least this similar merge; "auto" follows ``settings.threshold``.
    noise_threshold : float, default=0.01
        A point whose best confidence is below this is NOISE (the paper: 0.5).
    standardize : "auto", bool or {"feature", "global", "none"}, default="auto"
        True/"feature": each feature centred and scaled to unit variance, in float64 before the
        cast to float32; "global": one RMS scale for all; False/"none": as given; "auto": whichever
        of the first two the held-back side information prefers (``choices_["scaling"]``).
    n_components : "auto", int, float or None, default="auto"
        Principal components the kernel reads (fitted on all of ``X``): an int keeps that
        many, a float in (0, 1) that share of the variance, None all features; "auto"
        follows ``settings.projection``. Keeps the first layer cheap on wide inputs.
    self_training, self_training_share : int, float, default=0, 0.5
        Rounds of retraining from the initial weights on pseudo-labels, the most confident
        ``self_training_share`` of each cluster (0 rounds: the paper's method).
    smoothing : {"auto", "fused", "tree_seeded", "learnt", "input", None}, default="auto"
        Where the labels come from (:mod:`dmshift.label_stage`): labels seeded by the side
        information and each cluster's most confident points spread over the
        ``n_neighbors`` graph of the kernel's point embedding ("learnt"), of its input ("input",
        alias "graph"), over both with their scores added ("fused"; "tree_seeded": the clusters
        are the Ward tree's cut), or the kernel's clustering itself (None: the paper's assignment).
        "auto": the one of these (and the tree, with ``fallback``) with the best held-back F1,
        "tree_seeded" on a tie.
    smooth_noise : bool, default=True
        With smoothing applied, noise takes the spread label (also in ``predict``).
    n_neighbors : int, default=3
        Neighbours per point in the smoothing graph and in ``predict``'s vote.
    find_unseen : bool, default=True
        With smoothing applied, parts no side information reaches, and that random side
        information would hardly have missed, become clusters (:mod:`dmshift.novelty`).
    fallback : {"tree", None}, default="tree"
        The Ward tree's cut (:mod:`dmshift.fallback`) is a candidate for the labels too.
    memory_budget : int, default=256 MiB
        Bytes for one tile of pairwise intermediate values.
    time_limit : float or None, default=None
        Seconds of training (all rounds) after which the best model so far is kept.
    verbose : bool, default=False
        Log progress and what the stages decided (logger "dmshift").
    device, random_state : str, int, RandomState or None, default="auto", None
    on_conflict : {"raise", "majority"}, default="raise"
        Contradictory side information: refuse it, or resolve it by vote.
    checkpoint_dir, checkpoint_every : str, path or None, int, default=None, 100
        Folder for training checkpoints (``fit(..., resume=True)`` continues), steps between them.
    settings : DMSSettings, dict or None, default=None
        Tuning numbers of the stages (:mod:`dmshift.settings`); None: the defaults.

    Attributes
    ----------
    labels_, confidence_ : ndarray of shape (n_samples,)
        Cluster of each training point (NOISE = -1 where none is confident) and its best confidence.
    n_clusters_ : int
    cluster_centers_ : ndarray of shape (n_clusters_, n_features)
        The input-space center of the largest inlier set of each cluster.
    center_embeddings_, center_cluster_ : ndarray (n_centers, h), ndarray (n_centers,)
    components_ : ndarray of shape (n_features, n_components_) or None
    n_iter_ : int
        Most inference shift iterations any seed took.
    training_, side_info_ : dict
        Training record (steps, stop reason, history, rounds); summary of the side information.
    smoothing_, fallback_ : dict
        Whether smoothing (its agreement, unseen groups) and the fallback (kernel and tree
        F1, space) were applied.
    choices_ : dict
        What each deciding stage decided and why, and the merge threshold in force.
    """

    def __init__(self, *, kernel="subtract", init="principal", init_quantile=0.02, n_layers=3, hidden=None, width_cap=256, activation="relu",
                 dropout=0.0, conv_channels=1, n_shift_steps=4, max_steps=1000, batch_size=32,
                 instance_size=(100, 150), labelled_ratio=(1 / 3, 1.0), positive_ratio=(1 / 20, 1 / 10),
                 lr=3e-3, weight_decay=0.3, prior_decay=0.0, schedule="constant", loss_balance="none",
                 input_noise=0.3, validation_fraction=0.25, patience=None, eval_every=50, seeding="random",
                 n_seeds=500, max_iter=50, inference_side_info=True, similarity="cosine", threshold="auto",
                 noise_threshold=0.01, standardize="auto", n_components="auto", self_training=0,
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

    _check_params = check_params  # every parameter checked, each with its own message (estimators/_dms_params.py)
    _auto_scaling = True  # standardize="auto" is chosen at fit time

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
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None: give partial "
                             "labels y (-1 for unknown) and/or pairs (i, j, same) to learn the clustering from.")
        X = self._check_X(X, reset=True)
        side = SideInfo.build(X.shape[0], y=y, pairs=pairs, on_conflict=self.on_conflict)
        side.check_trainable()
        self._begin_checkpoint(X, y, pairs, resume=resume)
        device, seed = self._setup()
        return self._fit_stages(X, side, device, seed)

    def _fit_stages(self, X, side: SideInfo, device, seed: int, *, plan=None, clusterer=None):
        """The pipeline of ``fit``; :func:`dmshift.distributed.fit_ddp` passes its data-parallel
        training ``plan`` and a ``clusterer`` with the signature of :func:`~dmshift.clustering.cluster`."""
        cfg, rng = settings_of(self), np.random.default_rng(seed)
        holdout, folds = held_back(self, side, seed, cfg)  # -> Holdout | None (with a patience), k folds
        data, scaling = prepare_input(self, X, folds, seed, cfg, device)            # -> Prepared, dict | None
        kernel, hidden = build_kernel(data.X_std, kernel_spec(self), seed, device)
        if (thin := thin_side_info_warning(side, int(data.X_std.shape[1]), cfg.side_info.thin_same_pairs)):
            warnings.warn(thin, UserWarning, stacklevel=3)
        side_t = side if holdout is None else holdout.train  # what training and the candidates see
        anchors = select_anchors(side_t, cfg.anchors) if self.inference_side_info else None  # -> Anchors | None
        to_input = partial(to_input_space, mean=data.mean, scale=data.scale, components=data.components)
        params, clusterer = cluster_params(self), clusterer or cluster
        opts = label_options(self, data.components is not None)
        candidates = candidates_for(self.smoothing, self.fallback)
        evaluate = None if self.patience is None else held_back_score(kernel, data.X_std, holdout, seed, opts, cfg)
        first = cross_fitted(folds if holdout is None else [], candidates, cfg)  # train without it first: SideInfo

        def train(side_r, seed_r, rng_r, time_left, desc):                                  # -> Trained
            return train_kernel(kernel, data.X_std, side_r, rng_r or rng, seed_r, device, training_params(self),
                                plan=plan, time_limit=time_left, desc=desc, evaluate=evaluate,
                                checkpoint=None if plan else self._checkpoint)

        rounds = self_train(kernel, side_t, seed, rounds=self.self_training, share=float(self.self_training_share),
                            time_limit=self.time_limit, train=train, verbose=bool(self.verbose), first=first,
                            cluster=lambda: clusterer(kernel, data.X_std, rng, params, to_input=to_input, anchors=anchors))
        t0 = time.perf_counter()
        with stage_bar("choosing the labels", verbose=bool(self.verbose)):  # folds: the kernel saw their labels
            chosen = choose_labels(rounds.clustering, kernel, data.X_std, side, [holdout] if holdout else folds, seed,
                                   cfg=cfg, opts=opts, candidates=candidates, to_input=to_input,
                                   kernel_saw_folds=holdout is None, first_map=rounds.first_map)
        self._first_fold = None if first is None else (folds[0].held, rounds.first_map)  # for recluster; not saved
        self.mean_, self.scale_, self._components = data.mean, data.scale, data.components  # the tensor computes
        self.components_ = None if data.components is None else data.components.cpu().numpy()
        self.kernel_, self.hidden_, self.side_info_, self.anchors_ = kernel, hidden, side.summary(), anchors
        self.training_, self.inference_seconds_ = rounds.record, rounds.seconds + time.perf_counter() - t0
        choices = fit_choices(rounds, chosen.record, scaling, merge_threshold(self.threshold, anchors, cfg.threshold),
                              data.components)
        self._finish(chosen, kernel, data.X_std, side, cfg, to_input, choices)
        return self

    def _finish(self, chosen, kernel, Xs, side: SideInfo, cfg: DMSSettings, to_input, choices: dict) -> None:
        """The last stage on the chosen labels, then the fitted attributes."""
        sm, fb = chosen.smoothing, chosen.fallback
        honoured = None
        if self.inference_side_info:  # else the paper's inference: side information only trains the kernel
            honoured = honour(sm.clustering, kernel, Xs, side, landmarks=sm.landmarks or fb.landmarks,
                              memory_budget=int(self.memory_budget), to_input=to_input, settings=cfg.side_info,
                              tree_taken=fb.applied, keep=sm.unseen_clusters)
        self._set_clustering(sm.clustering, honoured, fb, sm, choices)

    def _set_clustering(self, found: Clustering, honoured=None, fb=None, sm=None, choices: dict | None = None) -> None:
        """Write a clustering and the decisions of the later stages into the fitted attributes."""
        found = found if honoured is None else honoured.clustering
        self.labels_, self.confidence_, self.n_clusters_ = found.labels, found.confidence, found.n_clusters
        self.center_embeddings_, self.center_cluster_ = as_numpy(found.center_embeddings), found.center_cluster
        self.cluster_centers_, self.n_iter_ = found.cluster_centers, found.n_iter
        self.n_seeds_used_, self.converged_fraction_ = found.n_seeds_used, found.converged_fraction
        self.smoothing_ = dict(NOT_SMOOTHED) if sm is None else sm.record
        self.fallback_ = dict(NOT_TAKEN) if fb is None else fb.record
        lm = honoured.landmarks if honoured is not None else \
            (sm.landmarks if sm is not None else None) or (fb.landmarks if fb is not None else None)
        self.side_points_, self.side_labels_ = (None, None) if honoured is None else \
            (honoured.side_points, honoured.side_labels)  # what predict gives the side-information points
        for name in ("points", "labels", "radius", "transform"):  # what predict's vote reads
            setattr(self, f"smoothing_{name}_", None if lm is None else as_numpy(getattr(lm, name)))
        self.choices_ = dict(choices or {})
        self.choices_["fallback"] = None if fb is None else {"applied": fb.applied, "reason": fb.reason}
        self.choices_["smoothing"] = None if sm is None else {"applied": sm.record["applied"], "reason": sm.reason}
        self.choices_["side_info"] = None if honoured is None else honoured.record
        if self.verbose:
            logger.info("DMS stages: %s", "; ".join(f"{k}: {v}" for k, v in self.choices_.items()))

    def recluster(self, X, y=None, *, pairs=None, random_state=None):
        """Cluster the training data again with the fitted kernel and the current parameters.

        The stages ``fit`` ends with (clustering with the fit's anchors, tree fallback,
        smoothing), so that a sweep over inference parameters trains one kernel.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The training data of the fit.
        y, pairs : as for :meth:`fit`, optional
            The fit's side information; without it the fallback and smoothing are skipped.
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
        found = cluster(self.kernel_, Xs, np.random.default_rng(seed), cluster_params(self),
                        to_input=self._to_input_space, anchors=getattr(self, "anchors_", None))
        if y is None and pairs is None:
            self._set_clustering(found)
            return self
        side = SideInfo.build(Xs.shape[0], y=y, pairs=pairs, on_conflict=self.on_conflict)
        cfg = settings_of(self)
        holdout, folds = held_back(self, side, seed, cfg)
        kept = getattr(self, "_first_fold", None)  # (held-back points, point map) of the fit's first fold
        first_map = kept[1] if kept and holdout is None and folds and np.array_equal(kept[0], folds[0].held) else None
        chosen = choose_labels(found, self.kernel_, Xs, side, [holdout] if holdout else folds, seed, cfg=cfg,
                               opts=label_options(self, self.components_ is not None), kernel_saw_folds=holdout is None,
                               candidates=candidates_for(self.smoothing, self.fallback), to_input=self._to_input_space,
                               first_map=first_map)
        threshold = merge_threshold(self.threshold, getattr(self, "anchors_", None), cfg.threshold)
        self._finish(chosen, self.kernel_, Xs, side, cfg, self._to_input_space,
                     {**getattr(self, "choices_", {}), "labels": chosen.record, "merge_threshold": threshold})
        return self

    def _cluster(self, Xs: torch.Tensor, rng, anchors=None) -> None:
        """The clustering stage alone on prepared points ``Xs`` (n, c), smoothing cleared (for benchmarks)."""
        self._set_clustering(cluster(self.kernel_, Xs, rng, cluster_params(self), to_input=self._to_input_space,
                                     anchors=anchors))

    # ------------------------------------------------------------------ inference
    def _transform(self, X) -> torch.Tensor:
        """Checked input (n, d) -> what the kernel reads (n, d or n_components_): standardised, projected."""
        return transform(X, self.mean_, self.scale_, self._projection(), self._device())

    def _to_input_space(self, Z: torch.Tensor) -> torch.Tensor:
        """Points in the kernel's input space (m, ·) -> input features (m, d)."""
        return to_input_space(Z, self.mean_, self.scale_, self._projection())

    def _projection(self) -> torch.Tensor | None:
        """``components_`` as the tensor the kernel's input is computed with (d, c); a model pickled when
        ``components_`` was itself a tensor has no ``_components``."""
        if "_components" not in self.__dict__:
            self._components = None if self.components_ is None else torch.as_tensor(self.components_,
                                                                                     device=self._device())
        return self._components

    def _device(self) -> torch.device:
        """Where the fitted kernel computes; fitted arrays are NumPy and move there when used."""
        return next(self.kernel_.parameters()).device

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
        qc = torch.as_tensor(self.center_embeddings_, device=Xs.device)  # (M, h)
        a = assign(self.kernel_, Xs, qc, self.center_cluster_, self.noise_threshold, int(self.memory_budget),
                   embedded=False)  # points embedded tile by tile: no (n, h) array held
        labels = recall(getattr(self, "side_points_", None), getattr(self, "side_labels_", None), Xs,
                        self._vote(Xs, a.labels), settings_of(self).side_info.recall_distance, int(self.memory_budget))
        return labels, a.confidence

    def _vote(self, Xs: torch.Tensor, labels: np.ndarray) -> np.ndarray:
        """``labels`` (n,) of the prepared points ``Xs`` (n, c) replaced by the vote of the fit's landmarks, if any."""
        if getattr(self, "smoothing_points_", None) is None:
            return labels
        lm = Landmarks(on_device(self.smoothing_points_, Xs.device), self.smoothing_labels_,
                       on_device(getattr(self, "smoothing_radius_", None), Xs.device),  # None: noise kept
                       on_device(getattr(self, "smoothing_transform_", None), Xs.device))
        return landmark_vote(lm, Xs, labels, int(self.n_neighbors), int(self.memory_budget))

    # ------------------------------------------------------------------ persistence
    _export_state = export_state  # what a model file holds (estimators/_dms_params.py)
    _import_state = import_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True  # side information is needed to learn a kernel
        tags.non_deterministic = False
        return tags

    _check_saved_state = check_saved_state  # a stored state must fit together (estimators/_dms_params.py)
