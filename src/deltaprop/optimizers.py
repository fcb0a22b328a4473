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

import math

import numpy as np

from . import fused
from .activations import step
from .errors import ConfigError

Array = np.ndarray


FLUSH_EVERY = 64  # steps between zeroing optimizer state that is about to turn subnormal


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
        self.state: dict = {}  # (l, name) -> {slot: array}
        self.t = 0
        self._flat = None  # (FlatParams, {slot: vector}, scratch vector) once step_flat has run
        self._scratch: dict = {}

    def step(self, params: dict, grads) -> None:
        """Apply one update to every parameter, in place (one array at a time)."""
        self.t += 1
        for key, g in grads.items():
            theta = params[key]
            decay = self.weight_decay if key[1] == "W" else 0.0  # biases are not decayed
            if decay and self.decoupled:
                theta *= 1 - self.lr * decay
            elif decay:
                g = g + decay * theta  # the L2 penalty lambda/2 ||W||^2 adds lambda W to dL/dW
            slots = self.state.get(key)
            if slots is None:
                slots = self.state[key] = {s: np.zeros_like(theta) for s in self.slots}
            self.update(theta, g, slots, self.scratch(theta))
            self._flush_denormals(slots, self.scratch(theta))

    def step_flat(self, flat) -> None:
        """The same update for all parameters at once, on a FlatParams' ``theta`` and ``grad``.

        The state lives in vectors of the same layout; ``state[(l, name)]`` holds views of them.
        """
        self.t += 1
        slots, tmp = self._flat_slots(flat)
        if self.weight_decay:
            for theta_W, g_W in zip(flat.weight_views(flat.theta), flat.weight_views(flat.grad), strict=True):
                if self.decoupled:
                    theta_W *= 1 - self.lr * self.weight_decay
                else:
                    g_W += self.weight_decay * theta_W  # L2: adds lambda W to dL/dW (grad is scratch)
        self.update(flat.theta, flat.grad, slots, tmp)
        self._flush_denormals(slots, tmp)

    def _flush_denormals(self, slots: dict, tmp: Array) -> None:
        """Zero state entries about to become subnormal (every FLUSH_EVERY steps).

        A weight whose gradient stays 0 (a dead unit) has its moments multiplied by beta
        forever; once subnormal, arithmetic on them runs many times slower. Entries below
        2^20 times the smallest normal number are far too small to move a weight.
        """
        if self.t % FLUSH_EVERY:
            return
        threshold = float(np.finfo(tmp.dtype).tiny) * 2**20
        for state in slots.values():
            if fused.run("flush_small", state, state.dtype.type(threshold)) is not fused.SKIPPED:
                continue  # the kernel did the three lines below in one pass
            np.abs(state, out=tmp)
            tmp -= threshold
            state *= step(tmp)  # 0 below the threshold, 1 above: no boolean array

    def _flat_slots(self, flat) -> tuple[dict, Array]:
        """Flat state vectors for ``flat``'s layout, carrying over any state held per key, and a
        scratch vector of the same length."""
        if self._flat is not None and self._flat[0] is flat:
            return self._flat[1:]
        vectors = {slot: np.zeros_like(flat.theta) for slot in self.slots}
        fused.run("flush_small", flat.theta[:0], flat.theta.dtype.type(0))  # load it now, not at step 64
        views = {slot: flat.views(vector) for slot, vector in vectors.items()}
        for slot in self.slots:
            for key, view in views[slot].items():
                if key in self.state and slot in self.state[key]:
                    view[...] = self.state[key][slot]
        self.state = {key: {slot: views[slot][key] for slot in self.slots} for key in flat.keys}
        self._flat = (flat, vectors, self.scratch(flat.theta))
        return self._flat[1:]

    def scratch(self, like: Array) -> Array:
        """A reusable work array shaped like ``like`` (no allocation per step)."""
        key = (like.shape, like.dtype.str)
        if key not in self._scratch:
            self._scratch[key] = np.empty_like(like)
        return self._scratch[key]

    def update(self, theta: Array, g: Array, slots: dict, tmp: Array) -> None:
        """theta -= the step for gradient g, in place; ``tmp`` is scratch of theta's shape."""
        raise NotImplementedError

    def hyperparameters(self) -> dict:
        """The constructor arguments, for saving; ``type(self)(**h)`` rebuilds it."""
        raise NotImplementedError

    def state_arrays(self) -> dict:
        """{(l, name, slot): array} of the optimizer's state, for saving."""
        return {(*key, slot): arr for key, slots in self.state.items() for slot, arr in slots.items()}

    def load_state_arrays(self, arrays: dict, t: int) -> None:
        self.state, self._flat = {}, None
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

    def update(self, theta, g, slots, tmp):
        if self._fused_update(theta, g, slots):
            return
        if not self.momentum:
            np.multiply(g, self.lr, out=tmp)
            theta -= tmp
            return
        v = slots["velocity"]
        if self.t == 1:
            v[...] = g  # torch starts the buffer at the first gradient
        else:
            v *= self.momentum
            v += g
        if self.nesterov:
            np.multiply(v, self.momentum, out=tmp)
            tmp += g
        else:
            tmp[...] = v
        tmp *= self.lr
        theta -= tmp

    def _fused_update(self, theta, g, slots) -> bool:
        """The same update in one pass (fused.py), when a kernel is available."""
        c = theta.dtype.type
        if self.momentum:
            args = ("sgd_momentum", theta, g, slots["velocity"], c(self.momentum), c(self.lr), self.t == 1,
                    self.nesterov)
        else:
            args = ("sgd", theta, g, c(self.lr))
        return fused.run(*args) is not fused.SKIPPED

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
        self._betas_cache = None  # ((scalar type, betas), the four constants), for the fused step

    def update(self, theta, g, slots, tmp):
        if self._fused_update(theta, g, slots):
            return
        m, v = slots["m"], slots["v"]
        bias1 = 1 - self.beta1**self.t
        bias2 = 1 - self.beta2**self.t
        m *= self.beta1                       # m = b1 m + (1 - b1) g
        np.multiply(g, 1 - self.beta1, out=tmp)
        m += tmp
        v *= self.beta2                       # v = b2 v + (1 - b2) g^2
        np.square(g, out=tmp)
        tmp *= 1 - self.beta2
        v += tmp
        # lr m_hat / (sqrt(v_hat) + eps) = [lr sqrt(bias2) / bias1] m / (sqrt(v) + eps sqrt(bias2))
        np.sqrt(v, out=tmp)
        tmp += self.eps * math.sqrt(bias2)  # Python floats: a NumPy float64 scalar would force a cast buffer
        np.divide(m, tmp, out=tmp)
        tmp *= self.lr * math.sqrt(bias2) / bias1
        theta -= tmp

    def _fused_update(self, theta, g, slots) -> bool:
        """The same update in one pass (fused.py), when a kernel is available."""
        bias1, bias2 = 1 - self.beta1**self.t, 1 - self.beta2**self.t
        c = theta.dtype.type
        return fused.run("adam", theta, g, slots["m"], slots["v"], *self._betas(c), c(self.eps * math.sqrt(bias2)),
                         c(self.lr * math.sqrt(bias2) / bias1)) is not fused.SKIPPED

    def _betas(self, c) -> tuple:
        """beta1, 1 - beta1, beta2, 1 - beta2 as scalars of type ``c`` (made once per dtype)."""
        key = (c, self.beta1, self.beta2)  # rebuilt if someone changes the betas
        if self._betas_cache is None or self._betas_cache[0] != key:
            self._betas_cache = (key, (c(self.beta1), c(1 - self.beta1), c(self.beta2), c(1 - self.beta2)))
        return self._betas_cache[1]

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

    def update(self, theta, g, slots, tmp):
        if self._fused_update(theta, g, slots):
            return
        v = slots["square_avg"]
        v *= self.alpha                       # v = alpha v + (1 - alpha) g^2
        np.square(g, out=tmp)
        tmp *= 1 - self.alpha
        v += tmp
        np.sqrt(v, out=tmp)
        tmp += self.eps
        np.divide(g, tmp, out=tmp)            # g / (sqrt(v) + eps)
        if self.momentum:
            buf = slots["momentum_buffer"]
            buf *= self.momentum
            buf += tmp
            tmp[...] = buf
        tmp *= self.lr
        theta -= tmp

    def _fused_update(self, theta, g, slots) -> bool:
        """The same update in one pass (fused.py), when a kernel is available."""
        name = "rmsprop_momentum" if self.momentum else "rmsprop"
        state = [slots[s] for s in self.slots]  # square_avg (, momentum_buffer)
        c = theta.dtype.type
        extra = (c(self.momentum),) if self.momentum else ()
        return fused.run(name, theta, g, *state, c(self.alpha), c(1 - self.alpha), c(self.eps), *extra,
                         c(self.lr)) is not fused.SKIPPED

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
