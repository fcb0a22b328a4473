"""The notes' derivation computed on a real network, for one sample: every number, structured.

``explain(net, x, y)`` runs the forward and backward pass on a float64 copy of
the network and records, in the notes' notation and numbering (layers 1..L,
neurons and weights indexed from 1 in what is shown):

* the forward pass z^l, a^l;
* equation (1) with its factors (dL/da^L and sigma'(z^L), or the shortcut a^L - y);
* equation (2) for every hidden layer, the sum over k written out for one neuron;
* equations (3) and (4), dW^l = a^{l-1} (delta^l)^T and db^l = delta^l;
* for one weight w_ij^l, the chain-rule product term by term, beside backprop's
  dW^l[i, j] and a central finite difference of the loss.

The renderers (text, Markdown, HTML) only format these numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError, ShapeError
from ..gradcheck import central_difference, float64_copy
from ..layers import Dense


@dataclass
class LayerStep:
    """Layer l for the sample: vectors have shape (n_l,), W and dW (n_{l-1}, n_l)."""

    l: int
    activation: str
    a_prev: np.ndarray
    W: np.ndarray
    b: np.ndarray
    z: np.ndarray
    a: np.ndarray
    sigma_prime: np.ndarray | None  # None where sigma' is a Jacobian (softmax)
    delta: np.ndarray
    dW: np.ndarray
    db: np.ndarray


@dataclass
class OutputStep:
    """Equation (1): delta^L = dL/da^L ⊙ sigma'(z^L), or the shortcut a^L - y."""

    loss: str
    shortcut: bool
    y: np.ndarray
    dL_da: np.ndarray
    sigma_prime: np.ndarray | None
    delta: np.ndarray


@dataclass
class HiddenSum:
    """Equation (2) for neuron j of layer l: terms (k, w_jk^{l+1}, delta_k^{l+1}, product)."""

    l: int
    j: int
    terms: list
    total: float
    sigma_prime: float | None
    delta: float


@dataclass
class ChainRule:
    """dL/dw_ij^l as the notes' product, term by term, with backprop and a finite difference.

    Hidden layer: sum_k delta_k^{l+1} w_jk^{l+1} sigma'(z_j^l) a_i^{l-1} (terms: k, delta, w, product).
    Output layer: delta_j^L a_i^{L-1}. Indices l, i, j are the notes' (1-based).
    """

    l: int
    i: int
    j: int
    terms: list
    sum_k: float | None
    sigma_prime: float | None
    delta: float
    a_i: float
    product: float
    backprop: float
    finite_difference: float
    eps: float

    @property
    def relative_difference(self) -> float:
        denom = max(abs(self.product), abs(self.finite_difference), np.finfo(float).tiny)
        return abs(self.product - self.finite_difference) / denom


@dataclass
class Explanation:
    sizes: list
    loss_name: str
    x: np.ndarray
    y: np.ndarray
    loss: float
    layers: list  # LayerStep for l = 1..L at index l - 1
    output: OutputStep
    hidden: list = field(default_factory=list)  # HiddenSum for l = L-1..1
    chain: ChainRule | None = None

    @property
    def L(self) -> int:
        return len(self.layers)


def explain(net, x, y, weight: tuple[int, int, int] | None = None, neuron: int = 1,
            eps: float = 1e-6) -> Explanation:
    """The notes' derivation for one sample ``x`` (n_0,) with target ``y``.

    ``weight`` = (l, i, j), 1-based as in the notes (default (1, 1, 1));
    ``neuron`` is the j shown in equation (2) for each hidden layer.
    """
    if not all(type(layer) is Dense for layer in net.layers):
        kinds = sorted({type(layer).__name__ for layer in net.layers if type(layer) is not Dense})
        raise ConfigError(f"explain shows the notes' equations for Dense layers; this network has {', '.join(kinds)}")
    net = float64_copy(net)
    X = np.asarray(x, dtype=np.float64).reshape(1, -1)
    trace = net.forward(X)
    y_row = np.asarray(y).reshape(1, -1) if np.ndim(y) >= 1 and np.size(y) > 1 else np.asarray(y).reshape(1)
    target = net.targets(y_row, 1)
    grads = net.backward(trace, y_row)
    L = net.L
    layers = [_layer_step(net, trace, grads, l) for l in range(1, L + 1)]
    result = Explanation([net.layers[0].n_in] + [layer.n_out for layer in net.layers], net.loss_fn.name,
                         X[0], target[0], net.loss(X, y_row), layers, _output_step(net, trace, target, grads))
    widths = [net.layers[l - 1].n_out for l in range(1, L)]
    if widths and not (isinstance(neuron, int) and 1 <= neuron <= min(widths)):
        raise ConfigError(f"neuron must be in 1..{min(widths)} (neurons are numbered from 1; the hidden layers "
                          f"have {', '.join(map(str, widths))}), got {neuron!r}")
    result.hidden = [_hidden_sum(result, l, neuron) for l in range(L - 1, 0, -1)]
    result.chain = _chain_rule(net, result, X, y_row, weight or (1, 1, 1), eps)
    return result


