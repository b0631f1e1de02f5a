"""The :class:`Dataset` container returned by every loader, and label helpers.

A ``Dataset`` holds a feature matrix and one or more labellings ("tasks") of
the same points. It is a plain record: it does no I/O and no preprocessing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, kw_only=True, eq=False)
class Dataset:
    """Features and labellings of one data set.

    Parameters
    ----------
    name : str
        Registry name of the data set (e.g. ``"mnist"``).
    X : ndarray of shape (n_samples, n_features), float32
        Features. Images are flattened row-major from an upright image and
        scaled to [0, 1]; text is a dense float32 embedding.
    y : ndarray of shape (n_samples,), int64
        Default labelling, ``tasks[default_task]``, with values 0..k-1.
    tasks : dict of str to ndarray of shape (n_samples,), int64
        Every available labelling, the default one included.
    default_task : str
        Name of the task that ``y`` holds.
    image_shape : tuple of int or None, default=None
        Shape such that ``X[i].reshape(image_shape)`` is an upright image,
        e.g. ``(28, 28)`` or ``(32, 32, 3)``; ``None`` for non-image data.
    class_names : dict of str to tuple of str, default={}
        Human-readable names of the classes of some tasks, indexed by label.

    Notes
    -----
    The record is frozen (fields cannot be rebound) but the arrays are
    ordinary writable NumPy arrays so that they convert to tensors freely;
    do not modify them in place if you share a ``Dataset``.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    tasks: dict[str, np.ndarray]
    default_task: str
    image_shape: tuple[int, ...] | None = None
    class_names: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        X, y = self.X, self.y
        if not isinstance(X, np.ndarray) or X.ndim != 2:
            raise ValueError(
                "The 'X' parameter of Dataset must be a 2-D NumPy array; got "
                f"{type(X).__name__} of shape {np.shape(X)}."
            )
        n = X.shape[0]
        tasks = dict(self.tasks)
        tasks.setdefault(self.default_task, y)
        if not np.array_equal(tasks[self.default_task], y):
            raise ValueError(
                f"The 'y' parameter of Dataset must equal tasks[{self.default_task!r}]; "
                "got a different labelling."
            )
        for task, labels in tasks.items():
            if (
                not isinstance(labels, np.ndarray)
                or labels.shape != (n,) or labels.dtype != np.int64
            ):
                raise ValueError(
                    f"Task {task!r} of Dataset must be an int64 array of shape ({n},); "
                    f"got {getattr(labels, 'dtype', type(labels).__name__)} of shape "
                    f"{np.shape(labels)}."
                )
            if n and labels.min() < 0:
                raise ValueError(
                    f"Task {task!r} of Dataset must hold labels >= 0; "
                    f"got {labels.min()}."
                )
        if self.image_shape is not None and int(np.prod(self.image_shape)) != X.shape[1]:
            raise ValueError(
                f"The 'image_shape' parameter of Dataset must have {X.shape[1]} "
                f"elements to match X; got {self.image_shape}."
            )
        object.__setattr__(self, "tasks", tasks)

    @property
    def n_samples(self) -> int:
        """Number of points, ``X.shape[0]``."""
        return self.X.shape[0]

    @property
    def n_features(self) -> int:
        """Number of features, ``X.shape[1]``."""
        return self.X.shape[1]

    def labels(self, task: str | None = None) -> np.ndarray:
        """Return the labelling of one task.

        Parameters
        ----------
        task : str, optional
            Task name; ``None`` means ``default_task``.

        Returns
        -------
        ndarray of shape (n_samples,), int64

        Raises
        ------
        ValueError
            If ``task`` is not one of ``tasks``.
        """
        if task is None:
            return self.y
        if task not in self.tasks:
            raise ValueError(
                f"The 'task' parameter must be one of {sorted(self.tasks)} for data "
                f"set {self.name!r}; got {task!r}."
            )
        return self.tasks[task]

    def n_classes(self, task: str | None = None) -> int:
        """Return the number of distinct labels present in a task.

        Parameters
        ----------
        task : str, optional
            Task name; ``None`` means ``default_task``.

        Returns
        -------
        int
        """
        return int(np.unique(self.labels(task)).size)

    def __repr__(self) -> str:
        tasks = {t: self.n_classes(t) for t in self.tasks}
        return (
            f"Dataset(name={self.name!r}, n_samples={self.n_samples}, "
            f"n_features={self.n_features}, default_task={self.default_task!r}, "
            f"tasks={tasks}, image_shape={self.image_shape})"
        )


def encode(values) -> tuple[np.ndarray, tuple[str, ...]]:
    """Map arbitrary labels to int64 codes 0..k-1 in sorted order of the labels.

    Returns
    -------
    codes : ndarray of shape (n,), int64
    names : tuple of str
        ``names[c]`` is the label that code ``c`` stands for.
    """
    uniques, codes = np.unique(np.asarray(values), return_inverse=True)
    return codes.astype(np.int64).ravel(), tuple(str(u) for u in uniques)


def digit_tasks(digit: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, tuple[str, ...]]]:
    """Tasks shared by the digit data sets: ``digit``, ``parity`` and ``ge5``.

    Parameters
    ----------
    digit : ndarray of shape (n,)
        Digit labels 0..9.
    """
    digit = np.asarray(digit, dtype=np.int64)
    tasks = {
        "digit": digit,
        "parity": digit % 2,
        "ge5": (digit >= 5).astype(np.int64),
    }
    names = {
        "digit": tuple(str(d) for d in range(10)),
        "parity": ("even", "odd"),
        "ge5": ("<5", ">=5"),
    }
    return tasks, names


def column_major_to_upright(rows: np.ndarray, height: int, width: int) -> np.ndarray:
    """Reorder flattened column-major (MATLAB) images to row-major upright ones.

    Parameters
    ----------
    rows : ndarray of shape (n, height * width)
        Each row is one image flattened in column-major (Fortran) order.

    Returns
    -------
    ndarray of shape (n, height * width)
        Each row is the same image flattened in row-major (C) order, so that
        ``out[i].reshape(height, width)`` is upright.
    """
    n = rows.shape[0]
    return rows.reshape(n, width, height).transpose(0, 2, 1).reshape(n, height * width)


def to_unit_float32(pixels: np.ndarray) -> np.ndarray:
    """Flatten uint8 pixel data to (n, d) float32 scaled to [0, 1]."""
    out = pixels.reshape(pixels.shape[0], -1).astype(np.float32)
    out /= np.float32(255.0)
    return out
