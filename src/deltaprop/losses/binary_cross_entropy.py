"""binary_cross_entropy, -sum_j [y log a + (1-y) log(1-a)]: its NumPy lines, dL/da, its value from z after
sigmoid (the shortcut pair) and after softmax (a crossed pair, in bounded terms, also on Array API namespaces),
and its numba kernel side by side.
"""

from __future__ import annotations

import numpy as np

from ..activations import log_softmax, softplus
from ..arrays import namespace, put
from .base import FromZ, Loss, LossKernel, _clip_probability, _rowdot, builtin

Array = np.ndarray


# --- binary_cross_entropy: L = -sum_j [y log a + (1-y) log(1-a)];  dL/da = (a-y) / (a(1-a))
def binary_cross_entropy(a: Array, y: Array, out: Array | None = None) -> Array:
    p, xp = _clip_probability(a), namespace(a)
    return -xp.sum(y * xp.log(p) + (1 - y) * xp.log1p(-p), axis=1)


def binary_cross_entropy_dL_da(a: Array, y: Array, out: Array | None = None) -> Array:
    p = _clip_probability(a)
    return put((p - y) / (p * (1 - p)), out)


def binary_cross_entropy_from_z(z: Array, y: Array, out: Array | None = None) -> Array:
    """With a = sigmoid(z): -y log a - (1-y) log(1-a) = softplus(z) - y z, stably."""
    if not isinstance(z, np.ndarray):
        return namespace(z).sum(softplus(z), axis=1) - _rowdot(y, z)
    y_dot_z = _rowdot(y, z, out)
    return softplus(z, out=out).sum(axis=1) - y_dot_z


def binary_cross_entropy_total_loop(z, a, y, weights):
    """sum_r w_r L_r with L_r = sum_j softplus(z_rj) - y_rj z_rj (after sigmoid, from z, softplus as NumPy's
    logaddexp(z, 0)), summed in float64."""
    total = 0.0
    for r in range(z.shape[0]):
        per_sample = 0.0
        for j in range(z.shape[1]):
            v = z[r, j]
            softplus_v = v + np.log1p(np.exp(-v)) if v > 0 else np.log1p(np.exp(v))
            per_sample += softplus_v - y[r, j] * v
        total += per_sample * weights[r] if weights.size else per_sample
    return total


# --- binary_cross_entropy after softmax, from z
def _softmax_logs(z: Array) -> tuple[Array, Array, Array]:
    """log a, log(1 - a) for a = softmax(z), and each row's argmax, stably.

    For j off the row's top, a_j <= 1/2 and log1p(-a_j) is exact; at the top,
    1 - a_top = sum of the other a_k, taken by a log-sum-exp over the other logits.
    """
    if namespace(z) is not np:
        return _softmax_logs_xp(z)
    rows, top = np.arange(z.shape[0]), z.argmax(axis=1)
    log_a = log_softmax(z)
    with np.errstate(divide="ignore"):
        log_1ma = np.log1p(-np.exp(log_a))
    others = z - z[rows, top][:, None]
    others[rows, top] = -np.inf
    second = others.max(axis=1)
    log_others = second + np.log(np.exp(others - second[:, None]).sum(axis=1))
    log_1ma[rows, top] = log_others + log_a[rows, top]  # log sum_{k != top} e^{z_k - z_top} + z_top - lse
    return log_a, log_1ma, top


def binary_cross_entropy_softmax_from_z(z: Array, y: Array) -> Array:
    """-sum_j [y_j log a_j + (1 - y_j) log(1 - a_j)] for a = softmax(z), from z."""
    log_a, log_1ma, _ = _softmax_logs(z)
    return -namespace(z).sum(y * log_a + (1 - y) * log_1ma, axis=1)


