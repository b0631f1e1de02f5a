"""Tuning numbers of the DMS pipeline as frozen values, one small dataclass per stage.

Each stage function takes its settings as an argument, so that an experiment changes a
number by passing ``DMSClustering(settings=DMSSettings(...))`` rather than by overwriting
a module global. The defaults are the library's choices; what they measured is in
``benchmarks/results/`` (see its index), not here. This module holds values only: no
algorithm, no import of the rest of the package.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

__all__ = ["ProjectionSettings", "AnchorSettings", "ThresholdSettings", "SmoothingSettings", "FallbackSettings",
           "NoveltySettings", "SideInfoSettings", "ValidationSettings", "TrainingSettings", "ShiftSettings",
           "DMSSettings"]


@dataclass(frozen=True)
class ProjectionSettings:
    """``n_components="auto"``: keep at most ``auto_max`` features as they are; above that, the
    leading principal components that explain ``auto_variance`` of the variance, at most ``auto_max``."""

    auto_max: int = 128
    auto_variance: float = 0.95


@dataclass(frozen=True)
class AnchorSettings:
    """Side-information points kept as fixed centers at inference: at most ``max_per_group`` of
    each group, from groups of at least ``min_group`` points (the groups of isolated "same"
    pairs would otherwise each become a cluster of their own)."""

    max_per_group: int = 64
    min_group: int = 3


@dataclass(frozen=True)
class ThresholdSettings:
    """Merge thresholds of ``threshold="auto"``: ``anchored`` when label-like anchors constrain the
    merge (every two anchored groups known to differ, never joined, so a low threshold only
    joins what no side information separates), ``default`` otherwise (a stricter threshold
    keeps classes apart)."""

    anchored: float = 0.5
    default: float = 0.8


@dataclass(frozen=True)
class SmoothingSettings:
    """The smoothing graph (:mod:`dmshift.smoothing`) and the smoothing stage of DMS.

    Attributes
    ----------
    alpha : float
        Spreading weight of the neighbours (``1 - alpha`` is the weight of the seeds).
    n_iter : int
        Spreading iterations.
    tree_neighbors : int
        Neighbours of each point in the graph whose Ward tree finds unseen groups (and the
        tree fallback's tree).
    gate_neighbors : int
        Neighbours in the graph whose edges between seeds decide whether it is trusted.
    reciprocal_neighbors : int
        An edge from i to j is reciprocal when i is among the ``reciprocal_neighbors``
        nearest of j; also the rank of the neighbour whose distance is a landmark's radius.
    one_way_weight : float
        Weight of an edge that is not reciprocal, relative to its Gaussian weight: such edges
        are the bridges between groups.
    max_points : int
        Most points the graph is built on (above it: a random subset, and a vote for the rest).
    min_agreement : float
        Least share of graph edges between two seeds that join one cluster for the gate of
        :func:`dmshift.smoothing.smooth_labels` (DMS no longer gates: it validates).
    components : int
        Leading principal components the graph reads when the input is projected (the
        trailing ones blur nearest-neighbour ranks).
    novelty_space : {"input", "graph"}
        Where the learnt graph's search for unseen groups cuts its Ward tree: in the kernel's
        input ("input": a kernel learnt from some groups maps a group it never saw onto the
        seen ones, the input keeps it apart), or in the learnt graph's own space.
    """

    alpha: float = 0.99
    n_iter: int = 50
    tree_neighbors: int = 10
    gate_neighbors: int = 5
    reciprocal_neighbors: int = 10
    one_way_weight: float = 0.1
    max_points: int = 100_000
    min_agreement: float = 0.9
    components: int | None = 64
    novelty_space: str = "input"


@dataclass(frozen=True)
class FallbackSettings:
    """``fallback="tree"``: the Ward tree's clusters replace the kernel's when the side information
    holds at least ``min_same_pairs`` "same" pairs, the kernel found at most ``max_cluster_share``
    of the groups it holds (it joins groups, which smoothing cannot undo), and the tree's
    pairwise F1 on the side information beats the kernel's by at least ``margin``."""

    margin: float = 0.2
    min_same_pairs: int = 10
    max_cluster_share: float = 0.5


@dataclass(frozen=True)
class NoveltySettings:
    """Unseen groups (:mod:`dmshift.novelty`): the search finds a part in side information drawn at
    random with a chance of at most ``max_chance`` (its threshold is calibrated on ``null_draws``
    random draws of the labelled points; 0 draws: each part is tested alone at ``max_chance``), and
    a part holds at most ``max_seen_share`` of the side information its rate would give it.
    ``test_bare_clusters``: a kernel cluster no side information holds seeds a group only where
    random side information would have reached it with a chance of ``1 - max_chance``
    (:mod:`dmshift.smoothing_stage`); off by default: it helped COIL-20 (0.883 → 0.953) and
    hurt ORL (0.627 → 0.525) and UMIST (0.748 → 0.717), where bare clusters are unseen people."""

    max_chance: float = 0.05
    max_seen_share: float = 1 / 3
    null_draws: int = 200
    test_bare_clusters: bool = False


@dataclass(frozen=True)
class SideInfoSettings:
    """The last stage of DMS (:mod:`dmshift.side_info_stage`): with ``absorb``, a cluster smaller than
    the size at which random side information at the observed rate would reach every cluster that
    large with a chance of at least ``1 - max_chance`` joins the cluster its points are most
    confident in, unless the side information says they differ. ``absorb="auto"`` absorbs for
    pairs and keeps such clusters for partial labels (a cluster the labels leave bare is a
    candidate class of its own; docs/reliability.md). A cluster without centers gets at
    most ``max_new_centers`` of its points as centers, and a group at most that many where a cluster
    is divided among groups. ``predict`` gives a point within ``recall_distance`` (in the
    standardised input the kernel reads) of a side-information point of the fit that point's label.
    ``fit`` warns when the side information holds fewer "same" pairs than both the features the
    kernel reads and ``thin_same_pairs``."""

    max_chance: float = 0.05
    absorb: bool | str = "auto"
    max_new_centers: int = 64
    recall_distance: float = 1e-4
    thin_same_pairs: int = 10


@dataclass(frozen=True)
class ValidationSettings:
    """How DMS holds back side information to validate its choices (:mod:`dmshift.validation`).

    A group of at least ``split_groups`` points holds back some of its points, a smaller one is
    held back whole or not at all; validation needs at least ``min_pairs`` held-back "same" and
    as many "different" pairs (in the holdout, or in all the k folds together). While training, the learnt graph is scored every ``eval_every``
    steps on the side-information points and at most ``graph_points`` others, and training stops
    when the mean of the last ``window`` scores has not improved for ``patience`` (the
    estimator's) evaluations. A candidate for the labels replaces the default (the first the
    estimator allows: by default the fused graph seeded by the tree's clusters) only when its
    pooled held-back pairwise F1 beats the default's by more than ``z`` standard errors of the difference (:func:`dmshift.validation.f1_better`):
    0, the higher F1, as in plain cross-validation. The kernel trains on every fold's labels, so
    its own graph would score itself optimistically; with ``cross_fit`` the kernel first trains
    without the first fold's held-back labels, the learnt graph's optimism is measured on that
    fold (the final kernel's F1 there less the first kernel's) and taken off its F1 over every
    fold, and training goes on with all the side information
    (:func:`dmshift.label_stage.choose_labels`). False: every fold, scored with the final
    kernel (one training, the learnt graph favoured). ``standardize="auto"`` scores the
    two scalings by k-fold cross-validation over all the side information; the global
    scaling replaces per-feature scaling when its points' scores are higher by more than
    ``scaling_z`` standard errors: 0, the higher mean, as the two are peers (neither is the
    kernel's), and the folds score every labelled point, not a quarter of them.
    """

    window: int = 3
    z: float = 0.0
    scaling_z: float = 0.0
    split_groups: int = 4
    min_pairs: int = 5
    graph_points: int = 4000
    cross_fit: bool = True


@dataclass(frozen=True)
class ShiftSettings:
    """Mean shift in the clustering stage (:func:`dmshift.clustering.cluster`).

    Above ``max_points`` points, the seeds shift over a random ``max_points`` of them (with the
    seeds): the modes of a sample that large are those of all the points up to its noise, and a
    shift iteration's cost (seeds x points) stops growing with n; merging and assignment still
    read every point. None: all the points. Sharded points (:func:`dmshift.distributed.fit_ddp`)
    always shift over all of theirs. On all of MNIST (70,000 points) mean shift over all points
    was 318 of a fit's 498 s.
    """

    max_points: int | None = 20_000


@dataclass(frozen=True)
class TrainingSettings:
    """When training the kernel stops before ``max_steps``: at a plateau of its loss.

    After every ``plateau_window`` steps, the mean training loss of that window is compared
    with the lowest mean of the windows before it; training stops when it is not at least
    ``plateau_tol`` (relative) lower. ``plateau_window`` None trains all ``max_steps``. The
    loss, not held-back side information, decides: the kernel trains on all the side
    information (with ``ValidationSettings.cross_fit``, first to a plateau without one fold). What it gains and costs
    against all 1,000 steps on the shared benchmarks: docs/methods.md.
    """

    plateau_window: int | None = 100
    plateau_tol: float = 0.1


_PARTS = {"projection": ProjectionSettings, "anchors": AnchorSettings, "threshold": ThresholdSettings,
          "smoothing": SmoothingSettings, "fallback": FallbackSettings, "novelty": NoveltySettings,
          "side_info": SideInfoSettings, "validation": ValidationSettings, "training": TrainingSettings,
          "shift": ShiftSettings}


@dataclass(frozen=True)
class DMSSettings:
    """The tuning numbers of every stage of :class:`~dmshift.DMSClustering`, grouped by stage.

    ``DMSSettings(smoothing=SmoothingSettings(n_iter=100))`` changes one number and keeps
    the defaults of the others.
    """

    projection: ProjectionSettings = field(default_factory=ProjectionSettings)
    anchors: AnchorSettings = field(default_factory=AnchorSettings)
    threshold: ThresholdSettings = field(default_factory=ThresholdSettings)
    smoothing: SmoothingSettings = field(default_factory=SmoothingSettings)
    fallback: FallbackSettings = field(default_factory=FallbackSettings)
    novelty: NoveltySettings = field(default_factory=NoveltySettings)
    side_info: SideInfoSettings = field(default_factory=SideInfoSettings)
    validation: ValidationSettings = field(default_factory=ValidationSettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    shift: ShiftSettings = field(default_factory=ShiftSettings)

    def to_dict(self) -> dict:
        """A JSON-ready dict ``{stage: {field: value}}``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> "DMSSettings":
        """The inverse of :meth:`to_dict`; missing stages or fields take their defaults.

        Raises ``ValueError`` naming an unknown stage or field.
        """
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ValueError(f"The 'settings' parameter must be a DMSSettings, a dict or None. Got {data!r} instead.")
        parts = {}
        for stage, values in data.items():
            if stage not in _PARTS:
                raise ValueError(f"Unknown stage {stage!r} in 'settings'; expected one of {sorted(_PARTS)}.")
            if isinstance(values, _PARTS[stage]):
                parts[stage] = values
                continue
            known = {f.name for f in fields(_PARTS[stage])}
            unknown = set(values) - known
            if unknown:
                raise ValueError(f"Unknown field(s) {sorted(unknown)} of settings stage {stage!r}; "
                                 f"expected some of {sorted(known)}.")
            parts[stage] = _PARTS[stage](**values)
        return cls(**parts)
