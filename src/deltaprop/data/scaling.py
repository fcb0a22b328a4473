"""Feature scaling fitted on training data only, stored with the model as JSON."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, DataError
from .moments import Moments

KINDS = ("standard", "minmax", "none")


class Scaler:
    """x' = (x - shift) / scale per feature: standard (mean, std) or minmax (min, max - min).

    Constant features get scale 1, so they map to 0 instead of dividing by zero.
    """

    def __init__(self, kind: str = "standard"):
        if kind not in KINDS:
            raise ConfigError(f"scaling must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        self.shift: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def fit(self, X: np.ndarray) -> Scaler:
        """The per-feature statistics of X (m, n), in float64, without a float64 copy of X."""
        X = np.asarray(X)
        if X.dtype.kind not in "biuf" or X.ndim != 2:
            raise DataError(f"the scaler needs a numeric 2-D X, got dtype {X.dtype} and shape {X.shape}")
        if self.kind == "none":
            self.shift, self.scale = np.zeros(X.shape[1]), np.ones(X.shape[1])
        else:  # all rows as one chunk: their two-pass moments (moments.py, shared with the streamed scalers)
            with np.errstate(over="ignore", invalid="ignore"):  # (an overflow is refused just below, by name)
                self.shift, self.scale = Moments().add(X).affine(self.kind, X.shape[1])
        bad = ~(np.isfinite(self.shift) & np.isfinite(self.scale))
        if bad.any():  # a model file holding them could never be loaded again (its record is checked)
            raise DataError(f"input {int(np.argmax(bad)) + 1}: its values are too large to {self.kind}-scale in "
                            "float64 (their mean or spread overflows); divide the column by a power of ten, or "
                            "use --scaling robust (medians and quartiles)")
        return self

    def fitted(self) -> tuple[np.ndarray, np.ndarray]:
        """The (shift, scale) arrays; a ConfigError before ``fit`` or ``from_config`` has set them."""
        if self.shift is None or self.scale is None:
            raise ConfigError("the scaler is not fitted")
        return self.shift, self.scale

    def leave(self, columns) -> Scaler:
        """Scale the given feature columns by 1 and shift them by 0: they pass through unchanged."""
        if self.shift is None or self.scale is None:
            raise ConfigError("the scaler is not fitted")
        self.shift[list(columns)], self.scale[list(columns)] = 0.0, 1.0
        return self

    def transform(self, X: np.ndarray, in_place: bool = False) -> np.ndarray:
        """(X - shift) / scale, keeping a float X's dtype (others become float64).

        ``in_place``: overwrite X itself when it is a float array (the CLI does, on data it
        just loaded), so that scaling needs no second copy of the data.
        """
        if self.shift is None or self.scale is None:
            raise ConfigError("the scaler is not fitted")
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.shift.shape[0]:
            got = X.shape[1] if X.ndim == 2 else X.shape
            raise DataError(f"X has {got} features per sample, the model expects {self.shift.shape[0]}")
        if X.dtype.kind == "f":
            out = X if in_place and X.flags.writeable else X.copy()
        else:
            out = X.astype(np.float64)
        out -= self.shift.astype(out.dtype)
        out /= self.scale.astype(out.dtype)
        return out

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        """X * scale + shift: values back in the units the scaler was fitted on (float64)."""
        if self.shift is None or self.scale is None:
            raise ConfigError("the scaler is not fitted")
        return np.asarray(X, dtype=np.float64) * self.scale + self.shift

    def to_config(self) -> dict:
        if self.shift is None or self.scale is None:
            raise ConfigError("the scaler is not fitted")
        return {"kind": self.kind, "shift": self.shift.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_config(cls, config: dict) -> Scaler:
        try:
            scaler = cls(config["kind"])
            scaler.shift = np.asarray(config["shift"], dtype=np.float64)
            scaler.scale = np.asarray(config["scale"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"invalid scaler settings in the model file ({exc})") from None
        if scaler.shift.ndim != 1 or scaler.shift.shape != scaler.scale.shape or not np.all(scaler.scale > 0) \
                or not (np.isfinite(scaler.shift).all() and np.isfinite(scaler.scale).all()):
            raise DataError("invalid scaler settings in the model file (shapes, or scales that are not finite "
                            "and positive, or shifts that are not finite)")
        return scaler
