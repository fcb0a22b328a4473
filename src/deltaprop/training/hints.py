"""Hints a teacher would give after a run: a classifier that ended near chance because its error signal
vanished on the way down to the first layers (a deep sigmoid or tanh network, typically)."""

from __future__ import annotations

import numpy as np

from .. import backprop

NEAR_CHANCE = 0.05  # accuracy within this of the most frequent class's share
VANISHED = 1e-2  # ||delta^1|| below this fraction of ||delta^L||: two orders of magnitude
PROBE_ROWS = 256


def vanishing_gradients(net, X: np.ndarray, Y: np.ndarray, accuracy: float, labels: np.ndarray) -> str | None:
    """The hint, or None: when ``accuracy`` is near chance (the share of the most frequent of ``labels``, the
    training rows' classes) and the delta of layer 1 is orders of magnitude below layer L's on the rows X, Y (a
    few training rows: one forward and backward pass, no dropout)."""
    if net.L < 3 or labels is None or not len(labels):
        return None
    chance = np.bincount(labels).max() / len(labels)  # labels: class indices (or 0/1), counted without a sort
    if accuracy > chance + NEAR_CHANCE:
        return None
    trace = net.propagate(np.ascontiguousarray(X, dtype=net.dtype))
    grads = backprop.backward(net.layers, net.loss_fn, trace, Y, None, ops=net.ops)
    first, last = (float(np.linalg.norm(grads.delta[l])) for l in (1, net.L))
    if not last or first / last >= VANISHED:
        return None
    hidden = sorted({layer.activation.name for layer in net.layers[:-1]})
    return (f"training ended near chance accuracy ({accuracy:.3f}; always answering the most frequent class "
            f"gives {chance:.3f}), and the error signal reaching layer 1 is {first / last:.1e} of layer {net.L}'s "
            f"(||delta^1|| / ||delta^{net.L}|| on training rows): the gradients vanish on their way down through "
            f"{net.L - 1} {'/'.join(hidden)} layers. Try relu hidden layers, fewer layers, or Adam with a larger "
            "learning rate (the gradient-flow plot, deltaprop train --plots, shows it per layer).")
