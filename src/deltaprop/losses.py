"""Losses L(a^L, y): summed over the output neurons, averaged over the batch.

Each loss gives its per-sample value and ``dL/da^L``; the ``1/m`` of the batch
average (and any sample weights) is carried by ``dL/da``, as the notes say.

Two pairs cancel sigma' in equation (1) and take the named shortcut
``delta^L = (a^L - y) / m``: softmax + cross_entropy and sigmoid +
binary_cross_entropy. Their loss values are then computed from z (log-sum-exp,
softplus), so logits of +-1000 never take log(0). The crossed pairs (cross_entropy
after sigmoid, binary_cross_entropy after softmax) do not cancel, but they too are
computed from z, value and delta^L, because log(a) of an a below the dtype's eps
would otherwise be clipped and the gradient would vanish.

With sample weights w_i the batch loss is the weighted mean sum_i w_i L_i / sum_i w_i
(scikit-learn's and PyTorch's normalisation): a weight of 2 is the same loss as the
row repeated, in the batch that holds it.

The rules take the array's own namespace (arrays.namespace: numpy itself for NumPy arrays,
same bits): on another Array API library ``out`` is scratch they may ignore, or, for dL/da,
the buffer the fresh result is written into (arrays.put).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .activations import Activation, log_softmax, sigmoid, softplus
from .arrays import astype, namespace, put
from .errors import ConfigError, DataError

Array = np.ndarray


def _clip_probability(a: Array, out: Array | None = None) -> Array:
    """Keep a inside (0, 1) by the dtype's resolution so log(a), log(1 - a) stay finite."""
    if isinstance(a, np.ndarray):
        eps = np.finfo(a.dtype).eps
        return np.clip(a, eps, 1 - eps, out=out)
    xp = namespace(a)
    eps = float(xp.finfo(a.dtype).eps)
    return put(xp.clip(a, eps, 1 - eps), out)


def _rowdot(y: Array, v: Array, scratch: Array | None = None) -> Array:
    """sum_j y_j v_j for every row (the product goes into ``scratch`` when given)."""
    if isinstance(v, np.ndarray):
        return np.multiply(y, v, out=scratch).sum(axis=1)
    return namespace(v).sum(y * v, axis=1)


# Per-sample values return shape (m,); ``out`` (m, n) is scratch they may use, and the
# dL/da functions write their result into it. Without ``out`` they allocate.

# --- mse: L = 1/2 sum_j (a_j - y_j)^2;  dL/da = a - y
def mse(a: Array, y: Array, out: Array | None = None) -> Array:
    if not isinstance(a, np.ndarray):
        return 0.5 * namespace(a).sum((a - y) * (a - y), axis=1)
    d = np.subtract(a, y, out=out)
    np.square(d, out=d)
    return 0.5 * d.sum(axis=1)


def mse_dL_da(a: Array, y: Array, out: Array | None = None) -> Array:
    return np.subtract(a, y, out=out) if isinstance(a, np.ndarray) else put(a - y, out)


def mse_total_loop(z, a, y, weights):
    """sum_r w_r L_r of mse (w_r = 1 when weights is empty), summed in float64: the compiled step's value."""
    total = 0.0
    for r in range(a.shape[0]):
        per_sample = 0.0
        for j in range(a.shape[1]):
            per_sample += 0.5 * (a[r, j] - y[r, j]) ** 2
        total += per_sample * weights[r] if weights.size else per_sample
    return total


def difference_loop(a, y, out):
    """out = a - y: mse's dL/da, and the shortcut pairs' delta^L before batch_scale."""
    a, y, out = a.reshape(-1), y.reshape(-1), out.reshape(-1)
    for i in range(out.size):
        out[i] = a[i] - y[i]


# --- cross_entropy: L = -sum_j y_j log a_j;  dL/da = -y / a
def cross_entropy(a: Array, y: Array, out: Array | None = None) -> Array:
    if not isinstance(a, np.ndarray):
        return -_rowdot(y, namespace(a).log(_clip_probability(a)))
    p = _clip_probability(a, out=out)
    np.log(p, out=p)
    return -_rowdot(y, p, out)


def cross_entropy_dL_da(a: Array, y: Array, out: Array | None = None) -> Array:
    if not isinstance(a, np.ndarray):
        return put(-(y / _clip_probability(a)), out)
    p = _clip_probability(a, out=out)
    np.divide(y, p, out=p)
    return np.negative(p, out=p)


