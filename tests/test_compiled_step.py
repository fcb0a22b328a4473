"""Whole compiled training steps (ops/compiled_step.py, training/fused.py) against the readable step.

The readable step (propagate, backprop.backward, the optimizer by NumbaOps) is the reference.
The compiled steps must give its gradients (to 1e-12 relative in float64, against backward()
itself) and its trained weights: bit for bit for relu, softmax + cross-entropy, mse and every
optimizer (the matrix products are the same BLAS routines, the element-wise loops the same
kernels), to 1e-12 relative in float64 where a formula is written another way (sigmoid, tanh,
binary cross-entropy, sample weights). They must be taken where they apply, and only there.
"""

import numpy as np
import pytest

import deltaprop as dp
from deltaprop import backprop, callbacks
from deltaprop.errors import DivergenceError
from deltaprop.losses import Loss, mse
from deltaprop.optimizers import FLUSH_EVERY
from deltaprop.training import TrainConfig, fused
from deltaprop.training.batches import EpochData

pytestmark = pytest.mark.slow  # numba compiles whole training steps: not in the quick tier (pytest -m "not slow")

pytest.importorskip("numba", reason="the compiled steps need numba (pip install 'deltaprop[fast]')")
compiled_step = pytest.importorskip("deltaprop.ops.compiled_step")

def digits_small():
    """scikit-learn's digits, X scaled to [0, 1] (1,797 rows: 57 batches of 32, the last of 5)."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X / 16, y


RTOL64 = 1e-12  # relative, float64: the sums of a formula written another way differ in the last places


def network(acts=("relu", "relu"), out="softmax", n_out=10, loss="cross_entropy", dtype="float64", seed=3):
    layers = [dp.Dense(64, 32, acts[0]), dp.Dense(32, 16, acts[1]), dp.Dense(16, n_out, out)]
    return dp.Network(layers, loss=loss, dtype=dtype, seed=seed, ops="numba")


def train(monkeypatch, compiled: bool, net_kw: dict, fit_kw: dict, make_optimizer, epochs=3):
    """Weights and History after ``epochs`` on digits, with the compiled steps allowed or not; also how many
    compiled calls ran."""
    X, y = digits_small()
    monkeypatch.setattr(fused, "MAX_PRODUCT", fused.MAX_PRODUCT if compiled else 0)
    calls = []
    real = fused.CompiledSteps.run

    def counted(self, first, n_batches):
        calls.append(first)
        return real(self, first, n_batches)

    monkeypatch.setattr(fused.CompiledSteps, "run", counted)
    net = network(**net_kw)
    y = (y > 4).astype(int) if net.layers[-1].n_out == 1 else y
    history = net.fit(X.astype(net.dtype), y, epochs=epochs, batch_size=32, verbose=0, optimizer=make_optimizer(),
                      **fit_kw)
    return [p.copy() for layer in net.layers for p in (layer.W, layer.b)], history, len(calls), net


CASES = {  # name: (network, fit options, optimizer, bit for bit?)
    "relu softmax adam": ({}, {}, lambda: dp.Adam(1e-3), True),
    "mse identity": ({"acts": ("relu", "identity"), "out": "identity", "loss": "mse"}, {}, lambda: dp.Adam(1e-3), True),
    "sgd": ({}, {}, lambda: dp.SGD(0.1), True),
    "sgd nesterov": ({}, {}, lambda: dp.SGD(0.05, momentum=0.9, nesterov=True), True),
    "sgd momentum, decay": ({}, {}, lambda: dp.SGD(0.05, momentum=0.9, weight_decay=0.01), True),
    "adamw, l2, clip": ({}, {"l2": 0.01, "clip_norm": 0.5}, lambda: dp.AdamW(1e-2, weight_decay=0.1), True),
    "tanh sigmoid": ({"acts": ("tanh", "sigmoid")}, {}, lambda: dp.Adam(1e-3), False),
    "bce": ({"out": "sigmoid", "n_out": 1, "loss": "binary_cross_entropy"}, {}, lambda: dp.Adam(1e-3), False),
    "sample weights": ({}, {"sample_weight": np.linspace(0.5, 2, 1797)}, lambda: dp.Adam(1e-2), False),
    "mse sigmoid output": ({"out": "sigmoid", "loss": "mse"}, {"class_weight": "balanced"}, lambda: dp.Adam(1e-2),
                           False),
}


@pytest.mark.parametrize("name", list(CASES))
def test_training_equals_the_readable_step(monkeypatch, name):
    net_kw, fit_kw, make_optimizer, exact = CASES[name]
    fast, fast_history, fast_calls, fast_net = train(monkeypatch, True, net_kw, fit_kw, make_optimizer)
    slow, slow_history, slow_calls, slow_net = train(monkeypatch, False, net_kw, fit_kw, make_optimizer)
    assert fast_calls == 3 and slow_calls == 0  # one compiled call per epoch; none when they are not allowed
    for a, b in zip(fast, slow, strict=True):
        if exact:
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=RTOL64, atol=RTOL64 * np.abs(b).max())
    np.testing.assert_allclose(fast_history["loss"], slow_history["loss"], rtol=RTOL64)
    if "accuracy" in slow_history:
        assert fast_history["accuracy"] == slow_history["accuracy"]
    assert fast_net.training.optimizer.t == slow_net.training.optimizer.t == 3 * 57


def test_float32_training_is_bit_for_bit_the_readable_steps(monkeypatch):
    """The small workload's kind of run (relu, softmax, Adam, float32): the same bits."""
    fast, fast_history, calls, _ = train(monkeypatch, True, {"dtype": "float32"}, {}, lambda: dp.Adam(1e-3))
    slow, slow_history, _, _ = train(monkeypatch, False, {"dtype": "float32"}, {}, lambda: dp.Adam(1e-3))
    assert calls == 3
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(a, b)
    assert fast_history["accuracy"] == slow_history["accuracy"]


