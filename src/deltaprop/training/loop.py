"""The training loop: mini-batches, gradient steps, validation, callbacks, History.

``fit`` trains a network (any object with the Network's forward pass, loss and
layers: this module never imports the model) and keeps what training carries in a
TrainingState on ``net.training``, continued by the next fit.

All randomness of an epoch (shuffling, dropout masks) comes from a generator
seeded with (network seed, epoch number), so training is a pure function of
seed, data and epoch count: four epochs straight equal two, a save, a load and
two more.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence

import numpy as np

from .. import backprop
from ..callbacks import Callback, ModelCheckpoint, Progress
from ..checks import ArrayLike
from ..data.stream import Stream
from ..distributed import communicator
from ..errors import ConfigError, DataError, DeltapropWarning, DivergenceError
from ..losses import mean_factor
from ..optimizers import Adam, get_optimizer
from ..schedules import get_schedule
from ..workspace import Workspace
from .batches import EpochData, Part
from .evaluation import evaluate_encoded
from .fused import compiled_steps, describe
from .gradients import add_l2, clip_gradients, where_non_finite
from .hints import PROBE_ROWS, vanishing_gradients
from .history import History
from .inputs import arrays_in_memory, check_options, set_classes
from .lbfgs import fit_lbfgs  # (it loads SciPy's optimizer only when it runs)
from .state import TrainingState
from .streaming import StreamData, evaluate_stream

Array = np.ndarray


def fit(net, X: ArrayLike | Stream, y: ArrayLike | None = None, epochs: int = 10, batch_size: int = 32, optimizer=None,
        validation_data: tuple | None = None, validation_split: float = 0.0, shuffle: bool = True,
        callbacks: Sequence[Callback] = (), verbose: int = 1, sample_weight: ArrayLike | None = None,
        class_weight: dict | str | None = None, schedule=None, clip_norm: float | None = None,
        l2: float = 0.0, comm=None) -> History:
    """Train ``net`` by mini-batch gradient descent and return its History.

    X, y: arrays in memory, or X a ``deltaprop.data.stream(...)`` of files larger than memory
        (then y is None: the stream holds the targets; see data/stream.py).
    optimizer: an Optimizer, a name ("adam", "sgd", ...) or None to keep the
        current one (Adam(1e-3) the first time). The training state (optimizer and its
        moments, history, epochs) is kept on ``net.training``, so calling fit again
        continues training.
    schedule: a Schedule (or name) giving each epoch's learning rate.
    clip_norm: rescale the gradients when their global L2 norm exceeds it.
    sample_weight, class_weight: per-sample weights (m,), and per-label weights
        (a dict, or "balanced"); each batch's loss becomes the weighted mean
        sum_i w_i L_i / sum_i w_i, so a weight of 2 counts as the row twice.
    l2: scikit-learn's ``alpha``: each batch's loss gains (l2 / 2) sum_l ||W^l||^2
        divided by the batch's size (its weight total, with weights), so dL/dW^l gains
        (l2 / m) W^l; biases are not penalised. The "loss" history includes the term.
    verbose: 0 silent, 1 a progress bar on a terminal and a line per epoch.
    comm: an mpi4py communicator (or None: the launch's own, see distributed.py): data-parallel
        training. ``batch_size`` is the global batch; every rank computes the gradient of its
        share of each global batch, one Allreduce sums them, weighted so the update is the
        one-process update; the weights start from rank 0's and stay the same bits on every
        rank (checked each epoch). Only rank 0 prints and writes checkpoints.
    optimizer="lbfgs" (or a ``training.lbfgs.LBFGS`` for its settings): full-batch L-BFGS-B (lbfgs.py) for
        small data: ``epochs`` is its most iterations, one History entry per iteration; batch_size and
        shuffle do not apply, schedule and clip_norm are refused, and so are dropout and several ranks.
    """
    if _full_batch(optimizer):
        return fit_lbfgs(net, X, y, epochs, optimizer, validation_data, validation_split, callbacks, verbose,
                         sample_weight, class_weight, l2, comm, {"schedule": schedule, "clip_norm": clip_norm})
    comm = communicator(comm)
    try:  # in a job, an error met by this rank alone (its data, its network) would leave the others waiting
        check_options(epochs, batch_size, clip_norm, l2)
        if comm.size > 1:  # rank 0's seed everywhere: the same validation rows and permutation of every epoch
            net.seed = comm.broadcast_value(net.seed)
        if comm.size > batch_size:
            raise ConfigError(f"a global batch of {batch_size} rows cannot be shared by {comm.size} ranks: give "
                              f"batch_size >= {comm.size}")
        if isinstance(X, Stream):
            data, val = _stream_data(net, X, y, shuffle, validation_data, validation_split, sample_weight,
                                     class_weight, comm)
        else:
            data, val = _array_data(net, X, y, shuffle, validation_data, validation_split, sample_weight,
                                    class_weight)
        state = net.training = net.training if net.training is not None else TrainingState()
        state.optimizer = _choose_optimizer(state, optimizer)
        state.stop = False
        _join_ranks(net, state, data, comm)
        schedule = get_schedule(schedule)
    except BaseException as exc:
        comm.end_job(exc)
        raise
    callbacks = list(callbacks) + ([Progress()] if verbose and comm.rank == 0 else [])
    if verbose and comm.rank == 0:  # which step trains: "training step: compiled (numba)" or why it is the readable
        print(describe(net, state.optimizer, data, batch_size, callbacks))
    for cb in callbacks:
        cb.on_train_begin(net)
    try:
        _run_epochs(net, state, data, epochs, batch_size, clip_norm, l2, schedule, val, callbacks)
    except DataError as exc:  # a shard that went bad mid-run (streaming): say where a resume can start
        state.early_stopping = None
        error = DataError(f"{exc}{_resume_hint(callbacks, state)}")
        comm.end_job(error)  # in a job: this rank alone may have met it
        raise error from None
    except BaseException as exc:
        state.early_stopping = None  # a failed run's record must not seed the next fit (resume reads the file)
        comm.end_job(exc)
        raise
    for cb in callbacks:
        cb.on_train_end(net)
    _hint(net, state, data)
    return state.history


def _full_batch(optimizer) -> bool:
    """optimizer="lbfgs" or an lbfgs.LBFGS (by its ``name``, as lbfgs.py is imported only when used)."""
    name = optimizer if isinstance(optimizer, str) else getattr(optimizer, "name", None)
    return isinstance(name, str) and name.lower() == "lbfgs"


def _hint(net, state: TrainingState, data) -> None:
    """A warning when a classifier ended near chance with its gradients vanished (hints.py; rank 0, arrays)."""
    if not isinstance(data, EpochData) or not isinstance(data.X, np.ndarray) or data.labels is None or \
            state.comm.rank != 0 or "accuracy" not in state.history:
        return
    probe = data.rows[:PROBE_ROWS] if data.rows is not None else slice(PROBE_ROWS)  # a few rows, never all copied
    labels = data.labels if data.rows is None else data.labels[data.rows]
    hint = vanishing_gradients(net, data.X[probe], data.Y[probe], state.history["accuracy"][-1], labels)
    if hint:
        warnings.warn(hint, DeltapropWarning, stacklevel=4)  # the caller of net.fit


def _join_ranks(net, state: TrainingState, data, comm) -> None:
    """The training state's ranks; in a job of several, each takes its share of every batch, from rank 0's weights."""
    state.comm = comm
    if comm.size > 1:
        data.part = (comm.rank, comm.size)
        flat = state.flat_for(net.layers, net.dtype)
        comm.agree({"layer sizes": [net.layers[0].n_in] + [layer.n_out for layer in net.layers],
                    "dtype": str(net.dtype), "parameters": flat.theta.size}, "networks")  # else Bcast fails on one
        comm.broadcast(flat.theta)


def _resume_hint(callbacks, state) -> str:
    """Where training can continue from, when a ModelCheckpoint wrote one."""
    paths = [cb.last for cb in callbacks if isinstance(cb, ModelCheckpoint) and cb.last is not None]
    if not paths:
        return ""
    return (f"; training stopped in epoch {state.epoch + 1}: the checkpoint {paths[-1]} holds epoch {state.epoch}, "
            f"and dp.resume('{paths[-1]}', stream, None, epochs) (or deltaprop train --resume) continues from it")


def _array_data(net, X, y, shuffle, validation_data, validation_split, sample_weight, class_weight):
    """EpochData over in-memory (X, y), and the validation as a function (or None)."""
    X, Y, w, train_rows, val = arrays_in_memory(net, X, y, sample_weight=sample_weight, class_weight=class_weight,
                                                validation_data=validation_data, validation_split=validation_split)
    return (EpochData(X, Y, w, shuffle, net.is_classifier, rows=train_rows),
            None if val is None else (lambda: evaluate_encoded(net, *val, comm=net.training.comm)))


def _stream_data(net, stream, y, shuffle, validation_data, validation_split, sample_weight, class_weight, comm):
    """StreamData over a Stream's training rows, and the validation: its held-out rows, or another Stream (in a
    job of several ranks, each reads its own shards of both)."""
    if y is not None or sample_weight is not None or class_weight is not None or validation_split:
        raise ConfigError("with a Stream, the targets come from the stream (y=None), validation from its "
                          "validation_fraction or a validation_data Stream; sample and class weights are not "
                          "supported yet")
    stream.prepare(comm)
    if comm.size > len(stream.source.shards):
        raise ConfigError(f"{comm.size} ranks need at least as many shards to read (files; row groups for "
                          f"Parquet), the stream has {len(stream.source.shards)}")
    if stream.labels is not None:
        set_classes(net, stream.labels)
    data = StreamData(net, stream, shuffle)
    if isinstance(validation_data, Stream):  # held-out shards, read with the training rows' encoding and scaling
        validation_data.prepare(comm)
        validation_data.scaler, validation_data.encoder = stream.scaler, stream.encoder
        validation_data.table = stream.table
        return data, lambda: evaluate_stream(net, validation_data, "all", comm)
    if validation_data is not None:
        raise ConfigError("with a Stream, validation_data must be a Stream too (held-out shards)")
    return data, (lambda: evaluate_stream(net, stream, "val", comm)) if stream.n_val else None


def _run_epochs(net, state, data, epochs, batch_size, clip_norm, l2, schedule, val, callbacks) -> None:
    """Epochs ``state.epoch`` onwards: train, validate, record, callbacks; stops when asked."""
    for epoch in range(state.epoch, state.epoch + epochs):
        state.optimizer.lr = schedule.lr_at(state.optimizer.base_lr, epoch)
        logs = run_epoch(net, state, data, epoch, batch_size, clip_norm, l2, callbacks)
        if val is not None:
            logs.update({f"val_{k}": v for k, v in val().items()})
        state.epoch = epoch + 1
        state.history.append(epoch, logs)
        for cb in callbacks:  # bookkeeping first (early stopping's record), so that ...
            cb.on_epoch_logs(net, epoch, logs)
        for cb in callbacks:  # ... whatever acts on the epoch (a checkpoint) sees all of it, in any order
            cb.on_epoch_end(net, epoch, logs)
        if state.stop:
            break


def run_epoch(net, state: TrainingState, data: EpochData, epoch, batch_size, clip_norm, l2,
              callbacks: list[Callback]) -> dict:
    """One pass over the data in mini-batches; returns the epoch's training figures."""
    started = time.perf_counter()
    rng = np.random.default_rng([net.seed, epoch])
    flat, m = state.flat_for(net.layers, net.dtype), data.m
    ws = data.workspace(net.layers, flat, batch_size)  # the batch's z, a, delta; gradients are views of flat.grad
    data.new_epoch(rng)
    snapshot = ws.snapshot  # the last finite state, restored if training diverges
    np.copyto(snapshot, flat.theta)
    total_loss, batch, n_batches = 0.0, 0, -(-m // batch_size)
    steps = compiled_steps(net, state, data, batch_size, clip_norm, l2, callbacks=callbacks)  # None: readable only
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # divergence is checked explicitly
        while batch < n_batches:
            if steps is not None:  # to the epoch's end, or up to a batch they leave to the readable step
                done, loss = steps.run(batch, n_batches)
                batch, total_loss = batch + done, total_loss + loss
                if batch == n_batches:
                    break
            total_loss += _readable_batch(net, state, data, ws, epoch, batch, batch_size, rng, clip_norm, l2,
                                          callbacks, n_batches)
            batch += 1
        if not np.isfinite(np.dot(flat.theta, flat.theta)):
            flat.theta[...] = snapshot
            raise DivergenceError(f"training diverged in epoch {epoch + 1}: the weights overflowed; weights "
                                  "restored to the start of the epoch. Lower the learning rate.")
    correct: float = data.n_correct() if data.predicted is not None else 0  # summed over ranks as a float
    if state.comm.size > 1:
        total_loss, correct = map(float, state.comm.sum(np.array([total_loss, correct], dtype=np.float64)))
        state.comm.check_identical(flat.theta, f"the weights after epoch {epoch + 1}")
    logs = {"loss": total_loss / m}
    if data.predicted is not None:
        logs["accuracy"] = correct / m
    logs.update(time=time.perf_counter() - started, lr=state.optimizer.lr)
    return logs


def _readable_batch(net, state: TrainingState, data, ws: Workspace, epoch, batch, batch_size, rng, clip_norm, l2,
                    callbacks, n_batches) -> float:
    """train_step on batch ``batch`` of the epoch, its predictions recorded; returns its loss times its rows
    (a rank: its weighted part of that, summed over the ranks at the epoch's end)."""
    start = batch * batch_size
    xb, yb, wb = data.batch(start, start + batch_size)
    share = data.share if state.comm.size > 1 else None
    try:
        loss, a_L = train_step(net, state.optimizer, ws, xb, yb, wb, rng, clip_norm, callbacks, l2, state.comm, share)
    except DivergenceError as exc:
        ws.flat.theta[...] = ws.snapshot
        raise DivergenceError(f"training diverged in epoch {epoch + 1}, batch {batch + 1}: {exc}; weights restored "
                              "to the start of the epoch. Lower the learning rate or set clip_norm.") from None
    if data.predicted is not None:
        data.record(start, a_L)
    for cb in callbacks:
        cb.on_batch_end(net, batch, n_batches)
    return loss * (a_L.shape[0] if share is None else share.rows * share.weight / share.total)


def train_step(net, optimizer, ws: Workspace, xb, yb, wb, rng, clip_norm, callbacks, l2: float = 0.0,
               comm=None, share: Part | None = None) -> tuple[float, Array]:
    """Forward, the loss, backward (equations (1)-(4)), checks, one optimizer step, all in ``ws``.

    Returns the batch loss and a^L; raises DivergenceError before the step when the
    loss or any gradient is not finite. With ``share`` (batches.Part), one of several ranks:
    its dropout masks are its rows of the global batch's, its mean gradient is weighted by
    its share and summed over the ranks (``comm``), so every rank takes the one-process step.
    """
    L, m = net.L, xb.shape[0]
    out = ws.out(m)
    trace = net.propagate(xb, training=True, rng=rng, workspace=ws,
                          rows=None if share is None else (share.first, share.rows))
    if m:  # the loss first: backward may use z^L as scratch; delta^L's buffer is scratch until then
        loss = net.loss_fn.value(trace.z[L], trace.a[L], yb, net.layers[-1].activation, wb, scratch=out.delta[L],
                                 ops=net.ops)
        grads = backprop.backward(net.layers, net.loss_fn, trace, yb, wb, out=out, ops=net.ops)
    else:  # a rank without rows in a short last batch adds nothing to the sum
        loss, grads = 0.0, out
        ws.flat.grad[...] = 0
    if share is None:
        factor = mean_factor(wb, m)
    else:  # the global batch's mean (a rank may hold none of its rows: m = 0)
        _sum_over_ranks(ws.flat.grad, loss, share, comm)
        factor = 1 / share.total if share.total else 0.0
    if l2:
        loss += add_l2(ws.flat, l2, factor)
    squared_norm = float(np.dot(ws.flat.grad, ws.flat.grad))  # NaN or inf if any dW, db entry is
    if not (math.isfinite(loss) and math.isfinite(squared_norm)):
        raise DivergenceError(where_non_finite(trace, grads, loss))
    for cb in callbacks:
        cb.on_backward(net, grads)
    if clip_norm is not None:
        clip_gradients(ws.flat.grad, clip_norm)
    optimizer.step_flat(ws.flat, net.ops)
    return loss, trace.a[L]


def _sum_over_ranks(grad: Array, loss: float, share: Part, comm) -> None:
    """grad = sum over the ranks of (share of the batch's weight) x (the rank's mean gradient): the gradient of
    the global batch's mean loss. A rank whose loss is not finite sends NaN, so that every rank stops."""
    local, total = share.weight, share.total
    if not math.isfinite(loss):
        grad[...] = np.nan
    elif local != total:
        grad *= local / total if total else 0.0
    comm.sum(grad)


def _choose_optimizer(state: TrainingState, optimizer):
    """The optimizer given, else the current one (its state kept), else Adam(1e-3)."""
    if optimizer is not None:
        return get_optimizer(optimizer)
    return state.optimizer if state.optimizer is not None else Adam()