def cross_entropy_from_z(z: Array, y: Array, out: Array | None = None) -> Array:
    """-sum_j y_j log softmax(z)_j = sum(y) logsumexp(z) - sum_j y_j z_j, stably."""
    if not isinstance(z, np.ndarray):
        xp = namespace(z)
        z_max = xp.max(z, axis=1, keepdims=True)
        lse = z_max[:, 0] + xp.log(xp.sum(xp.exp(z - z_max), axis=1))
        return xp.sum(y, axis=1) * lse - _rowdot(y, z)
    y_dot_z = _rowdot(y, z, out)  # before ``out`` is reused below
    z_max = z.max(axis=1, keepdims=True)
    e = np.subtract(z, z_max, out=out)
    np.exp(e, out=e)
    lse = z_max[:, 0] + np.log(e.sum(axis=1))
    return y.sum(axis=1) * lse - y_dot_z


def cross_entropy_total_loop(z, a, y, weights):
    """sum_r w_r L_r with L_r = -sum_j y_rj log a_rj, a = softmax(z) (w_r = 1 when weights is empty).

    a^L comes from the forward pass, so a row costs a log per nonzero target (one, for
    one-hot labels) instead of an exp per output. A row where such an a_rj is below the
    smallest normal number (it underflowed) or NaN takes cross_entropy_from_z's
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
        total += per_sample * weights[r] if weights.size else per_sample
    return total


# --- binary_cross_entropy: L = -sum_j [y log a + (1-y) log(1-a)];  dL/da = (a-y) / (a(1-a))
def binary_cross_entropy(a: Array, y: Array, out: Array | None = None) -> Array:
    p, xp = _clip_probability(a), namespace(a)
    return -xp.sum(y * xp.log(p) + (1 - y) * xp.log1p(-p), axis=1)


def binary_cross_entropy_dL_da(a: Array, y: Array, out: Array | None = None) -> Array:
    p = _clip_probability(a)
    return put((p - y) / (p * (1 - p)), out)


def binary_cross_entropy_from_z(z: Array, y: Array, out: Array | None = None) -> Array:
    """With a = sigmoid(z): -y log a - (1-y) log(1-a) = softplus(z) - y z, stably."""
    if not isinstance(z, np.ndarray):
        return namespace(z).sum(softplus(z), axis=1) - _rowdot(y, z)
    y_dot_z = _rowdot(y, z, out)
    return softplus(z, out=out).sum(axis=1) - y_dot_z


def binary_cross_entropy_total_loop(z, a, y, weights):
    """sum_r w_r L_r with L_r = sum_j softplus(z_rj) - y_rj z_rj (after sigmoid, from z, softplus as NumPy's
    logaddexp(z, 0)), summed in float64."""
    total = 0.0
    for r in range(z.shape[0]):
        per_sample = 0.0
        for j in range(z.shape[1]):
            v = z[r, j]
            softplus_v = v + np.log1p(np.exp(-v)) if v > 0 else np.log1p(np.exp(v))
            per_sample += softplus_v - y[r, j] * v
        total += per_sample * weights[r] if weights.size else per_sample
    return total


# --- the crossed pairs, from z. cross_entropy after sigmoid: log a = -softplus(-z)
def cross_entropy_sigmoid_from_z(z: Array, y: Array) -> Array:
    """-sum_j y_j log sigmoid(z_j) = sum_j y_j softplus(-z_j), finite for any z."""
    return _rowdot(y, softplus(-z))


def cross_entropy_sigmoid_delta(z: Array, y: Array) -> Array:
    """dL/dz = -y / a ⊙ a (1 - a) = -y ⊙ sigmoid(-z): (1 - a) without the cancellation of 1 - a."""
    return -y * sigmoid(-z)


def _softmax_logs(z: Array) -> tuple[Array, Array, Array]:
    """log a, log(1 - a) for a = softmax(z), and each row's argmax, stably.

    For j off the row's top, a_j <= 1/2 and log1p(-a_j) is exact; at the top,
    1 - a_top = sum of the other a_k, taken by a log-sum-exp over the other logits.
    """
    if namespace(z) is not np:
        return _softmax_logs_xp(z)
    rows, top = np.arange(z.shape[0]), z.argmax(axis=1)
    log_a = log_softmax(z)
    with np.errstate(divide="ignore"):
        log_1ma = np.log1p(-np.exp(log_a))
    others = z - z[rows, top][:, None]
    others[rows, top] = -np.inf
    second = others.max(axis=1)
    log_others = second + np.log(np.exp(others - second[:, None]).sum(axis=1))
    log_1ma[rows, top] = log_others + log_a[rows, top]  # log sum_{k != top} e^{z_k - z_top} + z_top - lse
    return log_a, log_1ma, top


def binary_cross_entropy_softmax_from_z(z: Array, y: Array) -> Array:
    """-sum_j [y_j log a_j + (1 - y_j) log(1 - a_j)] for a = softmax(z), from z."""
    log_a, log_1ma, _ = _softmax_logs(z)
    return -namespace(z).sum(y * log_a + (1 - y) * log_1ma, axis=1)


def binary_cross_entropy_softmax_delta(z: Array, y: Array) -> Array:
    """dL/dz for binary_cross_entropy after softmax, in bounded terms.

    With r_k = a_k / (1 - a_k) and R = sum_j (1 - y_j) r_j, the Jacobian product is
    delta_k = a_k sum(y) - y_k + (1 - y_k) r_k - a_k R. Only r_top can be huge; its
    terms combine to (1 - y_top) a_top at the top and to a_top (1 - y_top) a_k / (1 - a_top)
    elsewhere, both at most 1, so nothing cancels.
    """
    log_a, log_1ma, top = _softmax_logs(z)
    if namespace(z) is not np:
        return _bce_softmax_delta_xp(log_a, log_1ma, top, y)
    rows = np.arange(z.shape[0])
    a, y_top, a_top = np.exp(log_a), y[rows, top], np.exp(log_a[rows, top])
    with np.errstate(over="ignore", invalid="ignore"):  # r_top may overflow (and 0 * inf): replaced next
        u = (1 - y) * np.exp(log_a - log_1ma)  # (1 - y_k) r_k
        t = np.exp(log_a - log_1ma[rows, top][:, None])  # a_k / (1 - a_top)
    u[rows, top] = t[rows, top] = 0
    R_rest = u.sum(axis=1)  # R without the top's term
    y_sum = y.sum(axis=1)
    delta = a * (y_sum - R_rest)[:, None] - y + u - (a_top * (1 - y_top))[:, None] * t
    delta[rows, top] = a_top * (y_sum - R_rest) - y_top + (1 - y_top) * a_top
    return delta


def _top_mask(top: Array, n: int) -> Array:
    """(m, n) booleans, True at each row's argmax ``top`` (the standard has no integer-array assignment)."""
    xp = namespace(top)
    return xp.arange(n, device=top.device)[None, :] == top[:, None]


