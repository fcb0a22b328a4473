"""The losses' base: Loss (value and dL/da^L of the batch mean, the shortcut and crossed pairs, the checks of
targets and output activation), its compiled LossKernel, FromZ, the batch scaling with its kernel, the
probability clip and row dot the rules share, and the LOSSES registry each loss's module adds to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..activations import Activation
from ..arrays import astype, namespace, put
from ..errors import ConfigError, DataError

Array = np.ndarray

# The rules (this package's other modules): per-sample values return shape (m,); ``out`` (m, n) is scratch they
# may use, and the dL/da functions write their result into it. Without ``out`` they allocate. The two helpers
# below are theirs.


def _clip_probability(a: Array, out: Array | None = None) -> Array:
    """Keep a inside (0, 1) by the dtype's resolution so log(a), log(1 - a) stay finite."""
    if isinstance(a, np.ndarray):
        eps = np.finfo(a.dtype).eps
        return np.clip(a, eps, 1 - eps, out=out)
    xp = namespace(a)
    eps = float(xp.finfo(a.dtype).eps)
    return put(xp.clip(a, eps, 1 - eps), out)


def _rowdot(y: Array, v: Array, scratch: Array | None = None) -> Array:
    """sum_j y_j v_j for every row (the product goes into ``scratch`` when given)."""
    if isinstance(v, np.ndarray):
        return np.multiply(y, v, out=scratch).sum(axis=1)
    return namespace(v).sum(y * v, axis=1)


@dataclass(frozen=True)
class FromZ:
    """A loss after one output activation, computed from z^L: per-sample value and dL/dz^L."""

    value: Callable[[Array, Array], Array]
    delta: Callable[[Array, Array], Array]


@dataclass(frozen=True)
class LossKernel:
    """A loss's compiled form: loops in plain Python that numba compiles (the compiled training step).

    ``total(z, a, y, weights)``: sum_r w_r L_r in float64 (weights empty: w_r = 1; an array always, so that
    numba compiles each kernel once), for the pairs the compiled
    step takes: the shortcut pair, and with ``dL_da`` any output activation with an element-wise sigma'.
    ``dL_da(a, y, out)``: the per-sample dL/da^L into out (m, n_L), before batch_scale; None: the loss runs
    compiled only after its shortcut activation (delta^L = a^L - y by difference_loop).
    """

    total: Callable
    dL_da: Callable | None = None


