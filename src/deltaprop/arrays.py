"""namespace(x): the array library whose functions the rules (activations, losses) apply to x.

NumPy arrays get ``numpy`` itself: the readable reference's own functions, so NumPy results keep
their bits and pay nothing for the look-up. Any other array (array_api_strict, a PyTorch tensor,
CuPy) gets its Array API namespace from array-api-compat, imported only then. A leaf module (it
imports nothing of deltaprop), so that the rules and the backends can both use it.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def namespace(x: Any) -> Any:
    """numpy for a NumPy array (or scalar), else the array's Array API namespace. The NumPy test comes first
    and alone: the rules call this on every batch."""
    if isinstance(x, (np.ndarray, np.generic)):
        return np
    try:
        import array_api_compat
    except ImportError:
        raise TypeError(f"{type(x).__name__} arrays need array-api-compat: pip install \"deltaprop[array-api]\"") \
            from None
    return array_api_compat.array_namespace(x)


def astype(x: Any, dtype: Any) -> Any:
    """x converted to ``dtype``: the method for NumPy (np.astype is NumPy >= 2.1 only), the standard's function else."""
    return x.astype(dtype) if isinstance(x, np.ndarray) else namespace(x).astype(x, dtype)


def put(result: Any, out: Any) -> Any:
    """``result``, written into ``out`` when a caller gave a buffer (then ``out`` is returned): how a rule's
    fresh form honours ``out=`` on a namespace without it."""
    if out is None:
        return result
    out[...] = result
    return out
