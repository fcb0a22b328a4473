"""PyTorch's autograd as an oracle: random architectures, every activation and loss.

Tolerance: loss, dW^l and db^l agree in float64 to a relative 1e-9, measured per
array as max|ours - torch| <= 1e-9 * max|torch| + 1e-15 (the floor is float64
rounding on O(1) values, for arrays that are exactly zero in one and 1e-17 in
the other, e.g. behind dead relu units).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import deltaprop as dp
from helpers import BUILTIN_ACTIVATIONS, OUTPUTS_FOR_LOSS, make_net, targets_for

torch = pytest.importorskip("torch", reason="torch is the oracle; CI installs torch==2.13.0")
F = torch.nn.functional

TORCH_ACT = {
    "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
    "leaky_relu": lambda z: F.leaky_relu(z, dp.activations.LEAKY_ALPHA), "elu": F.elu,
    "softplus": F.softplus, "identity": lambda z: z, "softmax": lambda z: torch.softmax(z, dim=1), "mish": F.mish,
}


def torch_loss(loss, output, z, a, y):
    if loss == "mse":
        per = 0.5 * ((a - y) ** 2).sum(1)
    elif loss == "cross_entropy":
        per = -(y * (F.log_softmax(z, dim=1) if output == "softmax" else torch.log(a))).sum(1)
    elif output == "sigmoid":
        per = F.binary_cross_entropy_with_logits(z, y, reduction="none").sum(1)
    else:
        per = -(y * torch.log(a) + (1 - y) * torch.log1p(-a)).sum(1)
    return per.mean()


def close(ours, theirs):
    theirs = np.asarray(theirs)
    return np.abs(ours - theirs).max() <= 1e-9 * np.abs(theirs).max() + 1e-15


architectures = st.integers(1, 4).flatmap(
    lambda n_layers: st.tuples(
        st.lists(st.integers(1, 16), min_size=n_layers + 1, max_size=n_layers + 1),
        st.lists(st.sampled_from(BUILTIN_ACTIVATIONS), min_size=n_layers - 1, max_size=n_layers - 1),
    )
)


@pytest.mark.filterwarnings("ignore:layer .* hidden layer with softmax")  # on purpose: its Jacobian sigma'
@settings(max_examples=300, deadline=None)
@given(arch=architectures, loss=st.sampled_from(sorted(OUTPUTS_FOR_LOSS)), data=st.data(),
       m=st.integers(1, 9), seed=st.integers(0, 2**31 - 1))
def test_matches_torch_autograd(arch, loss, data, m, seed):
    sizes, hidden = arch
    output = data.draw(st.sampled_from(OUTPUTS_FOR_LOSS[loss]), label="output")
    if output == "softmax":
        sizes = sizes[:-1] + [max(sizes[-1], 2)]  # a one-neuron softmax is refused (constant 1)
    net = make_net(sizes, hidden, output, loss, seed=seed)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, sizes[0]))
    y = targets_for(loss, m, sizes[-1], rng)
    grads = net.backward(net.forward(X), y)

    params = [(torch.tensor(layer.W, requires_grad=True), torch.tensor(layer.b, requires_grad=True))
              for layer in net.layers]
    a = torch.tensor(X)
    z = None
    for layer, (W, b) in zip(net.layers, params, strict=True):
        z = a @ W + b
        a = TORCH_ACT[layer.activation.name](z)
    value = torch_loss(loss, output, z, a, torch.tensor(net.targets(y, m)))
    value.backward()

    assert close(net.loss(X, y), value.item())
    for l, (W, b) in enumerate(params, start=1):
        assert close(grads.dW[l], W.grad.numpy()), f"dW^{l}"
        assert close(grads.db[l], b.grad.numpy()), f"db^{l}"


# --- the crossed pairs, against PyTorch's autograd on log-space definitions (float64) ---------------------
def _log_one_minus_softmax(z):
    """log(1 - a_j) = logsumexp_{k != j} z_k - logsumexp_k z_k, each j by its own masked log-sum-exp
    (O(n^2), exact where 1 - a_j rounds to 0 or a_j to 1)."""
    n = z.shape[1]
    others = z.unsqueeze(1).expand(-1, n, -1).masked_fill(torch.eye(n, dtype=torch.bool), -torch.inf)
    return torch.logsumexp(others, 2) - torch.logsumexp(z, 1, keepdim=True)


def _torch_oracle(output, loss, z, y):
    """Per-sample loss and dL/dz (summed loss) by autograd from log a, never from a clipped a."""
    zt, yt = torch.tensor(z, requires_grad=True), torch.tensor(y)
    log_a = torch.log_softmax(zt, 1) if output == "softmax" else F.logsigmoid(zt)
    if loss == "cross_entropy":
        per = -(yt * log_a).sum(1)
    else:
        per = -(yt * log_a + (1 - yt) * _log_one_minus_softmax(zt)).sum(1)
    per.sum().backward()
    return per.detach().numpy(), zt.grad.numpy()



@pytest.mark.parametrize("output,loss", [("sigmoid", "cross_entropy"), ("softmax", "binary_cross_entropy")])
@pytest.mark.parametrize("scale", [1.0, 40.0])
def test_crossed_pairs_match_autograd_where_a_is_below_eps(output, loss, scale):
    """cross_entropy after sigmoid and binary_cross_entropy after softmax, value and delta^L from z.

    At scale 40 many a_j are below float64's eps (2.2e-16): the old clip inside dL/da made the
    gradient vanish there (CE + sigmoid at z = -40: loss 36.04 instead of 40, db -0.019
    instead of -1). Tolerance: relative 1e-12 on the loss plus 1e-15 absolute (float64 rounding
    of log-sum-exp near 0, in either formulation), and 1e-12 of the largest |dL/dz|.
    """
    rng = np.random.default_rng(7)
    z = rng.normal(size=(64, 4)) * scale
    y = rng.integers(0, 2, size=(64, 4)).astype(float)
    pair = dp.LOSSES[loss].crossed[output]
    value, grad = _torch_oracle(output, loss, z, y)
    np.testing.assert_allclose(pair.value(z, y), value, rtol=1e-12, atol=1e-15)
    assert np.abs(pair.delta(z, y) - grad).max() <= 1e-12 * np.abs(grad).max()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_soft_targets_that_sum_to_one_keep_the_exact_shortcut(dtype):
    """Label-smoothed rows (0.9, 0.05, 0.05) stay on the shortcut and match PyTorch's soft-label
    cross-entropy (relative 1e-12 in float64, 1e-5 in float32)."""
    rng = np.random.default_rng(3)
    net = make_net([4, 3], [], "softmax", "cross_entropy", dtype=dtype)
    X = rng.normal(size=(6, 4))
    Y = np.full((6, 3), 0.05)
    Y[np.arange(6), rng.integers(0, 3, 6)] = 0.9
    grads = net.backward(net.forward(X), Y.astype(dtype))
    W = torch.tensor(net.layers[0].W.astype(np.float64), requires_grad=True)
    b = torch.tensor(net.layers[0].b.astype(np.float64), requires_grad=True)
    z = torch.tensor(X.astype(dtype).astype(np.float64)) @ W + b
    F.cross_entropy(z, torch.tensor(Y)).backward()  # soft targets: mean of -sum y log softmax(z)
    rtol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(grads.db[1], b.grad.numpy(), rtol=rtol, atol=rtol * 1e-3)
    np.testing.assert_allclose(grads.dW[1], W.grad.numpy(), rtol=rtol, atol=rtol * 1e-3)


@pytest.mark.parametrize("hidden", ["relu", "tanh"])
def test_dropout_backward_matches_autograd_with_the_same_masks(hidden):
    """The backward pass through inverted dropout (g *= mask before sigma') against autograd on
    a^l = sigma(z^l) * mask with deltaprop's own masks: float64, the file's tolerance."""
    layers = [dp.Dense(5, 7, hidden, dropout=0.4), dp.Dense(7, 6, hidden, dropout=0.2), dp.Dense(6, 3, "softmax")]
    net = dp.Network(layers, loss="cross_entropy", dtype="float64", seed=3)
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(9, 5)), rng.integers(0, 3, 9)
    trace = net.forward(X, training=True, rng=np.random.default_rng(0))
    assert trace.mask[1] is not None and (trace.mask[1] == 0).any()  # some units really are dropped
    grads = net.backward(trace, y)

    params = [(torch.tensor(layer.W, requires_grad=True), torch.tensor(layer.b, requires_grad=True))
              for layer in net.layers]
    a = torch.tensor(X)
    for l, (layer, (W, b)) in enumerate(zip(net.layers, params, strict=True), start=1):
        z = a @ W + b
        a = TORCH_ACT[layer.activation.name](z)
        if trace.mask[l] is not None:
            a = a * torch.tensor(trace.mask[l])
    F.cross_entropy(z, torch.tensor(y)).backward()
    for l, (W, b) in enumerate(params, start=1):
        assert close(grads.dW[l], W.grad.numpy()), f"dW^{l}"
        assert close(grads.db[l], b.grad.numpy()), f"db^{l}"
