"""Activations a = sigma(z), each with its derivative sigma'(z) written beside it.

Every derivative is evaluated at the pre-activation ``z`` (the notes: "sigma' is
evaluated at z, not at a"). All functions work element-wise on arrays of shape
(m, n_l), keep the input's dtype, and are written so that |z| up to 1e4 raises
no overflow: exponentials only ever see non-positive arguments.

softmax couples the neurons of a layer, so it has no element-wise sigma'; it
provides the Jacobian-vector product ``delta = a ⊙ (g - rowsum(g ⊙ a))`` instead.

The fresh forms (sigma(z) without ``out``, sigma_prime, the jvp) take the array's own
namespace (arrays.namespace: numpy itself for NumPy arrays, same bits), so ArrayAPIOps runs
them on array_api_strict, PyTorch or CuPy arrays; the ``out=`` and ``_chain`` forms are NumPy's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .arrays import astype, namespace, put
from .errors import ActivationError, ConfigError

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

        ``in_place``: write the result into g, and z may be overwritten (training buffers).
        """
        if in_place and self.chain is not None:
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


# --- sigmoid: sigma(z) = 1 / (1 + e^-z);  sigma'(z) = sigma(z) (1 - sigma(z))
def sigmoid(z: Array, out: Array | None = None) -> Array:
    """Computed as exp(-softplus(-z)): the exponent is never positive, so no overflow."""
    if not isinstance(z, np.ndarray):  # the standard has no out=: the same steps, fresh
        xp = namespace(z)
        return xp.exp(-xp.logaddexp(-z, 0.0))
    out = np.negative(z, out=out)
    np.logaddexp(out, 0, out=out)
    np.negative(out, out=out)
    return np.exp(out, out=out)


def sigmoid_prime(z: Array) -> Array:
    s = sigmoid(z)
    return s * (1 - s)


def sigmoid_chain(g: Array, z: Array) -> Array:
    s = sigmoid(z, out=z)
    g *= s
    np.subtract(1, s, out=s)
    g *= s
    return g


def sigmoid_forward_loop(z, b, a):
    """z += b, then a = exp(-logaddexp(-z, 0)): sigmoid's formula above, as NumPy's logaddexp computes it."""
    for r in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[r, j] += b[j]
            v = -z[r, j]
            softplus_v = v + np.log1p(np.exp(-v)) if v > 0 else np.log1p(np.exp(v))
            a[r, j] = np.exp(-softplus_v)


def sigmoid_chain_loop(g, z):
    """g *= s (1 - s), s = sigmoid(z) by the formula above, multiplied in sigmoid_chain's order."""
    one = z.dtype.type(1)
    for r in range(g.shape[0]):
        for j in range(g.shape[1]):
            v = -z[r, j]
            softplus_v = v + np.log1p(np.exp(-v)) if v > 0 else np.log1p(np.exp(v))
            s = np.exp(-softplus_v)
            g[r, j] = g[r, j] * s * (one - s)


# --- tanh: sigma'(z) = 1 - tanh(z)^2
def tanh(z: Array, out: Array | None = None) -> Array:
    return np.tanh(z, out=out) if isinstance(z, np.ndarray) else namespace(z).tanh(z)


def tanh_prime(z: Array) -> Array:
    t = namespace(z).tanh(z)
    return 1 - t * t


def tanh_chain(g: Array, z: Array) -> Array:
    t = np.tanh(z, out=z)
    np.square(t, out=t)
    np.subtract(1, t, out=t)
    g *= t
    return g


def tanh_forward_loop(z, b, a):
    """z += b, then a = tanh(z)."""
    for r in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[r, j] += b[j]
            a[r, j] = np.tanh(z[r, j])


def tanh_chain_loop(g, z):
    """g *= 1 - tanh(z)^2, as tanh_chain."""
    one = z.dtype.type(1)
    for r in range(g.shape[0]):
        for j in range(g.shape[1]):
            t = np.tanh(z[r, j])
            g[r, j] *= one - t * t


# --- relu: max(0, z);  sigma'(z) = 1[z > 0]
def relu(z: Array, out: Array | None = None) -> Array:
    return np.maximum(z, 0, out=out) if isinstance(z, np.ndarray) else namespace(z).maximum(z, 0.0)


def relu_prime(z: Array) -> Array:
    return astype(z > 0, z.dtype)


