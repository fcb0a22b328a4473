"""Network construction, indexing, seeding, dtypes and input checks."""

import numpy as np
import pytest

import deltaprop as dp
from helpers import make_net


def test_layer_numbering_and_shapes_follow_the_notes():
    net = make_net([4, 8, 3], "tanh", "softmax", "cross_entropy")
    X = np.random.default_rng(0).normal(size=(5, 4))
    trace = net.forward(X)
    grads = net.backward(trace, np.array([0, 1, 2, 0, 1]))
    assert net.L == 2 and trace.z[0] is None and trace.a[0].shape == (5, 4)
    for l, n_l in ((1, 8), (2, 3)):
        n_prev = net.layers[l - 1].n_in
        assert net.layers[l - 1].W.shape == (n_prev, n_l) and net.layers[l - 1].b.shape == (n_l,)
        assert trace.z[l].shape == trace.a[l].shape == grads.delta[l].shape == (5, n_l)
        assert grads.dW[l].shape == (n_prev, n_l) and grads.db[l].shape == (n_l,)


def test_same_seed_same_network_other_seed_other_network():
    a, b, c = (make_net([5, 7, 2], "relu", "softmax", "cross_entropy", seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a.layers[0].W, b.layers[0].W)
    assert not np.array_equal(a.layers[0].W, c.layers[0].W)


def test_init_scheme_follows_the_activation():
    """He: std sqrt(2/n_in) for relu; Glorot: uniform within sqrt(6/(n_in+n_out)) otherwise."""
    relu = make_net([400, 300, 2], "relu", "softmax", "cross_entropy", seed=0).layers[0].W
    tanh = make_net([400, 300, 2], "tanh", "softmax", "cross_entropy", seed=0).layers[0].W
    assert relu.std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    limit = np.sqrt(6 / 700)
    assert np.abs(tanh).max() <= limit and np.abs(tanh).max() > 0.99 * limit
    assert tanh.std() == pytest.approx(limit / np.sqrt(3), rel=0.02)


def test_float32_stays_float32():
    net = make_net([6, 5, 3], "elu", "softmax", "cross_entropy", dtype="float32")
    X = np.random.default_rng(0).normal(size=(4, 6))  # float64 input is converted once, on entry
    trace = net.forward(X)
    grads = net.backward(trace, np.array([0, 2, 1, 1]), sample_weight=np.ones(4))
    arrays = trace.z[1:] + trace.a + grads.dW[1:] + grads.db[1:] + grads.delta[1:]
    assert {arr.dtype for arr in arrays} == {np.dtype(np.float32)}


@pytest.mark.parametrize("make_bad,message", [
    (lambda: dp.Network([dp.Dense(3, 4), dp.Dense(5, 2)]), "layer 1 has n_out=4 but layer 2 has n_in=5"),
    (lambda: dp.Network([]), "non-empty list"),
    (lambda: dp.Network([dp.Dense(3, 2)], dtype="float16"), "dtype must be one of"),
    (lambda: dp.Network([dp.Dense(3, 1, "softmax")], loss="cross_entropy"), "softmax over one"),
    (lambda: dp.Network([dp.Dense(3, 2, dropout=0.5)]), "dropout on the output layer"),
    (lambda: dp.Dense(0, 2), "positive integer"),
    (lambda: dp.Dense(2, 2, dropout=1.0), "dropout must be in"),
])
def test_bad_configuration_is_named(make_bad, message):
    with pytest.raises(dp.DeltapropError, match=message):
        make_bad()


@pytest.mark.parametrize("X,y,error,message", [
    (np.ones((3, 5)), np.array([0, 1, 2]), dp.ShapeError, "X has 5 features per sample, the network expects 4"),
    (np.ones(4), np.array([0]), dp.ShapeError, "X must be 2-D"),
    (np.ones((0, 4)), np.array([], dtype=int), dp.DataError, "empty"),
    (np.array([[1.0, 2, 3, 4], [1, np.nan, 3, 4]]), np.array([0, 1]), dp.DataError, "NaN or inf .first at row 1"),
    (np.ones((3, 4)), np.array([0, 1]), dp.ShapeError, "X has 3 samples but y has 2"),
    (np.ones((2, 4)), np.array([0, 3]), dp.DataError, "class label 3 is outside 0..2"),
    (np.ones((2, 4)), np.array([0.5, 1.0]), dp.DataError, "non-integer values"),
    (np.ones((2, 4)), np.ones((2, 2)), dp.ShapeError, "y has 2 columns, the output layer has n_L = 3"),
    (np.array([["a", "b", "c", "d"]] * 2), np.array([0, 1]), dp.DataError, "X must be numeric"),
])
def test_bad_input_is_named(X, y, error, message):
    net = make_net([4, 5, 3], "relu", "softmax", "cross_entropy")
    with pytest.raises(error, match=message):
        net.backward(net.forward(X), y)


def test_labels_one_hot_and_index_forms_agree():
    rng = np.random.default_rng(0)
    net = make_net([4, 5, 3], "relu", "softmax", "cross_entropy")
    X, y = rng.normal(size=(6, 4)), rng.integers(0, 3, 6)
    assert net.loss(X, y) == net.loss(X, np.eye(3)[y])


def test_dropout_only_in_training_mode():
    rng = np.random.default_rng(0)
    net = dp.Network([dp.Dense(4, 50, "relu", dropout=0.5), dp.Dense(50, 2, "softmax")],
                     loss="cross_entropy", seed=0)
    X = rng.normal(size=(8, 4))
    eval1, eval2 = net.forward(X), net.forward(X)
    np.testing.assert_array_equal(eval1.a[1], eval2.a[1])
    assert eval1.mask[1] is None
    train = net.forward(X, training=True, rng=np.random.default_rng(1))
    dropped = train.a[1] == 0
    assert 0.3 < dropped[eval1.a[1] > 0].mean() < 0.7  # about half of the live units are off
    np.testing.assert_allclose(train.a[1][~dropped], 2 * eval1.a[1][~dropped])  # survivors scaled by 1/(1-p)
    np.testing.assert_array_equal(net.predict_proba(X), eval1.a[2])


@pytest.mark.parametrize("chunk", [None, 1, 7, 64, 1000])
@pytest.mark.parametrize("hidden", ["relu", "tanh"])
def test_chunked_inference_equals_the_traced_forward_pass(chunk, hidden):
    """output() reuses buffers and writes a^l over z^l; the numbers must be forward()'s a^L, z^L."""
    X = np.random.default_rng(3).normal(size=(150, 4))
    net = make_net([4, 9, 6, 3], hidden, "softmax", "cross_entropy", seed=5)
    trace = net.forward(X)
    np.testing.assert_allclose(net.output(X, chunk=chunk), trace.a[net.L], rtol=1e-12)
    np.testing.assert_allclose(net.output(X, chunk=chunk, sigma_L=False), trace.z[net.L], rtol=1e-12)


def test_predict_from_logits_matches_predict_proba():
    """predict takes argmax z^L for softmax outputs: the same labels as argmax a^L."""
    X = np.random.default_rng(4).normal(size=(400, 4))
    net = make_net([4, 9, 5], "relu", "softmax", "cross_entropy", seed=6)
    np.testing.assert_array_equal(net.predict(X), net.predict_proba(X).argmax(axis=1))


def test_all_finite_one_pass_and_its_overflow_fallback():
    from deltaprop.checks import all_finite

    assert all_finite(np.ones((3, 4), np.float32))
    assert all_finite(np.full((3, 4), 1e30, np.float32))  # x.x overflows: min/max decide
    for bad in (np.nan, np.inf, -np.inf):
        x = np.ones((3, 4), np.float32)
        x[2, 1] = bad
        assert not all_finite(x)
    big = np.full(4, 1e30, np.float32)
    big[0] = np.inf
    assert not all_finite(big)
    assert all_finite(np.arange(6).reshape(2, 3))  # integers are always finite


@pytest.mark.parametrize("hidden", sorted(set(dp.ACTIVATIONS) - {"softmax"}))
def test_predictions_equal_the_traced_forward_pass_for_every_hidden_activation(hidden):
    """Network.output (chunked, a^l over z^l) against forward(), every hidden sigma: relative 1e-12 (chunks
    of 7 rows may round the products' last bit differently; leaky_relu and elu were off by 1e-1)."""
    net = dp.Network([dp.Dense(4, 6, hidden), dp.Dense(6, 5, hidden), dp.Dense(5, 3, "softmax")],
                     loss="cross_entropy", seed=2)
    X = np.random.default_rng(3).normal(size=(50, 4)) * 3
    np.testing.assert_allclose(net.output(X, chunk=7), net.forward(X).a[3], rtol=1e-12, atol=1e-15)