def binary_cross_entropy_softmax_delta(z: Array, y: Array) -> Array:
    """dL/dz for binary_cross_entropy after softmax, in bounded terms.

    With r_k = a_k / (1 - a_k) and R = sum_j (1 - y_j) r_j, the Jacobian product is
    delta_k = a_k sum(y) - y_k + (1 - y_k) r_k - a_k R. Only r_top can be huge; its
    terms combine to (1 - y_top) a_top at the top and to a_top (1 - y_top) a_k / (1 - a_top)
    elsewhere, both at most 1, so nothing cancels.
    """
    log_a, log_1ma, top = _softmax_logs(z)
    if namespace(z) is not np:
        return _bce_softmax_delta_xp(log_a, log_1ma, top, y)
    rows = np.arange(z.shape[0])
    a, y_top, a_top = np.exp(log_a), y[rows, top], np.exp(log_a[rows, top])
    with np.errstate(over="ignore", invalid="ignore"):  # r_top may overflow (and 0 * inf): replaced next
        u = (1 - y) * np.exp(log_a - log_1ma)  # (1 - y_k) r_k
        t = np.exp(log_a - log_1ma[rows, top][:, None])  # a_k / (1 - a_top)
    u[rows, top] = t[rows, top] = 0
    R_rest = u.sum(axis=1)  # R without the top's term
    y_sum = y.sum(axis=1)
    delta = a * (y_sum - R_rest)[:, None] - y + u - (a_top * (1 - y_top))[:, None] * t
    delta[rows, top] = a_top * (y_sum - R_rest) - y_top + (1 - y_top) * a_top
    return delta


def _top_mask(top: Array, n: int) -> Array:
    """(m, n) booleans, True at each row's argmax ``top`` (the standard has no integer-array assignment)."""
    xp = namespace(top)
    return xp.arange(n, device=top.device)[None, :] == top[:, None]


def _softmax_logs_xp(z: Array) -> tuple[Array, Array, Array]:
    """_softmax_logs on an Array API namespace: the same terms, the top entries chosen by a mask."""
    xp = namespace(z)
    top = xp.argmax(z, axis=1)
    is_top = _top_mask(top, z.shape[1])
    log_a = log_softmax(z)
    with np.errstate(divide="ignore"):  # (array_api_strict computes with NumPy)
        log_1ma = xp.log1p(-xp.exp(log_a))
    others = xp.where(is_top, -xp.inf, z - xp.take_along_axis(z, top[:, None], axis=1))
    second = xp.max(others, axis=1, keepdims=True)
    log_others = second + xp.log(xp.sum(xp.exp(others - second), axis=1, keepdims=True))
    return log_a, xp.where(is_top, log_others + log_a, log_1ma), top


def _bce_softmax_delta_xp(log_a: Array, log_1ma: Array, top: Array, y: Array) -> Array:
    """binary_cross_entropy_softmax_delta's terms on an Array API namespace (the top entries by a mask)."""
    xp = namespace(log_a)
    is_top = _top_mask(top, log_a.shape[1])

    def at_top(x):
        return xp.sum(xp.where(is_top, x, 0.0), axis=1)

    a, y_top, a_top = xp.exp(log_a), at_top(y), xp.exp(at_top(log_a))
    with np.errstate(over="ignore", invalid="ignore"):  # r_top may overflow: replaced next
        u = xp.where(is_top, 0.0, (1 - y) * xp.exp(log_a - log_1ma))
        t = xp.where(is_top, 0.0, xp.exp(log_a - at_top(log_1ma)[:, None]))
    R_rest, y_sum = xp.sum(u, axis=1), xp.sum(y, axis=1)
    delta = a * (y_sum - R_rest)[:, None] - y + u - (a_top * (1 - y_top))[:, None] * t
    top_value = a_top * (y_sum - R_rest) - y_top + (1 - y_top) * a_top
    return xp.where(is_top, top_value[:, None], delta)


builtin(
    Loss(
        "binary_cross_entropy", binary_cross_entropy, binary_cross_entropy_dL_da,
        shortcut="sigmoid", from_z=binary_cross_entropy_from_z,
        needs_probabilities=True, classification=True,
        crossed={"softmax": FromZ(binary_cross_entropy_softmax_from_z, binary_cross_entropy_softmax_delta)},
        kernel=LossKernel(binary_cross_entropy_total_loop),
    )
)
