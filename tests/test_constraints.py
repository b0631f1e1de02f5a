import itertools

import numpy as np
import pytest

from dmshift.constraints import SideInfo, encode_partial_labels


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


# ---------------------------------------------------------------------------- labels as people hold them
def _same_sideinfo(a, b):
    return (a.group == b.group).all() and (a.cannot != b.cannot).nnz == 0


def test_unknown_labels_as_nan_none_and_minus_one_are_the_same():
    pd = pytest.importorskip("pandas")
    ref = SideInfo.build(6, y=np.array([0, 0, -1, 1, 1, -1]))
    for y in (np.array([0, 0, np.nan, 1, 1, -1.0]),
              np.array([0, 0, None, 1, 1, np.nan], dtype=object),
              [0, 0, None, 1, 1, -1],
              pd.Series([0, 0, pd.NA, 1, 1, None], dtype="Int64"),
              pd.Series([0.0, 0.0, np.nan, 1.0, 1.0, np.nan])):
        assert _same_sideinfo(SideInfo.build(6, y=y), ref), y


def test_string_and_categorical_labels():
    pd = pytest.importorskip("pandas")
    ref = SideInfo.build(6, y=np.array([0, 0, -1, 1, 1, -1]))
    for y in (np.array(["cat", "cat", None, "dog", "dog", np.nan], dtype=object),
              ["cat", "cat", None, "dog", "dog", None],
              pd.Series(["cat", "cat", pd.NA, "dog", "dog", None], dtype="string"),
              pd.Categorical(["cat", "cat", None, "dog", "dog", np.nan]),
              pd.Series(pd.Categorical(["cat", "cat", None, "dog", "dog", None], categories=["dog", "cat", "x"]))):
        assert _same_sideinfo(SideInfo.build(6, y=y), ref), y
    codes, classes = encode_partial_labels(np.array(["b", "a", "b", "c"]))
    assert codes.tolist() == [1, 0, 1, 2] and classes.tolist() == ["a", "b", "c"]


def test_huge_integer_labels_stay_distinct():
    # 2**53 and 2**53 + 1 are one float64: a float round trip would merge the two classes
    y = np.array([2**53, 2**53, 2**53 + 1, 2**53 + 1, -1, None], dtype=object)
    codes, classes = encode_partial_labels(y)
    assert codes.tolist() == [0, 0, 1, 1, -1, -1]
    assert classes.tolist() == [2**53, 2**53 + 1]
    side = SideInfo.build(6, y=y)
    assert side.n_groups == 2 and side.cannot[0, 1]
    codes, _ = encode_partial_labels(np.array([2**63 + 1, 2**63 + 1, 0], dtype=np.uint64))
    assert codes.tolist() == [1, 1, 0]
    codes, classes = encode_partial_labels(np.array([2**70, 3, 2**70], dtype=object))
    assert codes.tolist() == [1, 0, 1] and classes.tolist() == [3, 2**70]


@pytest.mark.parametrize("y, msg", [
    (["a", 1, "b"], "Got both numbers and strings"),
    (np.array([0.5, 1.0]), "non-integer floats"),
    (np.array([0, np.inf]), "must not contain inf"),
    (np.array([0, -2]), "Got -2 instead"),
    (np.array([True, False]), "Got dtype bool"),
    (np.array([{}, 1], dtype=object), "non-numeric objects"),
])
def test_labels_that_cannot_be_read_are_refused(y, msg):
    with pytest.raises(ValueError, match=msg):
        encode_partial_labels(y)


def test_pairs_as_a_data_frame_with_a_bool_same_column():
    pd = pytest.importorskip("pandas")
    rows = np.array([[0, 1, 1], [1, 2, 1], [0, 3, 0]])
    df = pd.DataFrame({"j": rows[:, 1], "i": rows[:, 0], "same": rows[:, 2].astype(bool)})  # column order free
    assert _same_sideinfo(SideInfo.build(4, pairs=df), SideInfo.build(4, pairs=rows))
    df_obj = df.astype({"same": object})
    assert _same_sideinfo(SideInfo.build(4, pairs=df_obj), SideInfo.build(4, pairs=rows))
    with pytest.raises(ValueError, match="must have columns 'i', 'j' and 'same'. Got columns"):
        SideInfo.build(4, pairs=df.rename(columns={"same": "link"}))
    with pytest.raises(ValueError, match="column 'same' must not have missing values"):
        SideInfo.build(4, pairs=pd.DataFrame({"i": [0], "j": [1], "same": [None]}))
