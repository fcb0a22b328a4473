"""Optimizers: ``step(params, grads)`` updates each parameter in place.

``params`` and ``grads`` are dicts keyed by (l, name), e.g. (2, "W"), as
``Network.params()`` and ``Grads.items()`` give them. The optimizer's own state
(momentum, moment estimates) is keyed the same way and holds only its own
arrays, never a reference to a weight array, so replacing a network's arrays
(load, set_weights) cannot leave it updating stale copies.

The update rules follow PyTorch's optimizers of the same name, so a run can be
compared with torch step for step.
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigError

Array = np.ndarray


class Optimizer:
    """Base class: learning rate, per-(layer, parameter) state, step counter ``t``."""

    name = "optimizer"
    slots: tuple = ()
    decoupled = False  # weight decay as theta *= 1 - lr lambda (AdamW) instead of an L2 gradient

    def __init__(self, lr: float, weight_decay: float = 0.0):
        if not lr > 0:
            raise ConfigError(f"learning rate must be positive, got {lr!r}")
        if weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {weight_decay!r}")
        self.lr = float(lr)
        self.base_lr = float(lr)  # schedules scale this; lr is the value in force
        self.weight_decay = float(weight_decay)
        self.state: dict = {}
        self.t = 0

    def step(self, params: dict, grads) -> None:
        """Apply one update to every parameter, in place."""
        self.t += 1
        for key, g in dict(grads.items() if hasattr(grads, "items") else grads).items():
            theta = params[key]
            decay = self.weight_decay if key[1] == "W" else 0.0  # biases are not decayed
            if decay and self.decoupled:
                theta *= 1 - self.lr * decay
            elif decay:
                g = g + decay * theta  # the L2 penalty lambda/2 ||W||^2 adds lambda W to dL/dW
            slots = self.state.get(key)
            if slots is None:
                slots = self.state[key] = {s: np.zeros_like(theta) for s in self.slots}
            self.update(theta, g, slots)

    def update(self, theta: Array, g: Array, slots: dict) -> None:
        raise NotImplementedError

    def hyperparameters(self) -> dict:
        """The constructor arguments, for saving; ``type(self)(**h)`` rebuilds it."""
        raise NotImplementedError

    def state_arrays(self) -> dict:
        """{(l, name, slot): array} of the optimizer's state, for saving."""
        return {(*key, slot): arr for key, slots in self.state.items() for slot, arr in slots.items()}

    def load_state_arrays(self, arrays: dict, t: int) -> None:
        self.state = {}
        for (l, name, slot), arr in arrays.items():
            self.state.setdefault((l, name), {})[slot] = arr
        self.t = int(t)


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

    def update(self, theta, g, slots):
        if not self.momentum:
            theta -= self.lr * g
            return
        v = slots["velocity"]
        if self.t == 1:
            v[...] = g  # torch starts the buffer at the first gradient
        else:
            v *= self.momentum
            v += g
        theta -= self.lr * (g + self.momentum * v if self.nesterov else v)

    def hyperparameters(self):
        return {"lr": self.base_lr, "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}


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

    def update(self, theta, g, slots):
        m, v = slots["m"], slots["v"]
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * (g * g)
        bias1 = 1 - self.beta1**self.t
        bias2 = 1 - self.beta2**self.t
        denom = np.sqrt(v) / np.sqrt(bias2)
        denom += self.eps
        theta -= (self.lr / bias1) * (m / denom)

    def hyperparameters(self):
        return {"lr": self.base_lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps,
                "weight_decay": self.weight_decay}


class AdamW(Adam):
    """Adam with decoupled weight decay: theta *= 1 - lr lambda before the Adam step."""

    name = "adamw"
    decoupled = True

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 0.01):
        super().__init__(lr, beta1, beta2, eps, weight_decay)


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

    def update(self, theta, g, slots):
        v = slots["square_avg"]
        v *= self.alpha
        v += (1 - self.alpha) * (g * g)
        denom = np.sqrt(v)
        denom += self.eps
        if not self.momentum:
            theta -= self.lr * (g / denom)
            return
        buf = slots["momentum_buffer"]
        buf *= self.momentum
        buf += g / denom
        theta -= self.lr * buf

    def hyperparameters(self):
        return {"lr": self.base_lr, "alpha": self.alpha, "eps": self.eps, "momentum": self.momentum,
                "weight_decay": self.weight_decay}


OPTIMIZERS = {cls.name: cls for cls in (SGD, Adam, AdamW, RMSprop)}


def get_optimizer(spec, **kwargs) -> Optimizer:
    """An Optimizer from an instance, or a name ("adam", "sgd", ...) plus keyword arguments."""
    if isinstance(spec, Optimizer):
        return spec
    try:
        cls = OPTIMIZERS[str(spec).lower()]
    except KeyError:
        raise ConfigError(f"unknown optimizer {spec!r}; known: {', '.join(OPTIMIZERS)}") from None
    return cls(**kwargs)
