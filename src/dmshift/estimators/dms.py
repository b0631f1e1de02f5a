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
from ..meanshift import (find_centers, find_centers_adaptive, input_space_centers, select, shift_instances,
                         unique_centers)
from ..merge import SIMILARITIES, assign, center_similarity, confidence_matrix, merge_centers, relabel_by_size
from ..sampling import InstanceSampler, SamplerConfig
from ..train import TrainConfig, train_loop
from ._base import BaseClustering

__all__ = ["DMSClustering"]

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
    weight_decay : float, default=0.0
    schedule : {"constant", "cosine"}, default="constant"
    loss_balance : {"none", "balanced"}, default="none"
        "none" is eq. 3 (mean over labelled points); "balanced" averages the positive and
        negative terms with equal weight.
    input_noise : float, default=0.0
        Std of Gaussian noise added to standardised training inputs.
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
    similarity : {"cosine", "bistochastic", "bistochastic-cosine", "jaccard"}, default="cosine"
        How centers are compared before merging (see :mod:`dmshift.merge`).
    threshold : float, default=0.8
        Centers with similarity >= threshold are merged (the paper uses 0.5 on its
        similarity; with the cosine similarity 0.8 merged fewer distinct digits on the
        digits benchmark).
    noise_threshold : float, default=0.01
        A point whose best confidence is below this is NOISE (0 assigns every point; the
        paper's rule is 0.5). Held-out points often get modest confidences from a kernel
        trained on few labelled points, so the default floor only calls points noise that
        no center claims at all.
    standardize : bool, default=True
        Centre the features and divide by their RMS standard deviation before training.
    memory_budget : int, default=256 MiB
        Bytes for one tile of pairwise intermediate values.
    time_limit : float or None, default=None
        Seconds of training after which the best model so far is kept.
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
        Cluster of each training point, NOISE (-1) where no cluster is confident.
    n_clusters_ : int
    cluster_centers_ : ndarray of shape (n_clusters_, n_features)
        The center (in input space) of the largest inlier set in each cluster.
    n_iter_ : int
        Most inference shift iterations any seed took.
    training_ : dict
        Training record: steps, stop reason, best step, history.
    side_info_ : dict
        Summary of the side information used.
    """

    def __init__(self, *, kernel="subtract", init="distance", init_quantile=0.02, n_layers=3, hidden=None, width_cap=256, activation="relu",
                 dropout=0.0, conv_channels=1, n_shift_steps=4, max_steps=1000, batch_size=96,
                 instance_size=(200, 300), labelled_ratio=(1 / 3, 1.0), positive_ratio=(1 / 20, 1 / 10),
                 lr=1e-3, weight_decay=0.0, schedule="constant", loss_balance="none", input_noise=0.0,
                 validation_fraction=0.0, patience=None, eval_every=50, seeding="random", n_seeds=500,
                 max_iter=50, similarity="cosine", threshold=0.8, noise_threshold=0.01, standardize=True,
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
        self.schedule = schedule
        self.loss_balance = loss_balance
        self.input_noise = input_noise
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.eval_every = eval_every
        self.seeding = seeding
        self.n_seeds = n_seeds
        self.max_iter = max_iter
        self.similarity = similarity
        self.threshold = threshold
        self.noise_threshold = noise_threshold
        self.standardize = standardize
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
        check_param("schedule", self.schedule, ("constant", "cosine"))
        check_param("loss_balance", self.loss_balance, ("none", "balanced"))
        check_fraction("input_noise", self.input_noise, low=0.0, high=math.inf, low_open=False)
        check_fraction("validation_fraction", self.validation_fraction, low=0.0, high=1.0, low_open=False)
        check_positive_int("patience", self.patience, allow_none=True)
        check_positive_int("eval_every", self.eval_every)
        check_param("seeding", self.seeding, ("random", "adaptive"))
        check_positive_int("n_seeds", self.n_seeds)
        check_positive_int("max_iter", self.max_iter, minimum=0)
        check_param("similarity", self.similarity, SIMILARITIES)
        check_fraction("threshold", self.threshold, low=0.0, high=1.0, high_open=False)
        check_fraction("noise_threshold", self.noise_threshold, low=0.0, high=1.0, low_open=False)
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

        Xt = as_float_tensor(X, device).float()
        if self.standardize:
            mean = Xt.mean(0)
            scale = float(torch.sqrt(Xt.var(0, unbiased=False).mean()).clamp_min(1e-12))
        else:
            mean, scale = torch.zeros(d, device=device), 1.0
        self.mean_ = mean
        self.scale_ = scale
        Xs = (Xt - mean) / scale  # (n, d)

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

        t0 = time.perf_counter()
        self.training_ = self._train(Xs, side, rng, seed, device)
        self.training_["seconds"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        self._cluster(Xs, rng)
        self.inference_seconds_ = time.perf_counter() - t0
        return self

    def _loss(self, logits: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        lab = tgt >= 0
        per = F.binary_cross_entropy_with_logits(logits, tgt.clamp_min(0.0), reduction="none")
        if self.loss_balance == "balanced":
            pos, neg = lab & (tgt > 0.5), lab & (tgt < 0.5)
            lp = (per * pos).sum() / pos.sum().clamp_min(1)
            ln = (per * neg).sum() / neg.sum().clamp_min(1)
            return 0.5 * (lp + ln)
        return (per * lab).sum() / lab.sum().clamp_min(1)

    def _train(self, Xs, side, rng, seed, device) -> dict:
        cfg = SamplerConfig(batch_size=self.batch_size, instance_size=tuple(int(v) for v in self.instance_size),
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

        def batch_tensors(idx, tgt):
            return Xs[torch.as_tensor(idx, device=device)], torch.as_tensor(tgt, device=device)

        def step_loss(step):
            x, tgt = batch_tensors(*sampler.sample())  # (B, L, d), (B, L)
            if self.input_noise > 0:
                x = x + self.input_noise * torch.randn(x.shape, generator=gen, device=device, dtype=x.dtype)
            return self._loss(shift_instances(kernel, x, T), tgt)

        evaluate = None
        if val_points.size:
            vs = InstanceSampler(side, cfg, np.random.default_rng(seed + 1), init_points=val_points)
            val_batches = [batch_tensors(*vs.sample()) for _ in range(4)]
            # score only pairs that involve a held-out point: the initial point is held out,
            # and targets of training-set points are kept since they still test the held-out center

            @torch.no_grad()
            def evaluate():
                return float(np.mean([float(self._loss(shift_instances(kernel, x, T), t)) for x, t in val_batches]))

        tcfg = TrainConfig(max_steps=self.max_steps, lr=self.lr, weight_decay=self.weight_decay,
                           schedule=self.schedule, eval_every=self.eval_every, patience=self.patience,
                           time_limit=self.time_limit, verbose=self.verbose)
        res = train_loop(kernel, step_loss, tcfg, evaluate=evaluate, checkpoint=self._checkpoint,
                         seed=seed)
        return {"steps": res.steps, "best_step": res.best_step, "stop_reason": res.stop_reason,
                "best_val_loss": None if evaluate is None else res.best_score,
                "history": res.history, "n_train_points": int(train_points.size), "n_val_points": int(val_points.size)}

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def _embed(self, Xs):
        return self.kernel_.embed_points(Xs), self.kernel_.embed_centers(Xs)

    @torch.no_grad()
    def _cluster(self, Xs, rng):
        kernel, budget = self.kernel_, int(self.memory_budget)
        px, qx = self._embed(Xs)  # (n, h), (n, h)
        n = Xs.shape[0]
        if self.seeding == "random":
            seeds = rng.choice(n, size=min(self.n_seeds, n), replace=False)
            res = find_centers(kernel, px, qx, np.sort(seeds), max_iter=self.max_iter, memory_budget=budget)
        else:
            res = find_centers_adaptive(kernel, px, qx, rng, max_seeds=self.n_seeds, max_iter=self.max_iter,
                                        memory_budget=budget)
        self.n_seeds_used_ = int(res.seeds.size)
        self.n_iter_ = int(res.n_iter.max()) if res.n_iter.size else 0
        self.converged_fraction_ = float(res.converged.mean()) if res.converged.size else 1.0
        res = select(res, unique_centers(res))
        H = confidence_matrix(kernel, px, res.qc, budget)  # (M, n)
        S = center_similarity(H, self.similarity, kernel.inlier_threshold)  # (M, M)
        comp = merge_centers(S, self.threshold)
        del H, S
        a = assign(kernel, px, res.qc, comp, self.noise_threshold, budget)
        labels, center_cluster = relabel_by_size(a.labels, comp)
        keep = center_cluster != NOISE
        res = select(res, np.flatnonzero(keep))
        self.center_embeddings_ = res.qc  # (M, h)
        self.center_cluster_ = center_cluster[keep]
        self.labels_ = labels
        self.confidence_ = a.confidence
        self.n_clusters_ = int(labels.max(initial=-1) + 1)
        centers = input_space_centers(kernel, px, Xs, res.qc, budget) * self.scale_ + self.mean_  # (M, d)
        best = np.zeros(self.n_clusters_, dtype=np.int64)
        for k in range(self.n_clusters_):
            members = np.flatnonzero(self.center_cluster_ == k)
            best[k] = members[np.argmax(res.count[members])]
        self.cluster_centers_ = centers[torch.as_tensor(best, device=centers.device)].cpu().numpy().astype(np.float32)

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
        """Labels and the confidence of the chosen center for each point: two (n,) arrays."""
        self._check_fitted()
        X = self._check_X(X, reset=False)
        device = self.mean_.device
        Xs = (as_float_tensor(X, device).float() - self.mean_) / self.scale_
        px = self.kernel_.embed_points(Xs)
        a = assign(self.kernel_, px, self.center_embeddings_, self.center_cluster_, self.noise_threshold,
                   int(self.memory_budget))
        return a.labels, a.confidence

    # ------------------------------------------------------------------ persistence
    def _export_state(self):
        tensors = {f"kernel.{k}": v for k, v in self.kernel_.state_dict().items()}
        tensors.update({
            "mean": self.mean_, "center_embeddings": self.center_embeddings_,
            "center_cluster": torch.as_tensor(self.center_cluster_),
            "cluster_centers": torch.as_tensor(self.cluster_centers_),
            "labels": torch.as_tensor(self.labels_), "confidence": torch.as_tensor(self.confidence_),
        })
        meta = {"scale": self.scale_, "hidden": list(self.hidden_), "n_clusters": self.n_clusters_,
                "n_iter": self.n_iter_, "n_seeds_used": self.n_seeds_used_,
                "converged_fraction": self.converged_fraction_, "side_info": self.side_info_,
                "training": {k: v for k, v in self.training_.items() if k != "history"}}
        return tensors, meta

    def _import_state(self, tensors, meta):
        device = tensors["mean"].device
        kwargs = {"activation": self.activation, "dropout": self.dropout}
        if self.kernel == "concat":
            kwargs["channels"] = self.conv_channels
        self.hidden_ = tuple(meta["hidden"])
        self.kernel_ = make_kernel(self.kernel, self.n_features_in_, self.hidden_, **kwargs).to(device)
        self.kernel_.load_state_dict({k[len("kernel."):]: v for k, v in tensors.items() if k.startswith("kernel.")})
        self.kernel_.eval()
        self.mean_ = tensors["mean"]
        self.scale_ = float(meta["scale"])
        self.center_embeddings_ = tensors["center_embeddings"]
        self.center_cluster_ = tensors["center_cluster"].cpu().numpy()
        self.cluster_centers_ = tensors["cluster_centers"].cpu().numpy()
        self.labels_ = tensors["labels"].cpu().numpy()
        self.confidence_ = tensors["confidence"].cpu().numpy()
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
