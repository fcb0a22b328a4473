"""Source: a data set on disk (or in Python), read a chunk of rows at a time or whole.

Every way deltaprop reads data is a Source (``data.open`` gives one for a file, a folder, a glob, a
built-in name or chunks from Python): a stream reads its shards a chunk at a time (``chunks``), the
in-memory path reads it whole (``read``, a Whole). So a new kind of data is one Source, which both
paths then read, rather than a loader beside a stream.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError

Chunk = tuple[np.ndarray, np.ndarray]


@dataclass
class Whole:
    """A source read whole, in memory. ``X``: an array (m, n), or a table's rows as a DataFrame (a table file's
    with its ``target`` column, which a TableEncoder leaves out by name; shards' features alone, ``target``
    None); ``y`` (m,); ``test``: the (X, y) the source
    itself holds out (a built-in set's test files or split), else None (the caller splits); ``notes``: what
    reading did that a user should hear (rows left out); ``path``: the one file it was read from."""

    name: str
    X: Any
    y: np.ndarray
    feature_names: list[str]
    class_names: list[str] = field(default_factory=list)
    test: Chunk | None = None
    notes: list[str] = field(default_factory=list)
    target: str | None = None
    path: Path | None = None

    @property
    def table(self) -> bool:
        return isinstance(self.X, pd.DataFrame)


class Source:
    """Shards and a chunked reader; subclasses set ``shards`` (for messages) and ``features``; ``table``: chunks
    of X come as DataFrames, encoded by the stream."""

    table = False
    decoded = False  # reading costs CPU beyond a copy (Parquet, CSV): worth a decoded cache (cache.py)
    streams = True  # can be read a chunk at a time (a stream); a file read whole only (NPZ) says False
    shards: list
    features: list[str] | None  # feature names (Parquet, CSV) or None, for the messages and the model's column order

    def chunks(self, shard: int, rows: int) -> Iterator[Chunk]:
        raise NotImplementedError

    def streamed(self) -> Source:
        """The source whose chunks a stream reads (itself; a single file's chunked reader for TableFile)."""
        return self

    def read(self) -> Whole:
        """Every shard's rows, in order, in memory: the chunks put together (a file format with a reader of its
        own for whole files overrides this)."""
        parts = [chunk for s in range(len(self.shards)) for chunk in self.chunks(s, 1 << 16)]
        if not parts:
            raise DataError(f"{self.name(0)}: no rows")
        X = pd.concat([X for X, _ in parts], ignore_index=True) if isinstance(parts[0][0], pd.DataFrame) else \
            np.concatenate([X for X, _ in parts])
        width = X.shape[1]
        names = self.features or [f"x{i}" for i in range(width)]
        return Whole(Path(self.name(0)).stem, X, np.concatenate([y for _, y in parts]), list(names))

    def name(self, shard: int) -> str:
        return str(self.shards[shard])

    def path(self, shard: int) -> Path:
        """The file a shard is read from (for the decoded cache's checks)."""
        return Path(self.shards[shard])


def files_of(pattern) -> list[Path]:
    """The files a path, folder or glob names, sorted (a folder: its files, hidden ones left out)."""
    text = str(pattern)
    if any(c in text for c in "*?["):
        files = sorted(Path(p) for p in glob.glob(text))
    elif Path(text).is_dir():
        files = sorted(p for p in Path(text).iterdir() if p.is_file() and not p.name.startswith("."))
    else:
        files = [Path(text)]
    if not files:
        raise DataError(f"{text}: no files match")
    for f in files:
        if not f.is_file():
            raise DataError(f"{f}: no such file")
    return files
