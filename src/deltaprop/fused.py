"""Fused element-wise kernels: one pass over memory where NumPy takes several.

An Adam step in NumPy is a dozen whole-array operations, each reading and writing
every parameter; here it is one loop that reads g, m, v, theta once. The kernels
are compiled by numba when it is installed (``pip install "deltaprop[fast]"``).
Without numba, or with ``DELTAPROP_KERNELS=numpy`` in the environment, or after
``use_kernels(False)``, ``kernel(name)`` returns None and every caller runs its
plain NumPy code instead: that code is the readable reference, and the tests hold
each kernel to it.

Every kernel takes C-contiguous arrays of one float dtype (of any shape for the
element-wise ones, which walk them as flat vectors; (m, n) batches for the row-wise
ones) and scalars already cast to that dtype (a Python float would turn a float32
loop into float64). Callers go through ``run``, which answers SKIPPED for anything
else. Operations keep NumPy's order, so results match the NumPy path to within
rounding (bit for bit where no exp or log is involved; those may differ in the last
place, and the cross-entropy value is computed from a^L rather than z^L).

They pay off twice: fewer passes over memory for big arrays, and one call instead
of several (about 1 us of Python and NumPy overhead each) for the small batches of
small networks.
"""

from __future__ import annotations

import os
import threading

import numpy as np

Array = np.ndarray

_enabled = os.environ.get("DELTAPROP_KERNELS", "numba").lower() != "numpy"
_compiled: dict = {}
_locked: dict = {}  # name: compiled kernel that compiles no new signature at call time (see run)
_refused: set = set()  # names of kernels that were given arrays they cannot take (see run)
_compiling = threading.Lock()  # one thread at a time lets a kernel compile (see run)


# --- the kernels, as plain Python loops (numba compiles them) -------------------------
def _adam(theta, g, m, v, beta1, one_minus_beta1, beta2, one_minus_beta2, eps_hat, step_size):
    """m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  theta -= step_size m / (sqrt(v) + eps_hat)."""
    theta, g, m, v = theta.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1)  # flat views (C-contiguous)
    for i in range(theta.size):
        m[i] = beta1 * m[i] + one_minus_beta1 * g[i]
        v[i] = beta2 * v[i] + one_minus_beta2 * (g[i] * g[i])
        theta[i] -= (m[i] / (np.sqrt(v[i]) + eps_hat)) * step_size


def _sgd(theta, g, lr):
    """theta -= lr g."""
    theta, g = theta.reshape(-1), g.reshape(-1)
    for i in range(theta.size):
        theta[i] -= g[i] * lr


def _sgd_momentum(theta, g, velocity, mu, lr, first, nesterov):
    """v = g (first step) or mu v + g;  theta -= lr (g + mu v) (Nesterov) or lr v."""
    theta, g, velocity = theta.reshape(-1), g.reshape(-1), velocity.reshape(-1)
    for i in range(theta.size):
        velocity[i] = g[i] if first else velocity[i] * mu + g[i]
        direction = velocity[i] * mu + g[i] if nesterov else velocity[i]
        theta[i] -= direction * lr


def _rmsprop(theta, g, square_avg, alpha, one_minus_alpha, eps, lr):
    """v = alpha v + (1-alpha) g^2;  theta -= lr g / (sqrt(v) + eps)."""
    theta, g, square_avg = theta.reshape(-1), g.reshape(-1), square_avg.reshape(-1)
    for i in range(theta.size):
        square_avg[i] = alpha * square_avg[i] + one_minus_alpha * (g[i] * g[i])
        theta[i] -= (g[i] / (np.sqrt(square_avg[i]) + eps)) * lr


def _rmsprop_momentum(theta, g, square_avg, buf, alpha, one_minus_alpha, eps, mu, lr):
    """As _rmsprop, with buf = mu buf + g / (sqrt(v) + eps) taking the step."""
    theta, g, square_avg, buf = theta.reshape(-1), g.reshape(-1), square_avg.reshape(-1), buf.reshape(-1)
    for i in range(theta.size):
        square_avg[i] = alpha * square_avg[i] + one_minus_alpha * (g[i] * g[i])
        buf[i] = buf[i] * mu + g[i] / (np.sqrt(square_avg[i]) + eps)
        theta[i] -= buf[i] * lr