def step(z: Array) -> Array:
    """1[z > 0], written over z: ceil(clip(z, 0, 1)). Fast, and needs no boolean array."""
    np.clip(z, 0, 1, out=z)
    return np.ceil(z, out=z)


def relu_chain(g: Array, z: Array) -> Array:
    g *= step(z)
    return g


def relu_chain_loop(g, z):
    """g *= sigma'(z) = 1[z > 0]; NaN in z stays NaN in g (divergence shows)."""
    g, z = g.reshape(-1), z.reshape(-1)
    for i in range(g.size):
        if not z[i] > 0:
            g[i] = g[i] * 0 if z[i] <= 0 else z[i]


def relu_forward_loop(z, b, a):
    """z += b for every row of z (m, n), then a = max(z, 0): z^l and a^l in one call.

    Two short loops per row, not one: a loop that writes both z and a cannot be
    vectorized (they might overlap), and the row is still in cache for the second.
    """
    for r in range(z.shape[0]):
        z_r, a_r = z[r], a[r]
        for j in range(b.size):
            z_r[j] += b[j]
        for j in range(b.size):
            a_r[j] = z_r[j] if z_r[j] > 0 else z_r[j] * 0  # z * 0 keeps NaN


def relu_over_z_loop(z, b):
    """z = max(z + b, 0) in place: inference, where z^l is not kept (relu_forward_loop with a = z runs five
    times slower: a loop that may write z and a at one address cannot be vectorized)."""
    for r in range(z.shape[0]):
        for j in range(z.shape[1]):
            v = z[r, j] + b[j]
            z[r, j] = v if v > 0 else v * 0


# --- leaky relu: z if z > 0 else alpha z;  sigma'(z) = 1 or alpha
LEAKY_ALPHA = 0.01


def _over_z(z: Array, out: Array | None) -> bool:
    """Whether sigma writes over z itself (inference writes a^l over z^l): then it must not read z
    after writing out."""
    return out is z


def leaky_relu(z: Array, out: Array | None = None) -> Array:
    if not isinstance(z, np.ndarray):
        xp = namespace(z)
        return xp.maximum(z, z * LEAKY_ALPHA)
    if _over_z(z, out):  # scale the negative entries in place (a mask per call: inference only)
        return np.multiply(z, LEAKY_ALPHA, out=out, where=z < 0)
    out = np.multiply(z, LEAKY_ALPHA, out=out)
    return np.maximum(z, out, out=out)  # alpha < 1: max(z, alpha z) picks the right branch


def leaky_relu_prime(z: Array) -> Array:
    xp = namespace(z)
    if xp is not np:  # (the standard's where takes one scalar at most)
        return xp.where(z > 0, xp.ones_like(z), LEAKY_ALPHA)
    return np.where(z > 0, 1, LEAKY_ALPHA).astype(z.dtype)


def leaky_relu_chain(g: Array, z: Array) -> Array:
    factor = step(z)
    factor *= 1 - LEAKY_ALPHA
    factor += LEAKY_ALPHA
    g *= factor
    return g


def leaky_relu_forward_loop(z, b, a):
    """z += b, then a = max(z, alpha z), as leaky_relu."""
    alpha = z.dtype.type(LEAKY_ALPHA)
    for r in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[r, j] += b[j]
            scaled = z[r, j] * alpha
            a[r, j] = z[r, j] if z[r, j] > scaled else scaled


def leaky_relu_chain_loop(g, z):
    """g *= step(z) (1 - alpha) + alpha, as leaky_relu_chain (NaN in z stays NaN)."""
    one, zero = z.dtype.type(1), z.dtype.type(0)
    slope, alpha = z.dtype.type(1 - LEAKY_ALPHA), z.dtype.type(LEAKY_ALPHA)
    for r in range(g.shape[0]):
        for j in range(g.shape[1]):
            v = z[r, j]
            factor = one if v > 0 else (zero if v <= 0 else v)  # step(z): 1, 0, or NaN
            g[r, j] *= factor * slope + alpha


# --- elu: z if z > 0 else e^z - 1;  sigma'(z) = 1 or e^z, i.e. e^min(z, 0)
def elu(z: Array, out: Array | None = None) -> Array:
    if not isinstance(z, np.ndarray):
        xp = namespace(z)
        return xp.maximum(xp.expm1(xp.minimum(z, 0.0)), z)
    if _over_z(z, out):  # e^z - 1 where z < 0, in place (a mask per call: inference only)
        return np.expm1(z, out=out, where=z < 0)
    out = np.minimum(z, 0, out=out)
    np.expm1(out, out=out)
    return np.maximum(out, z, out=out)  # e^z - 1 >= z, with equality only at 0


