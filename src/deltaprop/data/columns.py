"""A table's columns as the numbers a network takes: types decided on the training rows, saved as JSON.

``TableEncoder`` looks at each column of the training part once and decides what it is:

- numeric: kept; a missing value becomes the training median, plus a 0/1 column saying it was missing
  (only where training had missing values);
- boolean: 1/0, then as numeric;
- categorical (text, or a column named in ``categorical``): one 0/1 column per category seen in
  training (the ``max_categories`` most frequent), a "missing" level of its own where training had
  missing values; a category never seen in training becomes all zeros and is counted in ``unseen``;
- dropped: named in ``drop``; an unnamed or pandas index column; a text column whose values are
  mostly distinct (more distinct values than half its rows: a name or an identifier, whose one-hot
  columns could only memorise rows); a column with no values at all.

Columns are matched by name: ``transform`` takes them in any order, ignores extra ones and refuses a
missing one, naming it. Everything fitted is plain JSON (``to_config``), so a saved model rebuilds
the encoder exactly, without pickle.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError
from .tables import as_frame, is_index_column

MISSING = "<missing>"
ID_DISTINCT = 0.5  # a text column with more distinct values than this fraction of its rows is an identifier
ID_MIN_VALUES = 20  # ... and at least this many (a 5-row table's text is not an identifier)
NO_VALUES = "no values"


@dataclass
class Column:
    """One kept column: its kind and what was fitted for it."""

    name: str
    kind: str  # "numeric", "boolean" or "categorical"
    median: float | None = None
    indicator: bool = False  # a was-missing 0/1 column follows the value
    categories: list = field(default_factory=list)
    missing_level: bool = False

    def width(self) -> int:
        """How many network inputs this column becomes (``len(outputs())`` without building the names)."""
        if self.kind == "categorical":
            return len(self.categories) + bool(self.missing_level)
        return 1 + bool(self.indicator)

    def outputs(self) -> list[str]:
        """The names of the network inputs this column becomes."""
        if self.kind == "categorical":
            return [f"{self.name}={c}" for c in self.categories] + ([f"{self.name}={MISSING}"] if self.missing_level
                                                                   else [])
        return [self.name] + ([f"{self.name} missing"] if self.indicator else [])


class TableEncoder:
    """Fit on a training table, then ``transform`` any table with those columns into a float64 X."""

    def __init__(self, categorical=(), numeric=(), drop=(), max_categories: int = 100):
        self.categorical, self.numeric, self.drop = list(categorical), list(numeric), list(drop)
        self.max_categories = int(max_categories)
        self.columns: list[Column] = []
        self.dropped: list[tuple[str, str]] = []  # (name, why)
        self.unseen: dict[str, int] = {}  # rows per column whose category training never saw (last transform)
        self._indexes: dict[str, tuple] = {}  # name -> (categories, their pd.Index): hashed once, not per part

    # --- fitting --------------------------------------------------------------
    def fit(self, table, target: str | None = None, rows: np.ndarray | None = None,
            whole: bool = True) -> TableEncoder:
        """Decide each column's kind on ``table`` (the training rows) and fit what it needs.

        ``whole`` False: the table is a stream's first chunk (``rows``: its data row numbers in its file, for the
        messages); a column with no values in it is left undecided, for table_stats.py to decide where its values
        appear. A column named numeric or categorical that has no values at all is refused."""
        frame = as_frame(table)
        names = [str(c) for c in frame.columns]
        unknown = sorted(set(self.categorical + self.numeric + self.drop) - set(names))
        if unknown:
            raise DataError(f"no column(s) {unknown} in the table; columns: {', '.join(names)}")
        both = sorted(set(self.categorical) & set(self.numeric))
        if both:
            raise DataError(f"column(s) {both} cannot be both categorical and numeric")
        self.columns, self.dropped = [], []
        for name, series in zip(names, (frame.iloc[:, j] for j in range(frame.shape[1])), strict=True):
            undecided = not whole and name not in self.drop and series.isna().all()
            if name != target and not undecided:
                self.decide(name, series, rows)
        if whole:
            self.check_columns_left()
        return self

    def check_columns_left(self) -> None:
        if not self.columns:
            raise DataError("no feature columns are left to train on (all were dropped or are the target)")

    def decide(self, name: str, series: pd.Series, rows: np.ndarray | None = None) -> Column | None:
        """Column ``name``'s kind, fitted on ``series`` and appended to ``columns``; or None, the reason appended
        to ``dropped``."""
        if _is_text(series) and name not in self.categorical + self.numeric + self.drop:
            _refuse_mostly_numbers(name, series, rows)  # before an identifier check would drop it quietly
        why = self._drop_reason(name, series)
        if why:
            self.dropped.append((name, why))
            return None
        self.columns.append(self._fit_column(name, series, rows))
        return self.columns[-1]

    def _drop_reason(self, name: str, series: pd.Series) -> str | None:
        if name in self.drop:
            return "--drop"
        if name in self.categorical or name in self.numeric:
            return None
        if is_index_column(name):
            return "an unnamed (index) column"
        present = series.dropna()
        if present.empty:
            return NO_VALUES
        if _is_text(series) and present.size >= ID_MIN_VALUES and present.nunique() > ID_DISTINCT * present.size:
            return f"an identifier: {present.nunique()} distinct values in {present.size} rows"
        return None

    def _fit_column(self, name: str, series: pd.Series, rows: np.ndarray | None = None) -> Column:
        missing = int(series.isna().sum())
        if name in self.categorical or (name not in self.numeric and _is_text(series) and not _is_bool(series)):
            labels = _labels(series)
            counts = labels.value_counts()
            if counts.empty:
                raise DataError(f"column {name!r} (given as categorical) has no values")
            ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:self.max_categories]
            return Column(name, "categorical", categories=sorted(c for c, _ in ranked),
                          missing_level=bool(labels.isna().any()))
        kind = "boolean" if _is_bool(series) else "numeric"
        values = _numbers(series, name, rows)
        present = values[~np.isnan(values)]
        if not len(present):
            raise DataError(f"column {name!r} (given as numeric) has no values")
        return Column(name, kind, median=float(np.median(present)), indicator=missing > 0)

    # --- transforming ---------------------------------------------------------
    def transform(self, table) -> np.ndarray:
        """X (m, n_inputs) in float64, columns found by name; unseen categories counted in ``unseen``."""
        frame = as_frame(table)
        missing = [c.name for c in self.columns if c.name not in frame.columns]
        if missing:
            raise DataError(f"the table lacks column(s) {missing} that the model was trained on; "
                            f"columns given: {', '.join(map(str, frame.columns))}")
        self.unseen = {}
        blocks = [self._column(c, frame[c.name]) for c in self.columns]
        return np.ascontiguousarray(np.concatenate(blocks, axis=1), dtype=np.float64)

    def _column(self, column: Column, series: pd.Series) -> np.ndarray:
        if isinstance(series, pd.DataFrame):
            raise DataError(f"the table has more than one column named {column.name!r}")
        if column.kind == "categorical":
            labels = _labels(series)
            codes = self._index(column).get_indexer(labels)  # -1: missing or unseen
            absent = labels.isna().to_numpy()
            out = np.zeros((len(series), column.width()))
            known = codes >= 0
            out[np.flatnonzero(known), codes[known]] = 1.0
            if column.missing_level:
                out[absent, -1] = 1.0
            unseen = int(np.count_nonzero(~known & ~absent))
            if unseen:
                self.unseen[column.name] = unseen
            return out
        if column.median is None:  # np.where would make an array of objects, not fill in a number
            raise ConfigError(f"column {column.name!r} has no median: the encoder is not fitted")
        values = _numbers(series, column.name)
        absent = np.isnan(values)
        filled = np.where(absent, column.median, values)
        return np.column_stack([filled, absent]) if column.indicator else filled[:, None]

    def _index(self, column: Column) -> pd.Index:
        """The column's categories as a pd.Index, built (and hashed) once: a table is encoded a part at a time,
        and rebuilding an index of many categories per part would cost time in proportion to parts x categories."""
        cached = self._indexes.get(column.name)
        if cached is None or cached[0] is not column.categories:
            cached = self._indexes[column.name] = (column.categories, pd.Index(column.categories, dtype=object))
        return cached[1]

    @property
    def binary_outputs(self) -> list[int]:
        """Indices of the 0/1 inputs (one-hot columns, missing indicators, booleans): feature scaling
        leaves them as they are, so a rare category does not become a large input."""
        indices: list[int] = []
        k = 0
        for c in self.columns:
            n = c.width()
            if c.kind != "numeric":
                indices += range(k, k + n)
            elif c.indicator:
                indices.append(k + 1)
            k += n
        return indices

    @property
    def feature_names(self) -> list[str]:
        return [name for c in self.columns for name in c.outputs()]

    @property
    def width(self) -> int:
        """How many network inputs the table becomes (``len(feature_names)`` without building a name per
        category: a model file may hold a million)."""
        return sum(c.width() for c in self.columns)

    def report(self) -> list[list[str]]:
        """Rows (column, kind, what was done) for the table printed at the start of training."""
        rows = []
        for c in self.columns:
            if c.kind == "categorical":
                done = f"one-hot, {len(c.categories)} categories" + (" + a missing level" if c.missing_level else "")
            else:
                done = f"missing -> median {c.median:.6g} + indicator" if c.indicator else "as is"
            rows.append([c.name, c.kind, done])
        return rows + [[name, "dropped", why] for name, why in self.dropped]

    # --- saving ---------------------------------------------------------------
    def to_config(self) -> dict:
        return {"columns": [asdict(c) for c in self.columns], "dropped": [list(d) for d in self.dropped],
                "max_categories": self.max_categories}

    @classmethod
    def from_config(cls, config: dict) -> TableEncoder:
        try:
            encoder = cls(max_categories=config["max_categories"])
            encoder.columns = [Column(**c) for c in config["columns"]]
            encoder.dropped = [(str(name), str(why)) for name, why in config["dropped"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"invalid column settings in the model file ({exc})") from None
        for c in encoder.columns:
            ok = isinstance(c.name, str) and c.kind in ("numeric", "boolean", "categorical") and (
                c.kind == "categorical" and all(isinstance(v, str) for v in c.categories)
                or c.kind != "categorical" and _finite_number(c.median))
            if not ok:
                raise DataError(f"invalid column settings in the model file (column {c.name!r})")
            c.median = float(c.median) if c.kind != "categorical" and c.median is not None else None
        return encoder


def unseen_notes(unseen: dict, rows: str = "row(s)") -> list[str]:
    """One line per column of ``unseen`` (TableEncoder.unseen: a count per column) whose ``rows`` held a
    category the training rows lack."""
    return [f"column {name!r}: {count} {rows} hold a category never seen in training (encoded as all zeros)"
            for name, count in unseen.items()]


def _finite_number(value) -> bool:
    """A JSON number that float64 holds, finite (an integer of 400 digits is not; neither is a bool)."""
    try:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))
    except OverflowError:
        return False


def _refuse_mostly_numbers(name: str, series: pd.Series, rows: np.ndarray | None = None) -> None:
    """A text column whose values are mostly numbers is a numeric column with stray text ("n/a", "12 kg"):
    taking it as categories would misread every number, so it is refused, naming a stray value."""
    present = series.dropna()
    numbers = pd.to_numeric(present, errors="coerce")
    stray = numbers.isna()
    if len(present) and stray.any() and stray.mean() < 0.5:
        mask = series.notna().to_numpy().copy()
        mask[mask] = stray.to_numpy()
        row = _first(mask, rows)
        raise DataError(f"column {name!r} holds numbers but also {int(stray.sum())} text value(s), e.g. "
                        f"{series.iloc[row]!r} at data row {_data_row(rows, row)}; mark them missing with "
                        f"--na-values, or pass --categorical {name} (or --drop {name})")


def _is_bool(series: pd.Series) -> bool:
    present = series.dropna()
    return series.dtype == bool or (not present.empty and all(isinstance(v, (bool, np.bool_)) for v in present))


def _is_text(series: pd.Series) -> bool:
    return series.dtype.kind in "OSU" or isinstance(series.dtype, pd.StringDtype)


def _labels(series: pd.Series) -> pd.Series:
    """Category labels as strings, stripped (None where missing, or empty once stripped: what the ONNX graph
    takes as missing); whole-number floats written as integers, so a column read as 3 in one file and 3.0 in
    another (it had a gap) names the same category."""
    def label(v):
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            return None
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            return str(int(v))
        return str(v).strip() or None

    return series.map(label).astype(object)


def _first(mask: np.ndarray, rows: np.ndarray | None) -> int:
    """The position of the first True of ``mask`` in file order (``rows``: the positions' data rows in their file,
    which a shuffled training split holds out of order), for a message that names the first offending row."""
    hits = np.flatnonzero(mask)
    return int(hits[0] if rows is None else hits[np.argmin(np.asarray(rows)[hits])])


def _data_row(rows: np.ndarray | None, i: int) -> int:
    """The 1-based data row of position i: in the table, or in its file when ``rows`` numbers a part of one."""
    return (i if rows is None else int(rows[i])) + 1


def _numbers(series: pd.Series, name: str, rows: np.ndarray | None = None) -> np.ndarray:
    """A numeric (or boolean) column as float64 with NaN where missing; text in it is refused (``rows``: the
    series' data row numbers in its file, for the message)."""
    if series.dtype.kind in "iufb":
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        converted = pd.to_numeric(series.map(lambda v: float(v) if isinstance(v, (bool, np.bool_)) else v),
                                  errors="coerce")
        bad = converted.isna() & series.notna()
        if bad.any():
            row = _first(bad.to_numpy(), rows)
            raise DataError(f"column {name!r} is numeric but data row {_data_row(rows, row)} holds "
                            f"{series.iloc[row]!r}; mark such cells missing with --na-values, or pass "
                            f"--categorical {name}")
        values = converted.to_numpy(dtype=np.float64, na_value=np.nan)
    infinite = np.isinf(values)
    if infinite.any():
        raise DataError(f"column {name!r} holds inf (first at data row {_data_row(rows, _first(infinite, rows))})")
    return values


def model_inputs(net, table) -> np.ndarray:
    """a^0 of a loaded table model for a raw table: its preprocessing stages (the column encoding by name, then
    the feature scaling). ``net.predict(df)`` applies them itself; this gives the network's inputs."""
    if getattr(net.pipeline, "table", None) is None:
        raise DataError("this model was not trained on a table (it has no saved column encoding)")
    return net.pipeline.inputs(table)
