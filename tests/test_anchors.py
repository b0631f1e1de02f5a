"""Anchors: side-information points kept as fixed centers (``dmshift.anchors``)."""

import numpy as np
import torch

from dmshift.anchors import anchor_centers, concat_centers, select_anchors
from dmshift.constraints import SideInfo
from dmshift.settings import AnchorSettings


def test_groups_below_min_group_give_no_anchors_and_large_ones_are_spread():
    y = np.array([0] * 10 + [1] * 2 + [2] * 4 + [-1] * 4)
    a = select_anchors(SideInfo.build(y.size, y=y), AnchorSettings(max_per_group=3, min_group=3))
    # groups 0 and 2 capped at 3 spread over the group; group 1 too small
    assert a["index"].tolist() == [0, 4, 9, 12, 13, 15]
    assert np.bincount(a.group).tolist() == [3, 0, 3]
    assert a.complete  # labels: every two anchored groups are known to differ


def test_no_qualifying_group_gives_none():
    y = np.array([0, 0, 1, 1, -1])
    assert select_anchors(SideInfo.build(y.size, y=y)) is None
    assert select_anchors(SideInfo.build(y.size, y=y), AnchorSettings(min_group=2)) is not None


def test_anchor_centers_and_concat_keep_rows_in_order():
    qc = torch.arange(6, dtype=torch.float32).reshape(3, 2)
    a = anchor_centers(qc[:2], np.array([5, 7]))
    b = anchor_centers(qc[2:], np.array([1]))
    c = concat_centers(a, b)
    assert torch.equal(c.qc, qc)
    assert c.seeds.tolist() == [5, 7, 1] and c.converged.all() and (c.count == 0).all()
