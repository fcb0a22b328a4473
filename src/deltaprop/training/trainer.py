"""The Trainer: one fit's epochs, mini-batches and gradient steps, over what it owns.

A fit reads the same things at every level: the network and its TrainingState, the options
(TrainConfig), the batches (EpochData or StreamData) and the validation, the callbacks and the
communicator of a data-parallel job. The Trainer holds them once, so the epoch loop, a batch and a
step take only what changes from call to call (the epoch, the batch, the generator) instead of each
re-listing ``batch_size, clip_norm, l2``. ``fit`` (loop.py) makes one from its arguments.

All randomness of an epoch (shuffling, dropout masks) comes from a generator seeded with (network
seed, epoch number), so training is a pure function of seed, data and epoch count: four epochs
straight equal two, a save, a load and two more.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence

import numpy as np

from .. import backprop
from ..callbacks import Callback, ModelCheckpoint
from ..distributed import Single
from ..errors import DataError, DeltapropWarning, DivergenceError
from ..losses import mean_factor
from ..schedules import Schedule, get_schedule
from ..workspace import Workspace
from .batches import Part
from .config import TrainConfig
from .fused import compiled_steps, describe
from .gradients import add_l2, clip_gradients, where_non_finite
from .hints import PROBE_ROWS, vanishing_gradients
from .history import History

Array = np.ndarray


class Trainer:
    """One fit of ``net`` (its TrainingState on ``net.training``) under ``config``.

    data: the epoch's batches (EpochData or StreamData; None for a trainer that only takes steps);
    validation: a function returning the validation figures, or None; comm: the job's ranks.
    """

    def __init__(self, net, config: TrainConfig, data=None, *, validation: Callable[[], dict] | None = None,
                 callbacks: Sequence[Callback] = (), comm=None):
        self.net, self.config, self.data, self.validation = net, config, data, validation
        self.state = net.training
        self.comm = comm if comm is not None else Single()
        self.callbacks = list(callbacks)
        self.schedule: Schedule = get_schedule(config.schedule)

    def run(self) -> History:
        """The epochs with the callbacks told of them; an error ends the job's other ranks and leaves no
        early-stopping record for the next fit. Returns the History."""
        net, state = self.net, self.state
        if self.config.verbose and self.comm.rank == 0:  # "training step: compiled (numba)", or why it is not
            print(describe(net, state.optimizer, self.data, self.config.batch_size, self.callbacks))
        for cb in self.callbacks:
            cb.on_train_begin(net)
        try:
            self.run_epochs()
        except DataError as exc:  # a shard that went bad mid-run (streaming): say where a resume can start
            state.early_stopping = None
            error = DataError(f"{exc}{self._resume_hint()}")
            self.comm.end_job(error)  # in a job: this rank alone may have met it
            raise error from None
        except BaseException as exc:
            state.early_stopping = None  # a failed run's record must not seed the next fit (resume reads the file)
            self.comm.end_job(exc)
            raise
        for cb in self.callbacks:
            cb.on_train_end(net)
        self._hint()
        return state.history

    def run_epochs(self) -> None:
        """Epochs ``state.epoch`` onwards: train, validate, record, callbacks; stops when asked."""
        net, state = self.net, self.state
        for epoch in range(state.epoch, state.epoch + self.config.epochs):
            state.optimizer.lr = self.schedule.lr_at(state.optimizer.base_lr, epoch)
            logs = self.run_epoch(epoch)
            if self.validation is not None:
                logs.update({f"val_{k}": v for k, v in self.validation().items()})
            state.epoch = epoch + 1
            state.history.append(epoch, logs)
            for cb in self.callbacks:  # bookkeeping first (early stopping's record), so that ...
                cb.on_epoch_logs(net, epoch, logs)
            for cb in self.callbacks:  # ... whatever acts on the epoch (a checkpoint) sees all of it, in any order
                cb.on_epoch_end(net, epoch, logs)
            if state.stop:
                break

    def run_epoch(self, epoch: int) -> dict:
        """One pass over the data in mini-batches; returns the epoch's training figures."""
        net, state, data, batch_size = self.net, self.state, self.data, self.config.batch_size
        started = time.perf_counter()
        rng = np.random.default_rng([net.seed, epoch])
        flat, m = state.flat_for(net.layers, net.dtype, net.ops), data.m
        ws = data.workspace(net.layers, flat, batch_size)  # the batch's z, a, delta; gradients are views of flat.grad
        data.new_epoch(rng)
        ws.snapshot[...] = flat.theta  # the last finite state, restored if training diverges
        total_loss, batch, n_batches = 0.0, 0, -(-m // batch_size)
        steps = compiled_steps(net, state, data, self.config, self.callbacks)  # None: the readable step only
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # divergence is checked explicitly
            while batch < n_batches:
                if steps is not None:  # to the epoch's end, or up to a batch they leave to the readable step
                    done, loss = steps.run(batch, n_batches)
                    batch, total_loss = batch + done, total_loss + loss
                    if batch == n_batches:
                        break
                total_loss += self._readable_batch(ws, epoch, batch, rng, n_batches)
                batch += 1
            if not math.isfinite(net.ops.vdot(flat.theta, flat.theta)):
                flat.theta[...] = ws.snapshot
                raise DivergenceError(f"training diverged in epoch {epoch + 1}: the weights overflowed; weights "
                                      "restored to the start of the epoch. Lower the learning rate.")
        return self._epoch_logs(total_loss, started, epoch)

    def _epoch_logs(self, total_loss: float, started: float, epoch: int) -> dict:
        """The epoch's loss and accuracy (summed over the ranks of a job, whose weights must agree), time, lr."""
        data, state, flat = self.data, self.state, self.state.flat
        correct: float = data.n_correct() if data.predicted is not None else 0  # summed over ranks as a float
        if self.comm.size > 1:
            total_loss, correct = map(float, self.comm.sum(np.array([total_loss, correct], dtype=np.float64)))
            self.comm.check_identical(flat.theta, f"the weights after epoch {epoch + 1}")
        logs = {"loss": total_loss / data.m}
        if data.predicted is not None:
            logs["accuracy"] = correct / data.m
        logs.update(time=time.perf_counter() - started, lr=state.optimizer.lr)
        return logs

    def _readable_batch(self, ws: Workspace, epoch: int, batch: int, rng, n_batches: int) -> float:
        """train_step on batch ``batch`` of the epoch, its predictions recorded; returns its loss times its rows
        (a rank: its weighted part of that, summed over the ranks at the epoch's end)."""
        data, batch_size = self.data, self.config.batch_size
        start = batch * batch_size
        rows = data.batch(start, start + batch_size)
        share = data.share if self.comm.size > 1 else None  # (this batch's: after data.batch)
        try:
            loss, a_L = self.train_step(ws, rows, rng, share)
        except DivergenceError as exc:
            ws.flat.theta[...] = ws.snapshot
            raise DivergenceError(f"training diverged in epoch {epoch + 1}, batch {batch + 1}: {exc}; weights "
                                  "restored to the start of the epoch. Lower the learning rate or set clip_norm."
                                  ) from None
        if data.predicted is not None:
            data.record(start, a_L)
        for cb in self.callbacks:
            cb.on_batch_end(self.net, batch, n_batches)
        return loss * (a_L.shape[0] if share is None else share.rows * share.weight / share.total)

    def train_step(self, ws: Workspace, batch: tuple, rng, share: Part | None = None) -> tuple[float, Array]:
        """Forward, the loss, backward (equations (1)-(4)), checks, one optimizer step, all in ``ws``.

        batch: (X, Y, weights or None). Returns the batch loss and a^L; raises DivergenceError before the
        step when the loss or any gradient is not finite. With ``share`` (batches.Part), one of several
        ranks: its dropout masks are its rows of the global batch's, its mean gradient is weighted by its
        share and summed over the ranks, so every rank takes the one-process step.
        """
        net, (xb, yb, wb) = self.net, batch
        L, m = net.L, xb.shape[0]
        out = ws.out(m)
        trace = net.propagate(xb, training=True, rng=rng, workspace=ws,
                              rows=None if share is None else (share.first, share.rows))
        if m:  # the loss first: backward may use z^L as scratch; delta^L's buffer is scratch until then
            loss = net.loss_fn.value(trace.z[L], trace.a[L], yb, net.layers[-1].activation, wb,
                                     scratch=out.delta[L], ops=net.ops)
            grads = backprop.backward(net.layers, net.loss_fn, trace, yb, wb, out=out, ops=net.ops)
        else:  # a rank without rows in a short last batch adds nothing to the sum
            loss, grads = 0.0, out
            ws.flat.grad[...] = 0
        if share is None:
            factor = mean_factor(wb, m)
        else:  # the global batch's mean (a rank may hold none of its rows: m = 0)
            _sum_over_ranks(ws.flat.grad, loss, share, self.comm)
            factor = 1 / share.total if share.total else 0.0
        return self._update(ws, trace, grads, loss, factor), trace.a[L]

    def _update(self, ws: Workspace, trace, grads, loss: float, factor: float) -> float:
        """The L2 term, the divergence check, the callbacks' look at the gradients, clipping, the optimizer's
        step; returns the loss with the L2 term."""
        l2, clip_norm = self.config.l2, self.config.clip_norm
        if l2:
            loss += add_l2(ws.flat, l2, factor)
        squared_norm = self.net.ops.vdot(ws.flat.grad, ws.flat.grad)  # NaN or inf if any dW, db entry is
        if not (math.isfinite(loss) and math.isfinite(squared_norm)):
            raise DivergenceError(where_non_finite(trace, grads, loss))
        for cb in self.callbacks:
            cb.on_backward(self.net, grads)
        if clip_norm is not None:
            clip_gradients(ws.flat.grad, clip_norm)
        self.state.optimizer.step_flat(ws.flat, self.net.ops)
        return loss

    def _hint(self) -> None:
        """A warning when a classifier ended near chance with its gradients vanished (hints.py; rank 0, arrays)."""
        net, state, data = self.net, self.state, self.data
        if not data.in_memory or not isinstance(data.X, np.ndarray) or data.labels is None or \
                self.comm.rank != 0 or "accuracy" not in state.history:
            return
        probe = data.rows[:PROBE_ROWS] if data.rows is not None else slice(PROBE_ROWS)  # a few rows, never all copied
        labels = data.labels if data.rows is None else data.labels[data.rows]
        hint = vanishing_gradients(net, data.X[probe], data.Y[probe], state.history["accuracy"][-1], labels)
        if hint:
            warnings.warn(hint, DeltapropWarning, stacklevel=5)  # the caller of net.fit

    def _resume_hint(self) -> str:
        """Where training can continue from, when a ModelCheckpoint wrote one."""
        paths = [cb.last for cb in self.callbacks if isinstance(cb, ModelCheckpoint) and cb.last is not None]
        if not paths:
            return ""
        return (f"; training stopped in epoch {self.state.epoch + 1}: the checkpoint {paths[-1]} holds epoch "
                f"{self.state.epoch}, and dp.resume('{paths[-1]}', stream, None, epochs=EPOCHS) (or deltaprop "
                "train --resume) continues from it")


def _sum_over_ranks(grad: Array, loss: float, share: Part, comm) -> None:
    """grad = sum over the ranks of (share of the batch's weight) x (the rank's mean gradient): the gradient of
    the global batch's mean loss. A rank whose loss is not finite sends NaN, so that every rank stops."""
    local, total = share.weight, share.total
    if not math.isfinite(loss):
        grad[...] = np.nan
    elif local != total:
        grad *= local / total if total else 0.0
    comm.sum(grad)
