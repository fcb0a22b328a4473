"""Shards of data on disk, read a chunk of rows at a time: Parquet, .npy pairs, uncompressed IDX, CSV, chunks.

A source is a list of shards (files, or file pairs) and a way to read each one as
``(X, y)`` chunks of at most ``rows`` rows, never the whole shard at once: Parquet by
record batches (pyarrow), .npy and IDX through a memory map opened for each chunk and
closed after it (so the mapped pages do not add up in the process's memory), CSV by
pandas' chunked reader. Every shard must have the first shard's columns or feature
count; a reading error names the file. X comes back as the file stores it (the
stream casts it to the network's dtype); y as a 1-D array.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from .guards import check_parquet, decimals_as_floats, regular_file
from .idx import TYPES
from .source import Chunk, Source, files_of
from .tables import ReadOptions, csv_arguments, refuse_duplicates

PARQUET_ROWS = 16384  # the smallest record batch read from Parquet


class ParquetSource(Source):
    """Parquet files: ``target`` is the label column, every other column a feature, matched by name; numeric
    columns without nulls come as one array, anything else as a table. A shard is one row group, so that
    the epoch's order and a job's ranks deal in row groups (a single file with many also spreads out)."""

    decoded = True

    def __init__(self, pattern, target: str):
        import pyarrow.parquet as pq  # the [parquet] extra, needed only for Parquet

        self.pq, self.files, self.target = pq, files_of(pattern), target
        readers = [self._open(path) for path in self.files]  # each file's footer, read once here
        schema = readers[0].schema_arrow
        for path, reader in zip(self.files, readers, strict=True):
            refuse_duplicates(reader.schema_arrow.names, path)
            check_parquet(path, reader)
        if target not in schema.names:
            raise DataError(f"{self.files[0]}: no column {target!r} (columns: {', '.join(schema.names)})")
        self.features: list[str] = [c for c in schema.names if c != target]
        self.types = {f.name: f.type for f in schema}
        self.shards, nulls = [], False
        for path, reader in zip(self.files, readers, strict=True):
            self.shards += [(path, g) for g in range(reader.metadata.num_row_groups)]
            nulls = nulls or self._may_have_nulls(reader.metadata)
        # a table (text columns, or missing values anywhere) comes as DataFrames for the stream's TableEncoder
        self.table = not all(_arrow_numeric(schema.field(n).type) for n in self.features) or nulls

    def name(self, shard: int) -> str:
        return str(self.shards[shard][0])

    def path(self, shard: int) -> Path:
        return self.shards[shard][0]

    def _open(self, path: Path, pre_buffer: bool = False):
        """The file's reader, its footer (schema, row groups, statistics) read; a clear error for a file that went
        away or is not Parquet (truncated, foreign), or is no regular file (a FIFO would block the open)."""
        regular_file(path)
        try:
            return self.pq.ParquetFile(path, pre_buffer=pre_buffer)
        except FileNotFoundError:
            raise DataError(f"{path}: no such file (it disappeared while training?)") from None
        except Exception as exc:  # pyarrow's errors for a truncated or foreign file
            raise DataError(f"{path}: not a readable Parquet file ({exc})") from None

    def _may_have_nulls(self, meta) -> bool:
        """From a file's metadata: a feature column chunk with nulls, or without statistics to tell."""
        names = [meta.schema.column(j).name for j in range(meta.num_columns)]
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            for j, name in enumerate(names):
                stats = group.column(j).statistics
                if name != self.target and (stats is None or not stats.has_null_count or stats.null_count):
                    return True
        return False

    def chunks(self, shard, rows):
        path, group = self.shards[shard]
        reader = self._open(path, pre_buffer=True)  # pre-buffered: a row group's columns in one read
        schema = reader.schema_arrow
        if sorted(schema.names) != sorted(self.features + [self.target]):
            raise DataError(f"{path}: its columns {schema.names} differ from the first shard's "
                            f"{self.features + [self.target]} (names and types must match)")
        for name, first in self.types.items():
            if schema.field(name).type != first:
                raise DataError(f"{path}: column {name!r} is of type {schema.field(name).type}, in the first shard "
                                f"{self.files[0]} of type {first} (names and types must match)")
        try:
            # batches of at least PARQUET_ROWS: decoding hundreds of columns costs per batch, not per row; one
            # thread: the reader thread already overlaps training, and pyarrow's pool would compete with BLAS
            for batch in reader.iter_batches(batch_size=max(rows, PARQUET_ROWS), row_groups=[group],
                                             columns=self.features + [self.target], use_threads=False):
                yield self._arrays(batch, path)
        except DataError:
            raise
        except FileNotFoundError:
            raise DataError(f"{path}: no such file (it disappeared while training?)") from None
        except Exception as exc:
            raise DataError(f"{path}: cannot be read ({type(exc).__name__}: {exc})") from None

    def _arrays(self, batch, path) -> Chunk:
        """X (rows, features) in the columns' common type (float32 stays float32), or a DataFrame of the features
        for a table; y, where a missing value is refused."""
        batch.validate(full=True)  # text that is not UTF-8 fails here (as "cannot be read"), not inside pandas
        batch = decimals_as_floats(batch)
        position = {name: i for i, name in enumerate(batch.schema.names)}
        y = batch.column(position[self.target])
        if y.null_count:
            raise DataError(f"{path}: the target column {self.target!r} has {y.null_count} missing values")
        if self.table:
            return batch.select(self.features).to_pandas(), y.to_numpy(zero_copy_only=False)
        values = []
        for name in self.features:
            column = batch.column(position[name])
            if column.null_count:
                raise DataError(f"{path}: column {name!r} has {column.null_count} missing values; streaming "
                                "does not impute (fill them before writing the shards)")
            values.append(column.to_numpy(zero_copy_only=False))
        X = np.empty((len(values), batch.num_rows), np.result_type(*values)).T  # column j contiguous: fast writes
        for j, column in enumerate(values):
            X[:, j] = column
        return X, y.to_numpy(zero_copy_only=False)


