"""fit: the front door of training. It takes the data (FitData) and the options (TrainConfig) and
hands them to the solver: the Trainer's mini-batch epochs (trainer.py) or full-batch L-BFGS (lbfgs.py).

``fit`` trains a network (any object with the Network's forward pass, loss and
layers: this module never imports the model) and keeps what training carries in a
TrainingState on ``net.training``, continued by the next fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..callbacks import Callback, Progress
from ..checks import ArrayLike
from ..data.stream import Stream
from ..distributed import communicator
from ..errors import ConfigError
from ..optimizers import Adam, get_optimizer
from .batches import EpochData
from .config import TrainConfig
from .evaluation import evaluate_encoded
from .history import History
from .inputs import FitData, arrays_in_memory, set_classes
from .lbfgs import fit_lbfgs  # (it loads SciPy's optimizer only when it runs)
from .state import TrainingState
from .streaming import StreamData, evaluate_stream
from .trainer import Trainer


def fit(net, X: ArrayLike | Stream, y: ArrayLike | None = None, *, config: TrainConfig | None = None,
        callbacks: Sequence[Callback] = (), validation_data: tuple | Stream | None = None,
        sample_weight: ArrayLike | None = None, class_weight: dict | str | None = None, comm=None,
        **options: Any) -> History:
    """Train ``net`` by mini-batch gradient descent and return its History.

    Everything after X, y is given by name. X, y: arrays in memory, or X a ``deltaprop.data.stream(...)`` of
    files larger than memory (then y is None: the stream holds the targets; see data/stream.py).

    The options are TrainConfig's fields, with its defaults, checked once: epochs, batch_size, optimizer,
    validation_split, shuffle, schedule, clip_norm, l2, verbose (``config`` gives them all at once, and
    options given by name replace its fields).
    optimizer: an Optimizer, a name ("adam", "sgd", ...) or None to keep the
        current one (Adam(1e-3) the first time). The training state (optimizer and its
        moments, history, epochs) is kept on ``net.training``, so calling fit again
        continues training.
    schedule: a Schedule (or name) giving each epoch's learning rate.
    clip_norm: rescale the gradients when their global L2 norm exceeds it.
    l2: scikit-learn's ``alpha``: each batch's loss gains (l2 / 2) sum_l ||W^l||^2
        divided by the batch's size (its weight total, with weights), so dL/dW^l gains
        (l2 / m) W^l; biases are not penalised. The "loss" history includes the term.
    verbose: 0 silent, 1 a progress bar on a terminal and a line per epoch.
    optimizer="lbfgs" (or a ``training.lbfgs.LBFGS`` for its settings): full-batch L-BFGS-B (lbfgs.py) for
        small data: ``epochs`` is its most iterations, one History entry per iteration; batch_size and
        shuffle do not apply, schedule and clip_norm are refused, and so are dropout and several ranks.

    The data besides X, y (FitData): validation_data (X, y) (or a Stream of held-out shards), and
    sample_weight, class_weight: per-sample weights (m,), and per-label weights
        (a dict, or "balanced"); each batch's loss becomes the weighted mean
        sum_i w_i L_i / sum_i w_i, so a weight of 2 counts as the row twice.
    callbacks: Callback objects told of each epoch (and batch, step).
    comm: an mpi4py communicator (or None: the launch's own, see distributed.py): data-parallel
        training. ``batch_size`` is the global batch; every rank computes the gradient of its
        share of each global batch, one Allreduce sums them, weighted so the update is the
        one-process update; the weights start from rank 0's and stay the same bits on every
        rank (checked each epoch). Only rank 0 prints and writes checkpoints.
    """
    data = FitData(X, y, validation_data, sample_weight, class_weight)
    comm = communicator(comm)
    try:  # in a job, an error met by this rank alone (its data, its network) would leave the others waiting
        config = TrainConfig.of(config, **options)
        trainer = None if config.full_batch else _trainer(net, config, data, callbacks, comm)
    except BaseException as exc:
        comm.end_job(exc)
        raise
    if trainer is None:  # optimizer="lbfgs": the full-batch solver, on one process (it refuses several by name)
        return fit_lbfgs(net, config, data, callbacks=callbacks, comm=comm)
    return trainer.run()


def _trainer(net, config: TrainConfig, given: FitData, callbacks: Sequence[Callback], comm) -> Trainer:
    """The Trainer of a mini-batch fit: the batches and validation of the data, the training state (continued
    from ``net.training``) with its optimizer, the ranks joined; the progress bar added when verbose."""
    if comm.size > 1:  # rank 0's seed everywhere: the same validation rows and permutation of every epoch
        net.seed = comm.broadcast_value(net.seed)
    if comm.size > config.batch_size:
        raise ConfigError(f"a global batch of {config.batch_size} rows cannot be shared by {comm.size} ranks: "
                          f"give batch_size >= {comm.size}")
    if isinstance(given.X, Stream):
        data, val = _stream_data(net, given, config, comm)
    else:
        data, val = _array_data(net, given, config)
    data = net.ops.device_batches(data)  # (a backend on a device: each batch is sent over as it is served)
    state = net.training = net.training if net.training is not None else TrainingState()
    state.optimizer = _choose_optimizer(state, config.optimizer)
    state.stop = False
    _join_ranks(net, state, data, comm)
    callbacks = list(callbacks) + ([Progress()] if config.verbose and comm.rank == 0 else [])
    return Trainer(net, config, data, validation=val, callbacks=callbacks, comm=comm)


def _join_ranks(net, state: TrainingState, data, comm) -> None:
    """The training state's ranks; in a job of several, each takes its share of every batch, from rank 0's weights."""
    state.comm = comm
    if comm.size > 1:
        data.part = (comm.rank, comm.size)
        flat = state.flat_for(net.layers, net.dtype, net.ops)
        comm.agree({"layer sizes": [net.layers[0].n_in] + [layer.n_out for layer in net.layers],
                    "dtype": str(net.dtype), "parameters": flat.theta.size}, "networks")  # else Bcast fails on one
        comm.broadcast(flat.theta)


def _array_data(net, given: FitData, config: TrainConfig):
    """EpochData over in-memory (X, y), and the validation as a function (or None)."""
    X, Y, w, train_rows, val = arrays_in_memory(net, given, config.validation_split)
    return (EpochData(X, Y, w, config.shuffle, net.is_classifier, rows=train_rows),
            None if val is None else (lambda: evaluate_encoded(net, *val, comm=net.training.comm)))


def _stream_data(net, given: FitData, config: TrainConfig, comm):
    """StreamData over a Stream's training rows, and the validation: its held-out rows, or another Stream (in a
    job of several ranks, each reads its own shards of both)."""
    stream, validation_data = given.X, given.validation_data
    if given.y is not None or given.sample_weight is not None or given.class_weight is not None or \
            config.validation_split:
        raise ConfigError("with a Stream, the targets come from the stream (y=None), validation from its "
                          "validation_fraction or a validation_data Stream; sample and class weights are not "
                          "supported yet")
    stream.prepare(comm)
    if comm.size > len(stream.source.shards):
        raise ConfigError(f"{comm.size} ranks need at least as many shards to read (files; row groups for "
                          f"Parquet), the stream has {len(stream.source.shards)}")
    if stream.labels is not None:
        set_classes(net, stream.labels)
    data = StreamData(net, stream, config.shuffle)
    if isinstance(validation_data, Stream):  # held-out shards, read with the training rows' encoding and scaling
        validation_data.prepare(comm)
        validation_data.scaler, validation_data.encoder = stream.scaler, stream.encoder
        validation_data.table = stream.table
        return data, lambda: evaluate_stream(net, validation_data, "all", comm)
    if validation_data is not None:
        raise ConfigError("with a Stream, validation_data must be a Stream too (held-out shards)")
    return data, (lambda: evaluate_stream(net, stream, "val", comm)) if stream.n_val else None


def _choose_optimizer(state: TrainingState, optimizer):
    """The optimizer given, else the current one (its state kept), else Adam(1e-3).

    An optimizer instance that has taken steps for another network (a TrainConfig or an Adam(...) reused for a
    second network) is a recipe here: this network gets a fresh one with its hyperparameters, so no moments or step
    count of another network's training carry over. The network's own optimizer continues with its state.
    """
    if optimizer is None:
        return state.optimizer if state.optimizer is not None else Adam()
    optimizer = get_optimizer(optimizer)
    if optimizer.t and optimizer is not state.optimizer:
        return type(optimizer)(**optimizer.hyperparameters())
    return optimizer
