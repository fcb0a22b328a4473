"""numba's compiler as deltaprop's loops use it; imported only by NumbaOps when it is made (numba is optional)."""

from __future__ import annotations

import functools

import numba

uncached: set = set()  # the functions numba found no writable cache folder for (compiled in every process)


@functools.cache
def compiled(function):
    """``function`` compiled by numba (once per process; the machine code is cached on disk).

    error_model="numpy": x / 0 gives inf as in NumPy (no check per division, so the loop
    vectorizes); cache=True keeps the machine code between processes.
    """
    try:
        return numba.njit(cache=True, error_model="numpy", nogil=True)(function)
    except RuntimeError:  # numba found no writable cache folder: compile in every process instead
        uncached.add(function.__qualname__)
        return numba.njit(cache=False, error_model="numpy", nogil=True)(function)
