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

import numpy as np

from ..errors import ConfigError, ShapeError
from ..gradcheck import central_difference, float64_copy
from ..layers import Dense
from .document import MAX_NEURONS
from .explanation import ChainRule, Explanation, HiddenSum, LayerStep, OutputStep


def explain(net, x, y, *, weight: tuple[int, int, int] | None = None, neuron: int = 1,
            eps: float = 1e-6, feature_names: list | None = None, raw: list | None = None) -> Explanation:
    """The notes' derivation for one sample ``x`` (n_0,) with target ``y`` (a label, or a target row).

    ``weight`` = (l, i, j), 1-based as in the notes: the weight whose chain rule is written
    out; None: w_11^1 when its product says something, else the drawn weight of layer 1 with
    the largest |dW| (an input that is 0, or a neuron that is off, makes every factor 0).
    ``neuron`` is the j shown in equation (2) for each hidden layer. ``feature_names``
    (default: the model's, when it has them) name the inputs; a classifier's y is named by
    its class. ``raw``: the sample as the model's user gave it, (name, value) pairs, shown beside a^0 (which
    a model's preprocessing stages made of it).
    """
    if not all(type(layer) is Dense for layer in net.layers):
        kinds = sorted({type(layer).__name__ for layer in net.layers if type(layer) is not Dense})
        raise ConfigError(f"explain shows the notes' equations for Dense layers; this network has {', '.join(kinds)}")
    names = feature_names if feature_names is not None else net.pipeline.feature_names
    net = float64_copy(net)
    X = np.asarray(x, dtype=np.float64).reshape(1, -1)
    trace = net.forward(X)
    y_row = np.asarray(y).reshape(1, -1) if np.ndim(y) >= 1 and np.size(y) > 1 else np.asarray(y).reshape(1)
    target = net.targets(y_row, 1)
    grads = net.backward(trace, y_row)
    L = net.L
    layers = [_layer_step(net, trace, grads, l) for l in range(1, L + 1)]
    result = Explanation([net.layers[0].n_in] + [layer.n_out for layer in net.layers], net.loss_fn.name,
                         X[0], target[0], net.loss(X, y_row), layers, _output_step(net, trace, target, grads),
                         feature_names=[str(n) for n in names] if names is not None and len(names) == X.shape[1]
                         else None, target_name=_target_name(net, target[0]), raw=raw, preprocessing=_stages(net),
                         output_names=_output_names(net), folds=net.pipeline.source.get("folds"))
    widths = [net.layers[l - 1].n_out for l in range(1, L)]
    if widths and not (isinstance(neuron, int) and 1 <= neuron <= min(widths)):
        raise ConfigError(f"neuron must be in 1..{min(widths)} (neurons are numbered from 1; the hidden layers "
                          f"have {', '.join(map(str, widths))}), got {neuron!r}")
    result.hidden = [_hidden_sum(result, l, neuron) for l in range(L - 1, 0, -1)]
    if weight is None:
        weight, result.weight_chosen = _informative_weight(result)
    result.chain = _chain_rule(net, result, X, y_row, weight, eps)
    result.chains = {(s.l, i + 1, j + 1): _chain_rule(net, result, X, y_row, (s.l, i + 1, j + 1), eps)
                     for s in layers for i in range(min(s.W.shape[0], MAX_NEURONS))
                     for j in range(min(s.W.shape[1], MAX_NEURONS))}  # every weight the page draws
    return result


def _output_names(net) -> list | None:
    """A classifier's class per output neuron (its class names where the model has them), else None."""
    if not net.is_classifier or net.classes is None:
        return None
    names = net.class_names()
    if net.layers[-1].n_out == 1:
        return [f"p({names[-1]})"]
    return names if len(names) == net.layers[-1].n_out else None


def _stages(net) -> str:
    """The model's preprocessing in words, for the sentence that says what made a^0 of the sample."""
    if net.pipeline.piecewise is None:
        return "its column encoding and scaling"
    return "its column encoding, scaling, and piecewise-linear encoding of each number into ramps over quantile bins"


def _target_name(net, y: np.ndarray) -> str | None:
    """What a classifier's target row stands for: its class (and output neuron)."""
    if not net.is_classifier or net.classes is None:
        return None
    k = int(np.argmax(y)) if y.size > 1 else int(y[0] > 0.5)
    if y.size > 1 and not np.array_equal(y, np.eye(y.size)[k]):
        return None  # soft targets: no one class
    label = net.classes[k].item() if hasattr(net.classes[k], "item") else net.classes[k]
    return f"class {label!r}" + (f" (output neuron {k + 1})" if y.size > 1 else "")


def _informative_weight(result: Explanation) -> tuple[tuple[int, int, int], str | None]:
    """w_11^1, unless its chain rule is (nearly) 0; then the drawn weight of layer 1 with the largest |dW|."""
    dW = np.abs(result.layers[0].dW)
    drawn = dW[:MAX_NEURONS, :MAX_NEURONS]
    if drawn.max() == 0 or dW[0, 0] >= 0.1 * drawn.max():
        return (1, 1, 1), None
    i, j = np.unravel_index(int(np.argmax(drawn)), drawn.shape)
    why = ("an input that is 0" if result.layers[0].a_prev[0] == 0 else "a neuron that is off"
           if result.layers[0].delta[0] == 0 else "a small product")
    return (1, int(i) + 1, int(j) + 1), (
        f"$w_{{11}}^{{1}}$ has {why} in its chain rule here, so its product says little; shown instead: "
        f"$w_{{{i + 1}{j + 1}}}^{{1}}$, the drawn weight of layer 1 with the largest $|dW|$ (choose one with "
        "weight=(l, i, j), or --weight l,i,j).")


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
    numeric = central_difference(net, X, y, W, (i - 1) * W.shape[1] + (j - 1), eps=eps)
    return ChainRule(l, i, j, terms, sum_k, sigma_prime, delta_j, a_i, product, float(step.dW[i - 1, j - 1]),
                     float(numeric), eps)
