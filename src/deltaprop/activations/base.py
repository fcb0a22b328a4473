"""The activation registry's types: an Activation (sigma, sigma', its weight init) and its compiled Kernel,
the ACTIVATIONS registry, get_activation, and register_activation with its checks of a user's
derivative and kernel.

The built-in rules live one family to a module beside this one (logistic.py, rectifiers.py, ...), each
with its NumPy lines, derivative and numba kernel side by side, and each puts its Activations in the
registry with ``builtin`` when imported. The package's __init__ imports them in the order the registry
lists them (help texts and ``deltaprop info`` show that order).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import ActivationError, ConfigError, numba_message

Array = np.ndarray


@dataclass(frozen=True)
class Kernel:
    """An activation's compiled form: loops in plain Python that numba compiles (NumbaOps and the compiled
    training step call them; nothing here imports numba, which stays optional).

    ``forward(z, b, a)``: z += b for every row of z (m, n), then a = sigma(z); a may be z.
    ``chain(g, z)``: g *= sigma'(z) in place, z left as it is; None where sigma' is not element-wise
    (softmax's Jacobian): such a layer is then computed by the readable step, except as the output of its
    shortcut pair. ``over_z(z, b)``: z = sigma(z + b) in place, for inference, where a loop that may write z
    and a at one address would not vectorize; None: forward(z, b, z). Each computes its NumPy rule's formula,
    in the arrays' dtype (scalars cast by ``z.dtype.type``: a float64 literal would widen a float32 loop).
    """

    forward: Callable
    chain: Callable | None = None
    over_z: Callable | None = None


@dataclass(frozen=True)
class Activation:
    """A named activation: ``sigma(z)``, ``sigma_prime(z)`` and its weight init.

    ``sigma_prime`` is element-wise; ``jvp(g, z)`` computes g ⊙ sigma'(z) where the
    Jacobian is not diagonal (softmax). ``chain(g, z)`` is the same product computed in
    place for the training loop's preallocated buffers: it writes into g and may use
    z as scratch. ``writes_out``: ``sigma`` accepts ``out=``. ``output_range`` is the
    open interval the outputs lie in, used to refuse losses that need probabilities.
    """

    name: str
    sigma: Callable[..., Array]
    sigma_prime: Callable[[Array], Array] | None
    init: str = "glorot"
    output_range: tuple[float, float] = (-np.inf, np.inf)
    jvp: Callable[[Array, Array], Array] | None = None
    chain: Callable[[Array, Array], Array] | None = None
    writes_out: bool = False
    kernel: Kernel | None = None  # the compiled form (None: the readable step computes this activation)

    def forward(self, z: Array, out: Array | None = None) -> Array:
        """a = sigma(z), into ``out`` when given."""
        if out is None:
            return self.sigma(z)
        if self.writes_out:
            return self.sigma(z, out=out)
        out[...] = self.sigma(z)
        return out

    def times_sigma_prime(self, g: Array, z: Array, in_place: bool = False) -> Array:
        """dL/dz from g = dL/da: ``g ⊙ sigma'(z)``, or the Jacobian product for softmax.

        ``in_place``: write the result into g, and z may be overwritten (training buffers). The in-place
        ``chain`` is taken for NumPy arrays only: its ``out=`` lines are NumPy's, which another library's
        arrays (array_api_strict, PyTorch, CuPy) refuse; those take the fresh form, written into g.
        """
        if in_place and self.chain is not None and isinstance(g, np.ndarray):
            return self.chain(g, z)
        if self.jvp is not None:
            result = self.jvp(g, z)
        else:
            assert self.sigma_prime is not None, "an activation without sigma' has a jvp"
            result = g * self.sigma_prime(z)
        if in_place:
            g[...] = result
            return g
        return result


ACTIVATIONS: dict[str, Activation] = {}  # name -> Activation, in the order the family modules register them


def builtin(act: Activation) -> Activation:
    """Put a built-in activation in the registry, unchecked (its tests hold it to its derivative and kernel; a
    user's goes through register_activation, which checks them)."""
    ACTIVATIONS[act.name] = act
    return act


def get_activation(name: str | Activation) -> Activation:
    """Look an activation up by name (or pass an Activation through)."""
    if isinstance(name, Activation):
        return name
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(ACTIVATIONS))
        raise ConfigError(f"unknown activation {name!r}; known: {known}") from None


# Probe points for checking a user's derivative: irregular, and away from 0 where
# common activations have a kink that a central difference would straddle.
_PROBE = np.concatenate([np.linspace(-4.0, 4.0, 33) + 0.0371, [-0.9, -0.3, 0.2, 0.7, 2.5]])


def register_activation(
    name: str,
    f: Callable[[Array], Array],
    f_prime: Callable[[Array], Array],
    *,
    init: str = "glorot",
    h: float = 1e-5,
    rtol: float = 1e-4,
    overwrite: bool = False,
    kernel: Kernel | None = None,
) -> Activation:
    """Register ``f`` with derivative ``f_prime`` under ``name``, after checking it.

    ``f_prime(z)`` is compared with the central difference ``(f(z+h) - f(z-h)) / 2h``
    at fixed points in [-4, 4]; a relative error above ``rtol`` (denominator
    ``max(1, |f'|, |numeric|)``) means the derivative is wrong, and it is refused.
    ``kernel``: its compiled form (a Kernel of loops numba can compile), with which it trains in the
    compiled step; run here as Python at the same points, it must give f and f_prime's numbers.
    """
    if name in ACTIVATIONS and not overwrite:
        raise ActivationError(f"activation {name!r} already exists; pass overwrite=True")
    if init not in ("glorot", "he"):
        raise ActivationError(f"init must be 'glorot' or 'he', not {init!r}")
    z = _PROBE.reshape(-1, 1).copy()
    try:
        analytic = np.asarray(f_prime(z), dtype=np.float64)
        numeric = (np.asarray(f(z + h)) - np.asarray(f(z - h))) / (2 * h)
    except Exception as exc:  # a user function failing is the user's error to see
        raise ActivationError(f"activation {name!r} failed on a (n, 1) float64 array: {exc}") from exc
    if analytic.shape != z.shape or numeric.shape != z.shape:
        raise ActivationError(f"activation {name!r} must keep the input shape (got {analytic.shape})")
    err = np.abs(analytic - numeric) / np.maximum(1.0, np.maximum(np.abs(analytic), np.abs(numeric)))
    worst = int(np.argmax(err))
    if not np.isfinite(err).all() or err[worst, 0] > rtol:
        raise ActivationError(
            f"f_prime of activation {name!r} disagrees with a central difference of f: "
            f"at z={z[worst, 0]:.4g} f_prime gives {analytic[worst, 0]:.6g}, "
            f"(f(z+h)-f(z-h))/2h gives {numeric[worst, 0]:.6g} (relative error "
            f"{err[worst, 0]:.2e} > {rtol:.0e})"
        )
    if kernel is not None:
        _check_kernel(name, kernel, z, np.asarray(f(z), dtype=np.float64), analytic)
        _check_compiles(name, kernel, z)
    act = Activation(name, f, f_prime, init=init, kernel=kernel)
    ACTIVATIONS[name] = act
    return act


def _check_kernel(name: str, kernel: Kernel, z: Array, a: Array, sigma_prime: Array) -> None:
    """Refuse a kernel whose forward or chain (run as Python on the probe points) disagrees with f or f_prime
    beyond rounding: the compiled step would train another function than the readable one."""
    if not isinstance(kernel, Kernel):
        raise ActivationError(f"kernel of activation {name!r} must be an activations.Kernel, not {kernel!r}")
    got_a, got_g = np.empty_like(z), np.ones_like(z)
    try:
        kernel.forward(z.copy(), np.zeros(1), got_a)
        if kernel.chain is not None:
            kernel.chain(got_g, z.copy())
    except Exception as exc:
        raise ActivationError(f"the kernel of activation {name!r} failed on a (n, 1) float64 array: {exc}") from exc
    checks = [("forward", got_a, a)] + ([("chain", got_g, sigma_prime)] if kernel.chain is not None else [])
    for part, got, want in checks:
        err = np.abs(got - want) / np.maximum(1.0, np.abs(want))
        worst = int(np.argmax(err))
        if not err[worst, 0] <= 1e-9:
            raise ActivationError(f"the kernel's {part} of activation {name!r} gives {got[worst, 0]:.9g} at "
                                  f"z={z[worst, 0]:.4g}, its NumPy rule {want[worst, 0]:.9g}")


def _check_compiles(name: str, kernel: Kernel, z: Array) -> None:
    """Refuse a kernel numba cannot compile (a call it has no type for, such as scipy.special.expit), where numba
    is installed: compiled at its first call, it would otherwise fail inside the first fit's compiled step."""
    try:
        from ..ops import jit  # the backend's own compiler and the errors it raises (it imports numba)
    except ImportError:  # numba is optional: without it the kernel is never compiled
        return
    parts = {"forward": (z.copy(), np.zeros(1), np.empty_like(z)), "chain": (np.ones_like(z), z.copy()),
             "over_z": (z.copy(), np.zeros(1))}
    for part, args in parts.items():
        loop = getattr(kernel, part)
        try:
            if loop is not None:
                jit.compiled(loop)(*args)  # (cached: the first fit's NumbaOps finds it compiled)
        except jit.ERRORS as exc:
            raise ActivationError(f"numba cannot compile the kernel's {part} of activation {name!r}: "
                                  f"{numba_message(exc)}; fix the kernel or register {name!r} without one") from None
