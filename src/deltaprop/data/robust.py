"""Robust feature scaling: median and interquartile range, then a smooth clip (RealMLP's "robust scale +
smooth clip", Holzmüller et al. 2024), fitted on training data only and stored with the model as JSON.

    x' = (x - median) / s,    s = q75 - q25   (or (max - min) / 2 where that is 0, or 1 for a constant column)
    x'' = x' / sqrt(1 + (x' / B)^2)           (B = 3: about x' where |x'| << 3, never beyond +-3)

Why: a standard scaler divides by a standard deviation that one wild training value inflates, and it
passes a wild value at prediction time straight on (31.8 std out stays 31.8): a network extrapolates
that linearly and predicts far outside anything it saw. The median and IQR ignore the tails, and the
smooth clip bounds every input the network sees while keeping the order of values and a nonzero slope.

The clip has no inverse beyond +-B, so a regression target is scaled without it (``clip=False``):
the network's output is unbounded, and the inverse x'/sqrt(1 - (x'/B)^2) would send an output of 2.99
to a huge value and one of 3 nowhere; a clipped target would also change what the squared error weighs.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError, DataError
from .scaling import KINDS, Scaler

BOUND = 3.0  # RealMLP's: values up to about 2 std pass nearly unchanged, none leaves +-3
COLUMN_BYTES = 2**24  # the quantiles are taken over this many bytes of columns at a time (float64)


class RobustScaler(Scaler):
    """Median and IQR scaling, then the smooth clip on the features marked ``clip`` (all, unless ``leave``
    says otherwise, or none with ``clip=False``)."""

    def __init__(self, clip: bool = True, bound: float = BOUND):
        if not (isinstance(bound, (int, float)) and math.isfinite(bound) and bound > 0):
            raise ConfigError(f"the clipping bound must be a finite number > 0, got {bound!r}")
        self.kind, self.bound, self.clip_all = "robust", float(bound), bool(clip)
        self.shift = self.scale = None
        self.clip: np.ndarray | None = None  # one flag per feature once fitted

    def fitted_clip(self) -> np.ndarray:
        """The clip flags, one per feature; a ConfigError before ``fit`` or ``from_config`` has set them."""
        if self.clip is None:
            raise ConfigError("the scaler is not fitted")
        return self.clip

    def fit(self, X: np.ndarray) -> RobustScaler:
        """Median and scale of each column of X (m, n), in float64, a block of columns at a time."""
        X = np.asarray(X)
        if X.dtype.kind not in "biuf" or X.ndim != 2 or X.shape[0] == 0:
            raise DataError(f"the robust scaler needs a numeric 2-D X with rows, got dtype {X.dtype} and shape "
                            f"{X.shape}")
        n = X.shape[1]
        self.shift, self.scale = np.zeros(n), np.ones(n)
        step = max(1, COLUMN_BYTES // (8 * X.shape[0]))
        for start in range(0, n, step):
            block = X[:, start:start + step].astype(np.float64)
            bad = ~np.isfinite(block)
            if bad.any():
                row, column = np.argwhere(bad)[0]
                raise DataError(f"feature {start + column + 1}: row {row + 1} is {block[row, column]}; the robust "
                                "scaler needs finite values")
            self.shift[start:start + step], self.scale[start:start + step] = _median_and_spread(block)
        self.clip = np.full(n, self.clip_all)
        return self

    def leave(self, columns) -> RobustScaler:
        """The given columns pass through unchanged: not shifted, not scaled, not clipped (0/1 inputs)."""
        super().leave(columns)
        self.fitted_clip()[list(columns)] = False
        return self

    def transform(self, X: np.ndarray, in_place: bool = False) -> np.ndarray:
        """(X - median) / scale, then the smooth clip on the clipped columns (a float X keeps its dtype)."""
        out = super().transform(X, in_place)
        clip = self.fitted_clip()
        if clip.any():
            columns = np.flatnonzero(clip)
            out[:, columns] = smooth_clip(out[:, columns], self.bound)
        return out

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        """Back in the fitted units; only an unclipped stage (a target's) has an inverse everywhere."""
        if self.clip is not None and self.clip.any():
            raise ConfigError("a clipping robust scaler has no inverse beyond its bound; a target's is fitted "
                              "with clip=False")
        return super().inverse_transform(X)

    def to_config(self) -> dict:
        return {**super().to_config(), "clip": self.fitted_clip().tolist(), "bound": self.bound}

    @classmethod
    def from_config(cls, config: dict) -> RobustScaler:
        """Checked as the scaler's (shapes; finite shifts; finite positive scales), plus one clip flag per
        feature and a finite positive bound."""
        if set(config) != {"kind", "shift", "scale", "clip", "bound"} or config["kind"] != "robust":
            raise DataError("invalid robust scaler settings in the model file: it needs exactly kind 'robust', "
                            "shift, scale, clip and bound")
        shift, scale = Scaler.from_config({**config, "kind": KINDS[0]}).fitted()  # the shift and scale rules, once
        clip, bound = config["clip"], config["bound"]
        if not (isinstance(clip, list) and len(clip) == len(shift) and all(isinstance(c, bool) for c in clip)):
            raise DataError("invalid robust scaler settings in the model file: 'clip' must be one true/false per "
                            "feature")
        try:
            scaler = cls(bound=bound)
        except ConfigError as exc:
            raise DataError(f"invalid robust scaler settings in the model file: {exc}") from None
        scaler.shift, scaler.scale = shift, scale
        scaler.clip = flags = np.array(clip, dtype=bool)
        scaler.clip_all = bool(flags.all())
        return scaler


def _median_and_spread(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column: the median, and the IQR, else half the range (a column mostly of one value, as
    pytabkit does), else 1 (a constant column: its training values map to 0, as the standard scaler's)."""
    low, median, high = np.quantile(block, [0.25, 0.5, 0.75], axis=0)
    spread = high - low
    half_range = (block.max(axis=0) - block.min(axis=0)) / 2
    spread = np.where(spread > 0, spread, half_range)
    return median, np.where(spread > 0, spread, 1.0)


def smooth_clip(x: np.ndarray, bound: float = BOUND) -> np.ndarray:
    """x / sqrt(1 + (x / bound)^2), written bound * t / hypot(1, t) with t = x / bound so that a huge x
    gives +-bound instead of overflowing to inf / inf (NaN); keeps x's float dtype."""
    with np.errstate(invalid="ignore"):  # an infinite x gives NaN, which the pipeline refuses naming the input
        t = x / np.asarray(bound, dtype=x.dtype)
        return np.asarray(bound, dtype=x.dtype) * t / np.hypot(np.asarray(1, dtype=x.dtype), t)


def feature_scaler(kind: str) -> Scaler:
    """The --scaling of a model's features: standard, minmax, none (Scaler) or robust (RobustScaler)."""
    if kind == "robust":
        return RobustScaler()
    if kind not in KINDS:
        raise ConfigError(f"scaling must be one of {', '.join(KINDS + ('robust',))}, got {kind!r}")
    return Scaler(kind)
