"""IDX files (the MNIST format), plain or gzip-compressed.

Layout: two zero bytes, a type code, the number of dimensions d, then d
big-endian uint32 sizes, then the values, big-endian, row-major.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MAX_VALUES = 2**32  # refuse headers that claim more than any real data set holds
MAX_RATIO = 100  # a .gz may inflate to at most this many times its size (MNIST's files: about 5)


def read_idx(path) -> np.ndarray:
    """The array stored in an IDX file (``.gz`` or not, detected from its first bytes)."""
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            compressed = raw.read(2) == b"\x1f\x8b"
        opener = gzip.open if compressed else open
        with opener(path, "rb") as f:
            return _read(f, path, path.stat().st_size * (MAX_RATIO if compressed else 1))
    except FileNotFoundError:
        raise DataError(f"{path}: no such IDX file") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt IDX file ({exc})") from None


def _read(f, path: Path, limit: int) -> np.ndarray:
    """The array; ``limit`` bounds the bytes its header may claim (the file's size, times MAX_RATIO for
    gzip), so a small file cannot inflate to gigabytes."""
    head = f.read(4)
    if len(head) < 4 or head[:2] != b"\x00\x00" or head[2] not in TYPES or not 1 <= head[3] <= 8:
        raise DataError(f"{path}: not an IDX file (bad magic number {head.hex() or 'empty'})")
    ndim = head[3]
    dims_raw = f.read(4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise DataError(f"{path}: truncated IDX file (header ends after {4 + len(dims_raw)} bytes)")
    shape = tuple(int(d) for d in np.frombuffer(dims_raw, dtype=">u4"))
    count = math.prod(shape)  # Python integers: a product of uint32 sizes overflows int64
    if math.prod(d for d in shape if d) > MAX_VALUES:  # zero-size arrays with absurd other sizes too
        raise DataError(f"{path}: IDX header claims shape {shape}: more than any supported file holds")
    dtype = np.dtype(TYPES[head[2]])
    expected = count * dtype.itemsize
    if expected > limit:
        raise DataError(f"{path}: IDX header claims shape {shape} ({expected} bytes), more than a file of "
                        f"{path.stat().st_size} bytes can hold")
    data = _read_at_most(f, expected)
    if len(data) < expected:
        raise DataError(f"{path}: truncated IDX file: shape {shape} needs {expected} bytes of data, "
                        f"found {len(data)}")
    if f.read(1):
        raise DataError(f"{path}: IDX file has data beyond the {expected} bytes its shape {shape} needs")
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _read_at_most(f, n: int, chunk: int = 2**24) -> bytes:
    """Up to n bytes, read in chunks: memory grows with the data present, not with what a
    (possibly hostile) header claims."""
    parts, remaining = [], n
    while remaining > 0:
        part = f.read(min(chunk, remaining))
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)
