"""Whole compiled training steps (ops/compiled_step.py) for the small networks and batches where they pay.

trainer.py's readable step (propagate, backprop.backward, the optimizer) is the reference
and the general path. An epoch runs as compiled spans of batches instead when the
backend has them (NumbaOps) and every part of the fit is one they compute the same way:
Dense layers of relu, sigmoid, tanh or identity (softmax at the output only), no dropout;
cross_entropy after softmax, binary_cross_entropy after sigmoid, or mse (not after softmax);
SGD (with or without momentum), Adam or AdamW; in-memory dense arrays on one process; no
callback that looks at each step (the progress bar is told after each span); and small
products (at most MAX_PRODUCT multiply-adds), where the calls of the readable step cost more
than the arithmetic. The products are BLAS's in both, so the steps give the readable step's
numbers (bit for bit where the element-wise formulas are the same; tested).
"""

from __future__ import annotations

import numpy as np

from ..activations import ACTIVATIONS
from ..callbacks import Callback, Progress
from ..layers import Dense
from ..losses import LOSSES, Loss
from ..optimizers import SGD, Adam, AdamW
from .batches import EpochData

Array = np.ndarray

# The largest matrix product (m n_{l-1} n_l multiply-adds) of a step that compiles: OpenBLAS runs products up to
# 2^18 on one thread, so the BLAS that numba calls (SciPy's) and NumPy's never both keep a pool of threads busy.
MAX_PRODUCT = 1 << 18
SPAN = 64  # batches per compiled call when a progress bar is to be told of them
_ACTIVATIONS = {ACTIVATIONS[name]: name.upper() for name in ("relu", "sigmoid", "tanh", "identity", "softmax")}


def compiled_steps(net, state, data, config, callbacks) -> CompiledSteps | None:
    """The compiled steps for this epoch, or None when the readable step must run (see the module's text);
    ``config``: the fit's TrainConfig."""
    batch_size, clip_norm, l2 = config.batch_size, config.clip_norm, config.l2
    cached = data.compiled  # (BatchSource: None where the rows are not in memory)
    if cached is not None and cached.flat is state.flat and cached.optimizer is state.optimizer:
        return cached  # made by an earlier epoch of this fit, for the same parameters and optimizer
    codes = net.ops.steps
    if codes is None or not codes.CACHED or not data.in_memory or data.part[1] > 1:
        return None
    if not _c_arrays(net, data):
        return None
    layout = _layout(net, state.flat_for(net.layers, net.dtype), codes, min(batch_size, data.m))
    rule = _rule(state.optimizer, codes)
    if layout is None or rule is None or any(_watches_steps(cb) for cb in callbacks):
        return None
    loss = _loss_code(net, codes)
    if loss is None or min(batch_size, data.m) * max(l.n_in * l.n_out for l in net.layers) > MAX_PRODUCT:
        return None
    data.compiled = CompiledSteps(net, state, data, layout, loss, rule, min(batch_size, data.m), clip_norm, l2,
                                  callbacks)
    return data.compiled


def _c_arrays(net, data: EpochData) -> bool:
    """True when X and Y are C-ordered NumPy arrays of the network's dtype (each other layout would compile
    the kernel once more; the readable step takes them as they are)."""
    return all(isinstance(a, np.ndarray) and a.flags.c_contiguous and a.dtype == net.dtype for a in (data.X, data.Y))


def _layout(net, flat, codes, batch_size: int) -> Array | None:
    """compiled_step's layout table of the network (None if a layer is not one the compiled steps know)."""
    for l, layer in enumerate(net.layers, start=1):
        name = _ACTIVATIONS.get(layer.activation)
        if type(layer) is not Dense or layer.dropout or name is None or (name == "SOFTMAX" and l < net.L):
            return None
    starts = {key: part.start for key, part in zip(flat.keys, flat.slices, strict=True)}
    layout, rows_at = np.zeros((net.L + 1, 5), np.int64), 0
    layout[0, 0] = net.layers[0].n_in
    for l, layer in enumerate(net.layers, start=1):
        code = getattr(codes, _ACTIVATIONS[layer.activation])
        layout[l] = (layer.n_out, starts[l, "W"], starts[l, "b"], code, rows_at)
        rows_at += batch_size * layer.n_out
    return layout


def _loss_code(net, codes) -> int | None:
    """The compiled equation (1) for the network's loss after its output activation (None: the readable step's).

    Only the built-in losses: the kernel has their formulas, not those of a Loss made by the user.
    """
    loss: Loss = net.loss_fn
    output = net.layers[-1].activation
    if loss is not LOSSES.get(loss.name):
        return None
    if loss.cancels_with(output):  # the shortcut (a^L - y) / m: cross_entropy after softmax, bce after sigmoid
        return getattr(codes, loss.name.upper())
    if loss.name == "mse" and output.name != "softmax":  # softmax's sigma' is a Jacobian: the readable product
        return codes.MSE
    return None


