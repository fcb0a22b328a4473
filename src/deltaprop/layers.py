"""Dense: one fully-connected layer l, z^l = a^{l-1} W^l + b^l and a^l = sigma(z^l).

W^l has shape (n_{l-1}, n_l): rows are inputs, columns are outputs, so w_ij^l
connects neuron i of layer l-1 to neuron j of layer l, exactly as in the notes.
"""

from __future__ import annotations

import numpy as np

from . import fused
from .activations import Activation, get_activation
from .errors import ConfigError
from .products import matmul

Array = np.ndarray


class Dense:
    """A fully-connected layer holding ``W`` (n_in, n_out) and ``b`` (n_out,).

    ``dropout`` is the probability of zeroing each output a_j^l during training
    (inverted dropout: survivors are scaled by 1/(1-p), so evaluation needs no
    rescaling). Weights are created by ``initialize``, which the Network calls.
    """

    def __init__(self, n_in: int, n_out: int, activation: str | Activation = "sigmoid", dropout: float = 0.0):
        for label, n in (("n_in", n_in), ("n_out", n_out)):
            if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
                raise ConfigError(f"Dense {label} must be a positive integer, got {n!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout!r}")
        self.n_in = int(n_in)
        self.n_out = int(n_out)
        self.activation = get_activation(activation)
        self.dropout = float(dropout)
        self.W: Array | None = None
        self.b: Array | None = None

    def initialize(self, rng: np.random.Generator, dtype: np.dtype) -> None:
        """Draw W from the activation's init scheme; b = 0.

        He (relu family): W ~ N(0, 2 / n_in), keeping the variance of z^l steady
        when half the units are off. Glorot (the rest): W ~ U(-r, r) with
        r = sqrt(6 / (n_in + n_out)), balancing forward and backward variance.
        """
        if self.activation.init == "he":
            W = rng.normal(0.0, np.sqrt(2.0 / self.n_in), size=(self.n_in, self.n_out))
        else:
            r = np.sqrt(6.0 / (self.n_in + self.n_out))
            W = rng.uniform(-r, r, size=(self.n_in, self.n_out))
        self.W = W.astype(dtype)
        self.b = np.zeros(self.n_out, dtype=dtype)

    def allocate(self, dtype: np.dtype) -> None:
        """W and b as zeros, for weights about to be read from a file (no random draws to discard)."""
        self.W = np.zeros((self.n_in, self.n_out), dtype=dtype)
        self.b = np.zeros(self.n_out, dtype=dtype)

    def forward(self, a_prev: Array, z: Array | None = None, a: Array | None = None) -> tuple[Array, Array]:
        """z = a_prev W + b (m, n_out) and a = sigma(z) (m, n_out), for a_prev (m, n_in).

        ``z`` and ``a``, when given, are arrays to write into (the training buffers).
        """
        z = matmul(a_prev, self.W, out=z)
        if a is not None and self.activation.bias_kernel is not None and self._fused_bias_activation(z, a):
            return z, a
        z += self.b
        return z, self.activation.forward(z, out=a)

    def _fused_bias_activation(self, z: Array, a: Array) -> bool:
        """z += b and a = sigma(z) in one pass (fused.py's kernel for sigma; a may be z itself:
        inference); False, doing nothing, when it cannot run."""
        name = self.activation.bias_kernel
        if a is z:
            return fused.run(name + "_over_z", z, self.b) is not fused.SKIPPED
        return fused.run(name, z, self.b, a) is not fused.SKIPPED

    def pre_activation(self, a_prev: Array, out: Array | None = None) -> Array:
        """z = a_prev W + b (m, n_out), into ``out`` when given."""
        z = matmul(a_prev, self.W, out=out)
        z += self.b
        return z

    def config(self) -> dict:
        """The JSON-able description of this layer (no weights)."""
        return {"n_in": self.n_in, "n_out": self.n_out,
                "activation": self.activation.name, "dropout": self.dropout}

    def __repr__(self) -> str:
        drop = f", dropout={self.dropout}" if self.dropout else ""
        return f"Dense({self.n_in}, {self.n_out}, activation={self.activation.name!r}{drop})"
