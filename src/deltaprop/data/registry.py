"""data.open: one entry point that opens any data deltaprop reads as a Source, by what it is.

    source = dp.data.open("penguins.csv", target="species")   # a file, by its format (formats.py)
    whole = source.read()                                     # in memory: X (a table's rows), y, names
    dp.data.open("shards/*.parquet", target="y")              # many files: shards, read by a stream
    dp.data.open("digits"), dp.data.open("mnist-folder/")     # a built-in set; a folder of MNIST IDX files
    dp.data.open(("X_*.npy", "y_*.npy"))                      # pairs of array files (or of IDX files)

What ``data`` is decides the Source: a built-in name, a folder (the four MNIST-style IDX files, or
shards of one streamable format), a glob (shards), a file (its Format, by suffix, its first bytes
checked), a pair of paths, or chunks from Python. The in-memory path (the CLI's load_data) and the
stream (stream.py) both start here, so a file is recognised once, the same way for both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from .builtin import BUILTIN, IDX_STEMS, load_builtin, load_idx_folder
from .files import read_npz
from .formats import Format, check_magic, describe, format_of, lookup
from .guards import regular_file
from .source import Source, Whole, files_of
from .sources import ChunkSource, CsvSource, IdxSource, NpySource, ParquetSource
from .tables import ReadOptions, labelled_rows, read_table


@dataclass
class Options:
    """What opening may need besides the data's name: the target column (tables), how text tables are read,
    and for built-in sets the folder of their files and their train/test split (test_size, seed)."""

    target: str | None = None
    read: ReadOptions = field(default_factory=ReadOptions)
    data_dir: str | None = None
    test_size: float = 0.25
    seed: int = 0


def open(data, target: str | None = None, *, read: ReadOptions | None = None, data_dir=None,  # noqa: A001
         test_size: float = 0.25, seed: int = 0) -> Source:
    """The Source of ``data`` (module docstring); a DataError that names the problem for a missing file, a
    suffix no format claims, a folder with nothing to read, or a file whose content is not its suffix's."""
    if isinstance(data, Source):
        return data
    options = Options(target, read or ReadOptions(), data_dir, test_size, seed)
    if isinstance(data, tuple) and len(data) == 2 and all(isinstance(d, (str, Path)) for d in data):
        return _pair(*data)
    if callable(data) or isinstance(data, list):
        return ChunkSource(data)
    if not isinstance(data, (str, Path)):
        raise DataError(f"cannot open {type(data).__name__} as data: give a file, folder or glob, a built-in "
                        "name, a pair of array files, or chunks of (X, y)")
    text, path = str(data), Path(data)
    if is_glob(text):
        return _shards(text, files_of(text), options)
    if text in BUILTIN and not path.exists():
        return BuiltinSet(text, options)
    if path.is_dir():
        return _folder(path, options)
    if not path.exists():
        raise DataError(f"no data set or file {text!r}; use a built-in set ({', '.join(BUILTIN)}), {describe()}")
    regular_file(path)  # a FIFO or device is refused before it is opened
    fmt = format_of(path)
    check_magic(path, fmt)
    return fmt.open(path, options)


def is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def is_sharded(spec) -> bool:
    """Whether ``spec`` names shards to stream: a glob, or a folder of files of a streamable format (not one
    holding an MNIST-style IDX set)."""
    text = str(spec)
    return is_glob(text) or (Path(text).is_dir() and _shard_format(Path(text)) is not None)


