"""The backward pass: equations (1)-(4) of the notes, and nothing else.

Shapes, for a batch of m samples stored as rows:
    a[l], z[l], delta[l]: (m, n_l)      W[l], dW[l]: (n_{l-1}, n_l)      b[l], db[l]: (n_l,)
Lists are indexed by the notes' layer numbers 1..L; index 0 is the input layer
(a[0] = X), which has no z, no delta and no weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import fused
from .activations import Activation
from .losses import Loss, shortcut_delta
from .products import matmul

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
    """The gradients of one backward pass: dW[l], db[l], delta[l] for l = 1..L (fresh arrays,
    unless backward() was given buffers to write into)."""

    dW: list
    db: list
    delta: list

    def items(self):
        """((l, 'W'), dW^l), ((l, 'b'), db^l) for l = 1..L: the keys optimizers use."""
        for l in range(1, len(self.dW)):
            yield (l, "W"), self.dW[l]
            yield (l, "b"), self.db[l]


def output_delta(loss: Loss, sigma: Activation, z: Array, a: Array, y: Array, weights: Array | None,
                 out: Array | None = None) -> Array:
    """Equation (1): delta^L = dL/da^L ⊙ sigma'(z^L), shape (m, n_L), into ``out`` if given.

    For softmax + cross_entropy and sigmoid + binary_cross_entropy the sigma'
    factor cancels and delta^L = (a^L - y) / m; the general product must not be
    applied on top of it. The crossed pairs (cross_entropy after sigmoid,
    binary_cross_entropy after softmax) compute the same product from z, so an a^L
    below the dtype's eps does not clip the gradient away.
    """
    if loss.cancels_with(sigma):
        return shortcut_delta(a, y, weights, out=out)  # shortcut: (a^L - y) / m, weighted per sample
    delta = loss.delta_from_z(sigma, z, y, weights)    # a crossed pair: dL/da^L ⊙ sigma'(z^L) from z
    if delta is not None:
        return delta if out is None else _into(out, delta)
    return sigma.times_sigma_prime(loss.dL_da(a, y, weights, out=out), z, in_place=out is not None)


def _into(out: Array, value: Array) -> Array:
    np.copyto(out, value)
    return out


def batch_sum(delta: Array, out: Array | None = None) -> Array:
    """The sum over the batch of delta (m, n): the (n,) vector delta.sum(axis=0), into ``out`` if given.

    A compiled loop (fused.py) when it can take the arrays: NumPy's column sum of a
    small batch costs more in overhead than in adding.
    """
    if out is not None and fused.run("batch_sum", delta, out) is not fused.SKIPPED:
        return out
    return delta.sum(axis=0, out=out)


def backward(layers: list, loss: Loss, trace: Trace, y: Array, weights: Array | None = None,
             out: Grads | None = None) -> Grads:
    """Equations (1)-(4) for one batch; returns dW, db, delta lists (index 0 unused).

    ``y`` is the encoded target (m, n_L); ``weights`` optional per-sample weights (m,).
    Without ``out`` every array is fresh. Training passes ``out`` (a workspace's Grads,
    which is returned): then dW^l, db^l, delta^l are written into its preallocated arrays,
    and z^l is used as scratch once sigma'(z^l) has been applied.
    """
    L = len(layers)
    z, a = trace.z, trace.a
    W = [None] + [layer.W for layer in layers]
    sigma = [None] + [layer.activation for layer in layers]
    in_place = out is not None
    grads = out if in_place else Grads([None] * (L + 1), [None] * (L + 1), [None] * (L + 1))
    dW, db, delta = grads.dW, grads.db, grads.delta  # with out, every line below writes into its own array

    delta[L] = output_delta(loss, sigma[L], z[L], a[L], y, weights, out=delta[L])  # (1) dL/da^L ⊙ sigma'(z^L)
    for l in range(L, 0, -1):
        dW[l] = matmul(a[l - 1].T, delta[l], out=dW[l])      # (3) dL/dW^l = (a^{l-1})^T delta^l
        db[l] = batch_sum(delta[l], out=db[l])               # (4) dL/db^l = sum over the batch of delta^l
        if l > 1:
            g = matmul(delta[l], W[l].T, out=delta[l - 1])   # sum_k w_jk^l delta_k^l = dL/da^{l-1}
            if trace.mask[l - 1] is not None:
                g *= trace.mask[l - 1]                       # dropout: a^{l-1} was multiplied by the mask
            delta[l - 1] = sigma[l - 1].times_sigma_prime(g, z[l - 1], in_place)  # (2) ⊙ sigma'(z^{l-1})
    return grads
