"""The array backends: NumbaOps' fused loops against NumpyOps' lines, which are the reference.

If a loop drifted from the NumPy lines (a wrong constant, a float32 loop silently promoted,
a missed NaN), these comparisons fail. Optimizer steps, the batch sum, the shortcut delta,
bias + relu and relu's sigma' must match bit for bit; loops with exp or log (softmax,
cross-entropy) to rtol 1e-5 in float32 and 1e-12 in float64 (RTOL x 10: a few ulps).
"""

import subprocess
import sys

import numpy as np
import pytest

import deltaprop as dp
from deltaprop import ops
from deltaprop.activations import RELU, SOFTMAX
from deltaprop.losses import shortcut_delta
from deltaprop.ops import NumbaOps, NumpyOps
from deltaprop.ops.numpy_ops import SMALL

pytest.importorskip("numba", reason="the fused kernels need numba (pip install 'deltaprop[fast]')")

RTOL = {np.float32: 1e-6, np.float64: 1e-13}
FAST, SLOW = ops.get_ops("numba"), ops.get_ops("numpy")

OPTIMIZERS = {
    "adam": lambda: dp.Adam(lr=0.01),
    "adamw": lambda: dp.AdamW(lr=0.01, weight_decay=0.1),
    "sgd": lambda: dp.SGD(lr=0.1),
    "sgd_momentum": lambda: dp.SGD(lr=0.1, momentum=0.9),
    "sgd_nesterov": lambda: dp.SGD(lr=0.1, momentum=0.9, nesterov=True),
    "rmsprop": lambda: dp.RMSprop(lr=0.01),
    "rmsprop_momentum": lambda: dp.RMSprop(lr=0.01, momentum=0.8),
}


def spy(monkeypatch, backend: NumbaOps) -> list:
    """The names of the compiled loops ``backend`` really calls, in order: the rules' kernels (compiled through
    ``backend.compiled``) and kernels.py's batch sum and scaled difference."""
    ran = []
    real = backend.compiled

    def compiled(function):
        loop = real(function)

        def record(*args):
            ran.append(function.__name__)
            return loop(*args)

        return record

    monkeypatch.setattr(backend, "compiled", compiled)
    for name in ("batch_sum", "scaled_difference"):
        loop = getattr(backend, "_" + name)

        def record_own(*args, _name=name, _loop=loop):
            ran.append(_name)
            return _loop(*args)

        monkeypatch.setattr(backend, "_" + name, record_own)
    return ran


def _steps(optimizer, dtype, backend, n_steps: int = 6):
    """n_steps updates of a (30, 7) weight and a (7,) bias from fixed gradients."""
    rng = np.random.default_rng(3)
    params = {(1, "W"): rng.standard_normal((30, 7)).astype(dtype), (1, "b"): rng.standard_normal(7).astype(dtype)}
    grads = [{k: rng.standard_normal(v.shape).astype(dtype) for k, v in params.items()} for _ in range(n_steps)]
    for g in grads:
        optimizer.step(params, g, ops=backend, decayed={(1, "W")})
    return params, optimizer.state_arrays()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_loops_equal_the_numpy_update_bit_for_bit(name, dtype, monkeypatch):
    """The loop does NumPy's operations in NumPy's order, in the same dtype, with no fused multiply-add
    (a promoted float64 loop, or a reordered formula, would differ in the last bits); and it really ran."""
    ran = spy(monkeypatch, FAST)
    fast, fast_state = _steps(OPTIMIZERS[name](), dtype, FAST)
    assert ran and set(ran) <= {"adam_loop", "sgd_loop", "sgd_momentum_loop", "rmsprop_loop", "rmsprop_momentum_loop",
                                "shrink_loop", "add_l2_loop"}
    slow, slow_state = _steps(OPTIMIZERS[name](), dtype, SLOW)
    for key in slow:
        assert fast[key].dtype == dtype
        np.testing.assert_array_equal(fast[key], slow[key])
    assert fast_state.keys() == slow_state.keys()
    for key in slow_state:
        np.testing.assert_array_equal(fast_state[key], slow_state[key])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_sigma_prime_loop_equals_the_step_product(dtype):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((40, 9)).astype(dtype)
    z[0, :3] = [0.0, -0.0, np.nan]
    g = rng.standard_normal((40, 9)).astype(dtype)
    z_before = z.copy()
    fast = FAST.act_backward(g.copy(), z, RELU)
    np.testing.assert_array_equal(z, z_before)  # the loop leaves z alone
    with np.errstate(invalid="ignore"):
        slow = SLOW.act_backward(g.copy(), z.copy(), RELU)
    np.testing.assert_array_equal(fast, slow)  # 0/1 factors: exact, NaN where z is NaN
    assert np.isnan(fast[0, 2]) and fast[0, 0] == 0 and fast[0, 1] == 0


