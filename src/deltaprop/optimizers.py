"""Optimizers: ``step(params, grads)`` updates each parameter in place, by an array backend's update.

``params`` and ``grads`` are dicts keyed by (l, name), e.g. (2, "W"), as
``Network.params()`` and ``Grads.items()`` give them. The optimizer's own state
(momentum, moment estimates) is keyed the same way and holds only its own
arrays, never a reference to a weight array, so replacing a network's arrays
(load, set_weights) cannot leave it updating stale copies.

The update rules follow PyTorch's optimizers of the same name, so a run can be
compared with torch step for step. Each rule is written here once, as three plain
functions side by side: its NumPy lines (the readable reference), its kernel (a loop
numba compiles, for NumbaOps and the compiled training step) and its step constants
(computed from the hyperparameters and the step t, in Python or compiled). Both forms
take (theta, g, state, k): the state arrays in ``slots`` order and the constants k, so
the compiled step calls the kernel as the readable step does. A new optimizer is a
class here with those three (tests/test_compiled_step.py defines one in the test).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .activations import step as unit_step
from .arrays import namespace
from .errors import ConfigError
from .ops import Ops, get_ops
from .regularizer import add_l2, decayed_spans, shrink

Array = np.ndarray


FLUSH_EVERY = 64  # steps between zeroing optimizer state that is about to turn subnormal


class Optimizer:
    """Base class: learning rate, per-(layer, parameter) state, step counter ``t``.

    A subclass sets ``slots`` (its state arrays), ``numpy_update`` and ``kernel`` (the rule in NumPy and as a
    loop, both ``(theta, g, state, k[, tmp])``), ``constants`` ((hyper, t) -> k, a tuple of floats; t a float)
    and ``hyper()`` (the floats ``constants`` reads). ``kernel`` None: the rule runs in NumPy only.
    """

    name = "optimizer"
    slots: tuple = ()
    decoupled = False  # weight decay as theta *= 1 - lr lambda (AdamW) instead of an L2 gradient
    kernel: Callable | None = None

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

    def step(self, params: dict, grads, ops: Ops | None = None, decayed=None) -> None:
        """Apply one update to every parameter, in place (one array at a time), by ``ops`` (NumPy's by default).

        ``params`` and ``grads`` are keyed (l, name); ``decayed``: the keys weight decay applies to, as their
        layers declare them (``layer.decayed``: Dense's "W"); needed when weight_decay is set.
        """
        ops = ops or get_ops("numpy")
        if self.weight_decay and decayed is None:
            raise ConfigError("weight decay needs the keys it applies to: step(params, grads, decayed=[(l, name), "
                              "...]) as the layers declare them (layer.decayed)")
        self.t += 1
        for key, g in grads.items():
            theta = params[key]
            if self.weight_decay and key in decayed:
                g = g.copy()  # the caller's gradient stays as given
                self._decay(theta.reshape(-1), g.reshape(-1), np.array([[0, theta.size]], np.int64), ops)
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
            self._decay(flat.theta, flat.grad, decayed_spans(flat), ops)
        self.update(flat.theta, flat.grad, slots, tmp, ops)
        self._flush_denormals(slots, tmp, ops)

    def _decay(self, theta: Array, grad: Array, spans: Array, ops: Ops) -> None:
        """Weight decay on the decayed spans: theta *= 1 - lr lambda (decoupled), else grad += lambda theta."""
        if self.decoupled:
            shrink(theta, spans, 1 - self.lr * self.weight_decay, ops)
        else:
            add_l2(theta, grad, spans, self.weight_decay, ops)  # the L2 penalty lambda/2 ||W||^2's gradient

    def decay(self) -> float:
        """The compiled step's weight decay argument: 1 - lr lambda (decoupled) or lambda (0: none)."""
        if not self.weight_decay:
            return 0.0
        return 1 - self.lr * self.weight_decay if self.decoupled else self.weight_decay

    def update(self, theta: Array, g: Array, slots: dict, tmp: Array, ops: Ops) -> None:
        """theta -= the step for gradient g, in place: the kernel where ``ops`` compiles it, else NumPy's lines."""
        k = self.constants(self.hyper(), float(self.t))
        state = tuple(slots[s] for s in self.slots)
        kernel = ops.kernel(self.kernel) if self.kernel is not None else None
        if kernel is not None:
            kernel(theta, g, state, k)
        elif isinstance(theta, np.ndarray):
            self.numpy_update(theta, g, state, k, tmp)
        else:  # an Array API library's arrays (ArrayAPIOps): the standard has no out=, only in-place operators
            self.array_update(theta, g, state, k, namespace(theta))

    def _flush_denormals(self, slots: dict, tmp: Array, ops: Ops) -> None:
        """Zero state entries about to become subnormal (every FLUSH_EVERY steps).

        A weight whose gradient stays 0 (a dead unit) has its moments multiplied by beta
        forever; once subnormal, arithmetic on them runs many times slower. Entries below
        2^20 times the smallest normal number are far too small to move a weight.
        """
        if self.t % FLUSH_EVERY:
            return
        threshold = flush_threshold(tmp.dtype, ops.xp)
        kernel = ops.kernel(flush_small_loop)
        for state in slots.values():
            if kernel is not None:
                kernel(state, threshold)
            elif isinstance(state, np.ndarray):
                flush_small(state, threshold, tmp)
            else:  # the standard's where: NaN and inf stay (a comparison with NaN is false)
                xp = ops.xp
                state[...] = xp.where(xp.abs(state) <= threshold, xp.zeros_like(state), state)

    def flat_slots(self, flat, ops: Ops) -> tuple[dict, Array]:
        """Flat state vectors for ``flat``'s layout, carrying over any state held per key, and a
        scratch vector of the same length."""
        if self._flat is not None and self._flat[0] is flat:
            return self._flat[1:]
        vectors = {slot: ops.alloc(flat.theta.shape, flat.theta.dtype) for slot in self.slots}
        kernel = ops.kernel(flush_small_loop)
        if kernel is not None:  # loads the compiled flush now, not at step FLUSH_EVERY
            kernel(flat.theta[:0], 0.0)
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

    def hyper(self) -> tuple:
        """The floats ``constants`` reads (the values in force: lr after the schedule)."""
        raise NotImplementedError

    @staticmethod
    def constants(hyper: tuple, t: float) -> tuple:
        """The rule's constants for step t (from 1), as floats."""
        raise NotImplementedError

    def numpy_update(self, theta: Array, g: Array, state: tuple, k: tuple, tmp: Array) -> None:
        """The rule in NumPy lines, in place on theta and the state; ``tmp`` is scratch of theta's shape."""
        raise NotImplementedError

    def array_update(self, theta: Array, g: Array, state: tuple, k: tuple, xp) -> None:
        """The same rule on an Array API library's arrays (namespace ``xp``): NumPy's lines with the standard's
        in-place operators, each product a fresh array where NumPy writes into ``tmp``."""
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


def flush_threshold(dtype, xp=np) -> float:
    """|x| at or below which optimizer state is zeroed: 2^20 times the dtype's smallest normal number."""
    return float(xp.finfo(dtype).smallest_normal) * 2**20


def flush_small(x: Array, threshold: float, tmp: Array) -> None:
    """x_i = 0 where |x_i| <= threshold (state about to turn subnormal); NaN and inf stay."""
    np.abs(x, out=tmp)
    tmp -= threshold
    x *= unit_step(tmp)  # 0 below the threshold, 1 above: no boolean array


def flush_small_loop(x, threshold):
    """flush_small's kernel."""
    x = x.reshape(-1)
    threshold = x.dtype.type(threshold)
    for i in range(x.size):
        if abs(x[i]) <= threshold:
            x[i] = x[i] * 0


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


class AdamW(Adam):
    """Adam with decoupled weight decay: theta *= 1 - lr lambda before the Adam step."""

    name = "adamw"
    decoupled = True

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 0.01):
        super().__init__(lr, beta1, beta2, eps, weight_decay)


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
