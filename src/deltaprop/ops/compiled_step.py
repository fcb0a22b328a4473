"""Whole training steps of a small Dense network in one compiled call (numba), a span of batches at a time.

The readable step (training/loop.py's train_step: propagate, backprop.backward, the
optimizer) makes about twenty backend calls a batch; at 32 rows of a 64-64-10 network the
arithmetic is a third of its time and the Python between the calls the rest. Here a span
of batches runs in one call: each batch's rows gathered, z^l and a^l layer by layer,
equation (1), then (3), (4) and (2) from the top layer down, the finiteness check, clipping
and the optimizer's update. The matrix products are BLAS's sgemm/dgemm (numba's np.dot,
through SciPy's OpenBLAS) and the element-wise work is kernels.py's loops (bias + relu,
softmax, relu's sigma', the batch sum, the cross-entropy, the updates), so these steps
compute what the readable step computes, in the same order: the tests hold them to it bit
for bit for relu and softmax, and to a few ulps where a formula is written another way
here (sigmoid, tanh, binary cross-entropy, sample weights). backward() stays the reference.

``layout`` (int64, (L + 1, 5)): for l = 1..L, [n_l, offset of W^l in theta, offset of b^l,
activation code, offset of layer l's rows in the z, a, delta buffers]; row 0 holds n_0.
"""

from __future__ import annotations

import os

import numpy as np

from . import kernels
from .jit import compiled, uncached
from .numpy_ops import adam_constants

IDENTITY, RELU, SIGMOID, TANH, SOFTMAX = range(5)  # activation codes
CROSS_ENTROPY, BINARY_CROSS_ENTROPY, MSE = range(3)  # loss codes
SGD, MOMENTUM, NESTEROV, ADAM = range(4)  # update codes
FLUSH_EVERY = 64  # as optimizers.FLUSH_EVERY (checked by the tests)

bias_relu, softmax, relu_chain = compiled(kernels.bias_relu), compiled(kernels.softmax), compiled(kernels.relu_chain)
batch_sum, scaled_difference = compiled(kernels.batch_sum), compiled(kernels.scaled_difference)
cross_entropy, flush_small = compiled(kernels.cross_entropy), compiled(kernels.flush_small)
adam, sgd, sgd_momentum = compiled(kernels.adam), compiled(kernels.sgd), compiled(kernels.sgd_momentum)
step_constants = compiled(adam_constants)


@compiled
def activate(z, b, a, act):
    """z += b, then a = sigma(z), for the activation code ``act``."""
    if act == RELU:
        bias_relu(z, b, a)
    elif act == SOFTMAX:
        softmax(z, b, a)
    else:
        for r in range(z.shape[0]):
            for j in range(z.shape[1]):
                z[r, j] += b[j]
                v = z[r, j]
                if act == SIGMOID:  # the exponent is never positive
                    e = np.exp(-abs(v))
                    a[r, j] = 1 / (1 + e) if v >= 0 else e / (1 + e)
                elif act == TANH:
                    a[r, j] = np.tanh(v)
                else:
                    a[r, j] = v


@compiled
def times_sigma_prime(g, z, a, act):
    """g ⊙ sigma'(z^l) in place (relu: 1[z > 0]; sigmoid: a (1 - a); tanh: 1 - a^2; identity: 1)."""
    if act == RELU:
        relu_chain(g, z)
    elif act == SIGMOID or act == TANH:
        for r in range(g.shape[0]):
            for j in range(g.shape[1]):
                s = a[r, j]
                g[r, j] *= s * (1 - s) if act == SIGMOID else 1 - s * s


@compiled
def output_error(z, a, y, w, factor, loss, act, delta):
    """Equation (1) into ``delta`` (m, n_L); returns sum_r w_r L_r (w_r = 1 when w is empty), in float64.

    cross_entropy after softmax and binary_cross_entropy after sigmoid take the shortcut
    delta^L = (a^L - y) w_r / sum(w); mse is (a^L - y) w_r / sum(w) ⊙ sigma'(z^L).
    """
    if w.size:
        for r in range(a.shape[0]):
            scale = a.dtype.type(w[r] * factor)
            for j in range(a.shape[1]):
                delta[r, j] = (a[r, j] - y[r, j]) * scale
    else:
        scaled_difference(a, y, a.dtype.type(factor), delta)
    if loss == CROSS_ENTROPY:
        return cross_entropy(z, a, y, w) if w.size else cross_entropy(z, a, y, None)
    total = 0.0
    for r in range(a.shape[0]):
        per_sample = 0.0
        for j in range(a.shape[1]):
            if loss == BINARY_CROSS_ENTROPY:  # softplus(z) - y z, stably
                per_sample += max(z[r, j], 0) + np.log1p(np.exp(-abs(z[r, j]))) - y[r, j] * z[r, j]
            else:
                per_sample += 0.5 * (a[r, j] - y[r, j]) ** 2
        total += per_sample * w[r] if w.size else per_sample
    if loss == MSE:
        times_sigma_prime(delta, z, a, act)
    return total


