"""mse, half the squared error: its NumPy lines, dL/da and numba kernels (its total, and the difference a - y
that the shortcut pairs' delta^L also takes) side by side.
"""

from __future__ import annotations

import numpy as np

from ..arrays import namespace, put
from .base import Loss, LossKernel, builtin

Array = np.ndarray


# --- mse: L = 1/2 sum_j (a_j - y_j)^2;  dL/da = a - y
def mse(a: Array, y: Array, out: Array | None = None) -> Array:
    if not isinstance(a, np.ndarray):
        return 0.5 * namespace(a).sum((a - y) * (a - y), axis=1)
    d = np.subtract(a, y, out=out)
    np.square(d, out=d)
    return 0.5 * d.sum(axis=1)


def mse_dL_da(a: Array, y: Array, out: Array | None = None) -> Array:
    return np.subtract(a, y, out=out) if isinstance(a, np.ndarray) else put(a - y, out)


def mse_total_loop(z, a, y, weights):
    """sum_r w_r L_r of mse (w_r = 1 when weights is empty), summed in float64: the compiled step's value."""
    total = 0.0
    for r in range(a.shape[0]):
        per_sample = 0.0
        for j in range(a.shape[1]):
            per_sample += 0.5 * (a[r, j] - y[r, j]) ** 2
        total += per_sample * weights[r] if weights.size else per_sample
    return total


def difference_loop(a, y, out):
    """out = a - y: mse's dL/da, and the shortcut pairs' delta^L before batch_scale."""
    a, y, out = a.reshape(-1), y.reshape(-1), out.reshape(-1)
    for i in range(out.size):
        out[i] = a[i] - y[i]


builtin(Loss("mse", mse, mse_dL_da, kernel=LossKernel(mse_total_loop, difference_loop)))
