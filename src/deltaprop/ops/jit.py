"""numba's compiler as deltaprop's loops use it; imported only by NumbaOps when it is made (numba is optional)."""

from __future__ import annotations

import functools

import numba

from ..errors import DeltapropError, numba_message

# What a kernel numba cannot compile raises, at its first call (a bytecode numba does not take, such as an import
# inside the loop, raises the second, which is no NumbaError).
ERRORS = (numba.core.errors.NumbaError, numba.core.errors.UnsupportedBytecodeError)

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


def refused(rule: str, exc: BaseException) -> DeltapropError:
    """The error for a rule whose kernel numba could not compile (for a dtype registration did not probe, or
    one registered before numba was installed): its name and numba's message, not numba's traceback."""
    return DeltapropError(f"numba could not compile the kernel of {rule}: {numba_message(exc)}; fix the kernel, "
                          "or register the rule without one (it then trains by its NumPy lines)")