def _flush_small(x, threshold):
    """x_i = 0 where |x_i| <= threshold (optimizer state about to turn subnormal); NaN and inf stay."""
    x = x.reshape(-1)
    for i in range(x.size):
        if abs(x[i]) <= threshold:
            x[i] = x[i] * 0


def _scaled_difference(a, y, scale, out):
    """out = (a - y) * scale, element by element."""
    a, y, out = a.reshape(-1), y.reshape(-1), out.reshape(-1)
    for i in range(out.size):
        out[i] = (a[i] - y[i]) * scale


def _relu_chain(g, z):
    """g *= sigma'(z) = 1[z > 0] for relu; NaN in z stays NaN in g (divergence shows)."""
    g, z = g.reshape(-1), z.reshape(-1)
    for i in range(g.size):
        if not z[i] > 0:
            g[i] = g[i] * 0 if z[i] <= 0 else z[i]


def _bias_relu(z, b, a):
    """z += b for every row of z (m, n), then a = max(z, 0): z^l and a^l in one call (a is not z).

    Two short loops per row, not one: a loop that writes both z and a cannot be
    vectorized (they might overlap), and the row is still in cache for the second.
    """
    for r in range(z.shape[0]):
        z_r, a_r = z[r], a[r]
        for j in range(b.size):
            z_r[j] += b[j]
        for j in range(b.size):
            a_r[j] = z_r[j] if z_r[j] > 0 else z_r[j] * 0  # z * 0 keeps NaN


def _bias_relu_over_z(z, b):
    """z = max(z + b, 0) in place: inference, where z^l is not kept.

    Its own kernel because a loop that may write z and a at the same address
    cannot be vectorized: passing a = z to _bias_relu runs five times slower.
    """
    for r in range(z.shape[0]):
        for j in range(z.shape[1]):
            v = z[r, j] + b[j]
            z[r, j] = v if v > 0 else v * 0


def _softmax(z, b, a):
    """a_rj = exp(z_rj - max_k z_rk) / sum_k exp(z_rk - max_k z_rk), row by row of z (m, n).

    With a bias b (n,), z += b first, stored (z^l, then a^l, in one call: the output
    layer's forward); with b None, z is left as it is. a may be z.
    """
    for r in range(z.shape[0]):
        if b is not None:
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


def _batch_sum(delta, out):
    """out_j = sum_r delta_rj for delta (m, n): from 0, rows added in order, as NumPy's sum(axis=0) does."""
    for j in range(out.size):
        out[j] = 0
    for r in range(delta.shape[0]):
        for j in range(out.size):
            out[j] += delta[r, j]


def _cross_entropy(z, a, y, weights):
    """sum_r w_r L_r with L_r = -sum_j y_rj log a_rj, a = softmax(z) (w_r = 1 without weights).

    a^L comes from the forward pass, so a row costs a log per nonzero target (one, for
    one-hot labels) instead of an exp per output. A row where such an a_rj is below the
    smallest normal number (it underflowed) or NaN takes losses.cross_entropy_from_z's
    formula instead: L_r = sum_j y_rj logsumexp(z_r) - sum_j y_rj z_rj. Summed in float64.
    """
    tiny = np.finfo(a.dtype).tiny
    total = 0.0
    for r in range(z.shape[0]):
        per_sample = 0.0
        for j in range(z.shape[1]):
            if y[r, j] != 0:
                if not a[r, j] >= tiny:  # the whole row from z, by log-sum-exp
                    top = z[r, 0]
                    for k in range(1, z.shape[1]):
                        top = max(top, z[r, k])
                    sum_exp = 0.0
                    for k in range(z.shape[1]):
                        sum_exp += np.exp(z[r, k] - top)
                    per_sample = 0.0
                    for k in range(z.shape[1]):
                        per_sample += y[r, k] * (top + np.log(sum_exp) - z[r, k])
                    break
                per_sample -= y[r, j] * np.log(a[r, j])
        total += per_sample if weights is None else per_sample * weights[r]
    return total


