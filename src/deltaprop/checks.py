"""Input checks: turn user arrays into the shapes and dtype the engine expects.

Every failure is a ShapeError or DataError that names the problem, so a user
never meets a NumPy broadcasting traceback from inside the backward pass.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt

from .errors import DataError, ShapeError
from .losses import Loss

Array = np.ndarray
ArrayLike = npt.ArrayLike  # what np.asarray takes (a SciPy sparse matrix too, where a docstring says so)
# raw inputs as predict takes them: an array, or for a table model a pandas DataFrame or a dict of columns (pandas
# ships no types to mypy here, so this is Any; the docstrings say what is accepted)
Inputs = Any
PathLike = str | os.PathLike[str]


def all_finite(values: Array) -> bool:
    """No NaN or inf, without an array of flags.

    One pass first: x.x (BLAS dot) is finite only if every x_i is. Only when it is not
    (a bad entry, or a square sum beyond the dtype's range) are min and max consulted,
    which NaN and +-inf always reach.
    """
    if values.size == 0:
        return True
    if values.dtype.kind == "f":
        flat = values.reshape(-1)
        with np.errstate(over="ignore", invalid="ignore"):
            if np.isfinite(np.dot(flat, flat)):
                return True
    return bool(np.isfinite(values.min()) and np.isfinite(values.max()))


def _first_bad_row(values: Array) -> int:
    bad = ~np.isfinite(values.reshape(values.shape[0], -1)).all(axis=1)
    return int(np.argmax(bad))


@overload
def check_X(X, n_in: int, dtype: np.dtype, sparse_ok: Literal[False] = False) -> Array: ...
@overload
def check_X(X, n_in: int, dtype: np.dtype, sparse_ok: bool) -> Any: ...  # an Array, or SciPy's CSR (untyped)
def check_X(X, n_in: int, dtype: np.dtype, sparse_ok: bool = False) -> Any:
    """X as a C-contiguous (m, n_0) array of ``dtype``, finite, with n_0 == n_in.

    A SciPy sparse matrix or array comes back as CSR of ``dtype`` with ``sparse_ok``
    (training and inference densify it a batch at a time), else as a dense array.
    """
    if is_sparse(X):
        X = _check_sparse(X, n_in, dtype)
        return X if sparse_ok else X.toarray()
    X = np.asarray(X)
    _check_kind_and_shape(X, n_in)
    X = np.ascontiguousarray(X, dtype=dtype)
    if not all_finite(X):
        raise DataError(f"X contains NaN or inf (first at row {_first_bad_row(X)})")
    return X


def is_sparse(X) -> bool:
    """A SciPy sparse matrix or array. Without scipy.sparse imported there can be none, so the
    check costs no import of SciPy (deltaprop itself needs NumPy only)."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(X)


def _check_kind_and_shape(X, n_in: int) -> None:
    """X (dense or sparse) numeric, 2-D, with rows, and n_in features per row."""
    if X.dtype.kind not in "biuf":
        raise DataError(f"X must be numeric, got dtype {X.dtype}; encode text columns first")
    if X.ndim == 1:
        raise ShapeError(f"X must be 2-D (m samples, {n_in} features), got shape {X.shape}; "
                         "use X.reshape(1, -1) for one sample")
    if X.ndim != 2:
        raise ShapeError(f"X must be 2-D (m, {n_in}), got shape {X.shape}")
    if X.shape[0] == 0:
        raise DataError("X is empty: it has no samples (0 rows)")
    if X.shape[1] != n_in:
        raise ShapeError(f"X has {X.shape[1]} features per sample, the network expects {n_in}")


def _check_sparse(X, n_in: int, dtype: np.dtype):
    """A sparse X as CSR rows of ``dtype``: 2-D, non-empty, n_in columns, finite stored values."""
    _check_kind_and_shape(X, n_in)
    X = X.tocsr().astype(dtype, copy=False)
    if not all_finite(X.data):
        raise DataError(f"X contains NaN or inf (first at row {_first_bad_csr_row(X)})")
    return X


def _first_bad_csr_row(X) -> int:
    bad = int(np.argmax(~np.isfinite(X.data)))
    return int(np.searchsorted(X.indptr, bad, side="right") - 1)


def dense_rows(X, rows: Array, out: Array) -> Array:
    """Rows ``rows`` of a CSR matrix written densely into ``out`` (len(rows), n_0): one batch at a time."""
    return X[rows].toarray(out=out)


def encode_targets(y, m: int, n_out: int, loss: Loss, dtype: np.dtype, classes: Array | None = None) -> Array:
    """y as an (m, n_L) array of ``dtype``: one-hot for labels, a column for (m,) values.

    Labels are integer class indices 0..n_L-1, or members of ``classes`` when the
    network was fitted on other labels (strings, arbitrary integers).
    """
    y = np.asarray(y)
    if y.ndim == 0 or y.ndim > 2:
        raise ShapeError(f"y must have shape (m,) or (m, {n_out}), got {y.shape}")
    if y.shape[0] != m:
        raise ShapeError(f"X has {m} samples but y has {y.shape[0]}; they must match")
    if y.ndim == 2:
        if y.shape[1] != n_out:
            raise ShapeError(f"y has {y.shape[1]} columns, the output layer has n_L = {n_out}")
        return _finite_float(y, dtype)
    if n_out == 1 and classes is not None:  # binary labels into one sigmoid neuron
        return label_indices(y, 2, classes).astype(dtype).reshape(-1, 1)
    if classes is not None or (n_out > 1 and _looks_like_labels(y)) or (
        loss.classification and n_out > 1
    ):
        return one_hot(label_indices(y, n_out, classes), n_out, dtype)
    if n_out != 1:
        raise ShapeError(f"y of shape {y.shape} needs the output layer to have 1 neuron, "
                         f"it has {n_out}; pass y of shape (m, {n_out})")
    return _finite_float(y.reshape(-1, 1), dtype)


def _looks_like_labels(y: Array) -> bool:
    return y.dtype.kind in "biuOUS"


def _finite_float(y: Array, dtype: np.dtype) -> Array:
    if y.dtype.kind not in "biuf":
        raise DataError(f"y must be numeric for this loss, got dtype {y.dtype}")
    y = np.ascontiguousarray(y, dtype=dtype)
    if not all_finite(y):
        raise DataError(f"y contains NaN or inf (first at row {_first_bad_row(y)})")
    return y


def label_indices(y: Array, n_out: int, classes: Array | None = None) -> Array:
    """Class indices 0..n_L-1 for the labels y (mapped through ``classes`` if given)."""
    if classes is not None:
        pos = np.minimum(np.searchsorted(classes, y), len(classes) - 1)  # a label above all classes: checked next
        unknown = classes[pos] != y
        if unknown.any():
            raise DataError(f"label {y[np.argmax(unknown)].item()!r} was never seen in training; "
                            f"known labels: {classes[:20].tolist()}")
        return pos
    if y.dtype.kind == "f":
        check_whole_numbers(y)
    elif y.dtype.kind not in "biu":
        raise DataError(f"labels of dtype {y.dtype} need the network's classes to be set (fit sets them)")
    idx = y.astype(np.int64)
    if idx.min() < 0 or idx.max() >= n_out:
        raise DataError(f"class label {int(idx.max() if idx.max() >= n_out else idx.min())} "
                        f"is outside 0..{n_out - 1} (the output layer has {n_out} neurons)")
    return idx


def check_whole_numbers(y: Array) -> None:
    """Float labels must be finite whole numbers; anything else is a regression target."""
    if not all_finite(y):
        raise DataError(f"y contains NaN or inf (first at row {_first_bad_row(y)})")
    if (y != np.round(y)).any():
        raise DataError("y holds non-integer values but the loss needs class labels; use loss='mse' for regression")


def one_hot(idx: Array, n_out: int, dtype: np.dtype) -> Array:
    """(m, n_out) rows with a 1 in column idx[i]."""
    out = np.zeros((idx.shape[0], n_out), dtype=dtype)
    out[np.arange(idx.shape[0]), idx] = 1
    return out


def check_weights(sample_weight, m: int) -> Array | None:
    """Per-sample weights as a finite, non-negative (m,) array, or None."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (m,):
        raise ShapeError(f"sample_weight must have shape ({m},), got {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise DataError("sample_weight must be finite and non-negative")
    return w
