"""Reading and writing the files the ``dmshift`` command works on.

Features come from ``.npy``, ``.npz``, ``.csv`` or ``.parquet``; side information from a
label column, a label file (``-1`` or an empty cell for unknown) or a pairs file
``i,j,same``; labels go out as ``.npy``, ``.npz`` or ``.csv``. Every problem with a file
is a :class:`UserError` whose message names the file and what is wrong, on one line.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from ..constants import UNLABELLED

__all__ = ["UserError", "read_features", "read_labels", "read_pairs", "write_labels", "check_output"]

FEATURE_SUFFIXES = (".npy", ".npz", ".csv", ".parquet")
LABEL_SUFFIXES = (".npy", ".csv", ".txt")


class UserError(Exception):
    """A problem with the command line or an input file: printed on one line, no traceback."""


def _existing(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, expected a file")
    return path


def _suffix(path: Path, allowed: tuple[str, ...], what: str) -> str:
    suf = path.suffix.lower()
    if suf not in allowed:
        raise UserError(f"{path}: unsupported {what} file type {suf or '(none)'!r}; use one of {', '.join(allowed)}")
    return suf


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise UserError(f"{path}: holds Python objects; only numeric arrays are read") from None
        raise UserError(f"{path}: not a readable .npy file ({exc})") from None
    except (OSError, EOFError) as exc:
        raise UserError(f"{path}: not a readable .npy file ({exc})") from None


def _as_matrix(A, path: Path) -> np.ndarray:
    A = np.asarray(A)
    if A.dtype.kind not in "biuf":
        raise UserError(f"{path}: features must be numbers; found values of type {A.dtype}")
    if A.ndim == 1:
        raise UserError(f"{path}: features must be a 2-D table (n_samples, n_features); got a 1-D array of "
                        f"length {A.shape[0]} (one feature? reshape it to ({A.shape[0]}, 1))")
    if A.ndim != 2:
        raise UserError(f"{path}: features must be a 2-D table (n_samples, n_features); got shape {A.shape}")
    if A.shape[0] < 1 or A.shape[1] < 1:
        raise UserError(f"{path}: features table is empty (shape {A.shape})")
    A = A.astype(np.float32 if A.dtype != np.float64 else np.float64, copy=False)
    bad = ~np.isfinite(A)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise UserError(f"{path}: features must be finite; row {r + 1}, column {c + 1} is {A[r, c]}")
    return A


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _sniff(path: Path) -> tuple[str, str]:
    """The delimiter (comma, tab or semicolon) and the first non-empty line of a text table."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            first = next((line for line in f if line.strip()), "")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text CSV file") from None
    if not first:
        raise UserError(f"{path}: file is empty")
    delim = next((d for d in (",", "\t", ";") if d in first), ",")
    return delim, first