def _arrow_numeric(t) -> bool:
    import pyarrow.types as pt

    return pt.is_integer(t) or pt.is_floating(t) or pt.is_boolean(t) or pt.is_decimal(t)


class NpySource(Source):
    """Pairs of .npy files, X (m, n) and y (m,), paired in sorted order; memory-mapped a chunk at a time."""

    features = None

    def __init__(self, X_pattern, y_pattern):
        X_files, y_files = files_of(X_pattern), files_of(y_pattern)
        if len(X_files) != len(y_files):
            raise DataError(f"{len(X_files)} X files but {len(y_files)} y files: each X shard needs its y")
        self.shards = list(zip(X_files, y_files, strict=True))
        self.n_features = None
        for X_path, y_path in self.shards:
            X_shape, y_shape = _npy_layout(X_path)[0], _npy_layout(y_path)[0]
            if len(X_shape) != 2 or len(y_shape) != 1 or X_shape[0] != y_shape[0]:
                raise DataError(f"{X_path} is {X_shape} and {y_path} is {y_shape}: a shard needs X (m, n) and y (m,)")
            if self.n_features not in (None, X_shape[1]):
                raise DataError(f"{X_path} has {X_shape[1]} features, the first shard {self.n_features}")
            self.n_features = X_shape[1]

    def name(self, shard):
        return str(self.shards[shard][0])

    def chunks(self, shard, rows):
        X_path, y_path = self.shards[shard]
        X_layout, y_layout = _npy_layout(X_path), _npy_layout(y_path)  # again: the file may have changed
        for start in range(0, X_layout[0][0], rows):
            n = min(rows, X_layout[0][0] - start)
            yield _mapped_rows(X_path, X_layout, start, n), _mapped_rows(y_path, y_layout, start, n)


def _npy_layout(path: Path) -> tuple:
    """(shape, dtype, data offset) from a .npy header, checked against the file's size."""
    regular_file(path)
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(f)
            offset = f.tell()
            data_bytes = path.stat().st_size - offset
    except FileNotFoundError:
        raise DataError(f"{path}: no such file (it disappeared while training?)") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{path}: not a readable .npy file ({exc})") from None
    if fortran or dtype.hasobject or dtype.kind not in "biuf":
        raise DataError(f"{path}: a .npy shard must be a C-ordered numeric array (got {dtype}, fortran={fortran})")
    if math.prod(shape) * dtype.itemsize > data_bytes:
        raise DataError(f"{path}: truncated .npy file: shape {shape} needs {math.prod(shape) * dtype.itemsize} "
                        f"bytes, the file holds {data_bytes}")
    return shape, dtype, offset


class IdxSource(Source):
    """An uncompressed IDX images file (m, ...) and its labels file (m,): MNIST's format."""

    features = None

    def __init__(self, images, labels):
        self.shards = [(Path(images), Path(labels))]
        self.layout = [_idx_layout(Path(images)), _idx_layout(Path(labels))]
        (X_shape, _, _), (y_shape, _, _) = self.layout
        if len(y_shape) != 1 or X_shape[0] != y_shape[0]:
            raise DataError(f"{images} holds {X_shape} and {labels} {y_shape}: one label per image needed")
        self.n_features = math.prod(X_shape[1:])

    def name(self, shard):
        return str(self.shards[0][0])

    def chunks(self, shard, rows):
        images, labels = self.shards[0]
        m = self.layout[0][0][0]
        for start in range(0, m, rows):
            n = min(rows, m - start)
            yield _mapped_rows(images, self.layout[0], start, n).reshape(n, self.n_features), \
                _mapped_rows(labels, self.layout[1], start, n)


