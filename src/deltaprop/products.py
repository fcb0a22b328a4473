"""The matrix product into a given array, through the cheaper of NumPy's two entry points.

np.dot and np.matmul hand a 2-D float product to the same BLAS routine. np.dot's
call costs about 0.3 us less (np.matmul goes through the ufunc machinery), which is a
sixth of a 32 x 64 x 64 product; on large products np.matmul ran faster here (its
transposed operands are passed to BLAS more cheaply). Small products take np.dot.
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray

SMALL = 4096  # entries of the result up to which np.dot is used (a 64 x 64 dW, a 32 x 128 batch)


def matmul(a: Array, b: Array, out: Array | None = None) -> Array:
    """a @ b for 2-D a (m, k) and b (k, n), into ``out`` (m, n) when given."""
    if out is not None and out.size <= SMALL:
        try:
            return np.dot(a, b, out=out)
        except ValueError:  # np.dot takes only a C-contiguous out of the exact result dtype
            pass
    return np.matmul(a, b, out=out)
