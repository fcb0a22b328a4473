"""Reading tables: CSV (delimiter sniffed, header detected, decimal commas) and Parquet, into pandas.

The parsing is pandas' (its C reader: quoted fields, newlines inside quotes, memory
near the data's size); this module decides what pandas cannot: which delimiter, whether
the first row is a header (also for files whose every cell is text), which decimal mark,
and which cells are missing. Duplicated column names are refused, never renamed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError, DeltapropWarning
from .formats import lookup
from .guards import (
    check_cells,
    check_parquet,
    check_width,
    decimals_as_floats,
    header_sample,
    read_within_size,
    regular_file,
)

DELIMITERS = (",", ";", "\t", "|")
NA_VALUES = ("", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "none", "?", "#N/A", "-nan")
SAMPLE_BYTES = 1 << 16  # what the sniffing reads of a file after its header line (read whole)
_INDEX_NAME = re.compile(r"^(Unnamed: \d+|index|level_0)$")  # pandas' names of index columns in a file
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")


@dataclass
class ReadOptions:
    """How a table file is read; saved with a model so that predict reads new files the same way.

    ``delimiter`` / ``decimal`` None: detected per file. ``na_values``: cells read as missing
    on top of NA_VALUES. ``header`` None: detected; True / False force it.
    """

    delimiter: str | None = None
    decimal: str | None = None
    na_values: list = field(default_factory=list)
    header: bool | None = None

    def to_config(self) -> dict:
        return {"delimiter": self.delimiter, "decimal": self.decimal, "na_values": list(self.na_values),
                "header": self.header}

    @classmethod
    def from_config(cls, config: dict | None) -> ReadOptions:
        config = config or {}
        options = cls(config.get("delimiter"), config.get("decimal"), list(config.get("na_values") or []),
                      config.get("header"))
        if options.delimiter not in (None, *DELIMITERS) or options.decimal not in (None, ".", ",") or \
                options.header not in (None, True, False) or not all(isinstance(v, str) for v in options.na_values):
            raise DataError(f"invalid table read options in the model file: {config!r}")
        return options


def read_table(path, options: ReadOptions | None = None) -> pd.DataFrame:
    """The table in a file as a DataFrame (missing cells NaN/None): Parquet, or delimited text (CSV, TSV, and
    any suffix that formats.py does not call Parquet)."""
    path, options = Path(path), options or ReadOptions()
    if not path.exists():
        raise DataError(f"{path}: no such data file")
    parquet = _is_parquet(path)
    if regular_file(path) == 0:  # also a /proc file, which says 0 bytes and never ends
        raise DataError(f"{path}: the {'Parquet' if parquet else 'CSV'} file is empty (0 bytes)")
    if parquet:
        return _read_parquet(path)
    arguments = csv_arguments(path, options)
    try:
        frame = pd.read_csv(path, low_memory=False, **arguments)
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file") from None
    except (pd.errors.ParserError, ValueError, csv.Error) as exc:
        raise DataError(f"{path}: malformed CSV ({str(exc).strip().splitlines()[-1]})") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the CSV file is empty") from None
    if arguments["header"] is None:
        frame.columns = [f"column{i}" for i in range(frame.shape[1])]
    if frame.shape[0] == 0:
        raise DataError(f"{path}: the CSV file has a header but no data rows")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def csv_arguments(path: Path, options: ReadOptions) -> dict:
    """pandas.read_csv's arguments for a CSV file, the same for a whole read and a chunked one (a stream): the
    delimiter, decimal mark and header given in ``options`` or detected from the file's first rows, the cells
    read as missing; a header that names two columns alike is refused."""
    sample = _sample(path)
    if not sample.strip():
        raise DataError(f"{path}: the CSV file is empty")
    fmt = lookup(path)  # a format that fixes its delimiter (TSV: a tab), else the one the rows show
    delimiter = options.delimiter or (fmt.delimiter if fmt is not None else None) or sniff_delimiter(sample)
    first_rows = _first_rows(sample, delimiter, path)
    check_width(path, len(first_rows[0]))
    header = options.header if options.header is not None else has_header(first_rows, path)
    decimal = options.decimal or sniff_decimal(first_rows[1 if header else 0:], delimiter)
    if header:
        refuse_duplicates(first_rows[0], path)
    check_cells(path, delimiter)
    return {"sep": delimiter, "decimal": decimal, "header": 0 if header else None,
            "na_values": list(NA_VALUES) + list(options.na_values), "keep_default_na": False,
            "skipinitialspace": True, "skip_blank_lines": True, "encoding": "utf-8-sig", "engine": "c",
            "on_bad_lines": "error"}


def _is_parquet(path: Path) -> bool:
    fmt = lookup(path)
    return fmt is not None and fmt.name == "parquet"


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading Parquet needs pyarrow: pip install \"deltaprop[parquet]\"") from None
    try:
        reader = pq.ParquetFile(path)  # the footer only
        check_parquet(path, reader)
        table = reader.read()
        table.validate(full=True)  # text that is not UTF-8 fails here, not later inside pandas
        table = decimals_as_floats(table)
    except DataError:
        raise
    except Exception as exc:  # pyarrow raises its own ArrowInvalid / OSError family
        raise DataError(f"{path}: unreadable Parquet file ({exc.__class__.__name__}: {exc})") from None
    names = table.column_names
    refuse_duplicates(names, path)
    frame = table.to_pandas()
    if frame.shape[0] == 0:
        raise DataError(f"{path}: the Parquet file has no rows")
    return frame


def _sample(path: Path) -> str:
    """The file's header line, whole, and about SAMPLE_BYTES of rows after it, as text."""
    raw = header_sample(path, SAMPLE_BYTES)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.start < len(raw) - 3:  # not merely a character cut at the sample's end
            raise DataError(f"{path}: not a UTF-8 text file") from None
        text = raw[:exc.start].decode("utf-8-sig")
    if "\x00" in text:
        raise DataError(f"{path}: not a text file (it holds NUL bytes)")
    return text


