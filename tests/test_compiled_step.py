"""Whole compiled training steps (ops/compiled_step.py, assembled by training/fused.py) against the readable step.

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
from deltaprop.activations import Activation, Kernel, register_activation
from deltaprop.errors import ActivationError, DivergenceError
from deltaprop.losses import Loss, mse
from deltaprop.optimizers import FLUSH_EVERY, Optimizer
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


def network(acts=("relu", "relu"), out="softmax", n_out=10, loss="cross_entropy", dtype="float64", seed=3,
            ops="numba"):
    layers = [dp.Dense(64, 32, acts[0]), dp.Dense(32, 16, acts[1]), dp.Dense(16, n_out, out)]
    return dp.Network(layers, loss=loss, dtype=dtype, seed=seed, ops=ops)


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
    "rmsprop": ({}, {}, lambda: dp.RMSprop(1e-3), True),
    "rmsprop momentum, decay": ({}, {}, lambda: dp.RMSprop(1e-3, momentum=0.9, weight_decay=0.01), True),
    "leaky relu, elu": ({"acts": ("leaky_relu", "elu")}, {}, lambda: dp.Adam(1e-3), False),
    "mish, softplus": ({"acts": ("mish", "softplus")}, {}, lambda: dp.Adam(1e-3), False),
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
    step = compiled_step.assemble(fused.recipe(net, dp.Adam())).py_func.__globals__  # the assembled functions
    layout = fused._layout(net, flat, 32)
    size = 32 * int(layout[1:, 0].sum())
    model = (flat.theta, flat.grad, layout, dp.regularizer.decayed_spans(flat), np.empty(size), np.empty(size),
             np.empty(size))
    step["forward"](x, model, 32)
    L = net.L
    factor = 1 / 32 if w is None else 1 / w.sum()
    total = step["output_error"](model, Y, np.empty(0) if w is None else w, factor, 32)
    step["backward"](x, model, 32)
    for l in range(1, L + 1):
        dW, db = step["params"](flat.grad, layout, l)
        np.testing.assert_allclose(dW, reference.dW[l], rtol=RTOL64, atol=RTOL64 * np.abs(reference.dW[l]).max())
        np.testing.assert_allclose(db, reference.db[l], rtol=RTOL64, atol=RTOL64 * np.abs(reference.db[l]).max())
    assert total * factor == pytest.approx(net.loss(x, labels, sample_weight=w), rel=RTOL64)


LAST_REASON = [""]


def _hidden_softmax():
    with pytest.warns(dp.errors.DeltapropWarning, match="hidden layer with softmax"):
        return network(acts=("softmax", "relu"), dtype="float32")


def _plan(net, X, y, batch_size=32, callbacks_=(), optimizer=None, **fit_kw):
    """compiled_steps' answer for a fit of ``net`` (after one epoch set up its training state); the reason
    compiled_reason gives goes to LAST_REASON."""
    net.fit(X, y, epochs=1, batch_size=batch_size, verbose=0, optimizer=optimizer, **fit_kw)
    data = EpochData(X, net.targets(y, len(y)), None, True, True)
    LAST_REASON[0] = fused.compiled_reason(net, net.training.optimizer, data, batch_size, list(callbacks_)) or ""
    return fused.compiled_steps(net, net.training, data, TrainConfig(batch_size=batch_size), list(callbacks_))


class Gradients(callbacks.Callback):
    def on_backward(self, net, grads):
        pass


class EveryBatch(callbacks.Callback):
    def on_batch_end(self, net, batch, n_batches):
        pass


def test_taken_only_where_they_compute_the_same_thing():
    """compiled_reason says why each of these fits keeps the readable step (and compiled_steps declines)."""
    doubled_mse = Loss("mse", mse, lambda a, y, out=None: 2 * (a - y))  # not the built-in rule: no kernel
    X, y = digits_small()
    X = X.astype(np.float32)
    assert _plan(network(dtype="float32"), X, y) is not None
    assert _plan(network(dtype="float32"), X, y, callbacks_=[callbacks.Progress()]).span == fused.SPAN
    plain = Activation("plain_tanh", np.tanh, lambda z: 1 - np.tanh(z) ** 2)  # no kernel
    refused = {
        "has dropout": lambda: _plan(dp.Network([dp.Dense(64, 32, "relu", dropout=0.2),
                                                 dp.Dense(32, 10, "softmax")], loss="cross_entropy",
                                                dtype="float32"), X, y),
        "Jacobian": lambda: _plan(network(loss="mse", dtype="float32"), X, y),
        "loss 'mse' has no kernel": lambda: _plan(network(loss=doubled_mse, out="identity", dtype="float32"), X, y),
        "'plain_tanh' has no kernel": lambda: _plan(network(acts=(plain, "relu"), dtype="float32"), X, y),
        "hidden layer 1 has no element-wise": lambda: _plan(_hidden_softmax(), X, y),
        "computed from z": lambda: _plan(network(out="sigmoid", dtype="float32"), X, y),
        "Gradients looks at every step": lambda: _plan(network(dtype="float32"), X, y, callbacks_=[Gradients()]),
        "EveryBatch looks at every step": lambda: _plan(network(dtype="float32"), X, y, callbacks_=[EveryBatch()]),
        "numpy backend": lambda: _plan(dp.Network([dp.Dense(64, 10, "softmax")], loss="cross_entropy",
                                                  dtype="float32", ops="numpy"), X, y),
        "2^18": lambda: _plan(network(dtype="float32"), X, y, batch_size=1024),
        "C-ordered": lambda: _plan(network(dtype="float32"), np.asfortranarray(X), y),
        "network's dtype": lambda: _plan(network(dtype="float64"), X, y),
    }
    with pytest.MonkeyPatch.context() as patch:  # no cache folder: every process would compile again
        patch.setattr(compiled_step, "CACHED", False)
        assert _plan(network(dtype="float32"), X, y) is None
        assert "no writable cache folder" in LAST_REASON[0]
    for words, plan in refused.items():
        assert plan() is None, words
        assert words in LAST_REASON[0], (words, LAST_REASON[0])


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
    """FLUSH_EVERY is defined once (optimizers/base.py): the assembled step takes it from there."""
    step = compiled_step.assemble(fused.recipe(network(), dp.Adam())).py_func.__globals__
    assert step["FLUSH_EVERY"] == FLUSH_EVERY


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
    assert compiled_step.compiled_before(compiled_step.assemble(fused.recipe(network(dtype="float32"), dp.Adam())))
    assert "compiling" not in capsys.readouterr().out
    monkeypatch.setattr(compiled_step, "compiled_before", lambda train: False)
    network(dtype="float32").fit(X.astype(np.float32), y, epochs=1, batch_size=32, verbose=1)
    network(dtype="float32").fit(X.astype(np.float32), y, epochs=1, batch_size=32, verbose=0)
    out = capsys.readouterr().out
    assert out.count("compiling the whole training step") == 1, out


# --- a rule defined outside the library, with its kernel beside it, runs compiled ---------------------------
def softsign(z, out=None):
    """z / (1 + |z|): a user's activation (NumPy)."""
    return np.divide(z, 1 + np.abs(z), out=out)


