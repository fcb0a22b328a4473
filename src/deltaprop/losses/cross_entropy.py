"""cross_entropy, -sum_j y_j log a_j: its NumPy lines, dL/da, its value from z after softmax (the shortcut
pair, with its total by kernel or NumPy) and after sigmoid (a crossed pair), and its numba kernel side by side.
"""

from __future__ import annotations

import numpy as np

from ..activations import sigmoid, softplus
from ..arrays import namespace, put
from .base import FromZ, Loss, LossKernel, _clip_probability, _rowdot, builtin

Array = np.ndarray


# --- cross_entropy: L = -sum_j y_j log a_j;  dL/da = -y / a
def cross_entropy(a: Array, y: Array, out: Array | None = None) -> Array:
    if not isinstance(a, np.ndarray):
        return -_rowdot(y, namespace(a).log(_clip_probability(a)))
    p = _clip_probability(a, out=out)
    np.log(p, out=p)
    return -_rowdot(y, p, out)


def cross_entropy_dL_da(a: Array, y: Array, out: Array | None = None) -> Array:
    if not isinstance(a, np.ndarray):
        return put(-(y / _clip_probability(a)), out)
    p = _clip_probability(a, out=out)
    np.divide(y, p, out=p)
    return np.negative(p, out=p)


def cross_entropy_from_z(z: Array, y: Array, out: Array | None = None) -> Array:
    """-sum_j y_j log softmax(z)_j = sum(y) logsumexp(z) - sum_j y_j z_j, stably."""
    if not isinstance(z, np.ndarray):
        xp = namespace(z)
        z_max = xp.max(z, axis=1, keepdims=True)
        lse = z_max[:, 0] + xp.log(xp.sum(xp.exp(z - z_max), axis=1))
        return xp.sum(y, axis=1) * lse - _rowdot(y, z)
    y_dot_z = _rowdot(y, z, out)  # before ``out`` is reused below
    z_max = z.max(axis=1, keepdims=True)
    e = np.subtract(z, z_max, out=out)
    np.exp(e, out=e)
    lse = z_max[:, 0] + np.log(e.sum(axis=1))
    return y.sum(axis=1) * lse - y_dot_z


def cross_entropy_total_loop(z, a, y, weights):
    """sum_r w_r L_r with L_r = -sum_j y_rj log a_rj, a = softmax(z) (w_r = 1 when weights is empty).

    a^L comes from the forward pass, so a row costs a log per nonzero target (one, for
    one-hot labels) instead of an exp per output. A row where such an a_rj is below the
    smallest normal number (it underflowed) or NaN takes cross_entropy_from_z's
    formula instead: L_r = sum_j y_rj logsumexp(z_r) - sum_j y_rj z_rj. Summed in float64.
    """
    tiny = np.finfo(a.dtype).tiny
    total = 0.0
    for r in range(z.shape[0]):
        per_sample = 0.0
        for j in range(z.shape[1]):
            if y[r, j] != 0:
                if not a[r, j] >= tiny:  # the whole row from z, by log-sum-exp
                    top = z[r, 0]
                    for k in range(1, z.shape[1]):
                        top = max(top, z[r, k])
                    sum_exp = 0.0
                    for k in range(z.shape[1]):
                        sum_exp += np.exp(z[r, k] - top)
                    per_sample = 0.0
                    for k in range(z.shape[1]):
                        per_sample += y[r, k] * (top + np.log(sum_exp) - z[r, k])
                    break
                per_sample -= y[r, j] * np.log(a[r, j])
        total += per_sample * weights[r] if weights.size else per_sample
    return total


# --- the crossed pairs, from z. cross_entropy after sigmoid: log a = -softplus(-z)
def cross_entropy_sigmoid_from_z(z: Array, y: Array) -> Array:
    """-sum_j y_j log sigmoid(z_j) = sum_j y_j softplus(-z_j), finite for any z."""
    return _rowdot(y, softplus(-z))


def cross_entropy_sigmoid_delta(z: Array, y: Array) -> Array:
    """dL/dz = -y / a ⊙ a (1 - a) = -y ⊙ sigmoid(-z): (1 - a) without the cancellation of 1 - a."""
    return -y * sigmoid(-z)


def softmax_cross_entropy_total(ops, z: Array, a: Array, y: Array, weights: Array | None, scratch) -> float:
    """sum_i w_i L_i of cross_entropy after softmax: by its kernel where the backend compiles it (one pass over
    a^L), else from z in NumPy."""
    kernel = ops.kernel(cross_entropy_total_loop)
    if kernel is not None:
        weights = np.empty(0, z.dtype) if weights is None else weights.astype(z.dtype, copy=False)
        return float(kernel(z, a, y, weights))
    per = cross_entropy_from_z(z, y, scratch)
    if isinstance(per, np.ndarray):
        return float(per.sum() if weights is None else np.dot(per, weights))
    xp = namespace(per)  # an Array API library's arrays (ArrayAPIOps)
    return float(xp.sum(per) if weights is None else xp.vecdot(per, weights))


builtin(
    Loss(
        "cross_entropy", cross_entropy, cross_entropy_dL_da, shortcut="softmax",
        from_z=cross_entropy_from_z, needs_probabilities=True, classification=True,
        shortcut_total=softmax_cross_entropy_total, rows_sum_to_one=True,
        crossed={"sigmoid": FromZ(cross_entropy_sigmoid_from_z, cross_entropy_sigmoid_delta)},
        kernel=LossKernel(cross_entropy_total_loop),
    )
)
