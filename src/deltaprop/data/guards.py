"""What a hostile or careless file could make a reader do, checked before the reader does it.

- Only regular files are opened: a FIFO blocks ``open()`` for ever, a device or a /proc file never
  ends (``regular_file``), and a file is read no further than the size its directory entry gives
  (``read_within_size``): /proc/self/pagemap says 0 bytes and holds terabytes.
- A CSV's header line is read whole, however long (up to MAX_HEADER_BYTES), so that its names are
  never cut at a sampling boundary (``header_sample``); no cell is longer than MAX_CELL_BYTES
  (``check_cells``, one pass over the file in blocks, before pandas allocates for the cell).
- A Parquet footer's claims are weighed against the file before a row is decoded (``check_parquet``):
  its rows x columns as float64 at most MAX_RATIO times the file's size (or DECODED_FLOOR for a
  small file), so a 12 KB footer claiming 2^40 rows, or a run-length bomb of 5e8 rows in 3 MB, is
  refused with its claim; nested columns (lists, structs, maps) are refused by name, and decimal
  columns are read as float64 numbers (``decimals_as_floats``).
- A table has at most MAX_TABLE_COLUMNS columns (``check_width``, from its header or footer): each
  column is decided and encoded by itself (about 0.4 ms of pandas each), so 100,000 columns of 20
  rows, a 4.7 MB file, took over a minute; wider numeric data belongs in .npy or .npz files.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np

from ..errors import DataError
from .files import MAX_RATIO

MAX_HEADER_BYTES = 1 << 24  # a CSV header line longer than this (16 MiB) is refused
MAX_CELL_BYTES = 1 << 20  # a CSV cell longer than this (1 MiB) is refused
DECODED_FLOOR = 1 << 26  # a Parquet file may always decode to 64 MiB of float64 values, however small it is
MAX_TABLE_COLUMNS = 10_000  # a table (CSV, Parquet) with more columns is refused after its header
_BLOCK = 1 << 22  # the cell scan reads 4 MiB at a time


def regular_file(path) -> int:
    """The size of ``path``, a regular file; a FIFO, socket, device or folder is refused before it is opened
    (opening a FIFO blocks until a writer comes)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file (it disappeared?)") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(info.st_mode) \
            else "a device or socket"
        raise DataError(f"{path}: not a regular file ({kind}); only regular files are read")
    return info.st_size


def read_within_size(path, block: int = 1 << 20):
    """The bytes of a regular file, ``block`` at a time, never more than its size says: a pseudo-file (/proc's
    say 0 bytes and never end) or a file that grows while it is read is refused."""
    size = regular_file(path)
    with Path(path).open("rb") as f:
        left = size
        while left > 0 and (data := f.read(min(block, left))):
            left -= len(data)
            yield data
        if f.read(1):
            raise DataError(f"{path}: holds more bytes than its size ({size}) says: a pseudo-file such as /proc's, "
                            "or a file being written; it is not read")


def header_sample(path: Path, sample: int) -> bytes:
    """The file's first bytes: its whole first record (the header line, however long, up to MAX_HEADER_BYTES;
    a newline inside quotes does not end it) and ``sample`` bytes after it."""
    regular_file(path)
    with path.open("rb") as f:
        raw = f.read(sample)
        while (end := _record_end(raw)) is None:
            if len(raw) > MAX_HEADER_BYTES:
                raise DataError(f"{path}: the first line is longer than {MAX_HEADER_BYTES >> 20} MiB; a header that "
                                "long is not read")
            more = f.read(max(sample, len(raw)))  # doubling: linear in the header's length
            if not more:
                return raw
            raw += more
        return raw + f.read(max(0, sample - (len(raw) - end)))


def _record_end(raw: bytes) -> int | None:
    """The end of the first record in ``raw`` (just past its first newline outside quotes), or None."""
    start, quotes = 0, 0
    while (i := raw.find(b"\n", start)) >= 0:
        quotes += raw.count(b'"', start, i)
        if quotes % 2 == 0:
            return i + 1
        start = i + 1
    return None


def check_cells(path: Path, delimiter: str) -> None:
    """Refuse a CSV file with a cell longer than MAX_CELL_BYTES, found in one pass in 4 MiB blocks (memory
    bounded by the block): a cell ends at the delimiter or a newline outside quotes ("" inside quotes toggles
    twice, so the parity of the quotes before a byte tells whether it is quoted)."""
    marks = np.frombuffer(delimiter.encode() + b"\n", np.uint8)
    parity, last, offset = 0, -1, 0  # quotes before the block (mod 2), the last cell end, the block's start
    for block in read_within_size(path, _BLOCK):
        b = np.frombuffer(block, np.uint8)
        quoted = (np.cumsum(b == ord('"'), dtype=np.uint8) + np.uint8(parity)) & 1
        ends = np.flatnonzero(((b == marks[0]) | (b == marks[1])) & (quoted == 0)) + offset
        longest = int(np.diff(ends, prepend=last).max()) - 1 if ends.size else 0
        offset += len(b)
        if ends.size:
            last = int(ends[-1])
        if max(longest, offset - last - 1) > MAX_CELL_BYTES:
            raise DataError(f"{path}: a cell (a field between delimiters) is longer than {MAX_CELL_BYTES >> 20} MiB "
                            f"(by byte {offset}); such a file is not read (an unclosed quote makes one too)")
        parity = int(quoted[-1])


def check_width(path, columns: int) -> None:
    """Refuse a table of more than MAX_TABLE_COLUMNS columns, knowing only its header."""
    if columns > MAX_TABLE_COLUMNS:
        raise DataError(f"{path}: {columns} columns, more than the {MAX_TABLE_COLUMNS} a table may have (each column "
                        "is encoded by itself, which would take minutes); store wide numeric data as .npz (X, y) or "
                        ".npy shards")


def check_parquet(path: Path, reader) -> None:
    """A Parquet file's footer against the file, before anything is decoded: no nested column, and no more
    rows x columns (as float64) than MAX_RATIO times the file's size, or DECODED_FLOOR."""
    import pyarrow.types as pt

    for field in reader.schema_arrow:
        t = field.type
        if pt.is_dictionary(t):
            t = t.value_type
        if pt.is_nested(t):
            raise DataError(f"{path}: column {field.name!r} holds {t} values (nested: lists, structs or maps); only "
                            "flat columns of numbers, text or booleans can be read; flatten it or leave it out")
    meta = reader.metadata
    check_width(path, meta.num_columns)
    rows = max(meta.num_rows, sum(meta.row_group(g).num_rows for g in range(meta.num_row_groups)))
    claimed, size = 8 * rows * max(meta.num_columns, 1), regular_file(path)
    if claimed > max(MAX_RATIO * size, DECODED_FLOOR):
        raise DataError(f"{path}: its footer claims {rows} rows of {meta.num_columns} columns ({claimed} bytes as "
                        f"numbers), more than {MAX_RATIO} times its {size} bytes; a file that expands so far is not "
                        "read (a forged footer, or a compression bomb)")


def decimals_as_floats(data):
    """A pyarrow Table or RecordBatch with its decimal columns cast to float64: decimals are numbers (pandas
    would give Python Decimal objects, taken for text). Through their text: Arrow's direct cast can miss the
    nearest float by an ulp (1.65 became 1.6500000000000001), parsing the text rounds correctly."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not any(pa.types.is_decimal(t) for t in data.schema.types):
        return data
    columns = [pc.cast(pc.cast(c, pa.string()), pa.float64()) if pa.types.is_decimal(c.type) else c
               for c in data.columns]
    return type(data).from_arrays(columns, names=data.schema.names)