KERNELS = {
    "adam": _adam, "sgd": _sgd, "sgd_momentum": _sgd_momentum, "rmsprop": _rmsprop,
    "rmsprop_momentum": _rmsprop_momentum, "flush_small": _flush_small,
    "relu_chain": _relu_chain, "bias_relu": _bias_relu, "bias_relu_over_z": _bias_relu_over_z,
    "softmax": _softmax, "bias_softmax": _softmax,
    "batch_sum": _batch_sum, "scaled_difference": _scaled_difference, "cross_entropy": _cross_entropy,
}


def available() -> bool:
    """True when numba can be imported (the kernels can be compiled)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def use_kernels(enabled: bool) -> bool:
    """Turn the fused kernels on or off for this process; returns the previous setting."""
    global _enabled
    previous, _enabled = _enabled, bool(enabled)
    return previous


def backend() -> str:
    """"numba" when kernels run, else "numpy"."""
    return "numba" if _enabled and available() else "numpy"


def describe() -> str:
    """One line for ``deltaprop info``: which kernels run, and why."""
    if not available():
        return 'numpy (numba is not installed: pip install "deltaprop[fast]" for the fused kernels)'
    if not _enabled:
        return "numpy (fused kernels turned off: DELTAPROP_KERNELS=numpy or use_kernels(False))"
    import numba

    return f"numba {numba.__version__} (fused optimizer steps, bias + activation, loss and sigma' loops)"


SKIPPED = object()  # what run() answers when no kernel ran


def run(name: str, *args):
    """Kernel ``name`` applied to ``args``: its result, or SKIPPED when it did not run (no such
    kernel, numba missing or kernels off, or arrays it cannot take), leaving the work to the
    caller's NumPy code.

    A kernel compiles only for argument types whose arrays pass ``ready``, and is then locked:
    numba's dispatcher recognises a known signature in C, so the calls of a training step cost
    no check here. Other types are refused by the locked dispatcher (a TypeError, slow to
    build), checked here, and compiled for, or skipped; a kernel once given arrays it cannot
    take checks every call here first, so that refusal is never paid twice.
    """
    compiled = _locked.get(name) if _enabled else None  # the common case: one lookup, one call
    if compiled is not None:
        try:
            return compiled(*args)
        except TypeError:  # no version for these argument types yet
            pass
    with _compiling:
        compiled = kernel(name)
        if compiled is None:
            return SKIPPED
        if not ready(*[a for a in args if isinstance(a, np.ndarray)]):
            _refused.add(name)
            _locked.pop(name, None)
            return SKIPPED
        compiled.disable_compile(False)
        try:
            return compiled(*args)
        finally:
            if compiled.signatures:
                compiled.disable_compile()
                if name not in _refused:
                    _locked[name] = compiled


def kernel(name: str):
    """The compiled kernel ``name``, or None (no such kernel, numba missing or kernels turned off)."""
    if not _enabled or name not in KERNELS:
        return None
    if name not in _compiled:
        _compiled[name] = _compile(KERNELS[name])
    return _compiled[name]


def _compile(function):
    try:
        import numba
    except ImportError:
        return None
    # error_model="numpy": x / 0 gives inf as in NumPy (no check per division, so the loop
    # vectorizes); cache=True keeps the machine code between processes.
    try:
        return numba.njit(cache=True, error_model="numpy", nogil=True)(function)
    except RuntimeError:  # numba found no writable cache folder: compile in every process instead
        return numba.njit(cache=False, error_model="numpy", nogil=True)(function)


def ready(*arrays: Array) -> bool:
    """True when the arrays are C-contiguous and of one dtype, float32 or float64 (what the kernels take)."""
    dtype = arrays[0].dtype
    if dtype.type is not np.float32 and dtype.type is not np.float64:  # numba has no float16 arithmetic
        return False
    for a in arrays:  # a loop, not all(...): this runs several times per training step
        if a.dtype != dtype or not a.flags.c_contiguous:
            return False
    return True
