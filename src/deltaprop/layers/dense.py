"""Dense: one fully-connected layer l, z^l = a^{l-1} W^l + b^l and a^l = sigma(z^l).

W^l has shape (n_{l-1}, n_l): rows are inputs, columns are outputs, so w_ij^l
connects neuron i of layer l-1 to neuron j of layer l, exactly as in the notes.
"""

from __future__ import annotations

import numpy as np

from .base import Layer

Array = np.ndarray


class Dense(Layer):
    """A fully-connected layer holding ``W`` (n_in, n_out) and ``b`` (n_out,).

    ``dropout`` is the probability of zeroing each output a_j^l during training
    (inverted dropout: survivors are scaled by 1/(1-p), so evaluation needs no
    rescaling). Weights are created by ``initialize``, which the Network calls.
    """

    kind = "dense"
    decayed = ("W",)

    def __init__(self, n_in: int, n_out: int, activation="sigmoid", dropout: float = 0.0):
        super().__init__(n_in, n_out, activation, dropout)
        self.W: Array = None  # type: ignore[assignment]  # None until allocate(), which Network() calls
        self.b: Array = None  # type: ignore[assignment]  # (typed as the array every pass uses)

    def param_shapes(self) -> dict[str, tuple]:
        return {"W": (self.n_in, self.n_out), "b": (self.n_out,)}

    def init_param(self, name: str, rng: np.random.Generator) -> Array:
        """W from the activation's init scheme; b = 0.

        He (relu family): W ~ N(0, 2 / n_in), keeping the variance of z^l steady
        when half the units are off. Glorot (the rest): W ~ U(-r, r) with
        r = sqrt(6 / (n_in + n_out)), balancing forward and backward variance.
        """
        if name == "b":
            return np.zeros(self.n_out)
        if self.activation.init == "he":
            return rng.normal(0.0, np.sqrt(2.0 / self.n_in), size=(self.n_in, self.n_out))
        r = np.sqrt(6.0 / (self.n_in + self.n_out))
        return rng.uniform(-r, r, size=(self.n_in, self.n_out))

    def forward(self, a_prev: Array, ops, z: Array | None = None, a: Array | None = None) -> tuple[Array, Array]:
        """z = a_prev W + b (m, n_out) and a = sigma(z) (m, n_out), for a_prev (m, n_in).

        ``z`` and ``a``, when given, are arrays to write into (the training buffers; a may be z).
        """
        z = ops.gemm(a_prev, self.W, out=z)
        return z, ops.bias_act(z, self.b, self.activation, a)  # z += b, then a = sigma(z)

    def pre_activation(self, a_prev: Array, ops, out: Array | None = None) -> Array:
        """z = a_prev W + b (m, n_out), into ``out`` when given."""
        z = ops.gemm(a_prev, self.W, out=out)
        z += self.b
        return z

    def backward(self, delta: Array, a_prev: Array, grads: dict, ops, below: bool, out: Array | None = None):
        """Equations (3) and (4) for this layer, and equation (2)'s first factor for the layer below."""
        grads["W"] = ops.gemm(a_prev.T, delta, out=grads.get("W"))  # (3) dL/dW^l = (a^{l-1})^T delta^l
        grads["b"] = ops.batch_sum(delta, out=grads.get("b"))       # (4) dL/db^l = sum over the batch of delta^l
        if below:
            return ops.gemm(delta, self.W.T, out=out)                # (2) delta^l (W^l)^T = dL/da^{l-1}
        return None
