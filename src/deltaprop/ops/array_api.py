"""ArrayAPIOps: the engine's steps on any Array API namespace (array_api_strict, PyTorch, CuPy, NumPy's).

The standard has no ``out=``: each step computes the fresh-array form of its rule (the
readable reference's, e.g. ``sigmoid(z)``, ``g * sigma_prime(z)``) and, where the engine gave a
buffer (the workspace's z^l, a^l, the gradient views of the flat vector), writes it in with
``out[...] = result``. The optimizers' own array forms (optimizers/: ``array_update``) use the
standard's in-place operators on the parameter vector and the state, so ``layer.W`` stays a view
of ``theta`` as on NumPy; no rule has a kernel here (``kernel`` answers None).

A network made with ``ops="array_api"`` holds an unbound backend (NumPy arrays, the standard's
fresh forms): the first arrays of another library it is given (``fit``, ``predict``) choose the
namespace and device (Network.bind), and its parameters move there once. Data crosses between
host and device only at the edges: inputs are checked on the host, each batch is sent over as it
is served (``DeviceBatches``), predictions and model files come back through ``to_host``.
Dropout's draws are the host generator's, sent with the batch, so a run's masks are the NumPy
run's.

array-api-compat gives PyTorch and CuPy the standard's namespace (``pip install "deltaprop[array-api]"``);
it is imported when a backend is bound, never by ``import deltaprop``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from ..arrays import put
from ..errors import ConfigError

Array = Any


def compat():
    """array_api_compat, or a ConfigError saying how to install it."""
    try:
        import array_api_compat
    except ImportError:
        raise ConfigError('the "array_api" backend needs array-api-compat: '
                          'pip install "deltaprop[array-api]"') from None
    return array_api_compat


class ArrayAPIOps:
    """The engine's steps in the standard's functions of ``xp``, on ``device`` (xp None: unbound, NumPy until bound)."""

    name = "array_api"
    steps: ModuleType | None = None  # no compiled whole steps: the readable step, on the namespace's own kernels

    def __init__(self, xp: Any = None, device: Any = None):
        self.bound = xp is not None
        self.xp, self.device = (xp if self.bound else np), device
        self._on = {} if device is None else {"device": device}  # (NumPy < 2 takes no device=)

    @classmethod
    def for_arrays(cls, x: Array) -> ArrayAPIOps:
        """The backend of ``x``'s namespace and device (a NumPy array: NumPy through the standard's names)."""
        api = compat()
        return cls(api.array_namespace(x), api.device(x))

    def bound_to(self, x: Array) -> bool:
        """True when this backend computes in ``x``'s namespace on ``x``'s device."""
        api = compat()
        return self.bound and self.xp is api.array_namespace(x) and str(self.device) == str(api.device(x))

    def kernel(self, function: Any) -> None:
        """None: the rules run in their array forms (no compiled loops on this backend)."""
        return None

    def describe(self) -> str:
        if not self.bound:
            return "array_api (not yet bound: the first arrays given choose the namespace and device)"
        return f"array_api ({getattr(self.xp, '__name__', self.xp)} on {self.device})"

    def __reduce__(self):
        """Pickled as an unbound backend (a namespace is a module): the next arrays bind it again."""
        return (type(self), ())

    # --- arrays ---------------------------------------------------------------------------
    def dtype(self, dtype: Any) -> Any:
        """The namespace's dtype for a NumPy dtype or name (float32, float64), or a namespace dtype as is."""
        if dtype is None or not isinstance(dtype, (str, type, np.dtype)):
            return dtype
        return getattr(self.xp, np.dtype(dtype).name)

    def alloc(self, shape: tuple, dtype: Any) -> Array:
        return self.xp.zeros(tuple(shape), dtype=self.dtype(dtype), **self._on)

    def asarray(self, x: Any, dtype: Any = None) -> Array:
        return self.xp.asarray(x, dtype=self.dtype(dtype), **self._on)

    def to_host(self, x: Array) -> np.ndarray:
        if isinstance(x, np.ndarray):
            return x
        api = compat()
        if api.is_torch_array(x):
            return x.detach().cpu().numpy()
        if api.is_cupy_array(x):
            return x.get()
        try:
            return np.asarray(x)
        except (TypeError, RuntimeError, ValueError):  # (array_api_strict may refuse __array__: DLPack then)
            return np.from_dlpack(x).copy()

    def vdot(self, x: Array, y: Array) -> float:
        return float(np.dot(x, y) if isinstance(x, np.ndarray) else self.xp.vecdot(x, y))

    def uniform(self, rng: np.random.Generator, out: Array) -> Array:
        """The host generator's draws (the NumPy run's stream), sent to the device into ``out``."""
        draws = rng.random(tuple(out.shape), dtype=_host_dtype(out.dtype))
        out[...] = self.asarray(draws)
        return out

    def dropout(self, rng: np.random.Generator, p: float, out: Array) -> Array:
        """NumpyOps.dropout's rule, fresh: ceil(clip((1 - p) - r, 0, 1)) / (1 - p)."""
        xp = self.xp
        mask = self.uniform(rng, out)
        out[...] = xp.ceil(xp.clip((1 - p) - mask, 0.0, 1.0)) * (1 / (1 - p))
        return out

    def device_batches(self, data: Any) -> DeviceBatches:
        return DeviceBatches(data, self)

    # --- the passes: fresh results, written into the engine's buffers where it gave one ------
    def gemm(self, a: Array, b: Array, out: Array | None = None) -> Array:
        return put(a @ b, out)

    def bias_act(self, z: Array, b: Array, act, a: Array | None) -> Array:
        z += b
        return put(act.sigma(z), a)

    def act_backward(self, g: Array, z: Array, act) -> Array:
        return put(act.times_sigma_prime(g, z), g)

    def batch_sum(self, delta: Array, out: Array | None = None) -> Array:
        return put(self.xp.sum(delta, axis=0), out)

    def scaled_difference(self, a: Array, y: Array, scale: float, out: Array) -> Array:
        return put((a - y) * scale, out)


class DeviceBatches:
    """A batch source (EpochData, StreamData) whose batches are sent to the backend's device as they are
    served and whose recorded predictions come back to the host: the one place a fit's data crosses."""

    def __init__(self, data: Any, ops: ArrayAPIOps):
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_ops", ops)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._data, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._data, name, value)

    def batch(self, start: int, stop: int) -> tuple:
        return tuple(None if a is None else self._ops.asarray(a) for a in self._data.batch(start, stop))

    def record(self, start: int, a_L: Array) -> None:
        self._data.record(start, self._ops.to_host(a_L))


def _host_dtype(dtype: Any) -> np.dtype:
    """The NumPy dtype of a namespace's float dtype (by name: float32, float64)."""
    name = str(dtype).rsplit(".", 1)[-1]
    return np.dtype(name)