@dataclass(frozen=True)
class Loss:
    """A named loss: per-sample value and dL/da, with an optional cancelling pair.

    ``shortcut`` names the output activation whose sigma' cancels (delta = a - y);
    ``from_z`` then computes the per-sample value stably from z. ``crossed`` holds, per
    output activation that does not cancel but saturates, the value and delta^L from z.
    ``needs_probabilities`` refuses output activations whose values leave (0, 1), and
    targets outside [0, 1]; ``rows_sum_to_one``: the shortcut a - y is the gradient only
    for target rows that sum to 1 (cross_entropy after softmax), so others are refused.
    """

    name: str
    per_sample: Callable[..., Array]  # (a, y[, out])
    per_sample_dL_da: Callable[..., Array]  # (a, y[, out])
    shortcut: str | None = None
    from_z: Callable[..., Array] | None = None  # (z, y[, out])
    needs_probabilities: bool = False
    classification: bool = False
    shortcut_total: Callable | None = None  # (ops, z, a, y, w, scratch) -> sum_i w_i L_i for the shortcut pair
    crossed: dict = field(default_factory=dict, hash=False, compare=False)
    rows_sum_to_one: bool = False
    kernel: LossKernel | None = None  # the compiled form (None: the readable step computes this loss)

    def cancels_with(self, act: Activation) -> bool:
        """True when delta^L = a^L - y exactly (the sigma' factor cancels)."""
        return act.name == self.shortcut

    def value(self, z: Array, a: Array, y: Array, act: Activation, weights: Array | None = None, *,
              scratch: Array | None = None, ops=None) -> float:
        """L averaged over the batch: sum_i w_i L_i / sum_i w_i (the plain mean without weights).

        ``scratch``, an (m, n_L) array, saves the temporaries (training passes one); with a
        backend ``ops`` (training's), the shortcut pair's sum is the backend's.
        """
        if ops is not None and self.shortcut_total is not None and self.cancels_with(act):
            return self.shortcut_total(ops, z, a, y, weights, scratch) * mean_factor(weights, z.shape[0])
        if self.cancels_with(act):
            assert self.from_z is not None, "a loss with a shortcut pair computes its value from z"
            per = self.from_z(z, y, scratch)
        elif act.name in self.crossed:
            per = self.crossed[act.name].value(z, y)
        else:
            per = self.per_sample(a, y, scratch)
        if weights is not None:
            total = np.dot(per, weights) if isinstance(per, np.ndarray) else namespace(per).vecdot(per, weights)
            return float(total) * mean_factor(weights, z.shape[0])
        return float(per.mean() if isinstance(per, np.ndarray) else namespace(per).mean(per))

    def delta_from_z(self, act: Activation, z: Array, y: Array, weights: Array | None) -> Array | None:
        """delta^L for a crossed pair, computed from z (batch-scaled), or None for other pairs."""
        pair = self.crossed.get(act.name)
        return None if pair is None else batch_scale(pair.delta(z, y), weights)

    def check_targets(self, Y: Array, act: Activation) -> None:
        """Refuse encoded targets (m, n_L) this loss cannot stand behind, naming the first bad row."""
        if not self.needs_probabilities:
            return
        outside = (Y < 0) | (Y > 1)
        if outside.any():
            row = int(np.argmax(outside.any(axis=1)))
            raise DataError(f"loss {self.name!r} needs targets in [0, 1]; row {row} of y is {Y[row].tolist()}")
        if self.rows_sum_to_one and self.cancels_with(act):
            sums = Y.sum(axis=1, dtype=np.float64)
            off = np.abs(sums - 1) > 4 * Y.shape[1] * np.finfo(Y.dtype).eps
            if off.any():
                row = int(np.argmax(off))
                raise DataError(
                    f"cross_entropy after softmax needs each target row to sum to 1 (one class, or soft "
                    f"labels that are a distribution); row {row} of y sums to {sums[row]:.6g}. For several "
                    f"labels per sample use sigmoid outputs with binary_cross_entropy; to leave a row out "
                    f"give it sample_weight 0")

    def dL_da(self, a: Array, y: Array, weights: Array | None = None, out: Array | None = None) -> Array:
        """dL/da^L of the batch mean, shape (m, n_L): carries 1/m or w_i / sum(w) (into ``out`` if given)."""
        return batch_scale(self.per_sample_dL_da(a, y, out), weights)

    def check_output(self, act: Activation) -> None:
        """Refuse an output activation this loss cannot take (log of a non-probability)."""
        lo, hi = act.output_range
        if self.needs_probabilities and not (lo >= 0 and hi <= 1):
            raise ConfigError(
                f"loss {self.name!r} needs outputs in (0, 1), but the output activation "
                f"{act.name!r} gives values in ({lo}, {hi}); use softmax or sigmoid, or loss='mse'"
            )


def shortcut_delta(a: Array, y: Array, weights: Array | None, out: Array | None = None, ops=None) -> Array:
    """delta^L = (a^L - y) / m, or (a^L - y) w_i / sum(w), into ``out`` if given: the
    shortcut's output error, where sigma' cancels against dL/da^L (by ``ops`` when given)."""
    if weights is None and out is not None and ops is not None:
        return ops.scaled_difference(a, y, 1 / a.shape[0], out)
    return batch_scale(np.subtract(a, y, out=out) if isinstance(a, np.ndarray) else put(a - y, out), weights)


def batch_scale(g: Array, weights: Array | None) -> Array:
    """g_i / m, or g_i w_i / sum(w), in place: the per-sample derivative scaled for the batch mean."""
    factor = mean_factor(weights, g.shape[0])
    if weights is None:
        g *= factor
    else:
        g *= astype(weights[:, None] * factor, g.dtype)
    return g


def batch_scale_loop(g, weights, factor):
    """g_i *= factor (weights empty) or g_i *= w_i factor, the scalar cast to g's dtype: batch_scale's kernel."""
    if not weights.size:
        scale = g.dtype.type(factor)
        for r in range(g.shape[0]):
            for j in range(g.shape[1]):
                g[r, j] *= scale
        return
    for r in range(g.shape[0]):
        scale = g.dtype.type(weights[r] * factor)
        for j in range(g.shape[1]):
            g[r, j] *= scale


def mean_factor(weights: Array | None, m: int) -> float:
    """1 / m, or 1 / sum(w) for weights (0 when every weight is 0: such a batch contributes nothing)."""
    if weights is None:
        return 1 / m
    total = float(namespace(weights).sum(weights))
    return 1 / total if total > 0 else 0.0


LOSSES: dict[str, Loss] = {}  # name -> Loss, in the order the losses' modules register them


def builtin(loss: Loss) -> Loss:
    """Put a built-in loss in the registry under its name."""
    LOSSES[loss.name] = loss
    return loss


def get_loss(name: str | Loss) -> Loss:
    """Look a loss up by name (or pass a Loss through)."""
    if isinstance(name, Loss):
        return name
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(LOSSES))
        raise ConfigError(f"unknown loss {name!r}; known: {known}") from None
