"""identity, sigma(z) = z (regression outputs): its derivative, chain and numba kernel.
"""

from __future__ import annotations

import numpy as np

from ..arrays import namespace
from .base import Activation, Kernel, builtin

Array = np.ndarray


# --- identity: sigma'(z) = 1
def identity(z: Array, out: Array | None = None) -> Array:
    if out is None:
        return z
    np.copyto(out, z)
    return out


def identity_prime(z: Array) -> Array:
    return namespace(z).ones_like(z)


def identity_chain(g: Array, z: Array) -> Array:
    return g


def identity_forward_loop(z, b, a):
    """z += b, then a = z."""
    for r in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[r, j] += b[j]
            a[r, j] = z[r, j]


def identity_chain_loop(g, z):
    """g *= 1: nothing to do."""


builtin(Activation("identity", identity, identity_prime, chain=identity_chain, writes_out=True,
                   kernel=Kernel(identity_forward_loop, identity_chain_loop)))
