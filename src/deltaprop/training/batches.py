"""BatchSource, the interface run_epoch trains from, and EpochData: in-memory rows served in mini-batches,
each epoch in its own shuffled order (streaming.py's StreamData serves a Stream's rows the same way)."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from ..checks import dense_rows
from ..errors import ConfigError
from ..workspace import Workspace

Array = np.ndarray


class Part(NamedTuple):
    """One rank's part of a global batch: its weight (rows, or the sum of their sample weights) and the
    batch's, and its rows' place in the batch (the first, and the batch's number of rows)."""

    weight: float
    total: float
    first: int
    rows: int


@runtime_checkable
class BatchSource(Protocol):
    """What run_epoch asks of its training data, in memory (EpochData) or streamed (StreamData): written down so
    that the engine asks the data questions (``in_memory``) rather than testing its class.

    ``m``: the training rows of an epoch; ``part``: (rank, size) in a data-parallel job, ``share``: this rank's
    Part of the last global batch; ``predicted``: not None when the predictions of each batch are recorded (a
    classifier); ``in_memory``: the rows are arrays in memory (``X``, ``Y``, ``w``, ``order``), which a compiled
    step may index itself and the vanishing-gradients probe may read; ``compiled``: the compiled steps cached
    for this fit (training/fused.py; always None where ``in_memory`` is False).
    """

    m: int
    part: tuple[int, int]
    share: Part | None
    predicted: Any
    in_memory: bool
    compiled: Any

    def workspace(self, layers: list, flat, batch_size: int) -> Workspace:
        """The batch buffers, made once per fit."""
        ...

    def new_epoch(self, rng: np.random.Generator) -> None:
        """Start an epoch: its order of the training rows, drawn from ``rng``."""
        ...

    def batch(self, start: int, stop: int) -> tuple:
        """(X, Y, w) of the epoch's rows start..stop-1 (w None without sample weights)."""
        ...

    def record(self, start: int, a_L: Array) -> None:
        """Keep the predicted classes of the batch starting at ``start``."""
        ...

    def n_correct(self) -> int:
        """How many of the epoch's recorded predictions were right (this rank's, in a job)."""
        ...


class EpochData:
    """The training rows, served in mini-batches in each epoch's shuffled order.

    A batch's rows are gathered from the arrays as given into preallocated batch
    buffers (np.take with out=): no copy of the whole data set, no allocation per batch.
    A sparse X (CSR) is gathered the same way, its batch rows written densely into the buffer.
    ``rows``, if given, are the (sorted) indices of the training rows, the rest being
    held out for validation; without it every row trains. Without shuffling, batches
    of all rows are plain slices. For a classifier, each batch's predicted classes are
    recorded (``record``) and compared with the targets once per epoch (``n_correct``).

    With ``part`` = (rank, size) of a data-parallel job, every rank walks the same global
    batches (the same permutation: same seed, same epoch) and takes its contiguous share of
    each, rows k r / size .. k (r + 1) / size - 1 of a batch of k; ``share`` (a Part) is then
    its part of the batch's total weight (rows, or sample weights), for the gradient sum, and
    where its rows sit in the batch, for the dropout masks.
    """

    def __init__(self, X: Array, Y: Array, w: Array | None, shuffle: bool, classifier: bool,
                 rows: Array | None = None):
        self.X, self.Y, self.w, self.shuffle, self.rows = X, Y, w, shuffle, rows
        self.m = X.shape[0] if rows is None else len(rows)  # training samples per epoch
        self.labels = classes_of(Y) if classifier else None
        self.predicted = None if self.labels is None else np.empty(self.m, self.labels.dtype)
        self.order: Array | None = None
        self._buffers: list[Array | None] | None = None
        self._workspace: Workspace | None = None
        self.part = (0, 1)  # (rank, size)
        self.share: Part | None = None  # this rank's part of the last global batch, in a job
        self.compiled: Any = None  # training/fused.py's CompiledSteps for this fit's epochs, when they apply
        self.in_memory = True  # (BatchSource) X, Y, w and order are arrays a compiled step may index
        self._correct = 0

    def workspace(self, layers: list, flat, batch_size: int) -> Workspace:
        """The batch buffers, made once per fit (again only if the parameter vector was replaced)."""
        rows = min(batch_size, self.m)
        if self._workspace is None or not self._workspace.fits(flat, rows):
            self._workspace = Workspace(layers, flat, rows)
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
        self._correct = 0

    def batch(self, start: int, stop: int) -> tuple:
        """(X, Y, w) of rows start..stop-1 of this epoch's order (w None when absent)."""
        arrays = (self.X, self.Y, self.w)
        if self.part[1] > 1:
            return self._rank_batch(start, stop)
        if self.order is None:
            return tuple([None if a is None else a[start:stop] for a in arrays])
        return gather(arrays, self.order[start:stop], self._buffers)

    def _rank_batch(self, start: int, stop: int) -> tuple:
        """This rank's share of the global batch start..stop-1, and ``share``."""
        rank, size = self.part
        rows = self.order[start:stop] if self.order is not None else np.arange(start, min(stop, self.m))
        k, first = len(rows), len(rows) * rank // size
        self._local = rows[first:k * (rank + 1) // size]
        total = k if self.w is None else float(self.w[rows].sum())
        local = len(self._local) if self.w is None else float(self.w[self._local].sum())
        self.share = Part(local, total, first, k)
        return gather((self.X, self.Y, self.w), self._local, self._buffers)

    def record(self, start: int, a_L: Array) -> None:
        """Keep the predicted classes of the batch starting at ``start`` (classifiers only)."""
        labels, predicted = self._classified()
        if self.part[1] > 1:  # a rank's rows are not contiguous in the epoch: count as it goes
            self._correct += int(np.count_nonzero(classes_of(a_L) == labels[self._local]))
            return
        classes_of(a_L, out=predicted[start:start + a_L.shape[0]])

    def n_correct(self) -> int:
        """How many of this epoch's recorded predictions match their targets (this rank's, in a job)."""
        if self.part[1] > 1:
            return self._correct
        labels, predicted = self._classified()
        return int(np.count_nonzero(predicted == (labels if self.order is None else labels[self.order])))

    def _classified(self) -> tuple[Array, Array]:
        """The targets' classes and the epoch's predicted ones: a classifier's only."""
        if self.labels is None or self.predicted is None:
            raise ConfigError("predicted classes are recorded for a classifier only")
        return self.labels, self.predicted


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


def classes_of(a: Array, out: Array | None = None) -> Array:
    """The class each row of a (m, n_L) stands for: its argmax, or a > 0.5 for one output (as 0/1)."""
    if a.shape[1] == 1:
        return np.greater(a[:, 0], 0.5, out=out)
    return a.argmax(axis=1, out=out)
