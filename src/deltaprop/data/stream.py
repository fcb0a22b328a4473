"""Stream: training data larger than memory, read from shards on disk a chunk at a time.

    data = dp.data.stream("shards/*.parquet", target="y", scaling="standard", validation_fraction=0.05)
    net.fit(data, epochs=10, batch_size=128)

``stream`` makes one first pass over every shard (``prepare``): it counts the rows,
collects the labels (up to ``max_classes``) and, for ``scaling``, the exact mean and
variance of each feature by a streaming algorithm (Chan et al.'s pairwise update, in
float64), holding one chunk at a time; a table's column encoding is fitted in the same
pass (table_stats.py). Training then reads the shards again every
epoch, in a background thread that fills the next chunks while the current batches
train (``prefetch`` chunks ahead), and shuffles through a buffer of ``shuffle_buffer``
rows (training/streaming.py; what it guarantees is written there). Validation rows are
a fixed ``validation_fraction`` of every chunk's rows, chosen by their position
(shard, row), so the same rows are held out in every epoch and every run.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError
from .cache import DecodedCache
from .columns import TableEncoder
from .moments import Moments
from .registry import open as open_data
from .scaling import Scaler
from .source import Source
from .table_stats import TableStats
from .tables import ReadOptions

GOLDEN = 0.6180339887498949  # row r of shard s is held out when frac(r * GOLDEN + s * PLASTIC) < fraction
PLASTIC = 0.7548776662466927


CHUNK_BYTES = 2**23  # default chunks of about 8 MB of float64 values
BUFFER_BYTES = 2**28  # default shuffle buffer: as many rows as fit in 256 MB of the network's dtype


def stream(data, target: str | None = None, *, chunk_rows: int | None = None, shuffle_buffer: int | None = None,
           validation_fraction: float = 0.0, scaling: str = "none", max_classes: int = 10_000,
           prefetch: int = 2, encoder: TableEncoder | None = None, cache: bool | str | Path = True,
           read: ReadOptions | None = None) -> Stream:
    """A Stream over ``data``: a Parquet or CSV glob / folder / file (with ``target``, the label column), a pair
    (X .npy glob, y .npy glob), a pair of uncompressed IDX files (images, labels), or chunks from Python (a
    list of (X, y), or a function returning a fresh iterator of them). ``chunk_rows`` None: about 8 MB of
    values per chunk; ``shuffle_buffer`` None: as many rows as fit in 256 MB. A table with text or missing
    values (Parquet, CSV) is encoded by ``encoder`` (a TableEncoder: its kinds, categories, medians fitted in
    the first pass, see table_stats.py). ``cache``: Parquet and CSV shards are decoded once and kept as raw
    arrays in a temporary folder (in the folder given, or the system's; False: decode every epoch; cache.py).
    ``read``: how CSV files are read (ReadOptions: delimiter, decimal mark, missing-value cells), as read_table
    reads them."""
    source = _source(data, target, read)
    if not isinstance(cache, (bool, str, Path)):
        raise ConfigError(f"cache must be True, False or a folder, got {cache!r}")
    return Stream(source, chunk_rows=chunk_rows, shuffle_buffer=shuffle_buffer,
                  validation_fraction=validation_fraction, scaling=scaling, max_classes=max_classes,
                  prefetch=prefetch, encoder=encoder,
                  cache=DecodedCache(None if cache is True else cache) if cache is not False and source.decoded
                  else None)


def _source(data, target, read: ReadOptions | None = None) -> Source:
    """The chunked Source of ``data`` (data.open: a file or shards by their format, a pair of .npy or IDX files,
    chunks from Python), refused with a ConfigError when it cannot be streamed."""
    if isinstance(data, (str, Path)) and target is None:
        raise ConfigError(f"streaming {data} needs target=, the name of the label column")
    source = open_data(data, target, read=read)
    if not source.streams:
        raise ConfigError(f"{data}: stream reads Parquet and CSV files (and .npy or IDX pairs given as a tuple); "
                          "read this one whole (dp.data.open(...).read())")
    return source.streamed()


def _positive(name: str, value) -> int:
    if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1):
        raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
    return int(value)


class Stream:
    """Chunks of (X, y) from a Source, split into training and held-out rows, with first-pass statistics."""

    def __init__(self, source: Source, *, chunk_rows: int | None, shuffle_buffer: int | None,
                 validation_fraction: float, scaling: str, max_classes: int, prefetch: int,
                 encoder: TableEncoder | None = None, cache: DecodedCache | None = None):
        self.source, self.cache = source, cache
        width = getattr(source, "n_features", None) or len(source.features or []) or 1
        self.chunk_rows = max(1024, CHUNK_BYTES // (8 * width)) if chunk_rows is None else \
            _positive("chunk_rows", chunk_rows)
        self.shuffle_buffer = None if shuffle_buffer is None else _positive("shuffle_buffer", shuffle_buffer)
        self.prefetch = _positive("prefetch", prefetch)
        self.max_classes = _positive("max_classes", max_classes)
        if not 0 <= validation_fraction < 1:
            raise ConfigError(f"validation_fraction must be in [0, 1), got {validation_fraction!r}")
        self.validation_fraction = float(validation_fraction)
        self.scaler = Scaler(scaling)
        self.encoder, self.table = encoder or TableEncoder(), False  # a table's column encoding, fitted by prepare
        self.prepared = False

    # --- the first pass ----------------------------------------------------------------
    def prepare(self, comm=None) -> Stream:
        """Count rows, collect labels and fit the scaler (and, for a table, the column encoding) on the training
        rows, a chunk at a time (once). In a job of several ranks (``comm``), rank 0 makes the pass (without
        caching: each rank caches its own shards) and sends the result to the others."""
        if self.prepared:
            return self
        if comm is not None and comm.size > 1:
            cache, self.cache = self.cache, None
            try:  # an error in rank 0's pass (a bad file) is raised on every rank
                self._set_prepared(comm.from_rank0(lambda: self._first_pass().prepared_state()))
            finally:
                self.cache = cache
            return self
        return self._first_pass()

    def prepared_state(self) -> dict:
        """What the first pass found, as plain values (sent from rank 0 to the other ranks of a job)."""
        return {"n_train": self.n_train, "n_val": self.n_val, "n_features": self.n_features, "labels": self.labels,
                "table": self.table, "encoder": self.encoder.to_config(), "scaler": self.scaler.to_config(),
                "shard_rows": self.shard_rows}

    def _set_prepared(self, state: dict) -> None:
        self.n_train, self.n_val, self.n_features = state["n_train"], state["n_val"], state["n_features"]
        self.labels, self.table, self.shard_rows = state["labels"], state["table"], state["shard_rows"]
        self.encoder = TableEncoder.from_config(state["encoder"])
        self.scaler = Scaler.from_config(state["scaler"])
        self.prepared = True

    def _first_pass(self) -> Stream:
        moments, labels, self.n_train, self.n_val, self.n_features = Moments(), set[Any](), 0, 0, None
        self.shard_rows = [0] * len(self.source.shards)  # training rows of each shard
        table, offsets, label_kinds = None, [0] * len(self.source.shards), dict[str, str]()
        for X, y, held, s in self._chunks(range(len(self.source.shards)), prefetch=False, encode=False, shard=True):
            self._check_label_kind(y, label_kinds)
            train, rows = ~held, offsets[s] + np.arange(len(held))  # rows: the chunk's data rows in its file
            offsets[s] += len(held)
            self.n_train += int(train.sum())
            self.n_val += int(held.sum())
            self.shard_rows[s] += int(train.sum())
            if y.ndim == 1 and y.dtype.kind in "biufUSO" and len(labels) <= self.max_classes:
                labels.update(np.unique(y).tolist())  # past max_classes: a regression target, not labels
            if isinstance(X, pd.DataFrame):  # a table: kinds from the first chunk, then its statistics
                table = self._table_chunk(table, X, train, rows)
            else:
                self._check_chunk(X, y)
                moments.add(X if not held.any() else X[train])
        if self.n_train == 0:
            raise DataError(f"no training rows in {self._where()} (after holding out validation rows)")
        self.labels = None if len(labels) > self.max_classes or not labels else np.array(sorted(labels))
        if table is not None:
            self.encoder, self.scaler = table.finish(self.scaler.kind)
            self.n_features, self.table = self.encoder.width, True
        else:
            self._fit_scaler(moments)
        self.prepared = True
        return self

    def _check_label_kind(self, y: np.ndarray, kinds: dict[str, str]) -> None:
        """The targets are text in every shard or numbers in every shard (``kinds``: kind -> the first file of it):
        a label 1 in one file and "1" in another would be two classes, or no order to sort them in."""
        kinds.setdefault("text" if y.dtype.kind in "USO" else "numbers", self._where())
        if len(kinds) > 1:
            raise DataError(f"{kinds['text']}: the target column {getattr(self.source, 'target', '')!r} holds text, "
                            f"but in {kinds['numbers']} it holds numbers; the labels must be of one kind in every "
                            "file")

    def _table_chunk(self, table: TableStats | None, X: pd.DataFrame, train, rows) -> TableStats:
        """A table's chunk into its statistics (made on the first chunk); an error names the file."""
        try:
            table = table or TableStats(X, train, rows, self.encoder)
            table.add(X, train, rows)
        except DataError as exc:
            raise DataError(f"{self._where()}: {exc}") from None
        return table

    def _check_chunk(self, X: np.ndarray, y: np.ndarray) -> None:
        if X.dtype.kind not in "biuf":
            raise DataError(f"{self._where()}: features must be numeric, got {X.dtype}")
        if self.n_features is None:
            self.n_features = X.shape[1]
        elif X.shape[1] != self.n_features:
            raise DataError(f"{self._where()}: a chunk has {X.shape[1]} features, the first had {self.n_features}")
        if not np.isfinite(X).all():
            raise DataError(f"{self._where()}: X contains NaN or inf")

    def _fit_scaler(self, moments: Moments) -> None:
        self.scaler.shift, self.scaler.scale = moments.affine(self.scaler.kind, self.n_features)

    def _where(self) -> str:
        return self._current if hasattr(self, "_current") else self.source.name(0)

    def buffer_rows(self, itemsize: int = 4) -> int:
        """Rows of the shuffle buffer: ``shuffle_buffer``, or as many as fit in BUFFER_BYTES."""
        return self.shuffle_buffer or max(1, BUFFER_BYTES // (itemsize * self.n_features))

    # --- reading -----------------------------------------------------------------------
    def _chunks(self, shards, prefetch: bool = True, encode: bool = True, shard: bool = False) -> Iterator[tuple]:
        """(X, y, held-out mask) for every chunk of the shards, in order, a table's rows encoded (with ``encode``),
        and with ``shard`` the shard's number; read ahead in a thread if ``prefetch``."""
        def read():
            for s in shards:
                self._current = self.source.name(s)
                start = 0
                for X, y in self._shard(s, encode):
                    k = X.shape[0]
                    yield (X, y, self._held_out(s, start, k)) + ((s,) if shard else ())
                    start += k
        return _ahead(read(), self.prefetch) if prefetch else read()

    def _shard(self, s: int, encode: bool) -> Iterator[tuple]:
        """The chunks of shard s from the decoded cache, or from the source (encoded) and into the cache."""
        if self.cache is not None and s in self.cache:
            return self.cache.chunks(s)
        chunks = self.source.chunks(s, self.chunk_rows)
        if encode and self.table:
            chunks = ((self.encoder.transform(X), y) for X, y in chunks)
        return chunks if self.cache is None else self.cache.record(s, [self.source.path(s)], chunks)

    def _held_out(self, shard: int, start: int, k: int) -> np.ndarray:
        """The validation rows of a chunk: a low-discrepancy sequence over (shard, row), fixed for every epoch."""
        if not self.validation_fraction:
            return np.zeros(k, bool)
        u = (np.arange(start, start + k) * GOLDEN + shard * PLASTIC) % 1.0
        return u < self.validation_fraction

    def epoch_shards(self, rng: np.random.Generator | None, rank: int = 0, size: int = 1) -> list[int]:
        """The shards of one epoch: in a new order drawn from ``rng``, or in the files' order with None; of a
        job's ``size`` ranks, rank ``rank`` reads every size-th of them from its own on."""
        shards = list(range(len(self.source.shards)))
        if rng is not None:
            shards = [shards[i] for i in rng.permutation(len(shards))]
        return shards[rank::size]

    def epoch_chunks(self, shards: list[int], part: str = "train"):
        """The chunks of the ``shards`` (epoch_shards), ``part`` "train", "val" or "all" rows."""
        for X, y, held in self._chunks(shards):
            keep = np.ones_like(held) if part == "all" else held if part == "val" else ~held
            if keep.all():
                yield X, y
            elif keep.any():
                yield X[keep], y[keep]


_END = object()


def _ahead(items: Iterator, depth: int) -> Iterator:
    """``items`` produced by a background thread, up to ``depth`` ahead of the consumer; its errors re-raised
    here. Stopping early (an exception in training) stops the thread."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce():
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_END)
        except BaseException as exc:  # handed to the consumer, which raises it
            q.put(exc)

    thread = threading.Thread(target=produce, name="deltaprop-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
