"""The model's preprocessing: fitted stages from raw inputs to a^0, and from a^L back to the target's units.

What a model learned besides its weights is part of the model, as in scikit-learn's
``Pipeline`` or Keras' preprocessing layers saved inside the model: the table's column
encoding, the feature scaling, the target scaling. Every door (``net.predict``, the CLI,
ONNX, explain) takes raw inputs through the same stages, so none can forget one.

- ``stages``: applied in order to the raw inputs, each fitted on the training rows only
  (a ``TableEncoder`` first for a table, then a ``Scaler``, then optionally a ``PiecewiseLinear``
  encoding of the numeric inputs, which widens them); their output is a^0.
- ``target``: a regression target's scaling; the network learns scaled targets and its
  outputs a^L are mapped back to the target's units.
- ``feature_names``: the names of a^0's columns (after a piecewise-linear stage, its bins' names);
  ``class_names``: names of the classes; ``source``: where the training data came from (for ``evaluate``
  of the held-out rows).

The stages are plain JSON in the model file (``to_record``/``from_record`` in record.py), never pickle.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ..checks import ArrayLike, Inputs
from ..data.columns import TableEncoder, unseen_notes
from ..data.piecewise import PiecewiseLinear
from ..data.scaling import Scaler
from ..data.tables import as_frame
from ..errors import DataError, DeltapropWarning

ROW_BYTES = 2**22  # a table is encoded this many bytes of a^0 at a time (a wide one-hot never all at once)


@dataclass
class Pipeline:
    """Fitted stages raw -> a^0, an optional target scaling, and the names of inputs and classes."""

    stages: list = field(default_factory=list)
    target: Scaler | None = None
    feature_names: list | None = None
    class_names: list | None = None
    source: dict = field(default_factory=dict)

    @property
    def table(self) -> TableEncoder | None:
        """The table encoder when the model takes a table (columns by name), else None."""
        return self.stages[0] if self.stages and isinstance(self.stages[0], TableEncoder) else None

    @property
    def scaler(self) -> Scaler | None:
        return next((s for s in self.stages if isinstance(s, Scaler)), None)

    @property
    def piecewise(self) -> PiecewiseLinear | None:
        """The piecewise-linear encoding of the numeric inputs, when the model has one, else None."""
        return next((s for s in self.stages if isinstance(s, PiecewiseLinear)), None)

    def __bool__(self) -> bool:
        return bool(self.stages) or self.target is not None

    @property
    def columns(self) -> list[str]:
        """The raw input columns a table model reads, by name (empty for an array model)."""
        return [c.name for c in self.table.columns] if self.table is not None else []

    def chunks(self, X: Inputs) -> list:
        """X's rows in parts whose encoded a^0 (its widest stage's output) holds about ROW_BYTES (one part for an
        array model)."""
        if self.table is None:
            return [X]
        frame = self.check_table(X)
        width = max(self.table.width, self.piecewise.width if self.piecewise is not None else 0, 1)
        step = max(1, ROW_BYTES // (8 * width))
        return [frame.iloc[start:start + step] for start in range(0, max(len(frame), 1), step)]

    def check_table(self, X: Inputs) -> Any:  # a pandas DataFrame (untyped here)
        """The raw table as a pandas DataFrame; a plain array is refused, naming the columns expected."""
        if isinstance(X, np.ndarray) and X.dtype.names is None or isinstance(X, (list, tuple)):
            shape = np.shape(X)
            table = self.table
            encoded = table is not None and len(shape) == 2 and shape[1] == table.width
            raise DataError(
                f"this model was trained on a table: predict takes a DataFrame (or a dict of columns) with the "
                f"columns {_listed(self.columns)}, matched by name; got an array of shape {shape}"
                + (" (as wide as the encoded inputs a^0: for those use net.output)" if encoded else ""))
        return as_frame(X)

    def encoded(self, X: Inputs, dtype: npt.DTypeLike = np.float64) -> Iterator[np.ndarray]:
        """a^0 for raw inputs X, part by part (see ``chunks``): every stage in order. Categories a table's
        training rows never had are warned about once, counted over all parts. No stages: X as given."""
        if not self.stages:
            yield X
            return
        unseen: Counter = Counter()
        start = 0  # the part's first row among X's, for the messages
        for part in self.chunks(X):
            rows = len(part)
            for i, stage in enumerate(self.stages):
                part = _applied(stage, part, in_place=i > 0, start=start)
            if self.table is not None:
                unseen.update(self.table.unseen)
            yield self._in_range(part, dtype, start)
            start += rows
        for note in unseen_notes(unseen):  # once, counted over all parts
            warnings.warn(note, DeltapropWarning, stacklevel=3)

    def _in_range(self, part: np.ndarray, dtype, start: int = 0) -> np.ndarray:
        """a^0 in the network's dtype; a value the stages made that the dtype cannot hold (a forged median of
        1e300 in float32, an input of 1e300 scaled) is refused, naming the input and its row (``start``: the
        part's first row among the caller's), never cast to inf."""
        with np.errstate(over="ignore", invalid="ignore"):
            a0 = np.ascontiguousarray(part, dtype=dtype)
        bad = ~np.isfinite(a0)
        if bad.any():
            row, column = np.argwhere(bad)[0]
            names = self.feature_names or []
            name = names[column] if column < len(names) else f"input {column + 1}"
            raise DataError(f"row {start + row + 1}: the model's preprocessing makes {name!r} "
                            f"{float(part[row, column]):.3g}, out of the range the network's {np.dtype(dtype).name} "
                            "holds; the input or the model's record is out of range")
        return a0

    def after_scaling(self, X: np.ndarray, dtype: npt.DTypeLike = np.float64) -> np.ndarray:
        """The stages after the feature scaler on rows it has scaled (the CLI scales its training arrays in
        place, then widens them by the piecewise-linear encoding here), a^0 written in ``dtype`` (the network's)
        a part of about ROW_BYTES at a time, so that the wide encoding is never held in float64 whole; X itself
        when there are none. A value ``dtype`` cannot hold becomes inf, which the fit refuses naming its row."""
        scaler = self.scaler
        later = self.stages[self.stages.index(scaler) + 1:] if scaler is not None else []
        if not later:
            return X
        width = later[-1].width if isinstance(later[-1], PiecewiseLinear) else len(later[-1].fitted()[0])
        out = np.empty((len(X), width), dtype=dtype)
        step = max(1, ROW_BYTES // (8 * max(width, 1)))
        for start in range(0, len(X), step):
            part = X[start:start + step]
            for stage in later:
                part = _applied(stage, part, in_place=True, start=start)
            with np.errstate(over="ignore"):
                out[start:start + step] = part
        return out

    def inputs(self, X: Inputs, dtype: npt.DTypeLike = np.float64) -> np.ndarray:
        """a^0 for raw inputs X, whole (``encoded``'s parts joined)."""
        parts = list(self.encoded(X, dtype))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def training_data(self, X: Inputs, y: ArrayLike | None, validation_data: tuple | None = None) -> tuple:
        """(a^0, network targets, validation pair likewise) for a fit on raw data with these fitted stages."""
        if validation_data is not None:
            X_val, y_val = validation_data[0], validation_data[1]
            validation_data = (self.inputs(X_val), self.targets(y_val), *validation_data[2:])
        return self.inputs(X), self.targets(y), validation_data

    def targets(self, y: ArrayLike | None) -> Any:  # y as given when there is no target stage
        """A regression target in its units -> what the network learns (scaled); labels unchanged."""
        if self.target is None or y is None:
            return y
        y = np.asarray(y, dtype=np.float64)
        return self.target.transform(_columns(y)).reshape(y.shape)

    def outputs(self, a_L: np.ndarray) -> np.ndarray:
        """A regressor's a^L back in the target's units (the inverse of ``targets``)."""
        if self.target is None:
            return a_L
        return self.target.inverse_transform(_columns(a_L)).reshape(a_L.shape)

    def describe(self) -> list[str]:
        """One line per stage, for ``deltaprop info`` and the summary."""
        lines = []
        for stage in self.stages:
            if isinstance(stage, TableEncoder):
                lines.append(f"table: {len(stage.columns)} column(s) by name -> {stage.width} inputs")
            elif isinstance(stage, PiecewiseLinear):
                lines.append(f"piecewise-linear: {stage.n_in} inputs -> {stage.width} inputs, {stage.bins} bins ("
                             f"{stage.n_encoded} input(s) encoded by quantile bins, clipped to the training range; "
                             f"{stage.n_in - stage.n_encoded} 0/1 or few-valued passed as they are)")
            else:
                lines.append(f"scaling: {stage.kind} over {len(stage.shift)} input(s)")
        if self.target is not None:
            lines.append(f"target scaling: {self.target.kind} (predictions in the target's units)")
        return lines


def _applied(stage, X, in_place: bool, start: int = 0):
    """One stage on X: a scaler in place where X is what an earlier stage made (never the caller's), a piecewise-
    linear encoding told X's first row number for its messages."""
    if isinstance(stage, Scaler):
        return stage.transform(X, in_place=in_place)
    if isinstance(stage, PiecewiseLinear):
        return stage.transform(X, start)
    return stage.transform(X)


def _columns(y: np.ndarray) -> np.ndarray:
    """y as (m, k) columns: a vector as one column (also of no rows, which reshape(0, -1) cannot size)."""
    return y.reshape(-1, 1) if y.ndim == 1 else y.reshape(y.shape[0], -1)


def _listed(names: list[str], most: int = 12) -> str:
    shown = ", ".join(map(repr, names[:most]))
    return shown + (f", ... ({len(names)} in all)" if len(names) > most else "")
