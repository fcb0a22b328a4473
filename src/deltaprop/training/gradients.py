"""The whole gradient of a step, before the update: L2's term added (and its penalty), the global norm
clipped, and where a gradient that is not finite came from (for the DivergenceError's message)."""

from __future__ import annotations

import math

import numpy as np

from ..arrays import namespace

Array = np.ndarray


def add_l2(flat, l2: float, factor: float) -> float:
    """dL/dW^l += l2 factor W^l for every layer (factor: 1/m, or 1/sum(w)); returns the penalty
    (l2 / 2) factor sum_l ||W^l||^2 that this adds to the batch loss. Biases are left alone."""
    squares = 0.0
    for W, dW in zip(flat.weight_views(flat.theta), flat.weight_views(flat.grad), strict=True):
        dW += (l2 * factor) * W
        squares += float(np.vdot(W, W)) if isinstance(W, np.ndarray) else flat.ops.vdot(W, W)
    return 0.5 * l2 * factor * squares


def clip_gradients(g: Array, max_norm: float) -> float:
    """Scale the gradient vector g by max_norm / ||g|| when its L2 norm ||g|| exceeds max_norm.

    ``g`` is all dW^l, db^l in one vector (FlatParams.grad), so ||g|| is the global norm.
    Returns the norm before clipping.
    """
    if isinstance(g, np.ndarray):
        norm = float(np.sqrt(np.dot(g, g)))
    else:  # an Array API library's vector (ArrayAPIOps)
        norm = math.sqrt(float(namespace(g).vecdot(g, g)))
    if norm > max_norm:
        g *= max_norm / norm
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
