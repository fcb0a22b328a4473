"""Losses: definitions, the cancelling shortcuts, and stability for logits of +-1000."""

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.activations import sigmoid, softmax
from helpers import make_net


def test_mse_is_half_squared_error_averaged_over_the_batch():
    net = make_net([1, 2], [], "identity", "mse")
    net.layers[0].W[...] = [[1.0, 2.0]]
    X, y = np.array([[1.0], [2.0]]), np.array([[0.0, 0.0], [1.0, 1.0]])
    # sample 1: a = (1, 2): 1/2 (1 + 4) = 2.5 ; sample 2: a = (2, 4): 1/2 (1 + 9) = 5 ; mean 3.75
    assert net.loss(X, y) == pytest.approx(3.75)


def test_shortcut_value_equals_the_definition():
    """log-sum-exp and softplus forms equal -sum y log a (and the BCE formula) for moderate z."""
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(6, 4)), np.eye(4)[rng.integers(0, 4, 6)]
    ce, bce = dp.LOSSES["cross_entropy"], dp.LOSSES["binary_cross_entropy"]
    np.testing.assert_allclose(ce.from_z(z, y), -(y * np.log(softmax(z))).sum(1), rtol=1e-12)
    a = sigmoid(z)
    np.testing.assert_allclose(bce.from_z(z, y), -(y * np.log(a) + (1 - y) * np.log(1 - a)).sum(1), rtol=1e-12)


@pytest.mark.parametrize("loss,output", [("cross_entropy", "softmax"), ("binary_cross_entropy", "sigmoid"),
                                         ("mse", "sigmoid"), ("mse", "softmax"),
                                         ("cross_entropy", "sigmoid"), ("binary_cross_entropy", "softmax")])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_logits_of_1000_give_finite_loss_and_gradients(loss, output, dtype):
    net = make_net([2, 3], [], output, loss, dtype=dtype)
    net.layers[0].W[...] = [[1000.0, -1000.0, 0.0], [0.0, 0.0, 0.0]]
    X = np.array([[1.0, 0.0], [-1.0, 0.0]])
    y = np.array([1, 2]) if loss == "cross_entropy" else np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    value = net.loss(X, y)
    grads = net.backward(net.forward(X), y)
    assert np.isfinite(value)
    assert all(np.isfinite(g).all() for g in grads.dW[1:] + grads.db[1:])


def test_cross_entropy_of_confident_wrong_logits_is_large_not_inf():
    """z = (1000, -1000), true class 2: L = 2000 exactly by log-sum-exp."""
    net = make_net([1, 2], [], "softmax", "cross_entropy")
    net.layers[0].W[...] = [[1000.0, -1000.0]]
    assert net.loss(np.array([[1.0]]), np.array([1])) == pytest.approx(2000.0)


def test_shortcut_delta_is_a_minus_y_over_m():
    rng = np.random.default_rng(0)
    net = make_net([3, 4], [], "softmax", "cross_entropy")
    X, y = rng.normal(size=(5, 3)), rng.integers(0, 4, 5)
    trace = net.forward(X)
    delta = net.backward(trace, y).delta[1]
    np.testing.assert_allclose(delta, (trace.a[1] - np.eye(4)[y]) / 5, rtol=1e-12)


def test_probability_losses_refuse_unbounded_outputs():
    with pytest.raises(dp.ConfigError, match="needs outputs in \\(0, 1\\)"):
        make_net([2, 3], [], "relu", "cross_entropy")
    with pytest.raises(dp.ConfigError, match="unknown loss"):
        make_net([2, 3], [], "softmax", "hinge")



def test_cross_entropy_after_sigmoid_at_minus_40_is_the_issue_reproduction():
    net = make_net([1, 1], [], "sigmoid", "cross_entropy")
    net.layers[0].W[...], net.layers[0].b[...] = 0.0, -40.0
    X, y = np.array([[1.0]]), np.array([[1.0]])
    assert net.loss(X, y) == pytest.approx(40.0, rel=1e-15)           # was 36.04 (log of eps)
    assert net.backward(net.forward(X), y).db[1][0] == pytest.approx(-1.0, rel=1e-15)  # was -0.019
    assert dp.gradcheck(net, X, y).max_rel_error < 1e-7  # central differences agree (the clip broke them)


def test_softmax_cross_entropy_refuses_rows_that_do_not_sum_to_one():
    """The shortcut a - y is dL/dz only when sum_j y_j = 1: multi-hot and all-zero rows are refused
    (they gave db = [-0.160, -0.902, 0.061] where PyTorch has [0.681, -0.804, 0.123])."""
    net = make_net([2, 3], [], "softmax", "cross_entropy")
    X = np.array([[0.5, -1.0]])
    for y in ([[1.0, 1.0, 0.0]], [[0.0, 0.0, 0.0]]):
        with pytest.raises(dp.DataError, match="sum to 1.*row 0 of y sums to"):
            net.backward(net.forward(X), np.array(y))
        with pytest.raises(dp.DataError, match="sum to 1"):
            net.fit(X, np.array(y), epochs=1, verbose=0)
    with pytest.raises(dp.DataError, match=r"targets in \[0, 1\]"):
        net.loss(X, np.array([[1.5, -0.5, 0.0]]))
