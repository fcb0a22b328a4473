"""The training buffers: the same numbers as the fresh-array path, and no per-batch allocations."""

import tracemalloc

import numpy as np
import pytest

import deltaprop as dp
from deltaprop import backprop
from deltaprop.training import TrainConfig, Trainer
from deltaprop.workspace import Workspace

pytestmark = pytest.mark.slow  # traces every allocation of whole trainings (not in the quick tier)

CASES = [
    (("relu", "tanh"), "softmax", "cross_entropy"),
    (("sigmoid", "elu"), "identity", "mse"),
    (("leaky_relu", "softplus"), "sigmoid", "binary_cross_entropy"),
    (("softmax", "relu"), "softmax", "mse"),
    (("tanh", "identity"), "sigmoid", "mse"),
]


def build(hidden, output, loss, dtype, m, width=16, n_out=8, dropout=0.0, seed=0):
    rng = np.random.default_rng(seed)
    layers = [dp.Dense(12, width, hidden[0], dropout=dropout), dp.Dense(width, width, hidden[1]),
              dp.Dense(width, n_out, output)]
    net = dp.Network(layers, loss=loss, dtype=dtype, seed=seed)
    X = rng.normal(size=(m, 12)).astype(dtype)
    y = {"cross_entropy": rng.integers(0, n_out, m), "mse": rng.normal(size=(m, n_out)),
         "binary_cross_entropy": rng.integers(0, 2, (m, n_out))}[loss]
    return net, X, net.targets(y, m)


@pytest.mark.filterwarnings("ignore:layer .* hidden layer with softmax")  # on purpose: its Jacobian sigma'
@pytest.mark.parametrize("hidden,output,loss", CASES)
def test_buffers_give_the_fresh_path_numbers(hidden, output, loss):
    """backward into the workspace equals net.backward's fresh arrays (float64, relative 1e-12)."""
    net, X, Y = build(hidden, output, loss, "float64", m=9)
    fresh = net.backward(net.forward(X), Y)
    flat = dp.TrainingState().flat_for(net.layers, net.dtype)
    ws = Workspace(net.layers, flat, 16)  # larger than the batch: the first 9 rows are used
    trace = net.propagate(X, workspace=ws)
    loss_value = net.loss_fn.value(trace.z[3], trace.a[3], Y, net.layers[-1].activation, scratch=ws.out(9).delta[3],
                                   ops=net.ops)
    assert loss_value == pytest.approx(net.loss(X, Y), rel=1e-12)
    buffered = backprop.backward(net.layers, net.loss_fn, trace, Y, out=ws.out(9), ops=net.ops)
    for l in (1, 2, 3):
        np.testing.assert_allclose(buffered.dW[l], fresh.dW[l], rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(buffered.db[l], fresh.db[l], rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(buffered.delta[l], fresh.delta[l], rtol=1e-12, atol=1e-300)
        assert np.shares_memory(buffered.dW[l], flat.grad)  # written into the gradient vector


def peak_bytes_per_step(net, X, Y, steps=70):
    """The most memory (traced by tracemalloc, all domains) alive at once during training steps,
    above what was alive before them; 70 steps include one optimizer-state flush."""
    state = net.training = dp.TrainingState(dp.Adam())
    ws, rng = Workspace(net.layers, state.flat_for(net.layers, net.dtype), X.shape[0]), np.random.default_rng(1)
    trainer = Trainer(net, TrainConfig())  # steps only: no data, no callbacks
    for _ in range(3):
        trainer.train_step(ws, (X, Y, None), rng)
    tracemalloc.start()
    try:
        trainer.train_step(ws, (X, Y, None), rng)
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(steps):
            trainer.train_step(ws, (X, Y, None), rng)
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


@pytest.mark.filterwarnings("ignore:layer .* hidden layer with softmax")  # on purpose: its Jacobian sigma'
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden,output,loss", CASES)
def test_no_per_batch_arrays_are_allocated(hidden, output, loss, dtype):
    """A training step allocates less than half of its smallest (m, n_l) array: every batch array
    lives in the workspace. What remains is NumPy's iteration buffers and (m,) row vectors."""
    m, width, n_out = 1024, 256, 32
    net, X, Y = build(hidden, output, loss, dtype, m, width, n_out, dropout=0.2)
    smallest_batch_array = m * n_out * np.dtype(dtype).itemsize
    assert peak_bytes_per_step(net, X, Y) < smallest_batch_array / 2


@pytest.mark.parametrize("validation_split", [0.0, 0.1])
def test_fit_needs_no_copy_of_the_data(validation_split):
    """Training memory beyond the data: a few copies of the parameters, batch buffers, one-hot targets.
    (A shuffled copy of X, a copy of the rows left after a validation split, or a full-size NaN
    check would each cost most of X itself.)"""
    rng = np.random.default_rng(0)
    X = rng.random((20000, 784), dtype=np.float32)  # 63 MB
    y = rng.integers(0, 10, 20000)
    net = dp.Network([dp.Dense(784, 64, "relu"), dp.Dense(64, 10, "softmax")], loss="cross_entropy",
                     dtype="float32", seed=0)
    params = sum(value.nbytes for value in net.params().values())
    dp.Network([dp.Dense(784, 3, "relu"), dp.Dense(3, 10, "softmax")], loss="cross_entropy",
               dtype="float32").fit(X[:64], y[:64], epochs=1, verbose=0)  # kernels loaded: not training memory
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        net.fit(X, y, epochs=1, batch_size=128, verbose=0, validation_split=validation_split)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    one_hot = 20000 * 10 * 4
    val_chunk = 2**21 if validation_split else 0  # held-out rows are evaluated in gathered chunks of 2 MB
    assert peak < 8 * params + 2 * one_hot + val_chunk + 2 * 2**20  # about 6 MB here, while X is 63 MB
    assert peak < X.nbytes / 8
