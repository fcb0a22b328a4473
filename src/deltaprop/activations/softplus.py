"""softplus, log(1 + e^z): its derivative is sigmoid (logistic.py); its in-place chain and numba kernel beside it.
"""

from __future__ import annotations

import numpy as np

from ..arrays import namespace
from .base import Activation, Kernel, builtin
from .logistic import sigmoid

Array = np.ndarray


# --- softplus: log(1 + e^z), by logaddexp(z, 0) (stable);  sigma'(z) = sigmoid(z)
def softplus(z: Array, out: Array | None = None) -> Array:
    return np.logaddexp(z, 0, out=out) if isinstance(z, np.ndarray) else namespace(z).logaddexp(z, 0.0)


def softplus_chain(g: Array, z: Array) -> Array:
    g *= sigmoid(z, out=z)
    return g


def softplus_forward_loop(z, b, a):
    """z += b, then a = logaddexp(z, 0), as NumPy computes it."""
    for r in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[r, j] += b[j]
            v = z[r, j]
            a[r, j] = v + np.log1p(np.exp(-v)) if v > 0 else np.log1p(np.exp(v))


def softplus_chain_loop(g, z):
    """g *= sigmoid(z), by sigmoid's formula."""
    for r in range(g.shape[0]):
        for j in range(g.shape[1]):
            v = -z[r, j]
            softplus_v = v + np.log1p(np.exp(-v)) if v > 0 else np.log1p(np.exp(v))
            g[r, j] *= np.exp(-softplus_v)


builtin(Activation("softplus", softplus, sigmoid, output_range=(0.0, np.inf), chain=softplus_chain,
                   writes_out=True, kernel=Kernel(softplus_forward_loop, softplus_chain_loop)))
