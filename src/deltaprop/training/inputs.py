"""What fit makes of its data before the first epoch: the data as given (FitData), classes, weights, validation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..checks import check_weights, check_X, label_indices
from ..constraints import finite
from ..errors import ConfigError, DataError

Array = np.ndarray


@dataclass(frozen=True)
class FitData:
    """The data of one fit, as given: X (arrays, or a Stream with y None), y, and what is checked against
    them: validation_data (X, y), per-row sample_weight, per-label class_weight. Not options (TrainConfig):
    each is tied to these rows and labels."""

    X: Any
    y: Any = None
    validation_data: Any = None
    sample_weight: Any = None
    class_weight: Any = None


def set_classes(net, y: Array) -> None:
    """Fix the labels behind the output neurons the first time a classifier is fitted."""
    if net.classes is not None or y.ndim != 1:
        return
    if net.loss_fn.classification or (net.layers[-1].n_out > 1 and y.dtype.kind in "biuOUS"):
        net.set_classes(y)


def combined_weights(net, y: Array, w: Array | None, class_weight) -> Array | None:
    """Per-sample weights times per-class weights (``"balanced"``: n / (k count_c))."""
    if class_weight is None:
        return w
    if net.classes is None or y.ndim != 1:
        raise ConfigError("class_weight needs class labels y of shape (m,)")
    idx = label_indices(y, net.layers[-1].n_out, net.classes)
    if not (class_weight == "balanced" or isinstance(class_weight, dict)):
        raise ConfigError(f"class_weight must be a dict of label: weight or 'balanced', got {class_weight!r}")
    if class_weight == "balanced":
        counts = np.bincount(idx, minlength=len(net.classes)).astype(np.float64)
        per_class = np.where(counts > 0, len(y) / (len(net.classes) * np.maximum(counts, 1)), 0.0)
    else:
        unknown = set(class_weight) - set(net.classes.tolist())
        if unknown:
            raise DataError(f"class_weight names labels never seen in y: {sorted(map(str, unknown))}")
        if not all(finite(v) and v >= 0 for v in class_weight.values()):
            raise ConfigError(f"class_weight values must be finite numbers >= 0, got {class_weight!r}")
        per_class = np.array([float(class_weight.get(c, 1.0)) for c in net.classes.tolist()])
    cw = per_class[idx]
    return cw if w is None else w * cw


def validation_rows(m: int, validation_split: float) -> int:
    """How many of m rows a validation split holds out (the nearest whole number)."""
    return int(round(validation_split * m))


def validation(net, X, Y, validation_data, validation_split) -> tuple[np.ndarray | None, tuple[Any, Any, Any] | None]:
    """(training row indices or None for all, validation set or None).

    The validation set is (X, Y, None) of validation_data, checked, or for a split
    (X, Y, rows): the held-out rows of the training arrays, read in place, not copied.
    """
    if validation_data is not None:
        Xv = check_X(validation_data[0], net.layers[0].n_in, net.dtype, sparse_ok=True)
        return None, (Xv, net.targets(validation_data[1], Xv.shape[0]), None)
    if not validation_split:
        return None, None
    if not 0 < validation_split < 1:
        raise ConfigError(f"validation_split must be in (0, 1), got {validation_split}")
    order = np.random.default_rng([net.seed, 2**31]).permutation(X.shape[0])
    n_val = validation_rows(X.shape[0], validation_split)
    if n_val < 1 or n_val >= X.shape[0]:
        raise DataError(f"validation_split={validation_split} leaves no samples on one side of {X.shape[0]}")
    return np.sort(order[n_val:]), (X, Y, np.sort(order[:n_val]))


def arrays_in_memory(net, data: FitData, validation_split: float | None = 0.0) -> tuple[
        Any, Array, Array | None, Array | None, tuple[Any, Any, Any] | None]:
    """(X checked, Y encoded, per-row weights or None, training rows, validation or None) for a fit on arrays in
    memory: what every solver (the mini-batch loop, L-BFGS) makes of its data, the classes set first."""
    X = check_X(data.X, net.layers[0].n_in, net.dtype, sparse_ok=True)
    y = np.asarray(data.y)
    set_classes(net, y)
    Y = net.targets(y, X.shape[0])
    w = combined_weights(net, y, check_weights(data.sample_weight, X.shape[0]), data.class_weight)
    rows, val = validation(net, X, Y, data.validation_data, validation_split)
    return X, Y, w, rows, val