def _train(backend, output, loss, dtype, y, optimizer):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 12)).astype(dtype)
    net = dp.Network([dp.Dense(12, 16, "relu", dropout=0.1), dp.Dense(16, 3, output)], loss=loss, dtype=dtype,
                     seed=4, ops=backend)
    history = net.fit(X, y, epochs=3, batch_size=32, optimizer=optimizer, validation_split=0.2, verbose=0)
    return net, history


@pytest.mark.parametrize("optimizer", [lambda: dp.Adam(lr=0.01), lambda: dp.SGD(0.05, momentum=0.9)])
def test_both_backends_train_the_same_weights_bit_for_bit_without_exp(optimizer):
    """relu + identity output + mse: every fused loop of this training (bias + relu, relu's sigma', batch
    sum, the optimizer) promises NumPy's bits, so three epochs give identical weights and losses."""
    y = np.random.default_rng(2).standard_normal((300, 3))
    (fast_net, fast), (slow_net, slow) = (_train(b, "identity", "mse", "float64", y, optimizer())
                                          for b in (FAST, SLOW))
    assert fast["loss"] == slow["loss"] and fast["val_loss"] == slow["val_loss"]
    for key, value in slow_net.params().items():
        np.testing.assert_array_equal(fast_net.params()[key], value)


@pytest.mark.parametrize("dtype,rtol", [("float32", 1e-4), ("float64", 1e-11)])
def test_both_backends_train_softmax_networks_alike(dtype, rtol):
    """softmax + cross-entropy: the loops' exp and log may differ in the last place, so a whole fit agrees
    to a tolerance (float32: 1e-4 relative on the weights; float64: 1e-11)."""
    y = np.random.default_rng(3).integers(0, 3, 300)
    (fast_net, fast), (slow_net, slow) = (_train(b, "softmax", "cross_entropy", dtype, y, dp.Adam(lr=0.01))
                                          for b in (FAST, SLOW))
    np.testing.assert_allclose(fast["loss"], slow["loss"], rtol=rtol)
    for key, value in slow_net.params().items():
        np.testing.assert_allclose(fast_net.params()[key], value, rtol=rtol, atol=rtol / 100)


class ContractOps(NumbaOps):
    """NumbaOps that checks its contract on every call: C-contiguous arrays of one dtype."""

    seen: list = []

    def _check(self, *arrays):
        arrays = [a for a in arrays if isinstance(a, np.ndarray) and a.dtype.kind == "f"]  # (not index tables)
        assert all(a.flags.c_contiguous for a in arrays), [a.strides for a in arrays]
        assert len({a.dtype for a in arrays}) == 1, [a.dtype for a in arrays]
        self.seen.append(arrays[0].dtype)

    def bias_act(self, z, b, act, a):
        self._check(z, b, a)
        return super().bias_act(z, b, act, a)

    def act_backward(self, g, z, act):
        self._check(g, z)
        return super().act_backward(g, z, act)

    def batch_sum(self, delta, out=None):
        self._check(delta, out)
        return super().batch_sum(delta, out)

    def scaled_difference(self, a, y, scale, out):
        self._check(a, y, out)
        return super().scaled_difference(a, y, scale, out)

    def kernel(self, function):
        loop = super().kernel(function)

        def checked(*args):  # the rules' kernels: optimizer updates (state in a tuple), loss value, decay
            self._check(*[a for arg in args for a in (arg if isinstance(arg, tuple) else (arg,))])
            return loop(*args)

        return checked


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_array_reaching_the_backend_is_contiguous_in_the_network_dtype(dtype):
    """The backend checks nothing per call, so the callers must hold to its contract: a fit with dropout,
    a held-out split, sample weights, a short last batch, a Fortran-ordered float64 X, then predict."""
    rng = np.random.default_rng(5)
    X = np.asfortranarray(rng.standard_normal((203, 6)))
    y = rng.integers(0, 3, 203)
    backend = ContractOps()
    backend.seen = []
    net = dp.Network([dp.Dense(6, 8, "relu", dropout=0.2), dp.Dense(8, 8, "tanh"), dp.Dense(8, 3, "softmax")],
                     loss="cross_entropy", dtype=dtype, seed=0, ops=backend)
    net.fit(X, y, epochs=2, batch_size=16, validation_split=0.1, sample_weight=rng.random(203), verbose=0)
    net.fit(X, y, epochs=1, batch_size=16, verbose=0)
    net.predict(X[::2])
    assert len(backend.seen) > 100 and set(backend.seen) == {np.dtype(dtype)}


