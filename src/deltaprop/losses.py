"""Losses L(a^L, y): summed over the output neurons, averaged over the batch.

Each loss gives its per-sample value and ``dL/da^L``; the ``1/m`` of the batch
average (and any sample weights) is carried by ``dL/da``, as the notes say.

Two pairs cancel sigma' in equation (1) and take the named shortcut
``delta^L = (a^L - y) / m``: softmax + cross_entropy and sigmoid +
binary_cross_entropy. Their loss values are then computed from z (log-sum-exp,
softplus), so logits of +-1000 never take log(0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import fused
from .activations import Activation, softplus
from .errors import ConfigError

Array = np.ndarray


def _clip_probability(a: Array, out: Array | None = None) -> Array:
    """Keep a inside (0, 1) by the dtype's resolution so log(a), log(1 - a) stay finite."""
    eps = np.finfo(a.dtype).eps
    return np.clip(a, eps, 1 - eps, out=out)


def _rowdot(y: Array, v: Array, scratch: Array | None = None) -> Array:
    """sum_j y_j v_j for every row (the product goes into ``scratch`` when given)."""
    return np.multiply(y, v, out=scratch).sum(axis=1)


# Per-sample values return shape (m,); ``out`` (m, n) is scratch they may use, and the
# dL/da functions write their result into it. Without ``out`` they allocate.

# --- mse: L = 1/2 sum_j (a_j - y_j)^2;  dL/da = a - y
def mse(a: Array, y: Array, out: Array | None = None) -> Array:
    d = np.subtract(a, y, out=out)
    np.square(d, out=d)
    return 0.5 * d.sum(axis=1)


def mse_dL_da(a: Array, y: Array, out: Array | None = None) -> Array:
    return np.subtract(a, y, out=out)


# --- cross_entropy: L = -sum_j y_j log a_j;  dL/da = -y / a
def cross_entropy(a: Array, y: Array, out: Array | None = None) -> Array:
    p = _clip_probability(a, out=out)
    np.log(p, out=p)
    return -_rowdot(y, p, out)


def cross_entropy_dL_da(a: Array, y: Array, out: Array | None = None) -> Array:
    p = _clip_probability(a, out=out)
    np.divide(y, p, out=p)
    return np.negative(p, out=p)


def cross_entropy_from_z(z: Array, y: Array, out: Array | None = None) -> Array:
    """-sum_j y_j log softmax(z)_j = sum(y) logsumexp(z) - sum_j y_j z_j, stably."""
    y_dot_z = _rowdot(y, z, out)  # before ``out`` is reused below
    z_max = z.max(axis=1, keepdims=True)
    e = np.subtract(z, z_max, out=out)
    np.exp(e, out=e)
    lse = z_max[:, 0] + np.log(e.sum(axis=1))
    return y.sum(axis=1) * lse - y_dot_z


# --- binary_cross_entropy: L = -sum_j [y log a + (1-y) log(1-a)];  dL/da = (a-y) / (a(1-a))
def binary_cross_entropy(a: Array, y: Array, out: Array | None = None) -> Array:
    p = _clip_probability(a)
    return -(y * np.log(p) + (1 - y) * np.log1p(-p)).sum(axis=1)


def binary_cross_entropy_dL_da(a: Array, y: Array, out: Array | None = None) -> Array:
    p = _clip_probability(a)
    g = (p - y) / (p * (1 - p))
    if out is None:
        return g
    np.copyto(out, g)
    return out


def binary_cross_entropy_from_z(z: Array, y: Array, out: Array | None = None) -> Array:
    """With a = sigmoid(z): -y log a - (1-y) log(1-a) = softplus(z) - y z, stably."""
    y_dot_z = _rowdot(y, z, out)
    return softplus(z, out=out).sum(axis=1) - y_dot_z