@pytest.mark.parametrize("net_kw", [{}, {"acts": ("tanh", "sigmoid")}, {"out": "identity", "loss": "mse"},
                                    {"out": "sigmoid", "n_out": 1, "loss": "binary_cross_entropy"}])
@pytest.mark.parametrize("weighted", [False, True])
def test_one_step_gradient_equals_backward(net_kw, weighted):
    """The compiled forward, equation (1) and backward on one batch against backprop.backward() with NumPy's
    backend: the notes' readable equations."""
    X, y = digits_small()
    net = network(**net_kw)
    x, labels = X[:32].astype(np.float64), y[:32] if net.layers[-1].n_out > 1 else (y[:32] > 4).astype(int)
    Y = net.targets(labels, 32)
    w = np.linspace(0.5, 2.0, 32) if weighted else None
    reference = backprop.backward(net.layers, net.loss_fn, net.forward(x), Y, w, ops=dp.ops.get_ops("numpy"))

    flat = dp.params.FlatParams(net.layers, net.dtype)
    layout = fused._layout(net, flat, compiled_step, 32)
    size = 32 * int(layout[1:, 0].sum())
    z, a, delta = np.empty(size), np.empty(size), np.empty(size)
    loss = fused._loss_code(net, compiled_step)
    compiled_step.forward(x, flat.theta, layout, z, a, 32)
    L = net.L
    rows = [compiled_step.rows(buffer, layout, L, 32) for buffer in (z, a, delta)]
    factor = 1 / 32 if w is None else 1 / w.sum()
    total = compiled_step.output_error(*rows[:2], Y, np.empty(0) if w is None else w, factor, loss,
                                       layout[L, 3], rows[2])
    compiled_step.backward(x, flat.theta, flat.grad, layout, z, a, delta, 32)
    for l in range(1, L + 1):
        dW, db = compiled_step.params(flat.grad, layout, l)
        np.testing.assert_allclose(dW, reference.dW[l], rtol=RTOL64, atol=RTOL64 * np.abs(reference.dW[l]).max())
        np.testing.assert_allclose(db, reference.db[l], rtol=RTOL64, atol=RTOL64 * np.abs(reference.db[l]).max())
    assert total * factor == pytest.approx(net.loss(x, labels, sample_weight=w), rel=RTOL64)


def _plan(net, X, y, batch_size=32, callbacks_=(), optimizer=None, **fit_kw):
    """compiled_steps' answer for a fit of ``net`` (after one epoch set up its training state)."""
    net.fit(X, y, epochs=1, batch_size=batch_size, verbose=0, optimizer=optimizer, **fit_kw)
    data = EpochData(X, net.targets(y, len(y)), None, True, True)
    return fused.compiled_steps(net, net.training, data, TrainConfig(batch_size=batch_size), list(callbacks_))


class Gradients(callbacks.Callback):
    def on_backward(self, net, grads):
        pass


class EveryBatch(callbacks.Callback):
    def on_batch_end(self, net, batch, n_batches):
        pass


def test_taken_only_where_they_compute_the_same_thing():
    doubled_mse = Loss("mse", mse, lambda a, y, out=None: 2 * (a - y))  # not the built-in formula: readable step
    X, y = digits_small()
    X = X.astype(np.float32)
    assert _plan(network(dtype="float32"), X, y) is not None
    assert _plan(network(dtype="float32"), X, y, callbacks_=[callbacks.Progress()]).span == fused.SPAN
    refused = {
        "dropout": lambda: _plan(dp.Network([dp.Dense(64, 32, "relu", dropout=0.2), dp.Dense(32, 10, "softmax")],
                                            loss="cross_entropy", dtype="float32"), X, y),
        "mse after softmax": lambda: _plan(network(loss="mse", dtype="float32"), X, y),
        "a loss of the user's named mse": lambda: _plan(network(loss=doubled_mse, out="identity", dtype="float32"),
                                                        X, y),
        "leaky relu": lambda: _plan(network(acts=("leaky_relu", "relu"), dtype="float32"), X, y),
        "rmsprop": lambda: _plan(network(dtype="float32"), X, y, optimizer=dp.RMSprop(1e-3)),
        "a callback of gradients": lambda: _plan(network(dtype="float32"), X, y, callbacks_=[Gradients()]),
        "a callback of every batch": lambda: _plan(network(dtype="float32"), X, y, callbacks_=[EveryBatch()]),
        "numpy backend": lambda: _plan(dp.Network([dp.Dense(64, 10, "softmax")], loss="cross_entropy",
                                                  dtype="float32", ops="numpy"), X, y),
        "large products": lambda: _plan(network(dtype="float32"), X, y, batch_size=1024),
        "Fortran-ordered X": lambda: _plan(network(dtype="float32"), np.asfortranarray(X), y),
        "X of another dtype": lambda: _plan(network(dtype="float64"), X, y),
    }
    with pytest.MonkeyPatch.context() as patch:  # no cache folder: 15-25 s of compiling in every process
        patch.setattr(compiled_step, "CACHED", False)
        assert _plan(network(dtype="float32"), X, y) is None
    for name, plan in refused.items():
        assert plan() is None, name