def _softmax_logs_xp(z: Array) -> tuple[Array, Array, Array]:
    """_softmax_logs on an Array API namespace: the same terms, the top entries chosen by a mask."""
    xp = namespace(z)
    top = xp.argmax(z, axis=1)
    is_top = _top_mask(top, z.shape[1])
    log_a = log_softmax(z)
    with np.errstate(divide="ignore"):  # (array_api_strict computes with NumPy)
        log_1ma = xp.log1p(-xp.exp(log_a))
    others = xp.where(is_top, -xp.inf, z - xp.take_along_axis(z, top[:, None], axis=1))
    second = xp.max(others, axis=1, keepdims=True)
    log_others = second + xp.log(xp.sum(xp.exp(others - second), axis=1, keepdims=True))
    return log_a, xp.where(is_top, log_others + log_a, log_1ma), top


def _bce_softmax_delta_xp(log_a: Array, log_1ma: Array, top: Array, y: Array) -> Array:
    """binary_cross_entropy_softmax_delta's terms on an Array API namespace (the top entries by a mask)."""
    xp = namespace(log_a)
    is_top = _top_mask(top, log_a.shape[1])

    def at_top(x):
        return xp.sum(xp.where(is_top, x, 0.0), axis=1)

    a, y_top, a_top = xp.exp(log_a), at_top(y), xp.exp(at_top(log_a))
    with np.errstate(over="ignore", invalid="ignore"):  # r_top may overflow: replaced next
        u = xp.where(is_top, 0.0, (1 - y) * xp.exp(log_a - log_1ma))
        t = xp.where(is_top, 0.0, xp.exp(log_a - at_top(log_1ma)[:, None]))
    R_rest, y_sum = xp.sum(u, axis=1), xp.sum(y, axis=1)
    delta = a * (y_sum - R_rest)[:, None] - y + u - (a_top * (1 - y_top))[:, None] * t
    top_value = a_top * (y_sum - R_rest) - y_top + (1 - y_top) * a_top
    return xp.where(is_top, top_value[:, None], delta)


@dataclass(frozen=True)
class FromZ:
    """A loss after one output activation, computed from z^L: per-sample value and dL/dz^L."""

    value: Callable[[Array, Array], Array]
    delta: Callable[[Array, Array], Array]


