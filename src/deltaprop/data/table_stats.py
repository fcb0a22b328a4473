"""TableStats: what a TableEncoder needs, gathered from a table's chunks in bounded memory.

The kinds of the columns (numeric, boolean, categorical, dropped) are decided on the first
chunk, as TableEncoder decides them on a training table. Then, chunk by chunk: the count of
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
from .columns import TableEncoder, _labels, _numbers
from .scaling import Scaler

CATEGORY_CAP = 100_000  # distinct labels counted per column before a column is refused as an identifier
SAMPLE = 100_000  # values kept per numeric column for its median


class TableStats:
    """Per-column statistics of a streamed table; ``finish`` gives the fitted encoder and scaler."""

    def __init__(self, first: pd.DataFrame, encoder: TableEncoder, seed: int = 0):
        self.encoder = encoder.fit(first)
        self.rng = np.random.default_rng([seed, 7])
        self.counts = {c.name: Counter() for c in self.encoder.columns if c.kind == "categorical"}
        self.missing = {c.name: 0 for c in self.encoder.columns}
        self.samples = {c.name: np.empty(0) for c in self.encoder.columns if c.kind != "categorical"}
        self.seen = {name: 0 for name in self.samples}
        self.moments = {name: _Moments() for name in self.samples}

    def add(self, frame: pd.DataFrame) -> None:
        for column in self.encoder.columns:
            if column.name not in frame.columns:
                raise DataError(f"a chunk lacks column {column.name!r}")
            series = frame[column.name]
            self.missing[column.name] += int(series.isna().sum())
            if column.kind == "categorical":
                counts = self.counts[column.name]
                counts.update(_labels(series).dropna().tolist())
                if len(counts) > CATEGORY_CAP:
                    raise DataError(f"column {column.name!r} has more than {CATEGORY_CAP} distinct values: an "
                                    "identifier rather than categories; drop it")
            else:
                values = _numbers(series, column.name)
                values = values[~np.isnan(values)]
                self.moments[column.name].add(values)
                self._sample(column.name, values)

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
        shift, scale = [], []
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
            mean, std, low, high = self.moments[column.name].with_filled(missing, column.median)
            if column.kind == "numeric" and scaling == "standard":
                shift.append(mean), scale.append(std if std > 0 else 1.0)
            elif column.kind == "numeric" and scaling == "minmax":
                shift.append(low), scale.append(high - low if high > low else 1.0)
            else:
                shift.append(0.0), scale.append(1.0)
            if column.indicator:
                shift.append(0.0), scale.append(1.0)
        scaler = Scaler(scaling)
        scaler.shift, scaler.scale = np.array(shift), np.array(scale)
        return self.encoder, scaler


class _Moments:
    """Count, mean, M2, min and max of a column's present values (pairwise merges, float64)."""

    def __init__(self):
        self.n, self.mean, self.m2, self.low, self.high = 0, 0.0, 0.0, np.inf, -np.inf

    def add(self, values: np.ndarray) -> None:
        k = len(values)
        if not k:
            return
        mean = float(values.mean())
        m2 = float(((values - mean) ** 2).sum())
        self._merge(k, mean, m2)
        self.low, self.high = min(self.low, float(values.min())), max(self.high, float(values.max()))

    def _merge(self, k: int, mean: float, m2: float) -> None:
        n = self.n + k
        delta = mean - self.mean
        self.mean += delta * k / n
        self.m2 += m2 + delta * delta * self.n * k / n
        self.n = n

    def with_filled(self, missing: int, value: float) -> tuple[float, float, float, float]:
        """(mean, std, min, max) once ``missing`` more cells hold ``value`` (the imputed median)."""
        if missing:
            self._merge(missing, value, 0.0)
            self.low, self.high = min(self.low, value), max(self.high, value)
        return self.mean, float(np.sqrt(self.m2 / max(self.n, 1))), self.low, self.high
