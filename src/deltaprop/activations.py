"""Activations a = sigma(z), each with its derivative sigma'(z) written beside it.

Every derivative is evaluated at the pre-activation ``z`` (the notes: "sigma' is
evaluated at z, not at a"). All functions work element-wise on arrays of shape
(m, n_l), keep the input's dtype, and are written so that |z| up to 1e4 raises
no overflow: exponentials only ever see non-positive arguments.

softmax couples the neurons of a layer, so it has no element-wise sigma'; it
provides the Jacobian-vector product ``delta = a ⊙ (g - rowsum(g ⊙ a))`` instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .errors import ActivationError, ConfigError

Array = np.ndarray


@dataclass(frozen=True)
class Activation:
    """A named activation: ``sigma(z)``, ``sigma_prime(z)`` and its weight init.

    ``sigma_prime`` is element-wise; ``jvp(g, z)``, where given, computes g ⊙ sigma'(z)
    directly: it is required where the Jacobian is not diagonal (softmax) and saves
    work where it is (relu). ``output_range`` is the open interval the
    outputs lie in, used to refuse losses that need probabilities.
    """

    name: str
    sigma: Callable[[Array], Array]
    sigma_prime: Callable[[Array], Array] | None
    init: str = "glorot"
    output_range: tuple[float, float] = (-np.inf, np.inf)
    jvp: Callable[[Array, Array], Array] | None = None

    def times_sigma_prime(self, g: Array, z: Array) -> Array:
        """dL/dz from g = dL/da: ``g ⊙ sigma'(z)``, or the Jacobian product for softmax."""
        if self.jvp is not None:
            return self.jvp(g, z)
        return g * self.sigma_prime(z)


# --- sigmoid: sigma(z) = 1 / (1 + e^-z);  sigma'(z) = sigma(z) (1 - sigma(z))
def sigmoid(z: Array) -> Array:
    e = np.exp(-np.abs(z))  # e <= 1: no overflow for either sign of z
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_prime(z: Array) -> Array:
    s = sigmoid(z)
    return s * (1 - s)


# --- tanh: sigma'(z) = 1 - tanh(z)^2
def tanh(z: Array) -> Array:
    return np.tanh(z)


def tanh_prime(z: Array) -> Array:
    t = np.tanh(z)
    return 1 - t * t


# --- relu: max(0, z);  sigma'(z) = 1[z > 0]
def relu(z: Array) -> Array:
    return np.maximum(z, 0)


def relu_prime(z: Array) -> Array:
    return (z > 0).astype(z.dtype)


def relu_times_prime(g: Array, z: Array) -> Array:
    """g ⊙ 1[z > 0] in one multiply (a boolean factor keeps g's dtype)."""
    return g * (z > 0)


# --- leaky relu: z if z > 0 else alpha z;  sigma'(z) = 1 or alpha
LEAKY_ALPHA = 0.01


def leaky_relu(z: Array) -> Array:
    return np.where(z > 0, z, LEAKY_ALPHA * z)


def leaky_relu_prime(z: Array) -> Array:
    return np.where(z > 0, 1, LEAKY_ALPHA).astype(z.dtype)


# --- elu: z if z > 0 else e^z - 1;  sigma'(z) = 1 or e^z
def elu(z: Array) -> Array:
    return np.where(z > 0, z, np.expm1(np.minimum(z, 0)))


def elu_prime(z: Array) -> Array:
    return np.where(z > 0, 1, np.exp(np.minimum(z, 0))).astype(z.dtype)


# --- softplus: log(1 + e^z) = max(z, 0) + log(1 + e^-|z|);  sigma'(z) = sigmoid(z)
def softplus(z: Array) -> Array:
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


# --- identity: sigma'(z) = 1
def identity(z: Array) -> Array:
    return z


def identity_prime(z: Array) -> Array:
    return np.ones_like(z)


# --- softmax: a_j = e^{z_j} / sum_k e^{z_k};  Jacobian da_j/dz_i = a_j (1[i=j] - a_i)
def softmax(z: Array) -> Array:
    e = np.exp(z - z.max(axis=1, keepdims=True))  # shift by the row max: exponents <= 0
    return e / e.sum(axis=1, keepdims=True)


def softmax_jvp(g: Array, z: Array) -> Array:
    """delta = J^T g = a ⊙ (g - rowsum(g ⊙ a)) for g = dL/da of shape (m, n)."""
    a = softmax(z)
    return a * (g - (g * a).sum(axis=1, keepdims=True))


ACTIVATIONS: dict[str, Activation] = {
    act.name: act
    for act in [
        Activation("sigmoid", sigmoid, sigmoid_prime, output_range=(0.0, 1.0)),
        Activation("tanh", tanh, tanh_prime, output_range=(-1.0, 1.0)),
        Activation("relu", relu, relu_prime, init="he", output_range=(0.0, np.inf), jvp=relu_times_prime),
        Activation("leaky_relu", leaky_relu, leaky_relu_prime, init="he"),
        Activation("elu", elu, elu_prime, init="he", output_range=(-1.0, np.inf)),
        Activation("softplus", softplus, sigmoid, output_range=(0.0, np.inf)),
        Activation("identity", identity, identity_prime),
        Activation("softmax", softmax, None, output_range=(0.0, 1.0), jvp=softmax_jvp),
    ]
}


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
) -> Activation:
    """Register ``f`` with derivative ``f_prime`` under ``name``, after checking it.

    ``f_prime(z)`` is compared with the central difference ``(f(z+h) - f(z-h)) / 2h``
    at fixed points in [-4, 4]; a relative error above ``rtol`` (denominator
    ``max(1, |f'|, |numeric|)``) means the derivative is wrong, and it is refused.
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
    act = Activation(name, f, f_prime, init=init)
    ACTIVATIONS[name] = act
    return act
