"""Whole compiled training steps (ops/compiled_step.py) for the small networks and batches where they pay.

loop.py's readable step (propagate, backprop.backward, the optimizer) is the reference
and the general path. An epoch runs as compiled spans of batches instead when
``compiled_reason`` finds nothing against it: a backend that compiles (NumbaOps), Dense
layers without dropout whose activations have kernels (with an element-wise sigma' below
the output), a loss with a kernel for its pairing (its shortcut pair, or dL/da with the
output's sigma'), an optimizer with a kernel, in-memory C-ordered arrays of the network's
dtype on one process, no callback that looks at each step (the progress bar is told after
each span), and small products (at most MAX_PRODUCT multiply-adds), where the calls of
the readable step cost more than the arithmetic. The step is assembled from the rules'
own kernels (compiled_step.Recipe), so it computes what the readable step computes, in
the same order (bit for bit where the kernels do what the NumPy lines do; tested).
"""

from __future__ import annotations

import numpy as np

from ..callbacks import Callback, Progress
from ..layers import Dense
from ..losses import batch_scale_loop, difference_loop
from ..optimizers import FLUSH_EVERY, flush_small_loop, flush_threshold
from ..regularizer import add_l2_loop, decayed_spans, shrink_loop
from .batches import EpochData
from .gradients import clip_to

Array = np.ndarray

# The largest matrix product (m n_{l-1} n_l multiply-adds) of a step that compiles: OpenBLAS runs products up to
# 2^18 on one thread, so the BLAS that numba calls (SciPy's) and NumPy's never both keep a pool of threads busy.
MAX_PRODUCT = 1 << 18
SPAN = 64  # batches per compiled call when a progress bar is to be told of them
PARTS = (("difference", difference_loop), ("batch_scale", batch_scale_loop), ("add_l2", add_l2_loop),
         ("shrink", shrink_loop), ("clip_to", clip_to), ("flush", flush_small_loop))


def compiled_reason(net, optimizer, data=None, batch_size: int = 32, callbacks=()) -> str | None:
    """None when a fit of ``net`` with ``optimizer`` runs compiled, else why it takes the readable step.

    ``data`` (a BatchSource: EpochData or StreamData; None: arrays in memory assumed) and ``callbacks`` as fit has them.
    """
    steps = getattr(net.ops, "steps", None)
    if steps is None:
        return f"the {net.ops.name} backend has no compiled step (numba's has)"
    if not steps.CACHED:
        return "no writable cache folder: every process would compile the step again"
    reason = _data_reason(net, data) or _layers_reason(net) or _loss_reason(net)
    if reason is None and getattr(optimizer, "kernel", None) is None:
        reason = f"optimizer {optimizer.name!r} has no kernel"
    watching = [type(cb).__name__ for cb in callbacks if _watches_steps(cb)]
    if reason is None and watching:
        reason = f"callback {watching[0]} looks at every step"
    rows = batch_size if data is None else min(batch_size, data.m)
    if reason is None and rows * max(layer.n_in * layer.n_out for layer in net.layers) > MAX_PRODUCT:
        reason = "products above 2^18 multiply-adds (BLAS's threads pay there)"
    return reason


def describe(net, optimizer, data=None, batch_size: int = 32, callbacks=(), of: str = "") -> str:
    """One line: "training step: compiled (numba)" or "readable step: <why>". ``of`` says which fit it describes
    where that is not the one about to run (``info``: a further fit of a saved model, not how it was trained)."""
    reason = compiled_reason(net, optimizer, data, batch_size, callbacks)
    of = f" ({of})" if of else ""
    return f"training step{of}: compiled ({net.ops.name})" if reason is None else f"readable step{of}: {reason}"


def _data_reason(net, data) -> str | None:
    if data is None:
        return None
    if not data.in_memory:
        return "streamed data (the compiled step takes arrays in memory)"
    if data.part[1] > 1:
        return "training on several ranks"
    if not all(isinstance(a, np.ndarray) and a.flags.c_contiguous and a.dtype == net.dtype for a in (data.X, data.Y)):
        return "X or y is not a C-ordered array of the network's dtype"  # another layout would compile again
    return None


