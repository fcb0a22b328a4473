"""deltaprop's exceptions: each names the problem and, where there is one, the fix.

They subclass ValueError (or RuntimeError) as well, so code written against the
standard library's conventions keeps working.
"""

import re


class DeltapropError(Exception):
    """Base class of every error deltaprop raises on purpose."""


class ShapeError(DeltapropError, ValueError):
    """An array has the wrong shape: feature count, batch length, layer sizes."""


class DataError(DeltapropError, ValueError):
    """Input data is unusable: NaN or inf, empty, wrong dtype, unknown labels."""


class ConfigError(DeltapropError, ValueError):
    """A network or training option is invalid (unknown name, bad value, bad pairing)."""


class ActivationError(ConfigError):
    """A user-registered activation is inconsistent, e.g. its derivative is wrong."""


class ModelFileError(DeltapropError, ValueError):
    """A model file is missing, corrupt, tampered with or from an unknown version."""


class DivergenceError(DeltapropError, RuntimeError):
    """Training produced a non-finite loss or gradient."""


def numba_message(exc: BaseException) -> str:
    """numba's first line saying what it could not compile, without its ANSI colour codes: its own first lines
    ("Failed in nopython mode pipeline ...") name a compiler pass, not the user's mistake."""
    lines = [line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).splitlines()]
    said = [line for line in lines if line and not line.startswith("Failed in ")]
    return said[0] if said else (lines[0] if lines else type(exc).__name__)


class DeltapropWarning(UserWarning):
    """Something that works but is probably not what was meant: a softmax hidden layer, a run whose error
    signal vanished before reaching the first layers. The message says what to try."""
