"""SGD, plain, with momentum or Nesterov's: its constants, its kernels and its NumPy lines side by side.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .base import Optimizer, builtin


def sgd_constants(hyper, t):
    """(lr, mu, first step?, nesterov?) as floats."""
    lr, mu, nesterov = hyper
    return (lr, mu, 1.0 if t == 1 else 0.0, nesterov)


def sgd_loop(theta, g, state, k):
    """theta -= lr g."""
    lr = theta.dtype.type(k[0])
    theta, g = theta.reshape(-1), g.reshape(-1)
    for i in range(theta.size):
        theta[i] -= g[i] * lr


def sgd_momentum_loop(theta, g, state, k):
    """v = g (first step) or mu v + g;  theta -= lr (g + mu v) (Nesterov) or lr v."""
    c = theta.dtype.type
    lr, mu, first, nesterov = c(k[0]), c(k[1]), k[2] != 0, k[3] != 0
    theta, g, velocity = theta.reshape(-1), g.reshape(-1), state[0].reshape(-1)
    for i in range(theta.size):
        velocity[i] = g[i] if first else velocity[i] * mu + g[i]
        direction = velocity[i] * mu + g[i] if nesterov else velocity[i]
        theta[i] -= direction * lr


@builtin
class SGD(Optimizer):
    """theta -= lr * v, with v = g (plain), mu v + g (momentum) or g + mu v (Nesterov)."""

    name = "sgd"

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)
        if not 0 <= momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1), got {momentum!r}")
        if nesterov and momentum == 0:
            raise ConfigError("nesterov needs momentum > 0")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.slots = ("velocity",) if momentum else ()
        self.kernel = sgd_momentum_loop if momentum else sgd_loop

    def hyper(self):
        return (self.lr, self.momentum, float(self.nesterov))

    constants = staticmethod(sgd_constants)

    def numpy_update(self, theta, g, state, k, tmp):
        lr, mu, first, nesterov = k
        if not state:
            np.multiply(g, lr, out=tmp)
            theta -= tmp
            return
        velocity = state[0]
        if first:  # torch starts the velocity at the first gradient
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

    def array_update(self, theta, g, state, k, xp):
        lr, mu, first, nesterov = k
        if not state:
            theta -= g * lr
            return
        velocity = state[0]
        if first:
            velocity[...] = g
        else:
            velocity *= mu
            velocity += g
        theta -= ((velocity * mu + g) if nesterov else velocity) * lr

    def hyperparameters(self):
        return {"lr": self.base_lr, "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}
