"""The user's own data files: CSV (with a target column) and NPZ (arrays X and y)."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError


def load_file(path, target: str | None = None) -> tuple[np.ndarray, np.ndarray, list]:
    """(X, y, feature_names) from a .csv or .npz file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        return read_csv(path, target)
    if not path.exists():
        raise DataError(f"{path}: no such data file")
    if suffix == ".npz":
        X, y = read_npz(path)
        return X, y, [f"x{i}" for i in range(X.shape[1])]
    raise DataError(f"{path}: unknown data file type {suffix!r}; use .csv, .npz, or a folder of IDX files")


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _rows(path: Path) -> list[list[str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file") from None
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        rows = [[cell.strip() for cell in row] for row in csv.reader(text.splitlines(), delimiter=delimiter)]
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV ({exc})") from None
    return [row for row in rows if any(row)]


def _has_header(rows: list[list[str]]) -> bool:
    """A first row with a non-numeric cell above a numeric column is a header."""
    if len(rows) < 2:
        return not all(_is_number(c) for c in rows[0])
    return any(not _is_number(top) and _is_number(below) for top, below in zip(rows[0], rows[1], strict=False)) \
        or all(not _is_number(c) for c in rows[0]) and not all(not _is_number(c) for c in rows[1])


def read_table(path) -> tuple[list[str], list[list[str]], bool]:
    """(column names, data rows as strings, whether the file had a header row)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such data file")
    rows = _rows(path)
    if not rows:
        raise DataError(f"{path}: the CSV file is empty")
    has_header = _has_header(rows)
    names = rows.pop(0) if has_header else [f"column{i}" for i in range(len(rows[0]))]
    if not rows:
        raise DataError(f"{path}: the CSV file has a header but no data rows")
    for i, row in enumerate(rows):
        if len(row) != len(names):
            raise DataError(f"{path}: data row {i + 1} has {len(row)} fields, the first row has {len(names)}")
    return names, rows, has_header


def read_csv(path, target: str | None = None, features_only: bool = False):
    """(X float64, y, feature names); y is numeric where every value is, else strings.

    ``target`` is a column name (or 0-based index); the last column by default.
    With ``features_only`` every column is a feature and y is None.
    """
    path = Path(path)
    names, rows, _ = read_table(path)
    t = None if features_only else _target_index(names, target, path)
    features = [j for j in range(len(names)) if j != t]
    X = np.empty((len(rows), len(features)))
    for k, j in enumerate(features):
        X[:, k] = _numeric_column(rows, j, names[j], path)
    y = None if t is None else _target_values([row[t] for row in rows], path)
    return X, y, [names[j] for j in features]


def _target_index(names: list, target, path: Path) -> int:
    if target is None:
        return len(names) - 1
    if target in names:
        return names.index(target)
    if str(target).isdigit() and int(target) < len(names):
        return int(target)
    raise DataError(f"{path}: no target column {target!r}; columns: {', '.join(names)}")


def _numeric_column(rows, j: int, name: str, path: Path) -> np.ndarray:
    values = np.empty(len(rows))
    for i, row in enumerate(rows):
        try:
            values[i] = float(row[j])
        except ValueError:
            what = "is empty" if row[j] == "" else f"holds {row[j]!r}"
            raise DataError(f"{path}: column {name!r} is not numeric: data row {i + 1} {what}; "
                            "encode or drop that column") from None
    if not np.isfinite(values).all():
        raise DataError(f"{path}: column {name!r} holds NaN or inf (first at data row "
                        f"{int(np.argmax(~np.isfinite(values))) + 1})")
    return values


def _target_values(cells: list[str], path: Path) -> np.ndarray:
    if any(c == "" for c in cells):
        raise DataError(f"{path}: the target column is empty in data row {cells.index('') + 1}")
    if all(_is_number(c) for c in cells):
        y = np.array([float(c) for c in cells])
        if not np.isfinite(y).all():
            raise DataError(f"{path}: the target column holds NaN or inf")
        integral = np.all(y == np.round(y)) and np.abs(y).max() < 2**53  # exactly representable labels
        return y.astype(np.int64) if integral else y
    return np.array(cells)


def read_npz(path) -> tuple[np.ndarray, np.ndarray]:
    """Arrays ``X`` (m, n) and ``y`` (m,) from an .npz file, loaded without pickle.

    Each array's header is checked against its stored size before the array is read,
    so a file cannot make the reader allocate more than it holds.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = {name.removesuffix(".npy"): name for name in archive.namelist()}
            missing = {"X", "y"} - set(names)
            if missing:
                raise DataError(f"{path}: the NPZ file needs arrays 'X' and 'y' (missing {sorted(missing)}; "
                                f"found {sorted(names)})")
            X, y = (_npy_member(archive, names[key], path) for key in ("X", "y"))
    except DataError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise DataError(f"{path}: unreadable NPZ file ({exc.__class__.__name__}: {exc})") from None
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise DataError(f"{path}: X must be (m, n) and y (m,), got {X.shape} and {y.shape}")
    return X, y


def _npy_member(archive: zipfile.ZipFile, name: str, path: Path) -> np.ndarray:
    info = archive.getinfo(name)
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(f)
        if dtype.hasobject:
            raise DataError(f"{path}: array {name!r} holds Python objects; only numeric arrays are read")
        if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize > info.file_size:
            raise DataError(f"{path}: array {name!r} claims shape {shape}, more than its {info.file_size} bytes")
    with archive.open(info) as f:
        return np.lib.format.read_array(f, allow_pickle=False)
