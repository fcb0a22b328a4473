"""Training from a Stream: batches drawn through a shuffle buffer, in the same interface as EpochData.

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

import numpy as np

from ..data.stream import Stream
from ..errors import ConfigError
from ..workspace import Workspace
from .batches import classes_of
from .evaluation import _figures, _sums


class StreamData:
    """Batches of a Stream's training rows, for run_epoch (what EpochData is for arrays)."""

    def __init__(self, net, stream: Stream, shuffle: bool):
        stream.prepare()
        if stream.n_features != net.layers[0].n_in:
            raise ConfigError(f"the stream has {stream.n_features} features per row, the network's first layer "
                              f"takes {net.layers[0].n_in}")
        self.net, self.stream, self.shuffle = net, stream, shuffle
        self.m = stream.n_train
        self.predicted = True if net.is_classifier else None  # run_epoch records each batch's predictions
        self._workspace = self._batches = self._batch_Y = None
        self._correct = 0

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
        self._batches = self._epoch(rng if self.shuffle else None)
        self._correct = 0

    def batch(self, start: int, stop: int) -> tuple:
        """The next batch (X, Y, None) of this epoch (run_epoch asks for them in order)."""
        X, Y = next(self._batches)
        self._batch_Y = Y
        return X, Y, None

    def record(self, start: int, a_L) -> None:
        self._correct += int(np.count_nonzero(classes_of(a_L) == classes_of(self._batch_Y)))

    def n_correct(self) -> int:
        return self._correct

    def _epoch(self, rng):
        """Batches of batch_size rows through the shuffle buffer (module docstring); the last may be shorter."""
        (pool_X, pool_Y), B = self.pool, self.batch_size
        # shards in a new order when the buffer cannot hold them all; else the files' order (in-memory's rows)
        chunks = self.stream.epoch_chunks(rng if self.capacity < self.m else None, "train")
        size, read, pending = 0, 0, None
        while True:
            while size < self.capacity and read < self.m:
                if pending is None or pending[2] == len(pending[0]):
                    X, y = next(chunks)
                    pending = [X, self.net.targets(y, len(y)), 0]  # encoded and checked for the loss
                X, Y, offset = pending
                take = min(self.capacity - size, len(X) - offset)
                self._into_pool(X[offset:offset + take], Y[offset:offset + take], size)
                pending[2], size, read = offset + take, size + take, read + take
            if size == 0:
                chunks.close()  # ends the reader thread now (chunks left hold only validation rows)
                return
            order = rng.permutation(size) if rng is not None else np.arange(size)
            emit = size if read == self.m else max(B, (size - self.capacity // 2) // B * B)
            for k in range(0, emit, B):
                rows = order[k:k + B]
                n = len(rows)
                yield (pool_X.take(rows, 0, self.buffers[0][:n], "clip"),
                       pool_Y.take(rows, 0, self.buffers[1][:n], "clip"))
            kept = order[emit:]
            pool_X[:len(kept)], pool_Y[:len(kept)] = pool_X[kept], pool_Y[kept]
            size = len(kept)

    def _into_pool(self, X: np.ndarray, Y: np.ndarray, at: int) -> None:
        """Rows into the shuffle buffer at ``at``: X cast to the network's dtype and scaled, Y encoded."""
        pool_X, pool_Y = self.pool
        rows = pool_X[at:at + len(X)]
        rows[...] = X
        scaler = self.stream.scaler
        if scaler.kind != "none":
            rows -= scaler.shift.astype(rows.dtype)
            rows /= scaler.scale.astype(rows.dtype)
        pool_Y[at:at + len(X)] = Y


def evaluate_stream(net, stream: Stream, part: str) -> dict:
    """{"loss", "accuracy" (classifiers)} over a stream's ``part`` rows ("val" or "all"), a chunk at a time."""
    sums = np.zeros(3)  # sum of L, rows right, rows: evaluation's own sums, chunk by chunk
    for X, y in stream.epoch_chunks(None, part):
        X = np.ascontiguousarray(X, dtype=net.dtype)
        scaler = stream.scaler
        if scaler.kind != "none":
            X = (X - scaler.shift.astype(net.dtype)) / scaler.scale.astype(net.dtype)
        sums += _sums(net, X, net.targets(y, len(y)), None, None, None, len(y))
    if not sums[2]:
        raise ConfigError(f"the stream has no {'validation' if part == 'val' else ''} rows to evaluate")
    return _figures(net, *sums, int(sums[2]))
