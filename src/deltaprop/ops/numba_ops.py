"""NumbaOps: NumpyOps with its element-wise steps fused into one-pass loops compiled by numba.

Only the steps that earn it are replaced: bias + activation and g ⊙ sigma'(z) by the
activation's kernel (``act.kernel``, beside its NumPy rule in activations/), the batch
sum and the shortcut's delta^L (kernels.py); every other rule (a loss value, an optimizer
update, weight decay) asks ``kernel(fn)`` for its kernel compiled. The matrix products
stay with BLAS. Scalars are cast to the arrays' dtype, so a float32 loop stays float32.
Each loop is compiled on first use (from numba's cache on disk after the first
process), for the argument types it is given; arrays are C-contiguous in one float
dtype by the backend's contract.

``steps`` is compiled_step.py: whole training steps in one compiled call, assembled from
the rules' kernels, which training/fused.py takes for small networks (NumpyOps has none).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import kernels
from .numpy_ops import Activation, NumpyOps

Array = np.ndarray


class NumbaOps(NumpyOps):
    """The rules' kernels and kernels.py's loops behind NumpyOps' methods."""

    name = "numba"

    def __init__(self):
        import numba  # here, not at import: a missing numba is an error only for who asks for this backend

        from . import compiled_step, jit

        self.version = numba.__version__
        self.compiled, self.steps, self._jit = jit.compiled, compiled_step, jit
        self._batch_sum = self.compiled(kernels.batch_sum)
        self._scaled_difference = self.compiled(kernels.scaled_difference)

    def describe(self) -> str:
        return (f"numba {self.version} (the rules' kernels: bias + activation, sigma', loss, optimizer and weight "
                "decay loops; whole compiled training steps for small networks)")

    def kernel(self, function: Callable) -> Callable:
        """``function`` compiled by numba (once per process; the machine code is cached on disk)."""
        return self.compiled(function)

    def bias_act(self, z: Array, b: Array, act: Activation, a: Array | None) -> Array:
        kernel = act.kernel
        if kernel is None or a is None:
            return super().bias_act(z, b, act, a)
        try:
            if a is z and kernel.over_z is not None:
                self.compiled(kernel.over_z)(z, b)  # a loop that may write z and a at one address won't vectorize
            else:
                self.compiled(kernel.forward)(z, b, a)
        except self._jit.ERRORS as exc:  # compiled at its first call: a kernel numba cannot type fails here
            raise self._jit.refused(f"activation {act.name!r}", exc) from None
        return a

    def act_backward(self, g: Array, z: Array, act: Activation) -> Array:
        kernel = act.kernel
        if kernel is None or kernel.chain is None:
            return super().act_backward(g, z, act)
        try:
            self.compiled(kernel.chain)(g, z)
        except self._jit.ERRORS as exc:
            raise self._jit.refused(f"activation {act.name!r}", exc) from None
        return g

    def batch_sum(self, delta: Array, out: Array | None = None) -> Array:
        if out is None:
            out = np.empty(delta.shape[1], delta.dtype)
        self._batch_sum(delta, out)
        return out

    def scaled_difference(self, a: Array, y: Array, scale: float, out: Array) -> Array:
        self._scaled_difference(a, y, a.dtype.type(scale), out)
        return out
