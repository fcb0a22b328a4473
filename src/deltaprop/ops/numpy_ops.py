"""NumpyOps: the array backend in plain NumPy, the readable reference for every other backend.

Each method is one step of the notes' computation (a matrix product, z^l + b^l then
sigma, g ⊙ sigma'(z), a column sum), written as NumPy lines that write into the arrays
they are given. A backend with fused loops (NumbaOps) has the same methods and is held
to these lines by the tests. The rules (activations, losses, optimizers, weight decay)
hold their own NumPy lines and kernels; ``kernel(fn)`` says whether this backend runs a
rule's kernel (NumPy's: never, the rule's NumPy lines run). Arrays reaching a backend
are C-contiguous and of the network's dtype (the caller's workspace guarantees it),
so no method checks them.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

Array = np.ndarray
Activation = Any  # activations.Activation (ops sits below the rules and does not import them)

SMALL = 4096  # entries of a product's result up to which np.dot is used (a 64 x 64 dW, a 32 x 128 batch)


class NumpyOps:
    """The array operations of a forward pass, a backward pass and an optimizer step, in NumPy."""

    name = "numpy"
    xp: ModuleType = np
    steps: ModuleType | None = None  # whole compiled training steps (NumbaOps: compiled_step); here the readable one

    def describe(self) -> str:
        return "numpy (NumPy alone: the reference backend)"

    def kernel(self, function: Callable) -> Callable | None:
        """``function`` (a rule's kernel: a loop in plain Python) compiled for this backend, or None where the
        rule's NumPy lines run instead (here, always)."""
        return None

    def __reduce__(self):
        """Pickled (a model in a pickled estimator) and copied as its kind alone: a backend holds no data."""
        return (type(self), ())

    # --- arrays: allocation and the host boundary (host and device are one here) ----------
    def alloc(self, shape: tuple, dtype) -> Array:
        """Zeros of ``shape`` and ``dtype`` (see protocol.py: the engine allocates once per fit or call)."""
        return np.zeros(shape, dtype=dtype)

    def asarray(self, x, dtype=None) -> Array:
        return np.asarray(x, dtype=dtype)

    def to_host(self, x) -> np.ndarray:
        return np.asarray(x)

    def vdot(self, x: Array, y: Array) -> float:
        """np.dot of two vectors: BLAS's dot, the sum every earlier release took (same bits)."""
        return float(np.dot(x, y))

    def uniform(self, rng: np.random.Generator, out: Array) -> Array:
        """U[0, 1) draws into ``out``: the same stream as ``rng.random(out.shape, out.dtype)``."""
        return rng.random(dtype=out.dtype, out=out)

    def dropout(self, rng: np.random.Generator, p: float, out: Array) -> Array:
        """Inverted dropout's mask into ``out``: 1/(1-p) with probability 1-p, else 0, so E[mask] = 1."""
        mask = self.uniform(rng, out)
        np.subtract(1 - p, mask, out=mask)  # > 0 exactly when the draw r < 1 - p: probability 1 - p
        np.clip(mask, 0, 1, out=mask)  # then 1[mask > 0] as ceil(clip(mask, 0, 1)): no boolean array
        np.ceil(mask, out=mask)
        mask *= 1 / (1 - p)
        return mask

    def device_batches(self, data):
        """The training batches as this backend reads them: host and device are one, so ``data`` itself."""
        return data

    # --- the passes -------------------------------------------------------------------
    def gemm(self, a: Array, b: Array, out: Array | None = None) -> Array:
        """a @ b for 2-D a (m, k) and b (k, n), into ``out`` (m, n) when given.

        np.dot and np.matmul hand a 2-D float product to the same BLAS routine; np.dot's
        call costs about 0.3 us less (a sixth of a 32 x 64 x 64 product), np.matmul passes
        transposed operands of large products to BLAS more cheaply: small results take np.dot.
        """
        if out is not None and out.size <= SMALL:
            try:
                return np.dot(a, b, out=out)
            except ValueError:  # np.dot takes only a C-contiguous out of the exact result dtype
                pass
        return np.matmul(a, b, out=out)

    def bias_act(self, z: Array, b: Array, act: Activation, a: Array | None) -> Array:
        """z += b (every row), then a = sigma(z): z^l and a^l. ``a`` may be z itself (inference)."""
        z += b
        return act.forward(z, out=a)

    def act_backward(self, g: Array, z: Array, act: Activation) -> Array:
        """g ⊙ sigma'(z) (the Jacobian product for softmax) written into g; z may be used as scratch."""
        return act.times_sigma_prime(g, z, in_place=True)

    def batch_sum(self, delta: Array, out: Array | None = None) -> Array:
        """out = the sum over the batch (rows) of delta (m, n)."""
        return delta.sum(axis=0, out=out)

    def scaled_difference(self, a: Array, y: Array, scale: float, out: Array) -> Array:
        """out = (a - y) * scale: the shortcut's delta^L = (a^L - y) / m."""
        np.subtract(a, y, out=out)
        out *= scale
        return out