def _rule(optimizer, codes) -> int | None:
    """The compiled update of this optimizer (None for one they do not have)."""
    if type(optimizer) in (Adam, AdamW):
        return codes.ADAM
    if type(optimizer) is SGD:
        return codes.NESTEROV if optimizer.nesterov else codes.MOMENTUM if optimizer.momentum else codes.SGD
    return None


def _watches_steps(cb: Callback) -> bool:
    """True for a callback that looks at each step's gradients or weights (a compiled span would hide them)."""
    kind = type(cb)
    return kind.on_backward is not Callback.on_backward or \
        kind.on_batch_end not in (Callback.on_batch_end, Progress.on_batch_end)


class CompiledSteps:
    """One epoch's compiled spans: the kernel's buffers and arguments, made once per epoch (nothing per batch)."""

    def __init__(self, net, state, data: EpochData, layout, loss: int, rule: int, rows: int, clip_norm, l2: float,
                 callbacks):
        flat, dtype, optimizer = state.flat, net.dtype, state.optimizer
        self.codes, self.net, self.flat, self.optimizer, self.data = net.ops.steps, net, flat, optimizer, data
        self.kernel, self.rule = self.codes.train, rule
        self.layout, self.loss, self.callbacks = layout, loss, callbacks
        self.span = SPAN if any(isinstance(cb, Progress) for cb in callbacks) else None
        size = rows * int(layout[1:, 0].sum())
        self.work = (np.empty(size, dtype), np.empty(size, dtype), np.empty(size, dtype))
        X, Y = data.X, data.Y
        w = np.empty(0) if data.w is None else np.asarray(data.w, np.float64)
        self.arrays = (X, Y, w, np.empty((rows, X.shape[1]), dtype), np.empty((rows, Y.shape[1]), dtype),
                       np.empty(rows if w.size else 0))
        self.predicted = np.empty(data.m if data.predicted is not None else 0, np.int64)
        self.in_order = np.arange(data.m)  # the order of an epoch without shuffling
        slots, _ = optimizer.flat_slots(flat, net.ops)
        empty = flat.theta[:0]
        self.state = (slots.get("m", slots.get("velocity", empty)), slots.get("v", empty))
        c = np.dtype(dtype).type
        beta1, beta2 = getattr(optimizer, "beta1", 0.0), getattr(optimizer, "beta2", 0.0)
        self.betas = np.array([c(beta1), c(1 - beta1), c(beta2), c(1 - beta2)], dtype)
        self.limits = (float(l2), float(clip_norm or 0.0), float(c(np.finfo(dtype).tiny * 2.0**20)))
        self.batch_size = rows
        if not self.codes.compiled_before():  # a pause of 15-25 s: say why, where the run reports progress
            for cb in callbacks:
                if isinstance(cb, Progress):
                    print("deltaprop: compiling the whole training step for small networks, once (15-25 s; "
                          "numba keeps it for later runs)", file=cb.stream, flush=True)

    def run(self, first: int, n_batches: int) -> tuple[int, float]:
        """Batches first.. of the epoch until its end or a batch the kernel refused (a loss or gradient not
        finite: the readable step then names it); returns (batches done, sum of their losses times rows)."""
        done, total = first, np.zeros(1)
        order = self.data.order if self.data.order is not None else self.in_order
        while done < n_batches:
            count = n_batches - done if self.span is None else min(self.span, n_batches - done)
            opt = self.optimizer
            taken = self.kernel(self.arrays, order, done, count, self.batch_size, self.flat.theta, self.flat.grad,
                                self.layout, self.loss, self.work, self.rule, self._hyperparameters(), self.betas,
                                *self.state, opt.t, *self._decay(), self.limits, self.predicted, total)
            opt.t += taken
            self._record(done, taken, n_batches)
            done += taken
            if taken < count:
                break
        return done - first, float(total[0])

    def _hyperparameters(self) -> tuple:
        """(lr, momentum, beta1, beta2, eps) in force (the kernel makes each Adam step's constants from them)."""
        opt = self.optimizer
        return (opt.lr, getattr(opt, "momentum", 0.0), getattr(opt, "beta1", 0.0), getattr(opt, "beta2", 0.0),
                getattr(opt, "eps", 0.0))

    def _decay(self) -> tuple[float, bool]:
        """Weight decay before each update: (lr lambda, True) for AdamW's decoupled form, (lambda, False) else."""
        opt = self.optimizer
        return (opt.lr * opt.weight_decay, True) if opt.decoupled else (opt.weight_decay, False)

    def _record(self, first: int, taken: int, n_batches: int) -> None:
        """The spans' predicted classes into the epoch's record, and the progress bar told of the batches."""
        if taken and self.predicted.size and self.data.predicted is not None:  # (a classifier's: both or neither)
            rows = slice(first * self.batch_size, min((first + taken) * self.batch_size, self.data.m))
            np.copyto(self.data.predicted[rows], self.predicted[rows], casting="unsafe")
        for cb in self.callbacks:
            for batch in range(first, first + taken):
                cb.on_batch_end(self.net, batch, n_batches)