def softsign_prime(z):
    return 1 / (1 + np.abs(z)) ** 2


def softsign_forward_loop(z, b, a):
    for r in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[r, j] += b[j]
            a[r, j] = z[r, j] / (1 + abs(z[r, j]))


def softsign_chain_loop(g, z):
    for r in range(g.shape[0]):
        for j in range(g.shape[1]):
            g[r, j] *= 1 / (1 + abs(z[r, j])) ** 2


def test_a_registered_activation_with_a_kernel_runs_compiled(monkeypatch):
    """register_activation(..., kernel=Kernel(forward, chain)): the compiled step takes it (compiled_reason None,
    one compiled call per epoch) and trains what the readable step trains; without a kernel, it says why."""
    register_activation("softsign_test", softsign, softsign_prime, overwrite=True)
    assert "'softsign_test' has no kernel" in fused.compiled_reason(network(acts=("softsign_test", "relu")),
                                                                   dp.Adam())
    register_activation("softsign_test", softsign, softsign_prime, overwrite=True,
                        kernel=Kernel(softsign_forward_loop, softsign_chain_loop))
    try:
        assert fused.compiled_reason(network(acts=("softsign_test", "relu")), dp.Adam()) is None
        fast, _, calls, _ = train(monkeypatch, True, {"acts": ("softsign_test", "relu")}, {}, lambda: dp.Adam(1e-3))
        slow, _, none, _ = train(monkeypatch, False, {"acts": ("softsign_test", "relu")}, {}, lambda: dp.Adam(1e-3))
        assert calls == 3 and none == 0
        for a, b in zip(fast, slow, strict=True):
            np.testing.assert_allclose(a, b, rtol=RTOL64, atol=RTOL64 * np.abs(b).max())
    finally:
        dp.ACTIVATIONS.pop("softsign_test")


def test_a_kernel_that_is_not_its_rule_is_refused():
    """A kernel computing another function than f would train another network compiled: refused on entry."""
    with pytest.raises(ActivationError, match="kernel's forward"):
        register_activation("softsign_wrong", softsign, softsign_prime,
                            kernel=Kernel(dp.ACTIVATIONS["tanh"].kernel.forward, softsign_chain_loop))
    assert "softsign_wrong" not in dp.ACTIVATIONS


def adagrad_constants(hyper, t):
    """(lr, eps)."""
    return hyper


