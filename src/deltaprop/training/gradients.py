"""The whole gradient of a step, before the update: L2's term added (and its penalty), the global norm
clipped, and where a gradient that is not finite came from (for the DivergenceError's message)."""

from __future__ import annotations

import math

import numpy as np

from ..arrays import namespace
from ..regularizer import add_l2 as add_decay_gradient
from ..regularizer import decayed_spans

Array = np.ndarray


def add_l2(flat, l2: float, factor: float, ops=None) -> float:
    """dL/dW^l += l2 factor W^l for every parameter its layer declares decayed (factor: 1/m, or 1/sum(w)), by
    regularizer.py (``ops``' kernel where it has one); returns the penalty (l2 / 2) factor sum_l ||W^l||^2
    that this adds to the batch loss."""
    squares = add_decay_gradient(flat.theta, flat.grad, decayed_spans(flat), l2 * factor, ops)
    return 0.5 * l2 * factor * squares


def clip_gradients(g: Array, max_norm: float) -> float:
    """Scale the gradient vector g by max_norm / ||g|| when its L2 norm ||g|| exceeds max_norm.

    ``g`` is all dW^l, db^l in one vector (FlatParams.grad), so ||g|| is the global norm.
    Returns the norm before clipping.
    """
    if not isinstance(g, np.ndarray):  # an Array API library's vector (ArrayAPIOps): the norm in its namespace
        norm = math.sqrt(float(namespace(g).vecdot(g, g)))
        if norm > max_norm:
            g *= max_norm / norm
        return norm
    return float(clip_to(g, np.dot(g, g), max_norm))


def clip_to(g, norm2, max_norm):
    """g *= max_norm / ||g|| when ||g|| = sqrt(norm2) (in g's dtype) exceeds max_norm; returns ||g||. Plain
    Python that NumPy runs and numba compiles: the readable and the compiled step clip by these lines."""
    norm = np.float64(np.sqrt(norm2))
    if norm > max_norm:
        g *= g.dtype.type(max_norm / norm)
    return norm


def where_non_finite(trace, grads, loss) -> str:
    """Where the first NaN or inf appeared, for the message: the forward pass from layer 1 up,
    else the backward pass from layer L down."""
    L = len(grads.params) - 1
    for l in range(1, L + 1):
        if not _finite(trace.a[l]):
            return f"the activations a^{l} of layer {l} are not finite, so the loss is {loss}"
    if not np.isfinite(loss):
        return f"the loss is {loss} at the output layer {L}"
    for l in range(L, 0, -1):
        for name, g in grads.params[l].items():
            if not _finite(g):
                return f"the gradient of layer {l} (d{name}^{l}) is not finite"
    largest = max(((l, name, _largest(g)) for l in range(1, L + 1) for name, g in grads.params[l].items()),
                  key=lambda item: item[2])
    return (f"the gradient norm overflows; the largest entries are in layer {largest[0]} "
            f"(max |d{largest[1]}^{largest[0]}| = {largest[2]:.3g})")


def _finite(x) -> bool:
    """No NaN or inf in x, in x's own namespace (an array on a device is not copied to the host for this)."""
    xp = namespace(x)
    return bool(xp.all(xp.isfinite(x)))


def _largest(x) -> float:
    """max |x_i|, in x's own namespace."""
    xp = namespace(x)
    return float(xp.max(xp.abs(x)))
