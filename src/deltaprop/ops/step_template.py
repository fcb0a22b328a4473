"""The text of the compiled training step: compiled_step.py copies it into one file per run, then binds the
names below to the rules' kernels that run uses (nothing here runs as it stands).

A span of batches in one call: each batch's rows gathered, z^l and a^l layer by layer,
equation (1), then (3), (4) and (2) from the top layer down, the finiteness check, L2,
clipping and the optimizer's update, the same steps in the same order as the readable
step (training/loop.py's train_step), through the same kernels: each activation's
forward and chain, the loss's total and dL/da, batch_scale, the regularizer, the
clipping and the optimizer's update are those rules' own functions. The matrix
products are BLAS's (numba's np.dot). backward() in backprop.py stays the reference.

The arguments are records (tuples), so that no function takes more than six:
    data:   (X, Y, w, xb, yb, wb, order): the epoch's arrays (w, wb empty without sample weights),
            the batch buffers and this epoch's row order
    model:  (theta, grad, layout, spans, zs, as_, deltas): the flat parameters and gradient, the layout table,
            the decayed spans (regularizer.py) and the z, a, delta buffers
    opt:    (state, hyper, t0, decay): the optimizer's state arrays, its hyper(), its step count before the
            span, and its decay() (0: none)
    limits: (l2, clip_norm or 0, the state flush threshold); span: (first batch, count, batch_size);
    out:    (predicted classes or empty, total: a 1-element float64 array)
``layout`` (int64, (L + 1, 5)): for l = 1..L, [n_l, offset of W^l in theta, offset of b^l, code of the
activation (its index in this run's activations), offset of layer l's rows in the z, a, delta buffers];
row 0 holds n_0.
"""

from typing import Any

import numpy as np

# Bound per run by compiled_step.assemble: the rules' kernels, this run's constants and the dispatch by
# activation code (written after this text). Placeholders here, so that the text reads as Python.
_bound_per_run: Any = None
activate = times_sigma_prime = flush_state = _bound_per_run
loss_total = loss_dL_da = opt_kernel = opt_constants = _bound_per_run
difference = batch_scale = add_l2 = shrink = clip_to = batch_sum = _bound_per_run
SHORTCUT = DECOUPLED = False
FLUSH_EVERY = 1


def rows(buffer, layout, l, m):
    """Layer l's first m rows of a z, a or delta buffer, as an (m, n_l) array."""
    n, start = layout[l, 0], layout[l, 4]
    return buffer[start:start + m * n].reshape((m, n))


def params(theta, layout, l):
    """W^l (n_{l-1}, n_l) and b^l (n_l,): views of the parameter vector ``theta``."""
    n_in, n_out, w_at, b_at = layout[l - 1, 0], layout[l, 0], layout[l, 1], layout[l, 2]
    return theta[w_at:w_at + n_in * n_out].reshape((n_in, n_out)), theta[b_at:b_at + n_out]


def forward(x, model, m):
    """z^l = a^{l-1} W^l + b^l and a^l = sigma(z^l) for l = 1..L, a^0 = x (m rows)."""
    theta, _, layout, _, zs, as_, _ = model
    a_prev = x
    for l in range(1, layout.shape[0]):
        W, b = params(theta, layout, l)
        z, a = rows(zs, layout, l, m), rows(as_, layout, l, m)
        np.dot(a_prev, W, z)
        activate(z, b, a, layout[l, 3])
        a_prev = a


def output_error(model, y, w, factor, m):
    """Equation (1) into delta^L; returns sum_r w_r L_r (w_r = 1 when w is empty), in float64.

    The shortcut pairs: delta^L = (a^L - y) w_r / sum(w); else dL/da^L scaled the same way, ⊙ sigma'(z^L).
    """
    _, _, layout, _, zs, as_, deltas = model
    L = layout.shape[0] - 1
    z, a, delta = rows(zs, layout, L, m), rows(as_, layout, L, m), rows(deltas, layout, L, m)
    if SHORTCUT:
        difference(a, y, delta)
    else:
        loss_dL_da(a, y, delta)
    batch_scale(delta, w, factor)
    total = loss_total(z, a, y, w)
    if not SHORTCUT:
        times_sigma_prime(delta, z, layout[L, 3])
    return total


