"""fit: loss falls, XOR, History, continuation, reproducibility, weights, schedules, clipping."""

import numpy as np
import pytest

import deltaprop as dp
from helpers import make_net


@pytest.fixture
def blobs():
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=3, size=(3, 5))
    y = rng.integers(0, 3, 300)
    return centers[y] + rng.normal(size=(300, 5)), y


def test_loss_falls_and_history_is_filled(blobs):
    X, y = blobs
    net = make_net([5, 16, 3], "relu", "softmax", "cross_entropy", seed=0)
    history = net.fit(X, y, epochs=8, batch_size=16, validation_split=0.2, optimizer=dp.Adam(0.01), verbose=0)
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert set(history.history) >= {"loss", "accuracy", "val_loss", "val_accuracy", "time", "lr"}
    assert len(history) == 8 and history.epoch == list(range(8))
    assert history["val_accuracy"][-1] > 0.9


def test_xor_is_learned_by_a_2_2_1_sigmoid_network():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([0, 1, 1, 0])
    net = make_net([2, 2, 1], "sigmoid", "sigmoid", "binary_cross_entropy", seed=1)
    net.fit(X, y, epochs=1500, batch_size=4, optimizer=dp.Adam(lr=0.05), verbose=0)
    np.testing.assert_array_equal(net.predict(X), y)
    assert net.loss(X, y) < 0.05


def test_predict_and_predict_proba(blobs):
    X, y = blobs
    net = make_net([5, 8, 3], "tanh", "softmax", "cross_entropy")
    net.fit(X, y + 10, epochs=3, verbose=0)  # arbitrary integer labels are kept as classes
    np.testing.assert_array_equal(net.classes, [10, 11, 12])
    proba = net.predict_proba(X)
    assert proba.shape == (300, 3) and np.allclose(proba.sum(axis=1), 1)
    np.testing.assert_array_equal(net.predict(X), net.classes[proba.argmax(axis=1)])


def test_string_labels_and_regression():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    labels = np.where(X[:, 0] > 0, "pos", "neg")
    clf = make_net([3, 6, 2], "relu", "softmax", "cross_entropy")
    clf.fit(X, labels, epochs=30, optimizer=dp.Adam(0.01), verbose=0)
    assert set(clf.predict(X)) <= {"pos", "neg"} and (clf.predict(X) == labels).mean() > 0.9
    reg = make_net([3, 8, 1], "tanh", "identity", "mse")
    target = X @ np.array([1.0, -2.0, 0.5])
    history = reg.fit(X, target, epochs=60, batch_size=8, verbose=0)
    assert reg.predict(X).shape == (80,) and "accuracy" not in history
    assert history["loss"][-1] < 0.1 * history["loss"][0]


def test_second_fit_continues_with_the_same_optimizer(blobs):
    X, y = blobs
    straight = make_net([5, 8, 3], "relu", "softmax", "cross_entropy", seed=4)
    straight.fit(X, y, epochs=4, verbose=0)
    split = make_net([5, 8, 3], "relu", "softmax", "cross_entropy", seed=4)
    split.fit(X, y, epochs=2, verbose=0)
    optimizer = split.training.optimizer
    split.fit(X, y, epochs=2, verbose=0)
    assert split.training.optimizer is optimizer and optimizer.t == 4 * 10  # 300 samples, batches of 32: 10 an epoch
    assert split.training.epoch == 4 and len(split.training.history) == 4
    for key, value in straight.get_weights().items():
        np.testing.assert_array_equal(split.get_weights()[key], value)


def test_same_seed_gives_bit_identical_weights_with_dropout(blobs):
    X, y = blobs
    runs = []
    for _ in range(2):
        net = dp.Network([dp.Dense(5, 16, "relu", dropout=0.3), dp.Dense(16, 3, "softmax")],
                         loss="cross_entropy", dtype="float32", seed=7)
        net.fit(X, y, epochs=3, batch_size=10, verbose=0)
        runs.append(net.get_weights())
    for key in runs[0]:
        assert runs[0][key].dtype == np.float32
        np.testing.assert_array_equal(runs[0][key], runs[1][key])


