"""``MMDCClustering``: Multi-Modal Deep Clustering (Shiran & Weinshall) as a scikit-learn estimator.

MMDC is unsupervised. It draws one target per training point from a Gaussian mixture
projected on the unit sphere (eq. 2; by default k one-hot means with variance 0, the
setting the paper settled on), and trains a network whose unit-norm output must match
each point's target. Within every mini-batch the targets of the batch are re-assigned to
its points by a linear assignment (Hungarian) minimising the Euclidean distance between
outputs on clean inputs and targets, then the network takes a step toward those targets
on *augmented* inputs (Algorithm 1). For images, epochs of this clustering task alternate
with epochs of the RotNet task: predict which of 4 rotations an image underwent, from a
second head on the same backbone. An optional refinement stage then relabels the targets
by k-means on the outputs (§III-E). A point's cluster is its nearest mixture mean (eq. 3).

Images (``image_shape`` given) use a small VGG with batch norm (§IV-A); vectors use an
MLP. This file holds the estimator and its targets and assignment; the network and the
augmentation are in :mod:`._mmdc_net`, backbones in :mod:`dmshift.nets`, the loop in
:mod:`dmshift.train`.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from .._validation import check_fraction, check_param, check_positive_int
from ..nets.vgg import SmallVGG, as_images
from ..train import TrainConfig, train_loop
from ..scaling import check_standardization
from ._base import BaseClustering, fit_scaled, scaled
from ._mmdc_net import _MMDCNet, _mlp, _random_affine
from ._shape_checks import _check_int_tuple, check_image_shape
from ._persistence import check_saved_shape, check_saved_sizes

__all__ = ["MMDCClustering", "mixture_means", "sample_targets", "assign_targets"]


# ---------------------------------------------------------------------------- helpers
def mixture_means(k: int, dim: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """(k, dim) unit-norm means: "onehot" (the paper's choice) or "random" (uniform in [-0.1, 0.1], projected)."""
    if kind == "onehot":
        return np.eye(k, dim, dtype=np.float32)
    m = rng.uniform(-0.1, 0.1, size=(k, dim))
    return (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)


def sample_targets(n: int, means: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """n targets on the unit sphere from the mixture of eq. 2 (equal weights, covariance sigma * I)."""
    k, dim = means.shape
    comp = rng.integers(k, size=n)
    u = means[comp] + math.sqrt(sigma) * rng.standard_normal((n, dim))
    norm = np.linalg.norm(u, axis=1, keepdims=True)
    return (u / np.maximum(norm, 1e-12)).astype(np.float32)  # (n, dim)


def assign_targets(outputs: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """The permutation ``p`` minimising sum_a ||outputs[a] - targets[p[a]]|| (Hungarian).

    Parameters
    ----------
    outputs : Tensor of shape (B, d)
    targets : Tensor of shape (B, d)

    Returns
    -------
    perm : ndarray of shape (B,)
    """
    cost = torch.cdist(outputs.float(), targets.float()).cpu().numpy()  # (B, B)
    rows, cols = linear_sum_assignment(cost)
    perm = np.empty_like(cols)
    perm[rows] = cols
    return perm


# ---------------------------------------------------------------------------- estimator
class MMDCClustering(BaseClustering):
    """Multi-Modal Deep Clustering: unsupervised, k clusters from targets on the unit sphere.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of mixture components k.
    image_shape : tuple of int or None, default=None
        ``(H, W)`` or ``(H, W, C)`` when each row of X is a flattened upright image
        (row-major, as :mod:`dmshift.datasets` stores them): the backbone is then a small
        VGG with batch norm. None treats rows as vectors (MLP backbone).
    widths : tuple of int, default=(32, 64, 128, 256)
        Channels of the VGG blocks (images).
    hidden : tuple of int, default=(512, 256)
        Hidden widths of the MLP (vectors).
    target_dim : int or None, default=None
        Dimension d of the target sphere; None uses k.
    means : {"onehot", "random"}, default="onehot"
        Mixture means: one-hot vectors (needs ``target_dim >= n_clusters``) or uniform
        in [-0.1, 0.1]^d projected on the sphere (paper Fig. 4).
    sigma : float, default=0.0
        Variance of each mixture component (paper: 0).
    rotation : {"auto", True, False}, default="auto"
        Alternate clustering epochs with RotNet epochs (4 rotations, cross-entropy, a
        second head). "auto" turns it on for images; it needs square images.
    n_epochs : int, default=50
        Clustering epochs (each followed by a rotation epoch when ``rotation``).
    n_refine_epochs : int, default=0
        Epochs of the refinement stage: before each, k-means on the outputs relabels
        every point's target as the mean matched to its k-means cluster.
    batch_size : int, default=128
    lr : float, default=0.05
    momentum : float, default=0.9
    weight_decay : float, default=5e-4
    schedule : {"constant", "cosine"}, default="cosine"
        SGD learning-rate schedule (the paper divides it by 10 late in training; cosine
        is this library's nearest shared schedule).
    augment : bool, default=True
        Train on augmented inputs (random affine maps for images, Gaussian noise for vectors).
    max_shift : float, default=0.1
        Largest image translation, as a fraction of its size.
    max_rotate : float, default=10.0
        Largest augmentation rotation of an image, in degrees.
    max_scale : float, default=0.1
        Largest relative change of scale of an image.
    noise : float, default=0.1
        Std of the Gaussian noise added to standardised vectors.
    standardize : bool or {"feature", "global", "image", "none"}, default=True
        Centre and scale the inputs in float64: True divides each feature by its standard
        deviation for vectors and uses one mean and standard deviation over all pixels for
        images ("image"); "feature", "global" (one RMS scale) and False ("none") as named;
        see :mod:`dmshift.scaling`.
    time_limit : float or None, default=None
        Seconds of training after which the model so far is kept.
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
        Cluster of each training point; clusters are numbered by decreasing size, so the
        non-empty ones are 0..n_clusters_-1.
    n_clusters_ : int
        Number of non-empty clusters among the training points.
    means_ : ndarray of shape (n_clusters, target_dim)
        Mixture means, in the order of the network's components.
    training_ : dict
        Steps, stop reason, loss history.
    """

    _needs_side_info = False

    def __init__(self, *, n_clusters=8, image_shape=None, widths=(32, 64, 128, 256), hidden=(512, 256),
                 target_dim=None, means="onehot", sigma=0.0, rotation="auto", n_epochs=50, n_refine_epochs=0,
                 batch_size=128, lr=0.05, momentum=0.9, weight_decay=5e-4, schedule="cosine", augment=True,
                 max_shift=0.1, max_rotate=10.0, max_scale=0.1, noise=0.1, standardize=True, time_limit=None,
                 verbose=False, device="auto", random_state=None, checkpoint_dir=None, checkpoint_every=100):
        self.n_clusters = n_clusters
        self.image_shape = image_shape
        self.widths = widths
        self.hidden = hidden
        self.target_dim = target_dim
        self.means = means
        self.sigma = sigma
        self.rotation = rotation
        self.n_epochs = n_epochs
        self.n_refine_epochs = n_refine_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.augment = augment
        self.max_shift = max_shift
        self.max_rotate = max_rotate
        self.max_scale = max_scale
        self.noise = noise
        self.standardize = standardize
        self.time_limit = time_limit
        self.verbose = verbose
        self.device = device
        self.random_state = random_state
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every

    # ------------------------------------------------------------------ checks
    def _check_params(self, n_features: int) -> dict:
        check_positive_int("n_clusters", self.n_clusters)
        shape = check_image_shape(self.image_shape, n_features)
        widths = _check_int_tuple("widths", self.widths)
        hidden = _check_int_tuple("hidden", self.hidden)
        check_positive_int("target_dim", self.target_dim, allow_none=True)
        dim = self.n_clusters if self.target_dim is None else int(self.target_dim)
        check_param("means", self.means, ("onehot", "random"))
        if self.means == "onehot" and dim < self.n_clusters:
            raise ValueError(f"The 'target_dim' parameter must be >= n_clusters ({self.n_clusters}) for one-hot means. "
                             f"Got {self.target_dim!r} instead.")
        check_fraction("sigma", self.sigma, low=0.0, high=math.inf, low_open=False)
        check_param("rotation", self.rotation, ("auto", True, False))
        rotation = shape is not None if self.rotation == "auto" else bool(self.rotation)
        if rotation and (shape is None or shape[0] != shape[1]):
            raise ValueError("The 'rotation' parameter needs square images (image_shape with H == W). "
                             f"Got rotation={self.rotation!r} with image_shape={self.image_shape!r} instead.")
        check_positive_int("n_epochs", self.n_epochs)
        check_positive_int("n_refine_epochs", self.n_refine_epochs, minimum=0)
        check_positive_int("batch_size", self.batch_size, minimum=2)
        check_fraction("lr", self.lr, low=0.0, high=math.inf)
        check_fraction("momentum", self.momentum, low=0.0, high=1.0, low_open=False)
        check_fraction("weight_decay", self.weight_decay, low=0.0, high=math.inf, low_open=False)
        check_param("schedule", self.schedule, ("constant", "cosine"))
        check_param("augment", self.augment, (True, False))
        check_fraction("max_shift", self.max_shift, low=0.0, high=1.0, low_open=False)
        check_fraction("max_rotate", self.max_rotate, low=0.0, high=180.0, low_open=False, high_open=False)
        check_fraction("max_scale", self.max_scale, low=0.0, high=1.0, low_open=False)
        check_fraction("noise", self.noise, low=0.0, high=math.inf, low_open=False)
        if self.time_limit is not None:
            check_fraction("time_limit", self.time_limit, low=0.0, high=math.inf)
        return {"image_shape": shape, "widths": widths, "hidden": hidden, "target_dim": dim, "rotation": rotation}

    # ------------------------------------------------------------------ model
    def _build_net(self, n_features: int) -> _MMDCNet:
        cfg = self._config_
        shape = cfg["image_shape"]
        if shape is None:
            backbone = _mlp(n_features, cfg["hidden"])
        else:
            backbone = SmallVGG(1 if len(shape) == 2 else shape[2], shape[:2], cfg["widths"])
        return _MMDCNet(backbone, cfg["target_dim"], cfg["rotation"])

    def _inputs(self, X: np.ndarray, device: torch.device) -> torch.Tensor:
        """Standardised network inputs: (n, d) vectors or (n, C, H, W) images."""
        Xs = scaled(X, self.input_mean_, self.input_scale_, device)  # (n, d) float32
        shape = self._config_["image_shape"]
        return Xs if shape is None else as_images(Xs, shape)

    def _device(self) -> torch.device:
        return next(self.net_.parameters()).device

    @torch.no_grad()
    def _outputs(self, Xin: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
        self.net_.eval()
        return torch.cat([self.net_(Xin[i:i + chunk]) for i in range(0, Xin.shape[0], chunk)])  # (n, target_dim)

    def _augment(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if not self.augment:
            return x
        if x.dim() == 4:
            return _random_affine(x, gen, self.max_shift, self.max_rotate, self.max_scale)
        return x + self.noise * torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None, *, pairs=None, resume=False):
        """Train the network on X without supervision and cluster X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Vectors, or flattened images when ``image_shape`` is given.
        y, pairs : ignored
            MMDC is unsupervised; side information triggers a warning and is not used.
        resume : bool, default=False
            Continue training from the checkpoints in ``checkpoint_dir``.

        Returns
        -------
        self
        """
        X = self._check_X(X, reset=True)
        n, d = X.shape
        self._config_ = self._check_params(d)
        if y is not None or pairs is not None:
            warnings.warn("MMDCClustering is unsupervised: the side information (y / pairs) is ignored.",
                          UserWarning, stacklevel=2)
        self._begin_checkpoint(X, resume=resume)
        device, seed = self._setup()
        rng = np.random.default_rng(seed)

        self.input_mean_, self.input_scale_, Xs = fit_scaled(  # (d,), (d,), (n, d) float32
            X, self.standardize, device, image=self._config_["image_shape"] is not None)
        shape = self._config_["image_shape"]
        Xin = Xs if shape is None else as_images(Xs, shape)
        del Xs

        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            self.net_ = self._build_net(d).to(device)
        means = mixture_means(self.n_clusters, self._config_["target_dim"], self.means, rng)
        self.means_ = means

        t0 = time.perf_counter()
        self.training_ = self._train(Xin, rng, seed, device)
        self.training_["seconds"] = time.perf_counter() - t0

        comp = self._nearest_mean(self._outputs(Xin))
        counts = np.bincount(comp, minlength=self.n_clusters)
        order = np.argsort(-counts, kind="stable")  # components by decreasing size
        self.component_label_ = np.empty(self.n_clusters, dtype=np.int64)
        self.component_label_[order] = np.arange(self.n_clusters)
        self.labels_ = self.component_label_[comp]
        self.n_clusters_ = int(np.count_nonzero(counts))
        return self

    def _nearest_mean(self, out: torch.Tensor) -> np.ndarray:
        """Eq. 3: index of the nearest mixture mean of each output."""
        means = torch.as_tensor(self.means_, device=out.device)
        return torch.cdist(out, means).argmin(1).cpu().numpy().astype(np.int64)

    def _train(self, Xin: torch.Tensor, rng: np.random.Generator, seed: int, device: torch.device) -> dict:
        n = Xin.shape[0]
        net = self.net_
        b = min(int(self.batch_size), n)
        iters = max(1, n // b)  # the last partial batch is dropped (batch norm needs > 1 point)
        phases = ("cluster", "rotation") if self._config_["rotation"] else ("cluster",)
        main_steps = int(self.n_epochs) * len(phases) * iters
        max_steps = main_steps + int(self.n_refine_epochs) * iters
        means = torch.as_tensor(self.means_, device=device)
        targets = torch.as_tensor(sample_targets(n, self.means_, float(self.sigma), rng), device=device)  # (n, dim)
        owner = rng.permutation(n)  # P: point i holds target owner[i]
        refined = np.zeros(n, dtype=np.int64)  # refinement: point i's mean
        gen = torch.Generator(device=device)
        gen.manual_seed(seed)
        state = {"order": None, "reassigned": 0}

        def refine():
            from sklearn.cluster import KMeans
            out = self._outputs(Xin).cpu().numpy()
            km = KMeans(n_clusters=self.n_clusters, n_init=3, random_state=int(rng.integers(2**31 - 1))).fit(out)
            # match k-means clusters to mixture means so each cluster keeps its target
            cost = np.linalg.norm(km.cluster_centers_[:, None, :] - self.means_[None, :, :], axis=-1)
            r, c = linear_sum_assignment(cost)
            to_mean = np.empty(self.n_clusters, dtype=np.int64)
            to_mean[r] = c
            refined[:] = to_mean[km.labels_]
            net.train()

        def step_loss(step):
            if step < main_steps:
                epoch, i = divmod(step, iters)
                phase = phases[epoch % len(phases)]
            else:
                i = (step - main_steps) % iters
                phase = "refine"
                if i == 0:
                    refine()
            if i == 0:
                state["order"] = rng.permutation(n)
            idx = state["order"][i * b:(i + 1) * b]
            x = Xin[torch.as_tensor(idx, device=device)]  # (b, ...)
            if phase == "rotation":
                xr = torch.cat([torch.rot90(x, r, (2, 3)) for r in range(4)])  # (4b, C, H, W)
                lab = torch.arange(4, device=device).repeat_interleave(x.shape[0])
                return F.cross_entropy(net.rotation_logits(xr), lab)
            if phase == "cluster":
                with torch.no_grad():
                    held = owner[idx]
                    perm = assign_targets(net(x), targets[torch.as_tensor(held, device=device)])
                    state["reassigned"] += int(np.count_nonzero(perm != np.arange(perm.size)))
                    owner[idx] = held[perm]
                y = targets[torch.as_tensor(owner[idx], device=device)]  # (b, dim)
            else:
                y = means[torch.as_tensor(refined[idx], device=device)]
            f = net(self._augment(x, gen))  # (b, dim)
            return 0.5 * (f - y).pow(2).sum(1).mean()

        opt = torch.optim.SGD(net.parameters(), lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        tcfg = TrainConfig(max_steps=max_steps, lr=self.lr, weight_decay=self.weight_decay, schedule=self.schedule,
                           time_limit=self.time_limit, verbose=self.verbose)
        res = train_loop(net, step_loss, tcfg, optimizer=opt, checkpoint=self._checkpoint, seed=seed)
        return {"steps": res.steps, "stop_reason": res.stop_reason, "iters_per_epoch": iters,
                "main_steps": main_steps, "refine_steps": max_steps - main_steps,
                "reassigned": state["reassigned"], "history": res.history}

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def predict(self, X):
        """Cluster of each point: its nearest mixture mean (eq. 3), numbered as in ``labels_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        self._check_fitted()
        X = self._check_X(X, reset=False)
        device = self._device()
        return self.component_label_[self._nearest_mean(self._outputs(self._inputs(X, device)))]

    @torch.no_grad()
    def embed(self, X):
        """Unit-norm network outputs f(x): an (n_samples, target_dim) array."""
        self._check_fitted()
        X = self._check_X(X, reset=False)
        return self._outputs(self._inputs(X, self._device())).cpu().numpy()

    # ------------------------------------------------------------------ persistence
    def _export_state(self):
        tensors = {f"net.{k}": v for k, v in self.net_.state_dict().items()}
        tensors.update({"input_mean": torch.as_tensor(self.input_mean_), "means": torch.as_tensor(self.means_),
                        "component_label": torch.as_tensor(self.component_label_),
                        "labels": torch.as_tensor(self.labels_)})
        meta = {"input_scale": self.input_scale_.tolist(), "n_clusters": self.n_clusters_,
                "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self._config_.items()},
                "training": {k: v for k, v in self.training_.items() if k != "history"}}
        return tensors, meta

    def _check_loaded_params(self):
        self._check_params(self.n_features_in_)

    def _check_saved_state(self, tensors, meta, *, n_samples):
        super()._check_saved_state(tensors, meta, n_samples=n_samples)
        check_saved_shape(tensors, "input_mean", (self.n_features_in_,))
        check_standardization(tensors["input_mean"].double().cpu().numpy(), meta["input_scale"], self.n_features_in_)
        check_saved_sizes("n_clusters", meta["n_clusters"], tensors)
        cfg = meta["config"]
        check_saved_sizes("target_dim", cfg["target_dim"], tensors)
        for key in (("hidden",) if cfg["image_shape"] is None else ("image_shape", "widths")):
            check_saved_sizes(key, cfg[key], tensors)

    def _import_state(self, tensors, meta):
        device = tensors["input_mean"].device
        cfg = dict(meta["config"])
        for key in ("image_shape", "widths", "hidden"):
            cfg[key] = None if cfg[key] is None else tuple(cfg[key])
        self._config_ = cfg
        self.net_ = self._build_net(self.n_features_in_).to(device)
        self.net_.load_state_dict({k[len("net."):]: v for k, v in tensors.items() if k.startswith("net.")})
        self.net_.eval()
        self.input_mean_, self.input_scale_ = check_standardization(tensors["input_mean"].cpu().numpy(),
                                                                    meta["input_scale"], self.n_features_in_)
        self.means_ = tensors["means"].cpu().numpy()
        self.component_label_ = tensors["component_label"].cpu().numpy()
        self.labels_ = tensors["labels"].cpu().numpy()
        self.n_clusters_ = int(meta["n_clusters"])
        self.training_ = dict(meta["training"])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False  # unsupervised
        tags.input_tags.sparse = True  # densified on input
        tags.non_deterministic = False
        return tags
