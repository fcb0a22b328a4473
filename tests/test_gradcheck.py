"""Backprop against central finite differences, for every sensible activation x loss pair.

Tolerance: relative error (norm-wise per layer and parameter) below 1e-6 in
float64 with eps = 1e-6; the truncation error of a central difference is
O(eps^2) and its rounding error about 1e-16 / eps, both far below it.
"""

import numpy as np
import pytest

import deltaprop as dp
from helpers import OUTPUTS_FOR_LOSS, make_net, targets_for

PAIRS = [(loss, out) for loss, outs in OUTPUTS_FOR_LOSS.items() for out in outs]
TOL = 1e-6


@pytest.mark.parametrize("loss,output", PAIRS)
@pytest.mark.parametrize("m", [1, 7])
def test_gradcheck_every_output_and_loss(loss, output, m):
    rng = np.random.default_rng(PAIRS.index((loss, output)) * 10 + m)
    sizes = [int(n) for n in rng.integers(1, 6, size=3)] + [int(rng.integers(2, 5))]
    hidden = [output if output != "softmax" else "tanh", "sigmoid"]
    net = make_net(sizes, hidden, output, loss, seed=int(rng.integers(1000)))
    X = rng.normal(size=(m, sizes[0]))
    report = dp.gradcheck(net, X, targets_for(loss, m, sizes[-1], rng), tol=TOL)
    assert report.ok, str(report)


@pytest.mark.filterwarnings("ignore:layer .* hidden layer with softmax")  # on purpose: its Jacobian sigma'
@pytest.mark.parametrize("hidden", sorted(dp.ACTIVATIONS))
def test_gradcheck_every_hidden_activation(hidden):
    """Equation (2) for each activation in a hidden layer (softmax's Jacobian included)."""
    rng = np.random.default_rng(sorted(dp.ACTIVATIONS).index(hidden))
    net = make_net([3, 5, 4, 2], [hidden, hidden], "sigmoid", "binary_cross_entropy", seed=3)
    X = rng.normal(size=(6, 3))
    report = dp.gradcheck(net, X, targets_for("binary_cross_entropy", 6, 2, rng), tol=TOL)
    assert report.ok, str(report)


@pytest.mark.parametrize("loss", sorted(OUTPUTS_FOR_LOSS))
def test_gradcheck_single_output_neuron(loss):
    """n_L = 1: a (m,) target becomes a column; softmax of one neuron is excluded (constant)."""
    rng = np.random.default_rng(5)
    output = "sigmoid"
    net = make_net([4, 6, 1], "relu", output, loss, seed=2)
    X = rng.normal(size=(9, 4))
    y = rng.integers(0, 2, size=9) if loss != "mse" else rng.normal(size=9)
    if loss == "cross_entropy":
        y = np.ones(9)  # one class only: -log a is still a valid function of a
    report = dp.gradcheck(net, X, y, tol=TOL)
    assert report.ok, str(report)


def test_gradcheck_with_sample_weights():
    rng = np.random.default_rng(8)
    net = make_net([4, 5, 3], "tanh", "softmax", "cross_entropy", seed=1)
    X = rng.normal(size=(6, 4))
    report = dp.gradcheck(net, X, rng.integers(0, 3, 6), sample_weight=rng.uniform(0, 3, 6), tol=TOL)
    assert report.ok, str(report)


def test_gradcheck_catches_a_wrong_derivative():
    """A tanh whose sigma' is taken at a (not z) must fail the check by a wide margin."""
    wrong = dp.Activation("tanh_wrong", np.tanh, lambda z: 1 - np.tanh(np.tanh(z)) ** 2)
    rng = np.random.default_rng(0)
    net = dp.Network([dp.Dense(3, 4, wrong), dp.Dense(4, 2, "identity")], loss="mse", seed=0)
    X = rng.normal(size=(5, 3)) * 2
    report = dp.gradcheck(net, X, rng.normal(size=(5, 2)), tol=TOL)
    assert not report.ok
    assert report.rows[0].rel_error > 1e-3  # layer 1 W: its delta uses the wrong sigma'
    assert report.rows[2].rel_error < TOL  # layer 2 does not involve the wrong sigma'
    assert "FAILED" in str(report)


def test_gradcheck_catches_the_sigma_prime_applied_twice():
    """softmax + cross_entropy via the general path and the shortcut on top would be wrong."""
    rng = np.random.default_rng(1)
    net = make_net([3, 4, 3], "tanh", "softmax", "cross_entropy", seed=0)
    X, y = rng.normal(size=(4, 3)), rng.integers(0, 3, 4)
    good = net.backward(net.forward(X), y)
    trace = net.forward(X)
    twice = net.layers[-1].activation.times_sigma_prime(good.delta[2], trace.z[2])
    assert np.abs(twice - good.delta[2]).max() > 1e-3  # so a doubled factor is detectable
    assert dp.gradcheck(net, X, y).ok


def test_gradcheck_subsample_and_float32_network():
    """A float32 network is checked on a float64 copy; the original stays float32 and unchanged."""
    rng = np.random.default_rng(2)
    net = make_net([20, 30, 4], "elu", "softmax", "cross_entropy", seed=0, dtype="float32")
    before = net.get_weights()
    report = dp.gradcheck(net, rng.normal(size=(8, 20)), rng.integers(0, 4, 8), max_entries=25)
    assert report.ok, str(report)
    assert report.rows[0].n_checked == 25
    assert net.layers[0].W.dtype == np.float32
    for key, value in net.get_weights().items():
        np.testing.assert_array_equal(value, before[key])


@pytest.mark.parametrize("fitted", [False, True])
@pytest.mark.parametrize("library", ["torch", "array_api_strict"])
def test_gradcheck_of_an_array_api_network(library, fitted):
    """An "array_api" network, new (unbound: the issue's crash) or bound to PyTorch or array_api_strict arrays by a
    fit, is checked on a float64 NumPy copy with its weights, its inputs brought to the host: the report of a
    NumPy network holding the same weights; the network keeps its arrays where they were (a new one is not
    bound by the check), unchanged."""
    xp = pytest.importorskip(library)
    rng = np.random.default_rng(4)
    X, y, w = rng.normal(size=(7, 3)), rng.integers(0, 3, 7), rng.uniform(0.5, 2, 7)
    net = dp.Network([dp.Dense(3, 5, "tanh"), dp.Dense(5, 3, "softmax")], loss="cross_entropy", seed=0,
                     ops="array_api")
    if fitted:
        net.fit(xp.asarray(X), xp.asarray(y), epochs=1, batch_size=4, verbose=0)  # bound: parameters on the library
    before = {key: np.array(net.ops.to_host(value)) for key, value in net.params().items()}
    ref = dp.Network([dp.Dense(3, 5, "tanh"), dp.Dense(5, 3, "softmax")], loss="cross_entropy", seed=0)
    ref.set_weights(before)
    report = dp.gradcheck(net, xp.asarray(X), xp.asarray(y), sample_weight=xp.asarray(w))
    expected = dp.gradcheck(ref, X, y, sample_weight=w)
    assert report.ok and report.rows == expected.rows
    for key, value in net.params().items():
        assert type(value).__module__.split(".")[0] == (library if fitted else "numpy")
        np.testing.assert_array_equal(net.ops.to_host(value), before[key])
