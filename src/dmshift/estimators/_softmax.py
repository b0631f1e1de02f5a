"""What KCL, MCL and DDC share: a network with a softmax over ``n_clusters`` outputs.

A :class:`SoftmaxClustering` standardises the input, builds a backbone (an
:class:`~dmshift.nets.mlp.MLP` for vectors, a :class:`~dmshift.nets.lenet.LeNet` when
``input_shape`` says the rows are images) with a linear head, trains it ``n_init`` times
through :func:`dmshift.train.train_loop` and keeps the run a subclass scores best. A point's
cluster is the argmax of the softmax. Outputs are numbered by decreasing size on the
training data, so ``labels_`` runs over 0..n_clusters_-1 and outputs no training point
chose come last. Subclasses supply the side information, the per-step loss and the score.
"""

from __future__ import annotations

import math
import numbers
import time

import numpy as np
import torch
from torch import nn

from .._validation import check_fraction, check_param, check_positive_int
from ..nets.lenet import LeNet, image_shape
from ..nets.mlp import MLP
from ..train import TrainConfig, train_loop
from ..scaling import check_standardization
from ._base import BaseClustering, fit_scaled, scaled
from ._persistence import check_saved_shape, check_saved_sizes

__all__ = ["SoftmaxClustering", "ClusterNet"]

#: rows per forward pass at inference
_CHUNK = 2048


class ClusterNet(nn.Module):
    """A backbone and a linear head: ``x -> (hidden (B, D), logits (B, K))``."""

    def __init__(self, body: nn.Module, n_outputs: int):
        super().__init__()
        self.body = body
        self.head = nn.Linear(body.out_features, n_outputs)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)  # (B, D)
        return h, self.head(h)  # (B, D), (B, K)


