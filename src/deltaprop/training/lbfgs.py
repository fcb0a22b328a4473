"""L-BFGS: full-batch training for small data, by SciPy's L-BFGS-B on the flat parameter vector.

Mini-batch steps need a learning rate and many epochs, and on a few hundred rows their noise is most of
what they do. There the loss of the whole training set is cheap to evaluate exactly, and a quasi-Newton
method that builds curvature from successive gradients reaches a far lower loss in a few hundred
iterations with no learning rate to tune; scikit-learn's MLP uses the same SciPy solver (``solver="lbfgs"``).

The objective is ``fit``'s training loss over every training row at once (weighted mean, plus
(l2 / 2) sum_l ||W^l||^2 divided by the rows' number or weight total, as a mini-batch of all rows
would have it). Equations (1)-(4) give its exact gradient, written into FlatParams.grad, whose layout
is theta's: SciPy's x is theta (as float64), so nothing is packed or unpacked. Rows are taken CHUNK at
a time into a Workspace, so memory stays that of one chunk's z^l, a^l, delta^l.

One History entry (one "epoch" of the callbacks) is one L-BFGS iteration, scikit-learn's ``n_iter_``;
``epochs`` is the most iterations. Not here: dropout (a random objective breaks the line search),
several MPI ranks, learning-rate schedules and gradient clipping (no learning rate), streams (the whole
set is evaluated every iteration). The curvature memory is not kept between fits: a second fit
starts L-BFGS afresh from the current weights.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .. import backprop
from ..callbacks import Progress
from ..constraints import Real, Whole, check
from ..data.stream import Stream
from ..distributed import communicator
from ..errors import ConfigError, DivergenceError
from ..losses import mean_factor
from ..schedules import Schedule
from ..workspace import Workspace
from .batches import classes_of, gather
from .evaluation import evaluate_encoded
from .gradients import add_l2, where_non_finite
from .inputs import FitData, arrays_in_memory
from .state import TrainingState

CHUNK = 4096  # rows per forward/backward pass of an evaluation: bounds the memory of the activations


@dataclass(frozen=True)
class LBFGS:
    """The solver's settings, with scikit-learn's names and defaults: ``tol`` stops once every entry of the
    (projected) gradient is below it (SciPy's gtol), ``max_fun`` bounds the loss evaluations (line
    searches evaluate more than once per iteration), ``memory`` is the number of correction pairs kept;
    ``ftol`` stops once an iteration lowers the loss by less than this fraction (SciPy's default, which
    scikit-learn keeps: a minimum wanted to more digits needs a smaller one)."""

    tol: float = 1e-4
    max_fun: int = 15000
    memory: int = 10
    ftol: float = 2.220446049250313e-09
    name = "lbfgs"

    CONSTRAINTS: ClassVar[dict[str, tuple]] = {"tol": (Real(minimum=0),), "ftol": (Real(minimum=0),),
                                                "max_fun": (Whole(1),), "memory": (Whole(1),)}

    def __post_init__(self):
        for name, allowed in self.CONSTRAINTS.items():
            check(f"L-BFGS {name}", getattr(self, name), allowed)


STEP_LINE = "training step: full-batch L-BFGS-B (SciPy), every training row at each iteration"


def refuse(net, config, X, comm) -> None:
    """What full-batch L-BFGS cannot do, refused by name before any work (``config``: the fit's TrainConfig,
    whose schedule and clip_norm belong to step-size training; a constant Schedule, the default's, changes
    nothing)."""
    if config.epochs < 1:
        raise ConfigError(f"optimizer='lbfgs' needs epochs (its most iterations) to be a whole number >= 1, "
                          f"got {config.epochs!r}")
    dropped = [l for l, layer in enumerate(net.layers, start=1) if getattr(layer, "dropout", 0)]
    if dropped:
        raise ConfigError(f"optimizer='lbfgs' cannot train with dropout (layer(s) {dropped}): a loss that "
                          "changes at every evaluation breaks its line search; set dropout to 0 or use adam")
    if comm.size > 1:
        raise ConfigError(f"optimizer='lbfgs' runs on one process (this job has {comm.size} ranks): it is meant "
                          "for data small enough for one; use adam or sgd for data-parallel training")
    if isinstance(X, Stream):
        raise ConfigError("optimizer='lbfgs' evaluates every training row at each iteration: give arrays, not a "
                          "Stream (use adam or sgd for data larger than memory)")
    options = {"schedule": config.schedule, "clip_norm": config.clip_norm}
    given = [name for name, value in options.items() if value is not None and type(value) is not Schedule]
    if given:
        raise ConfigError(f"optimizer='lbfgs' has no learning rate, so {' and '.join(given)} do not apply; "
                          "leave them out")


class FullBatch:
    """The objective SciPy minimises: x -> (training loss at theta = x, its gradient), both float64."""

    def __init__(self, net, flat, data: tuple, rows, l2: float, callbacks: list):
        self.net, self.flat, self.l2, self.callbacks = net, flat, l2, callbacks
        self.X, self.Y, self.w = data
        self.rows = rows if rows is not None or isinstance(self.X, np.ndarray) else np.arange(self.X.shape[0])
        self.m = self.X.shape[0] if self.rows is None else len(self.rows)
        weights = None if self.w is None else (self.w if rows is None else self.w[rows])
        self.factor = mean_factor(weights, self.m)  # 1 / (rows or weight total) of the training set
        rows_per_pass = min(CHUNK, self.m)
        self.ws = Workspace(net.layers, flat, rows_per_pass)
        self.buffers = [None if a is None else np.empty((rows_per_pass,) + a.shape[1:], a.dtype)
                        for a in (self.X, self.Y, self.w)]
        self.total = np.empty(flat.theta.size, np.float64) if self.m > rows_per_pass else None
        self.seen = (None, 0.0, 0)  # (x, loss, rows classified right) of the last evaluation

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        self.flat.theta[...] = x
        loss, correct = self.sums()
        if self.l2:
            loss += add_l2(self.flat, self.l2, self.factor)
        self.seen = (x.copy(), loss, correct)
        return loss, self.flat.grad.astype(np.float64)

    def sums(self) -> tuple[float, int]:
        """(mean loss without l2, rows classified right) over the training rows, the gradient of that loss
        left in flat.grad; raises DivergenceError where a loss or gradient is not finite."""
        loss, correct = 0.0, 0
        for start in range(0, self.m, self.ws.batch_size):
            xb, yb, wb = self.chunk(start)
            share = (xb.shape[0] if wb is None else float(wb.sum())) * self.factor
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # checked just below
                chunk_loss, a_L = self.pass_over(xb, yb, wb)
            loss += chunk_loss * share
            if self.total is not None:
                self.total[...] = self.flat.grad * share if start == 0 else self.total + self.flat.grad * share
            if self.net.is_classifier:
                correct += int(np.count_nonzero(classes_of(a_L) == classes_of(yb)))
        if self.total is not None:
            self.flat.grad[...] = self.total
        return loss, correct

    def chunk(self, start: int) -> tuple:
        """(X, Y, w) of training rows start.. (a plain slice of all rows, else gathered into the buffers)."""
        stop = start + self.ws.batch_size
        if self.rows is None:
            return tuple(None if a is None else a[start:stop] for a in (self.X, self.Y, self.w))
        return gather((self.X, self.Y, self.w), self.rows[start:stop], self.buffers)

    def pass_over(self, xb, yb, wb) -> tuple[float, np.ndarray]:
        """Forward, the chunk's mean loss, backward (equations (1)-(4)) into flat.grad; (loss, a^L)."""
        net, L = self.net, self.net.L
        out = self.ws.out(xb.shape[0])
        trace = net.propagate(xb, workspace=self.ws)
        loss = net.loss_fn.value(trace.z[L], trace.a[L], yb, net.layers[-1].activation, wb, scratch=out.delta[L],
                                 ops=net.ops)  # before backward, which may use z^L as scratch
        grads = backprop.backward(net.layers, net.loss_fn, trace, yb, wb, out=out, ops=net.ops)
        if not (math.isfinite(loss) and math.isfinite(float(np.dot(self.flat.grad, self.flat.grad)))):
            raise DivergenceError(where_non_finite(trace, grads, loss))
        for cb in self.callbacks:
            cb.on_backward(net, grads)
        return loss, trace.a[L]


