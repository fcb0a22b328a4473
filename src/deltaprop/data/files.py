"""NPZ data files (arrays X and y), read without pickle; tables are read by tables.py."""

from __future__ import annotations

import math
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError


def read_npz(path) -> tuple[np.ndarray, np.ndarray]:
    """Arrays ``X`` (m, n) and ``y`` (m,) from an .npz file, loaded without pickle.

    Each array's header is checked against its stored size before the array is read,
    so a file cannot make the reader allocate more than it holds.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = {name.removesuffix(".npy"): name for name in archive.namelist()}
            missing = {"X", "y"} - set(names)
            if missing:
                raise DataError(f"{path}: the NPZ file needs arrays 'X' and 'y' (missing {sorted(missing)}; "
                                f"found {sorted(names)})")
            X, y = (_npy_member(archive, names[key], path) for key in ("X", "y"))
    except DataError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError, KeyError, zlib.error,
            NotImplementedError, RuntimeError, struct.error, UnicodeDecodeError) as exc:  # what a mangled zip raises
        raise DataError(f"{path}: unreadable NPZ file ({exc.__class__.__name__}: {exc})") from None
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise DataError(f"{path}: X must be (m, n) and y (m,), got {X.shape} and {y.shape}")
    return X, y


MAX_RATIO = 100  # a compressed member may inflate to at most this many times its stored bytes


def _npy_member(archive: zipfile.ZipFile, name: str, path: Path) -> np.ndarray:
    """One array, its claimed size checked before anything is allocated.

    The claim (shape x itemsize) must fit in what the member can really hold: its stored bytes
    (never more than the file's size on disk, whatever the zip directory says), times MAX_RATIO
    if it is compressed. So a small file cannot make the reader inflate or allocate gigabytes.
    """
    info = archive.getinfo(name)
    stored = min(info.compress_size, path.stat().st_size)
    limit = stored if info.compress_type == zipfile.ZIP_STORED else stored * MAX_RATIO
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(f)
        if dtype.hasobject:
            raise DataError(f"{path}: array {name!r} holds Python objects; only numeric arrays are read")
        if 0 in shape:
            raise DataError(f"{path}: array {name!r} has shape {shape}: no values")
        claimed = math.prod(shape) * dtype.itemsize  # Python integers: no overflow
        if claimed > min(limit, info.file_size):
            raise DataError(f"{path}: array {name!r} claims shape {shape} ({claimed} bytes), more than its "
                            f"{stored} stored bytes can hold" + (" (compressed)" if limit > stored else ""))
    with archive.open(info) as f:
        return np.lib.format.read_array(f, allow_pickle=False)
