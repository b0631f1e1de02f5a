"""``L2CClustering``: Learning to Cluster (Meier, Stadelmann & Dürr) as a scikit-learn estimator.

Learning to Cluster trains a *set* model: it reads a whole set of points and returns a
probabilistic clustering of it, P(l | x_i, k) for every cluster count k <= k_max and
P(k), the number of clusters. ``fit`` trains it on sets sampled from the side
information: each training set holds 1..k_max groups of points known to be pairwise
different (labelled classes, or connected groups of "same" pairs that "different" pairs
separate), and the loss is the paper's weighted pairwise binary cross-entropy on

    P_ij = sum_k P(k) sum_l P(l | x_i, k) P(l | x_j, k),

``L = L_cc + λ L_ca``, with L_ca that pairwise loss, L_cc the cross-entropy of P(k) and
λ = ``assignment_weight``. ``predict(X)`` clusters X jointly, as *one* set: k = argmax P(k),
then each point's most probable index under that k. A set larger than ``max_set_size``
is refused with an error; nothing is ever split silently.

An LSTM reads a sequence, so the set is fed in a canonical order (by a fixed random
projection of the standardised inputs, drawn at ``fit``): the model is then exactly
permutation-equivariant (up to ties in that projection), and the same order is used in
training and inference.

Rule for ``labels_``: after ``fit``, ``labels_`` is the clustering of the training X as
one set when ``n_samples <= max_set_size``; for larger training data there is no
single-set clustering, so ``labels_`` is all NOISE (-1) and a warning says so. Use
``predict`` or :meth:`L2CClustering.predict_sets` on sets of at most ``max_set_size`` points.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import torch

from .._validation import check_fraction, check_param, check_positive_int, check_range_pair
from ..constants import NOISE
from ..constraints import SideInfo
from ..nets.set_lstm import SetLSTM
from ..nets.vgg import SmallVGG
from ..train import TrainConfig, train_loop
from ..scaling import check_standardization
from ._base import BaseClustering, fit_scaled, scaled
from ._l2c_loss import l2c_loss, pair_same_probability
from ._l2c_net import _Identity, _L2CNet, _relabel_by_size
from ._l2c_sets import _cluster_sizes, _SetSampler  # noqa: F401  (_cluster_sizes: benchmarks/peers_l2c.py)
from ._mmdc_net import _mlp
from ._shape_checks import _check_int_tuple, check_image_shape
from ._persistence import check_saved_shape, check_saved_sizes

__all__ = ["L2CClustering", "pair_same_probability", "l2c_loss"]


# ---------------------------------------------------------------------------- estimator
class L2CClustering(BaseClustering):
    """Learning to Cluster: a set model trained from side information that clusters a set jointly.

    Parameters
    ----------
    image_shape : tuple of int or None, default=None
        ``(H, W)`` or ``(H, W, C)`` when rows of X are flattened upright images.
    embedding : {"auto", "none", "mlp", "cnn"}, default="auto"
        Embedding network (a): "cnn" (conv/BN/ReLU/max-pool blocks, images only),
        "mlp", or "none" (raw features, as the paper does for 2-D points). "auto" is
        "cnn" for images and "mlp" otherwise.
    widths : tuple of int, default=(32, 64, 64)
        Channels of the CNN's blocks (paper: 3 conv/max-pooling layers).
    hidden : tuple of int, default=(256, 128)
        Widths of the MLP embedding.
    k_max : int, default=5
        Largest number of clusters in a set (paper: 5).
    width : int, default=288
        Units of the set network's input layer and residual BDLSTMs (paper: 288).
    n_layers : int, default=14
        Residual BDLSTM layers (paper: 14).
    count_units : int, default=128
    count_hidden : int, default=256
    assignment_weight : float, default=5.0
        λ in L = L_cc + λ L_ca (paper: 5).
    set_size : (int, int), default=(20, 72)
        Range of training set sizes (all sets of one batch share a size).
    max_set_size : int or None, default=None
        Largest set ``predict`` accepts; None is ``set_size[1]``, the largest size trained on.
    max_steps : int, default=2000
        Training batches.
    batch_size : int, default=32
        Sets per batch (paper: 200 for 2-D points).
    lr : float, default=1e-3
    weight_decay : float, default=0.0
    schedule : {"constant", "cosine"}, default="constant"
    validation_fraction : float, default=0.0
        Share of the groups held back to pick the best training step.
    patience : int or None, default=None
    eval_every : int, default=100
    standardize : bool or {"feature", "global", "image", "none"}, default=True
        Centre and scale the inputs in float64: True divides each feature by its standard
        deviation for vectors and uses one mean and standard deviation over all pixels for
        images ("image"); "feature", "global" (one RMS scale) and False ("none") as named;
        see :mod:`dmshift.scaling`.
    time_limit : float or None, default=None
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
        The training X clustered as one set when ``n_samples <= max_set_size``; all NOISE
        (-1) otherwise (see the module notes).
    n_clusters_ : int
        Number of clusters in ``labels_`` (0 when it is all NOISE).
    count_proba_ : ndarray of shape (k_max,) or None
        P(k) of the training X as one set (None when it is too large).
    max_set_size_ : int
    training_ : dict
    side_info_ : dict
    """

    def __init__(self, *, image_shape=None, embedding="auto", widths=(32, 64, 64), hidden=(256, 128), k_max=5,
                 width=288, n_layers=14, count_units=128, count_hidden=256, assignment_weight=5.0,
                 set_size=(20, 72), max_set_size=None, max_steps=2000, batch_size=32, lr=1e-3, weight_decay=0.0,
                 schedule="constant", validation_fraction=0.0, patience=None, eval_every=100, standardize=True,
                 time_limit=None, verbose=False, device="auto", random_state=None, on_conflict="raise",
                 checkpoint_dir=None, checkpoint_every=100):
        self.image_shape = image_shape
        self.embedding = embedding
        self.widths = widths
        self.hidden = hidden
        self.k_max = k_max
        self.width = width
        self.n_layers = n_layers
        self.count_units = count_units
        self.count_hidden = count_hidden
        self.assignment_weight = assignment_weight
        self.set_size = set_size
        self.max_set_size = max_set_size
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.eval_every = eval_every
        self.standardize = standardize
        self.time_limit = time_limit
        self.verbose = verbose
        self.device = device
        self.random_state = random_state
        self.on_conflict = on_conflict
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every

    # ------------------------------------------------------------------ checks
    def _check_params(self, n_features: int) -> dict:
        shape = check_image_shape(self.image_shape, n_features)
        check_param("embedding", self.embedding, ("auto", "none", "mlp", "cnn"))
        embedding = ("cnn" if shape is not None else "mlp") if self.embedding == "auto" else self.embedding
        if embedding == "cnn" and shape is None:
            raise ValueError("The 'embedding' parameter 'cnn' needs images: set image_shape. "
                             f"Got embedding={self.embedding!r} with image_shape=None instead.")
        widths = _check_int_tuple("widths", self.widths)
        hidden = _check_int_tuple("hidden", self.hidden)
        check_positive_int("k_max", self.k_max)
        check_positive_int("width", self.width, minimum=2)
        if self.width % 2:
            raise ValueError(f"The 'width' parameter must be even (two LSTM directions). Got {self.width!r} instead.")
        check_positive_int("n_layers", self.n_layers, minimum=0)
        check_positive_int("count_units", self.count_units)
        check_positive_int("count_hidden", self.count_hidden)
        check_fraction("assignment_weight", self.assignment_weight, low=0.0, high=math.inf, low_open=False)
        lo, hi = check_range_pair("set_size", self.set_size, low=2, high=1e6)
        if lo != int(lo) or hi != int(hi):
            raise ValueError(f"The 'set_size' parameter must hold ints. Got {self.set_size!r} instead.")
        check_positive_int("max_set_size", self.max_set_size, allow_none=True)
        check_positive_int("max_steps", self.max_steps)
        check_positive_int("batch_size", self.batch_size)
        check_fraction("lr", self.lr, low=0.0, high=math.inf)
        check_fraction("weight_decay", self.weight_decay, low=0.0, high=math.inf, low_open=False)
        check_param("schedule", self.schedule, ("constant", "cosine"))
        check_fraction("validation_fraction", self.validation_fraction, low=0.0, high=1.0, low_open=False)
        check_positive_int("patience", self.patience, allow_none=True)
        check_positive_int("eval_every", self.eval_every)
        if self.time_limit is not None:
            check_fraction("time_limit", self.time_limit, low=0.0, high=math.inf)
        return {"image_shape": shape, "embedding": embedding, "widths": widths, "hidden": hidden,
                "set_size": (int(lo), int(hi))}

    def _build_net(self, n_features: int) -> _L2CNet:
        cfg = self._config_
        shape = cfg["image_shape"]
        if cfg["embedding"] == "cnn":
            embed = SmallVGG(1 if len(shape) == 2 else shape[2], shape[:2], cfg["widths"])
        elif cfg["embedding"] == "mlp":
            embed = _mlp(n_features, cfg["hidden"])
        else:
            embed = _Identity(n_features)
        set_net = SetLSTM(embed.out_features, k_max=int(self.k_max), width=int(self.width),
                          n_layers=int(self.n_layers), count_units=int(self.count_units),
                          count_hidden=int(self.count_hidden))
        return _L2CNet(embed, embed.out_features, set_net, n_features,
                       shape if cfg["embedding"] == "cnn" else None)

    def _standardized(self, X: np.ndarray) -> torch.Tensor:
        return scaled(X, self.input_mean_, self.input_scale_, self.net_.order_key.device)  # (n, d) float32

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None, *, pairs=None, resume=False):
        """Train the set model on sets sampled from side information, and cluster X if it is one set.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), optional
            Partial labels: a class id for points with side information, -1 elsewhere.
        pairs : array-like of shape (m, 3), optional
            Rows ``(i, j, same)``. Training sets are drawn from groups of points linked
            by "same" that "different" pairs separate.
        resume : bool, default=False
            Continue training from the checkpoints in ``checkpoint_dir``.

        Points without side information take no part in training (a training set needs
        every pair's relation); X is clustered as one set only if it has at most
        ``max_set_size`` points (see the module notes).

        Returns
        -------
        self
        """
        if y is None and pairs is None:
            raise ValueError("L2CClustering requires y to be passed, but the target y is None, and no pairs were "
                             "given: pass partial labels y (-1 for unknown) and/or pairs (i, j, same).")
        X = self._check_X(X, reset=True)
        n, d = X.shape
        self._config_ = self._check_params(d)
        side = SideInfo.build(n, y=y, pairs=pairs, on_conflict=self.on_conflict)
        side.check_trainable()
        self.side_info_ = side.summary()
        self._begin_checkpoint(X, y, pairs, resume=resume)
        device, seed = self._setup()
        rng = np.random.default_rng(seed)

        self.input_mean_, self.input_scale_, Xs = fit_scaled(  # (d,), (d,), (n, d) float32
            X, self.standardize, device, image=self._config_["image_shape"] is not None)

        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            self.net_ = self._build_net(d).to(device)
        key = rng.standard_normal(d)
        self.net_.order_key.copy_(torch.as_tensor(key / np.linalg.norm(key), dtype=torch.float32))
        self.max_set_size_ = int(self.max_set_size) if self.max_set_size is not None else self._config_["set_size"][1]

        t0 = time.perf_counter()
        self.training_ = self._train(Xs, side, rng, device, seed)
        self.training_["seconds"] = time.perf_counter() - t0

        if n <= self.max_set_size_:
            labels, proba = self._cluster_sets(Xs[None])
            self.labels_, self.count_proba_ = labels[0], proba[0]
            self.n_clusters_ = int(self.labels_.max() + 1)
        else:
            warnings.warn(f"L2CClustering clusters sets of at most {self.max_set_size_} points (max_set_size) and "
                          f"X has {n}: labels_ is all NOISE (-1). Call predict on sets of at most "
                          f"{self.max_set_size_} points.", UserWarning, stacklevel=2)
            self.labels_ = np.full(n, NOISE, dtype=np.int64)
            self.count_proba_ = None
            self.n_clusters_ = 0
        return self

    def _train(self, Xs: torch.Tensor, side: SideInfo, rng: np.random.Generator, device: torch.device,
               seed: int | None = None) -> dict:
        cfg = self._config_
        groups = np.arange(side.n_groups)
        val_groups = np.zeros(0, dtype=np.int64)
        if self.validation_fraction > 0:
            n_val = int(round(self.validation_fraction * groups.size))
            if 2 <= n_val < groups.size - 1:
                val_groups = np.sort(rng.choice(groups, size=n_val, replace=False))
        train_groups = np.setdiff1d(groups, val_groups)
        sampler = _SetSampler(side, train_groups, int(self.k_max), cfg["set_size"], rng)
        net, w = self.net_, float(self.assignment_weight)

        def batch_loss(idx, same, n_true):
            x = Xs[torch.as_tensor(idx, device=device)]  # (B, n, d)
            assign, count_logits = net(x)
            return l2c_loss(assign, count_logits, torch.as_tensor(same, device=device),
                            torch.as_tensor(n_true, device=device), w)

        def step_loss(step):
            return batch_loss(*sampler.sample(int(self.batch_size)))[0]

        evaluate = None
        if val_groups.size:
            val_rng = np.random.default_rng(rng.integers(2**31))
            vs = _SetSampler(side, val_groups, int(self.k_max), cfg["set_size"], val_rng)
            val_batches = [vs.sample(int(self.batch_size)) for _ in range(4)]

            @torch.no_grad()
            def evaluate():
                return float(np.mean([float(batch_loss(*b)[0]) for b in val_batches]))

        tcfg = TrainConfig(max_steps=int(self.max_steps), lr=self.lr, weight_decay=self.weight_decay,
                           schedule=self.schedule, eval_every=int(self.eval_every), patience=self.patience,
                           time_limit=self.time_limit, verbose=self.verbose)
        res = train_loop(net, step_loss, tcfg, evaluate=evaluate, checkpoint=self._checkpoint, seed=seed)
        return {"steps": res.steps, "best_step": res.best_step, "stop_reason": res.stop_reason,
                "best_val_loss": None if evaluate is None else res.best_score, "history": res.history,
                "n_train_groups": int(train_groups.size), "n_val_groups": int(val_groups.size)}

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def _cluster_sets(self, Xs: torch.Tensor, chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """(S, n, d) standardised sets -> (S, n) labels and (S, K) P(k)."""
        self.net_.eval()
        labels, probas = [], []
        for s in range(0, Xs.shape[0], chunk):
            assign, count_logits = self.net_(Xs[s:s + chunk])  # (c, n, K, K), (c, K)
            proba = count_logits.softmax(-1)
            k = proba.argmax(-1)  # (c,) = k_hat - 1
            rows = assign[torch.arange(k.numel(), device=k.device), :, k]  # (c, n, K)
            labels.append(rows.argmax(-1).cpu().numpy())
            probas.append(proba.cpu().numpy())
        return _relabel_by_size(np.concatenate(labels)), np.concatenate(probas)

    def _check_set(self, X) -> np.ndarray:
        self._check_fitted()
        X = self._check_X(X, reset=False)
        if X.shape[0] > self.max_set_size_:
            raise ValueError(f"L2CClustering clusters one set of at most {self.max_set_size_} points "
                             f"(max_set_size). Got {X.shape[0]} points; split X into sets of at most "
                             f"{self.max_set_size_} points (predict_sets) or refit with a larger max_set_size.")
        return X

    @torch.no_grad()
    def predict(self, X):
        """Cluster X jointly, as one set.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), n_samples <= ``max_set_size_``

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Clusters 0..m-1 numbered by decreasing size (ties: by the network's index).

        Raises
        ------
        ValueError
            If X has more than ``max_set_size_`` points.
        """
        X = self._check_set(X)
        return self._cluster_sets(self._standardized(X)[None])[0][0]

    @torch.no_grad()
    def predict_count(self, X):
        """P(k) of X as one set: an array of shape (k_max,) (entry k-1 for k clusters)."""
        X = self._check_set(X)
        return self._cluster_sets(self._standardized(X)[None])[1][0]

    @torch.no_grad()
    def predict_sets(self, X_sets, *, return_count_proba: bool = False):
        """Cluster many sets of one size, each jointly and independently of the others.

        Parameters
        ----------
        X_sets : array-like of shape (n_sets, set_size, n_features)
        return_count_proba : bool, default=False

        Returns
        -------
        labels : ndarray of shape (n_sets, set_size)
        count_proba : ndarray of shape (n_sets, k_max), if asked for
        """
        self._check_fitted()
        A = np.asarray(X_sets)
        if A.ndim != 3 or A.shape[0] == 0:
            raise ValueError(f"The 'X_sets' parameter must be a non-empty 3-D array (n_sets, set_size, n_features). "
                             f"Got an array of shape {A.shape} instead.")
        S, n, d = A.shape
        if n > self.max_set_size_:
            raise ValueError(f"L2CClustering clusters sets of at most {self.max_set_size_} points (max_set_size). "
                             f"Got sets of {n} points.")
        X = self._check_X(A.reshape(S * n, d), reset=False)
        labels, proba = self._cluster_sets(self._standardized(X).reshape(S, n, d))
        return (labels, proba) if return_count_proba else labels

    # ------------------------------------------------------------------ persistence
    def _export_state(self):
        tensors = {f"net.{k}": v for k, v in self.net_.state_dict().items()}
        tensors.update({"input_mean": torch.as_tensor(self.input_mean_), "labels": torch.as_tensor(self.labels_)})
        if self.count_proba_ is not None:
            tensors["count_proba"] = torch.as_tensor(self.count_proba_)
        meta = {"input_scale": self.input_scale_.tolist(), "n_clusters": self.n_clusters_, "max_set_size": self.max_set_size_,
                "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self._config_.items()},
                "side_info": self.side_info_, "training": {k: v for k, v in self.training_.items() if k != "history"}}
        return tensors, meta

    def _check_loaded_params(self):
        self._check_params(self.n_features_in_)

    def _check_saved_state(self, tensors, meta, *, n_samples):
        super()._check_saved_state(tensors, meta, n_samples=n_samples)
        check_saved_shape(tensors, "input_mean", (self.n_features_in_,))
        check_standardization(tensors["input_mean"].double().cpu().numpy(), meta["input_scale"], self.n_features_in_)
        check_positive_int("max_set_size", meta["max_set_size"])
        cfg = meta["config"]
        for key in {"cnn": ("image_shape", "widths"), "mlp": ("hidden",)}.get(cfg["embedding"], ()):
            check_saved_sizes(key, cfg[key], tensors)
        for key in ("k_max", "width", "count_units", "count_hidden"):
            check_saved_sizes(key, getattr(self, key), tensors)
        if self.n_layers > len(tensors):
            raise ValueError(f"'n_layers' must be at most the number of stored tensors ({len(tensors)}). "
                             f"Got {self.n_layers!r} instead")

    def _import_state(self, tensors, meta):
        device = tensors["input_mean"].device
        cfg = dict(meta["config"])
        for key in ("image_shape", "widths", "hidden", "set_size"):
            cfg[key] = None if cfg[key] is None else tuple(cfg[key])
        self._config_ = cfg
        self.net_ = self._build_net(self.n_features_in_).to(device)
        self.net_.load_state_dict({k[len("net."):]: v for k, v in tensors.items() if k.startswith("net.")})
        self.net_.eval()
        self.input_mean_, self.input_scale_ = check_standardization(tensors["input_mean"].cpu().numpy(),
                                                                    meta["input_scale"], self.n_features_in_)
        self.labels_ = tensors["labels"].cpu().numpy()
        self.count_proba_ = tensors["count_proba"].cpu().numpy() if "count_proba" in tensors else None
        self.n_clusters_ = int(meta["n_clusters"])
        self.max_set_size_ = int(meta["max_set_size"])
        self.side_info_ = dict(meta["side_info"])
        self.training_ = dict(meta["training"])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True  # trained from side information
        tags.input_tags.sparse = True  # densified on input
        tags.non_deterministic = False
        return tags
