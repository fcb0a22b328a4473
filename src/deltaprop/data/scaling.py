"""Feature scaling fitted on training data only, stored with the model as JSON."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, DataError

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
        X = np.asarray(X, dtype=np.float64)
        if self.kind == "standard":
            self.shift, scale = X.mean(axis=0), X.std(axis=0)
        elif self.kind == "minmax":
            self.shift, scale = X.min(axis=0), X.max(axis=0) - X.min(axis=0)
        else:
            self.shift, scale = np.zeros(X.shape[1]), np.ones(X.shape[1])
        self.scale = np.where(scale > 0, scale, 1.0)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        if self.shift is None:
            raise ConfigError("the scaler is not fitted")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.shift.shape[0]:
            got = X.shape[1] if X.ndim == 2 else X.shape
            raise DataError(f"X has {got} features per sample, the model expects {self.shift.shape[0]}")
        return (X - self.shift) / self.scale

    def to_config(self) -> dict:
        return {"kind": self.kind, "shift": self.shift.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_config(cls, config: dict) -> Scaler:
        try:
            scaler = cls(config["kind"])
            scaler.shift = np.asarray(config["shift"], dtype=np.float64)
            scaler.scale = np.asarray(config["scale"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"invalid scaler settings in the model file ({exc})") from None
        if scaler.shift.ndim != 1 or scaler.shift.shape != scaler.scale.shape or not np.all(scaler.scale > 0):
            raise DataError("invalid scaler settings in the model file (shapes or scales)")
        return scaler