def test_divergence_in_a_compiled_span_is_reported_as_the_readable_step_reports_it(monkeypatch):
    """The kernel stops before updating on a batch whose loss or gradient is not finite; the readable step
    then runs that batch and names the problem, and the epoch's starting weights come back."""
    X, y = digits_small()
    X = X.astype(np.float64) * 1e154  # z^1 overflows in the first batch's products
    messages, weights = [], []
    for allowed in (fused.MAX_PRODUCT, 0):
        monkeypatch.setattr(fused, "MAX_PRODUCT", allowed)
        net = network()
        start = net.layers[0].W.copy()
        with pytest.raises(DivergenceError) as caught:
            net.fit(X, y, epochs=1, batch_size=32, verbose=0)
        messages.append(str(caught.value))
        weights.append(net.layers[0].W.copy())
        np.testing.assert_array_equal(net.layers[0].W, start)
    assert messages[0] == messages[1] and "epoch 1, batch 1" in messages[0]


def test_continued_training_equals_one_run():
    """Two epochs, then two more, equal four: the optimizer's step count and state carry over."""
    X, y = digits_small()
    once = network(dtype="float32")
    once.fit(X.astype(np.float32), y, epochs=4, batch_size=32, verbose=0)
    twice = network(dtype="float32")
    for _ in range(2):
        twice.fit(X.astype(np.float32), y, epochs=2, batch_size=32, verbose=0)
    for a, b in zip(once.layers, twice.layers, strict=True):
        np.testing.assert_array_equal(a.W, b.W)
    assert once.training.optimizer.t == twice.training.optimizer.t == 4 * 57


def test_progress_bar_is_told_of_every_batch(monkeypatch):
    seen = []
    monkeypatch.setattr(callbacks.Progress, "on_batch_end", lambda self, net, batch, n: seen.append((batch, n)))
    X, y = digits_small()
    network(dtype="float32").fit(X.astype(np.float32), y, epochs=1, batch_size=16, verbose=1)
    assert seen == [(b, 113) for b in range(113)]


def test_flush_interval_is_the_optimizers():
    assert compiled_step.FLUSH_EVERY == FLUSH_EVERY


def test_no_allocation_per_batch():
    """numba's own allocations (NRT: arrays made inside compiled code) during an epoch do not grow with its
    number of batches: every buffer is made once, outside the kernel."""
    from numba.core.runtime import _nrt_python as nrt

    X, y = digits_small()
    X = X.astype(np.float32)
    counts, was_on = [], nrt.memsys_stats_enabled()
    nrt.memsys_enable_stats()
    try:
        for batch_size in (32, 8):  # 57 and 225 batches an epoch
            net = network(dtype="float32")
            net.fit(X, y, epochs=1, batch_size=batch_size, verbose=0)  # compiled and loaded
            before = nrt.memsys_get_stats_alloc() + nrt.memsys_get_stats_mi_alloc()
            net.fit(X, y, epochs=1, batch_size=batch_size, verbose=0)
            counts.append(nrt.memsys_get_stats_alloc() + nrt.memsys_get_stats_mi_alloc() - before)
    finally:
        if not was_on:
            nrt.memsys_disable_stats()
    assert counts[0] == counts[1] < 64, counts  # per call: a wrapper per array argument (one call an epoch)


def test_the_first_compile_is_announced_where_progress_is_shown(monkeypatch, capsys):
    """Compiling takes 15-25 s once after installing: a run that reports progress says so; after a fit, numba's
    cache (or this process) holds the steps, and nothing is said."""
    X, y = digits_small()
    network(dtype="float32").fit(X.astype(np.float32), y, epochs=1, batch_size=32, verbose=1)
    assert compiled_step.compiled_before()
    assert "compiling" not in capsys.readouterr().out
    monkeypatch.setattr(compiled_step, "compiled_before", lambda: False)
    network(dtype="float32").fit(X.astype(np.float32), y, epochs=1, batch_size=32, verbose=1)
    network(dtype="float32").fit(X.astype(np.float32), y, epochs=1, batch_size=32, verbose=0)
    out = capsys.readouterr().out
    assert out.count("compiling the whole training step") == 1, out
