"""Held-back side information: what DMS validates its choices on.

:func:`hold_out` splits the user's side information into the part the kernel is trained
and the candidates are built on, and a held-back part that none of them sees. Each choice
DMS makes after that (how long to train, which graph or clustering gives the labels) is
the candidate with the best pairwise F1 on the held-back part (:meth:`Holdout.f1`): the
user's own side information decides, not a threshold picked on some data set.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from .constraints import SideInfo
from .settings import ValidationSettings

__all__ = ["Holdout", "hold_out", "k_folds", "pair_counts", "pooled_f1", "f1_better"]


def pair_counts(labels: np.ndarray, group: np.ndarray, cannot: sp.spmatrix, n_groups: int) -> np.ndarray:
    """Pairs of the points with a group (``group`` >= 0) as ``[together same, together different, same]``.

    A "same" pair is two points of one group, a "different" pair two points of groups that
    ``cannot`` (G, G) says differ; a pair is *together* when both points have one label that
    is not NOISE (-1).
    """
    labels, group = np.asarray(labels, dtype=np.int64), np.asarray(group, dtype=np.int64)
    on = group >= 0
    sizes = np.bincount(group[on], minlength=n_groups).astype(np.float64)
    keep = on & (labels >= 0)
    if not keep.any():
        return np.array([0.0, 0.0, float((sizes * (sizes - 1)).sum() / 2)])
    lab = np.unique(labels[keep], return_inverse=True)[1].ravel()
    H = sp.csr_matrix((np.ones(lab.size), (lab, group[keep])), shape=(int(lab.max()) + 1, n_groups))
    together_same = float((H.multiply(H) - H).sum()) / 2
    together_diff = float(H.multiply(H @ sp.csr_matrix(cannot, dtype=np.float64)).sum()) / 2
    return np.array([together_same, together_diff, float((sizes * (sizes - 1)).sum() / 2)])


@dataclass(frozen=True)
class Holdout:
    """The side information split for validation.

    Attributes
    ----------
    train : SideInfo
        What the kernel and the candidates are given: the side information without the held-back points.
    side : SideInfo
        All the side information.
    held : ndarray of shape (n_samples,), bool
        The held-back points.
    n_same, n_different : int
        The held-back pairs (pairs with at least one held-back point) of each kind.
    """

    train: SideInfo
    side: SideInfo
    held: np.ndarray
    n_same: int
    n_different: int

    def f1(self, labels: np.ndarray) -> float:
        """Pairwise F1 of ``labels`` (n,) on the held-back pairs: 2 TP / (2 TP + FP + FN), with TP the
        "same" pairs together, FN the "same" pairs apart and FP the "different" pairs together."""
        every = pair_counts(labels, self.side.group, self.side.cannot, self.side.n_groups)
        trained = pair_counts(labels, self.train.group, self.side.cannot, self.side.n_groups)
        tp, fp, same = every - trained
        return float(2 * tp / (tp + fp + same)) if same > 0 else 0.0

    def point_scores(self, labels: np.ndarray) -> np.ndarray:
        """Each held-back point's balanced pair accuracy (k,): the mean of the share of its "same"
        pairs together and the share of its "different" pairs apart (nan where it has neither), over
        its pairs with every side-information point. What :meth:`better` compares candidates on."""
        labels = np.asarray(labels, dtype=np.int64)
        side = self.side
        idx = side.labelled
        g, lab = side.group[idx], labels[idx]
        out = []
        C = side.cannot.tocsr()
        for i in np.flatnonzero(self.held[idx]):
            others = np.arange(idx.size) != i
            together = (lab[others] == lab[i]) & (lab[i] >= 0)
            same = g[others] == g[i]
            diff = np.asarray(C[g[i]].toarray()[0, g[others]], dtype=bool)
            parts = [together[same].mean() if same.any() else np.nan, (~together[diff]).mean() if diff.any() else np.nan]
            out.append(np.nanmean(parts) if not np.all(np.isnan(parts)) else np.nan)
        return np.asarray(out, dtype=np.float64)

    def pair_parts(self, labels: np.ndarray, rows: int | None = None) -> np.ndarray:
        """Each held-back point's part of the held-back pairs (k, 3): its "same" pairs together,
        its "different" pairs together and its "same" pairs, over its pairs with every other
        side-information point. A pair of two held-back points counts half for each, so the
        columns sum to the counts :meth:`f1` reads (:func:`pooled_f1` of the parts is that F1).
        What :func:`f1_better` compares candidates on; ``rows`` held-back points at a time (None:
        as many as keep each (rows, side-information points) array near 2**20 entries, some 40 MB in all)."""
        labels = np.asarray(labels, dtype=np.int64)
        side = self.side
        idx = side.labelled
        g, lab, held = side.group[idx], labels[idx], self.held[idx]
        weight = np.where(held, 0.5, 1.0)  # (L,)
        C = side.cannot.tocsr()
        H = np.flatnonzero(held)
        out = np.zeros((H.size, 3), dtype=np.float64)
        rows = max(1, 2**20 // max(1, idx.size)) if rows is None else int(rows)
        for s in range(0, H.size, rows):
            h = H[s:s + rows]  # (t,) rows of idx
            other = np.arange(idx.size)[None, :] != h[:, None]  # (t, L): not the point itself
            together = (lab[h, None] == lab[None, :]) & (lab[h, None] >= 0)
            same = (g[h, None] == g[None, :]) & other
            diff = C[g[h]][:, g].toarray().astype(bool)  # (t, L), never (t, groups)
            out[s:s + h.size] = np.stack([((together & same) * weight).sum(1), ((together & diff) * weight).sum(1),
                                          (same * weight).sum(1)], 1)
        return out

    @staticmethod
    def better(a: np.ndarray, b: np.ndarray, z: float) -> bool:
        """Do the point scores ``a`` beat ``b`` (same points) by more than ``z`` standard errors of
        their paired differences? A noise-aware test: a few held-back points prove little."""
        d = a - b
        d = d[~np.isnan(d)]
        if d.size < 2:
            return False
        return bool(d.mean() > z * d.std(ddof=1) / np.sqrt(d.size) and d.mean() > 0)

    def record(self) -> dict:
        return {"held_points": int(self.held.sum()), "held_same_pairs": self.n_same,
                "held_different_pairs": self.n_different}


def pooled_f1(parts: np.ndarray) -> float:
    """Pairwise F1 of held-back points' :meth:`Holdout.pair_parts` (k, 3) taken together."""
    tp, fp, same = np.asarray(parts, dtype=np.float64).sum(0)
    return float(2 * tp / (tp + fp + same)) if same > 0 else 0.0


