"""The backend's own fused loops, as plain Python: numba compiles each once per dtype.

Only the steps of the passes that belong to no rule live here: the batch sum of
equation (4) and the shortcut's (a - y) scale. Each rule (an activation, a loss, an
optimizer, weight decay) keeps its kernel beside its NumPy lines, in its own module;
NumbaOps runs them through ``NumbaOps.kernel``. Every loop takes C-contiguous arrays of
one float dtype and scalars already cast to that dtype (a Python float would turn a
float32 loop into float64): NumbaOps guarantees both. Operations keep NumpyOps' order,
so results match it bit for bit.

They pay off twice: fewer passes over memory for big arrays, and one call instead of
several (about 1 us of Python and NumPy overhead each) for the small batches of small
networks.
"""

from __future__ import annotations


def scaled_difference(a, y, scale, out):
    """out = (a - y) * scale, element by element."""
    a, y, out = a.reshape(-1), y.reshape(-1), out.reshape(-1)
    for i in range(out.size):
        out[i] = (a[i] - y[i]) * scale


def batch_sum(delta, out):
    """out_j = sum_r delta_rj for delta (m, n): from 0, rows added in order, as NumPy's sum(axis=0) does."""
    for j in range(out.size):
        out[j] = 0
    for r in range(delta.shape[0]):
        for j in range(out.size):
            out[j] += delta[r, j]
