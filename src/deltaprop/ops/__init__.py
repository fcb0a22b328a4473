"""The array backend, chosen once per network: ``NumpyOps`` (the reference) or ``NumbaOps`` (fused loops).

A Network holds one backend object, ``net.ops``, and every array operation of its
forward pass, backward pass and optimizer steps goes through its methods (``gemm``,
``bias_act``, ``act_backward``, ``batch_sum``, ...; ``kernel(fn)`` runs a rule's kernel). New
networks get ``default_ops()``: NumbaOps when numba is installed
(``pip install "deltaprop[fast]"``), unless ``DELTAPROP_KERNELS=numpy`` is set or
``set_default("numpy")`` was called; NumpyOps otherwise. A GPU backend would be one
more class with the same methods.
"""

from __future__ import annotations

import os

from ..errors import ConfigError
from .numba_ops import NumbaOps
from .numpy_ops import NumpyOps

_BACKENDS = {"numpy": NumpyOps, "numba": NumbaOps}
_instances: dict = {}
_default = os.environ.get("DELTAPROP_KERNELS", "numba").lower()


def numba_available() -> bool:
    """True when numba can be imported (NumbaOps can be made)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def get_ops(name: str | NumpyOps | None = None) -> NumpyOps:
    """A backend by name ("numpy", "numba"), an instance passed through, or None for the default."""
    if isinstance(name, NumpyOps):
        return name
    if name is None:
        return default_ops()
    if name not in _BACKENDS:
        raise ConfigError(f"unknown backend {name!r}; known: numpy, numba")
    if name == "numba" and not numba_available():
        raise ConfigError('backend "numba" needs numba: pip install "deltaprop[fast]"')
    if name not in _instances:  # backends hold no state of a network: one of each is shared
        _instances[name] = _BACKENDS[name]()
    return _instances[name]


def default_ops() -> NumpyOps:
    """The backend new networks get: numba's fused loops when available and not turned off."""
    return get_ops("numba" if _default != "numpy" and numba_available() else "numpy")


def set_default(name: str) -> str:
    """Make ``name`` ("numpy" or "numba") the backend of networks created from now on; returns the previous."""
    global _default
    if name not in ("numpy", "numba"):
        raise ConfigError(f"unknown backend {name!r}; known: numpy, numba")
    previous, _default = ("numpy" if _default == "numpy" else "numba"), name
    return previous


def describe() -> str:
    """One line for ``deltaprop info``: which backend new networks get, and why."""
    if not numba_available():
        return 'numpy (numba is not installed: pip install "deltaprop[fast]" for the fused kernels)'
    if _default == "numpy":
        return "numpy (fused kernels turned off: DELTAPROP_KERNELS=numpy or ops.set_default('numpy'))"
    return default_ops().describe()


__all__ = ["NumbaOps", "NumpyOps", "default_ops", "describe", "get_ops", "numba_available", "set_default"]
