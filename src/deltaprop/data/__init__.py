"""Data sources: built-in sets, IDX, CSV and NPZ files, and feature scaling.

Each reader returns plain NumPy arrays and raises DataError with a message that
names the file, the problem and, where there is one, the fix.
"""

from .builtin import BUILTIN, Dataset, load_builtin
from .files import load_file, read_csv, read_npz
from .idx import read_idx
from .scaling import Scaler

__all__ = ["BUILTIN", "Dataset", "Scaler", "load_builtin", "load_file", "read_csv", "read_idx", "read_npz"]
