"""Layer: what every kind of layer l declares (its parameters) and does (its forward and backward).

A layer maps a^{l-1} (m, n_in) to z^l (m, n_out) with its parameters, then a^l = sigma(z^l).
It declares its parameters by name and shape (``param_shapes``); everything that handles
parameters (the flat vector, optimizers, the workspace, model files) iterates over that
declaration, so a new kind of layer is one class plus its registration (layers/__init__.py).
The parameters are attributes of those names (Dense: ``W``, ``b``).
"""

from __future__ import annotations

import math

import numpy as np

from ..activations import Activation, get_activation
from ..errors import ConfigError
from ..ops import get_ops

Array = np.ndarray


class Layer:
    """Base class: sizes, activation, dropout, and the parameter bookkeeping shared by every kind.

    Subclasses set ``kind`` (the name in model files) and implement ``param_shapes``,
    ``init_param``, ``pre_activation`` and ``backward``; ``decayed`` names the parameters
    that weight decay and L2 apply to (weights, not biases).
    """

    kind = ""
    decayed: tuple = ()

    def __init__(self, n_in: int, n_out: int, activation: str | Activation = "sigmoid", dropout: float = 0.0):
        for label, n in (("n_in", n_in), ("n_out", n_out)):
            if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
                raise ConfigError(f"{type(self).__name__} {label} must be a positive integer, got {n!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout!r}")
        self.n_in = int(n_in)
        self.n_out = int(n_out)
        self.activation = get_activation(activation)
        self.dropout = float(dropout)

    # --- what a kind declares -------------------------------------------------------
    def param_shapes(self) -> dict[str, tuple]:
        """{name: shape} of the parameters, in their order in the flat vector and the model file."""
        raise NotImplementedError

    def init_param(self, name: str, rng: np.random.Generator) -> Array:
        """A fresh float64 NumPy value for parameter ``name`` (drawn from ``rng`` or fixed), on the host: the
        same draws whatever the backend, which ``initialize`` then brings to its device."""
        raise NotImplementedError

    def pre_activation(self, a_prev: Array, ops, out: Array | None = None) -> Array:
        """z^l (m, n_out) from a^{l-1} (m, n_in), into ``out`` when given."""
        raise NotImplementedError

    def backward(self, delta: Array, a_prev: Array, grads: dict, ops, below: bool, out: Array | None = None):
        """Given delta^l: dL/d(each parameter) into ``grads[name]`` (a fresh array where absent); with
        ``below`` (a layer l-1 exists) returns dL/da^{l-1} (m, n_in), into ``out`` when given."""
        raise NotImplementedError

    # --- shared by every kind -----------------------------------------------------------
    def initialize(self, rng: np.random.Generator, dtype: np.dtype, ops=None) -> None:
        """Give every declared parameter its initial value, in ``dtype``, as an array of ``ops`` (NumPy's
        by default): drawn on the host, then brought over once."""
        for name in self.param_shapes():
            value = self.init_param(name, rng).astype(dtype)
            setattr(self, name, value if ops is None else ops.asarray(value))

    def allocate(self, dtype: np.dtype, ops=None) -> None:
        """Every declared parameter as zeros, for values about to be read from a file (no draws to discard)."""
        ops = get_ops("numpy") if ops is None else ops
        for name, shape in self.param_shapes().items():
            setattr(self, name, ops.alloc(shape, dtype))

    def params(self) -> dict[str, Array]:
        """{name: the live array} of the declared parameters."""
        return {name: getattr(self, name) for name in self.param_shapes()}

    def n_params(self) -> int:
        return sum(math.prod(shape) for shape in self.param_shapes().values())

    def forward(self, a_prev: Array, ops, z: Array | None = None, a: Array | None = None) -> tuple[Array, Array]:
        """z^l and a^l = sigma(z^l) (m, n_out), into ``z`` and ``a`` when given (``a`` may be ``z``)."""
        z = self.pre_activation(a_prev, ops, out=z)
        return z, self.activation.forward(z, out=a)

    def delta(self, g: Array, z: Array, mask: Array | None, ops, in_place: bool) -> Array:
        """Equation (2)'s second factor: delta^l = dL/da^l ⊙ sigma'(z^l), for g = dL/da^l.

        ``mask``, this layer's dropout mask: a^l was multiplied by it, so dL/da^l is too first.
        ``in_place`` (training's buffers): written into g, with z^l as scratch; else a fresh array.
        """
        if mask is not None:
            g *= mask
        if in_place:
            return ops.act_backward(g, z, self.activation)
        return self.activation.times_sigma_prime(g, z)

    def config(self) -> dict:
        """The JSON-able description of this layer (no parameters)."""
        return {"kind": self.kind, "n_in": self.n_in, "n_out": self.n_out, "activation": self.activation.name,
                "dropout": self.dropout}

    @classmethod
    def from_config(cls, spec: dict) -> Layer:
        """The layer ``config()`` described (checked by the constructor)."""
        return cls(spec["n_in"], spec["n_out"], spec["activation"], spec.get("dropout", 0.0))

    def __repr__(self) -> str:
        drop = f", dropout={self.dropout}" if self.dropout else ""
        return f"{type(self).__name__}({self.n_in}, {self.n_out}, activation={self.activation.name!r}{drop})"
