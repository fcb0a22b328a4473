"""Weight decay and the L2 penalty: one rule for which parameters decay, one implementation for every path.

Which parameters decay is what each layer declares (``Layer.decayed``: Dense's W, not its b);
FlatParams records it per parameter, and ``decayed_spans`` turns that into the [start, stop)
spans of the flat vector that every path uses: the L2 term of fit's loss (training/gradients.py),
an optimizer's coupled weight decay (an L2 gradient) and AdamW's decoupled one (a shrink), in the
readable step (NumPy, or the kernels below where the backend compiles them) and in the compiled
step (the same kernels). The kernels are plain Python loops numba compiles; they do what the
NumPy lines do, in the same order, so both give the same bits.
"""

from __future__ import annotations

import weakref

import numpy as np

from .arrays import namespace

Array = np.ndarray

_spans: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # FlatParams -> its decayed spans


def decayed_spans(flat) -> Array:
    """(k, 2) int64: [start, stop) in ``flat.theta`` of each parameter its layer declares decayed."""
    spans = _spans.get(flat)
    if spans is None:
        spans = np.array([(s.start, s.stop) for s, decayed in zip(flat.slices, flat.decayed, strict=True)
                          if decayed], dtype=np.int64).reshape(-1, 2)
        _spans[flat] = spans
    return spans


def add_l2(theta: Array, grad: Array, spans: Array, c: float, ops=None) -> float:
    """grad += c theta over the decayed spans (the gradient of (c / 2) ||W||^2); returns sum ||W||^2 (float64).
    By the kernel where the backend ``ops`` compiles it, else (ops None too) by the NumPy lines."""
    kernel = ops.kernel(add_l2_loop) if ops is not None else None
    if kernel is not None:
        return float(kernel(theta, grad, spans, c))
    squares = 0.0
    for start, stop in spans:
        W, dW = theta[start:stop], grad[start:stop]
        dW += c * W
        squares += float(np.vdot(W, W)) if isinstance(W, np.ndarray) else float(namespace(W).vecdot(W, W))
    return squares


def add_l2_loop(theta, grad, spans, c):
    """add_l2's kernel: grad_i += c theta_i over the spans (c cast to theta's dtype); sum theta_i^2 in float64."""
    c = theta.dtype.type(c)
    squares = 0.0
    for k in range(spans.shape[0]):
        for i in range(spans[k, 0], spans[k, 1]):
            grad[i] += c * theta[i]
            squares += np.float64(theta[i]) * theta[i]
    return squares


def shrink(theta: Array, spans: Array, factor: float, ops) -> None:
    """theta *= factor over the decayed spans: decoupled weight decay (AdamW, factor = 1 - lr lambda)."""
    kernel = ops.kernel(shrink_loop) if ops is not None else None
    if kernel is not None:
        kernel(theta, spans, factor)
        return
    for start, stop in spans:
        theta[start:stop] *= factor


def shrink_loop(theta, spans, factor):
    """shrink's kernel: theta_i *= factor (cast to theta's dtype) over the spans."""
    factor = theta.dtype.type(factor)
    for k in range(spans.shape[0]):
        for i in range(spans[k, 0], spans[k, 1]):
            theta[i] *= factor