def fit_lbfgs(net, config, data: FitData, *, callbacks=(), comm=None):
    """``fit`` with optimizer="lbfgs" (or an LBFGS) in ``config`` (a TrainConfig): at most ``config.epochs``
    L-BFGS-B iterations over all training rows of ``data``; returns the History, one entry per iteration.
    Its schedule and clip_norm are refused when given, batch_size and shuffle do not apply. Stops early when
    SciPy converges (``solver.tol``), runs out of evaluations (``solver.max_fun``) or a callback sets
    ``net.training.stop``; ``net.training.solver_result`` says which."""
    comm = communicator(comm)
    solver = config.optimizer if isinstance(config.optimizer, LBFGS) else LBFGS()
    refuse(net, config, data.X, comm)
    X, Y, w, rows, val = arrays_in_memory(net, data, config.validation_split)
    state = net.training = net.training if net.training is not None else TrainingState()
    state.stop, state.comm = False, comm
    objective = FullBatch(net, state.flat_for(net.layers, net.dtype), (X, Y, w), rows, config.l2, list(callbacks))
    callbacks = list(callbacks) + ([Progress()] if config.verbose else [])
    if config.verbose and comm.rank == 0:  # the first line of a fit, as the Trainer's "training step: ..."
        print(STEP_LINE)
    for cb in callbacks:
        cb.on_train_begin(net)
    try:
        result = _minimize(objective, solver, config.epochs, Iterations(net, objective, val, callbacks))
    except BaseException:
        state.early_stopping = None  # a failed run's record must not seed the next fit
        raise
    objective.flat.theta[...] = result.x
    state.solver_result = {"converged": bool(result.success), "stopped": state.stop, "message": str(result.message),
                           "iterations": int(result.nit), "evaluations": int(result.nfev)}
    for cb in callbacks:
        cb.on_train_end(net)
    return state.history


