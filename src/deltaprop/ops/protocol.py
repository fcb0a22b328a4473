"""Ops: what an array backend gives the engine, written down once (a typing.Protocol).

The engine (network, layers, backprop, the flat parameter vector, the workspace, the
optimizers) never names an array library: it allocates through ``alloc``, brings arrays in
through ``asarray``, hands results out through ``to_host``, and does each step of the notes'
computation through the methods below. NumpyOps (numpy_ops.py) is the readable reference,
NumbaOps fuses its loops, ArrayAPIOps runs the same steps on any Array API namespace
(array_api_strict, PyTorch, CuPy). Any object with these attributes is a backend:
``get_ops`` checks the shape of the object, not its class.

Contract of the pass methods: an ``out`` (or ``a``) argument, when given, receives the
result and is returned; callers use the returned array. ``alloc`` gives zeros: a buffer a
short batch reads only in part never holds another run's leftovers, and the cost is paid once
per buffer (the engine allocates per fit, per prediction call, never per batch).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Protocol, runtime_checkable

import numpy as np

Array = Any  # an array of the backend's namespace (np.ndarray for NumpyOps)


@runtime_checkable
class Ops(Protocol):
    """An array backend: its namespace, allocation, the host boundary, and the steps of a pass."""

    name: str
    xp: Any  # the array namespace (numpy, array_api_strict, array_api_compat.torch, ...)
    steps: ModuleType | None  # whole compiled training steps, or None (the readable step only)

    def describe(self) -> str: ...

    def kernel(self, function: Any) -> Any:
        """A rule's kernel (a loop beside its NumPy lines) compiled for this backend, or None: the rule's own
        array form runs (NumPy's lines, or the standard's fresh forms)."""
        ...

    # --- arrays: where they are made and how they cross the host boundary -----------------
    def alloc(self, shape: tuple, dtype: Any) -> Array:
        """A zero-filled array of ``shape`` and ``dtype`` (a NumPy dtype or name) on the backend's device."""
        ...

    def asarray(self, x: Any, dtype: Any = None) -> Array:
        """``x`` (a NumPy array, a scalar, or an array of this namespace) as an array of this backend."""
        ...

    def to_host(self, x: Array) -> np.ndarray:
        """``x`` as a NumPy array in host memory (predictions, model files)."""
        ...

    def vdot(self, x: Array, y: Array) -> float:
        """sum_i x_i y_i of two 1-D arrays, as a Python float (norms, the divergence checks)."""
        ...

    def uniform(self, rng: np.random.Generator, out: Array) -> Array:
        """``out`` filled with draws from U[0, 1) taken from ``rng`` (dropout: the same draws on any backend)."""
        ...

    def dropout(self, rng: np.random.Generator, p: float, out: Array) -> Array:
        """Inverted dropout's mask into ``out`` (1/(1-p) with probability 1-p, else 0), from ``uniform``'s draws."""
        ...

    def device_batches(self, data: Any) -> Any:
        """The training batch source (EpochData, StreamData) as the passes read it: batches brought to the
        device as they are served, predicted classes taken back to the host (NumPy: ``data`` itself)."""
        ...

    # --- the passes ---------------------------------------------------------------------
    def gemm(self, a: Array, b: Array, out: Array | None = None) -> Array: ...

    def bias_act(self, z: Array, b: Array, act: Any, a: Array | None) -> Array: ...

    def act_backward(self, g: Array, z: Array, act: Any) -> Array: ...

    def batch_sum(self, delta: Array, out: Array | None = None) -> Array: ...

    def scaled_difference(self, a: Array, y: Array, scale: float, out: Array) -> Array: ...