def test_sample_weight_is_a_weighted_mean(blobs):
    """The loss is sum_i w_i L_i / sum_i w_i: weights of 2 everywhere are the same run as no weights
    (with the old (1/m) sum w_i L_i they doubled the learning rate)."""
    X, y = blobs
    a = make_net([5, 4, 3], "tanh", "softmax", "cross_entropy", seed=2)
    b = make_net([5, 4, 3], "tanh", "softmax", "cross_entropy", seed=2)
    a.fit(X, y, epochs=2, optimizer=dp.SGD(lr=0.1), sample_weight=np.full(300, 2.0), verbose=0)
    b.fit(X, y, epochs=2, optimizer=dp.SGD(lr=0.1), verbose=0)
    for key, value in a.get_weights().items():
        np.testing.assert_allclose(value, b.get_weights()[key], rtol=1e-10, atol=1e-12)


def test_zero_sample_weight_removes_a_sample_and_two_repeats_it(blobs):
    X, y = blobs
    net = make_net([5, 4, 3], "tanh", "softmax", "cross_entropy", seed=2)
    w = np.ones(300)
    w[0], w[1] = 0, 2
    full = net.backward(net.forward(X), y, sample_weight=w)
    rows = np.r_[1, 1:300]  # row 0 left out, row 1 twice
    rest = net.backward(net.forward(X[rows]), y[rows])
    np.testing.assert_allclose(full.dW[1], rest.dW[1], rtol=1e-10)
    assert net.loss(X, y, sample_weight=w) == pytest.approx(net.loss(X[rows], y[rows]), rel=1e-12)
    nothing = net.backward(net.forward(X[:1]), y[:1], sample_weight=np.zeros(1))  # all weights 0: no step
    assert not nothing.dW[1].any() and net.loss(X[:1], y[:1], sample_weight=np.zeros(1)) == 0.0


def test_class_weight_balanced_and_dict(blobs):
    X, y = blobs
    net = make_net([5, 4, 3], "tanh", "softmax", "cross_entropy")
    net.fit(X, y, epochs=1, class_weight="balanced", verbose=0)
    net.fit(X, y, epochs=1, class_weight={0: 2.0}, verbose=0)
    with pytest.raises(dp.DataError, match="never seen"):
        net.fit(X, y, epochs=1, class_weight={7: 2.0}, verbose=0)


def test_schedules_set_the_learning_rate_per_epoch(blobs):
    X, y = blobs
    net = make_net([5, 4, 3], "tanh", "softmax", "cross_entropy")
    history = net.fit(X, y, epochs=4, optimizer=dp.SGD(lr=0.1), schedule=dp.StepDecay(2, 0.5), verbose=0)
    np.testing.assert_allclose(history["lr"], [0.1, 0.1, 0.05, 0.05])
    assert dp.CosineDecay(epochs=10).lr_at(1.0, 5) == pytest.approx(0.5)
    assert dp.CosineDecay(epochs=10).lr_at(1.0, 10) == pytest.approx(0.0)
    assert dp.ExponentialDecay(0.9).lr_at(2.0, 2) == pytest.approx(1.62)


def test_clip_norm_bounds_the_global_gradient_norm(blobs):
    X, y = blobs
    net = make_net([5, 4, 3], "tanh", "softmax", "cross_entropy")
    flat = dp.TrainingState().flat_for(net.layers, net.dtype)
    grads = dp.backprop.backward(net.layers, net.loss_fn, net.forward(X), net.targets(y, 300), out=flat.grads_out())
    norm = np.sqrt(sum((g**2).sum() for _, g in grads.items()))  # over every dW^l, db^l
    assert dp.training.gradients.clip_gradients(flat.grad, norm / 10) == pytest.approx(norm)
    clipped = np.sqrt(sum((g**2).sum() for _, g in grads.items()))
    assert clipped == pytest.approx(norm / 10)


def test_training_with_clip_norm_limits_each_step(blobs):
    """With a tiny clip_norm, SGD moves the weights by at most lr * clip_norm per step."""
    X, y = blobs
    net = make_net([5, 4, 3], "tanh", "softmax", "cross_entropy")
    before = np.concatenate([value.ravel() for value in net.params().values()])
    net.fit(X[:32], y[:32], epochs=1, batch_size=32, optimizer=dp.SGD(lr=0.1), clip_norm=1e-3, verbose=0)
    after = np.concatenate([value.ravel() for value in net.params().values()])
    assert np.linalg.norm(after - before) == pytest.approx(0.1 * 1e-3, rel=1e-5)


