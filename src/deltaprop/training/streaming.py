"""Training from a Stream: batches drawn through a shuffle buffer, a BatchSource as EpochData is.

The shuffle buffer holds up to ``shuffle_buffer`` training rows (in the network's dtype,
scaled, targets encoded). It is filled from the epoch's chunks, its rows are put in a random
order (from the epoch's generator), about half of them are trained on in batches, the
other half stays and the buffer is filled again; at the end of the epoch all that remains
is trained on. What this guarantees: every training row is used exactly once per epoch;
the order is a pure function of (seed, epoch), so runs and resumed runs repeat; a row
can be followed by any row that shares the buffer with it, and with a buffer of at least
the number of training rows the order is exactly in-memory training's (one permutation of
all rows, the shards read in file order), so the weights are the same. What it does not:
with a smaller buffer, rows from shards far apart in the epoch's shard order never meet in
one batch (shuffle the rows when writing the shards if they are sorted), and the first
rows of the epoch come from the first shards read.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..data.stream import Stream
from ..errors import ConfigError, DataError
from ..workspace import Workspace
from .batches import Array, Part, classes_of
from .evaluation import _figures, _sums


class StreamData:
    """Batches of a Stream's training rows, for run_epoch: a BatchSource (what EpochData is for arrays).

    With ``part`` = (rank, size) of a data-parallel job, every rank reads its own shards of
    the epoch (Stream.epoch_shards: the same shard order on every rank) through its own
    shuffle buffer. A global batch of k rows is shared in proportion to the ranks' rows
    (every rank knows every shard's rows from the first pass), so that each rank runs out
    exactly at the epoch's last batch; ``share`` (a Part) is its part, for the gradient sum.
    """

    def __init__(self, net, stream: Stream, shuffle: bool):
        stream.prepare()
        if stream.n_features != net.layers[0].n_in:
            raise ConfigError(f"the stream has {stream.n_features} features per row, the network's first layer "
                              f"takes {net.layers[0].n_in}")
        self.net, self.stream, self.shuffle = net, stream, shuffle
        self.m = stream.n_train
        self.predicted = True if net.is_classifier else None  # run_epoch records each batch's predictions
        self._workspace: Workspace | None = None
        self._batches: Iterator[tuple[Array, Array]] | None = None
        self._batch_Y: Array | None = None
        self._correct = 0
        self.part = (0, 1)
        self.share: Part | None = None
        self.in_memory, self.compiled = False, None  # (BatchSource) rows come through the shuffle buffer

    def workspace(self, layers: list, flat, batch_size: int) -> Workspace:
        """The batch buffers and the shuffle buffer, made once per fit."""
        rows = min(batch_size, self.m)
        if self._workspace is None or not self._workspace.fits(flat, rows):
            self._workspace = Workspace(layers, flat, rows)
            buffer = self.stream.buffer_rows(self.net.dtype.itemsize)
            self.capacity = min(max(buffer, 2 * batch_size), self.m)  # half a buffer holds a batch at least
            n_out, dtype = self.net.layers[-1].n_out, self.net.dtype
            self.pool = (np.empty((self.capacity, self.stream.n_features), dtype),
                         np.empty((self.capacity, n_out), dtype))
            self.buffers = (np.empty((rows, self.stream.n_features), dtype), np.empty((rows, n_out), dtype))
        self.batch_size = batch_size
        return self._workspace

    def new_epoch(self, rng: np.random.Generator) -> None:
        shuffled = rng if self.shuffle else None
        # shards in a new order when the buffer cannot hold them all; else the files' order (in-memory's rows)
        order = self.stream.epoch_shards(shuffled if self.capacity < self.m else None)
        rank, size = self.part
        rows = [sum(self.stream.shard_rows[s] for s in order[r::size]) for r in range(size)]
        self._batches = self._epoch(shuffled, order[rank::size], rows[rank], self._sizes(rows))
        self._correct = 0

    def batch(self, start: int, stop: int) -> tuple:
        """The next batch (X, Y, None) of this epoch (run_epoch asks for them in order)."""
        if self._batches is None:
            raise ConfigError("a stream's batches come after new_epoch")
        X, Y = next(self._batches)
        self._batch_Y = Y
        return X, Y, None

    def record(self, start: int, a_L) -> None:
        if self._batch_Y is None:
            raise ConfigError("a stream records the predictions of a batch it has served")
        self._correct += int(np.count_nonzero(classes_of(a_L) == classes_of(self._batch_Y)))

    def n_correct(self) -> int:
        return self._correct

    def _sizes(self, rows: list[int]):
        """This rank's rows of each global batch (every rank computes all ranks' the same way): whole rows, as
        close as they can be to each rank's proportional share of the epoch's first G rows, summing to the batch."""
        total, have = np.array(rows, np.int64), np.zeros(len(rows), np.int64)
        for start in range(0, self.m, self.batch_size):
            upto = min(start + self.batch_size, self.m)
            sizes = _apportion(upto - start, upto * total - have * self.m, self.m, total - have)
            have += sizes
            rank = self.part[0]
            self.share = Part(int(sizes[rank]), upto - start, int(sizes[:rank].sum()), upto - start)
            yield int(sizes[rank])

    def _epoch(self, rng, shards: list[int], mine: int, sizes):
        """Batches of ``sizes`` rows through the shuffle buffer (module docstring), read from ``shards`` (``mine``
        training rows)."""
        pool_X, pool_Y = self.pool
        chunks = self.stream.epoch_chunks(shards, "train")
        pending: list | None = None  # [X, Y, rows of it used] of the chunk being read
        size, read, b = 0, 0, next(sizes, None)
        while b is not None:
            while size < self.capacity and read < mine:
                if pending is None or pending[2] == len(pending[0]):
                    chunk = next(chunks, None)
                    if chunk is None:
                        raise DataError(f"the shards hold fewer training rows than the first pass counted ({mine}"
                                        " on this rank): a file changed while training?")
                    X, y = chunk
                    pending = [X, self.net.targets(y, len(y)), 0]  # encoded and checked for the loss
                X, Y, offset = pending
                take = min(self.capacity - size, len(X) - offset)
                self._into_pool(X[offset:offset + take], Y[offset:offset + take], size)
                pending[2], size, read = offset + take, size + take, read + take
            order = rng.permutation(size) if rng is not None else np.arange(size)
            used, emitted = 0, 0  # batches while half a buffer stays, to mix with the next rows (all, at the end)
            while b is not None and b <= size - used and (
                    read == mine or emitted == 0 or size - used - b >= self.capacity // 2):
                rows = order[used:used + b]
                used, emitted = used + b, emitted + 1
                yield (pool_X.take(rows, 0, self.buffers[0][:b], "clip"),
                       pool_Y.take(rows, 0, self.buffers[1][:b], "clip"))
                b = next(sizes, None)
            if b is not None and not emitted:  # no batch fits in what is left: only if the rows changed
                raise DataError("the shards hold fewer training rows than the first pass counted: a file changed "
                                "while training?")
            kept = order[used:]
            pool_X[:len(kept)], pool_Y[:len(kept)] = pool_X[kept], pool_Y[kept]
            size = len(kept)
        chunks.close()  # ends the reader thread now (chunks left hold only validation rows)

    def _into_pool(self, X: np.ndarray, Y: np.ndarray, at: int) -> None:
        """Rows into the shuffle buffer at ``at``: X cast to the network's dtype and scaled, Y encoded."""
        pool_X, pool_Y = self.pool
        rows = pool_X[at:at + len(X)]
        rows[...] = X
        scaler = self.stream.scaler
        if scaler.kind != "none":
            shift, scale = scaler.fitted()
            rows -= shift.astype(rows.dtype)
            rows /= scale.astype(rows.dtype)
        pool_Y[at:at + len(X)] = Y


