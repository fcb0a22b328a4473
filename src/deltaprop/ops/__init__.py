"""The array backend, chosen once per network: ``NumpyOps`` (the reference), ``NumbaOps`` (fused loops) or
``ArrayAPIOps`` (any Array API library: array_api_strict, PyTorch, CuPy).

A Network holds one backend object, ``net.ops``, and every array operation of its
forward pass, backward pass and optimizer steps goes through its methods (``gemm``,
``bias_act``, ``act_backward``, ``batch_sum``, ...; ``kernel(fn)`` runs a rule's kernel). New
networks get ``default_ops()``: NumbaOps when numba is installed
(``pip install "deltaprop[fast]"``), unless ``DELTAPROP_KERNELS=numpy`` is set or
``set_default("numpy")`` was called; NumpyOps otherwise. What a backend is, is written
once in protocol.py (``Ops``): any object with those attributes is accepted, whatever its class.
"""

from __future__ import annotations

import importlib.util
import os

from ..errors import ConfigError
from .array_api import ArrayAPIOps, compat
from .numba_ops import NumbaOps
from .numpy_ops import NumpyOps
from .protocol import Ops

_BACKENDS: dict = {"numpy": NumpyOps, "numba": NumbaOps, "array_api": ArrayAPIOps}
KNOWN = ", ".join(_BACKENDS)
_instances: dict = {}
_default = os.environ.get("DELTAPROP_KERNELS", "numba").lower()


def numba_available() -> bool:
    """True when numba can be imported (NumbaOps can be made)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def get_ops(name: str | Ops | None = None) -> Ops:
    """A backend by name ("numpy", "numba", "array_api"), a backend object passed through (anything with
    the attributes of the ``Ops`` protocol), or None for the default.

    "array_api" is a backend not yet tied to a library: the arrays a network is first given (``fit``,
    ``predict``) choose the namespace and device (see array_api.py).
    """
    if name is None:
        return default_ops()
    if not isinstance(name, str):
        if isinstance(name, Ops):
            return name
        missing = [attr for attr in _required() if not hasattr(name, attr)]
        raise ConfigError(f"{name!r} is not an array backend: it lacks {', '.join(missing)} (see deltaprop.ops.Ops)")
    if name not in _BACKENDS:
        raise ConfigError(f"unknown backend {name!r}; known: {KNOWN}")
    if name == "numba" and not numba_available():
        raise ConfigError('backend "numba" needs numba: pip install "deltaprop[fast]"')
    if name == "array_api":
        return ArrayAPIOps()  # unbound: each network binds its own to the namespace of its arrays
    if name not in _instances:  # backends hold no state of a network: one of each is shared
        _instances[name] = _BACKENDS[name]()
    return _instances[name]


def _required() -> list[str]:
    """The attributes the Ops protocol names (its methods and data members)."""
    return sorted(name for name in vars(Ops) if not name.startswith("_")) + ["name", "steps", "xp"]


def default_ops() -> Ops:
    """The backend new networks get: numba's fused loops when available and not turned off."""
    return get_ops("numba" if _default != "numpy" and numba_available() else "numpy")


def set_default(name: str) -> str:
    """Make ``name`` ("numpy" or "numba") the backend of networks created from now on; returns the previous."""
    global _default
    if name not in ("numpy", "numba"):
        raise ConfigError(f"unknown backend {name!r}; known: numpy, numba")
    previous, _default = ("numpy" if _default == "numpy" else "numba"), name
    return previous


def for_device(device: str | None) -> Ops | None:
    """The backend of ``deltaprop train --device`` (PyTorch's device names): None or "cpu", the default backend
    (NumPy, numba's loops); "cuda" or "cuda:N", PyTorch tensors on that GPU (CuPy where PyTorch is missing).
    A ConfigError names what is missing: the GPU, or the library and its pip extra."""
    if device is None or device == "cpu":
        return None
    if not (device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit())):
        raise ConfigError(f"--device must be cpu, cuda or cuda:N (PyTorch's names), got {device!r}")
    index = int(device[5:]) if ":" in device else 0
    if importlib.util.find_spec("torch") is not None:
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: PyTorch {torch.__version__} sees no CUDA GPU on this machine "
                              "(torch.cuda.is_available() is False); leave --device out to train on the CPU")
        if index >= torch.cuda.device_count():
            raise ConfigError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
        return ArrayAPIOps(compat().array_namespace(torch.zeros(0)), torch.device("cuda", index))  # as tensors name it
    if importlib.util.find_spec("cupy") is not None:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() <= index:
            raise ConfigError(f"--device {device}: CuPy sees {cupy.cuda.runtime.getDeviceCount()} CUDA GPU(s)")
        return ArrayAPIOps(compat().array_namespace(cupy.zeros(0)), cupy.cuda.Device(index))
    raise ConfigError(f"--device {device} needs PyTorch or CuPy with a CUDA GPU: pip install \"deltaprop[torch]\" "
                      "(a CUDA build of torch) or \"deltaprop[gpu]\" (CuPy for CUDA 12)")


def describe() -> str:
    """One line for ``deltaprop info``: which backend new networks get, and why."""
    if not numba_available():
        return 'numpy (numba is not installed: pip install "deltaprop[fast]" for the fused kernels)'
    if _default == "numpy":
        return "numpy (fused kernels turned off: DELTAPROP_KERNELS=numpy or ops.set_default('numpy'))"
    return default_ops().describe()


__all__ = ["ArrayAPIOps", "NumbaOps", "NumpyOps", "Ops", "default_ops", "describe", "get_ops", "for_device",
           "numba_available", "set_default"]
