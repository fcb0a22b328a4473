"""Moments: count, mean, variance, min and max per column, gathered a chunk of rows at a time.

The one place deltaprop computes feature statistics: the in-memory scaler (``Scaler.fit``: all rows as
one chunk), a stream's first pass (``Stream.prepare``: chunk by chunk) and a streamed table's numeric
columns (``TableStats``: each column's present values) all add their rows here, so that a scaler
fitted on the same rows in memory and streamed agrees to rounding, and a fix to the rule is made once.

A chunk's own moments take two passes over float64 blocks of about BLOCK_BYTES (the mean, then the
squared deviations from it: no cancellation, and never a float64 copy of the whole chunk); chunks are
merged by Chan, Golub and LeVeque's pairwise update,

    n = n_a + n_b,   delta = mean_b - mean_a,
    mean = mean_a + delta n_b / n,   M2 = M2_a + M2_b + delta^2 n_a n_b / n,   variance = M2 / n,

exact in real arithmetic, and a single chunk's result is its two-pass moments bit for bit (what the
in-memory scaler always computed, so models trained in memory keep their scaling to the last bit).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

BLOCK_BYTES = 2**20  # float64 blocks of about 1 MB when summing over the rows


def blocks(X: np.ndarray) -> Iterator[np.ndarray]:
    """X's rows in float64 blocks of about BLOCK_BYTES (never a float64 copy of all of X)."""
    rows = max(1, BLOCK_BYTES // (8 * max(X.shape[1], 1)))
    for start in range(0, X.shape[0], rows):
        yield X[start:start + rows].astype(np.float64)


class Moments:
    """Count ``n``, ``mean``, sum of squared deviations ``m2``, ``low`` (min) and ``high`` (max) per column,
    in float64; ``add`` merges a chunk of rows (m, n_columns), or of values (m,) of a single column."""

    def __init__(self):
        self.n = 0
        self.mean: np.ndarray | None = None  # None until a chunk with rows is added
        self.m2: np.ndarray | None = None
        self.low: np.ndarray | None = None
        self.high: np.ndarray | None = None

    def add(self, X: np.ndarray) -> Moments:
        """Merge the rows of X (m, n) (1-D values: one column); a chunk without rows changes nothing."""
        X = np.asarray(X)
        X = X.reshape(len(X), 1) if X.ndim == 1 else X
        if X.shape[0]:
            self._merge(X.shape[0], *_chunk_moments(X))
        return self

    def fill(self, k: int, value: float) -> Moments:
        """Merge ``k`` more values all equal to ``value`` (the cells a streamed table's imputation fills)."""
        if k:
            width = 1 if self.mean is None else len(self.mean)
            filled = np.full(width, float(value))
            self._merge(k, filled, np.zeros(width), filled, filled)
        return self

    def _merge(self, k: int, mean: np.ndarray, m2: np.ndarray, low: np.ndarray, high: np.ndarray) -> None:
        """Chan et al.'s pairwise update (module docstring); the first chunk's moments are taken as they are."""
        if self.mean is None or self.m2 is None or self.low is None or self.high is None:
            self.n, self.mean, self.m2, self.low, self.high = k, mean, m2, low, high
            return
        n, delta = self.n + k, mean - self.mean
        self.mean = self.mean + delta * (k / n)
        self.m2 = self.m2 + m2 + delta * delta * (self.n * k / n)
        self.n = n
        self.low, self.high = np.minimum(self.low, low), np.maximum(self.high, high)

    def _fitted(self, width: int | None) -> Moments:
        """Itself, with zeros for a column set that saw no rows (``width`` columns: a scaler of 0 and 1)."""
        if self.mean is None:
            zeros = np.zeros(width or 0)
            self.mean, self.m2, self.low, self.high = zeros, zeros.copy(), zeros.copy(), zeros.copy()
        return self

    def variance(self, width: int | None = None) -> np.ndarray:
        """The population variance M2 / n per column (zeros where no row came)."""
        self._fitted(width)
        assert self.m2 is not None
        return self.m2 / max(self.n, 1)

    def std(self, width: int | None = None) -> np.ndarray:
        return np.sqrt(self.variance(width))

    def affine(self, kind: str, width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(shift, scale) of a scaler of ``kind``: standard (mean, std), minmax (min, max - min) or none (0, 1);
        a column whose scale is 0 (constant) gets 1, so that it maps to 0 rather than dividing by zero."""
        self._fitted(width)
        assert self.mean is not None and self.low is not None and self.high is not None
        if kind == "standard":
            shift, scale = self.mean, self.std()
        elif kind == "minmax":
            shift, scale = self.low, self.high - self.low
        else:
            shift, scale = np.zeros_like(self.mean), np.ones_like(self.mean)
        return shift, np.where(scale > 0, scale, 1.0)


def _chunk_moments(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mean, M2, min, max) of the columns of X (m, n), m >= 1: two passes over float64 blocks."""
    total = np.zeros(X.shape[1])
    low, high = None, None
    for block in blocks(X):
        total = total + block.sum(axis=0)
        b_low, b_high = block.min(axis=0), block.max(axis=0)
        low = b_low if low is None else np.minimum(low, b_low)
        high = b_high if high is None else np.maximum(high, b_high)
    mean = total / X.shape[0]
    m2 = np.zeros(X.shape[1])
    for block in blocks(X):
        block -= mean
        m2 += np.einsum("ij,ij->j", block, block)
    assert low is not None and high is not None
    return mean, m2, low, high
