"""The fused loops of NumbaOps, as plain Python: numba compiles each once per dtype.

An Adam step in NumPy is a dozen whole-array operations, each reading and writing
every parameter; here it is one loop that reads g, m, v, theta once. Every loop takes
C-contiguous arrays of one float dtype (of any shape for the element-wise ones, which
walk them as flat vectors; (m, n) batches for the row-wise ones) and scalars already
cast to that dtype (a Python float would turn a float32 loop into float64): NumbaOps
guarantees both. Operations keep NumpyOps' order, so results match it to within
rounding (bit for bit where no exp or log is involved; those may differ in the last
place, and the cross-entropy value is computed from a^L rather than z^L).

They pay off twice: fewer passes over memory for big arrays, and one call instead of
several (about 1 us of Python and NumPy overhead each) for the small batches of small
networks.
"""

from __future__ import annotations

import numpy as np


def adam(theta, g, m, v, coefficients):
    """m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  theta -= step_size m / (sqrt(v) + eps_hat).

    coefficients: (b1, 1-b1, b2, 1-b2, eps_hat, step_size), one tuple (numba passes a tuple of scalars as
    cheaply as six arguments, while keyword arguments cost microseconds a call)."""
    beta1, one_minus_beta1, beta2, one_minus_beta2, eps_hat, step_size = coefficients
    theta, g, m, v = theta.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1)  # flat views (C-contiguous)
    for i in range(theta.size):
        m[i] = beta1 * m[i] + one_minus_beta1 * g[i]
        v[i] = beta2 * v[i] + one_minus_beta2 * (g[i] * g[i])
        theta[i] -= (m[i] / (np.sqrt(v[i]) + eps_hat)) * step_size


def sgd(theta, g, lr):
    """theta -= lr g."""
    theta, g = theta.reshape(-1), g.reshape(-1)
    for i in range(theta.size):
        theta[i] -= g[i] * lr


def sgd_momentum(theta, g, velocity, mu_lr, first, nesterov):
    """v = g (first step) or mu v + g;  theta -= lr (g + mu v) (Nesterov) or lr v.  mu_lr: (mu, lr)."""
    mu, lr = mu_lr
    theta, g, velocity = theta.reshape(-1), g.reshape(-1), velocity.reshape(-1)
    for i in range(theta.size):
        velocity[i] = g[i] if first else velocity[i] * mu + g[i]
        direction = velocity[i] * mu + g[i] if nesterov else velocity[i]
        theta[i] -= direction * lr


def rmsprop(theta, g, square_avg, coefficients):
    """v = alpha v + (1-alpha) g^2;  theta -= lr g / (sqrt(v) + eps).  coefficients: (alpha, 1-alpha, eps, lr)."""
    alpha, one_minus_alpha, eps, lr = coefficients
    theta, g, square_avg = theta.reshape(-1), g.reshape(-1), square_avg.reshape(-1)
    for i in range(theta.size):
        square_avg[i] = alpha * square_avg[i] + one_minus_alpha * (g[i] * g[i])
        theta[i] -= (g[i] / (np.sqrt(square_avg[i]) + eps)) * lr


def rmsprop_momentum(theta, g, square_avg, buf, coefficients):
    """As _rmsprop, with buf = mu buf + g / (sqrt(v) + eps) taking the step.
    coefficients: (alpha, 1-alpha, eps, mu, lr)."""
    alpha, one_minus_alpha, eps, mu, lr = coefficients
    theta, g, square_avg, buf = theta.reshape(-1), g.reshape(-1), square_avg.reshape(-1), buf.reshape(-1)
    for i in range(theta.size):
        square_avg[i] = alpha * square_avg[i] + one_minus_alpha * (g[i] * g[i])
        buf[i] = buf[i] * mu + g[i] / (np.sqrt(square_avg[i]) + eps)
        theta[i] -= buf[i] * lr


def flush_small(x, threshold):
    """x_i = 0 where |x_i| <= threshold (optimizer state about to turn subnormal); NaN and inf stay."""
    x = x.reshape(-1)
    for i in range(x.size):
        if abs(x[i]) <= threshold:
            x[i] = x[i] * 0


def scaled_difference(a, y, scale, out):
    """out = (a - y) * scale, element by element."""
    a, y, out = a.reshape(-1), y.reshape(-1), out.reshape(-1)
    for i in range(out.size):
        out[i] = (a[i] - y[i]) * scale


def relu_chain(g, z):
    """g *= sigma'(z) = 1[z > 0] for relu; NaN in z stays NaN in g (divergence shows)."""
    g, z = g.reshape(-1), z.reshape(-1)
    for i in range(g.size):
        if not z[i] > 0:
            g[i] = g[i] * 0 if z[i] <= 0 else z[i]


def bias_relu(z, b, a):
    """z += b for every row of z (m, n), then a = max(z, 0): z^l and a^l in one call (a is not z).

    Two short loops per row, not one: a loop that writes both z and a cannot be
    vectorized (they might overlap), and the row is still in cache for the second.
    """
    for r in range(z.shape[0]):
        z_r, a_r = z[r], a[r]
        for j in range(b.size):
            z_r[j] += b[j]
        for j in range(b.size):
            a_r[j] = z_r[j] if z_r[j] > 0 else z_r[j] * 0  # z * 0 keeps NaN


def bias_relu_over_z(z, b):
    """z = max(z + b, 0) in place: inference, where z^l is not kept.

    Its own kernel because a loop that may write z and a at the same address
    cannot be vectorized: passing a = z to bias_relu runs five times slower.
    """
    for r in range(z.shape[0]):
        for j in range(z.shape[1]):
            v = z[r, j] + b[j]
            z[r, j] = v if v > 0 else v * 0


def softmax(z, b, a):
    """a_rj = exp(z_rj - max_k z_rk) / sum_k exp(z_rk - max_k z_rk), row by row of z (m, n).

    With a bias b (n,), z += b first, stored (z^l, then a^l, in one call: the output
    layer's forward); with b None, z is left as it is. a may be z.
    """
    for r in range(z.shape[0]):
        if b is not None:
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


def batch_sum(delta, out):
    """out_j = sum_r delta_rj for delta (m, n): from 0, rows added in order, as NumPy's sum(axis=0) does."""
    for j in range(out.size):
        out[j] = 0
    for r in range(delta.shape[0]):
        for j in range(out.size):
            out[j] += delta[r, j]


def cross_entropy(z, a, y, weights):
    """sum_r w_r L_r with L_r = -sum_j y_rj log a_rj, a = softmax(z) (w_r = 1 without weights).

    a^L comes from the forward pass, so a row costs a log per nonzero target (one, for
    one-hot labels) instead of an exp per output. A row where such an a_rj is below the
    smallest normal number (it underflowed) or NaN takes losses.cross_entropy_from_z's
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
        total += per_sample if weights is None else per_sample * weights[r]
    return total
