"""The logistic family: sigmoid and tanh, each with its derivative, its in-place chain and its numba kernel
(forward and chain loops) side by side.
"""

from __future__ import annotations

import numpy as np

from ..arrays import namespace
from .base import Activation, Kernel, builtin

Array = np.ndarray


# --- sigmoid: sigma(z) = 1 / (1 + e^-z);  sigma'(z) = sigma(z) (1 - sigma(z))
def sigmoid(z: Array, out: Array | None = None) -> Array:
    """Computed as exp(-softplus(-z)): the exponent is never positive, so no overflow."""
    if not isinstance(z, np.ndarray):  # the standard has no out=: the same steps, fresh
        xp = namespace(z)
        return xp.exp(-xp.logaddexp(-z, 0.0))
    out = np.negative(z, out=out)
    np.logaddexp(out, 0, out=out)
    np.negative(out, out=out)
    return np.exp(out, out=out)


def sigmoid_prime(z: Array) -> Array:
    s = sigmoid(z)
    return s * (1 - s)


def sigmoid_chain(g: Array, z: Array) -> Array:
    s = sigmoid(z, out=z)
    g *= s
    np.subtract(1, s, out=s)
    g *= s
    return g


def sigmoid_forward_loop(z, b, a):
    """z += b, then a = exp(-logaddexp(-z, 0)): sigmoid's formula above, as NumPy's logaddexp computes it."""
    for r in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[r, j] += b[j]
            v = -z[r, j]
            softplus_v = v + np.log1p(np.exp(-v)) if v > 0 else np.log1p(np.exp(v))
            a[r, j] = np.exp(-softplus_v)


def sigmoid_chain_loop(g, z):
    """g *= s (1 - s), s = sigmoid(z) by the formula above, multiplied in sigmoid_chain's order."""
    one = z.dtype.type(1)
    for r in range(g.shape[0]):
        for j in range(g.shape[1]):
            v = -z[r, j]
            softplus_v = v + np.log1p(np.exp(-v)) if v > 0 else np.log1p(np.exp(v))
            s = np.exp(-softplus_v)
            g[r, j] = g[r, j] * s * (one - s)


# --- tanh: sigma'(z) = 1 - tanh(z)^2
def tanh(z: Array, out: Array | None = None) -> Array:
    return np.tanh(z, out=out) if isinstance(z, np.ndarray) else namespace(z).tanh(z)


def tanh_prime(z: Array) -> Array:
    t = namespace(z).tanh(z)
    return 1 - t * t


def tanh_chain(g: Array, z: Array) -> Array:
    t = np.tanh(z, out=z)
    np.square(t, out=t)
    np.subtract(1, t, out=t)
    g *= t
    return g


def tanh_forward_loop(z, b, a):
    """z += b, then a = tanh(z)."""
    for r in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[r, j] += b[j]
            a[r, j] = np.tanh(z[r, j])


def tanh_chain_loop(g, z):
    """g *= 1 - tanh(z)^2, as tanh_chain."""
    one = z.dtype.type(1)
    for r in range(g.shape[0]):
        for j in range(g.shape[1]):
            t = np.tanh(z[r, j])
            g[r, j] *= one - t * t


builtin(Activation("sigmoid", sigmoid, sigmoid_prime, output_range=(0.0, 1.0), chain=sigmoid_chain, writes_out=True,
                   kernel=Kernel(sigmoid_forward_loop, sigmoid_chain_loop)))
builtin(Activation("tanh", tanh, tanh_prime, output_range=(-1.0, 1.0), chain=tanh_chain, writes_out=True,
                   kernel=Kernel(tanh_forward_loop, tanh_chain_loop)))