def _layers_reason(net) -> str | None:
    for l, layer in enumerate(net.layers, start=1):
        act = layer.activation
        if type(layer) is not Dense:
            return f"layer {l} is a {type(layer).__name__}"
        if layer.dropout:
            return f"layer {l} has dropout"
        if act.kernel is None:
            return f"activation {act.name!r} has no kernel"
        if act.kernel.chain is None and l < net.L:
            return f"activation {act.name!r} of hidden layer {l} has no element-wise sigma' kernel"
    return None


def _loss_reason(net) -> str | None:
    """Why the loss's equation (1) does not compile after the output activation (None: it does)."""
    loss, output = net.loss_fn, net.layers[-1].activation
    if loss.kernel is None:
        return f"loss {loss.name!r} has no kernel"
    if loss.cancels_with(output):
        return None
    if output.name in loss.crossed:
        return f"{loss.name} after {output.name} is computed from z by the readable step"
    if loss.kernel.dL_da is None:
        return f"loss {loss.name!r} has a kernel for its shortcut pair only, not after {output.name}"
    if output.kernel.chain is None:
        return f"{loss.name} after {output.name}: its sigma' is a Jacobian (the readable step's product)"
    return None


def recipe(net, optimizer):
    """The compiled_step.Recipe of this network and optimizer: the kernels of the rules they use."""
    acts = list(dict.fromkeys(layer.activation for layer in net.layers))
    loss = net.loss_fn
    return net.ops.steps.Recipe(
        activations=tuple((act.kernel.forward, act.kernel.chain) for act in acts),
        loss=(loss.kernel.total, loss.kernel.dL_da), shortcut=loss.cancels_with(net.layers[-1].activation),
        optimizer=(optimizer.kernel, type(optimizer).constants, len(optimizer.slots), optimizer.decoupled),
        parts=PARTS, flush_every=FLUSH_EVERY)


def _rules(net, optimizer) -> dict:
    """Each rule of the step, by the name an error gives it, with its kernel functions (compiled_step.failed)."""
    acts = [layer.activation for layer in net.layers]
    rules: dict[str, tuple] = {f"activation {act.name!r}": (act.kernel.forward, act.kernel.chain) for act in acts}
    rules[f"loss {net.loss_fn.name!r}"] = (net.loss_fn.kernel.total, net.loss_fn.kernel.dL_da)
    rules[f"optimizer {optimizer.name!r}"] = (optimizer.kernel,)
    return rules


def compiled_steps(net, state, data, config, callbacks) -> CompiledSteps | None:
    """The compiled steps for this epoch, or None when the readable step must run (see compiled_reason);
    ``config``: the fit's TrainConfig."""
    batch_size, clip_norm, l2 = config.batch_size, config.clip_norm, config.l2
    cached = data.compiled  # (BatchSource: None where the rows are not in memory)
    if cached is not None and cached.flat is state.flat and cached.optimizer is state.optimizer:
        return cached  # made by an earlier epoch of this fit, for the same parameters and optimizer
    if compiled_reason(net, state.optimizer, data, batch_size, callbacks) is not None:
        return None
    options = (min(batch_size, data.m), clip_norm, l2)
    data.compiled = CompiledSteps(net, state, data, options, callbacks)
    return data.compiled


def _layout(net, flat, batch_size: int) -> Array:
    """step_template's layout table: per layer n_l, where W^l and b^l start, the activation code, where its rows
    start in the z, a, delta buffers."""
    codes = {act: code for code, act in enumerate(dict.fromkeys(layer.activation for layer in net.layers))}
    starts = {key: part.start for key, part in zip(flat.keys, flat.slices, strict=True)}
    layout, rows_at = np.zeros((net.L + 1, 5), np.int64), 0
    layout[0, 0] = net.layers[0].n_in
    for l, layer in enumerate(net.layers, start=1):
        layout[l] = (layer.n_out, starts[l, "W"], starts[l, "b"], codes[layer.activation], rows_at)
        rows_at += batch_size * layer.n_out
    return layout


