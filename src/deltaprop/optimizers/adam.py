"""Adam and AdamW (its decoupled weight decay): the constants, the kernel and the NumPy lines side by side.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError
from .base import Optimizer, builtin


def adam_constants(hyper, t):
    """(b1, 1-b1, b2, 1-b2, eps_hat, step_size) of step t, where lr m_hat / (sqrt(v_hat) + eps) =
    step_size m / (sqrt(v) + eps_hat): step_size = lr sqrt(bias2) / bias1, eps_hat = eps sqrt(bias2)."""
    lr, beta1, beta2, eps = hyper
    bias1, bias2 = 1 - beta1**t, 1 - beta2**t  # t a float: pow(), in Python and compiled alike
    return (beta1, 1 - beta1, beta2, 1 - beta2, eps * math.sqrt(bias2), lr * math.sqrt(bias2) / bias1)


def adam_loop(theta, g, state, k):
    """m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  theta -= step_size m / (sqrt(v) + eps_hat), in one pass."""
    c = theta.dtype.type
    beta1, one_minus_beta1, beta2, one_minus_beta2, eps_hat, step_size = c(k[0]), c(k[1]), c(k[2]), c(k[3]), \
        c(k[4]), c(k[5])
    theta, g, m, v = theta.reshape(-1), g.reshape(-1), state[0].reshape(-1), state[1].reshape(-1)
    for i in range(theta.size):
        m[i] = beta1 * m[i] + one_minus_beta1 * g[i]
        v[i] = beta2 * v[i] + one_minus_beta2 * (g[i] * g[i])
        theta[i] -= (m[i] / (np.sqrt(v[i]) + eps_hat)) * step_size


@builtin
class Adam(Optimizer):
    """m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  theta -= lr m_hat / (sqrt(v_hat) + eps)."""

    name = "adam"
    slots = ("m", "v")

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)
        for label, beta in (("beta1", beta1), ("beta2", beta2)):
            if not 0 <= beta < 1:
                raise ConfigError(f"{label} must be in [0, 1), got {beta!r}")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.kernel = adam_loop

    def hyper(self):
        return (self.lr, self.beta1, self.beta2, self.eps)

    constants = staticmethod(adam_constants)

    def numpy_update(self, theta, g, state, k, tmp):
        m, v = state
        beta1, one_minus_beta1, beta2, one_minus_beta2, eps_hat, step_size = k
        m *= beta1
        np.multiply(g, one_minus_beta1, out=tmp)
        m += tmp
        v *= beta2
        np.square(g, out=tmp)
        tmp *= one_minus_beta2
        v += tmp
        np.sqrt(v, out=tmp)
        tmp += eps_hat  # Python floats: a NumPy float64 scalar would force a cast buffer
        np.divide(m, tmp, out=tmp)
        tmp *= step_size
        theta -= tmp

    def array_update(self, theta, g, state, k, xp):
        m, v = state
        beta1, one_minus_beta1, beta2, one_minus_beta2, eps_hat, step_size = k
        m *= beta1
        m += g * one_minus_beta1
        v *= beta2
        v += (g * g) * one_minus_beta2
        theta -= (m / (xp.sqrt(v) + eps_hat)) * step_size

    def hyperparameters(self):
        return {"lr": self.base_lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps,
                "weight_decay": self.weight_decay}


@builtin
class AdamW(Adam):
    """Adam with decoupled weight decay: theta *= 1 - lr lambda before the Adam step."""

    name = "adamw"
    decoupled = True

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 0.01):
        super().__init__(lr, beta1, beta2, eps, weight_decay)
