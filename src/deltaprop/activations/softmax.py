"""softmax, which couples a layer's neurons: no element-wise sigma', but the Jacobian-vector product
``delta = a ⊙ (g - rowsum(g ⊙ a))`` (softmax_jvp, and in place softmax_chain); log_softmax for the losses;
its numba forward kernel (a layer without a chain kernel trains compiled only as the output of its shortcut pair).
"""

from __future__ import annotations

import numpy as np

from ..arrays import namespace
from .base import Activation, Kernel, builtin

Array = np.ndarray


# --- softmax: a_j = e^{z_j} / sum_k e^{z_k};  Jacobian da_j/dz_i = a_j (1[i=j] - a_i)
def softmax(z: Array, out: Array | None = None) -> Array:
    if not isinstance(z, np.ndarray):
        xp = namespace(z)
        e = xp.exp(z - xp.max(z, axis=1, keepdims=True))
        return e / xp.sum(e, axis=1, keepdims=True)
    out = np.subtract(z, z.max(axis=1, keepdims=True), out=out)  # shift by the row max: exponents <= 0
    np.exp(out, out=out)
    out /= out.sum(axis=1, keepdims=True)
    return out


def log_softmax(z: Array) -> Array:
    """log a_j = z_j - logsumexp(z), (m, n): finite where softmax(z)_j underflows to 0."""
    xp = namespace(z)
    shifted = z - xp.max(z, axis=1, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))


def softmax_jvp(g: Array, z: Array) -> Array:
    """delta = J^T g = a ⊙ (g - rowsum(g ⊙ a)) for g = dL/da of shape (m, n)."""
    a = softmax(z)
    return a * (g - namespace(g).sum(g * a, axis=1, keepdims=True))


def softmax_chain(g: Array, z: Array) -> Array:
    a = softmax(z, out=z)
    g -= np.einsum("ij,ij->i", g, a)[:, None]  # rowsum(g ⊙ a) without an (m, n) temporary
    g *= a
    return g


def softmax_forward_loop(z, b, a):
    """z += b, then a_rj = exp(z_rj - max_k z_rk) / sum_k exp(z_rk - max_k z_rk), row by row; a may be z."""
    for r in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[r, j] += b[j]
        top = z[r, 0]
        for j in range(1, z.shape[1]):
            top = max(top, z[r, j])
        a[r, 0] = np.exp(z[r, 0] - top)
        total = a[r, 0]
        for j in range(1, z.shape[1]):
            a[r, j] = np.exp(z[r, j] - top)
            total += a[r, j]
        for j in range(z.shape[1]):
            a[r, j] /= total


SOFTMAX = builtin(Activation("softmax", softmax, None, output_range=(0.0, 1.0), jvp=softmax_jvp, chain=softmax_chain,
                             writes_out=True, kernel=Kernel(softmax_forward_loop)))