def _watches_steps(cb: Callback) -> bool:
    """True for a callback that looks at each step's gradients or weights (a compiled span would hide them)."""
    kind = type(cb)
    return kind.on_backward is not Callback.on_backward or \
        kind.on_batch_end not in (Callback.on_batch_end, Progress.on_batch_end)


class CompiledSteps:
    """One epoch's compiled spans: the step's buffers and records, made once per epoch (nothing per batch)."""

    def __init__(self, net, state, data: EpochData, options: tuple, callbacks):
        rows, clip_norm, l2 = options
        flat, dtype, optimizer = state.flat_for(net.layers, net.dtype), net.dtype, state.optimizer
        self.steps, self.net, self.flat, self.optimizer, self.data = net.ops.steps, net, flat, optimizer, data
        self.kernel = self.steps.assemble(recipe(net, optimizer))
        self.callbacks, self.batch_size = callbacks, rows
        self.span = SPAN if any(isinstance(cb, Progress) for cb in callbacks) else None
        layout = _layout(net, flat, rows)
        size = rows * int(layout[1:, 0].sum())
        work = (np.empty(size, dtype), np.empty(size, dtype), np.empty(size, dtype))
        self.model = (flat.theta, flat.grad, layout, decayed_spans(flat), *work)
        X, Y = data.X, data.Y
        w = np.empty(0) if data.w is None else np.asarray(data.w, np.float64)
        self.arrays = (X, Y, w, np.empty((rows, X.shape[1]), dtype), np.empty((rows, Y.shape[1]), dtype),
                       np.empty(rows if w.size else 0))
        self.predicted = np.empty(data.m if data.predicted is not None else 0, np.int64)
        self.in_order = np.arange(data.m)  # the order of an epoch without shuffling
        slots, _ = optimizer.flat_slots(flat, net.ops)
        self.state = tuple(slots[s] for s in optimizer.slots)
        self.limits = (float(l2), float(clip_norm or 0.0), flush_threshold(dtype))
        if not self.steps.compiled_before(self.kernel):  # a pause of seconds: say why, where progress is shown
            for cb in callbacks:
                if isinstance(cb, Progress):
                    print("deltaprop: compiling the whole training step for this network, once (a few seconds; "
                          "numba keeps it for later runs)", file=cb.stream, flush=True)

    def run(self, first: int, n_batches: int) -> tuple[int, float]:
        """Batches first.. of the epoch until its end or a batch the kernel refused (a loss or gradient not
        finite: the readable step then names it); returns (batches done, sum of their losses times rows)."""
        done, total = first, np.zeros(1)
        order = self.data.order if self.data.order is not None else self.in_order
        data, out = (*self.arrays, order), (self.predicted, total)
        while done < n_batches:
            count = n_batches - done if self.span is None else min(self.span, n_batches - done)
            opt = self.optimizer
            try:
                taken = self.kernel(data, self.model, (self.state, opt.hyper(), opt.t, opt.decay()), self.limits,
                                    (done, count, self.batch_size), out)
            except self.steps.ERRORS as exc:  # compiled at its first call: a kernel numba cannot type fails here
                raise self.steps.failed(exc, _rules(self.net, opt)) from None
            opt.t += taken
            self._record(done, taken, n_batches)
            done += taken
            if taken < count:
                break
        return done - first, float(total[0])

    def _record(self, first: int, taken: int, n_batches: int) -> None:
        """The spans' predicted classes into the epoch's record, and the progress bar told of the batches."""
        if taken and self.predicted.size and self.data.predicted is not None:  # (a classifier's: both or neither)
            rows = slice(first * self.batch_size, min((first + taken) * self.batch_size, self.data.m))
            np.copyto(self.data.predicted[rows], self.predicted[rows], casting="unsafe")
        for cb in self.callbacks:
            for batch in range(first, first + taken):
                cb.on_batch_end(self.net, batch, n_batches)
