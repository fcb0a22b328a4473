"""Built-in data sets: scikit-learn's small sets, and Fashion-MNIST / MNIST from IDX files."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from .formats import describe
from .idx import read_idx

SKLEARN = ("digits", "iris", "wine", "breast_cancer")
IDX_SETS = ("fashion-mnist", "mnist")
BUILTIN = SKLEARN + IDX_SETS
IDX_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]


@dataclass
class Dataset:
    """Train and test arrays; ``class_names[k]`` names label k where known."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    class_names: list = field(default_factory=list)


def load_builtin(name: str, data_dir=None, test_size: float = 0.25, seed: int = 0) -> Dataset:
    """A built-in set by name; scikit-learn sets are split (stratified, seeded) into train/test."""
    if name in SKLEARN:
        return _sklearn(name, test_size, seed)
    if name in IDX_SETS:
        return _idx_set(name, data_dir)
    raise DataError(f"unknown data set {name!r}; built-in: {', '.join(BUILTIN)}, or give {describe()}")


def _sklearn(name: str, test_size: float, seed: int) -> Dataset:
    import sklearn.datasets
    from sklearn.model_selection import train_test_split

    bunch = getattr(sklearn.datasets, f"load_{name}")()
    if test_size == 0:  # every row trains (--test-size 0), none is held out
        return Dataset(name, bunch.data, bunch.target, bunch.data[:0], bunch.target[:0],
                       [str(c) for c in bunch.target_names])
    try:
        X_train, X_test, y_train, y_test = train_test_split(
            bunch.data, bunch.target, test_size=test_size, random_state=seed, stratify=bunch.target)
    except ValueError as exc:  # a test part of no rows, or fewer rows than classes
        raise DataError(f"{name}: test size {test_size} cannot split {len(bunch.target)} rows ({exc})") from None
    return Dataset(name, X_train, y_train, X_test, y_test, [str(c) for c in bunch.target_names])


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    return None


def _idx_set(name: str, data_dir) -> Dataset:
    folder = Path(data_dir) if data_dir else Path(os.environ.get("DELTAPROP_DATA", "/usr/share/datasets")) / name
    return load_idx_folder(folder, name)


def load_idx_folder(folder: Path, name: str) -> Dataset:
    """The four MNIST-style IDX files (train/t10k images and labels, .gz or not) in ``folder``."""
    stems = list(IDX_STEMS)
    paths = [_find(Path(folder), stem) for stem in stems]
    if None in paths:
        how = ("apt-get install dataset-fashion-mnist" if name == "fashion-mnist"
               else "put the four IDX files of the data set into one folder")
        raise DataError(f"data set {name!r} not found in {folder} (missing {stems[paths.index(None)]}[.gz]); "
                        f"to get it: {how}, and pass its folder with --data-dir")
    X_train, y_train, X_test, y_test = (read_idx(p) for p in paths)
    if X_train.shape[0] != y_train.shape[0] or X_test.shape[0] != y_test.shape[0] or y_train.ndim != 1:
        raise DataError(f"{folder}: the image and label files of {name} do not match")
    for labels, path in ((y_train, paths[1]), (y_test, paths[3])):
        if labels.dtype.kind == "f":  # cast to int, NaN would become -9223372036854775808
            raise DataError(f"{path}: the label file holds floating-point values; class labels must be integers")
    flat = [x.reshape(x.shape[0], -1).astype(np.float32) for x in (X_train, X_test)]
    for x in flat:
        x /= 255  # in place: one float32 copy of the pixels, not two
    names = FASHION_CLASSES if name == "fashion-mnist" else [str(k) for k in range(10)]
    return Dataset(name, flat[0], y_train.astype(np.int64), flat[1], y_test.astype(np.int64), names)
