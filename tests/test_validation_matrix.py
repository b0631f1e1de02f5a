"""Bad input x every estimator: the error type and message at the boundary.

Each row of ``CASES`` is one kind of bad (or borderline) input; each applies to the
estimators it names. Supervised estimators (DMS, KCL, MCL, L2C) must refuse bad side
information with a ValueError naming the parameter; the unsupervised DDC and MMDC ignore
side information with a UserWarning (so bad y / pairs are not even read), and MeanShift
ignores y silently, as scikit-learn's MeanShift does, and takes no pairs. Messages about
X follow scikit-learn's wording where its estimator checks pin it (NaN/inf, sample and
feature counts). Tiny data and two training steps keep the whole matrix fast.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError

from _tiny import SUPERVISED, TINY, blobs, make

X, Y, YP = blobs()
N = X.shape[0]
GOOD_PAIRS = np.array([[0, 3, 1], [0, 1, 0], [1, 4, 1], [2, 5, 1], [1, 2, 0]])


def _pairs(*rows, dtype=None):
    return np.array(rows, dtype=dtype)


def fit(est, X_=X, y=YP, **kw):
    """fit as each estimator is meant to be called: with side information if it learns from it."""
    if est.__class__.__name__ == "MeanShift":
        return est.fit(X_)
    return est.fit(X_, y, **kw)


# (id, kind, call, exception type or None, message regex)
#   kind "X": every estimator; "y" / "pairs": side information (see module notes); "predict": every estimator
X_CASES = [
    ("X_nan", lambda e: fit(e, np.where(np.eye(N, 2, dtype=bool), np.nan, X)), ValueError, "Input X contains NaN"),
    ("X_inf", lambda e: fit(e, np.where(np.eye(N, 2, dtype=bool), np.inf, X)), ValueError, "Input X contains infinity"),
    ("X_empty", lambda e: fit(e, X[:0], YP[:0]), ValueError, r"0 sample\(s\) \(shape=\(0, 2\)\) while a minimum of"),
    ("X_no_features", lambda e: fit(e, X[:, :0]), ValueError, r"0 feature\(s\) \(shape=\(40, 0\)\) while a minimum of"),
    ("X_one_point", lambda e: fit(e, X[:1], YP[:1]), ValueError, r"1 sample\(s\) \(shape=\(1, 2\)\) while a minimum of 2"),
    ("X_1d", lambda e: fit(e, X[:, 0]), ValueError, "Expected a 2-dimensional container|Expected 2D array, got 1D"),
    ("X_3d", lambda e: fit(e, X[:, :, None]), ValueError, "Found array with dim 3"),
    ("X_none", lambda e: fit(e, None), ValueError, "The 'X' parameter must be an array-like .* Got None instead"),
    ("X_text", lambda e: fit(e, np.full((N, 2), "a")), ValueError, "The 'X' parameter must hold numbers .* Got text"),
    ("X_object_text", lambda e: fit(e, np.array([[1.0, "a"]] * N, dtype=object)), ValueError,
     "The 'X' parameter must hold numbers .* Got text of dtype object"),
    ("X_object_dict", lambda e: fit(e, np.array([[1.0, {"a": 1}]] * N, dtype=object)), TypeError,
     "argument must be .* string.* number"),  # scikit-learn's convention (check_dtype_object)
    ("X_ragged", lambda e: fit(e, [[1.0, 2.0]] * (N - 1) + [[3.0]]), ValueError,
     "The 'X' parameter must be an array-like .* Got rows of different lengths"),
    ("X_complex", lambda e: fit(e, X.astype(complex)), ValueError, "Complex data not supported"),
    ("X_object_none", lambda e: fit(e, np.where(np.eye(N, 2, dtype=bool), None, X.astype(object))), ValueError,
     "Input X contains NaN"),
    # accepted input
    ("X_object_numbers", lambda e: fit(e, X.astype(object)), None, None),
    ("X_int", lambda e: fit(e, (X * 10).astype(np.int64)), None, None),
    ("X_bool", lambda e: fit(e, X > 1), None, None),
    ("X_list", lambda e: fit(e, X.tolist()), None, None),
    ("X_float64", lambda e: fit(e, X.astype(np.float64)), None, None),
    ("X_sparse_csr", lambda e: fit(e, sp.csr_matrix(X)).predict(sp.csr_matrix(X[:5])), None, None),
    ("X_sparse_coo", lambda e: fit(e, sp.coo_matrix(X)), None, None),
]

PREDICT_CASES = [
    ("predict_unfitted", lambda e: e.predict(X), NotFittedError, "is not fitted yet"),
    ("predict_features", lambda e: fit(e).predict(X[:, :1]), ValueError,
     r"X has 1 features, but \w+ is expecting 2 features as input"),
    ("predict_nan", lambda e: fit(e).predict(np.full((3, 2), np.nan)), ValueError, "Input X contains NaN"),
    ("predict_empty", lambda e: fit(e).predict(X[:0]), ValueError, r"0 sample\(s\)"),
    ("predict_1d", lambda e: fit(e).predict(X[0]), ValueError, "Expected a 2-dimensional container|Expected 2D array"),
    ("predict_text", lambda e: fit(e).predict(np.full((3, 2), "a")), ValueError, "The 'X' parameter must hold numbers"),
    ("predict_one_point", lambda e: fit(e).predict(X[:1]), None, None),
]

Y_CASES = [
    ("y_short", lambda e: fit(e, y=YP[:-1]), ValueError,
     r"The 'y' parameter must have one label per sample \(40\)\. Got 39 labels instead"),
    ("y_long", lambda e: fit(e, y=np.r_[YP, 0]), ValueError, "The 'y' parameter must have one label per sample"),
    ("y_2d", lambda e: fit(e, y=YP[:, None]), ValueError, r"The 'y' parameter must be a 1-D array .* shape \(40, 1\)"),
    ("y_nan_unknown", lambda e: fit(e, y=np.where(YP < 0, np.nan, YP)), None, None),
    ("y_inf", lambda e: fit(e, y=np.where(YP < 0, np.inf, YP)), ValueError, "The 'y' parameter must not contain inf"),
    ("y_fraction", lambda e: fit(e, y=YP + 0.5), ValueError,
     "the 'y' parameter must hold class labels: integers .* Got non-integer floats"),
    ("y_text", lambda e: fit(e, y=np.where(YP < 0, None, np.array(list("abc"))[YP % 3]).astype(object)), None, None),
    ("y_object_text", lambda e: fit(e, y=np.array(["a", 1] * (N // 2), dtype=object)), ValueError,
     "The 'y' parameter must hold class labels: integers .* Got both numbers and strings"),
    ("y_object_dict", lambda e: fit(e, y=np.array([{}, 1] * (N // 2), dtype=object)), ValueError,
     "the 'y' parameter must hold class labels: .* Got non-numeric objects"),
    ("y_below_minus_one", lambda e: fit(e, y=np.where(YP < 0, -2, YP)), ValueError,
     "The 'y' parameter must hold labels >= 0, or -1 for unknown. Got -2 instead"),
    ("y_huge_uint", lambda e: fit(e, y=np.where(YP < 0, 0, YP + 1).astype(np.uint64) + np.uint64(2**63)), None, None),
    ("y_all_unknown", lambda e: fit(e, y=np.full(N, -1)), ValueError, "No side information was given"),
    ("y_single_class", lambda e: fit(e, y=np.where(YP == 0, 0, -1)), ValueError,
     "The side information has no 'different' relation"),
    ("y_singletons", lambda e: fit(e, y=np.where(np.arange(N) < 3, np.arange(N), -1)), ValueError,
     "The side information has no 'same' relation"),
    ("y_object_numbers", lambda e: fit(e, y=YP.astype(object)), None, None),
    ("y_float_integral", lambda e: fit(e, y=YP.astype(float)), None, None),
]

def _pairs_frame():
    import pandas as pd
    return pd.DataFrame({"i": GOOD_PAIRS[:, 0], "j": GOOD_PAIRS[:, 1], "same": GOOD_PAIRS[:, 2].astype(bool)})


PAIR_CASES = [
    ("pairs_dataframe_ok", lambda e: fit(e, y=None, pairs=_pairs_frame()), None, None),
    ("pairs_index_n", lambda e: fit(e, y=None, pairs=_pairs([0, N, 1], [0, 1, 0])), ValueError,
     r"The 'pairs' parameter must hold indices in \[0, 40\)\. Got row 0 = \(0, 40, 1\) instead"),
    ("pairs_index_huge_int64", lambda e: fit(e, y=None, pairs=_pairs([0, 2**62, 1], [0, 1, 0])), ValueError,
     r"must hold indices in \[0, 40\)\. Got row 0 = \(0, 4611686018427387904, 1\)"),
    ("pairs_index_huge_uint64", lambda e: fit(e, y=None, pairs=_pairs([0, 1, 0], [0, 2**64 - 1, 1], dtype=np.uint64)),
     ValueError, r"must hold indices in \[0, 40\)\. Got row 1 = \(0, 18446744073709551615, 1\)"),
    ("pairs_index_python_bigint", lambda e: fit(e, y=None, pairs=[[0, 2**70, 1], [0, 1, 0]]), ValueError,
     r"must hold indices in \[0, 40\)\. Got row 0 = \(0, 1180591620717411303424, 1\)"),
    ("pairs_index_huge_float", lambda e: fit(e, y=None, pairs=_pairs([0, 1, 0], [0, 1e30, 1])), ValueError,
     r"must hold indices in \[0, 40\)\. Got row 1"),
    ("pairs_negative", lambda e: fit(e, y=None, pairs=_pairs([0, -1, 1], [0, 1, 0])), ValueError,
     r"must hold indices in \[0, 40\)\. Got row 0 = \(0, -1, 1\)"),
    ("pairs_non_integer", lambda e: fit(e, y=None, pairs=_pairs([0, 1.5, 1], [0, 1, 0])), ValueError,
     r"The 'pairs' parameter must hold integers .* Got row 0 = \(0.0, 1.5, 1.0\)"),
    ("pairs_nan", lambda e: fit(e, y=None, pairs=_pairs([0, 1, 0], [0, np.nan, 1])), ValueError,
     r"The 'pairs' parameter must hold integers .* Got row 1"),
    ("pairs_text", lambda e: fit(e, y=None, pairs=_pairs(["0", "1", "1"])), ValueError,
     "The 'pairs' parameter must hold integers .* Got dtype <U1"),
    ("pairs_shape", lambda e: fit(e, y=None, pairs=_pairs([0, 1])), ValueError,
     r"The 'pairs' parameter must be an \(m, 3\) array .* shape \(1, 2\)"),
    ("pairs_same_not_binary", lambda e: fit(e, y=None, pairs=_pairs([0, 1, 0], [0, 2, 2])), ValueError,
     r"third column \(same\) must be 0 or 1. Got row 1 = \(0, 2, 2\)"),
    ("pairs_same_and_different", lambda e: fit(e, y=None, pairs=_pairs([0, 1, 1], [1, 0, 0], [0, 2, 0])), ValueError,
     "contradictory: points 1 and 0 are marked different .* linked as the same.*on_conflict='majority'"),
    ("pairs_self_different", lambda e: fit(e, y=None, pairs=_pairs([0, 0, 0], [0, 1, 1], [0, 2, 0])), ValueError,
     r"must not mark a point as different from itself. Got row 0 = \(0, 0, 0\)"),
    ("pairs_no_positive", lambda e: fit(e, y=None, pairs=_pairs([0, 1, 0], [0, 2, 0])), ValueError,
     "The side information has no 'same' relation"),
    ("pairs_no_negative", lambda e: fit(e, y=None, pairs=_pairs([0, 1, 1], [0, 2, 1])), ValueError,
     "The side information has no 'different' relation"),
    ("pairs_empty", lambda e: fit(e, y=None, pairs=np.zeros((0, 3), int)), ValueError, "No side information was given"),
    ("pairs_label_conflict", lambda e: fit(e, y=YP, pairs=_pairs([0, 6, 0])), ValueError,
     "contradictory: points 0 and 6 are marked different \\(by a pair or by their labels\\)"),
    ("pairs_join_two_labels", lambda e: fit(e, y=YP, pairs=_pairs([0, 2, 1])), ValueError,
     "contradictory: points .* are marked different \\(by a pair or by their labels\\) but are linked"),
    ("no_side_information", lambda e: fit(e, y=None), ValueError, "requires y to be passed"),
    ("pairs_ok", lambda e: fit(e, y=None, pairs=GOOD_PAIRS), None, None),
    ("pairs_uint8_ok", lambda e: fit(e, y=None, pairs=GOOD_PAIRS.astype(np.uint8)), None, None),
    ("pairs_with_labels_ok", lambda e: fit(e, y=YP, pairs=GOOD_PAIRS[:1]), None, None),
    ("pairs_conflict_majority", lambda e: fit(e.set_params(on_conflict="majority"), y=None,
                                              pairs=np.vstack([GOOD_PAIRS, [[0, 3, 0]]])), None, None),
    ("on_conflict_bad", lambda e: fit(e.set_params(on_conflict="vote"), y=None, pairs=GOOD_PAIRS), ValueError,
     "The 'on_conflict' parameter must be .*'raise'.*'majority'.* Got 'vote' instead"),
]


def _expect(name, kind, exc, msg):
    """What estimator ``name`` must do with a case of ``kind``: (exception, regex, warning regex) or None to skip."""
    if kind in ("X", "predict") or name in SUPERVISED:
        return exc, msg, None
    if name == "meanshift":
        return (None, None, None) if kind == "y" else None  # y ignored (scikit-learn); no pairs parameter
    if kind == "pairs" and msg is not None and "on_conflict" in msg and "Got 'vote'" in msg:
        return None  # no on_conflict parameter on unsupervised estimators
    if msg is not None and ("No side information" in msg or "requires y" in msg):
        return None, None, None  # nothing to ignore: no warning needed
    return None, None, "is unsupervised: the side information .* is ignored"


def _matrix():
    for kind, cases in (("X", X_CASES), ("predict", PREDICT_CASES), ("y", Y_CASES), ("pairs", PAIR_CASES)):
        for case_id, call, exc, msg in cases:
            for name in TINY:
                if case_id == "pairs_conflict_majority" and name not in SUPERVISED:
                    continue
                e = _expect(name, kind, exc, msg)
                if e is not None:
                    yield pytest.param(name, call, *e, id=f"{case_id}-{name}")


@pytest.mark.parametrize("name, call, exc, msg, warn", list(_matrix()))
def test_validation_matrix(name, call, exc, msg, warn):
    est = make(name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if exc is None:
            call(est)
        else:
            with pytest.raises(exc, match=msg):
                call(est)
    if warn is not None:
        assert any(issubclass(w.category, UserWarning) and __import__("re").search(warn, str(w.message))
                   for w in caught), [str(w.message) for w in caught]


@pytest.mark.parametrize("name", list(TINY))
def test_messages_follow_one_wording(name):
    """Errors about a named parameter read "The 'p' parameter must ... Got ... instead."."""
    est = make(name)
    bad = {"dms": {"max_steps": 0}, "kcl": {"n_clusters": 0}, "mcl": {"batch_size": 1}, "ddc": {"rel_sigma": -1.0},
           "mmdc": {"n_epochs": 0}, "l2c": {"k_max": 0}, "meanshift": {"bandwidth": -1.0}}[name]
    est.set_params(**bad)
    (param,) = bad
    with pytest.raises(ValueError, match=rf"The '{param}' parameter .*must .*Got .* instead"):
        fit(est)
