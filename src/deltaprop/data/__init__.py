"""Data sources: built-in sets, IDX, NPZ, tables (CSV, Parquet) and their column encoding, feature scaling,
and streams of shards larger than memory (``stream``).

Each reader returns plain NumPy arrays and raises DataError with a message that
names the file, the problem and, where there is one, the fix.
"""

from .builtin import BUILTIN, Dataset, load_builtin
from .columns import TableEncoder, model_inputs
from .files import load_file, read_npz
from .idx import read_idx
from .robust import RobustScaler, feature_scaler
from .scaling import Scaler
from .stream import Stream, stream
from .tables import ReadOptions, read_table

__all__ = ["BUILTIN", "Dataset", "ReadOptions", "RobustScaler", "Scaler", "TableEncoder", "feature_scaler",
           "load_builtin", "load_file", "model_inputs", "read_idx", "read_npz", "read_table", "Stream", "stream"]