def _read_csv_table(path: Path) -> tuple[list[str] | None, list[list[str]]]:
    """Header (None when the first row is all numbers or empty cells) and the data rows as strings."""
    delim, _ = _sniff(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [[c.strip() for c in row] for row in csv.reader(f, delimiter=delim)]
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text CSV file") from None
    rows = [r for r in rows if any(r)]
    if not rows:
        raise UserError(f"{path}: file is empty")
    header = None
    if not all(_is_number(c) or c == "" for c in rows[0]):
        header, rows = rows[0], rows[1:]
    if not rows:
        raise UserError(f"{path}: has a header but no data rows")
    width = len(header) if header is not None else len(rows[0])
    for i, r in enumerate(rows):
        if len(r) != width:
            line = i + (2 if header is not None else 1)
            raise UserError(f"{path}: line {line} has {len(r)} fields, expected {width}")
    return header, rows


def _column_index(header: list[str] | None, name: str, path: Path, width: int) -> int:
    if header is not None and name in header:
        return header.index(name)
    if name.lstrip("-").isdigit():
        k = int(name)
        if -width <= k < width:
            return k % width
    if header is not None:
        known = f"columns are {', '.join(header)}"
    else:
        known = f"the file has no header; give a column number 0..{width - 1}"
    raise UserError(f"{path}: no column {name!r}; {known}")


def _parse_label(s: str, where: str) -> int:
    if s == "" or s.lower() in ("nan", "na", "none"):
        return UNLABELLED
    try:
        v = float(s)
    except ValueError:
        raise UserError(f"{where}: label {s!r} is not an integer (use -1 or an empty cell for unknown)") from None
    if not math.isfinite(v) or v != int(v):
        raise UserError(f"{where}: label {s!r} is not an integer (use -1 or an empty cell for unknown)")
    return int(v)


def _csv_features(path: Path, labels_col: str | None):
    delim, first_line = _sniff(path)
    cells = [c.strip() for c in next(csv.reader([first_line], delimiter=delim))]
    has_header = not all(_is_number(c) or c == "" for c in cells)
    width = len(cells)
    header = cells if has_header else None
    li = _column_index(header, labels_col, path, width) if labels_col is not None else None
    feat_cols = [j for j in range(width) if j != li]
    if not feat_cols:
        raise UserError(f"{path}: no feature columns left besides the label column")
    try:  # fast path (C parser); on any problem, the slow path below finds and names it
        X = np.loadtxt(path, delimiter=delim, skiprows=int(has_header), usecols=feat_cols, ndmin=2,
                       dtype=np.float64, encoding="utf-8-sig")
        y = None
        if li is not None:
            raw = np.loadtxt(path, delimiter=delim, skiprows=int(has_header), usecols=[li], dtype=str, ndmin=1,
                             encoding="utf-8-sig")
            first = 2 if has_header else 1
            y = np.asarray([_parse_label(s.strip(), f"{path}: line {i + first}") for i, s in enumerate(raw)],
                           dtype=np.int64)
        if X.shape[0] == 0:
            raise UserError(f"{path}: has a header but no data rows")
        return X, y
    except ValueError:
        pass
    header, rows = _read_csv_table(path)
    X = np.empty((len(rows), len(feat_cols)), dtype=np.float64)
    first = 2 if header is not None else 1
    for i, r in enumerate(rows):
        for k, j in enumerate(feat_cols):
            try:
                X[i, k] = float(r[j])
            except ValueError:
                col = repr(header[j]) if header is not None else str(j + 1)
                raise UserError(f"{path}: line {i + first}, column {col}: {r[j]!r} is not a number") from None
    y = None
    if li is not None:
        y = np.asarray([_parse_label(r[li], f"{path}: line {i + first}") for i, r in enumerate(rows)], dtype=np.int64)
    return X, y


def _parquet_features(path: Path, labels_col: str | None):
    try:
        import pandas as pd
        import pyarrow  # noqa: F401
    except ImportError:
        raise UserError(f"{path}: reading .parquet needs pandas and pyarrow (pip install pandas pyarrow); "
                        "or save the table as .csv or .npy") from None
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises its own error types
        raise UserError(f"{path}: not a readable parquet file ({exc})") from None
    y = None
    if labels_col is not None:
        if labels_col not in df.columns:
            raise UserError(f"{path}: no column {labels_col!r}; columns are {', '.join(map(str, df.columns))}")
        col = df.pop(labels_col)
        y = np.asarray([_parse_label("" if v is None else str(v), f"{path}: column {labels_col!r}") for v in col],
                       dtype=np.int64)
    bad = [str(c) for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    if bad:
        raise UserError(f"{path}: feature columns must be numbers; not numeric: {', '.join(bad[:5])}")
    return df.to_numpy(dtype=np.float64), y


def _npz_features(path: Path, labels_col: str | None):
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as exc:
        raise UserError(f"{path}: not a readable .npz file ({exc})") from None
    except OSError as exc:
        raise UserError(f"{path}: not a readable .npz file ({exc})") from None
    if "X" in arrays:
        X = arrays["X"]
    elif len(arrays) == 1:
        X = next(iter(arrays.values()))
    else:
        raise UserError(f"{path}: holds several arrays ({', '.join(arrays)}); name the features 'X'")
    y = None
    if labels_col is not None:
        if labels_col not in arrays:
            raise UserError(f"{path}: no array {labels_col!r}; arrays are {', '.join(arrays)}")
        y = _labels_array(arrays[labels_col], path)
    return X, y


def read_features(path, *, labels_col: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Features ``X`` (n, d) and, when ``labels_col`` names a column (or .npz array), its labels.

    Returns
    -------
    X : ndarray of shape (n, d), float32 or float64
    y : ndarray of shape (n,), int64, or None
        -1 where the label cell was -1 or empty.
    """
    path = _existing(path)
    suf = _suffix(path, FEATURE_SUFFIXES, "features")
    y = None
    if suf == ".npy":
        if labels_col is not None:
            raise UserError(f"{path}: --labels-col needs a .csv, .parquet or .npz file; for .npy give --labels FILE")
        X = _load_npy(path)
    elif suf == ".npz":
        X, y = _npz_features(path, labels_col)
    elif suf == ".csv":
        X, y = _csv_features(path, labels_col)
    else:
        X, y = _parquet_features(path, labels_col)
    return _as_matrix(X, path), y


def _labels_array(A, path: Path) -> np.ndarray:
    A = np.asarray(A)
    if A.ndim == 2 and 1 in A.shape:
        A = A.ravel()
    if A.ndim != 1:
        raise UserError(f"{path}: labels must be a 1-D array; got shape {A.shape}")
    if A.dtype.kind == "f":
        A = np.where(np.isnan(A), UNLABELLED, A)
        if not np.all(A == np.round(A)):
            raise UserError(f"{path}: labels must be integers (-1 for unknown)")
    elif A.dtype.kind not in "biu":
        raise UserError(f"{path}: labels must be integers (-1 for unknown); found values of type {A.dtype}")
    return A.astype(np.int64)


def read_labels(path, n: int | None = None, *, column: str | None = None, what: str = "labels",
                against: str = "the features have {n} rows") -> np.ndarray:
    """Integer labels from ``.npy`` (1-D) or ``.csv``/``.txt`` (one column, or ``column``); -1 = unknown.

    In a CSV with a header and several columns, ``column`` picks one; without it the
    column named ``label`` is used when there is one, else the first. ``n`` is the
    expected length; ``against`` words the mismatch message.
    """
    path = _existing(path)
    suf = _suffix(path, LABEL_SUFFIXES + (".npz",), what)
    if suf == ".npy":
        if column is not None:
            raise UserError(f"{path}: a column name needs a .csv file")
        y = _labels_array(_load_npy(path), path)
    elif suf == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                key = column or ("labels" if "labels" in z.files else z.files[0] if z.files else None)
                if key is None or key not in z.files:
                    raise UserError(f"{path}: no array {key!r}; arrays are {', '.join(z.files)}")
                y = _labels_array(z[key], path)
        except (OSError, ValueError) as exc:
            raise UserError(f"{path}: not a readable .npz file ({exc})") from None
    else:
        header, rows = _read_csv_table(path)
        width = len(rows[0])
        if column is not None:
            j = _column_index(header, column, path, width)
        elif header is not None and "label" in header:
            j = header.index("label")
        elif width == 1:
            j = 0
        else:
            raise UserError(f"{path}: has {width} columns; say which holds the labels "
                            f"(a header column 'label', or --{what.replace(' ', '-')}-col)")
        first = 2 if header is not None else 1
        y = np.asarray([_parse_label(r[j], f"{path}: line {i + first}") for i, r in enumerate(rows)], dtype=np.int64)
    if y.size == 0:
        raise UserError(f"{path}: holds no labels")
    if n is not None and y.shape[0] != n:
        raise UserError(f"{path}: has {y.shape[0]} {what}, but " + against.format(n=n))
    return y


def read_pairs(path, n: int) -> np.ndarray:
    """Pairs ``(i, j, same)`` as an int64 (m, 3) array from ``.csv`` (header optional) or ``.npy``.

    ``i`` and ``j`` are 0-based row numbers of the features; ``same`` is 1 (same cluster)
    or 0 (different clusters).
    """
    path = _existing(path)
    suf = _suffix(path, (".csv", ".txt", ".npy"), "pairs")
    if suf == ".npy":
        P = np.asarray(_load_npy(path))
        if P.dtype.kind not in "biuf":
            raise UserError(f"{path}: pairs must be numbers; found values of type {P.dtype}")
    else:
        header, rows = _read_csv_table(path)
        first = 2 if header is not None else 1
        try:
            P = np.asarray([[float(c) for c in r] for r in rows])
        except ValueError:
            bad = next(i for i, r in enumerate(rows) if not all(_is_number(c) for c in r))
            raise UserError(f"{path}: line {bad + first} is not three numbers i,j,same") from None
    if P.ndim != 2 or P.shape[1] != 3:
        raise UserError(f"{path}: pairs must have three columns i,j,same; got shape {P.shape}")
    if P.shape[0] == 0:
        raise UserError(f"{path}: holds no pairs")
    if not np.all(np.isfinite(P)) or not np.all(P == np.round(P)):
        raise UserError(f"{path}: pairs must be integers i,j,same")
    P = P.astype(np.int64)
    bad = (P[:, :2] < 0) | (P[:, :2] >= n)
    if bad.any():
        r = int(np.argwhere(bad)[0, 0])
        raise UserError(f"{path}: pair {r + 1} ({P[r, 0]}, {P[r, 1]}) refers to a row outside 0..{n - 1}")
    if not np.isin(P[:, 2], (0, 1)).all():
        raise UserError(f"{path}: the 'same' column must be 1 (same cluster) or 0 (different)")
    return P


def check_output(path, allowed=(".npy", ".npz", ".csv"), what="output") -> Path:
    """Refuse an output file type before any work is done."""
    path = Path(path)
    _suffix(path, allowed, what)
    return path


def write_labels(path, labels: np.ndarray, confidence: np.ndarray | None = None) -> Path:
    """Write labels to ``.npy`` (labels only), ``.npz`` (``labels``, ``confidence``) or ``.csv``.

    The CSV has a header ``label`` (and ``confidence`` when given), one row per point.
    """
    path = Path(path)
    suf = _suffix(path, (".npy", ".npz", ".csv"), "output")
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    labels = np.asarray(labels, dtype=np.int64)
    if suf == ".npy":
        np.save(path, labels)
    elif suf == ".npz":
        arrays = {"labels": labels}
        if confidence is not None:
            arrays["confidence"] = np.asarray(confidence, dtype=np.float32)
        np.savez(path, **arrays)
    else:
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            if confidence is None:
                w.writerow(["label"])
                w.writerows([[int(v)] for v in labels])
            else:
                w.writerow(["label", "confidence"])
                w.writerows([[int(v), f"{float(c):.6g}"] for v, c in zip(labels, confidence)])
    return path
