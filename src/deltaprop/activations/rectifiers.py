"""The rectifiers: relu, leaky_relu and elu (identity for z > 0), each with its derivative, its in-place chain
and its numba kernel side by side; ``step`` (1[z > 0] written over z) is also the optimizers' flush mask.
"""

from __future__ import annotations

import numpy as np

from ..arrays import astype, namespace
from .base import Activation, Kernel, builtin

Array = np.ndarray


# --- relu: max(0, z);  sigma'(z) = 1[z > 0]
def relu(z: Array, out: Array | None = None) -> Array:
    return np.maximum(z, 0, out=out) if isinstance(z, np.ndarray) else namespace(z).maximum(z, 0.0)


def relu_prime(z: Array) -> Array:
    return astype(z > 0, z.dtype)


def step(z: Array) -> Array:
    """1[z > 0], written over z: ceil(clip(z, 0, 1)). Fast, and needs no boolean array."""
    np.clip(z, 0, 1, out=z)
    return np.ceil(z, out=z)


def relu_chain(g: Array, z: Array) -> Array:
    g *= step(z)
    return g


def relu_chain_loop(g, z):
    """g *= sigma'(z) = 1[z > 0]; NaN in z stays NaN in g (divergence shows)."""
    g, z = g.reshape(-1), z.reshape(-1)
    for i in range(g.size):
        if not z[i] > 0:
            g[i] = g[i] * 0 if z[i] <= 0 else z[i]


def relu_forward_loop(z, b, a):
    """z += b for every row of z (m, n), then a = max(z, 0): z^l and a^l in one call.

    Two short loops per row, not one: a loop that writes both z and a cannot be
    vectorized (they might overlap), and the row is still in cache for the second.
    """
    for r in range(z.shape[0]):
        z_r, a_r = z[r], a[r]
        for j in range(b.size):
            z_r[j] += b[j]
        for j in range(b.size):
            a_r[j] = z_r[j] if z_r[j] > 0 else z_r[j] * 0  # z * 0 keeps NaN


def relu_over_z_loop(z, b):
    """z = max(z + b, 0) in place: inference, where z^l is not kept (relu_forward_loop with a = z runs five
    times slower: a loop that may write z and a at one address cannot be vectorized)."""
    for r in range(z.shape[0]):
        for j in range(z.shape[1]):
            v = z[r, j] + b[j]
            z[r, j] = v if v > 0 else v * 0


# --- leaky relu: z if z > 0 else alpha z;  sigma'(z) = 1 or alpha
LEAKY_ALPHA = 0.01


def _over_z(z: Array, out: Array | None) -> bool:
    """Whether sigma writes over z itself (inference writes a^l over z^l): then it must not read z
    after writing out."""
    return out is z


def leaky_relu(z: Array, out: Array | None = None) -> Array:
    if not isinstance(z, np.ndarray):
        xp = namespace(z)
        return xp.maximum(z, z * LEAKY_ALPHA)
    if _over_z(z, out):  # scale the negative entries in place (a mask per call: inference only)
        return np.multiply(z, LEAKY_ALPHA, out=out, where=z < 0)
    out = np.multiply(z, LEAKY_ALPHA, out=out)
    return np.maximum(z, out, out=out)  # alpha < 1: max(z, alpha z) picks the right branch


def leaky_relu_prime(z: Array) -> Array:
    xp = namespace(z)
    if xp is not np:  # (the standard's where takes one scalar at most)
        return xp.where(z > 0, xp.ones_like(z), LEAKY_ALPHA)
    return np.where(z > 0, 1, LEAKY_ALPHA).astype(z.dtype)


def leaky_relu_chain(g: Array, z: Array) -> Array:
    factor = step(z)
    factor *= 1 - LEAKY_ALPHA
    factor += LEAKY_ALPHA
    g *= factor
    return g


def leaky_relu_forward_loop(z, b, a):
    """z += b, then a = max(z, alpha z), as leaky_relu."""
    alpha = z.dtype.type(LEAKY_ALPHA)
    for r in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[r, j] += b[j]
            scaled = z[r, j] * alpha
            a[r, j] = z[r, j] if z[r, j] > scaled else scaled


def leaky_relu_chain_loop(g, z):
    """g *= step(z) (1 - alpha) + alpha, as leaky_relu_chain (NaN in z stays NaN)."""
    one, zero = z.dtype.type(1), z.dtype.type(0)
    slope, alpha = z.dtype.type(1 - LEAKY_ALPHA), z.dtype.type(LEAKY_ALPHA)
    for r in range(g.shape[0]):
        for j in range(g.shape[1]):
            v = z[r, j]
            factor = one if v > 0 else (zero if v <= 0 else v)  # step(z): 1, 0, or NaN
            g[r, j] *= factor * slope + alpha


# --- elu: z if z > 0 else e^z - 1;  sigma'(z) = 1 or e^z, i.e. e^min(z, 0)
def elu(z: Array, out: Array | None = None) -> Array:
    if not isinstance(z, np.ndarray):
        xp = namespace(z)
        return xp.maximum(xp.expm1(xp.minimum(z, 0.0)), z)
    if _over_z(z, out):  # e^z - 1 where z < 0, in place (a mask per call: inference only)
        return np.expm1(z, out=out, where=z < 0)
    out = np.minimum(z, 0, out=out)
    np.expm1(out, out=out)
    return np.maximum(out, z, out=out)  # e^z - 1 >= z, with equality only at 0


def elu_prime(z: Array) -> Array:
    xp = namespace(z)
    return xp.exp(xp.minimum(z, 0.0))


def elu_chain(g: Array, z: Array) -> Array:
    np.minimum(z, 0, out=z)
    g *= np.exp(z, out=z)
    return g


def elu_forward_loop(z, b, a):
    """z += b, then a = max(expm1(min(z, 0)), z), as elu."""
    zero = z.dtype.type(0)
    for r in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[r, j] += b[j]
            v = z[r, j]
            e = np.expm1(v if v < 0 else (zero if v >= 0 else v))
            a[r, j] = e if e > v else v


def elu_chain_loop(g, z):
    """g *= e^min(z, 0), as elu_chain."""
    zero = z.dtype.type(0)
    for r in range(g.shape[0]):
        for j in range(g.shape[1]):
            v = z[r, j]
            g[r, j] *= np.exp(v if v < 0 else (zero if v >= 0 else v))


RELU = builtin(Activation("relu", relu, relu_prime, init="he", output_range=(0.0, np.inf), chain=relu_chain,
                          writes_out=True, kernel=Kernel(relu_forward_loop, relu_chain_loop, relu_over_z_loop)))
builtin(Activation("leaky_relu", leaky_relu, leaky_relu_prime, init="he", chain=leaky_relu_chain, writes_out=True,
                   kernel=Kernel(leaky_relu_forward_loop, leaky_relu_chain_loop)))
builtin(Activation("elu", elu, elu_prime, init="he", output_range=(-1.0, np.inf), chain=elu_chain, writes_out=True,
                   kernel=Kernel(elu_forward_loop, elu_chain_loop)))
