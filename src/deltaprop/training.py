"""The training loop: mini-batches, gradient steps, validation, callbacks, History.

All randomness of an epoch (shuffling, dropout masks) comes from a generator
seeded with (network seed, epoch number), so training is a pure function of
seed, data and epoch count: four epochs straight equal two, a save, a load and
two more.
"""

from __future__ import annotations

import math
import time

import numpy as np

from . import backprop
from .callbacks import Callback, Progress
from .checks import check_weights, check_X, dense_rows, label_indices
from .errors import ConfigError, DataError, DivergenceError
from .losses import mean_factor
from .optimizers import Adam, get_optimizer
from .schedules import get_schedule
from .workspace import Workspace

Array = np.ndarray


class History:
    """Per-epoch figures: ``history["loss"]``, ``["val_loss"]``, ``["accuracy"]``, ``["time"]``..."""

    def __init__(self):
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def append(self, epoch: int, logs: dict) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __getitem__(self, key: str) -> list:
        return self.history[key]

    def __contains__(self, key: str) -> bool:
        return key in self.history

    def __len__(self) -> int:
        return len(self.epoch)

    def __repr__(self) -> str:
        return f"History(epochs={len(self)}, keys={sorted(self.history)})"


def fit(net, X, y, epochs: int = 10, batch_size: int = 32, optimizer=None, validation_data=None,
        validation_split: float = 0.0, shuffle: bool = True, callbacks=(), verbose: int = 1,
        sample_weight=None, class_weight=None, schedule=None, clip_norm: float | None = None,
        l2: float = 0.0) -> History:
    """Train ``net`` by mini-batch gradient descent and return its History.

    optimizer: an Optimizer, a name ("adam", "sgd", ...) or None to keep the
        network's current one (Adam(1e-3) the first time). Its state is kept
        between calls, so calling fit again continues training.
    schedule: a Schedule (or name) giving each epoch's learning rate.
    clip_norm: rescale the gradients when their global L2 norm exceeds it.
    sample_weight, class_weight: per-sample weights (m,), and per-label weights
        (a dict, or "balanced"); each batch's loss becomes the weighted mean
        sum_i w_i L_i / sum_i w_i, so a weight of 2 counts as the row twice.
    l2: scikit-learn's ``alpha``: each batch's loss gains (l2 / 2) sum_l ||W^l||^2
        divided by the batch's size (its weight total, with weights), so dL/dW^l gains
        (l2 / m) W^l; biases are not penalised. The "loss" history includes the term.
    verbose: 0 silent, 1 a progress bar on a terminal and a line per epoch.
    """
    _check_options(epochs, batch_size, clip_norm, l2)
    X = check_X(X, net.layers[0].n_in, net.dtype, sparse_ok=True)
    y = np.asarray(y)
    _set_classes(net, y)
    Y = net.targets(y, X.shape[0])
    w = _combined_weights(net, y, check_weights(sample_weight, X.shape[0]), class_weight)
    train_rows, val = _validation(net, X, Y, validation_data, validation_split)
    net.optimizer = _choose_optimizer(net, optimizer)
    schedule = get_schedule(schedule)
    callbacks = list(callbacks) + ([Progress()] if verbose else [])
    history = net.history if net.history is not None else History()
    net.history, net.stop_training = history, False
    for cb in callbacks:
        cb.on_train_begin(net)
    data = EpochData(X, Y, w, shuffle, net.is_classifier, rows=train_rows)
    try:
        _run_epochs(net, data, epochs, batch_size, clip_norm, l2, schedule, val, callbacks)
    except BaseException:
        net.early_stopping = None  # a failed run's record must not seed the next fit (resume reads the file)
        raise
    for cb in callbacks:
        cb.on_train_end(net)
    return history


