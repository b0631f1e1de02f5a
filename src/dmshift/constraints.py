"""Side information: partial labels and must-link / cannot-link pairs, in one form.

:class:`SideInfo` turns either kind of supervision (or both) into *groups*, the
connected components of the "same" relation (its transitive closure), and a symmetric
"cannot" relation between groups. Every method in dmshift trains from this one form,
so labels given as ``y`` and the same information given as pairs give the same
training signal. This module only validates and represents; it samples nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from .constants import UNLABELLED
from .partial_labels import encode_partial_labels

__all__ = ["SideInfo", "encode_partial_labels"]


def _check_labels(y, n_samples: int) -> np.ndarray:
    """Codes of partial labels (int64, -1 unknown): see :func:`encode_partial_labels`."""
    return encode_partial_labels(y, n_samples)[0]


def _pairs_from_frame(frame) -> np.ndarray:
    """(m, 3) rows from a DataFrame with columns ``i``, ``j`` and ``same`` (bool or 0/1)."""
    names = [str(c) for c in frame.columns]
    if not {"i", "j", "same"} <= set(names):
        raise ValueError("The 'pairs' parameter, given as a DataFrame, must have columns 'i', 'j' and 'same'. "
                         f"Got columns {names} instead.")
    cols = []
    for name in ("i", "j", "same"):
        col = frame[frame.columns[names.index(name)]]
        if col.isna().any():
            r = int(np.flatnonzero(col.isna().to_numpy())[0])
            raise ValueError(f"The 'pairs' parameter's column {name!r} must not have missing values. "
                             f"Got one in row {r} instead.")
        v = col.to_numpy()
        if v.dtype == object and all(isinstance(x, (bool, np.bool_)) for x in v):
            v = v.astype(bool)
        cols.append(v.astype(np.int64) if v.dtype.kind == "b" else v)
    return np.column_stack(cols) if len(frame) else np.zeros((0, 3), dtype=np.int64)


def _check_pairs(pairs, n_samples: int) -> np.ndarray:
    if hasattr(pairs, "columns") and hasattr(pairs, "iloc"):  # a pandas DataFrame
        pairs = _pairs_from_frame(pairs)
    P = np.asarray(pairs)
    if P.size == 0:
        return np.zeros((0, 3), dtype=np.int64)
    if P.ndim != 2 or P.shape[1] != 3:
        raise ValueError(
            f"The 'pairs' parameter must be an (m, 3) array of (i, j, same) rows. Got an array of shape {P.shape} instead."
        )
    big = np.iinfo(np.int64).max
    if P.dtype == object:  # e.g. Python ints beyond int64, or mixed values
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in P.ravel()):
            raise ValueError("The 'pairs' parameter must hold integers (indices and same in {0, 1}). "
                             "Got non-integer values instead.")
        r = next((r for r, row in enumerate(P.tolist()) if any(v < 0 or v > big for v in row)), None)
        if r is not None:
            raise ValueError(f"The 'pairs' parameter must hold indices in [0, {n_samples}). "
                             f"Got row {r} = {tuple(P[r].tolist())} instead.")
        P = P.astype(np.int64)
    if P.dtype.kind == "f":
        bad = ~np.isfinite(P) | (P != np.round(P))
        if bad.any():
            r = int(np.flatnonzero(bad.any(1))[0])
            raise ValueError("The 'pairs' parameter must hold integers (indices and same in {0, 1}). "
                             f"Got row {r} = {tuple(P[r].tolist())} instead.")
    elif P.dtype.kind not in "iub":
        raise ValueError("The 'pairs' parameter must hold integers (indices and same in {0, 1}). "
                         f"Got dtype {P.dtype} instead.")
    if P.dtype.kind in "uf" and np.any(np.abs(P) > big):  # would wrap around in int64
        r = int(np.flatnonzero((np.abs(P) > big).any(1))[0])
        raise ValueError(f"The 'pairs' parameter must hold indices in [0, {n_samples}). "
                         f"Got row {r} = {tuple(P[r].tolist())} instead.")
    P = P.astype(np.int64)
    i, j, s = P[:, 0], P[:, 1], P[:, 2]
    bad = (i < 0) | (j < 0) | (i >= n_samples) | (j >= n_samples)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"The 'pairs' parameter must hold indices in [0, {n_samples}). Got row {r} = {tuple(int(v) for v in P[r])} instead."
        )
    bad = (s != 0) & (s != 1)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise ValueError("The 'pairs' parameter's third column (same) must be 0 or 1. "
                         f"Got row {r} = {tuple(int(v) for v in P[r])} instead.")
    self_diff = (i == j) & (s == 0)
    if self_diff.any():
        r = int(np.flatnonzero(self_diff)[0])
        raise ValueError("The 'pairs' parameter must not mark a point as different from itself. "
                         f"Got row {r} = {tuple(int(v) for v in P[r])} instead.")
    return P


@dataclass(frozen=True)
class SideInfo:
    """Side information over ``n_samples`` points, as groups and a cannot-link relation.

    Attributes
    ----------
    n_samples : int
        Number of points in the data set.
    group : ndarray of shape (n_samples,)
        Group id (0..n_groups-1) of each point with side information, ``-1`` elsewhere.
        A group is a connected component of the "same" relation.
    cannot : scipy.sparse.csr_matrix of shape (n_groups, n_groups), bool
        Symmetric; ``cannot[g, h]`` means the points of ``g`` and ``h`` are known to differ.
    """

    n_samples: int
    group: np.ndarray
    cannot: sp.csr_matrix
    n_conflicts: int = 0
    _members: list = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_labels(cls, y, n_samples: int | None = None) -> "SideInfo":
        """Side information from partial labels (``-1`` = unknown)."""
        n = len(y) if n_samples is None else n_samples
        return cls.build(n, y=y)

    @classmethod
    def from_pairs(cls, pairs, n_samples: int, *, on_conflict: str = "raise") -> "SideInfo":
        """Side information from an (m, 3) array of ``(i, j, same)`` rows."""
        return cls.build(n_samples, pairs=pairs, on_conflict=on_conflict)

    @classmethod
    def build(cls, n_samples: int, *, y=None, pairs=None, on_conflict: str = "raise") -> "SideInfo":
        """Combine partial labels and pairs into one :class:`SideInfo`.

        Parameters
        ----------
        n_samples : int
        y : array-like of shape (n_samples,), optional
            Partial labels: integers with -1, None or NaN for points without side
            information, strings with None or NaN for them, or a pandas Series or
            Categorical with missing cells for them (see :func:`encode_partial_labels`).
        pairs : array-like of shape (m, 3) or DataFrame, optional
            Rows ``(i, j, same)`` with ``same`` in {0, 1}; or a DataFrame with columns
            ``i``, ``j`` and ``same`` (bool or 0/1).
        on_conflict : {"raise", "majority"}
            What to do when the transitive closure of "same" puts two points marked
            different into one group. ``"raise"`` refuses the input; ``"majority"`` keeps,
            for each conflicting group, the relation supported by more pairs: it drops
            the "same" pairs inside the group that are outvoted by "different" pairs.
            Labels count as pairs too: a class as a chain of "same" pairs, and two
            classes as one "different" pair, so a pair joining two labelled classes is
            a conflict.
        """
        if on_conflict not in ("raise", "majority"):
            raise ValueError(f"The 'on_conflict' parameter must be 'raise' or 'majority'. Got {on_conflict!r} instead.")
        same_i, same_j, diff_i, diff_j = [], [], [], []
        involved = np.zeros(n_samples, dtype=bool)
        label_of = None
        if y is not None:
            yl = _check_labels(y, n_samples)
            idx = np.flatnonzero(yl != UNLABELLED)
            involved[idx] = True
            if idx.size:
                order = idx[np.argsort(yl[idx], kind="stable")]
                ly = yl[order]
                chain = ly[1:] == ly[:-1]
                same_i.append(order[:-1][chain])
                same_j.append(order[1:][chain])
                # one "different" pair per two labels (between their first points), so that a same pair
                # joining two labels is seen as the contradiction it is
                reps = order[np.concatenate(([True], ~chain))]
                a, b = np.triu_indices(reps.size, 1)
                diff_i.append(reps[a])
                diff_j.append(reps[b])
            label_of = yl
        if pairs is not None:
            P = _check_pairs(pairs, n_samples)
            involved[P[:, 0]] = True
            involved[P[:, 1]] = True
            s = P[:, 2] == 1
            same_i.append(P[s, 0])
            same_j.append(P[s, 1])
            diff_i.append(P[~s, 0])
            diff_j.append(P[~s, 1])
        si = np.concatenate(same_i) if same_i else np.zeros(0, np.int64)
        sj = np.concatenate(same_j) if same_j else np.zeros(0, np.int64)
        di = np.concatenate(diff_i) if diff_i else np.zeros(0, np.int64)
        dj = np.concatenate(diff_j) if diff_j else np.zeros(0, np.int64)

        group, n_conflicts = cls._groups(n_samples, involved, si, sj, di, dj, on_conflict)
        G = int(group.max()) + 1 if involved.any() else 0

        # cannot-link between groups: explicit different pairs plus different labels
        gi_list, gj_list = [group[di]], [group[dj]]
        if label_of is not None:
            lab_idx = np.flatnonzero(label_of != UNLABELLED)
            # one representative group per label (a label is one group unless pairs split it: they cannot)
            labels, first = np.unique(label_of[lab_idx], return_index=True)
            lg = group[lab_idx[first]]
            if labels.size > 1:
                a, b = np.meshgrid(lg, lg, indexing="ij")
                off = a != b
                gi_list.append(a[off])
                gj_list.append(b[off])
        gi = np.concatenate(gi_list)
        gj = np.concatenate(gj_list)
        keep = gi != gj  # inside-group "different" pairs were resolved (majority) or raised above
        gi, gj = gi[keep], gj[keep]
        data = np.ones(2 * gi.size, dtype=bool)
        cannot = sp.csr_matrix((data, (np.concatenate([gi, gj]), np.concatenate([gj, gi]))), shape=(G, G), dtype=bool)
        cannot.sum_duplicates()
        return cls(n_samples=n_samples, group=group, cannot=cannot, n_conflicts=n_conflicts)

    @staticmethod
    def _groups(n, involved, si, sj, di, dj, on_conflict):
        """Connected components of the same-relation over involved points; checks conflicts."""
        def components(a, b):
            A = sp.coo_matrix((np.ones(a.size, dtype=np.int8), (a, b)), shape=(n, n))
            _, comp = connected_components(A, directed=False)
            return comp

        comp = components(si, sj)
        conflict = comp[di] == comp[dj]
        n_conflicts = int(conflict.sum())
        if n_conflicts and on_conflict == "raise":
            r = int(np.flatnonzero(conflict)[0])
            raise ValueError(
                "The side information is contradictory: points "
                f"{int(di[r])} and {int(dj[r])} are marked different (by a pair or by their labels) but are linked "
                "as the same through "
                f"labels or same pairs ({n_conflicts} such pairs in all). Fix the input, or pass "
                "on_conflict='majority' to resolve contradictions by vote."
            )
        if n_conflicts:
            # Majority vote per conflicting component: if the component's different pairs outnumber
            # its same pairs, drop its same pairs (they become singletons linked by nothing);
            # otherwise drop the different pairs inside it.
            bad_comps = np.unique(comp[di[conflict]])
            drop_same = np.zeros(si.size, dtype=bool)
            for c in bad_comps:
                n_diff = int(np.sum((comp[di] == c) & (comp[dj] == c)))
                in_c = comp[si] == c
                if n_diff > int(in_c.sum()):
                    drop_same |= in_c
            si, sj = si[~drop_same], sj[~drop_same]
            comp = components(si, sj)
        # relabel components of involved points to 0..G-1
        group = np.full(n, -1, dtype=np.int64)
        if involved.any():
            _, inv = np.unique(comp[involved], return_inverse=True)
            group[involved] = inv
        return group, n_conflicts

    # ------------------------------------------------------------------ queries
    @property
    def n_groups(self) -> int:
        return self.cannot.shape[0]

    @property
    def labelled(self) -> np.ndarray:
        """Indices of points that carry side information."""
        return np.flatnonzero(self.group >= 0)

    def members(self) -> list[np.ndarray]:
        """Point indices of each group."""
        if self._members is None:
            idx = self.labelled
            order = idx[np.argsort(self.group[idx], kind="stable")]
            bounds = np.searchsorted(self.group[order], np.arange(self.n_groups + 1))
            object.__setattr__(self, "_members", [order[bounds[g]:bounds[g + 1]] for g in range(self.n_groups)])
        return self._members

    def n_positive_pairs(self) -> int:
        sizes = np.array([m.size for m in self.members()], dtype=np.int64)
        return int(np.sum(sizes * (sizes - 1) // 2))

    def n_negative_pairs(self) -> int:
        sizes = np.array([m.size for m in self.members()], dtype=np.int64)
        C = self.cannot.tocoo()
        return int(np.sum(sizes[C.row] * sizes[C.col]) // 2)

    def restrict(self, keep: np.ndarray) -> "SideInfo":
        """Side information with only the points in boolean mask ``keep`` kept labelled."""
        group = np.where(keep, self.group, -1)
        return SideInfo(n_samples=self.n_samples, group=group, cannot=self.cannot, n_conflicts=self.n_conflicts)

    def same_matrix(self, idx: np.ndarray) -> np.ndarray:
        """(len(idx), len(idx)) int8 matrix: 1 same, 0 different, -1 unknown, for points ``idx``."""
        g = self.group[idx]
        out = np.full((idx.size, idx.size), -1, dtype=np.int8)
        known = g >= 0
        gk = g[known]
        sub = np.where(gk[:, None] == gk[None, :], 1, -1).astype(np.int8)
        if gk.size:
            c = self.cannot[gk][:, gk].toarray()
            sub[c] = 0
        out[np.ix_(known, known)] = sub
        return out

    def summary(self) -> dict:
        sizes = np.array([m.size for m in self.members()], dtype=np.int64)
        return {
            "n_samples": self.n_samples,
            "n_labelled": int(self.labelled.size),
            "n_groups": self.n_groups,
            "largest_group": int(sizes.max()) if sizes.size else 0,
            "n_positive_pairs": self.n_positive_pairs(),
            "n_negative_pairs": self.n_negative_pairs(),
            "n_conflicts": self.n_conflicts,
        }

    def check_trainable(self) -> None:
        """Raise unless there is at least one positive and one negative pair to learn from."""
        if self.labelled.size == 0:
            raise ValueError(
                "No side information was given: pass y (partial labels, -1 for unknown) with at least two "
                "labelled classes, or pairs (i, j, same)."
            )
        if self.n_negative_pairs() == 0:
            raise ValueError(
                "The side information has no 'different' relation: give labels of at least two classes, "
                "or at least one pair with same=0."
            )
        if self.n_positive_pairs() == 0:
            raise ValueError(
                "The side information has no 'same' relation: give at least two points of one class, "
                "or at least one pair with same=1."
            )
