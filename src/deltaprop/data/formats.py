"""The kinds of data file deltaprop reads, each declared once: its name, its suffixes, what it holds.

Every question "what kind of file is this?" is asked here (``lookup``, ``format_of``), so that a
suffix is written in one place: ``data.open`` (registry.py) opens a file by its Format, read_table
tells Parquet from CSV and a TSV's tab by it, the CLI's help lists the formats from it. A new file
format is one Format here (``register`` for one made outside deltaprop) and the module that reads it:

    register(Format("arff", (".arff",), table=True, opener="mypackage.arff:ArffFile"))

``opener`` names (as "module:attribute", imported when a file of the format is first opened, so that
pyarrow and the like load only when used) or is a callable ``opener(path, options) -> Source``
(registry.Options: target, read options, ...); ``shards``, where the format can be streamed, likewise
opens a glob or folder of its files as a stream's chunked Source. ``magic``: the bytes a file of the format starts with,
checked before it is read, so that a file whose content does not match its suffix is refused by name
rather than met by a parser's error.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError


@dataclass(frozen=True)
class Format:
    """One kind of data file: ``table``: named columns (encoded by a TableEncoder), else arrays X and y;
    ``shards``: where its files can be shards of a stream (a glob or folder of them, read a chunk at a time)."""

    name: str
    suffixes: tuple[str, ...]
    table: bool
    opener: str | Callable[..., Any]
    shards: str | Callable[..., Any] | None = None  # opener of a stream's shards: shards(pattern, options)
    delimiter: str | None = None  # a text table's delimiter, where the format fixes it (TSV)
    magic: bytes = b""
    pairs: bool = False  # a file holds one array: X and y come as a pair of files (a tuple), not one file

    @property
    def streams(self) -> bool:
        return self.shards is not None

    def open(self, path: Path, options) -> Any:
        """The format's Source for the file ``path`` (its opener, imported on first use)."""
        return _resolve(self.opener)(path, options)

    def open_shards(self, pattern: str, options) -> Any:
        """The format's chunked Source over the files of ``pattern`` (a glob, a folder, a file), for a stream."""
        if self.shards is None:
            raise DataError(f"{pattern}: {self.name} files cannot be streamed as shards")
        return _resolve(self.shards)(pattern, options)


def _resolve(opener: str | Callable[..., Any]) -> Callable[..., Any]:
    """A callable, or the one a "module:attribute" string names (imported now)."""
    if isinstance(opener, str):
        module, _, attribute = opener.partition(":")
        return getattr(importlib.import_module(module, __package__), attribute)
    return opener


FORMATS: dict[str, Format] = {}  # by suffix (lower case, with its dot)


def register(fmt: Format) -> Format:
    """Make ``fmt`` known by its suffixes; a suffix another format claims is refused (one reading per suffix)."""
    for suffix in fmt.suffixes:
        if not suffix.startswith(".") or suffix != suffix.lower():
            raise DataError(f"format {fmt.name!r}: a suffix is written in lower case with its dot, got {suffix!r}")
        if suffix in FORMATS and FORMATS[suffix].name != fmt.name:
            raise DataError(f"format {fmt.name!r}: the suffix {suffix} is {FORMATS[suffix].name!r}'s already")
    for suffix in fmt.suffixes:
        FORMATS[suffix] = fmt
    return fmt


def lookup(path) -> Format | None:
    """The format of a file (or glob) by its suffix, or None for a suffix no format claims."""
    return FORMATS.get(Path(str(path)).suffix.lower())


def format_of(path) -> Format:
    """The format of a file by its suffix; a DataError naming the suffixes known for any other."""
    fmt = lookup(path)
    if fmt is None:
        suffix = Path(str(path)).suffix
        raise DataError(f"{path}: unknown data file type {suffix or '(no suffix)'!r}; deltaprop reads "
                        f"{describe()}")
    return fmt


def is_table(path) -> bool:
    """Whether ``path`` names a table file (CSV, TSV, Parquet, ...): named columns."""
    fmt = lookup(path)
    return fmt is not None and fmt.table


def streamable(path) -> Format | None:
    """The format of files that can be streamed as shards (Parquet, CSV), else None."""
    fmt = lookup(path)
    return fmt if fmt is not None and fmt.streams else None


def describe() -> str:
    """The formats for messages and help: "a table (.csv, ...), arrays X and y (.npz), or a folder ..."."""
    formats = list(dict.fromkeys(FORMATS.values()))
    tables = [s for f in formats if f.table for s in f.suffixes]
    arrays = [s for f in formats if not f.table and not f.pairs for s in f.suffixes]
    return (f"a table ({', '.join(tables)}), arrays X and y ({', '.join(arrays)}), or a folder holding the four "
            "MNIST-style IDX files")


def check_magic(path: Path, fmt: Format) -> None:
    """Refuse a file whose first bytes are not its format's (a CSV renamed .parquet, an HTML page saved as
    .npz) before a parser meets it."""
    if not fmt.magic:
        return
    with open(path, "rb") as f:
        head = f.read(len(fmt.magic))
    if head != fmt.magic:
        raise DataError(f"{path}: not a {fmt.name.upper()} file (it does not start with {fmt.magic!r}, as every "
                        f"{fmt.name.upper()} file does); is the suffix {path.suffix} right?")


for _fmt in (
    Format("csv", (".csv", ".txt"), table=True, opener=".registry:TableFile", shards=".registry:csv_shards"),
    Format("tsv", (".tsv",), table=True, opener=".registry:TableFile", shards=".registry:csv_shards",
           delimiter="\t"),
    Format("parquet", (".parquet", ".pq"), table=True, opener=".registry:TableFile",
           shards=".registry:parquet_shards", magic=b"PAR1"),
    Format("npz", (".npz",), table=False, opener=".registry:NpzFile", magic=b"PK"),
    Format("npy", (".npy",), table=False, opener=".registry:npy_alone", magic=b"\x93NUMPY", pairs=True),
):
    register(_fmt)