def adagrad_loop(theta, g, state, k):
    """s += g^2;  theta -= lr g / (sqrt(s) + eps)."""
    lr, eps = theta.dtype.type(k[0]), theta.dtype.type(k[1])
    theta, g, s = theta.reshape(-1), g.reshape(-1), state[0].reshape(-1)
    for i in range(theta.size):
        s[i] += g[i] * g[i]
        theta[i] -= (g[i] / (np.sqrt(s[i]) + eps)) * lr


class Adagrad(Optimizer):
    """A new optimizer, written in this file only: its NumPy lines, its kernel and its constants."""

    name = "adagrad_test"
    slots = ("sum",)
    kernel = staticmethod(adagrad_loop)
    constants = staticmethod(adagrad_constants)

    def __init__(self, lr=0.05, eps=1e-10):
        super().__init__(lr)
        self.eps = eps

    def hyper(self):
        return (self.lr, self.eps)

    def numpy_update(self, theta, g, state, k, tmp):
        lr, eps = k
        squares = state[0]
        np.square(g, out=tmp)
        squares += tmp
        np.sqrt(squares, out=tmp)
        tmp += eps
        np.divide(g, tmp, out=tmp)
        tmp *= lr
        theta -= tmp

    def hyperparameters(self):
        return {"lr": self.base_lr, "eps": self.eps}


def test_a_new_optimizer_with_a_kernel_trains_compiled(monkeypatch):
    """Adagrad above trains compiled (one call per epoch) to the readable step's weights, bit for bit: its
    kernel does its NumPy lines in their order."""
    assert fused.compiled_reason(network(), Adagrad()) is None
    fast, _, calls, fast_net = train(monkeypatch, True, {}, {}, Adagrad)
    slow, _, none, _ = train(monkeypatch, False, {}, {}, Adagrad)
    assert calls == 3 and none == 0 and fast_net.training.optimizer.t == 3 * 57
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(a, b)
    numpy_net = network(ops="numpy")  # the NumPy lines alone (no kernel anywhere)
    X, y = digits_small()
    numpy_net.fit(X, y, epochs=3, batch_size=32, verbose=0, optimizer=Adagrad())
    np.testing.assert_allclose(numpy_net.layers[0].W, fast[0], rtol=RTOL64, atol=RTOL64)


def test_mish_trains_compiled_as_the_numpy_step_trains():
    """mish, added in activations/mish.py alone (and its import): compiled (NumbaOps) and NumPy's readable step
    agree to 1e-12."""
    X, y = digits_small()
    nets = []
    for backend in ("numba", "numpy"):
        net = network(acts=("mish", "mish"), ops=backend)
        nets.append(net)
        net.fit(X, y, epochs=2, batch_size=32, verbose=0)
    assert fused.compiled_reason(nets[0], nets[0].training.optimizer) is None
    for a, b in zip(nets[0].layers, nets[1].layers, strict=True):
        np.testing.assert_allclose(a.W, b.W, rtol=RTOL64, atol=RTOL64 * np.abs(b.W).max())


def test_fit_says_which_step_trains(capsys):
    """fit(verbose=1) starts with one line: the compiled step, or the readable one and why."""
    X, y = digits_small()
    network(dtype="float64").fit(X, y, epochs=1, batch_size=32, verbose=1)
    assert "training step: compiled (numba)" in capsys.readouterr().out
    network(acts=("relu", "relu")).fit(X, y, epochs=1, batch_size=32, verbose=1, callbacks=[Gradients()])
    assert "readable step: callback Gradients looks at every step" in capsys.readouterr().out


def test_info_says_how_a_model_trains(tmp_path):
    """deltaprop info: per installation, which rules hold a kernel (mish among them); per model, whether
    training it further runs compiled, else why not."""
    import os
    import subprocess
    import sys

    X, y = digits_small()
    for name, acts in (("mish", ("mish", "relu")), ("plain", ("relu", "relu"))):
        net = network(acts=acts)
        net.fit(X, y, epochs=1, batch_size=32, verbose=0, optimizer=dp.RMSprop(1e-3) if name == "mish" else None)
        net.save(tmp_path / f"{name}.safetensors")
    info = [subprocess.run([sys.executable, "-m", "deltaprop.cli", "info", *args], capture_output=True, text=True,
                           check=True).stdout for args in ([], [str(tmp_path / "mish.safetensors")])]
    assert "with a compiled kernel: activations " in info[0] and "mish" in info[0].split("with a compiled")[1]
    assert "optimizers sgd, adam, adamw, rmsprop" in info[0]
    assert "training step (a further fit of this model: rmsprop, batch 32): compiled (numba)" in info[1]
    numpy_info = subprocess.run([sys.executable, "-m", "deltaprop.cli", "info", str(tmp_path / "plain.safetensors")],
                                capture_output=True, text=True, check=True,
                                env={**os.environ, "DELTAPROP_KERNELS": "numpy"}).stdout
    assert "readable step (a further fit of this model: adam, batch 32): the numpy backend has no compiled step" \
        in numpy_info