def _f1_influence(parts: np.ndarray) -> np.ndarray:
    """Each point's influence on :func:`pooled_f1` (k,): the delta method's linearisation of the ratio
    2 sum(tp) / sum(tp + fp + same) in the points' means."""
    parts = np.asarray(parts, dtype=np.float64)
    tp, u = parts[:, 0], parts.sum(1)
    mean_u = u.mean()
    if mean_u <= 0:
        return np.zeros(parts.shape[0])
    return (2 * tp - pooled_f1(parts) * u) / mean_u


def f1_better(a: np.ndarray, b: np.ndarray, z: float, offset: float = 0.0) -> bool:
    """Does the pooled F1 of the held-back points' pair parts ``a`` (k, 3), plus ``offset`` (a bias
    correction), beat that of ``b`` (the same points, another candidate) by more than ``z``
    standard errors of the difference?

    The standard error is the delta method's for the difference of two ratio estimators over
    the same points: the paired differences of the points' influences. Unlike a mean of
    per-point scores, this weighs each point by the pairs it holds, as F1 does: where "same"
    pairs are rare (many groups, few labels each) the few points that hold them decide.
    """
    if len(a) < 2:
        return False
    diff = pooled_f1(a) + offset - pooled_f1(b)
    d = _f1_influence(a) - _f1_influence(b)
    return bool(diff > 0 and diff > z * d.std(ddof=1) / np.sqrt(d.size))


def hold_out(side: SideInfo, rng: np.random.Generator, fraction: float,
             settings: ValidationSettings = ValidationSettings()) -> Holdout | None:
    """Hold back about ``fraction`` of the side information, or None when too little is left.

    A group of at least ``settings.split_groups`` points keeps most of its points and holds
    back the others (at least one); a smaller group (an isolated "same" pair, say) is held
    back whole with chance ``fraction``, so that the held-back part also tests groups the
    candidates have never seen. None when the held-back pairs hold fewer than
    ``settings.min_pairs`` "same" or ``settings.min_pairs`` "different" pairs, or
    the rest cannot train a kernel (no "same" or no "different" pair).
    """
    frac = float(fraction)
    if frac <= 0:
        return None
    held = np.zeros(side.n_samples, dtype=bool)
    for members in side.members():
        if members.size >= settings.split_groups:
            m = min(members.size - 1, max(1, int(round(frac * members.size))))
            held[rng.choice(members, size=m, replace=False)] = True
        elif members.size and rng.random() < frac:
            held[members] = True
    return _holdout(side, held, settings)


def k_folds(side: SideInfo, rng: np.random.Generator, k: int,
            settings: ValidationSettings = ValidationSettings()) -> list[Holdout]:
    """``k`` holdouts whose held-back parts cover the side information once (k-fold cross-validation).

    A group of at least ``settings.split_groups`` points deals its points out over the folds
    (each fold holds back about 1/k of them and keeps the rest); a smaller group is held back
    whole in one fold. A fold that holds back no "same" or no "different" pair, or whose rest
    cannot train a kernel, is left out; none are kept when the kept folds together hold back
    fewer than ``settings.min_pairs`` pairs of either kind (the choices compare candidates on
    all the folds' held-back points together, so a fold of few pairs still adds evidence). Every side-information point is scored in at most one fold,
    so point scores of the folds together are scores of distinct points.
    """
    k = int(k)
    if k < 2:
        return []
    fold = np.full(side.n_samples, -1, dtype=np.int64)
    for members in side.members():
        if members.size >= settings.split_groups:
            fold[rng.permutation(members)] = (rng.integers(k) + np.arange(members.size)) % k
        elif members.size:
            fold[members] = rng.integers(k)
    each = replace(settings, min_pairs=1)  # the folds are judged together: a fold of few pairs still counts
    folds = [h for f in range(k) if (h := _holdout(side, fold == f, each)) is not None]
    if min(sum(h.n_same for h in folds), sum(h.n_different for h in folds)) < settings.min_pairs:
        return []
    return folds


def _holdout(side: SideInfo, held: np.ndarray, settings: ValidationSettings) -> Holdout | None:
    """The :class:`Holdout` that holds back the points ``held`` (n,), or None (see :func:`hold_out`)."""
    train = side.restrict(~held)
    n_same = side.n_positive_pairs() - train.n_positive_pairs()
    n_diff = side.n_negative_pairs() - train.n_negative_pairs()
    if min(n_same, n_diff) < settings.min_pairs:
        return None
    try:
        train.check_trainable()
    except ValueError:
        return None
    return Holdout(train=train, side=side, held=held, n_same=n_same, n_different=n_diff)