def test_backend_choice_and_environment_variable():
    assert isinstance(FAST, NumbaOps) and type(SLOW) is NumpyOps
    assert ops.get_ops("numba") is FAST  # one shared instance per kind
    previous = ops.set_default("numpy")
    try:
        assert ops.default_ops() is SLOW and dp.Network([dp.Dense(2, 1)]).ops is SLOW
        ops.set_default("numba")
        assert dp.Network([dp.Dense(2, 1)]).ops is FAST
    finally:
        ops.set_default(previous)
    with pytest.raises(dp.ConfigError, match="unknown backend"):
        ops.get_ops("cuda")
    code = "import deltaprop as dp; print(dp.ops.default_ops().name, dp.Network([dp.Dense(2, 1)]).ops.name)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"DELTAPROP_KERNELS": "numpy", "PATH": ""}).stdout
    assert out.split() == ["numpy", "numpy"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 2), (32, 10), (300, 7)])
def test_bias_softmax_loop_equals_the_numpy_lines(shape, dtype):
    rng = np.random.default_rng(5)
    z = (rng.standard_normal(shape) * 30).astype(dtype)
    z[0, 0] = 80  # exp(80) overflows float32 unless the row max is taken out first
    b = rng.standard_normal(shape[1]).astype(dtype)
    z_fast, z_slow = z.copy(), z.copy()
    fast = FAST.bias_act(z_fast, b, SOFTMAX, np.empty_like(z))
    slow = SLOW.bias_act(z_slow, b, SOFTMAX, np.empty_like(z))
    np.testing.assert_array_equal(z_fast, z_slow)  # z^l = z + b, kept for the backward pass
    np.testing.assert_allclose(fast, slow, rtol=RTOL[dtype] * 10, atol=1e-30)
    np.testing.assert_allclose(fast.sum(axis=1), 1, rtol=RTOL[dtype] * 10)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_loop_equals_the_numpy_loss(dtype, weighted, monkeypatch):
    rng = np.random.default_rng(6)
    z = (rng.standard_normal((50, 4)) * 20).astype(dtype)
    y = np.eye(4, dtype=dtype)[rng.integers(0, 4, 50)]
    w = rng.random(50) if weighted else None
    loss, sigma = dp.LOSSES["cross_entropy"], dp.ACTIVATIONS["softmax"]
    a = sigma.forward(z)
    ran = spy(monkeypatch, FAST)
    fast = loss.value(z, a, y, sigma, w, ops=FAST)
    assert ran == ["cross_entropy_total_loop"]
    slow = loss.value(z, a, y, sigma, w, ops=SLOW)
    reference = loss.value(z, a, y, sigma, w)  # no backend: the loss's own lines
    assert isinstance(fast, float)
    assert fast == pytest.approx(slow, rel=RTOL[dtype] * 10) and slow == pytest.approx(reference, rel=RTOL[dtype] * 10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["relu", "softmax"])
def test_dense_forward_loops_equal_the_two_numpy_lines(activation, dtype, monkeypatch):
    """z = a_prev W + b and a = sigma(z) in one loop equal z += b, then sigma; NaN stays NaN."""
    rng = np.random.default_rng(7)
    layer = dp.Dense(6, 9, activation)
    layer.initialize(rng, np.dtype(dtype))
    layer.b[:] = rng.standard_normal(9)
    a_prev = rng.standard_normal((20, 6)).astype(dtype)
    a_prev[0, 0] = np.nan
    ran = spy(monkeypatch, FAST)
    fast_z, fast_a = layer.forward(a_prev, FAST, z=np.empty((20, 9), dtype), a=np.empty((20, 9), dtype))
    assert ran == [f"{activation}_forward_loop"]  # the activation's kernel ran, once
    with np.errstate(invalid="ignore"):
        slow_z, slow_a = layer.forward(a_prev, SLOW, np.empty((20, 9), dtype), np.empty((20, 9), dtype))
    np.testing.assert_array_equal(fast_z, slow_z)
    np.testing.assert_allclose(fast_a, slow_a, rtol=RTOL[dtype] * 10)  # NaN rows match too (equal_nan)
    assert np.isnan(fast_a[0]).all() and (fast_a[1:] >= 0).all()
    if activation == "relu":  # relu in place over z (inference): the same bits
        z = np.empty((20, 9), dtype)
        layer.forward(a_prev, FAST, z=z, a=z)
        assert ran[-1] == "relu_over_z_loop"
        np.testing.assert_array_equal(z, slow_a)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m", [1, 2, 33, 500])
