"""TableStats: what a TableEncoder needs, gathered from a table's chunks in bounded memory.

The kinds of the columns (numeric, boolean, categorical, dropped) are decided on the first
chunk, as TableEncoder decides them on a training table; a column with no values there is
decided on the first chunk where it has some (the rows before it count as missing), and is
dropped as having no values only if it has none in the whole stream; a boolean column that
later holds other numbers becomes numeric. Every row's numbers are checked, held-out rows
included, an error naming the file's data row. Then, chunk by chunk: the count of
every category label (up to CATEGORY_CAP distinct labels a column; the ``max_categories``
most frequent are kept), the missing cells of every column, and for numeric columns a
uniform sample of at most SAMPLE values (reservoir sampling, seeded) whose median is the
imputed value (the exact median when the column has fewer values), and the exact mean and
variance of the present values. The scaler of the encoded inputs follows from those
without a second pass: a numeric input is the present values plus the missing ones set to
the median; one-hot, indicator and boolean inputs are left unscaled, as in memory.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from ..errors import DataError
from .columns import TableEncoder, _is_bool, _labels, _numbers
from .moments import Moments
from .scaling import Scaler

CATEGORY_CAP = 100_000  # distinct labels counted per column before a column is refused as an identifier
SAMPLE = 100_000  # values kept per numeric column for its median


class TableStats:
    """Per-column statistics of a streamed table; ``finish`` gives the fitted encoder and scaler."""

    def __init__(self, first: pd.DataFrame, train: np.ndarray, rows: np.ndarray, encoder: TableEncoder,
                 seed: int = 0):
        self.order = {str(c): j for j, c in enumerate(first.columns)}
        self.encoder = encoder.fit(first[train], rows=rows[train], whole=False)
        decided = {c.name for c in self.encoder.columns} | {name for name, _ in self.encoder.dropped}
        self.pending = [name for name in self.order if name not in decided]  # no values in the first chunk
        self.rng = np.random.default_rng([seed, 7])
        self.counts: dict[str, Counter] = {}  # a categorical column's values and how often each came
        self.missing: dict[str, int] = {}
        self.samples: dict[str, np.ndarray] = {}  # a numeric column's reservoir sample (for its median)
        self.seen: dict[str, int] = {}
        self.moments: dict[str, Moments] = {}
        self.rows = 0  # training rows added so far
        for column in self.encoder.columns:
            self._track(column, missing=0)

    def _track(self, column, missing: int) -> None:
        """Start the statistics of a column, with ``missing`` training rows before it."""
        self.missing[column.name] = missing
        if column.kind == "categorical":
            self.counts[column.name] = Counter()
        else:
            self.samples[column.name], self.seen[column.name] = np.empty(0), 0
            self.moments[column.name] = Moments()

    def add(self, frame: pd.DataFrame, train: np.ndarray, rows: np.ndarray) -> None:
        """A chunk: its training rows' (``train``, a mask) statistics; every row's numbers checked (``rows``: the
        chunk's data row numbers in its file, for the messages)."""
        self._decide(frame, train, rows)
        for column in self.encoder.columns:
            if column.name not in frame.columns:
                raise DataError(f"a chunk lacks column {column.name!r}")
            series = frame[column.name]
            self.missing[column.name] += int(series[train].isna().sum())
            if column.kind == "categorical":
                counts = self.counts[column.name]
                counts.update(_labels(series[train]).dropna().tolist())
                if len(counts) > CATEGORY_CAP:
                    raise DataError(f"column {column.name!r} has more than {CATEGORY_CAP} distinct values: an "
                                    "identifier rather than categories; drop it")
                continue
            if column.kind == "boolean" and series.notna().any() and not _is_bool(series):
                column.kind = "numeric"  # True/False at first, other numbers later: scaled as a number
            values = _numbers(series, column.name, rows)[train]
            values = values[~np.isnan(values)]
            self.moments[column.name].add(values)
            self._sample(column.name, values)
        self.rows += int(np.count_nonzero(train))

    def _decide(self, frame: pd.DataFrame, train: np.ndarray, rows: np.ndarray) -> None:
        """The kinds of the pending columns that have values in this chunk's training rows."""
        for name in [n for n in self.pending if n in frame.columns and frame[n][train].notna().any()]:
            self.pending.remove(name)
            column = self.encoder.decide(name, frame[name][train], rows[train])
            if column is not None:
                self.encoder.columns.sort(key=lambda c: self.order[c.name])  # the table's order
                self._track(column, missing=self.rows)

    def _sample(self, name: str, values: np.ndarray) -> None:
        """Reservoir sampling (algorithm R, vectorised): each value seen is kept with probability SAMPLE / seen."""
        kept, seen = self.samples[name], self.seen[name]
        room = max(0, SAMPLE - len(kept))
        kept = np.concatenate([kept, values[:room]])
        rest = values[room:]
        if len(rest):
            positions = seen + room + np.arange(1, len(rest) + 1)
            slots = (self.rng.random(len(rest)) * positions).astype(np.int64)
            take = slots < SAMPLE
            kept[slots[take]] = rest[take]  # later values overwrite earlier ones, as the sequential algorithm does
        self.samples[name], self.seen[name] = kept, seen + len(values)

    def finish(self, scaling: str) -> tuple[TableEncoder, Scaler]:
        """The encoder with the whole stream's categories, medians and indicators, and the scaler of its inputs."""
        for name in self.pending:  # no values in the whole stream
            if name in self.encoder.numeric + self.encoder.categorical:
                raise DataError(f"column {name!r} has no values in the whole stream (it is named as "
                                f"{'numeric' if name in self.encoder.numeric else 'categorical'})")
            self.encoder.decide(name, pd.Series([np.nan]))
        self.encoder.check_columns_left()
        shift: list[float] = []
        scale: list[float] = []
        for column in self.encoder.columns:
            missing = self.missing[column.name]
            if column.kind == "categorical":
                ranked = sorted(self.counts[column.name].items(), key=lambda item: (-item[1], item[0]))
                column.categories = sorted(c for c, _ in ranked[:self.encoder.max_categories])
                column.missing_level = missing > 0
                shift += [0.0] * len(column.outputs())
                scale += [1.0] * len(column.outputs())
                continue
            sample = self.samples[column.name]
            if not len(sample):
                raise DataError(f"column {column.name!r} has no values in the whole stream")
            column.median, column.indicator = float(np.median(sample)), missing > 0
            # the present values and the missing ones set to the median: the encoded input's moments
            moments = self.moments[column.name].fill(missing, column.median)
            affine = moments.affine(scaling if column.kind == "numeric" else "none", 1)
            shift.append(float(affine[0][0]))
            scale.append(float(affine[1][0]))
            if column.indicator:
                shift.append(0.0)
                scale.append(1.0)
        scaler = Scaler(scaling)
        scaler.shift, scaler.scale = np.array(shift), np.array(scale)
        return self.encoder, scaler