def _minimize(objective: FullBatch, solver: LBFGS, epochs: int, iterations):
    """SciPy's L-BFGS-B from the current weights, scikit-learn's options; a divergence restores the weights
    of the last iteration (of the start, before the first) and says so."""
    from scipy.optimize import minimize  # SciPy comes with scikit-learn; only this solver needs it

    start = objective.flat.theta.astype(np.float64)
    iterations.accepted = start
    try:
        return minimize(objective, start, method="L-BFGS-B", jac=True, callback=iterations,
                        options={"maxiter": int(epochs), "maxfun": solver.max_fun, "gtol": solver.tol,
                                 "maxcor": solver.memory, "ftol": solver.ftol})
    except DivergenceError as exc:
        objective.flat.theta[...] = iterations.accepted
        done = iterations.done
        raise DivergenceError(f"L-BFGS diverged in iteration {done + 1}: {exc}; weights restored to "
                              f"{f'iteration {done}' if done else 'the start of the fit'}. Scale the inputs and "
                              "targets (a quantity of 1e6 squared overflows), or give l2 > 0") from None


class Iterations:
    """SciPy's callback after each iteration: the History entry, the validation figures and the callbacks
    (EarlyStopping, ModelCheckpoint...) see the iteration's weights, as after an epoch; ``stop`` ends it."""

    def __init__(self, net, objective: FullBatch, val, callbacks: list):
        self.net, self.objective, self.val, self.callbacks = net, objective, val, callbacks
        self.done, self.accepted, self.clock = 0, None, time.perf_counter()

    def __call__(self, intermediate_result) -> None:
        x, state = intermediate_result.x, self.net.training
        seen, loss, correct = self.objective.seen
        if seen is None or not np.array_equal(seen, x):  # L-BFGS-B evaluates the accepted point last; if not
            loss, _ = self.objective(x)
            correct = self.objective.seen[2]
        self.objective.flat.theta[...] = x
        self.accepted, self.done = x.copy(), self.done + 1
        logs = {"loss": float(loss)}
        if self.net.is_classifier:
            logs["accuracy"] = correct / self.objective.m
        if self.val is not None:
            logs.update({f"val_{k}": v for k, v in evaluate_encoded(self.net, *self.val).items()})
        now = time.perf_counter()
        logs["time"], self.clock = now - self.clock, now
        epoch = state.epoch
        state.epoch += 1
        state.history.append(epoch, logs)
        for cb in self.callbacks:  # as the epochs of trainer.py: everyone's bookkeeping, then everyone acts
            cb.on_epoch_logs(self.net, epoch, logs)
        for cb in self.callbacks:
            cb.on_epoch_end(self.net, epoch, logs)
        if state.stop:
            raise StopIteration  # SciPy ends the minimisation at this iterate
