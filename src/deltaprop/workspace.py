"""Preallocated arrays for training: one batch's z^l, a^l, delta^l and dropout masks.

The training loop runs every batch through the same arrays (the last, shorter batch
through their first rows), and backward() writes dW^l, db^l into views of the
training's gradient vector (FlatParams), so an epoch allocates nothing per batch. The
buffers are the parameter vector's backend's (``flat.ops.alloc``): on a device with it.
"""

from __future__ import annotations

import numpy as np

from .backprop import Grads, Trace


class Workspace:
    """Arrays of shape (batch_size, n_l) for l = 1..L; index 0 is the input layer."""

    def __init__(self, layers: list, flat, batch_size: int):
        def buffers(wanted):
            return [None] + [flat.ops.alloc((batch_size, layer.n_out), flat.theta.dtype) if wanted(layer) else None
                             for layer in layers]

        self.batch_size = batch_size
        self.z, self.a, self.delta = buffers(bool), buffers(bool), buffers(bool)
        self.mask = buffers(lambda layer: layer.dropout > 0)
        self.flat = flat
        self.grads = flat.grads_out()
        self.snapshot = flat.ops.alloc(flat.theta.shape, flat.theta.dtype)  # the parameters at an epoch's start
        self._full = (self._trace_rows(batch_size), self._out_rows(batch_size))  # every batch but the last

    def fits(self, flat, batch_size: int) -> bool:
        """Still usable for this parameter vector and batch size."""
        return batch_size == self.batch_size and self.flat is flat

    def trace(self, a0: np.ndarray) -> Trace:
        """Trace whose z[l], a[l], mask[l] are the first m rows of the buffers (m = len(a0)), a[0] = a0.

        A full batch gets the same Trace object each time (propagate overwrites its entries).
        """
        m = a0.shape[0]
        trace = self._full[0] if m == self.batch_size else self._trace_rows(m)
        trace.a[0] = a0
        return trace

    def out(self, m: int) -> Grads:
        """Where backward() writes: the gradient views and the first m rows of delta."""
        return self._full[1] if m == self.batch_size else self._out_rows(m)

    def _trace_rows(self, m: int) -> Trace:
        return Trace(_rows(self.z, m), [None] + _rows(self.a, m)[1:], _rows(self.mask, m))

    def _out_rows(self, m: int) -> Grads:
        return Grads(self.grads.params, _rows(self.delta, m))


def _rows(arrays: list, m: int) -> list:
    return [None if arr is None else arr[:m, ...] for arr in arrays]  # (the standard's spelling of rows 0..m-1)
