"""Reading and writing the files the ``dmshift`` command works on.

Features come from ``.npy``, ``.npz``, ``.csv`` or ``.parquet``; side information from a
label column, a label file (``-1`` or an empty cell for unknown; class names are read as
classes too) or a pairs file ``i,j,same``; labels go out as ``.npy``, ``.npz`` or ``.csv``.
A problem with a file is a one-line :class:`UserError` naming the file (:func:`check_output`: outputs).
"""

from __future__ import annotations

import csv
import math
import os
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


def _read_csv_table(path: Path, *, blank_rows: str = "drop", n: int | None = None
                    ) -> tuple[list[str] | None, list[list[str]], list[int]]:
    """Header (None when the first row is all numbers or empty cells), data rows as strings, their line numbers.

    ``blank_rows="drop"`` skips empty lines; ``"keep"`` reads them as rows of empty cells
    (an unknown label in a one-column labels file), except blank lines at the end of the
    file beyond ``n`` rows. Every row must have as many fields as the header (or the
    first row); the message names the line that does not.
    """
    delim, _ = _sniff(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            raw = [[c.strip() for c in row] for row in csv.reader(f, delimiter=delim)]
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text CSV file") from None
    lines = list(range(1, len(raw) + 1))
    start = next((k for k, r in enumerate(raw) if any(r)), None)
    if start is None:
        raise UserError(f"{path}: file is empty")
    header = None
    if not all(_is_number(c) or c == "" for c in raw[start]):
        header, raw, lines = raw[start], raw[start + 1:], lines[start + 1:]
    elif blank_rows == "drop":
        raw, lines = raw[start:], lines[start:]
    width = len(header) if header is not None else len(raw[start if blank_rows == "keep" else 0])
    if blank_rows == "keep":
        end = len(raw)
        while end and not any(raw[end - 1]) and (n is None or end > n):
            end -= 1  # trailing blank lines are the end of the file, not unknown labels
        raw, lines = [r if any(r) else [""] * width for r in raw[:end]], lines[:end]
    else:
        keep = [k for k, r in enumerate(raw) if any(r)]
        raw, lines = [raw[k] for k in keep], [lines[k] for k in keep]
    if not raw:
        raise UserError(f"{path}: has a header but no data rows" if header is not None else f"{path}: file is empty")
    for r, line in zip(raw, lines):
        if len(r) != width:
            raise UserError(f"{path}: line {line} has {len(r)} fields, expected {width}"
                            + (f" (as in the header: {', '.join(header)})" if header is not None else ""))
    return header, raw, lines


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


_UNKNOWN_CELLS = ("", "nan", "na", "none", "null", "<na>")


def _parse_label(s: str, where: str) -> int:
    if s.lower() in _UNKNOWN_CELLS:
        return UNLABELLED
    try:
        v = float(s)
    except ValueError:
        raise UserError(f"{where}: label {s!r} is not an integer (use -1 or an empty cell for unknown)") from None
    if not math.isfinite(v) or v != int(v):
        raise UserError(f"{where}: label {s!r} is not an integer (use -1 or an empty cell for unknown)")
    return int(s) if s.lstrip("+-").isdigit() else int(v)  # digits exactly, not through a float


def _labels_from_cells(cells, where) -> np.ndarray:
    """Label cells -> int64 labels, -1 for unknown (empty, NaN, NA, None).

    Numbers are read as class ids; when no known cell is a number, the cells are class
    names, numbered in sorted order. ``where(k)`` words the position of cell ``k``.
    """
    unknown = [c.lower() in _UNKNOWN_CELLS for c in cells]
    numeric = [u or _is_number(c) for c, u in zip(cells, unknown)]
    if all(numeric):
        return np.asarray([_parse_label(c, where(k)) for k, c in enumerate(cells)], dtype=np.int64)
    if any(n and not u for n, u in zip(numeric, unknown)):
        k = next(k for k, n in enumerate(numeric) if not n)
        raise UserError(f"{where(k)}: label {cells[k]!r} is not a number, but other labels are (give every class "
                        "as a number, or every class as a name; -1 or an empty cell for unknown)")
    from ..constraints import encode_partial_labels
    codes, _ = encode_partial_labels(np.asarray([None if u else c for c, u in zip(cells, unknown)], dtype=object))
    return codes


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
    if li is None:
        try:  # fast path (C parser, every column, so a row with a field too many fails here too);
            # on any problem, the slow path below finds and names it
            X = np.loadtxt(path, delimiter=delim, skiprows=int(has_header), ndmin=2, dtype=np.float64,
                           encoding="utf-8-sig")
            if X.shape[0] == 0:
                raise UserError(f"{path}: has a header but no data rows")
            if X.shape[1] == width:
                return X, None
        except ValueError:
            pass
    header, rows, lines = _read_csv_table(path)
    X = np.empty((len(rows), len(feat_cols)), dtype=np.float64)
    for i, r in enumerate(rows):
        for k, j in enumerate(feat_cols):
            try:
                X[i, k] = float(r[j])
            except ValueError:
                col = repr(header[j]) if header is not None else str(j + 1)
                hint = ""
                if labels_col is None and header is not None:
                    hint = (f" (if column {header[j]!r} holds partial labels, name it with --labels-col "
                            f"{header[j]}; it is then not read as a feature)")
                raise UserError(f"{path}: line {lines[i]}, column {col}: {r[j]!r} is not a number{hint}") from None
    y = None
    if li is not None:
        y = _labels_from_cells([r[li] for r in rows], lambda k: f"{path}: line {lines[k]}")
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
        cells = ["" if v is None or (isinstance(v, float) and math.isnan(v)) or str(v) == "<NA>" else str(v)
                 for v in col.astype(object)]
        y = _labels_from_cells(cells, lambda k: f"{path}: column {labels_col!r}, row {k + 1}")
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
                against: str = "the features have {n} rows", option: str = "--labels-col") -> np.ndarray:
    """Integer labels from ``.npy`` (1-D) or ``.csv``/``.txt`` (one column, or ``column``); -1 = unknown.

    In a CSV with a header and several columns, ``column`` picks one; without it the
    column named ``label`` is used when there is one, and otherwise the user is asked to
    name it with ``option``. Empty cells are unknown labels: a one-column file keeps a
    row for each. Class names (text) are numbered in sorted order. ``n`` is the expected
    length; ``against`` words the mismatch message.
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
        header, rows, lines = _read_csv_table(path, blank_rows="keep", n=n)
        width = len(rows[0])
        if header is not None and width == 1 and n is not None and len(rows) == n - 1:
            # one class name per line and no header: the first name is a label, not a column name
            header, rows, lines = None, [header] + rows, [lines[0] - 1] + lines
        if column is not None:
            j = _column_index(header, column, path, width)
        elif header is not None and "label" in header:
            j = header.index("label")
        elif width == 1:
            j = 0
        else:
            names = f" ({', '.join(header)})" if header is not None else ""
            raise UserError(f"{path}: has {width} columns{names}; name the one holding the {what} with "
                            f"{option} NAME (a header name, or a column number from 0)")
        y = _labels_from_cells([r[j] for r in rows], lambda k: f"{path}: line {lines[k]}")
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
        header, rows, lines = _read_csv_table(path)
        try:
            P = np.asarray([[float(c) for c in r] for r in rows])
        except ValueError:
            bad = next(i for i, r in enumerate(rows) if not all(_is_number(c) for c in r))
            raise UserError(f"{path}: line {lines[bad]} is not three numbers i,j,same") from None
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


PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".eps", ".ps", ".tif", ".tiff", ".webp")


def check_output(path, allowed=(".npy", ".npz", ".csv"), what="output") -> Path:
    """Refuse an output path that cannot be written, before any work is done.

    The type must be one of ``allowed``; the path must not be a folder; its folder must
    exist and be writable, or be creatable (a missing folder is created when the file is
    written). Every message names the path as the user gave it.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a folder; give a file name for the {what}")
    _suffix(path, allowed, what)
    if path.exists() and not os.access(path, os.W_OK):
        raise UserError(f"{path}: cannot write the {what}: the file is read-only")
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{path}: cannot write the {what}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{path}: cannot write the {what}: no permission to write in {parent}")
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