@dataclass(frozen=True)
class LossKernel:
    """A loss's compiled form: loops in plain Python that numba compiles (the compiled training step).

    ``total(z, a, y, weights)``: sum_r w_r L_r in float64 (weights empty: w_r = 1; an array always, so that
    numba compiles each kernel once), for the pairs the compiled
    step takes: the shortcut pair, and with ``dL_da`` any output activation with an element-wise sigma'.
    ``dL_da(a, y, out)``: the per-sample dL/da^L into out (m, n_L), before batch_scale; None: the loss runs
    compiled only after its shortcut activation (delta^L = a^L - y by difference_loop).
    """

    total: Callable
    dL_da: Callable | None = None


@dataclass(frozen=True)
class Loss:
    """A named loss: per-sample value and dL/da, with an optional cancelling pair.

    ``shortcut`` names the output activation whose sigma' cancels (delta = a - y);
    ``from_z`` then computes the per-sample value stably from z. ``crossed`` holds, per
    output activation that does not cancel but saturates, the value and delta^L from z.
    ``needs_probabilities`` refuses output activations whose values leave (0, 1), and
    targets outside [0, 1]; ``rows_sum_to_one``: the shortcut a - y is the gradient only
    for target rows that sum to 1 (cross_entropy after softmax), so others are refused.
    """

    name: str
    per_sample: Callable[..., Array]  # (a, y[, out])
    per_sample_dL_da: Callable[..., Array]  # (a, y[, out])
    shortcut: str | None = None
    from_z: Callable[..., Array] | None = None  # (z, y[, out])
    needs_probabilities: bool = False
    classification: bool = False
    shortcut_total: Callable | None = None  # (ops, z, a, y, w, scratch) -> sum_i w_i L_i for the shortcut pair
    crossed: dict = field(default_factory=dict, hash=False, compare=False)
    rows_sum_to_one: bool = False
    kernel: LossKernel | None = None  # the compiled form (None: the readable step computes this loss)

    def cancels_with(self, act: Activation) -> bool:
        """True when delta^L = a^L - y exactly (the sigma' factor cancels)."""
        return act.name == self.shortcut

    def value(self, z: Array, a: Array, y: Array, act: Activation, weights: Array | None = None, *,
              scratch: Array | None = None, ops=None) -> float:
        """L averaged over the batch: sum_i w_i L_i / sum_i w_i (the plain mean without weights).

        ``scratch``, an (m, n_L) array, saves the temporaries (training passes one); with a
        backend ``ops`` (training's), the shortcut pair's sum is the backend's.
        """
        if ops is not None and self.shortcut_total is not None and self.cancels_with(act):
            return self.shortcut_total(ops, z, a, y, weights, scratch) * mean_factor(weights, z.shape[0])
        if self.cancels_with(act):
            assert self.from_z is not None, "a loss with a shortcut pair computes its value from z"
            per = self.from_z(z, y, scratch)
        elif act.name in self.crossed:
            per = self.crossed[act.name].value(z, y)
        else:
            per = self.per_sample(a, y, scratch)
        if weights is not None:
            total = np.dot(per, weights) if isinstance(per, np.ndarray) else namespace(per).vecdot(per, weights)
            return float(total) * mean_factor(weights, z.shape[0])
        return float(per.mean() if isinstance(per, np.ndarray) else namespace(per).mean(per))

    def delta_from_z(self, act: Activation, z: Array, y: Array, weights: Array | None) -> Array | None:
        """delta^L for a crossed pair, computed from z (batch-scaled), or None for other pairs."""
        pair = self.crossed.get(act.name)
        return None if pair is None else batch_scale(pair.delta(z, y), weights)

    def check_targets(self, Y: Array, act: Activation) -> None:
        """Refuse encoded targets (m, n_L) this loss cannot stand behind, naming the first bad row."""
        if not self.needs_probabilities:
            return
        outside = (Y < 0) | (Y > 1)
        if outside.any():
            row = int(np.argmax(outside.any(axis=1)))
            raise DataError(f"loss {self.name!r} needs targets in [0, 1]; row {row} of y is {Y[row].tolist()}")
        if self.rows_sum_to_one and self.cancels_with(act):
            sums = Y.sum(axis=1, dtype=np.float64)
            off = np.abs(sums - 1) > 4 * Y.shape[1] * np.finfo(Y.dtype).eps
            if off.any():
                row = int(np.argmax(off))
                raise DataError(
                    f"cross_entropy after softmax needs each target row to sum to 1 (one class, or soft "
                    f"labels that are a distribution); row {row} of y sums to {sums[row]:.6g}. For several "
                    f"labels per sample use sigmoid outputs with binary_cross_entropy; to leave a row out "
                    f"give it sample_weight 0")

    def dL_da(self, a: Array, y: Array, weights: Array | None = None, out: Array | None = None) -> Array:
        """dL/da^L of the batch mean, shape (m, n_L): carries 1/m or w_i / sum(w) (into ``out`` if given)."""
        return batch_scale(self.per_sample_dL_da(a, y, out), weights)

    def check_output(self, act: Activation) -> None:
        """Refuse an output activation this loss cannot take (log of a non-probability)."""
        lo, hi = act.output_range
        if self.needs_probabilities and not (lo >= 0 and hi <= 1):
            raise ConfigError(
                f"loss {self.name!r} needs outputs in (0, 1), but the output activation "
                f"{act.name!r} gives values in ({lo}, {hi}); use softmax or sigmoid, or loss='mse'"
            )