def sniff_delimiter(sample: str) -> str:
    """The delimiter among , ; tab | that splits the sample's lines into the most equal field counts."""
    lines = [line for line in sample.splitlines()[:50] if line.strip()]
    if len(lines) > 1 and not sample.endswith("\n"):
        lines = lines[:-1]  # the sample may cut its last line
    best, best_score = ",", (0, 0)
    for delimiter in DELIMITERS:
        try:
            counts = [len(row) for row in csv.reader(lines, delimiter=delimiter)]
        except csv.Error:
            continue
        if not counts or max(counts) < 2:
            continue
        mode = max(set(counts), key=counts.count)
        score = (counts.count(mode), mode)  # the most lines that agree, then the most columns
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _first_rows(sample: str, delimiter: str, path: Path) -> list[list[str]]:
    lines = sample.splitlines(keepends=True)[:200]
    try:
        rows = [[cell.strip() for cell in row] for row in csv.reader(io.StringIO("".join(lines)), delimiter=delimiter)]
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV ({exc})") from None
    rows = [row for row in rows if any(row)]
    if not rows:
        raise DataError(f"{path}: the CSV file is empty")
    return rows


def _is_number(cell: str) -> bool:
    try:
        float(cell.replace(",", ".", 1) if _DECIMAL_COMMA.match(cell) else cell)
    except ValueError:
        return False
    return True


def has_header(rows: list[list[str]], path=None) -> bool:
    """Whether the first row names the columns.

    Yes if one of its cells is text above a column of numbers, or if every cell is a
    distinct text none of which recurs in its column below (an all-text table: "sex"
    heads a column of "male"/"female"), or if its cells are the integers 0, 1, ..., k-1
    (or 1..k) in order, k >= 3: the names pandas and NumPy give unnamed columns
    (``DataFrame(X).to_csv()`` writes them), never a row of real data. Another row of
    numbers is data; where it could be names (increasing integers, like years), a warning
    says which way it was read and how to say otherwise (``header``). A blank first cell
    above a column of values is pandas' index (``to_csv()`` with its default index=True):
    the rest of the row is judged.
    """
    top, below = rows[0], rows[1:]
    if len(top) > 1 and top[0] == "" and below and all(row and row[0] != "" for row in below):
        top, below = top[1:], [row[1:] for row in below]
    if all(_is_number(c) for c in top if c):
        whole = [int(c) for c in top if re.fullmatch(r"\d+", c)]
        if len(whole) == len(top) >= 3 and whole in (list(range(len(top))), list(range(1, len(top) + 1))):
            return True
        if len(whole) == len(top) >= 2 and whole == sorted(set(whole)) and below:  # increasing: years, codes?
            shown = ", ".join(top[:5]) + (", ..." if len(top) > 5 else "")
            warnings.warn(f"{path or 'the file'}: its first row ({shown}) is read as data, not as column names; if "
                          "it names the columns, pass --header yes (header=True)", DeltapropWarning, stacklevel=4)
        return False
    if not below:
        return True
    for j, cell in enumerate(top):
        column = [row[j] for row in below if j < len(row) and row[j] not in NA_VALUES]
        if cell and not _is_number(cell) and column and all(_is_number(c) for c in column):
            return True
    texts = [c for c in top if c]
    if len(texts) != len(top) or len(set(texts)) != len(texts):
        return False
    return not any(cell in {row[j] for row in below if j < len(row)} for j, cell in enumerate(top))


def sniff_decimal(rows: list[list[str]], delimiter: str) -> str:
    """"," when the delimiter is not a comma and numbers are written 3,5 (never 3.5), else "."."""
    if delimiter == ",":
        return "."
    cells = [c for row in rows for c in row]
    commas = sum(bool(_DECIMAL_COMMA.match(c)) for c in cells)
    points = sum(bool(re.match(r"^[+-]?\d*\.\d+$", c)) for c in cells)
    return "," if commas and not points else "."