@compiled
def rows(buffer, layout, l, m):
    """Layer l's first m rows of a z, a or delta buffer, as an (m, n_l) array."""
    n, start = layout[l, 0], layout[l, 4]
    return buffer[start:start + m * n].reshape((m, n))


@compiled
def params(theta, layout, l):
    """W^l (n_{l-1}, n_l) and b^l (n_l,): views of the parameter vector ``theta``."""
    n_in, n_out, w_at, b_at = layout[l - 1, 0], layout[l, 0], layout[l, 1], layout[l, 2]
    return theta[w_at:w_at + n_in * n_out].reshape((n_in, n_out)), theta[b_at:b_at + n_out]


@compiled
def forward(x, theta, layout, zs, as_, m):
    """z^l = a^{l-1} W^l + b^l and a^l = sigma(z^l) for l = 1..L, a^0 = x (m rows)."""
    a_prev = x
    for l in range(1, layout.shape[0]):
        W, b = params(theta, layout, l)
        z, a = rows(zs, layout, l, m), rows(as_, layout, l, m)
        np.dot(a_prev, W, z)
        activate(z, b, a, layout[l, 3])
        a_prev = a


@compiled
def backward(x, theta, grad, layout, zs, as_, deltas, m):
    """Equations (3), (4) and (2) from layer L down, delta^L already in place (equation (1))."""
    for l in range(layout.shape[0] - 1, 0, -1):
        W, _ = params(theta, layout, l)
        dW, db = params(grad, layout, l)
        delta = rows(deltas, layout, l, m)
        a_prev = x if l == 1 else rows(as_, layout, l - 1, m)
        np.dot(a_prev.T, delta, dW)                          # (3) dL/dW^l = (a^{l-1})^T delta^l
        batch_sum(delta, db)                                 # (4) dL/db^l = sum over the batch of delta^l
        if l > 1:
            delta_below = rows(deltas, layout, l - 1, m)
            np.dot(delta, W.T, delta_below)                  # (2) delta^l (W^l)^T ...
            times_sigma_prime(delta_below, rows(zs, layout, l - 1, m), rows(as_, layout, l - 1, m),
                              layout[l - 1, 3])              # ... ⊙ sigma'(z^{l-1})


@compiled
def add_to_weights(theta, grad, layout, c):
    """dL/dW^l += c W^l for every layer (biases are left alone); returns sum_l ||W^l||^2 in float64."""
    c, squares = theta.dtype.type(c), 0.0
    for l in range(1, layout.shape[0]):
        start, stop = layout[l, 1], layout[l, 1] + layout[l - 1, 0] * layout[l, 0]
        for i in range(start, stop):
            grad[i] += c * theta[i]
            squares += np.float64(theta[i]) * theta[i]
    return squares


@compiled
def update(theta, grad, layout, rule, hyper, betas, state1, state2, t, decay, decoupled, tiny):
    """One optimizer step of ``rule`` (step t, from 1), after its weight decay ``decay`` on the W^l: as an L2
    gradient, or decoupled (AdamW: W^l *= 1 - decay, decay = lr lambda). hyper: (lr, momentum, beta1, beta2,
    eps); betas: Adam's b1, 1 - b1, b2, 1 - b2 in theta's dtype. Scalars reach the kernels in theta's dtype."""
    c = theta.dtype.type
    lr, mu, beta1, beta2, eps = hyper
    if decay and decoupled:
        for l in range(1, layout.shape[0]):
            W, _ = params(theta, layout, l)
            W *= c(1 - decay)
    elif decay:
        add_to_weights(theta, grad, layout, decay)
    if rule == ADAM:
        eps_hat, step_size = step_constants(lr, beta1, beta2, eps, np.float64(t))  # as Python: pow(b, float(t))
        adam(theta, grad, state1, state2, (betas[0], betas[1], betas[2], betas[3], c(eps_hat), c(step_size)))
    elif rule == SGD:
        sgd(theta, grad, c(lr))
    else:
        sgd_momentum(theta, grad, state1, (c(mu), c(lr)), t == 1, rule == NESTEROV)
    if t % FLUSH_EVERY == 0:  # optimizer state about to turn subnormal (optimizers.py)
        if rule != SGD:
            flush_small(state1, tiny)
        if rule == ADAM:
            flush_small(state2, tiny)