def _run_epochs(net, data, epochs, batch_size, clip_norm, l2, schedule, val, callbacks) -> None:
    """Epochs ``net.epochs_trained`` onwards: train, validate, record, callbacks; stops when asked."""
    history = net.history
    for epoch in range(net.epochs_trained, net.epochs_trained + epochs):
        net.optimizer.lr = schedule.lr_at(net.optimizer.base_lr, epoch)
        logs = run_epoch(net, data, epoch, batch_size, clip_norm, l2, callbacks)
        if val is not None:
            logs.update({f"val_{k}": v for k, v in evaluate_encoded(net, *val).items()})
        net.epochs_trained = epoch + 1
        history.append(epoch, logs)
        for cb in callbacks:  # bookkeeping first (early stopping's record), so that ...
            cb.on_epoch_logs(net, epoch, logs)
        for cb in callbacks:  # ... whatever acts on the epoch (a checkpoint) sees all of it, in any order
            cb.on_epoch_end(net, epoch, logs)
        if net.stop_training:
            break


def _whole(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and math.isfinite(value)


def _check_options(epochs, batch_size, clip_norm, l2) -> None:
    """Refuse fit's numeric options with a message, before anything deeper fails on them."""
    if not (_whole(epochs) and epochs >= 0):
        raise ConfigError(f"epochs must be a whole number >= 0, got {epochs!r}")
    if not (_whole(batch_size) and batch_size >= 1):
        raise ConfigError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    if clip_norm is not None and not (_number(clip_norm) and clip_norm > 0):
        raise ConfigError(f"clip_norm must be a finite number > 0 (or None), got {clip_norm!r}")
    if not (_number(l2) and l2 >= 0):
        raise ConfigError(f"l2 must be a finite number >= 0, got {l2!r}")


class EpochData:
    """The training rows, served in mini-batches in each epoch's shuffled order.

    A batch's rows are gathered from the arrays as given into preallocated batch
    buffers (np.take with out=): no copy of the whole data set, no allocation per batch.
    A sparse X (CSR) is gathered the same way, its batch rows written densely into the buffer.
    ``rows``, if given, are the (sorted) indices of the training rows, the rest being
    held out for validation; without it every row trains. Without shuffling, batches
    of all rows are plain slices. For a classifier, each batch's predicted classes are
    recorded (``record``) and compared with the targets once per epoch (``n_correct``).
    """

    def __init__(self, X: Array, Y: Array, w: Array | None, shuffle: bool, classifier: bool,
                 rows: Array | None = None):
        self.X, self.Y, self.w, self.shuffle, self.rows = X, Y, w, shuffle, rows
        self.m = X.shape[0] if rows is None else len(rows)  # training samples per epoch
        self.labels = _classes_of(Y) if classifier else None
        self.predicted = None if self.labels is None else np.empty(self.m, self.labels.dtype)
        self.order = None
        self._buffers = None
        self._workspace = None

    def workspace(self, net, batch_size: int) -> Workspace:
        """The batch buffers, made once per fit (again only if the network's parameters were replaced)."""
        rows = min(batch_size, self.m)
        if self._workspace is None or not self._workspace.fits(net, rows):
            self._workspace = Workspace(net, rows)
            self._buffers = [None if a is None else np.empty((rows,) + a.shape[1:], a.dtype)
                             for a in (self.X, self.Y, self.w)]
        return self._workspace

    def new_epoch(self, rng: np.random.Generator) -> None:
        """This epoch's order of the training rows (None: all rows, in order)."""
        if self.shuffle:
            self.order = rng.permutation(self.m) if self.rows is None else self.rows[rng.permutation(self.m)]
        else:
            self.order = self.rows
        if self.order is None and not isinstance(self.X, np.ndarray):
            self.order = np.arange(self.m)  # sparse rows are densified by gathering, never sliced

    def batch(self, start: int, stop: int) -> tuple:
        """(X, Y, w) of rows start..stop-1 of this epoch's order (w None when absent)."""
        arrays = (self.X, self.Y, self.w)
        if self.order is None:
            return tuple([None if a is None else a[start:stop] for a in arrays])
        return gather(arrays, self.order[start:stop], self._buffers)

    def record(self, start: int, a_L: Array) -> None:
        """Keep the predicted classes of the batch starting at ``start`` (classifiers only)."""
        _classes_of(a_L, out=self.predicted[start:start + a_L.shape[0]])

    def n_correct(self) -> int:
        """How many of this epoch's recorded predictions match their targets."""
        labels = self.labels if self.order is None else self.labels[self.order]
        return int(np.count_nonzero(self.predicted == labels))


def gather(arrays, rows: Array, buffers) -> tuple:
    """Rows ``rows`` of each array, taken into the first len(rows) rows of its buffer (None stays None):
    no allocation, no copy of the whole array."""
    n, taken = len(rows), []
    for a, buffer in zip(arrays, buffers, strict=True):  # a plain loop: this runs for every batch
        if isinstance(a, np.ndarray):  # mode "raise" would gather into a temporary first
            a = a.take(rows, 0, buffer if n == len(buffer) else buffer[:n], "clip")
        elif a is not None:  # a sparse X
            a = dense_rows(a, rows, buffer[:n])
        taken.append(a)
    return tuple(taken)


def resume(path, X, y, epochs: int, **options):
    """Continue the run saved at ``path`` (a ModelCheckpoint file) until it has ``epochs`` epochs in all.

    The file holds the weights, the optimizer state and the epoch count, and every
    epoch's randomness derives from (seed, epoch), so the result equals a run that was
    never interrupted. Returns the network.
    """
    from .io import load

    net = load(path)
    if epochs < net.epochs_trained:
        raise ConfigError(f"{path} has trained {net.epochs_trained} epochs already, more than epochs={epochs}")
    net.fit(X, y, epochs=epochs - net.epochs_trained, **options)
    return net


def run_epoch(net, data: EpochData, epoch, batch_size, clip_norm, l2, callbacks: list[Callback]) -> dict:
    """One pass over the data in mini-batches; returns the epoch's training figures."""
    started = time.perf_counter()
    rng = np.random.default_rng([net.seed, epoch])
    flat, m = net.flat_params(), data.m
    ws = data.workspace(net, batch_size)  # the batch's z, a, delta; dW, db are views of flat.grad
    data.new_epoch(rng)
    snapshot = ws.snapshot  # the last finite state, restored if training diverges
    np.copyto(snapshot, flat.theta)
    total_loss = 0.0
    n_batches = -(-m // batch_size)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # divergence is checked explicitly
        for batch, start in enumerate(range(0, m, batch_size)):
            xb, yb, wb = data.batch(start, start + batch_size)
            try:
                loss, a_L = train_step(net, ws, xb, yb, wb, rng, clip_norm, callbacks, l2)
            except DivergenceError as exc:
                flat.theta[...] = snapshot
                raise DivergenceError(f"training diverged in epoch {epoch + 1}, batch {batch + 1}: {exc}; "
                                      "weights restored to the start of the epoch. Lower the learning rate "
                                      "or set clip_norm.") from None
            total_loss += loss * a_L.shape[0]
            if data.predicted is not None:
                data.record(start, a_L)
            for cb in callbacks:
                cb.on_batch_end(net, batch, n_batches)
        if not np.isfinite(np.dot(flat.theta, flat.theta)):
            flat.theta[...] = snapshot
            raise DivergenceError(f"training diverged in epoch {epoch + 1}: the weights overflowed; weights "
                                  "restored to the start of the epoch. Lower the learning rate.")
    logs = {"loss": total_loss / m}
    if data.predicted is not None:
        logs["accuracy"] = data.n_correct() / m
    logs.update(time=time.perf_counter() - started, lr=net.optimizer.lr)
    return logs


def train_step(net, ws: Workspace, xb, yb, wb, rng, clip_norm, callbacks, l2: float = 0.0) -> tuple[float, Array]:
    """Forward, the loss, backward (equations (1)-(4)), checks, one optimizer step, all in ``ws``.

    Returns the batch loss and a^L; raises DivergenceError before the step when the
    loss or any gradient is not finite.
    """
    L, m = net.L, xb.shape[0]
    out = ws.out(m)
    trace = net.propagate(xb, training=True, rng=rng, workspace=ws)
    # the loss first: backward may use z^L as scratch; delta^L's buffer is scratch until then
    loss = net.loss_fn.value(trace.z[L], trace.a[L], yb, net.layers[-1].activation, wb, scratch=out.delta[L])
    grads = backprop.backward(net.layers, net.loss_fn, trace, yb, wb, out=out)
    if l2:
        loss += add_l2(ws.flat, l2, mean_factor(wb, m))
    squared_norm = float(np.dot(ws.flat.grad, ws.flat.grad))  # NaN or inf if any dW, db entry is
    if not (math.isfinite(loss) and math.isfinite(squared_norm)):
        raise DivergenceError(_where_non_finite(trace, grads, loss))
    for cb in callbacks:
        cb.on_backward(net, grads)
    if clip_norm is not None:
        clip_gradients(ws.flat.grad, clip_norm)
    net.optimizer.step_flat(ws.flat)
    return loss, trace.a[L]


def add_l2(flat, l2: float, factor: float) -> float:
    """dL/dW^l += l2 factor W^l for every layer (factor: 1/m, or 1/sum(w)); returns the penalty
    (l2 / 2) factor sum_l ||W^l||^2 that this adds to the batch loss. Biases are left alone."""
    squares = 0.0
    for W, dW in zip(flat.weight_views(flat.theta), flat.weight_views(flat.grad), strict=True):
        dW += (l2 * factor) * W
        squares += float(np.vdot(W, W))
    return 0.5 * l2 * factor * squares


def clip_gradients(g: Array, max_norm: float) -> float:
    """Scale the gradient vector g by max_norm / ||g|| when its L2 norm ||g|| exceeds max_norm.

    ``g`` is all dW^l, db^l in one vector (FlatParams.grad), so ||g|| is the global norm.
    Returns the norm before clipping.
    """
    norm = float(np.sqrt(np.dot(g, g)))
    if norm > max_norm:
        g *= max_norm / norm
    return norm


def evaluate(net, X, y, sample_weight=None) -> dict:
    """{"loss": L, "accuracy": fraction correct (classifiers)} on (X, y), no dropout."""
    X = check_X(X, net.layers[0].n_in, net.dtype, sparse_ok=True)
    return evaluate_encoded(net, X, net.targets(y, X.shape[0]), w=check_weights(sample_weight, X.shape[0]))


def evaluate_encoded(net, X, Y, rows=None, w=None, chunk: int | None = None) -> dict:
    """evaluate() for already checked X and encoded Y (only ``rows`` of them, if given), in chunks
    to bound memory (by default about 2 MB of X per chunk)."""
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
        trace = net.propagate(xb)
        chunk_weight = xb.shape[0] if wb is None else float(wb.sum())  # the chunk's mean times this: its sum
        total_loss += net.loss_fn.value(trace.z[net.L], trace.a[net.L], yb, net.layers[-1].activation, wb) \
            * chunk_weight
        weight += chunk_weight
        if net.is_classifier:
            correct += _n_correct(trace.a[net.L], yb)
    out = {"loss": total_loss / weight if weight else 0.0}
    if net.is_classifier:
        out["accuracy"] = correct / m
    return out


def _n_correct(a_L: Array, Y: Array) -> int:
    """Rows whose predicted class is the target's."""
    return int(np.count_nonzero(_classes_of(a_L) == _classes_of(Y)))


def _classes_of(a: Array, out: Array | None = None) -> Array:
    """The class each row of a (m, n_L) stands for: its argmax, or a > 0.5 for one output (as 0/1)."""
    if a.shape[1] == 1:
        return np.greater(a[:, 0], 0.5, out=out)
    return a.argmax(axis=1, out=out)


def _where_non_finite(trace, grads, loss) -> str:
    """Where the first NaN or inf appeared, for the message: the forward pass from layer 1 up,
    else the backward pass from layer L down."""
    L = len(grads.dW) - 1
    for l in range(1, L + 1):
        if not np.isfinite(trace.a[l]).all():
            return f"the activations a^{l} of layer {l} are not finite, so the loss is {loss}"
    if not np.isfinite(loss):
        return f"the loss is {loss} at the output layer {L}"
    for l in range(L, 0, -1):
        if not (np.isfinite(grads.dW[l]).all() and np.isfinite(grads.db[l]).all()):
            return f"the gradient of layer {l} (dW^{l} or db^{l}) is not finite"
    largest = max(range(1, L + 1), key=lambda l: float(np.abs(grads.dW[l]).max()))
    return (f"the gradient norm overflows; the largest entries are in layer {largest} "
            f"(max |dW^{largest}| = {float(np.abs(grads.dW[largest]).max()):.3g})")


def _set_classes(net, y: Array) -> None:
    """Fix the labels behind the output neurons the first time a classifier is fitted."""
    if net.classes is not None or y.ndim != 1:
        return
    if net.loss_fn.classification or (net.layers[-1].n_out > 1 and y.dtype.kind in "biuOUS"):
        net.set_classes(y)


def _combined_weights(net, y: Array, w: Array | None, class_weight) -> Array | None:
    """Per-sample weights times per-class weights (``"balanced"``: n / (k count_c))."""
    if class_weight is None:
        return w
    if net.classes is None or y.ndim != 1:
        raise ConfigError("class_weight needs class labels y of shape (m,)")
    idx = label_indices(y, net.layers[-1].n_out, net.classes)
    if not (class_weight == "balanced" or isinstance(class_weight, dict)):
        raise ConfigError(f"class_weight must be a dict of label: weight or 'balanced', got {class_weight!r}")
    if class_weight == "balanced":
        counts = np.bincount(idx, minlength=len(net.classes)).astype(np.float64)
        per_class = np.where(counts > 0, len(y) / (len(net.classes) * np.maximum(counts, 1)), 0.0)
    else:
        unknown = set(class_weight) - set(net.classes.tolist())
        if unknown:
            raise DataError(f"class_weight names labels never seen in y: {sorted(map(str, unknown))}")
        if not all(_number(v) and v >= 0 for v in class_weight.values()):
            raise ConfigError(f"class_weight values must be finite numbers >= 0, got {class_weight!r}")
        per_class = np.array([float(class_weight.get(c, 1.0)) for c in net.classes.tolist()])
    cw = per_class[idx]
    return cw if w is None else w * cw


def _validation(net, X, Y, validation_data, validation_split):
    """(training row indices or None for all, validation set or None).

    The validation set is (X, Y) of validation_data, checked, or for a split
    (X, Y, rows): the held-out rows of the training arrays, read in place, not copied.
    """
    if validation_data is not None:
        Xv = check_X(validation_data[0], net.layers[0].n_in, net.dtype, sparse_ok=True)
        return None, (Xv, net.targets(validation_data[1], Xv.shape[0]))
    if not validation_split:
        return None, None
    if not 0 < validation_split < 1:
        raise ConfigError(f"validation_split must be in (0, 1), got {validation_split}")
    order = np.random.default_rng([net.seed, 2**31]).permutation(X.shape[0])
    n_val = int(round(validation_split * X.shape[0]))
    if n_val < 1 or n_val >= X.shape[0]:
        raise DataError(f"validation_split={validation_split} leaves no samples on one side of {X.shape[0]}")
    return np.sort(order[n_val:]), (X, Y, np.sort(order[:n_val]))


def _choose_optimizer(net, optimizer):
    """The optimizer given, else the network's current one (its state kept), else Adam(1e-3)."""
    if optimizer is not None:
        return get_optimizer(optimizer)
    return net.optimizer if net.optimizer is not None else Adam()
