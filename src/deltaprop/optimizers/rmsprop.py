"""RMSprop, optionally with momentum: its constants, its kernels and its NumPy lines side by side.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .base import Optimizer, builtin


def rmsprop_constants(hyper, t):
    """(alpha, 1 - alpha, eps, mu, lr)."""
    lr, alpha, eps, mu = hyper
    return (alpha, 1 - alpha, eps, mu, lr)


def rmsprop_loop(theta, g, state, k):
    """v = alpha v + (1-alpha) g^2;  theta -= lr g / (sqrt(v) + eps)."""
    c = theta.dtype.type
    alpha, one_minus_alpha, eps, lr = c(k[0]), c(k[1]), c(k[2]), c(k[4])
    theta, g, square_avg = theta.reshape(-1), g.reshape(-1), state[0].reshape(-1)
    for i in range(theta.size):
        square_avg[i] = alpha * square_avg[i] + one_minus_alpha * (g[i] * g[i])
        theta[i] -= (g[i] / (np.sqrt(square_avg[i]) + eps)) * lr


def rmsprop_momentum_loop(theta, g, state, k):
    """As rmsprop_loop, with buf = mu buf + g / (sqrt(v) + eps) taking the step."""
    c = theta.dtype.type
    alpha, one_minus_alpha, eps, mu, lr = c(k[0]), c(k[1]), c(k[2]), c(k[3]), c(k[4])
    theta, g, square_avg, buf = theta.reshape(-1), g.reshape(-1), state[0].reshape(-1), state[1].reshape(-1)
    for i in range(theta.size):
        square_avg[i] = alpha * square_avg[i] + one_minus_alpha * (g[i] * g[i])
        buf[i] = buf[i] * mu + g[i] / (np.sqrt(square_avg[i]) + eps)
        theta[i] -= buf[i] * lr


@builtin
class RMSprop(Optimizer):
    """v = alpha v + (1-alpha) g^2;  theta -= lr g / (sqrt(v) + eps) (optionally with momentum)."""

    name = "rmsprop"

    def __init__(self, lr: float = 1e-3, alpha: float = 0.99, eps: float = 1e-8, momentum: float = 0.0,
                 weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)
        if not 0 <= alpha < 1:
            raise ConfigError(f"alpha must be in [0, 1), got {alpha!r}")
        self.alpha, self.eps, self.momentum = float(alpha), float(eps), float(momentum)
        self.slots = ("square_avg", "momentum_buffer") if momentum else ("square_avg",)
        self.kernel = rmsprop_momentum_loop if momentum else rmsprop_loop

    def hyper(self):
        return (self.lr, self.alpha, self.eps, self.momentum)

    constants = staticmethod(rmsprop_constants)

    def numpy_update(self, theta, g, state, k, tmp):
        alpha, one_minus_alpha, eps, mu, lr = k
        square_avg = state[0]
        square_avg *= alpha
        np.square(g, out=tmp)
        tmp *= one_minus_alpha
        square_avg += tmp
        np.sqrt(square_avg, out=tmp)
        tmp += eps
        np.divide(g, tmp, out=tmp)
        if len(state) > 1:  # with momentum: buf = mu buf + g / (sqrt(v) + eps) takes the step
            buf = state[1]
            buf *= mu
            buf += tmp
            tmp[...] = buf
        tmp *= lr
        theta -= tmp

    def array_update(self, theta, g, state, k, xp):
        alpha, one_minus_alpha, eps, mu, lr = k
        square_avg = state[0]
        square_avg *= alpha
        square_avg += (g * g) * one_minus_alpha
        step = g / (xp.sqrt(square_avg) + eps)
        if len(state) > 1:
            buf = state[1]
            buf *= mu
            buf += step
            step = buf
        theta -= step * lr

    def hyperparameters(self):
        return {"lr": self.base_lr, "alpha": self.alpha, "eps": self.eps, "momentum": self.momentum,
                "weight_decay": self.weight_decay}
