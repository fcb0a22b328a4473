"""NumbaOps: NumpyOps with its element-wise steps fused into one-pass loops compiled by numba.

Only the methods that earn it are replaced (kernels.py holds the loops): the optimizer
updates, bias + relu or softmax, relu's sigma', the batch sum, the shortcut's delta^L
and the cross-entropy value; the matrix products stay with BLAS. Scalars are cast to
the arrays' dtype here, so a float32 loop stays float32. Each loop is compiled on first
use (from numba's cache on disk after the first process), for the argument types it
is given; arrays are C-contiguous in one float dtype by the backend's contract.

``steps`` is compiled_step.py: whole training steps in one compiled call, which
training/fused.py takes for small networks (NumpyOps has none: the readable step only).
"""

from __future__ import annotations

import numpy as np

from ..activations import RELU, SOFTMAX, Activation
from . import kernels
from .numpy_ops import NumpyOps

Array = np.ndarray


class NumbaOps(NumpyOps):
    """The fused loops of kernels.py behind NumpyOps' methods."""

    name = "numba"

    def __init__(self):
        import numba  # here, not at import: a missing numba is an error only for who asks for this backend

        from . import compiled_step, jit

        self.version = numba.__version__
        self.compiled, self.steps = jit.compiled, compiled_step
        self._cast: dict = {}  # (scalar type, beta1, beta2): Adam's constants in that type

    def describe(self) -> str:
        return (f"numba {self.version} (fused optimizer steps, bias + activation, loss and sigma' loops; whole "
                "compiled training steps for small networks)")

    def __getattr__(self, name: str):
        """The compiled loop kernels.<name> as attribute ``_name``, compiled on first use."""
        if name.startswith("_") and hasattr(kernels, name[1:]):
            function = self.compiled(getattr(kernels, name[1:]))
            setattr(self, name, function)  # found without __getattr__ from now on
            return function
        raise AttributeError(name)

    def bias_act(self, z: Array, b: Array, act: Activation, a: Array | None) -> Array:
        if act is RELU and a is z:
            self._bias_relu_over_z(z, b)  # its own loop: one that may write z and a at one address won't vectorize
        elif act is RELU and a is not None:
            self._bias_relu(z, b, a)
        elif act is SOFTMAX and a is not None:
            self._softmax(z, b, a)
        else:
            return super().bias_act(z, b, act, a)
        return a

    def act_backward(self, g: Array, z: Array, act: Activation) -> Array:
        if act is RELU:
            self._relu_chain(g, z)
            return g
        return super().act_backward(g, z, act)

    def batch_sum(self, delta: Array, out: Array | None = None) -> Array:
        if out is None:
            out = np.empty(delta.shape[1], delta.dtype)
        self._batch_sum(delta, out)
        return out

    def scaled_difference(self, a: Array, y: Array, scale: float, out: Array) -> Array:
        self._scaled_difference(a, y, a.dtype.type(scale), out)
        return out

    def softmax_xent(self, z: Array, a: Array, y: Array, weights: Array | None, scratch: Array | None) -> float:
        if weights is not None and weights.dtype != z.dtype:
            weights = weights.astype(z.dtype)
        return float(self._cross_entropy(z, a, y, weights))

    def sgd(self, theta, g, lr, tmp):
        self._sgd(theta, g, theta.dtype.type(lr))

    def sgd_momentum(self, theta, g, velocity, *, mu, lr, first, nesterov, tmp):
        c = theta.dtype.type
        self._sgd_momentum(theta, g, velocity, (c(mu), c(lr)), first, nesterov)

    def adam(self, theta, g, m, v, *, beta1, beta2, eps_hat, step_size, tmp):
        c = theta.dtype.type
        self._adam(theta, g, m, v, self._betas(c, beta1, beta2) + (c(eps_hat), c(step_size)))

    def _betas(self, c, beta1: float, beta2: float) -> tuple:
        """beta1, 1 - beta1, beta2, 1 - beta2 as scalars of type ``c``, cast once (4 casts are 0.4 us a step)."""
        key = (c, beta1, beta2)
        betas = self._cast.get(key)
        if betas is None:
            betas = self._cast[key] = (c(beta1), c(1 - beta1), c(beta2), c(1 - beta2))
        return betas

    def rmsprop(self, theta, g, square_avg, buf, *, alpha, eps, mu, lr, tmp):
        c = theta.dtype.type
        if buf is None:
            self._rmsprop(theta, g, square_avg, (c(alpha), c(1 - alpha), c(eps), c(lr)))
        else:
            self._rmsprop_momentum(theta, g, square_avg, buf, (c(alpha), c(1 - alpha), c(eps), c(mu), c(lr)))

    def flush_small(self, x, threshold, tmp):
        self._flush_small(x, x.dtype.type(threshold))
