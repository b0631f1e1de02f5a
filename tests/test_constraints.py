import itertools

import numpy as np
import pytest

from dmshift.constraints import SideInfo


def _all_pairs(y):
    idx = np.flatnonzero(y >= 0)
    return np.array([(i, j, int(y[i] == y[j])) for i, j in itertools.combinations(idx, 2)])


def test_labels_and_pairs_give_the_same_side_information():
    y = np.array([0, 0, 1, -1, 1, 2, -1, 2])
    a = SideInfo.from_labels(y)
    b = SideInfo.from_pairs(_all_pairs(y), len(y))
    assert (a.group == b.group).all()
    assert (a.cannot != b.cannot).nnz == 0
    assert a.summary() == b.summary()


def test_transitive_closure_of_same():
    pairs = np.array([[0, 1, 1], [1, 2, 1], [2, 3, 0]])
    s = SideInfo.from_pairs(pairs, 5)
    assert s.group[0] == s.group[1] == s.group[2] != s.group[3]
    assert s.group[4] == -1
    m = s.same_matrix(np.array([0, 2, 3, 4]))
    assert m.tolist() == [[1, 1, 0, -1], [1, 1, 0, -1], [0, 0, 1, -1], [-1, -1, -1, -1]]


def test_contradiction_is_refused_or_resolved():
    pairs = np.array([[0, 1, 1], [1, 2, 1], [0, 2, 0]])
    with pytest.raises(ValueError, match="contradictory"):
        SideInfo.from_pairs(pairs, 3)
    s = SideInfo.from_pairs(pairs, 3, on_conflict="majority")
    assert s.n_conflicts == 1
    assert s.group[0] == s.group[1] == s.group[2]  # two "same" outvote one "different"


@pytest.mark.parametrize("pairs, msg", [
    (np.array([[0, 9, 1]]), "indices in"),
    (np.array([[0, -1, 1]]), "indices in"),
    (np.array([[0, 1, 2]]), "0 or 1"),
    (np.array([[1, 1, 0]]), "different from itself"),
    (np.array([[0.5, 1, 1]]), "integers"),
    (np.array([0, 1, 1]), r"\(m, 3\)"),
])
def test_bad_pairs(pairs, msg):
    with pytest.raises(ValueError, match=msg):
        SideInfo.from_pairs(pairs, 3)


def test_bad_labels():
    with pytest.raises(ValueError, match="one label per sample"):
        SideInfo.build(4, y=[0, 1])
    with pytest.raises(ValueError, match="integer"):
        SideInfo.build(2, y=[0.5, 1])
    with pytest.raises(ValueError, match=">= 0"):
        SideInfo.build(2, y=[-3, 1])


def test_trainable_needs_both_relations():
    with pytest.raises(ValueError, match="No side information"):
        SideInfo.build(3, y=[-1, -1, -1]).check_trainable()
    with pytest.raises(ValueError, match="no 'different'"):
        SideInfo.build(3, y=[0, 0, -1]).check_trainable()
    with pytest.raises(ValueError, match="no 'same'"):
        SideInfo.build(3, y=[0, 1, -1]).check_trainable()
    SideInfo.build(4, y=[0, 0, 1, -1]).check_trainable()
