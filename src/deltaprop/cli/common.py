"""What the subcommands share: finding data, applying a model's preprocessing, tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import Dataset, Scaler, load_builtin, load_file
from ..data.builtin import BUILTIN, load_idx_folder
from ..errors import DataError

DATA_HELP = (f"a built-in set ({', '.join(BUILTIN)}), a .csv or .npz file, or a folder holding the four "
             "MNIST-style IDX files")


def load_data(spec: str, target: str | None = None, data_dir: str | None = None, test_size: float = 0.25,
              seed: int = 0) -> tuple[Dataset, list]:
    """A Dataset (train/test split) and the feature names, from a name, file or IDX folder."""
    path = Path(spec)
    if spec in BUILTIN and not path.exists():
        data = load_builtin(spec, data_dir=data_dir, test_size=test_size, seed=seed)
        return data, [f"x{i}" for i in range(data.X_train.shape[1])]
    if path.is_dir():
        data = load_idx_folder(path, path.name)
        return data, [f"pixel{i}" for i in range(data.X_train.shape[1])]
    if not path.exists():
        raise DataError(f"no data set or file {spec!r}; use {DATA_HELP}")
    X, y, names = load_file(path, target)
    return split(spec, X, y, test_size, seed), names


def split(name: str, X: np.ndarray, y: np.ndarray, test_size: float, seed: int) -> Dataset:
    """Hold out ``test_size`` of the rows (stratified when every class has 2+ samples)."""
    from sklearn.model_selection import train_test_split

    if X.shape[0] < 4:
        raise DataError(f"{name}: {X.shape[0]} rows are too few to split into training and test data")
    labels = y.dtype.kind in "iuUSOb"
    counts = np.unique(y, return_counts=True)[1] if labels else None
    stratify = y if labels and counts.min() >= 2 and len(counts) <= test_size * len(y) else None
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=test_size, random_state=seed,
                                                        stratify=stratify)
    return Dataset(name, X_train, y_train, X_test, y_test)


def inputs_for(net, X: np.ndarray) -> np.ndarray:
    """X with the model's saved feature scaling applied (fitted on its training data)."""
    scaler = net.extra.get("scaler")
    if scaler is None:
        return X
    return Scaler.from_config(scaler).transform(X)


def targets_for(net, y: np.ndarray) -> np.ndarray:
    """Regression targets standardized with the model's saved target scaling (labels unchanged)."""
    config = net.extra.get("target_scaler")
    if config is None:
        return y
    y = np.asarray(y, dtype=np.float64)
    return Scaler.from_config(config).transform(y.reshape(len(y), -1)).reshape(y.shape)


def outputs_for(net, predicted: np.ndarray) -> np.ndarray:
    """A regressor's predictions back in the target's units (the inverse of targets_for)."""
    config = net.extra.get("target_scaler")
    if config is None:
        return predicted
    return Scaler.from_config(config).inverse_transform(predicted.reshape(len(predicted), -1)).reshape(
        predicted.shape)


def r_squared(predicted: np.ndarray, y: np.ndarray) -> float:
    """1 - sum (y - prediction)^2 / sum (y - mean y)^2: the same on standardized targets and in their units."""
    y = np.asarray(y, dtype=np.float64).reshape(predicted.shape)
    residual = predicted - y
    return float(1 - (residual**2).sum() / max(((y - y.mean(axis=0)) ** 2).sum(), np.finfo(float).tiny))


def table(rows: list[list], header: list[str]) -> str:
    """A plain aligned text table."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    line = "+".join("-" * (w + 2) for w in widths)
    rows_text = [" " + " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join([rows_text[0], line] + rows_text[1:])
