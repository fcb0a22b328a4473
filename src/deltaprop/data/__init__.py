"""Data sources: built-in sets, IDX, NPZ, tables (CSV, Parquet) and their column encoding, feature scaling,
and streams of shards larger than memory (``stream``).

One entry point opens them all: ``open(data, target)`` gives a Source (registry.py), read whole in
memory (``.read()``) or a chunk at a time by a stream; the formats and their suffixes are declared
once, in formats.py. Each reader returns plain NumPy arrays (a table: a DataFrame) and raises
DataError with a message that names the file, the problem and, where there is one, the fix.
"""

from .builtin import BUILTIN, Dataset, load_builtin
from .columns import TableEncoder, model_inputs
from .files import read_npz
from .formats import Format, register
from .idx import read_idx
from .moments import Moments
from .registry import is_sharded, load_file, open
from .robust import RobustScaler, feature_scaler
from .scaling import Scaler
from .source import Source, Whole
from .stream import Stream, stream
from .tables import ReadOptions, read_table

__all__ = ["BUILTIN", "Dataset", "Format", "Moments", "ReadOptions", "RobustScaler", "Scaler", "Source", "Stream",
           "TableEncoder", "Whole", "feature_scaler", "is_sharded", "load_builtin", "load_file", "model_inputs",
           "open", "read_idx", "read_npz", "read_table", "register", "stream"]