def _idx_layout(path: Path) -> tuple:
    """(shape, big-endian dtype, data offset) from an IDX header; compressed files are refused."""
    regular_file(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
            if head[:2] == b"\x1f\x8b":
                raise DataError(f"{path}: gzip-compressed IDX cannot be streamed; decompress it first (gunzip)")
            if len(head) < 4 or head[:2] != b"\x00\x00" or head[2] not in TYPES or not 1 <= head[3] <= 8:
                raise DataError(f"{path}: not an IDX file")
            shape = tuple(int(d) for d in np.frombuffer(f.read(4 * head[3]), dtype=">u4"))
        size = path.stat().st_size
    except FileNotFoundError:
        raise DataError(f"{path}: no such IDX file") from None
    dtype, offset = np.dtype(TYPES[head[2]]), 4 + 4 * len(shape)
    if offset + math.prod(shape) * dtype.itemsize > size:
        raise DataError(f"{path}: truncated IDX file (shape {shape} needs more than its {size} bytes)")
    return shape, dtype, offset


def _mapped_rows(path: Path, layout: tuple, start: int, n: int) -> np.ndarray:
    """Rows start..start+n-1 of the array a (shape, dtype, offset) layout describes, copied (in native byte
    order) out of a memory map that is closed again, so its pages leave the process."""
    shape, dtype, offset = layout
    width = math.prod(shape[1:])
    try:
        mapped = np.memmap(path, dtype=dtype, mode="r", offset=offset + start * width * dtype.itemsize,
                           shape=(n * width,))
        values = mapped.astype(dtype.newbyteorder("=")).reshape((n,) + tuple(shape[1:]))
    except FileNotFoundError:
        raise DataError(f"{path}: no such file (it disappeared while training?)") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot be read ({exc})") from None
    del mapped
    return values


class CsvSource(Source):
    """CSV files with a header: ``target`` is the label column, the rest features (a table: the stream's
    TableEncoder reads text and missing values), matched by name. Each file is read as ``read_table`` reads it
    (tables.csv_arguments: the ReadOptions' or the detected delimiter and decimal mark, the same missing-value
    cells), so that a model streamed from files encodes them as ``deltaprop predict`` will."""

    table = decoded = True

    def __init__(self, pattern, target: str, read: ReadOptions | None = None):
        self.shards, self.target, self.read_options = files_of(pattern), target, read or ReadOptions()
        names = self._header(0)[0]
        if target not in names:
            raise DataError(f"{self.shards[0]}: no column {target!r} (columns: {', '.join(names)})")
        self.features: list[str] = [c for c in names if c != target]

    def _header(self, shard: int) -> tuple[list, dict]:
        """The file's column names and its read_csv arguments."""
        path = self.shards[shard]
        try:
            arguments = csv_arguments(path, self.read_options)
            names = [str(c).strip() for c in pd.read_csv(path, nrows=0, **arguments).columns]
        except (OSError, ValueError, csv.Error) as exc:
            raise DataError(f"{path}: not a readable CSV file ({exc})") from None
        if arguments["header"] is None:
            raise DataError(f"{path}: a streamed CSV file needs a header row naming its columns; its first row "
                            "looks like data")
        return names, arguments

    def chunks(self, shard, rows):
        path = self.shards[shard]
        names, arguments = self._header(shard)
        if sorted(names) != sorted(self.features + [self.target]):
            raise DataError(f"{path}: its columns differ from the first shard's {self.features + [self.target]}")
        try:
            with pd.read_csv(path, chunksize=rows, **arguments) as reader:  # closed when reading stops early, too
                read = 0
                for frame in reader:
                    if frame.empty:  # a header-only file: no rows (whose column types would be guesses)
                        continue
                    read += len(frame)
                    frame.columns = names
                    if frame[self.target].isna().any():
                        raise DataError(f"{path}: the target column {self.target!r} has missing values")
                    yield frame[self.features], frame[self.target].to_numpy()
            if not read:
                raise DataError(f"{path}: the CSV file has a header but no data rows")
        except DataError:
            raise
        except (OSError, ValueError, csv.Error) as exc:
            raise DataError(f"{path}: cannot be read ({exc})") from None


class ChunkSource(Source):
    """Chunks from Python: an iterable of (X, y) read again each epoch (a list, or a function that returns
    a fresh iterator)."""

    features = None

    def __init__(self, chunks: Callable[[], Iterator[Chunk]] | list):
        self.make = chunks if callable(chunks) else (lambda: iter(chunks))
        self.shards = ["the chunks given"]

    def chunks(self, shard, rows):
        for X, y in self.make():
            X, y = np.asarray(X), np.asarray(y)
            if X.ndim != 2 or y.shape[:1] != X.shape[:1]:
                raise DataError(f"a chunk must be X (k, n) and y (k,) with the same k, got {X.shape} and {y.shape}")
            for start in range(0, X.shape[0], rows):
                yield X[start:start + rows], y[start:start + rows]
