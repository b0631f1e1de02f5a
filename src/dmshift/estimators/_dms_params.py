"""Parameters of :class:`~dmshift.DMSClustering`: their checks and the per-stage values built from them.

``check_params`` validates an estimator's parameters once per ``fit`` (scikit-learn's
rule: ``__init__`` only stores); the builders turn the parameters into the frozen
values each stage takes (:class:`~dmshift.instance_training.KernelSpec`,
:class:`~dmshift.instance_training.TrainingParams`,
:class:`~dmshift.clustering.ClusterParams`, :class:`~dmshift.settings.DMSSettings`).
No stage runs here.
"""

from __future__ import annotations

import math
import numbers
from functools import partial

import numpy as np
import torch

from .._validation import check_fraction, check_param, check_positive_int, check_range_pair
from ..clustering import ClusterParams
from ..instance_training import KernelSpec, TrainingParams
from ..label_stage import LabelOptions, choose_scaling
from ..merge import SIMILARITIES
from ..preprocessing import graph_space, prepare
from ..scaling import check_standardization
from ..settings import DMSSettings
from ..validation import hold_out, k_folds
from ._base import fit_scaled

#: The largest float32: a tuning number the kernel's training holds in float32 must not overflow it.
_F32_MAX = float(np.finfo(np.float32).max)

__all__ = ["check_params", "settings_of", "kernel_spec", "training_params", "cluster_params", "export_state",
           "import_state"]


def check_params(est) -> None:
    """Raise a ValueError naming the first parameter of ``est`` out of its range."""
    check_param("kernel", est.kernel, ("subtract", "concat"))
    check_param("init", est.init, ("principal", "distance", "default"))
    check_fraction("init_quantile", est.init_quantile, low=0.0, high=1.0)
    check_positive_int("n_layers", est.n_layers)
    if est.hidden is not None:
        try:
            h = tuple(est.hidden)
        except TypeError:
            h = None
        if h is None or len(h) != est.n_layers - 1 or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1 for v in h):
            raise ValueError(f"The 'hidden' parameter must be None or {est.n_layers - 1} positive ints "
                             f"(n_layers - 1). Got {est.hidden!r} instead.")
    check_positive_int("width_cap", est.width_cap, allow_none=True)
    check_param("activation", est.activation, ("relu", "gelu", "tanh"))
    check_fraction("dropout", est.dropout, low=0.0, high=1.0, low_open=False)
    check_positive_int("conv_channels", est.conv_channels)
    check_positive_int("n_shift_steps", est.n_shift_steps, minimum=0)
    check_positive_int("max_steps", est.max_steps)
    check_positive_int("batch_size", est.batch_size)
    lo, hi = check_range_pair("instance_size", est.instance_size, low=3, high=1e9)
    if lo != int(lo) or hi != int(hi):
        raise ValueError(f"The 'instance_size' parameter must hold ints. Got {est.instance_size!r} instead.")
    check_range_pair("labelled_ratio", est.labelled_ratio, low=1e-6, high=1e6)
    check_range_pair("positive_ratio", est.positive_ratio, low=0.0, high=1.0)
    check_fraction("lr", est.lr, low=0.0, high=_F32_MAX)  # the optimiser holds it in float32
    check_fraction("weight_decay", est.weight_decay, low=0.0, high=_F32_MAX, low_open=False)
    check_fraction("prior_decay", est.prior_decay, low=0.0, high=_F32_MAX, low_open=False)
    check_param("schedule", est.schedule, ("constant", "cosine"))
    check_param("loss_balance", est.loss_balance, ("none", "balanced"))
    check_fraction("input_noise", est.input_noise, low=0.0, high=_F32_MAX, low_open=False)
    check_fraction("validation_fraction", est.validation_fraction, low=0.0, high=1.0, low_open=False)
    check_positive_int("patience", est.patience, allow_none=True)
    check_positive_int("eval_every", est.eval_every)
    check_param("seeding", est.seeding, ("random", "adaptive"))
    check_positive_int("n_seeds", est.n_seeds)
    check_positive_int("max_iter", est.max_iter, minimum=0)
    if not isinstance(est.inference_side_info, (bool, np.bool_)):
        raise ValueError(f"The 'inference_side_info' parameter must be a bool. Got {est.inference_side_info!r} instead.")
    check_param("similarity", est.similarity, SIMILARITIES)
    if not (isinstance(est.threshold, str) and est.threshold == "auto"):
        if isinstance(est.threshold, str):
            raise ValueError(f"The 'threshold' parameter must be 'auto' or a float in (0, 1]. "
                             f"Got {est.threshold!r} instead.")
        check_fraction("threshold", est.threshold, low=0.0, high=1.0, high_open=False)
    check_fraction("noise_threshold", est.noise_threshold, low=0.0, high=1.0, low_open=False)
    check_positive_int("self_training", est.self_training, minimum=0)
    check_fraction("self_training_share", est.self_training_share, low=0.0, high=1.0, high_open=False)
    if est.smoothing is not None:
        check_param("smoothing", est.smoothing, ("auto", "fused", "tree_seeded", "learnt", "input", "graph"))
    check_positive_int("n_neighbors", est.n_neighbors)
    if est.fallback is not None:
        check_param("fallback", est.fallback, ("tree",))
    check_positive_int("checkpoint_every", est.checkpoint_every)
    for name in ("find_unseen", "smooth_noise", "verbose"):
        if not isinstance(getattr(est, name), (bool, np.bool_)):
            raise ValueError(f"The {name!r} parameter must be a bool. Got {getattr(est, name)!r} instead.")
    nc = est.n_components
    if not (nc is None or isinstance(nc, str) and nc == "auto"
            or isinstance(nc, numbers.Integral) and not isinstance(nc, bool) and nc >= 1
            or isinstance(nc, numbers.Real) and not isinstance(nc, (bool, numbers.Integral)) and 0.0 < nc < 1.0):
        raise ValueError(f"The 'n_components' parameter must be 'auto', None, an int >= 1 or a float in (0, 1). "
                         f"Got {nc!r} instead.")
    check_positive_int("memory_budget", est.memory_budget, minimum=1024)
    if est.time_limit is not None:
        check_fraction("time_limit", est.time_limit, low=0.0, high=math.inf)
    s = getattr(est, "settings", None)
    if not (s is None or isinstance(s, (DMSSettings, dict))):
        raise ValueError(f"The 'settings' parameter must be a DMSSettings, a dict or None. Got {s!r} instead.")
    cfg = settings_of(est)  # a dict with an unknown stage or field raises here
    space = cfg.smoothing.novelty_space
    if space not in ("input", "graph"):
        raise ValueError(f"The 'settings.smoothing.novelty_space' value must be 'input' or 'graph'. Got {space!r} instead.")
    if not isinstance(cfg.validation.cross_fit, (bool, np.bool_)):
        raise ValueError(f"The 'settings.validation.cross_fit' value must be a bool. Got {cfg.validation.cross_fit!r} "
                         "instead.")
    if cfg.training.plateau_window is not None:
        check_positive_int("settings.training.plateau_window", cfg.training.plateau_window)
    check_fraction("settings.training.plateau_tol", cfg.training.plateau_tol, low=0.0, high=1.0)
    if cfg.shift.max_points is not None:
        check_positive_int("settings.shift.max_points", cfg.shift.max_points, minimum=2)
    check_positive_int("settings.novelty.null_draws", cfg.novelty.null_draws, minimum=0)
    if cfg.side_info.absorb not in (True, False, "auto"):
        raise ValueError("The 'settings.side_info.absorb' value must be True, False or 'auto'. "
                         f"Got {cfg.side_info.absorb!r} instead.")


