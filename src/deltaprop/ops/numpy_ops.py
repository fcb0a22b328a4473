"""NumpyOps: the array backend in plain NumPy, the readable reference for every other backend.

Each method is one step of the notes' computation (a matrix product, z^l + b^l then
sigma, g ⊙ sigma'(z), a column sum) or one optimizer update, written as NumPy lines
that write into the arrays they are given. A backend with fused loops (NumbaOps) has
the same methods and is held to these lines by the tests. Arrays reaching a backend
are C-contiguous and of the network's dtype (the caller's workspace guarantees it),
so no method checks them.
"""

from __future__ import annotations

import math
from types import ModuleType

import numpy as np

from ..activations import Activation, step
from ..losses import cross_entropy_from_z

Array = np.ndarray

SMALL = 4096  # entries of a product's result up to which np.dot is used (a 64 x 64 dW, a 32 x 128 batch)


class NumpyOps:
    """The array operations of a forward pass, a backward pass and an optimizer step, in NumPy."""

    name = "numpy"
    xp: ModuleType = np
    steps: ModuleType | None = None  # whole compiled training steps (NumbaOps: compiled_step); here the readable one

    def describe(self) -> str:
        return "numpy (NumPy alone: the reference backend)"

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
        step(mask)
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

    def softmax_xent(self, z: Array, a: Array, y: Array, weights: Array | None, scratch: Array | None) -> float:
        """sum_r w_r L_r with L_r = -sum_j y_rj log softmax(z_r)_j (w_r = 1 without weights), from z."""
        per = cross_entropy_from_z(z, y, scratch)
        return float(per.sum() if weights is None else np.dot(per, weights))

    # --- optimizer updates, in place on theta and the state ------------------------------
    def sgd(self, theta: Array, g: Array, lr: float, tmp: Array) -> None:
        """theta -= lr g."""
        np.multiply(g, lr, out=tmp)
        theta -= tmp

    def sgd_momentum(self, theta: Array, g: Array, velocity: Array, *, mu: float, lr: float, first: bool,
                     nesterov: bool, tmp: Array) -> None:
        """v = g (first step, as torch) or mu v + g;  theta -= lr (g + mu v) (Nesterov) or lr v."""
        if first:
            velocity[...] = g
        else:
            velocity *= mu
            velocity += g
        if nesterov:
            np.multiply(velocity, mu, out=tmp)
            tmp += g
        else:
            tmp[...] = velocity
        tmp *= lr
        theta -= tmp

    def adam(self, theta: Array, g: Array, m: Array, v: Array, *, beta1: float, beta2: float, eps_hat: float,
             step_size: float, tmp: Array) -> None:
        """m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  theta -= step_size m / (sqrt(v) + eps_hat)."""
        m *= beta1
        np.multiply(g, 1 - beta1, out=tmp)
        m += tmp
        v *= beta2
        np.square(g, out=tmp)
        tmp *= 1 - beta2
        v += tmp
        np.sqrt(v, out=tmp)
        tmp += eps_hat  # Python floats: a NumPy float64 scalar would force a cast buffer
        np.divide(m, tmp, out=tmp)
        tmp *= step_size
        theta -= tmp

    def rmsprop(self, theta: Array, g: Array, square_avg: Array, buf: Array | None, *, alpha: float, eps: float,
                mu: float, lr: float, tmp: Array) -> None:
        """v = alpha v + (1-alpha) g^2;  theta -= lr g / (sqrt(v) + eps), through buf = mu buf + ... with momentum."""
        square_avg *= alpha
        np.square(g, out=tmp)
        tmp *= 1 - alpha
        square_avg += tmp
        np.sqrt(square_avg, out=tmp)
        tmp += eps
        np.divide(g, tmp, out=tmp)
        if buf is not None:
            buf *= mu
            buf += tmp
            tmp[...] = buf
        tmp *= lr
        theta -= tmp

    def flush_small(self, x: Array, threshold: float, tmp: Array) -> None:
        """x_i = 0 where |x_i| <= threshold (state about to turn subnormal); NaN and inf stay."""
        np.abs(x, out=tmp)
        tmp -= threshold
        x *= step(tmp)  # 0 below the threshold, 1 above: no boolean array


def adam_constants(lr: float, beta1: float, beta2: float, eps: float, t: int) -> tuple[float, float]:
    """(eps_hat, step_size) of step t: lr m_hat / (sqrt(v_hat) + eps) = step_size m / (sqrt(v) + eps_hat)."""
    bias1, bias2 = 1 - beta1**t, 1 - beta2**t
    return eps * math.sqrt(bias2), lr * math.sqrt(bias2) / bias1