def elu_prime(z: Array) -> Array:
    xp = namespace(z)
    return xp.exp(xp.minimum(z, 0.0))


def elu_chain(g: Array, z: Array) -> Array:
    np.minimum(z, 0, out=z)
    g *= np.exp(z, out=z)
    return g


def elu_forward_loop(z, b, a):
    """z += b, then a = max(expm1(min(z, 0)), z), as elu."""
    zero = z.dtype.type(0)
    for r in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[r, j] += b[j]
            v = z[r, j]
            e = np.expm1(v if v < 0 else (zero if v >= 0 else v))
            a[r, j] = e if e > v else v


def elu_chain_loop(g, z):
    """g *= e^min(z, 0), as elu_chain."""
    zero = z.dtype.type(0)
    for r in range(g.shape[0]):
        for j in range(g.shape[1]):
            v = z[r, j]
            g[r, j] *= np.exp(v if v < 0 else (zero if v >= 0 else v))


# --- softplus: log(1 + e^z), by logaddexp(z, 0) (stable);  sigma'(z) = sigmoid(z)
def softplus(z: Array, out: Array | None = None) -> Array:
    return np.logaddexp(z, 0, out=out) if isinstance(z, np.ndarray) else namespace(z).logaddexp(z, 0.0)


def softplus_chain(g: Array, z: Array) -> Array:
    g *= sigmoid(z, out=z)
    return g


def softplus_forward_loop(z, b, a):
    """z += b, then a = logaddexp(z, 0), as NumPy computes it."""
    for r in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[r, j] += b[j]
            v = z[r, j]
            a[r, j] = v + np.log1p(np.exp(-v)) if v > 0 else np.log1p(np.exp(v))


def softplus_chain_loop(g, z):
    """g *= sigmoid(z), by sigmoid's formula."""
    for r in range(g.shape[0]):
        for j in range(g.shape[1]):
            v = -z[r, j]
            softplus_v = v + np.log1p(np.exp(-v)) if v > 0 else np.log1p(np.exp(v))
            g[r, j] *= np.exp(-softplus_v)


# --- identity: sigma'(z) = 1
def identity(z: Array, out: Array | None = None) -> Array:
    if out is None:
        return z
    np.copyto(out, z)
    return out


def identity_prime(z: Array) -> Array:
    return namespace(z).ones_like(z)


def identity_chain(g: Array, z: Array) -> Array:
    return g


def identity_forward_loop(z, b, a):
    """z += b, then a = z."""
    for r in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[r, j] += b[j]
            a[r, j] = z[r, j]


def identity_chain_loop(g, z):
    """g *= 1: nothing to do."""


# --- softmax: a_j = e^{z_j} / sum_k e^{z_k};  Jacobian da_j/dz_i = a_j (1[i=j] - a_i)
def softmax(z: Array, out: Array | None = None) -> Array:
    if not isinstance(z, np.ndarray):
        xp = namespace(z)
        e = xp.exp(z - xp.max(z, axis=1, keepdims=True))
        return e / xp.sum(e, axis=1, keepdims=True)
    out = np.subtract(z, z.max(axis=1, keepdims=True), out=out)  # shift by the row max: exponents <= 0
    np.exp(out, out=out)
    out /= out.sum(axis=1, keepdims=True)
    return out


def log_softmax(z: Array) -> Array:
    """log a_j = z_j - logsumexp(z), (m, n): finite where softmax(z)_j underflows to 0."""
    xp = namespace(z)
    shifted = z - xp.max(z, axis=1, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))


def softmax_jvp(g: Array, z: Array) -> Array:
    """delta = J^T g = a ⊙ (g - rowsum(g ⊙ a)) for g = dL/da of shape (m, n)."""
    a = softmax(z)
    return a * (g - namespace(g).sum(g * a, axis=1, keepdims=True))


def softmax_chain(g: Array, z: Array) -> Array:
    a = softmax(z, out=z)
    g -= np.einsum("ij,ij->i", g, a)[:, None]  # rowsum(g ⊙ a) without an (m, n) temporary
    g *= a
    return g


