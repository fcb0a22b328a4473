"""What the subcommands share: finding data, applying a model's preprocessing, tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..data import Dataset, is_sharded
from ..data import open as open_data
from ..data.builtin import BUILTIN
from ..data.columns import TableEncoder
from ..data.formats import describe, is_table
from ..data.tables import ReadOptions, read_table, target_column, target_values
from ..errors import DataError
from .tables import held_out, labelled_table, split_rows, table_dataset

DATA_HELP = f"a built-in set ({', '.join(BUILTIN)}), {describe()}"


def load_data(spec: str, target: str | None = None, data_dir: str | None = None, *, test_size: float = 0.25,
              seed: int = 0, read: ReadOptions | None = None, encoder: TableEncoder | None = None):
    """(Dataset of train/test arrays, feature names, the table's source record or None, notes to print): the
    data ``spec`` names (data.open: a built-in name, an IDX folder, an NPZ file or a table), read whole; split
    into train and test rows unless the source holds its own test part; a table's ``encoder`` fitted on its
    training rows."""
    if is_sharded(spec):
        raise DataError(f"{spec} names shards (several files): deltaprop train streams them; the other commands "
                        "take one file")
    whole = open_data(spec, target, read=read, data_dir=data_dir, test_size=test_size, seed=seed).read()
    if whole.table:
        encoder = encoder or TableEncoder()
        data, info = table_dataset(whole, test_size, seed, read or ReadOptions(), encoder)
        return data, encoder.feature_names, info, whole.notes
    if whole.test is not None:
        data = Dataset(whole.name, whole.X, whole.y, *whole.test, whole.class_names)
        return data, whole.feature_names, None, []
    train, test = split_rows(whole.y, test_size, seed, spec)
    return Dataset(spec, whole.X[train], whole.y[train], whole.X[test], whole.y[test]), whole.feature_names, None, []


def model_test_data(net, data_dir: str | None = None) -> tuple:
    """The held-out test rows of the data ``net`` was trained on, raw as ``net.predict`` takes them (a
    table's rows, or unscaled X), and their targets."""
    source = net.pipeline.source
    if source.get("test_size") == 0:
        raise DataError(f"this model was trained on all rows of {source.get('path', source.get('data'))} "
                        "(--test-size 0): it has no held-out test rows; pass other data with --data, e.g. "
                        "deltaprop evaluate MODEL --data OTHER.csv")
    if source.get("streamed"):
        raise DataError(f"this model was trained on shards streamed from {source.get('data')}, which hold no "
                        "test split; pass --data to score a file")
    if net.pipeline.table is not None:
        return held_out(net.pipeline)
    spec = source.get("data")
    if spec is None:
        raise DataError("this model does not say what data it was trained on; pass --data")
    if Path(spec).is_file():
        raise DataError(f"this model does not record which rows of {spec} it held out (it predates that); "
                        "pass --data to score a file")
    data, _, _, _ = load_data(spec, source.get("target"), data_dir, test_size=source.get("test_size", 0.25),
                              seed=net.seed)
    return data.X_test, data.y_test


def labelled_data(net, spec: str, data_dir: str | None = None, target: str | None = None,
                  header: bool | None = None):
    """All labelled rows of the data named by --data, raw as ``net.predict`` takes them, and their targets.
    A built-in set gives its test part."""
    path, target = Path(spec), target or net.pipeline.source.get("target")
    if net.pipeline.table is not None and is_table(path):
        return labelled_table(net.pipeline, path, target, header)
    if is_table(path):  # a model trained on numeric arrays: the table's columns as numbers
        frame = read_table(path)
        name = target_column(list(map(str, frame.columns)), target, path)
        return numeric_columns(net, frame.drop(columns=[name]), path), target_values(frame[name], name)
    if path.is_file():
        whole = open_data(path, target).read()
        return whole.X, whole.y
    data, _, _, _ = load_data(spec, target, data_dir, seed=net.seed)
    return data.X_test, data.y_test


def r_squared(predicted: np.ndarray, y: np.ndarray) -> float:
    """1 - sum (y - prediction)^2 / sum (y - mean y)^2: the same on standardized targets and in their units."""
    y = np.asarray(y, dtype=np.float64).reshape(predicted.shape)
    residual = predicted - y
    return float(1 - (residual**2).sum() / max(((y - y.mean(axis=0)) ** 2).sum(), np.finfo(float).tiny))


def confusion_matrix(y, predicted, classes) -> np.ndarray:
    """Counts of (true, predicted) label pairs, rows and columns in the order of ``classes`` (labels outside
    them left out), as scikit-learn's confusion_matrix(labels=classes) counts them, without importing it on the
    way of every run (data/splits.py says what that import costs)."""
    index = {label: k for k, label in enumerate(np.asarray(classes).tolist())}
    pairs = [(index.get(t), index.get(p)) for t, p in zip(np.asarray(y).tolist(), np.asarray(predicted).tolist(),
                                                          strict=True)]
    known = [pair for pair in pairs if None not in pair]
    rows, cols = np.array(known, dtype=np.int64).reshape(-1, 2).T
    matrix = np.zeros((len(index), len(index)), dtype=np.int64)
    np.add.at(matrix, (rows, cols), 1)
    return matrix


def table(rows: list[list], header: list[str]) -> str:
    """A plain aligned text table."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    line = "+".join("-" * (w + 2) for w in widths)
    rows_text = [" " + " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join([rows_text[0], line] + rows_text[1:])


def numeric_columns(net, frame, path: Path) -> np.ndarray:
    """A model trained on numbers alone: its feature columns by name where the file names them all,
    else by position (a file without a header: the features, or the features and a last target)."""
    names, wanted = list(map(str, frame.columns)), list(net.pipeline.feature_names or [])
    if wanted and set(wanted) <= set(names):
        frame = frame[wanted]
    elif names != [f"column{i}" for i in range(len(names))]:
        missing = [n for n in wanted if n not in names]
        raise DataError(f"{path}: the table lacks column(s) {missing[:10]} that the model was trained on")
    elif len(names) == net.layers[0].n_in + 1:
        frame = frame.iloc[:, :-1]
    X = frame.apply(lambda column: pd.to_numeric(column, errors="coerce")).to_numpy(np.float64)
    if np.isnan(X).any():
        row, col = np.argwhere(np.isnan(X))[0]
        raise DataError(f"{path}: column {frame.columns[col]!r} is not numeric or is missing at data row {row + 1}")
    return X