def settings_of(est) -> DMSSettings:
    """The estimator's ``settings`` as a :class:`~dmshift.settings.DMSSettings` (None: the defaults).

    An estimator pickled before ``settings`` existed has none: the defaults.
    """
    s = getattr(est, "settings", None)
    return s if isinstance(s, DMSSettings) else DMSSettings.from_dict(s)


def kernel_spec(est) -> KernelSpec:
    """The kernel's architecture and initialisation from ``est``'s parameters."""
    return KernelSpec(kind=est.kernel, n_layers=est.n_layers, hidden=est.hidden, width_cap=est.width_cap,
                      activation=est.activation, dropout=est.dropout, conv_channels=est.conv_channels,
                      init=est.init, init_quantile=est.init_quantile)


def training_params(est) -> TrainingParams:
    """How ``est`` trains its kernel, from its parameters."""
    plateau = settings_of(est).training
    return TrainingParams(
        batch_size=int(est.batch_size), instance_size=tuple(int(v) for v in est.instance_size),
        labelled_ratio=check_range_pair("labelled_ratio", est.labelled_ratio, low=1e-6, high=1e6),
        positive_ratio=check_range_pair("positive_ratio", est.positive_ratio, low=0.0, high=1.0),
        n_shift_steps=est.n_shift_steps, max_steps=est.max_steps, lr=est.lr, weight_decay=est.weight_decay,
        prior_decay=est.prior_decay, schedule=est.schedule, loss_balance=est.loss_balance,
        input_noise=est.input_noise, validation_fraction=0.0, patience=est.patience,  # held back by the fit
        eval_every=est.eval_every, verbose=est.verbose, plateau_window=plateau.plateau_window,
        plateau_tol=plateau.plateau_tol)