@compiled
def gather(X, Y, w, order, start, m, xb, yb, wb):
    """Rows order[start:start + m] of X, Y (and w, unless empty) into the batch buffers; returns 1 / m, or
    1 / sum of their weights (0 when that is not positive)."""
    total = 0.0
    for r in range(m):
        i = order[start + r]
        xb[r, :] = X[i]
        yb[r, :] = Y[i]
        if w.size:
            wb[r] = w[i]
            total += w[i]
    if not w.size:
        return 1.0 / m
    return 1.0 / total if total > 0 else 0.0


@compiled
def record(a, predicted, start):
    """The class each row of a^L stands for (its argmax, or a > 0.5 for one output) into predicted[start:]."""
    for r in range(a.shape[0]):
        if a.shape[1] == 1:
            predicted[start + r] = 1 if a[r, 0] > 0.5 else 0
        else:
            predicted[start + r] = np.argmax(a[r])


@compiled
def train(data, order, first, count, batch_size, theta, grad, layout, loss, work, rule, hyper, betas, state1,
          state2, t0, decay, decoupled, limits, predicted, total):
    """Batches first .. first + count - 1 of this epoch's ``order``: returns how many steps it took.

    data: (X, Y, w, xb, yb, wb), w and wb empty without sample weights; work: (z, a, delta)
    buffers; limits: (l2, clip_norm or 0, the optimizer state's flush threshold in the dtype). Adds each
    batch's loss times its rows to total[0] and its predicted classes to ``predicted`` (unless empty).
    Stops before the update of a batch whose loss or gradient is not finite: the readable step names it.
    """
    X, Y, w, xb, yb, wb = data
    zs, as_, deltas = work
    l2, clip, tiny = limits
    L = layout.shape[0] - 1
    for i in range(count):
        start = (first + i) * batch_size
        m = min(batch_size, order.size - start)
        factor = gather(X, Y, w, order, start, m, xb, yb, wb)
        x, y, weights = xb[:m], yb[:m], wb[:m]
        forward(x, theta, layout, zs, as_, m)
        z_L, a_L = rows(zs, layout, L, m), rows(as_, layout, L, m)
        batch_loss = output_error(z_L, a_L, y, weights, factor, loss, layout[L, 3], rows(deltas, layout, L, m))
        backward(x, theta, grad, layout, zs, as_, deltas, m)
        batch_loss *= factor
        if l2:
            batch_loss += 0.5 * l2 * factor * add_to_weights(theta, grad, layout, l2 * factor)
        norm2 = np.dot(grad, grad)  # in the dtype, as the readable check: inf when it overflows
        if not (np.isfinite(batch_loss) and np.isfinite(norm2)):
            return i
        norm = np.float64(np.sqrt(norm2))
        if clip and norm > clip:
            grad *= theta.dtype.type(clip / norm)
        update(theta, grad, layout, rule, hyper, betas, state1, state2, t0 + i + 1, decay, decoupled, tiny)
        total[0] += batch_loss * m
        if predicted.size:
            record(a_L, predicted, start)
    return count


# Compiling these steps takes 15-25 s, once: numba keeps the machine code in its cache. Where it cannot (no
# writable folder), every process would pay that again, so training/fused.py keeps the readable step there.
CACHED = not uncached


def compiled_before() -> bool:
    """True when ``train`` is loaded in this process or numba's cache on disk holds it (False: the next call
    compiles it, 15-25 s). A best guess from numba's index file; True when numba's internals do not say."""
    if train.signatures:
        return True
    try:
        return os.path.exists(train._cache._cache_file._index_path)
    except AttributeError:
        return True
