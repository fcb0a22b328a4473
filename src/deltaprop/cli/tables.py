"""Table files (CSV, Parquet) for the subcommands: read, leave out rows without a target, split, encode.

A model trained on a table carries its fitted TableEncoder as the first preprocessing stage, and in
its pipeline's ``source`` all it takes to split the file again: its absolute path and SHA-256, the
target, seed, test size and method of the split (data/splits.py), the read options. ``evaluate`` without
--data re-derives exactly the held-out rows from them (and refuses a file that changed); ``predict`` reads
new files the same way and the model encodes them by column name.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from ..data import Dataset
from ..data import open as open_data
from ..data.columns import TableEncoder
from ..data.splits import SPLIT, legacy_split, split
from ..data.tables import ReadOptions, fingerprint, read_table
from ..errors import DataError


def table_dataset(whole, test_size: float, seed: int, read: ReadOptions, encoder: TableEncoder):
    """(Dataset of encoded X, the pipeline's source record) for a table file read whole
    (data.Whole: its rows with a target, ``whole.target`` naming that column)."""
    frame, name, y, path = whole.X, whole.target, whole.y, whole.path
    train, test = split_rows(y, test_size, seed, str(path))
    encoder.fit(frame.iloc[train], target=name, rows=frame.index.to_numpy()[train])  # (messages name file rows)
    data = Dataset(Path(path).stem, encoder.transform(frame.iloc[train]), y[train],
                   encoder.transform(frame.iloc[test]), y[test])
    source = {"path": str(Path(path).resolve()), "sha256": fingerprint(path), "target": name, "seed": seed,
              "test_size": test_size, "split": SPLIT, "read": read.to_config()}
    return data, source


def held_out(pipeline) -> tuple:
    """The raw test rows of training (a DataFrame) and their targets, re-derived from the pipeline's source."""
    info = pipeline.source
    path = Path(info["path"])
    if not path.is_file():
        raise DataError(f"the model's training data {path} is gone; pass --data to evaluate on another file")
    if fingerprint(path) != info["sha256"]:
        raise DataError(f"{path} changed since the model was trained on it (its SHA-256 differs), so its "
                        "held-out rows cannot be told apart; pass --data to score the file as a whole")
    frame, _, y = _labelled_rows(path, info["target"], read_options(pipeline), [])
    _, test = split_rows(y, info["test_size"], info["seed"], str(path),
                         legacy="split" not in info)  # (a model saved before the split was recorded)
    return frame.iloc[test].reset_index(drop=True), y[test]


def labelled_table(pipeline, path, target=None, header: bool | None = None) -> tuple:
    """Every row of another table file that has the model's target: the raw rows and their targets."""
    notes: list = []
    frame, _, y = _labelled_rows(path, target or pipeline.source.get("target"), read_options(pipeline, header),
                                 notes)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return frame, y


def read_options(pipeline, header: bool | None = None) -> ReadOptions:
    """How training read its table file, for reading new ones alike (defaults when it was not a file);
    ``header`` (--header yes/no) overrides whether the new file's first row names its columns."""
    read = ReadOptions.from_config(pipeline.source["read"]) if "read" in pipeline.source else ReadOptions()
    if header is not None:
        read.header = header
    return read


def read_for(pipeline, path, header: bool | None = None):
    return read_table(path, read_options(pipeline, header))


def _labelled_rows(path, target, read: ReadOptions, notes: list):
    """The table's rows that have a target value, the target's name, and its values: the file read whole
    through data.open (its format's reader), the notes of reading added to ``notes``."""
    whole = open_data(path, target, read=read).read()
    notes.extend(whole.notes)
    return whole.X, whole.target, whole.y


def split_rows(y: np.ndarray, test_size: float, seed: int, name: str,
               legacy: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Training and test row indices: ``test_size`` held out, stratified when every class has 2+ rows and the
    test part can hold one row of each; test size 0: every row trains, none is held out. data/splits.py's
    split, or with ``legacy`` the split of a model whose source predates the record of it (scikit-learn's)."""
    if test_size == 0:
        return np.arange(len(y)), np.arange(0)
    if len(y) < 4:
        raise DataError(f"{name}: {len(y)} rows are too few to split into training and test data")
    labels = y.dtype.kind in "iuUSOb"
    counts = np.unique(y, return_counts=True)[1] if labels else None
    stratify = y if counts is not None and counts.min() >= 2 and len(counts) <= test_size * len(y) else None
    if legacy:
        try:
            return legacy_split(len(y), test_size, seed, stratify)
        except ValueError as exc:  # a test part of no rows, or fewer rows than classes
            raise DataError(f"{name}: test size {test_size} cannot split {len(y)} rows ({exc})") from None
    n_test, n_classes = math.ceil(test_size * len(y)), 0 if counts is None else len(counts)
    if n_test >= len(y) or (stratify is not None and len(y) - n_test < n_classes):
        raise DataError(f"{name}: test size {test_size} cannot split {len(y)} rows (it would leave "
                        f"{len(y) - n_test} training rows{'' if stratify is None else f' for {n_classes} classes'})")
    return split(len(y), test_size, seed, stratify)