def refuse_duplicates(names: list[str], path: Path) -> None:
    """Columns are matched by name: a file that names two columns alike is refused, not read as "x", "x.1"."""
    duplicated = sorted(name for name, count in Counter(names).items() if count > 1)  # linear: 100,000 names
    if duplicated:
        raise DataError(f"{path}: duplicated column name(s) {duplicated}; every column needs its own name")


def fingerprint(path) -> str:
    """SHA-256 of the file's bytes: a model remembers its data by it, to refuse a changed file."""
    digest = hashlib.sha256()
    for block in read_within_size(path):  # a regular file, no further than its size: never /proc's endless ones
        digest.update(block)
    return digest.hexdigest()


def as_frame(table) -> pd.DataFrame:
    """A pandas DataFrame from one (as is), a polars DataFrame (to_pandas), a dict of columns or a
    structured NumPy array (its field names are the column names)."""
    if isinstance(table, pd.DataFrame):
        return _named_by_text(table)
    if hasattr(table, "to_pandas"):  # polars, pyarrow tables
        return _named_by_text(table.to_pandas())
    if isinstance(table, dict) or (isinstance(table, np.ndarray) and table.dtype.names):
        return _named_by_text(pd.DataFrame(table))  # columns by name: a dict of columns, or a structured array
    raise DataError(f"a table must be a pandas or polars DataFrame, a dict of columns or a structured array "
                    f"(columns are matched by name), got {type(table).__name__}")


def _named_by_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its column names as text, as a file's header gives them: ``DataFrame(X)`` names its
    columns 0, 1, ... (integers), a model read from a CSV knows them as "0", "1", ... Two names alike as text
    (0 and "0") are refused."""
    if all(isinstance(c, str) for c in frame.columns):
        return frame
    names = [str(c) for c in frame.columns]
    alike = sorted(n for n, count in Counter(names).items() if count > 1)
    if alike:
        raise DataError(f"the table has two columns named {alike[0]!r} once written as text; rename one")
    return frame.set_axis(names, axis=1)


def target_values(column: pd.Series, name: str) -> np.ndarray:
    """A target column as labels or numbers: integers where every value is a whole number that int64
    holds, floats for other numbers, strings for text (booleans stay booleans)."""
    values = column.to_numpy()
    if column.dtype == bool:
        return values
    if column.dtype.kind in "iuf":
        y = values.astype(np.float64)
        if not np.isfinite(y).all():
            first = int(np.argmax(~np.isfinite(y))) + 1
            raise DataError(f"the target column {name!r} holds inf (first at data row {first})")
        integral = np.all(y == np.round(y)) and np.abs(y).max() < 2**53
        return y.astype(np.int64) if integral else y
    return np.array([str(v).strip() for v in values])


def _index_target(names: list, k: int, path) -> str:
    """Why column ``k`` is no target, and how to name the real one: by name, or by its number (counted with the
    index column, as --target N counts)."""
    numbered = ", ".join(f"{j} {n!r}" for j, n in enumerate(names) if j != k and not is_index_column(n))
    return (f"{path}: column {k} ({names[k]!r}) is pandas' index (the row numbers to_csv() writes first, under a "
            f"blank header), not data; name the target column by name (--target NAME) or by its number, which "
            f"counts the index column: {numbered}")


def labelled_rows(frame: pd.DataFrame, target, path, notes: list) -> tuple[pd.DataFrame, str, np.ndarray]:
    """A table's rows that have a target value, the target's name (``target``: a name, a 0-based index, or None:
    the last column), and its values; a note in ``notes`` says how many rows were left out for a missing target.
    ``path`` names the file in messages."""
    frame = frame.reset_index(drop=True)
    name = target_column(list(map(str, frame.columns)), target, path)
    present = frame[name].notna().to_numpy()
    if not present.all():
        notes.append(f"left out {int((~present).sum())} row(s) whose target {name!r} is missing")
        frame = frame[present]  # (its index keeps each row's place among the file's data rows, for messages)
    if frame.shape[0] == 0:
        raise DataError(f"{path}: no row has a value in the target column {name!r}")
    return frame, name, target_values(frame[name], name)


def is_index_column(name: str) -> bool:
    """Whether a column is an index written into the file, not data: a blank header cell (pandas reads it as
    "Unnamed: 0"; ``to_csv()`` writes its index so by default), or reset_index's "index" / "level_0"."""
    return name == "" or _INDEX_NAME.match(name) is not None


def target_column(names: list, target, path) -> str:
    """The target's name: given by name or 0-based index; the last column by default. A column chosen by number
    (or by default) that is an index column is refused: --target 0 on a file pandas wrote would regress on the
    row numbers, as the index is counted by number but never a feature."""
    if target is not None and str(target) in names:
        return str(target)
    if target is None or (str(target).isdigit() and int(target) < len(names)):
        name = names[-1 if target is None else int(target)]
        if is_index_column(name):
            raise DataError(_index_target(names, names.index(name), path))
        return name
    unnamed = names == [f"column{i}" for i in range(len(names))]
    raise DataError(f"{path}: no target column {target!r}; columns: {', '.join(names)}" + (
        " (the first row was read as data: if it names the columns, pass --header yes)" if unnamed else ""))