def label_options(est, projected: bool) -> LabelOptions:
    """What the label candidates of ``est`` read, from its parameters."""
    return LabelOptions(n_neighbors=int(est.n_neighbors), share=float(est.self_training_share),
                        find_unseen=bool(est.find_unseen), smooth_noise=bool(est.smooth_noise),
                        memory_budget=int(est.memory_budget), projected=bool(projected))


def cluster_params(est) -> ClusterParams:
    """How ``est`` clusters, from its parameters and settings."""
    cfg = settings_of(est)
    return ClusterParams(seeding=est.seeding, n_seeds=est.n_seeds, max_iter=est.max_iter,
                         similarity=est.similarity, threshold=est.threshold, noise_threshold=est.noise_threshold,
                         memory_budget=int(est.memory_budget), thresholds=cfg.threshold,
                         shift_points=cfg.shift.max_points)


def check_saved_state(est, tensors: dict, meta: dict, *, n_samples: int) -> None:
    """A stored DMS state must fit together: finite scale > 0, shapes that match ``n_features_in_``.

    ``DMSClustering._check_saved_state``: the checks every estimator's state passes, then DMS's own.
    """
    from ._base import BaseClustering
    from ._persistence import check_saved_shape, check_saved_sizes
    BaseClustering._check_saved_state(est, tensors, meta, n_samples=n_samples)
    d = est.n_features_in_
    check_saved_shape(tensors, "mean", (d,))
    check_standardization(tensors["mean"].cpu().numpy(), meta.get("scale"), d)
    check_saved_shape(tensors, "components", (d, None), optional=True)
    check_saved_shape(tensors, "cluster_centers", (None, d))
    check_saved_shape(tensors, "confidence", (n_samples,))
    check_saved_sizes("hidden", meta["hidden"], tensors)
    if est.kernel == "concat":
        check_saved_sizes("conv_channels", est.conv_channels, tensors)


def export_state(est) -> tuple[dict, dict]:
    """``DMSClustering._export_state``: the tensors and the JSON metadata of a fitted estimator."""
    tensors = {f"kernel.{k}": v for k, v in est.kernel_.state_dict().items()}
    tensors.update({"mean": torch.as_tensor(est.mean_, dtype=torch.float64), "center_embeddings": torch.as_tensor(est.center_embeddings_),
                    **({} if est.components_ is None else {"components": est._projection()})})
    for name in ("center_cluster", "cluster_centers", "labels", "confidence"):
        tensors[name] = torch.as_tensor(getattr(est, name + "_"))
    if getattr(est, "smoothing_points_", None) is not None:  # the landmarks of predict's vote
        for name in ("points", "labels", "radius", "transform"):
            if getattr(est, f"smoothing_{name}_", None) is not None:
                tensors[f"smoothing_{name}"] = torch.as_tensor(getattr(est, f"smoothing_{name}_"))
    if getattr(est, "side_points_", None) is not None:  # predict's labels of the side-information points
        tensors["side_points"], tensors["side_labels"] = (torch.as_tensor(est.side_points_),
                                                          torch.as_tensor(est.side_labels_))
    meta = {"scale": [float(v) for v in est.scale_], "hidden": list(est.hidden_), "n_clusters": est.n_clusters_,
            "n_iter": est.n_iter_, "n_seeds_used": est.n_seeds_used_,
            "converged_fraction": est.converged_fraction_, "side_info": est.side_info_,
            "training": {k: v for k, v in est.training_.items() if k != "history"},
            "smoothing": getattr(est, "smoothing_", None), "fallback": getattr(est, "fallback_", None),
            "choices": getattr(est, "choices_", None)}
    return tensors, meta


