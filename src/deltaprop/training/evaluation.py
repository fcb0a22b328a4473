"""evaluate: the loss and accuracy of a network on data, in chunks, without dropout."""

from __future__ import annotations

import numpy as np

from ..checks import ArrayLike, check_weights, check_X
from .batches import classes_of, gather

Array = np.ndarray


def evaluate(net, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> dict:
    """{"loss": L, "accuracy": fraction correct (classifiers)} on (X, y), no dropout."""
    a0 = check_X(X, net.layers[0].n_in, net.dtype, sparse_ok=True)
    return evaluate_encoded(net, a0, net.targets(y, a0.shape[0]), w=check_weights(sample_weight, a0.shape[0]))


def evaluate_encoded(net, X, Y, rows=None, *, w=None, chunk: int | None = None, comm=None) -> dict:
    """evaluate() for already checked X and encoded Y (only ``rows`` of them, if given), in chunks
    to bound memory (by default about 2 MB of X per chunk). With ``comm`` of several ranks, each
    evaluates its contiguous share of the rows and the sums are added over the ranks."""
    if comm is not None and comm.size > 1 and w is None:
        n = X.shape[0] if rows is None else len(rows)
        every = rows if rows is not None else np.arange(n)
        share = every[n * comm.rank // comm.size:n * (comm.rank + 1) // comm.size]
        sums = np.array(_sums(net, X, Y, share, chunk=chunk))
        loss, correct, weight = comm.sum(sums)
        return _figures(net, loss, correct, weight, n)
    m = X.shape[0] if rows is None else len(rows)
    return _figures(net, *_sums(net, X, Y, rows, w, chunk), m)


def _figures(net, total_loss: float, correct: float, weight: float, m: int) -> dict:
    out = {"loss": total_loss / weight if weight else 0.0}
    if net.is_classifier:
        out["accuracy"] = correct / m
    return out


def _sums(net, X, Y, rows=None, w=None, chunk: int | None = None) -> tuple[float, float, float]:
    """(sum of w L, rows classified right, sum of w) over the rows (all of X's, when None), a chunk at a time."""
    m = X.shape[0] if rows is None else len(rows)
    chunk = chunk or max(256, 2**21 // (X.shape[1] * X.dtype.itemsize))
    if rows is None and not isinstance(X, np.ndarray):
        rows = np.arange(m)  # a sparse X is densified a chunk at a time by gathering
    if rows is not None:  # held-out rows are gathered a chunk at a time into these, not copied as a set
        buffers = [np.empty((min(chunk, m),) + A.shape[1:], A.dtype) for A in (X, Y)]
    total_loss = correct = weight = 0.0
    for start in range(0, m, chunk):
        if rows is None:
            xb, yb = X[start:start + chunk], Y[start:start + chunk]
        else:
            xb, yb = gather((X, Y), rows[start:start + chunk], buffers)
        wb = None if w is None else w[start:start + chunk]
        chunk_weight = xb.shape[0] if wb is None else float(wb.sum())  # the chunk's mean times this: its sum
        xb, yb, wb = (None if part is None else net.ops.asarray(part) for part in (xb, yb, wb))  # to the device
        trace = net.propagate(xb)
        total_loss += net.loss_fn.value(trace.z[net.L], trace.a[net.L], yb, net.layers[-1].activation, wb,
                                                ops=net.ops) \
            * chunk_weight
        weight += chunk_weight
        if net.is_classifier:
            correct += _n_correct(net.ops.to_host(trace.a[net.L]), net.ops.to_host(yb))
    return total_loss, correct, weight


def _n_correct(a_L: Array, Y: Array) -> int:
    """Rows whose predicted class is the target's."""
    return int(np.count_nonzero(classes_of(a_L) == classes_of(Y)))