def test_divergence_raises_and_leaves_finite_weights(blobs):
    X, y = blobs
    net = make_net([5, 32, 1], "relu", "identity", "mse")
    with pytest.raises(dp.DivergenceError, match="epoch 1, batch"):
        net.fit(X * 1e3, y * 1e3, epochs=5, optimizer=dp.SGD(lr=1e3), verbose=0)
    assert all(np.isfinite(v).all() for v in net.get_weights().values())


def test_notes_preset_learns_digits_subset():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    net = dp.presets.notes_network((64, 30, 10), seed=0)
    assert all(layer.activation.name == "sigmoid" for layer in net.layers)
    optimizer = net.training.optimizer
    assert net.loss_fn.name == "mse" and isinstance(optimizer, dp.SGD) and optimizer.momentum == 0
    net.fit(X[:1000] / 16, y[:1000], epochs=10, batch_size=10, verbose=0)
    assert (net.predict(X[1000:] / 16) == y[1000:]).mean() > 0.85


def test_validation_split_trains_on_the_rows_it_names(blobs):
    """The held-out rows are read in place: training on the split equals training on a copy of the
    same rows with the same rows as validation_data (same order, same numbers)."""
    X, y = blobs
    split = make_net([5, 16, 3], "relu", "softmax", "cross_entropy", seed=3)
    h_split = split.fit(X, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0)
    order = np.random.default_rng([3, 2**31]).permutation(300)  # the split's documented seeding
    val, train = np.sort(order[:75]), np.sort(order[75:])
    copy = make_net([5, 16, 3], "relu", "softmax", "cross_entropy", seed=3)
    h_copy = copy.fit(X[train], y[train], epochs=3, batch_size=16, validation_data=(X[val], y[val]), verbose=0)
    np.testing.assert_array_equal(h_split["loss"], h_copy["loss"])
    np.testing.assert_allclose(h_split["val_loss"], h_copy["val_loss"], rtol=1e-12)
    for key, value in copy.params().items():
        np.testing.assert_array_equal(split.params()[key], value)


@pytest.mark.parametrize("output, loss, n_out",
                         [("softmax", "cross_entropy", 3), ("sigmoid", "binary_cross_entropy", 1)])
def test_training_accuracy_counts_each_epochs_own_rows(blobs, output, loss, n_out):
    """The epoch's accuracy is recorded batch by batch in shuffled order and compared with the targets
    once per epoch: with weights that do not move (lr 1e-30), it must equal evaluate() on the same rows."""
    X, y = blobs
    y = y if n_out > 1 else (y > 0).astype(int)
    net = make_net([5, 4, n_out], "tanh", output, loss, seed=3)
    history = net.fit(X, y, epochs=2, batch_size=32, validation_split=0.25, optimizer=dp.SGD(lr=1e-30), verbose=0)
    held_out = np.sort(np.random.default_rng([net.seed, 2**31]).permutation(300)[:75])
    train_rows = np.setdiff1d(np.arange(300), held_out)
    expected = dp.evaluate(net, X[train_rows], y[train_rows])["accuracy"]
    assert 0.2 < expected < 1  # a half-trained net: right and wrong rows both present
    assert history["accuracy"] == [expected, expected]
    assert history["val_accuracy"][-1] == dp.evaluate(net, X[held_out], y[held_out])["accuracy"]


def test_a_replaced_weight_array_is_what_training_continues_from(blobs):
    """Assigning a new array to layer.W (not writing into it) must rebind the one-vector view,
    or training would go on updating the old, detached weights."""
    X, y = blobs
    net = make_net([5, 4, 3], "tanh", "softmax", "cross_entropy", seed=3)
    net.fit(X, y, epochs=1, optimizer=dp.Adam(0.01), verbose=0)
    replaced = np.full((5, 4), 0.25)
    net.layers[0].W = replaced.copy()
    net.fit(X, y, epochs=1, optimizer=dp.SGD(lr=1e-30), verbose=0)
    np.testing.assert_array_equal(net.layers[0].W, replaced)
    assert np.shares_memory(net.layers[0].W, net.training.flat_for(net.layers, net.dtype).theta)
    np.testing.assert_array_equal(net.training.flat_for(net.layers, net.dtype).theta[:20], replaced.ravel())
