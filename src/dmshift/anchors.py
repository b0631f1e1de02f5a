"""Anchors: side-information points kept as fixed centers when DMS clusters its training data.

:func:`select_anchors` picks them from a :class:`~dmshift.constraints.SideInfo`;
:func:`anchor_centers` and :func:`concat_centers` turn them into
:class:`~dmshift.meanshift.CenterResult` rows next to the centers mean shift found. The
clustering stage (:mod:`dmshift.clustering`) uses them; nothing here shifts or merges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from .constraints import SideInfo
from .meanshift import CenterResult
from .settings import AnchorSettings

__all__ = ["Anchors", "select_anchors", "anchor_centers", "concat_centers"]


@dataclass(frozen=True)
class Anchors:
    """Result of :func:`select_anchors`; read like a dict (``anchors["index"]``) as before.

    Attributes
    ----------
    index : ndarray of shape (m,)
        Row of each anchor, ascending.
    group : ndarray of shape (m,)
        Side-information group of each anchor.
    cannot : sparse matrix of shape (G, G)
        Which groups are known to differ.
    complete : bool
        Label-like side information: every two anchored groups are known to differ.
    """

    index: np.ndarray
    group: np.ndarray
    cannot: sp.spmatrix
    complete: bool

    def __getitem__(self, key: str):
        return getattr(self, key)


def select_anchors(side: SideInfo, settings: AnchorSettings = AnchorSettings()) -> Anchors | None:
    """Points of each group kept as fixed centers: all, or ``settings.max_per_group`` spread over the group.

    Only groups of at least ``settings.min_group`` points give anchors. Deterministic (no
    random draw), so every process of a distributed fit picks the same. Returns None when
    no group qualifies.
    """
    cap = settings.max_per_group
    idx, grp = [], []
    for g, members in enumerate(side.members()):
        if members.size < settings.min_group:
            continue
        if members.size > cap:
            members = members[np.unique(np.linspace(0, members.size - 1, cap).astype(np.int64))]
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
    return Anchors(index=index[order], group=np.concatenate(grp)[order], cannot=side.cannot, complete=complete)


def anchor_centers(qc: torch.Tensor, index: np.ndarray) -> CenterResult:
    """Fixed centers with embeddings ``qc`` (M, h) at the points ``index`` (inlier counts not measured: 0)."""
    z = np.zeros(index.size, dtype=np.int64)
    return CenterResult(qc=qc, seeds=np.asarray(index, dtype=np.int64),
                        n_iter=z, converged=np.ones(index.size, dtype=bool), fingerprint=z, count=z)


def concat_centers(a: CenterResult, b: CenterResult) -> CenterResult:
    """The centers of ``a`` followed by those of ``b``."""
    return CenterResult(qc=torch.cat([a.qc, b.qc]), seeds=np.concatenate([a.seeds, b.seeds]),
                        n_iter=np.concatenate([a.n_iter, b.n_iter]), converged=np.concatenate([a.converged, b.converged]),
                        fingerprint=np.concatenate([a.fingerprint, b.fingerprint]),
                        count=np.concatenate([a.count, b.count]))