def _shard_format(folder: Path) -> Format | None:
    """The streamable format of a folder's files (hidden files left out), when it holds such files and no IDX
    set (whose folder may hold a README.txt)."""
    if any((folder / stem).exists() or (folder / f"{stem}.gz").exists() for stem in IDX_STEMS):
        return None
    found = {lookup(p) for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")}
    return next((f for f in found if f is not None and f.streams), None)


def _folder(folder: Path, options: Options) -> Source:
    """A folder: shards of one streamable format, else the four MNIST-style IDX files (a folder lacking one
    is told which, and how to get the set)."""
    if _shard_format(folder) is None:
        return IdxFolder(folder)
    return _shards(str(folder), files_of(folder), options)


def _shards(pattern: str, files: list[Path], options: Options) -> Source:
    """A stream's shards: files all of one streamable format (their suffix says which)."""
    kinds = {lookup(f) for f in files}
    if len(kinds) > 1:
        names = sorted(k.name if k is not None else "unknown" for k in kinds)
        raise DataError(f"{pattern}: the files are of several kinds ({', '.join(names)}); shards must all be of "
                        "one format")
    fmt = kinds.pop()
    if fmt is None or not fmt.streams:
        raise DataError(f"{pattern}: {files[0].name} is not of a format that can be streamed as shards "
                        "(Parquet, CSV; .npy or IDX files as a pair of X and y)")
    if options.target is None:
        raise DataError(f"{pattern}: shards of a table need a target, the name of the label column")
    read = options.read
    if fmt.delimiter and not read.delimiter:  # a format that fixes its delimiter (TSV's tab), for every shard
        read = ReadOptions(fmt.delimiter, read.decimal, list(read.na_values), read.header)
    return fmt.open_shards(pattern, Options(options.target, read, options.data_dir, options.test_size, options.seed))


def parquet_shards(pattern: str, options: Options) -> Source:
    return ParquetSource(pattern, str(options.target))


def csv_shards(pattern: str, options: Options) -> Source:
    return CsvSource(pattern, str(options.target), options.read)


def _pair(X_spec, y_spec) -> Source:
    """X and y in two files (or globs) each: .npy arrays, else uncompressed IDX files (images, labels)."""
    first = str(X_spec)
    fmt = lookup(first)
    if (fmt is not None and fmt.name == "npy") or is_glob(first) or Path(first).is_dir():
        return NpySource(X_spec, y_spec)
    return IdxSource(X_spec, y_spec)


class TableFile(Source):
    """One table file (CSV, TSV, Parquet): read whole as read_table reads it (its target given by name or
    0-based index, the last column by default; rows without a target left out, and noted); streamed by the
    chunked reader of its format (CsvSource, ParquetSource), which needs the target's name."""

    table = decoded = True

    def __init__(self, path: Path, options: Options):
        self.file, self.options, self.shards, self.features = path, options, [path], None
        self.format = format_of(path)
        self._chunked: Source | None = None

    def frame(self) -> pd.DataFrame:
        """The file's table, every row (a table format with a reader of its own overrides this alone)."""
        return read_table(self.file, self.options.read)

    def read(self) -> Whole:
        notes: list[str] = []
        frame, name, y = labelled_rows(self.frame(), self.options.target, self.file, notes)
        return Whole(self.file.stem, frame, y, [c for c in map(str, frame.columns) if c != name], notes=notes,
                     target=name, path=self.file)

    def streamed(self) -> Source:
        if self._chunked is None:
            self._chunked = _shards(str(self.file), [self.file], self.options)
        return self._chunked

    def chunks(self, shard, rows):
        return self.streamed().chunks(shard, rows)


class NpzFile(Source):
    """An .npz file of arrays X (m, n) and y (m,), read whole without pickle (files.read_npz); whole-number
    float targets become integers, as a CSV's do (the task rule then decides). Not streamed: a compressed
    archive member cannot be read a chunk of rows at a time."""

    streams = False

    def __init__(self, path: Path, options: Options | None = None):
        self.file, self.shards, self.features = path, [path], None

    def read(self) -> Whole:
        X, y = read_npz(self.file)
        if y.dtype.kind == "f" and np.isfinite(y).all() and np.all(y == np.round(y)) and np.abs(y).max() < 2**53:
            y = y.astype(np.int64)  # whole numbers are labels or counts, as in a CSV (the task rule decides)
        return Whole(str(self.file), X, y, [f"x{i}" for i in range(X.shape[1])], path=self.file)


def npy_alone(path: Path, options: Options) -> Source:
    """A single .npy file holds one array: X and y come as a pair of them."""
    raise DataError(f"{path}: a .npy file holds one array; give X and y as a pair, e.g. "
                    f"dp.data.stream(('X_*.npy', 'y_*.npy')), or save both in one .npz file (np.savez(path, X=X, y=y))")


class BuiltinSet(Source):
    """A built-in set by name (builtin.py): its train and test parts, as the set defines them (scikit-learn's
    sets split stratified by ``test_size`` and ``seed``; Fashion-MNIST and MNIST by their files)."""

    streams = False

    def __init__(self, name: str, options: Options):
        self.set_name, self.options, self.shards, self.features = name, options, [name], None

    def read(self) -> Whole:
        data = load_builtin(self.set_name, self.options.data_dir, self.options.test_size, self.options.seed)
        return Whole(data.name, data.X_train, data.y_train, [f"x{i}" for i in range(data.X_train.shape[1])],
                     data.class_names, test=(data.X_test, data.y_test))


class IdxFolder(Source):
    """A folder holding the four MNIST-style IDX files (train and t10k images and labels, .gz or not)."""

    streams = False

    def __init__(self, folder: Path):
        self.folder, self.shards, self.features = folder, [folder], None

    def read(self) -> Whole:
        data = load_idx_folder(self.folder, self.folder.name)
        return Whole(data.name, data.X_train, data.y_train, [f"pixel{i}" for i in range(data.X_train.shape[1])],
                     data.class_names, test=(data.X_test, data.y_test))


def load_file(path, target: str | None = None) -> tuple[np.ndarray, np.ndarray, list]:
    """(X, y, feature_names) from a file of arrays (.npz): ``data.open(path).read()`` (tables: see
    ``tables.read_table``, or read them whole through ``data.open``)."""
    whole = open(path, target).read()
    if whole.table:
        raise DataError(f"{path}: a table; read it with read_table, or dp.data.open(path, target).read()")
    return whole.X, whole.y, whole.feature_names