def import_state(est, tensors: dict, meta: dict) -> None:
    """``DMSClustering._import_state``: the fitted attributes from what :func:`export_state` wrote."""
    device = tensors["center_embeddings"].device
    est.hidden_ = tuple(meta["hidden"])
    est._components = tensors.get("components")
    est.components_ = None if est._components is None else est._components.cpu().numpy()
    width = est.n_features_in_ if est._components is None else int(est._components.shape[1])
    est.kernel_ = kernel_spec(est).make(width, est.hidden_).to(device)
    est.kernel_.load_state_dict({k[len("kernel."):]: v for k, v in tensors.items() if k.startswith("kernel.")})
    est.kernel_.eval()
    # float64 (d,) arrays; a model written before per-feature scaling holds one scale for all features
    est.mean_, est.scale_ = check_standardization(tensors["mean"].cpu().numpy(), meta["scale"], est.n_features_in_)
    est.center_embeddings_ = tensors["center_embeddings"].cpu().numpy()
    for name in ("center_cluster", "cluster_centers", "labels", "confidence"):
        setattr(est, name + "_", tensors[name].cpu().numpy())
    est.smoothing_, est.fallback_, est.choices_ = meta.get("smoothing"), meta.get("fallback"), \
        dict(meta.get("choices") or {})
    est.smoothing_points_ = as_numpy(tensors.get("smoothing_points"))
    est.side_points_, est.side_labels_ = ((tensors["side_points"].cpu().numpy(), tensors["side_labels"].cpu().numpy())
                                          if "side_points" in tensors else (None, None))
    est.smoothing_labels_ = (tensors["smoothing_labels"].cpu().numpy() if "smoothing_labels" in tensors
                              else None)
    est.smoothing_radius_ = as_numpy(tensors.get("smoothing_radius"))
    est.smoothing_transform_ = as_numpy(tensors.get("smoothing_transform"))
    est.n_clusters_, est.n_iter_ = int(meta["n_clusters"]), int(meta["n_iter"])
    est.n_seeds_used_, est.converged_fraction_ = int(meta["n_seeds_used"]), float(meta["converged_fraction"])
    est.side_info_, est.training_ = dict(meta["side_info"]), dict(meta["training"])


def as_numpy(v):
    """A fitted array as NumPy (None stays None): DMS's public fitted attributes are NumPy."""
    return v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v


def on_device(v, device):
    """A fitted NumPy array as a tensor on ``device`` where the kernel computes (None stays None)."""
    return None if v is None else torch.as_tensor(v, device=device)


def prepare_input(est, X: np.ndarray, folds: list, seed: int, cfg: DMSSettings, device) -> tuple:
    """Stage 1 of ``est``'s fit: the prepared input and, for ``standardize="auto"``, the record of
    the scaling chosen. "auto" prepares the input per feature and globally and keeps the scaling
    whose input graph the held-back side information prefers
    (:func:`~dmshift.label_stage.choose_scaling`; per feature on a tie or without any)."""
    modes = ("feature", "global") if est.standardize == "auto" else (est.standardize,)
    prepared = {}
    for m in modes:
        try:
            prepared[m] = prepare(X, partial(fit_scaled, mode=m, device=device), est.n_components, cfg.projection)
        except ValueError:  # a scaling float32 cannot hold (one extreme value) is no candidate; the first must hold
            if m == modes[0]:
                raise
    if len(prepared) == 1:
        return prepared[modes[0]], None if len(modes) == 1 else {"chosen": modes[0], "reason": "global cannot be held"}
    spaces = {m: graph_space(p.X_std, projected=p.components is not None, n_leading=cfg.smoothing.components)
              for m, p in prepared.items()}
    name, record = choose_scaling(spaces, folds, seed, label_options(est, False), cfg)
    return prepared[name], record


def held_back(est, side, seed: int, cfg: DMSSettings) -> tuple:
    """What ``est``'s fit (and ``recluster``) validates on, drawn from ``seed``: ``(holdout, folds)``.

    ``folds`` are k = round(1 / ``validation_fraction``) folds over all the side information
    (:func:`~dmshift.validation.k_folds`): the scaling is always chosen on them, and the labels
    too unless a ``patience`` is set. Then ``holdout`` is ``validation_fraction`` of the side
    information that the kernel does not train on, what early stopping reads and the labels are
    chosen on (None when too little can be held back); without a patience, ``holdout`` is None
    and the kernel trains on all the side information. ``validation_fraction`` 0: no validation,
    ``(None, [])``.
    """
    frac = float(est.validation_fraction)
    if frac <= 0:
        return None, []
    folds = k_folds(side, np.random.default_rng([seed, 3]), max(2, round(1 / frac)), cfg.validation)
    holdout = None if est.patience is None else hold_out(side, np.random.default_rng([seed, 2]), frac, cfg.validation)
    return holdout, folds


def fit_choices(rounds, labels: dict, scaling: dict | None, threshold, components) -> dict:
    """What ``fit`` chose at each stage (``choices_``, before the last stage's): from the training
    rounds (:class:`~dmshift.self_training.SelfTrained`), the label choice's record, the scaling's,
    the merge threshold and the projection's ``components`` (None: no projection)."""
    rec = rounds.record
    return {"training": {"steps": rec["steps"], "best_step": rec["best_step"], "stop": rec["stop_reason"],
                         "held_back_f1": None if rec.get("best_val_score") is None else -rec["best_val_score"],
                         "steps_without_the_fold": rec.get("first_steps")},
            "self_training": {"rounds": len(rec["rounds"]), "stopped": rounds.stopped},
            "labels": labels, "scaling": scaling, "merge_threshold": threshold,
            "projection": None if components is None else int(components.shape[1])}
