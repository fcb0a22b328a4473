"""The optimizers' base: Optimizer (state per (layer, parameter), the step in NumPy or by its kernel, weight
decay, the flat step), the flush of state about to turn subnormal (with its kernel), and the OPTIMIZERS
registry each rule's module adds its classes to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np

from ..activations.rectifiers import step as unit_step
from ..arrays import namespace
from ..errors import ConfigError
from ..ops import Ops, get_ops
from ..regularizer import add_l2, decayed_spans, shrink

Array = np.ndarray

Rule = TypeVar("Rule", bound="Optimizer")


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


# name -> class, in the order the rules' modules register them (called with keyword arguments only: each rule's
# class gives defaults for all of them)
OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {}


def builtin(cls: type[Rule]) -> type[Rule]:
    """Put a built-in optimizer class in the registry under its name (a class decorator)."""
    OPTIMIZERS[cls.name] = cls
    return cls


def get_optimizer(spec, **kwargs) -> Optimizer:
    """An Optimizer from an instance, or a name ("adam", "sgd", ...) plus keyword arguments."""
    if isinstance(spec, Optimizer):
        return spec
    try:
        cls = OPTIMIZERS[str(spec).lower()]
    except KeyError:
        raise ConfigError(f"unknown optimizer {spec!r}; known: {', '.join(OPTIMIZERS)}") from None
    return cls(**kwargs)
