"""Optimizers: ``step(params, grads)`` updates each parameter in place, by an array backend's update.

``params`` and ``grads`` are dicts keyed by (l, name), e.g. (2, "W"), as
``Network.params()`` and ``Grads.items()`` give them. The optimizer's own state
(momentum, moment estimates) is keyed the same way and holds only its own
arrays, never a reference to a weight array, so replacing a network's arrays
(load, set_weights) cannot leave it updating stale copies.

The update rules follow PyTorch's optimizers of the same name, so a run can be
compared with torch step for step. The arithmetic of each rule is the backend's
(``ops.adam``, ``ops.sgd``, ...: NumpyOps' lines are the reference); an optimizer
holds the hyperparameters, the state and the step count.
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigError
from .ops import Ops, get_ops
from .ops.numpy_ops import adam_constants

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
        self._flat: tuple | None = None  # (FlatParams, {slot: vector}, scratch vector) once step_flat has run
        self._scratch: dict = {}

    def step(self, params: dict, grads, ops: Ops | None = None) -> None:
        """Apply one update to every parameter, in place (one array at a time), by ``ops`` (NumPy's by default).

        ``params`` and ``grads`` are keyed (l, name); weight decay applies to the "W" parameters.
        """
        ops = ops or get_ops("numpy")
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
                slots = self.state[key] = {s: ops.alloc(theta.shape, theta.dtype) for s in self.slots}
            self.update(theta, g, slots, self.scratch(theta, ops), ops)
            self._flush_denormals(slots, self.scratch(theta, ops), ops)

    def step_flat(self, flat, ops: Ops) -> None:
        """The same update for all parameters at once, on a FlatParams' ``theta`` and ``grad``.

        The state lives in vectors of the same layout; ``state[(l, name)]`` holds views of them.
        """
        self.t += 1
        slots, tmp = self.flat_slots(flat, ops)
        if self.weight_decay:
            for theta_W, g_W in zip(flat.weight_views(flat.theta), flat.weight_views(flat.grad), strict=True):
                if self.decoupled:
                    theta_W *= 1 - self.lr * self.weight_decay
                else:
                    g_W += self.weight_decay * theta_W  # L2: adds lambda W to dL/dW (grad is scratch)
        self.update(flat.theta, flat.grad, slots, tmp, ops)
        self._flush_denormals(slots, tmp, ops)

    def _flush_denormals(self, slots: dict, tmp: Array, ops: Ops) -> None:
        """Zero state entries about to become subnormal (every FLUSH_EVERY steps).

        A weight whose gradient stays 0 (a dead unit) has its moments multiplied by beta
        forever; once subnormal, arithmetic on them runs many times slower. Entries below
        2^20 times the smallest normal number are far too small to move a weight.
        """
        if self.t % FLUSH_EVERY:
            return
        threshold = float(ops.xp.finfo(tmp.dtype).smallest_normal) * 2**20  # (tiny, in the standard's name)
        for state in slots.values():
            ops.flush_small(state, threshold, tmp)

    def flat_slots(self, flat, ops: Ops) -> tuple[dict, Array]:
        """Flat state vectors for ``flat``'s layout, carrying over any state held per key, and a
        scratch vector of the same length."""
        if self._flat is not None and self._flat[0] is flat:
            return self._flat[1:]
        vectors = {slot: ops.alloc(flat.theta.shape, flat.theta.dtype) for slot in self.slots}
        ops.flush_small(flat.theta[:0], 0.0, flat.theta[:0])  # loads a compiled flush now, not at step FLUSH_EVERY
        views = {slot: flat.views(vector) for slot, vector in vectors.items()}
        for slot in self.slots:
            for key, view in views[slot].items():
                if key in self.state and slot in self.state[key]:
                    view[...] = self.state[key][slot]
        self.state = {key: {slot: views[slot][key] for slot in self.slots} for key in flat.keys}
        self._flat = (flat, vectors, self.scratch(flat.theta, ops))
        return self._flat[1:]

    def scratch(self, like: Array, ops: Ops | None = None) -> Array:
        """A reusable work array shaped like ``like``, by ``ops`` (no allocation per step)."""
        key = (tuple(like.shape), str(like.dtype))
        if key not in self._scratch:
            self._scratch[key] = (ops or get_ops("numpy")).alloc(like.shape, like.dtype)
        return self._scratch[key]

    def update(self, theta: Array, g: Array, slots: dict, tmp: Array, ops: Ops) -> None:
        """theta -= the step for gradient g, in place, by ``ops``; ``tmp`` is scratch of theta's shape."""
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

    def update(self, theta, g, slots, tmp, ops):
        if self.momentum:  # torch starts the velocity at the first gradient
            ops.sgd_momentum(theta, g, slots["velocity"], mu=self.momentum, lr=self.lr, first=self.t == 1,
                             nesterov=self.nesterov, tmp=tmp)
        else:
            ops.sgd(theta, g, self.lr, tmp)

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

    def update(self, theta, g, slots, tmp, ops):
        # lr m_hat / (sqrt(v_hat) + eps) = [lr sqrt(bias2) / bias1] m / (sqrt(v) + eps sqrt(bias2))
        eps_hat, step_size = adam_constants(self.lr, self.beta1, self.beta2, self.eps, self.t)
        ops.adam(theta, g, slots["m"], slots["v"], beta1=self.beta1, beta2=self.beta2, eps_hat=eps_hat,
                 step_size=step_size, tmp=tmp)

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

    def update(self, theta, g, slots, tmp, ops):
        ops.rmsprop(theta, g, slots["square_avg"], slots.get("momentum_buffer"), alpha=self.alpha, eps=self.eps,
                    mu=self.momentum, lr=self.lr, tmp=tmp)

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