def softmax_forward_loop(z, b, a):
    """z += b, then a_rj = exp(z_rj - max_k z_rk) / sum_k exp(z_rk - max_k z_rk), row by row; a may be z."""
    for r in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[r, j] += b[j]
        top = z[r, 0]
        for j in range(1, z.shape[1]):
            top = max(top, z[r, j])
        a[r, 0] = np.exp(z[r, 0] - top)
        total = a[r, 0]
        for j in range(1, z.shape[1]):
            a[r, j] = np.exp(z[r, j] - top)
            total += a[r, j]
        for j in range(z.shape[1]):
            a[r, j] /= total


# --- mish: z tanh(softplus(z));  sigma'(z) = tanh(sp) + z sigmoid(z) (1 - tanh(sp)^2), sp = softplus(z)
def mish(z: Array, out: Array | None = None) -> Array:
    if not isinstance(z, np.ndarray):
        return put(z * namespace(z).tanh(softplus(z)), out)
    t = np.tanh(softplus(z))  # a fresh array: out may be z itself (inference)
    return np.multiply(z, t, out=out)


def mish_prime(z: Array) -> Array:
    t = namespace(z).tanh(softplus(z))
    return t + z * sigmoid(z) * (1 - t * t)


def mish_chain(g: Array, z: Array) -> Array:
    g *= mish_prime(z)
    return g


def mish_forward_loop(z, b, a):
    """z += b, then a = z tanh(softplus(z)), softplus as NumPy's logaddexp(z, 0)."""
    for r in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[r, j] += b[j]
            v = z[r, j]
            softplus_v = v + np.log1p(np.exp(-v)) if v > 0 else np.log1p(np.exp(v))
            a[r, j] = v * np.tanh(softplus_v)


def mish_chain_loop(g, z):
    """g *= mish_prime(z), by its formula and in its order."""
    one = z.dtype.type(1)
    for r in range(g.shape[0]):
        for j in range(g.shape[1]):
            v = z[r, j]
            softplus_v = v + np.log1p(np.exp(-v)) if v > 0 else np.log1p(np.exp(v))
            t = np.tanh(softplus_v)
            minus_v = -v
            softplus_minus_v = minus_v + np.log1p(np.exp(-minus_v)) if minus_v > 0 else np.log1p(np.exp(minus_v))
            s = np.exp(-softplus_minus_v)  # sigmoid(z)
            g[r, j] *= t + v * s * (one - t * t)


RELU = Activation("relu", relu, relu_prime, init="he", output_range=(0.0, np.inf), chain=relu_chain, writes_out=True,
                  kernel=Kernel(relu_forward_loop, relu_chain_loop, relu_over_z_loop))
SOFTMAX = Activation("softmax", softmax, None, output_range=(0.0, 1.0), jvp=softmax_jvp, chain=softmax_chain,
                     writes_out=True, kernel=Kernel(softmax_forward_loop))

ACTIVATIONS: dict[str, Activation] = {
    act.name: act
    for act in [
        Activation("sigmoid", sigmoid, sigmoid_prime, output_range=(0.0, 1.0), chain=sigmoid_chain, writes_out=True,
                   kernel=Kernel(sigmoid_forward_loop, sigmoid_chain_loop)),
        Activation("tanh", tanh, tanh_prime, output_range=(-1.0, 1.0), chain=tanh_chain, writes_out=True,
                   kernel=Kernel(tanh_forward_loop, tanh_chain_loop)),
        RELU,
        Activation("leaky_relu", leaky_relu, leaky_relu_prime, init="he", chain=leaky_relu_chain, writes_out=True,
                   kernel=Kernel(leaky_relu_forward_loop, leaky_relu_chain_loop)),
        Activation("elu", elu, elu_prime, init="he", output_range=(-1.0, np.inf), chain=elu_chain, writes_out=True,
                   kernel=Kernel(elu_forward_loop, elu_chain_loop)),
        Activation("softplus", softplus, sigmoid, output_range=(0.0, np.inf), chain=softplus_chain,
                   writes_out=True, kernel=Kernel(softplus_forward_loop, softplus_chain_loop)),
        Activation("identity", identity, identity_prime, chain=identity_chain, writes_out=True,
                   kernel=Kernel(identity_forward_loop, identity_chain_loop)),
        SOFTMAX,
        Activation("mish", mish, mish_prime, output_range=(-0.31, np.inf), chain=mish_chain, writes_out=True,
                   kernel=Kernel(mish_forward_loop, mish_chain_loop)),
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