@dataclass(frozen=True)
class Loss:
    """A named loss: per-sample value and dL/da, with an optional cancelling pair.

    ``shortcut`` names the output activation whose sigma' cancels (delta = a - y);
    ``from_z`` then computes the per-sample value stably from z.
    ``needs_probabilities`` refuses output activations whose values leave (0, 1).
    """

    name: str
    per_sample: Callable[[Array, Array], Array]
    per_sample_dL_da: Callable[[Array, Array], Array]
    shortcut: str | None = None
    from_z: Callable[[Array, Array], Array] | None = None
    needs_probabilities: bool = False
    classification: bool = False
    kernel: str | None = None  # fused.py's one-pass sum of the per-sample values for the shortcut, if any

    def cancels_with(self, act: Activation) -> bool:
        """True when delta^L = a^L - y exactly (the sigma' factor cancels)."""
        return act.name == self.shortcut

    def value(self, z: Array, a: Array, y: Array, act: Activation, weights: Array | None = None,
              scratch: Array | None = None) -> float:
        """L averaged over the batch: (1/m) sum_i w_i L_i (w_i = 1 without weights).

        ``scratch``, an (m, n_L) array, saves the temporaries (training passes one).
        """
        if self.cancels_with(act) and self.kernel:
            w = weights if weights is None or weights.dtype == z.dtype else weights.astype(z.dtype)
            total = fused.run(self.kernel, z, a, y, w)
            if total is not fused.SKIPPED:
                return float(total) / z.shape[0]  # the lines below in one pass
        per = self.from_z(z, y, scratch) if self.cancels_with(act) else self.per_sample(a, y, scratch)
        if weights is not None:
            per = per * weights
        return float(per.mean())

    def dL_da(self, a: Array, y: Array, weights: Array | None = None, out: Array | None = None) -> Array:
        """dL/da^L of the batch average, shape (m, n_L): carries 1/m and w_i (into ``out`` if given)."""
        return batch_scale(self.per_sample_dL_da(a, y, out), weights)

    def check_output(self, act: Activation) -> None:
        """Refuse an output activation this loss cannot take (log of a non-probability)."""
        lo, hi = act.output_range
        if self.needs_probabilities and not (lo >= 0 and hi <= 1):
            raise ConfigError(
                f"loss {self.name!r} needs outputs in (0, 1), but the output activation "
                f"{act.name!r} gives values in ({lo}, {hi}); use softmax or sigmoid, or loss='mse'"
            )


def shortcut_delta(a: Array, y: Array, weights: Array | None, out: Array | None = None) -> Array:
    """delta^L = (a^L - y) w_i / m (w_i = 1 without weights), into ``out`` if given: the
    shortcut's output error, where sigma' cancels against dL/da^L."""
    if weights is None and out is not None and \
            fused.run("scaled_difference", a, y, a.dtype.type(1 / a.shape[0]), out) is not fused.SKIPPED:
        return out  # the kernel did the line below in one pass
    return batch_scale(np.subtract(a, y, out=out), weights)


def batch_scale(g: Array, weights: Array | None) -> Array:
    """g_i * w_i / m, in place: the per-sample derivative scaled for the batch average."""
    m = g.shape[0]
    if weights is None:
        g *= 1 / m
    else:
        g *= (weights[:, None] / m).astype(g.dtype)
    return g


LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in [
        Loss("mse", mse, mse_dL_da),
        Loss(
            "cross_entropy", cross_entropy, cross_entropy_dL_da, shortcut="softmax",
            from_z=cross_entropy_from_z, needs_probabilities=True, classification=True,
            kernel="cross_entropy",
        ),
        Loss(
            "binary_cross_entropy", binary_cross_entropy, binary_cross_entropy_dL_da,
            shortcut="sigmoid", from_z=binary_cross_entropy_from_z,
            needs_probabilities=True, classification=True,
        ),
    ]
}


def get_loss(name: str | Loss) -> Loss:
    """Look a loss up by name (or pass a Loss through)."""
    if isinstance(name, Loss):
        return name
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(LOSSES))
        raise ConfigError(f"unknown loss {name!r}; known: {known}") from None
