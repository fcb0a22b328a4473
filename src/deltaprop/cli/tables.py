"""Table files (CSV, Parquet) for the subcommands: read, leave out rows without a target, split, encode.

A model trained on a table stores in ``extra["table"]`` all it takes to do the same again:
the file's absolute path and SHA-256, the target, seed and test size of the split, the read
options and the fitted TableEncoder. ``evaluate`` without --data re-derives exactly the held-out
rows from them (and refuses a file that changed); ``predict`` encodes new files by column name.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..data import Dataset
from ..data.columns import TableEncoder
from ..data.tables import ReadOptions, fingerprint, read_table, target_values
from ..errors import DataError

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")


def is_table(path) -> bool:
    return Path(path).suffix.lower() in TABLE_SUFFIXES


def table_dataset(path, target, test_size: float, seed: int, read: ReadOptions, encoder: TableEncoder):
    """(Dataset of encoded X, the model's ``extra["table"]``, notes to print) for a table file."""
    frame, name, y = _labelled_rows(path, target, read, notes := [])
    train, test = split_rows(y, test_size, seed, str(path))
    encoder.fit(frame.iloc[train], target=name)
    data = Dataset(Path(path).stem, encoder.transform(frame.iloc[train]), y[train],
                   encoder.transform(frame.iloc[test]), y[test])
    info = {"path": str(Path(path).resolve()), "sha256": fingerprint(path), "target": name, "seed": seed,
            "test_size": test_size, "read": read.to_config(), "columns": encoder.to_config()}
    return data, info, notes


def held_out(info: dict) -> tuple[np.ndarray, np.ndarray]:
    """The encoded test rows of training and their targets, re-derived from ``extra["table"]``."""
    path = Path(info["path"])
    if not path.is_file():
        raise DataError(f"the model's training data {path} is gone; pass --data to evaluate on another file")
    if fingerprint(path) != info["sha256"]:
        raise DataError(f"{path} changed since the model was trained on it (its SHA-256 differs), so its "
                        "held-out rows cannot be told apart; pass --data to score the file as a whole")
    frame, _, y = _labelled_rows(path, info["target"], ReadOptions.from_config(info["read"]), [])
    _, test = split_rows(y, info["test_size"], info["seed"], str(path))
    return encode(info, frame.iloc[test]), y[test]


def labelled_table(info: dict, path) -> tuple[np.ndarray, np.ndarray]:
    """Every row of another table file that has the model's target: encoded X and y."""
    notes: list = []
    frame, _, y = _labelled_rows(path, info["target"], ReadOptions.from_config(info["read"]), notes)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return encode(info, frame), y


def encode(info: dict, frame) -> np.ndarray:
    """X for ``frame`` by the model's fitted columns (by name); unseen categories noted once."""
    encoder = TableEncoder.from_config(info["columns"])
    X = encoder.transform(frame)
    for column, count in encoder.unseen.items():
        print(f"note: column {column!r}: {count} row(s) hold a category never seen in training "
              "(encoded as all zeros)", file=sys.stderr)
    return X


def read_for(info: dict, path):
    return read_table(path, ReadOptions.from_config(info["read"]))


def _labelled_rows(path, target, read: ReadOptions, notes: list):
    """The table's rows that have a target value, the target's name, and its values."""
    frame = read_table(path, read)
    name = target_column(list(map(str, frame.columns)), target, path)
    present = frame[name].notna().to_numpy()
    if not present.all():
        notes.append(f"left out {int((~present).sum())} row(s) whose target {name!r} is missing")
        frame = frame[present].reset_index(drop=True)
    if frame.shape[0] == 0:
        raise DataError(f"{path}: no row has a value in the target column {name!r}")
    return frame, name, target_values(frame[name], name)


def target_column(names: list, target, path) -> str:
    """The target's name: given by name or 0-based index; the last column by default."""
    if target is None:
        return names[-1]
    if str(target) in names:
        return str(target)
    if str(target).isdigit() and int(target) < len(names):
        return names[int(target)]
    raise DataError(f"{path}: no target column {target!r}; columns: {', '.join(names)}")


def split_rows(y: np.ndarray, test_size: float, seed: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Training and test row indices: ``test_size`` held out, stratified when every class has 2+ rows."""
    from sklearn.model_selection import train_test_split

    if len(y) < 4:
        raise DataError(f"{name}: {len(y)} rows are too few to split into training and test data")
    labels = y.dtype.kind in "iuUSOb"
    counts = np.unique(y, return_counts=True)[1] if labels else None
    stratify = y if labels and counts.min() >= 2 and len(counts) <= test_size * len(y) else None
    try:
        return train_test_split(np.arange(len(y)), test_size=test_size, random_state=seed, stratify=stratify)
    except ValueError as exc:  # a test part of no rows, or fewer rows than classes
        raise DataError(f"{name}: test size {test_size} cannot split {len(y)} rows ({exc})") from None