def test_batch_sum_loop_equals_numpy_column_sum_bit_for_bit(m, dtype):
    """Equation (4)'s sum over the batch adds the rows in NumPy's order: the same bits, NaN, inf and -0 kept."""
    delta = (np.random.default_rng(9).standard_normal((m, 7)) * 1e3).astype(dtype)
    delta[:, 0] = -0.0
    delta[0, 1], delta[-1, 2] = np.nan, np.inf
    expected = delta.sum(axis=0)
    assert FAST.batch_sum(delta, out=np.empty(7, dtype)).tobytes() == expected.tobytes()
    assert FAST.batch_sum(delta).tobytes() == SLOW.batch_sum(delta).tobytes()  # fresh result


def test_predictions_agree_between_backends():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((500, 12)).astype(np.float32)
    layers = lambda: [dp.Dense(12, 16, "relu"), dp.Dense(16, 3, "softmax")]  # noqa: E731
    fast = dp.Network(layers(), loss="cross_entropy", dtype="float32", seed=2, ops="numba").predict_proba(X)
    slow = dp.Network(layers(), loss="cross_entropy", dtype="float32", seed=2, ops="numpy").predict_proba(X)
    np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-7)


def test_no_writable_cache_folder_still_compiles(monkeypatch):
    """numba raises RuntimeError when it finds nowhere to cache (read-only install, no home)."""
    import numba

    from deltaprop.ops.jit import compiled
    from deltaprop.optimizers import sgd_loop

    real = numba.njit

    def njit(**options):
        if options.get("cache"):
            raise RuntimeError("cannot cache function: no locator available")
        return real(**options)

    monkeypatch.setattr(numba, "njit", njit)
    compiled.cache_clear()
    try:
        theta, g = np.ones(5, np.float32), np.full(5, 2, np.float32)
        compiled(sgd_loop)(theta, g, (), (0.25,))
        np.testing.assert_array_equal(theta, 0.5)
    finally:
        compiled.cache_clear()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_flush_of_tiny_optimizer_state_equals_the_numpy_flush(dtype):
    """Every FLUSH_EVERY steps, state below 2^20 x the smallest normal is zeroed; the rest, NaN and inf stay."""
    from deltaprop.optimizers import FLUSH_EVERY

    tiny = float(np.finfo(dtype).tiny)
    values = np.array([0.0, tiny * 2**19, -tiny * 2**20, tiny * 2**21, -1e-3, 0.5, np.nan, -np.inf], dtype=dtype)

    def flushed(backend):
        opt = dp.Adam()
        opt.t = FLUSH_EVERY
        state = {"m": values.copy(), "v": values[::-1].copy()}
        with np.errstate(invalid="ignore"):
            opt._flush_denormals(state, np.empty_like(values), backend)
        return state

    fast, slow = flushed(FAST), flushed(SLOW)
    for slot in ("m", "v"):
        np.testing.assert_array_equal(fast[slot], slow[slot])
    np.testing.assert_array_equal(fast["m"][:4], [0, 0, 0, values[3]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shortcut_delta_loop_equals_numpy_bit_for_bit(dtype, monkeypatch):
    """Equation (1)'s shortcut (a^L - y) / m in one pass: the same bits as subtract, then *= 1/m."""
    rng = np.random.default_rng(10)
    a, y = rng.random((37, 5)).astype(dtype), np.eye(5, dtype=dtype)[rng.integers(0, 5, 37)]
    a[3, 1] = np.nan
    ran = spy(monkeypatch, FAST)
    fast = shortcut_delta(a, y, None, out=np.empty_like(a), ops=FAST)
    assert ran == ["scaled_difference"]
    slow = shortcut_delta(a, y, None, np.empty_like(a), ops=SLOW)
    assert fast.tobytes() == slow.tobytes() == shortcut_delta(a, y, None).tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_loop_takes_underflowed_rows_from_z(dtype):
    """The loop reads -log a_y from the forward pass; where a_y underflowed to 0 (a target far below
    the row's top logit) that would be inf, so such rows must come from z by log-sum-exp: finite, exact."""
    z = np.array([[0.0, 1.0, 2.0], [-1000.0, 0.0, 5.0]], dtype=dtype)
    y = np.eye(3, dtype=dtype)[[2, 0]]
    loss, sigma = dp.LOSSES["cross_entropy"], dp.ACTIVATIONS["softmax"]
    a = sigma.forward(z)
    assert a[1, 0] == 0  # underflowed
    row0 = np.log(np.exp(z[0]).sum()) - 2.0
    for backend in (FAST, SLOW):
        finite = loss.value(z, a, y, sigma, ops=backend)
        assert finite == pytest.approx((row0 + 1005.0 + np.log1p(np.exp(-5.0))) / 2, rel=RTOL[dtype] * 10)


SHAPES = [(32, 64, 64), (3, 5, 2), (128, 256, 128)]  # np.dot, np.dot, np.matmul (the result's size vs SMALL)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m, k, n", SHAPES)
def test_gemm_into_out_equals_numpy_matmul(m, k, n, dtype):
    """Forward (a W), backward (a^T delta) and (delta W^T) shapes, transposed views included."""
    rng = np.random.default_rng(0)
    a, W, delta = (rng.standard_normal(s).astype(dtype) for s in [(m, k), (k, n), (m, n)])
    for left, right in [(a, W), (a.T, delta), (delta, W.T)]:
        out = np.empty((left.shape[0], right.shape[1]), dtype)
        assert SLOW.gemm(left, right, out=out) is out
        np.testing.assert_allclose(out, np.matmul(left, right), rtol=1e-6 if dtype == np.float32 else 1e-14)
    assert min(m * n for m, _, n in SHAPES) <= SMALL < max(m * n for m, _, n in SHAPES)  # both paths run


def test_gemm_out_np_dot_cannot_take_falls_back_to_matmul():
    """A strided out, or one of another dtype, still gets the product (np.dot would refuse both)."""
    a, b = np.ones((4, 3), np.float32), np.full((3, 5), 2, np.float32)
    strided = np.zeros((4, 10), np.float32)[:, ::2]
    np.testing.assert_array_equal(SLOW.gemm(a, b, out=strided), 6)
    np.testing.assert_array_equal(SLOW.gemm(a, b, out=np.zeros((4, 5))), 6)
    np.testing.assert_array_equal(SLOW.gemm(a, b), 6)  # no out: a fresh array
    with pytest.raises(ValueError):
        SLOW.gemm(a, a, out=np.empty((4, 3), np.float32))  # mismatched shapes still fail loudly


def test_no_loop_is_first_loaded_in_the_middle_of_training(monkeypatch):
    """Loading a compiled loop takes tens of ms: a fit on 4 batches (speed.py's warm-up) must load every loop
    that later fits use, the state flush of step FLUSH_EVERY included, or the first timed fit pays for it."""
    backend = NumbaOps()  # a fresh backend: its loops are compiled or loaded on first use
    X, y = np.random.default_rng(0).random((2000, 8), dtype=np.float32), np.arange(2000) % 3

    def network():
        return dp.Network([dp.Dense(8, 8, "relu"), dp.Dense(8, 3, "softmax")], loss="cross_entropy",
                          dtype="float32", seed=0, ops=backend)

    network().fit(X[:128], y[:128], epochs=1, batch_size=32, verbose=0)
    network().predict(X[:10])
    first_uses = []
    real = backend.compiled

    def compiled(function):
        loop = real(function)

        def watched(*args):
            before = len(loop.signatures)
            result = loop(*args)
            if len(loop.signatures) > before:  # compiled or loaded from disk just now
                first_uses.append(function.__name__)
            return result

        return watched

    monkeypatch.setattr(backend, "compiled", compiled)
    network().fit(X, y, epochs=2, batch_size=16, verbose=0)  # 250 steps: flushes at 64, 128, ...
    assert first_uses == []