def shortcut_delta(a: Array, y: Array, weights: Array | None, out: Array | None = None, ops=None) -> Array:
    """delta^L = (a^L - y) / m, or (a^L - y) w_i / sum(w), into ``out`` if given: the
    shortcut's output error, where sigma' cancels against dL/da^L (by ``ops`` when given)."""
    if weights is None and out is not None and ops is not None:
        return ops.scaled_difference(a, y, 1 / a.shape[0], out)
    return batch_scale(np.subtract(a, y, out=out) if isinstance(a, np.ndarray) else put(a - y, out), weights)


def softmax_cross_entropy_total(ops, z: Array, a: Array, y: Array, weights: Array | None, scratch) -> float:
    """sum_i w_i L_i of cross_entropy after softmax: by its kernel where the backend compiles it (one pass over
    a^L), else from z in NumPy."""
    kernel = ops.kernel(cross_entropy_total_loop)
    if kernel is not None:
        weights = np.empty(0, z.dtype) if weights is None else weights.astype(z.dtype, copy=False)
        return float(kernel(z, a, y, weights))
    per = cross_entropy_from_z(z, y, scratch)
    if isinstance(per, np.ndarray):
        return float(per.sum() if weights is None else np.dot(per, weights))
    xp = namespace(per)  # an Array API library's arrays (ArrayAPIOps)
    return float(xp.sum(per) if weights is None else xp.vecdot(per, weights))


def batch_scale(g: Array, weights: Array | None) -> Array:
    """g_i / m, or g_i w_i / sum(w), in place: the per-sample derivative scaled for the batch mean."""
    factor = mean_factor(weights, g.shape[0])
    if weights is None:
        g *= factor
    else:
        g *= astype(weights[:, None] * factor, g.dtype)
    return g


def batch_scale_loop(g, weights, factor):
    """g_i *= factor (weights empty) or g_i *= w_i factor, the scalar cast to g's dtype: batch_scale's kernel."""
    if not weights.size:
        scale = g.dtype.type(factor)
        for r in range(g.shape[0]):
            for j in range(g.shape[1]):
                g[r, j] *= scale
        return
    for r in range(g.shape[0]):
        scale = g.dtype.type(weights[r] * factor)
        for j in range(g.shape[1]):
            g[r, j] *= scale


def mean_factor(weights: Array | None, m: int) -> float:
    """1 / m, or 1 / sum(w) for weights (0 when every weight is 0: such a batch contributes nothing)."""
    if weights is None:
        return 1 / m
    total = float(namespace(weights).sum(weights))
    return 1 / total if total > 0 else 0.0


LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in [
        Loss("mse", mse, mse_dL_da, kernel=LossKernel(mse_total_loop, difference_loop)),
        Loss(
            "cross_entropy", cross_entropy, cross_entropy_dL_da, shortcut="softmax",
            from_z=cross_entropy_from_z, needs_probabilities=True, classification=True,
            shortcut_total=softmax_cross_entropy_total, rows_sum_to_one=True,
            crossed={"sigmoid": FromZ(cross_entropy_sigmoid_from_z, cross_entropy_sigmoid_delta)},
            kernel=LossKernel(cross_entropy_total_loop),
        ),
        Loss(
            "binary_cross_entropy", binary_cross_entropy, binary_cross_entropy_dL_da,
            shortcut="sigmoid", from_z=binary_cross_entropy_from_z,
            needs_probabilities=True, classification=True,
            crossed={"softmax": FromZ(binary_cross_entropy_softmax_from_z, binary_cross_entropy_softmax_delta)},
            kernel=LossKernel(binary_cross_entropy_total_loop),
        ),
    ]
}


def get_loss(name: str | Loss) -> Loss:
    """Look a loss up by name (or pass a Loss through)."""
    if isinstance(name, Loss):
        return name
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(LOSSES))
        raise ConfigError(f"unknown loss {name!r}; known: {known}") from None