class SoftmaxClustering(BaseClustering):
    """Base of the softmax-output estimators (not an estimator itself).

    Subclasses define ``_side_info(n, y, pairs)``, ``_step_loss(net, Xs, side, rng)``
    (returns a function of the step) and ``_score(net, Xs, side, seed)`` (lower is better),
    and the backbone settings below.
    """

    #: hidden widths when ``hidden`` is None: MLP body for vectors, fc layers of the LeNet for images
    _default_mlp_hidden: tuple = (200, 200, 500)
    _default_image_fc: tuple = (500,)
    _lenet_channels: tuple = (20, 50)
    _lenet_conv_batch_norm: bool = True
    _lenet_fc_batch_norm: bool = False

    # ------------------------------------------------------------------ checks
    def _check_common_params(self):
        check_positive_int("n_clusters", self.n_clusters)
        if self.hidden is not None:
            h = self.hidden
            if isinstance(h, numbers.Integral) and not isinstance(h, bool):
                h = (h,)
            try:
                h = tuple(h)
            except TypeError:
                h = None
            if not h or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1 for v in h):
                raise ValueError(f"The 'hidden' parameter must be None or a tuple of positive ints. "
                                 f"Got {self.hidden!r} instead.")
        if self.input_shape is not None:
            image_shape(self.input_shape)
        check_positive_int("n_init", self.n_init)
        check_positive_int("max_steps", self.max_steps)
        check_positive_int("batch_size", self.batch_size, minimum=2)
        check_fraction("lr", self.lr, low=0.0, high=math.inf)
        check_fraction("weight_decay", self.weight_decay, low=0.0, high=math.inf, low_open=False)
        check_param("schedule", self.schedule, ("constant", "cosine"))
        if self.time_limit is not None:
            check_fraction("time_limit", self.time_limit, low=0.0, high=math.inf)

    def _hidden(self) -> tuple[int, ...]:
        if self.hidden is None:
            return self._default_image_fc if self.input_shape is not None else self._default_mlp_hidden
        h = self.hidden
        return (int(h),) if isinstance(h, numbers.Integral) else tuple(int(v) for v in h)

    def _image_shape(self, n_features: int):
        if self.input_shape is None:
            return None
        shape = image_shape(self.input_shape)
        if math.prod(shape) != n_features:
            raise ValueError(f"The 'input_shape' parameter must have as many pixels as X has features "
                             f"({n_features}). Got {self.input_shape!r} ({math.prod(shape)} pixels) instead.")
        return shape

    # ------------------------------------------------------------------ networks
    def _new_net(self, n_features: int) -> ClusterNet:
        if self.input_shape_ is None:
            body = MLP(n_features, self.hidden_, batch_norm="last")
        else:
            body = LeNet(self.input_shape_, channels=self._lenet_channels, fc=self.hidden_,
                         conv_batch_norm=self._lenet_conv_batch_norm, fc_batch_norm=self._lenet_fc_batch_norm)
        return ClusterNet(body, int(self.n_clusters))

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None, *, pairs=None, resume=False):
        """Train the network(s) and label ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Feature vectors, or flattened images when ``input_shape`` is set.
        y : array-like of shape (n_samples,), optional
            Partial labels: a class id for points with side information, -1 elsewhere.
        pairs : array-like of shape (m, 3), optional
            Rows ``(i, j, same)``: points i and j are in the same cluster (1) or not (0).
        resume : bool, default=False
            Continue training from the checkpoints in ``checkpoint_dir`` (runs that had
            finished are reloaded, the interrupted one continues).

        Returns
        -------
        self
        """
        self._check_params()
        X = self._check_X(X, reset=True)
        if not X.flags.writeable:  # e.g. a read-only memmap: torch wants writable memory
            X = X.copy()
        n, d = X.shape
        self.input_shape_ = self._image_shape(d)
        self.hidden_ = self._hidden()
        side = self._side_info(n, y, pairs)
        self._begin_checkpoint(X, y, pairs, resume=resume)
        device, seed = self._setup()

        self.mean_, self.scale_, Xs = fit_scaled(  # (d,), (d,), (n, d) float32
            X, self.standardize, device, image=self.input_shape_ is not None)

        run_seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=int(self.n_init))
        runs, scores = [], []  # runs: the few best (score, run, net, record) so far
        t0 = time.perf_counter()
        for r, run_seed in enumerate(run_seeds):
            run_seed = int(run_seed)
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(run_seed)
                net = self._new_net(d).to(device)
            tcfg = TrainConfig(max_steps=self.max_steps, lr=self.lr, weight_decay=self.weight_decay,
                               schedule=self.schedule, time_limit=self.time_limit, verbose=self.verbose)
            ts = time.perf_counter()
            res = train_loop(net, self._step_loss(net, Xs, side, np.random.default_rng(run_seed)), tcfg,
                             checkpoint=self._checkpoint, seed=run_seed)
            score = float(self._score(net, Xs, side, seed))
            scores.append(score)
            runs.append((score, r, net, {"steps": res.steps, "stop_reason": res.stop_reason,
                                         "seconds": time.perf_counter() - ts, "score": score,
                                         "history": res.history}))
            runs = sorted(runs, key=lambda t: (t[0], t[1]))[:self._n_kept()]  # lowest score first
            if res.stop_reason == "interrupted":  # Ctrl-C: keep what was trained, start no further run
                break
        self.run_scores_ = np.array(scores)
        self.best_run_ = runs[0][1]
        self.training_ = dict(runs[0][3])
        self.training_["seconds_all_runs"] = time.perf_counter() - t0
        outputs = self._keep_runs(runs, Xs)  # (n,) output index of each training point
        counts = np.bincount(outputs, minlength=int(self.n_clusters))
        self._set_output_order(np.argsort(-counts, kind="stable"))  # largest cluster is label 0
        self.labels_ = self.output_label_[outputs]
        self.n_clusters_ = int(np.count_nonzero(counts))
        self.side_info_ = None if side is None else side.summary()
        return self

    def _n_kept(self) -> int:
        """How many of the best runs :meth:`_keep_runs` needs."""
        return 1

    def _keep_runs(self, runs, Xs) -> np.ndarray:
        """Keep the best run's network (DDC-VOTE keeps three); return the training points' outputs."""
        self.nets_ = [runs[0][2]]
        return self._predict_outputs(Xs)

    def _set_output_order(self, order: np.ndarray) -> None:
        """Label ``l`` is output ``order[l]``."""
        order = np.asarray(order, dtype=np.int64)
        self.output_order_ = order
        self.output_label_ = np.empty_like(order)
        self.output_label_[order] = np.arange(order.size)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def _net_proba(self, net: ClusterNet, Xs: torch.Tensor) -> torch.Tensor:
        """(n, K) softmax outputs of one network, in output order, computed in chunks."""
        net.eval()
        return torch.cat([torch.softmax(net(Xs[i:i + _CHUNK])[1], dim=1) for i in range(0, Xs.shape[0], _CHUNK)])

    def _outputs_proba(self, Xs: torch.Tensor) -> torch.Tensor:
        return self._net_proba(self.nets_[0], Xs)

    def _predict_outputs(self, Xs: torch.Tensor) -> np.ndarray:
        return self._outputs_proba(Xs).argmax(1).cpu().numpy()

    def _standardized(self, X) -> torch.Tensor:
        self._check_fitted()
        X = self._check_X(X, reset=False)
        device = next(self.nets_[0].parameters()).device
        return scaled(X, self.mean_, self.scale_, device)  # (n, d) float32

    def predict(self, X):
        """Cluster of each point: the argmax of the softmax, numbered as in ``labels_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Values in 0..n_clusters-1; values >= n_clusters_ are outputs that no training
            point chose.
        """
        outputs = self._predict_outputs(self._standardized(X))
        return self.output_label_[outputs]

    def predict_proba(self, X):
        """Softmax cluster probabilities, column ``l`` for label ``l``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_clusters)
        """
        P = self._outputs_proba(self._standardized(X))  # (n, K) in output order
        return P[:, torch.as_tensor(self.output_order_, device=P.device)].cpu().numpy()

    # ------------------------------------------------------------------ persistence
    def _export_state(self):
        tensors = {}
        for i, net in enumerate(self.nets_):
            tensors.update({f"net{i}.{k}": v for k, v in net.state_dict().items()})
        tensors.update({"mean": torch.as_tensor(self.mean_), "labels": torch.as_tensor(self.labels_),
                        "output_order": torch.as_tensor(self.output_order_)})
        meta = {"scale": self.scale_.tolist(), "hidden": list(self.hidden_),
                "input_shape": None if self.input_shape_ is None else list(self.input_shape_),
                "n_nets": len(self.nets_), "n_clusters": self.n_clusters_, "best_run": self.best_run_,
                "run_scores": self.run_scores_.tolist(), "side_info": self.side_info_,
                "training": {k: v for k, v in self.training_.items() if k != "history"}}
        return tensors, meta

    def _check_saved_state(self, tensors, meta, *, n_samples):
        super()._check_saved_state(tensors, meta, n_samples=n_samples)
        check_saved_shape(tensors, "mean", (self.n_features_in_,))
        check_standardization(tensors["mean"].double().cpu().numpy(), meta["scale"], self.n_features_in_)
        check_saved_sizes("hidden", meta["hidden"], tensors)
        check_saved_sizes("n_clusters", meta["n_clusters"], tensors)
        check_saved_sizes("n_clusters", self.n_clusters, tensors)  # the width of each network's head
        if meta["input_shape"] is not None:
            check_saved_sizes("input_shape", meta["input_shape"], tensors)
        n_nets = sum(1 for k in tensors if k.startswith("net") and k.endswith(".head.bias"))
        if isinstance(meta["n_nets"], bool) or meta["n_nets"] != n_nets or n_nets < 1:
            raise ValueError(f"'n_nets' must be the number of networks the weights hold ({n_nets}). "
                             f"Got {meta['n_nets']!r} instead")
        check_saved_shape(tensors, "output_order", (None,))

    def _import_state(self, tensors, meta):
        device = tensors["mean"].device
        self.hidden_ = tuple(meta["hidden"])
        self.input_shape_ = None if meta["input_shape"] is None else tuple(meta["input_shape"])
        self.nets_ = []
        for i in range(int(meta["n_nets"])):
            net = self._new_net(self.n_features_in_).to(device)
            prefix = f"net{i}."
            net.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
            net.eval()
            self.nets_.append(net)
        self.mean_, self.scale_ = check_standardization(tensors["mean"].cpu().numpy(), meta["scale"],
                                                        self.n_features_in_)
        self.labels_ = tensors["labels"].cpu().numpy()
        self._set_output_order(tensors["output_order"].cpu().numpy())
        self.n_clusters_ = int(meta["n_clusters"])
        self.best_run_ = int(meta["best_run"])
        self.run_scores_ = np.asarray(meta["run_scores"], dtype=np.float64)
        self.side_info_ = meta["side_info"]
        self.training_ = dict(meta["training"])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # densified on input
        return tags
