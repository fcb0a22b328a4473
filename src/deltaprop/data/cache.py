"""DecodedCache: shards that cost CPU to decode (Parquet, CSV) decoded once, read back as raw arrays.

Decoding Parquet's columns (or parsing CSV, and encoding a table's text columns) costs
CPU every epoch, and on a small machine that CPU is what training needs: reading 60,000
rows of 784 Parquet columns takes about 0.5 s of a core, as much as a third of an epoch of
the medium network. So the first time a shard is read in full, its chunks are also
written, as the arrays training receives (encoded, before scaling), to .npy files in a
temporary folder; later epochs load those (a copy from the page cache, as for .npy
shards). The idea is tf.data's ``cache(filename)`` and Hugging Face datasets' Arrow cache.

What it guarantees: the rows, their order and chunking are those the source gives, so
the weights are the same with and without the cache. A shard is read from the cache only
when it was written in full and its .npy files still have the sizes they were written with
(one truncated or removed between two fits is forgotten, and the shard decoded again); its
source files' size and modification time are checked every time, so a source file that
disappears or changes during training is an error naming it, as without the cache.
The folder is removed when the stream is (or the process ends).
What it costs: disk space, the decoded size (rows x features x the dtype's bytes);
caching stops, with a warning, before it would leave less than KEEP_FREE bytes free,
and the shards not cached are decoded every epoch as before.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError

KEEP_FREE = 2 * 2**30  # caching stops before the disk would have less than this free
LIVE: weakref.WeakSet = weakref.WeakSet()  # the caches of this process, for remove_caches


def remove_caches() -> None:
    """Every cache folder of this process removed now, for a process about to be ended without running its exit
    handlers (an MPI job's abort, a Ctrl-C that kills the ranks waiting in MPI); the caches stop caching."""
    for cache in list(LIVE):
        cache.stopped = True
        shutil.rmtree(cache.folder, ignore_errors=True)


class DecodedCache:
    """Decoded chunks of whole shards, as .npy files in a temporary folder (in ``where``, or the system's)."""

    def __init__(self, where: str | Path | None = None):
        try:
            self.folder = Path(tempfile.mkdtemp(prefix="deltaprop-cache-", dir=where))
        except OSError as exc:
            raise ConfigError(f"cannot make the decoded-shard cache in {where or tempfile.gettempdir()}: "
                              f"{exc.strerror or exc}") from None
        self._remove = weakref.finalize(self, shutil.rmtree, str(self.folder), True)
        self.shards: dict[int, tuple[int, list]] = {}  # shard -> (chunks, [(file, (size, mtime)) of its source])
        self.sizes: dict[int, list] = {}  # shard -> the byte size of each of its .npy files, as written
        self.stopped = False
        LIVE.add(self)

    def __contains__(self, shard: int) -> bool:
        """Whether the shard is cached whole: its .npy files are all there, of the sizes written (one cut or
        removed since, by a full disk or a cleaner of temporary files, forgets the shard: it is decoded again)."""
        if shard not in self.shards:
            return False
        files = self._files(shard)
        try:
            whole = [f.stat().st_size for f in files] == self.sizes[shard]
        except OSError:
            whole = False
        if not whole:
            self._forget(shard)
        return whole

    def _files(self, shard: int) -> list[Path]:
        return [self.folder / f"{shard}-{i}-{part}.npy" for i in range(self.shards[shard][0]) for part in "Xy"]

    def _forget(self, shard: int) -> None:
        del self.shards[shard]
        self.sizes.pop(shard, None)
        for path in self.folder.glob(f"{shard}-*.npy"):
            path.unlink(missing_ok=True)

    def chunks(self, shard: int) -> Iterator[tuple]:
        """The shard's chunks (X, y) as they were first read; its source files checked unchanged."""
        n, files = self.shards[shard]
        for path, stamp in files:
            try:
                now = _stamp(path)
            except FileNotFoundError:
                raise DataError(f"{path}: no such file (it disappeared while training?)") from None
            if now != stamp:
                raise DataError(f"{path}: the file changed while training (its size or time differs)")
        for i in range(n):
            try:
                yield tuple(np.load(self.folder / f"{shard}-{i}-{part}.npy", allow_pickle=False) for part in "Xy")
            except (OSError, ValueError, EOFError) as exc:  # changed in place since its size was checked
                raise DataError(f"the decoded-shard cache in {self.folder} is damaged ({exc}); train again, or "
                                "pass cache=False (--stream-cache off)") from None

    def record(self, shard: int, files: list[Path], chunks: Iterator[tuple]) -> Iterator[tuple]:
        """``chunks`` passed on, and written; the shard counts as cached only once they have all been."""
        stamps = [(p, _stamp(p)) for p in files]  # before reading: a change while it is read shows later
        writing, n = not self.stopped, 0
        for X, y in chunks:
            if writing:
                writing = self._write(shard, n, X, y)
                n += 1
            yield X, y
        if writing:
            self.shards[shard] = (n, stamps)
            self.sizes[shard] = [f.stat().st_size for f in self._files(shard)]
        else:
            for path in self.folder.glob(f"{shard}-*.npy"):  # a shard cached in part is not used: its disk back
                path.unlink()

    def _write(self, shard: int, i: int, X, y) -> bool:
        """One chunk to disk; False (and nothing of the shard kept) where it cannot be: not arrays, labels that
        are not plain numbers or text, or too little disk left."""
        if not isinstance(X, np.ndarray) or X.dtype.kind not in "biuf":
            return False  # a table's first pass (DataFrames): cached in the first epoch, once encoded
        if y.dtype == object and all(isinstance(v, str) for v in y):
            y = y.astype(str)
        if y.dtype.kind not in "biufU":
            return False
        if shutil.disk_usage(self.folder).free - X.nbytes - y.nbytes < KEEP_FREE:
            self.stopped = True
            warnings.warn(f"the decoded-shard cache in {self.folder} stopped: the disk would have less than "
                          f"{KEEP_FREE / 2**30:.0f} GB free; the shards not cached are decoded every epoch",
                          stacklevel=2)
            return False
        try:
            np.save(self.folder / f"{shard}-{i}-X.npy", np.ascontiguousarray(X))
            np.save(self.folder / f"{shard}-{i}-y.npy", y)
        except OSError as exc:  # the disk filled up after all: decode every epoch instead
            self.stopped = True
            warnings.warn(f"the decoded-shard cache in {self.folder} stopped ({exc})", stacklevel=2)
            return False
        return True


def _stamp(path: Path) -> tuple[int, int]:
    """What tells a file changed: its size and modification time (ns)."""
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns
