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
    "softplus": F.softplus, "identity": lambda z: z, "softmax": lambda z: torch.softmax(z, dim=1),
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