def _apportion(k: int, behind: np.ndarray, m: int, left: np.ndarray) -> np.ndarray:
    """k rows among the ranks: rank r gets about behind[r] / m (what it lacks of its share, scaled by m; they
    sum to k m), never more than left[r] (its rows not yet served), in whole rows summing to k."""
    sizes = np.minimum(np.maximum(behind // m, 0), left)
    while sizes.sum() != k:  # a few rows to move: to the furthest behind, or from the furthest ahead
        lacking = behind - sizes * m
        if sizes.sum() < k:
            r = next(r for r in np.argsort(-lacking, kind="stable") if sizes[r] < left[r])
            sizes[r] += 1
        else:
            r = next(r for r in np.argsort(lacking, kind="stable") if sizes[r] > 0)
            sizes[r] -= 1
    return sizes


def evaluate_stream(net, stream: Stream, part: str, comm=None) -> dict:
    """{"loss", "accuracy" (classifiers)} over a stream's ``part`` rows ("val" or "all"), a chunk at a time; in a
    job (``comm``), each rank reads its share of the shards and the sums are added over the ranks."""
    rank, size = (0, 1) if comm is None else (comm.rank, comm.size)
    sums = np.zeros(3)  # sum of L, rows right, rows: evaluation's own sums, chunk by chunk
    for X, y in stream.epoch_chunks(stream.epoch_shards(None, rank, size), part):
        X = np.ascontiguousarray(X, dtype=net.dtype)
        scaler = stream.scaler
        if scaler.kind != "none":
            shift, scale = scaler.fitted()
            X = (X - shift.astype(net.dtype)) / scale.astype(net.dtype)
        sums += _sums(net, X, net.targets(y, len(y)))
    if size > 1:
        comm.sum(sums)
    if not sums[2]:
        raise ConfigError(f"the stream has no {'validation' if part == 'val' else ''} rows to evaluate")
    return _figures(net, sums[0], sums[1], sums[2], int(sums[2]))