def backward(x, model, m):
    """Equations (3), (4) and (2) from layer L down, delta^L already in place (equation (1))."""
    theta, grad, layout, _, zs, as_, deltas = model
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
            times_sigma_prime(delta_below, rows(zs, layout, l - 1, m), layout[l - 1, 3])  # ... ⊙ sigma'(z^{l-1})


def update(model, opt, t, tiny):
    """Step t (from 1) of the optimizer, after its weight decay, as Optimizer.step_flat takes it."""
    theta, grad, _, spans, _, _, _ = model
    state, hyper, _, decay = opt
    if decay != 0:
        if DECOUPLED:
            shrink(theta, spans, decay)
        else:
            add_l2(theta, grad, spans, decay)
    opt_kernel(theta, grad, state, opt_constants(hyper, np.float64(t)))
    if t % FLUSH_EVERY == 0:  # optimizer state about to turn subnormal (optimizers/base.py)
        flush_state(state, tiny)


def gather(data, start, m):
    """Rows order[start:start + m] of X, Y (and w, unless empty) into the batch buffers; returns 1 / m, or
    1 / sum of their weights (0 when that is not positive). Element loops, not xb[r, :] = X[i]: a slice
    assignment brings numba's broadcasting checks and their messages, seconds of compiling."""
    X, Y, w, xb, yb, wb, order = data
    total = 0.0
    for r in range(m):
        i = order[start + r]
        for j in range(X.shape[1]):
            xb[r, j] = X[i, j]
        for j in range(Y.shape[1]):
            yb[r, j] = Y[i, j]
        if w.size:
            wb[r] = w[i]
            total += w[i]
    if not w.size:
        return 1.0 / m
    return 1.0 / total if total > 0 else 0.0


def record(a, predicted, start):
    """The class each row of a^L stands for (its argmax, or a > 0.5 for one output) into predicted[start:]."""
    for r in range(a.shape[0]):
        if a.shape[1] == 1:
            predicted[start + r] = 1 if a[r, 0] > 0.5 else 0
        else:
            predicted[start + r] = np.argmax(a[r])


def train(data, model, opt, limits, span, out):
    """Batches first .. first + count - 1 of this epoch's order: returns how many steps it took.

    Adds each batch's loss times its rows to total[0] and its predicted classes to ``predicted`` (unless
    empty). Stops before the update of a batch whose loss or gradient is not finite: the readable step names it.
    """
    xb, yb, wb, order = data[3], data[4], data[5], data[6]
    theta, grad, layout, spans, _, as_, _ = model
    l2, clip, tiny = limits
    first, count, batch_size = span
    predicted, total = out
    L = layout.shape[0] - 1
    for i in range(count):
        start = (first + i) * batch_size
        m = min(batch_size, order.size - start)
        factor = gather(data, start, m)
        x, y, weights = xb[:m], yb[:m], wb[:m]
        forward(x, model, m)
        batch_loss = output_error(model, y, weights, factor, m)
        backward(x, model, m)
        batch_loss *= factor
        if l2:
            batch_loss += 0.5 * l2 * factor * add_l2(theta, grad, spans, l2 * factor)
        norm2 = np.dot(grad, grad)  # in the dtype, as the readable check: inf when it overflows
        if not (np.isfinite(batch_loss) and np.isfinite(norm2)):
            return i
        if clip:
            clip_to(grad, norm2, clip)
        update(model, opt, opt[2] + i + 1, tiny)
        total[0] += batch_loss * m
        if predicted.size:
            record(rows(as_, layout, L, m), predicted, start)
    return count
