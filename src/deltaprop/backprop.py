"""The backward pass: equations (1)-(4) of the notes, and nothing else.

Shapes, for a batch of m samples stored as rows:
    a[l], z[l], delta[l]: (m, n_l)      W[l], dW[l]: (n_{l-1}, n_l)      b[l], db[l]: (n_l,)
Lists are indexed by the notes' layer numbers 1..L; index 0 is the input layer
(a[0] = X), which has no z, no delta and no weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .activations import Activation
from .losses import Loss, shortcut_delta
from .ops import Ops, get_ops

Array = np.ndarray


@dataclass
class Trace:
    """The forward pass of one batch: z[l], a[l] for l = 1..L, a[0] = X, z[0] = None.

    ``mask[l]`` is layer l's inverted-dropout mask (already divided by 1 - p), or
    None; a[l] is stored after the mask, as the next layer saw it.
    """

    z: list
    a: list
    mask: list


@dataclass
class Grads:
    """The gradients of one backward pass: ``params[l]`` = {name: dL/d(parameter)} for each parameter
    layer l declares (Dense: "W", "b"), and delta[l], for l = 1..L (fresh arrays, unless backward()
    was given buffers to write into)."""

    params: list
    delta: list

    @classmethod
    def empty(cls, L: int) -> Grads:
        """Grads with nothing yet: backward() fills in fresh arrays."""
        return cls([None] + [{} for _ in range(L)], [None] * (L + 1))

    @property
    def dW(self) -> list:
        """[None, dW^1, ..., dW^L] (None for a layer without a W)."""
        return [None] + [p.get("W") for p in self.params[1:]]

    @property
    def db(self) -> list:
        """[None, db^1, ..., db^L] (None for a layer without a b)."""
        return [None] + [p.get("b") for p in self.params[1:]]

    def items(self):
        """((l, name), dL/d(parameter)) for l = 1..L: the keys optimizers use."""
        for l in range(1, len(self.params)):
            for name, value in self.params[l].items():
                yield (l, name), value


def output_delta(loss: Loss, sigma: Activation, z: Array, a: Array, y: Array, weights: Array | None, *,
                 out: Array | None = None, ops=None) -> Array:
    """Equation (1): delta^L = dL/da^L ⊙ sigma'(z^L), shape (m, n_L), into ``out`` if given.

    For softmax + cross_entropy and sigmoid + binary_cross_entropy the sigma'
    factor cancels and delta^L = (a^L - y) / m; the general product must not be
    applied on top of it. The crossed pairs (cross_entropy after sigmoid,
    binary_cross_entropy after softmax) compute the same product from z, so an a^L
    below the dtype's eps does not clip the gradient away.
    """
    if loss.cancels_with(sigma):
        return shortcut_delta(a, y, weights, out=out, ops=ops)  # shortcut: (a^L - y) / m, weighted per sample
    delta = loss.delta_from_z(sigma, z, y, weights)    # a crossed pair: dL/da^L ⊙ sigma'(z^L) from z
    if delta is not None:
        return delta if out is None else _into(out, delta)
    return sigma.times_sigma_prime(loss.dL_da(a, y, weights, out=out), z, in_place=out is not None)


def _into(out: Array, value: Array) -> Array:
    out[...] = value  # (np.copyto's bits; the spelling every Array API library takes)
    return out


def backward(layers: list, loss: Loss, trace: Trace, y: Array, weights: Array | None = None, *,
             out: Grads | None = None, ops: Ops | None = None) -> Grads:
    """Equations (1)-(4) for one batch, by the array backend ``ops`` (NumPy's by default); returns Grads.

    ``y`` is the encoded target (m, n_L); ``weights`` optional per-sample weights (m,).
    Without ``out`` every array is fresh and the trace is left as it was. Training passes
    ``out`` (a workspace's Grads, which is returned): then every gradient and delta^l is
    written into its preallocated array, and z^l is used as scratch once sigma'(z^l) has
    been applied. Each layer's own backward holds its lines of equations (2)-(4).
    """
    L, ops = len(layers), ops or get_ops("numpy")
    z, a, mask = trace.z, trace.a, trace.mask
    in_place = out is not None
    grads = out if out is not None else Grads.empty(L)
    delta = grads.delta  # with out, every line below writes into its own array

    delta[L] = output_delta(loss, layers[L - 1].activation, z[L], a[L], y, weights,
                            out=delta[L], ops=ops)            # (1) delta^L = dL/da^L ⊙ sigma'(z^L)
    for l in range(L, 0, -1):
        g = layers[l - 1].backward(delta[l], a[l - 1], grads.params[l], ops, below=l > 1,
                                   out=delta[l - 1])          # (3), (4), and delta^l (W^l)^T
        if l > 1:
            delta[l - 1] = layers[l - 2].delta(g, z[l - 1], mask[l - 1], ops, in_place)  # (2) ⊙ sigma'(z^{l-1})
    return grads