def _layer_step(net, trace, grads, l: int) -> LayerStep:
    act = net.layers[l - 1].activation
    z = trace.z[l][0]
    sigma_prime = None if act.sigma_prime is None else act.sigma_prime(trace.z[l])[0]
    return LayerStep(l, act.name, trace.a[l - 1][0], net.layers[l - 1].W, net.layers[l - 1].b, z, trace.a[l][0],
                     sigma_prime, grads.delta[l][0], grads.dW[l], grads.db[l])


def _output_step(net, trace, target, grads) -> OutputStep:
    L = net.L
    act = net.layers[-1].activation
    shortcut = net.loss_fn.cancels_with(act)
    a_L = trace.a[L]
    dL_da = (a_L - target)[0] if shortcut else net.loss_fn.dL_da(a_L, target)[0]
    sigma_prime = None if shortcut or act.sigma_prime is None else act.sigma_prime(trace.z[L])[0]
    return OutputStep(net.loss_fn.name, shortcut, target[0], dL_da, sigma_prime, grads.delta[L][0])


def _hidden_sum(result: Explanation, l: int, j: int) -> HiddenSum:
    """delta_j^l = sum_k w_jk^{l+1} delta_k^{l+1} * sigma'(z_j^l), j 1-based."""
    upper, here = result.layers[l], result.layers[l - 1]
    terms = [(k + 1, float(upper.W[j - 1, k]), float(upper.delta[k]), float(upper.W[j - 1, k] * upper.delta[k]))
             for k in range(upper.W.shape[1])]
    total = float(sum(t[3] for t in terms))
    sigma_prime = None if here.sigma_prime is None else float(here.sigma_prime[j - 1])
    return HiddenSum(l, j, terms, total, sigma_prime, float(here.delta[j - 1]))


def _chain_rule(net, result: Explanation, X, y, weight, eps: float) -> ChainRule:
    l, i, j = (int(v) for v in weight)
    if not 1 <= l <= result.L:
        raise ConfigError(f"--weight layer must be in 1..{result.L}, got {l}")
    W = net.layers[l - 1].W
    if not (1 <= i <= W.shape[0] and 1 <= j <= W.shape[1]):
        raise ShapeError(f"weight w_ij^{l} needs 1 <= i <= {W.shape[0]} and 1 <= j <= {W.shape[1]}, got i={i}, j={j}")
    step = result.layers[l - 1]
    a_i, delta_j = float(step.a_prev[i - 1]), float(step.delta[j - 1])
    terms, sum_k, sigma_prime = [], None, None
    if l < result.L and step.sigma_prime is not None:
        upper = result.layers[l]
        terms = [(k + 1, float(upper.delta[k]), float(upper.W[j - 1, k]), float(upper.delta[k] * upper.W[j - 1, k]))
                 for k in range(upper.W.shape[1])]
        sum_k = float(sum(t[3] for t in terms))
        sigma_prime = float(step.sigma_prime[j - 1])
        product = sum_k * sigma_prime * a_i
    else:
        product = delta_j * a_i
    numeric = central_difference(net, X, y, W, (i - 1) * W.shape[1] + (j - 1), eps, None)
    return ChainRule(l, i, j, terms, sum_k, sigma_prime, delta_j, a_i, product, float(step.dW[i - 1, j - 1]),
                     float(numeric), eps)
