"""mish, z tanh(softplus(z)): its derivative, chain and numba kernel (softplus and sigmoid from their modules).
"""

from __future__ import annotations

import numpy as np

from ..arrays import namespace, put
from .base import Activation, Kernel, builtin
from .logistic import sigmoid
from .softplus import softplus

Array = np.ndarray


# --- mish: z tanh(softplus(z));  sigma'(z) = tanh(sp) + z sigmoid(z) (1 - tanh(sp)^2), sp = softplus(z)
def mish(z: Array, out: Array | None = None) -> Array:
    if not isinstance(z, np.ndarray):
        return put(z * namespace(z).tanh(softplus(z)), out)
    t = np.tanh(softplus(z))  # a fresh array: out may be z itself (inference)
    return np.multiply(z, t, out=out)


def mish_prime(z: Array) -> Array:
    t = namespace(z).tanh(softplus(z))
    return t + z * sigmoid(z) * (1 - t * t)


def mish_chain(g: Array, z: Array) -> Array:
    g *= mish_prime(z)
    return g


def mish_forward_loop(z, b, a):
    """z += b, then a = z tanh(softplus(z)), softplus as NumPy's logaddexp(z, 0)."""
    for r in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[r, j] += b[j]
            v = z[r, j]
            softplus_v = v + np.log1p(np.exp(-v)) if v > 0 else np.log1p(np.exp(v))
            a[r, j] = v * np.tanh(softplus_v)


def mish_chain_loop(g, z):
    """g *= mish_prime(z), by its formula and in its order."""
    one = z.dtype.type(1)
    for r in range(g.shape[0]):
        for j in range(g.shape[1]):
            v = z[r, j]
            softplus_v = v + np.log1p(np.exp(-v)) if v > 0 else np.log1p(np.exp(v))
            t = np.tanh(softplus_v)
            minus_v = -v
            softplus_minus_v = minus_v + np.log1p(np.exp(-minus_v)) if minus_v > 0 else np.log1p(np.exp(minus_v))
            s = np.exp(-softplus_minus_v)  # sigmoid(z)
            g[r, j] *= t + v * s * (one - t * t)


builtin(Activation("mish", mish, mish_prime, output_range=(-0.31, np.inf), chain=mish_chain, writes_out=True,
                   kernel=Kernel(mish_forward_loop, mish_chain_loop)))
