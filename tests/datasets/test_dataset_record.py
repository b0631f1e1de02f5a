"""Tests for the Dataset record, the registry and the label helpers."""

import dataclasses

import numpy as np
import pytest

from dmshift.datasets import Dataset, available, load
from dmshift.datasets._base import column_major_to_upright, digit_tasks, encode


def _toy(**overrides):
    y = np.array([0, 1, 1, 2], dtype=np.int64)
    kwargs = dict(
        name="toy", X=np.zeros((4, 6), np.float32), y=y,
        tasks={"a": y, "b": np.array([1, 0, 1, 0])}, default_task="a",
        image_shape=(2, 3),
    )
    kwargs["tasks"]["b"] = kwargs["tasks"]["b"].astype(np.int64)
    kwargs.update(overrides)
    return Dataset(**kwargs)


def test_labels_and_n_classes():
    ds = _toy()
    assert ds.labels() is ds.y
    np.testing.assert_array_equal(ds.labels("b"), [1, 0, 1, 0])
    assert ds.n_classes() == 3 and ds.n_classes("b") == 2
    assert (ds.n_samples, ds.n_features) == (4, 6)
    assert "n_samples=4" in repr(ds) and "'b': 2" in repr(ds)


def test_unknown_task_lists_the_available_ones():
    with pytest.raises(ValueError, match=r"'task'.*\['a', 'b'\].*'zzz'"):
        _toy().labels("zzz")
    with pytest.raises(ValueError, match="'task'"):
        _toy().n_classes("zzz")


def test_default_task_is_added_to_tasks():
    ds = _toy(tasks={})
    assert list(ds.tasks) == ["a"]


def test_record_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        _toy().name = "other"


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"X": np.zeros(4, np.float32)}, "'X'"),
        ({"y": np.array([0, 0, 0, 0], np.int64)}, "'y'"),
        ({"tasks": {"b": np.array([0, 1], np.int64)}}, "Task 'b'"),
        ({"tasks": {"b": np.array([0, 1, 0, 1], np.int32)}}, "int64"),
        ({"tasks": {"b": np.array([0, -1, 0, 1], np.int64)}}, ">= 0"),
        ({"image_shape": (3, 3)}, "'image_shape'"),
    ],
)
def test_invalid_records_raise(overrides, match):
    with pytest.raises(ValueError, match=match):
        _toy(**overrides)


def test_available_names():
    assert available() == [
        "digits", "mnist", "coil100", "coil20", "usps", "orl", "umist",
        "ar_faces", "r8", "reuters21578", "trec",
    ]


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match=r"'name'.*'mnist'.*'trec'.*got 'mnits'"):
        load("mnits")


def test_column_major_to_upright_matches_fortran_reshape():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(3, 5, 4))
    fortran_rows = np.stack([im.ravel(order="F") for im in images])
    upright = column_major_to_upright(fortran_rows, 5, 4)
    np.testing.assert_array_equal(upright.reshape(3, 5, 4), images)


def test_encode_and_digit_tasks():
    codes, names = encode(["b", "a", "c", "a"])
    np.testing.assert_array_equal(codes, [1, 0, 2, 0])
    assert names == ("a", "b", "c") and codes.dtype == np.int64
    tasks, _ = digit_tasks(np.arange(10))
    np.testing.assert_array_equal(tasks["parity"], [0, 1] * 5)
    np.testing.assert_array_equal(tasks["ge5"], [0] * 5 + [1] * 5)
