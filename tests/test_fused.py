"""The fused kernels (fused.py) against the plain NumPy code they replace.

The NumPy code is the reference: if a kernel drifted from it (a wrong constant, a
float32 loop silently promoted, a missed NaN), these comparisons fail. Optimizer
steps must match exactly; kernels with exp, log or sums (softmax, cross-entropy)
to rtol 1e-5 in float32 and 1e-12 in float64 (RTOL x 10: a few ulps of rounding).
"""

import subprocess
import sys

import numpy as np
import pytest

import deltaprop as dp
from deltaprop import activations, backprop, fused

pytest.importorskip("numba", reason="the fused kernels need numba (pip install 'deltaprop[fast]')")

RTOL = {np.float32: 1e-6, np.float64: 1e-13}

OPTIMIZERS = {
    "adam": lambda: dp.Adam(lr=0.01),
    "adamw": lambda: dp.AdamW(lr=0.01, weight_decay=0.1),
    "sgd": lambda: dp.SGD(lr=0.1),
    "sgd_momentum": lambda: dp.SGD(lr=0.1, momentum=0.9),
    "sgd_nesterov": lambda: dp.SGD(lr=0.1, momentum=0.9, nesterov=True),
    "rmsprop": lambda: dp.RMSprop(lr=0.01),
    "rmsprop_momentum": lambda: dp.RMSprop(lr=0.01, momentum=0.8),
}


@pytest.fixture(autouse=True)
def kernels_on():
    """Kernels on for every test here, even under DELTAPROP_KERNELS=numpy (CI runs the suite both ways)."""
    previous = fused.use_kernels(True)
    yield
    fused.use_kernels(previous)


@pytest.fixture
def kernels_off():
    previous = fused.use_kernels(False)
    yield
    fused.use_kernels(previous)


def _steps(optimizer, dtype, kernels: bool, n_steps: int = 6):
    """n_steps updates of a (30, 7) weight and a (7,) bias from fixed gradients."""
    rng = np.random.default_rng(3)
    params = {(1, "W"): rng.standard_normal((30, 7)).astype(dtype), (1, "b"): rng.standard_normal(7).astype(dtype)}
    grads = [{k: rng.standard_normal(v.shape).astype(dtype) for k, v in params.items()} for _ in range(n_steps)]
    previous = fused.use_kernels(kernels)
    try:
        for g in grads:
            optimizer.step(params, g)
    finally:
        fused.use_kernels(previous)
    return params, optimizer.state_arrays()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_fused_optimizer_step_equals_the_numpy_update(name, dtype):
    """Bit for bit: the kernel does NumPy's operations in NumPy's order, in the same dtype, with no
    fused multiply-add (a promoted float64 loop, or a reordered formula, would differ in the last bits)."""
    fast, fast_state = _steps(OPTIMIZERS[name](), dtype, kernels=True)
    slow, slow_state = _steps(OPTIMIZERS[name](), dtype, kernels=False)
    for key in slow:
        assert fast[key].dtype == dtype
        np.testing.assert_array_equal(fast[key], slow[key])
    assert fast_state.keys() == slow_state.keys()
    for key in slow_state:
        np.testing.assert_array_equal(fast_state[key], slow_state[key])


def _spy_on_run(monkeypatch) -> list:
    """The names of the kernels that fused.run really ran (not SKIPPED), in order."""
    ran, real = [], fused.run

    def spy(name, *args):
        result = real(name, *args)
        if result is not fused.SKIPPED:
            ran.append(name)
        return result

    monkeypatch.setattr(fused, "run", spy)
    return ran


def test_fused_steps_really_run_in_the_kernel(monkeypatch):
    """Without this, a kernel never chosen (wrong name, rejected arrays) would pass the comparisons above."""
    ran = _spy_on_run(monkeypatch)
    _steps(dp.Adam(), np.float32, kernels=True, n_steps=1)
    _steps(dp.RMSprop(momentum=0.5), np.float32, kernels=True, n_steps=1)
    assert {"adam", "rmsprop_momentum"} <= set(ran)


def test_non_contiguous_parameters_fall_back_to_numpy():
    """A kernel on a reshape-copy would update the copy; the strided array must still move."""
    theta = np.ones((6, 8))[:, ::2]
    before = theta.copy()
    dp.SGD(lr=0.5).step({(1, "W"): theta}, {(1, "W"): np.ones((6, 4))})
    np.testing.assert_array_equal(theta, before - 0.5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_chain_kernel_equals_the_step_product(dtype):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((40, 9)).astype(dtype)
    z[0, :3] = [0.0, -0.0, np.nan]
    g = rng.standard_normal((40, 9)).astype(dtype)
    z_before = z.copy()
    fast = activations.relu_chain(g.copy(), z)
    np.testing.assert_array_equal(z, z_before)  # the kernel leaves z alone
    previous = fused.use_kernels(False)
    try:
        with np.errstate(invalid="ignore"):
            slow = activations.relu_chain(g.copy(), z.copy())
    finally:
        fused.use_kernels(previous)
    np.testing.assert_array_equal(fast, slow)  # 0/1 factors: exact, NaN where z is NaN
    assert np.isnan(fast[0, 2]) and fast[0, 0] == 0 and fast[0, 1] == 0


def test_training_with_and_without_kernels_agrees(kernels_off):
    """A whole fit: same losses, same weights, to float32 rounding."""
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((300, 12)).astype(np.float32), rng.integers(0, 3, 300)

    def train(kernels):
        fused.use_kernels(kernels)
        net = dp.Network([dp.Dense(12, 16, "relu"), dp.Dense(16, 3, "softmax")], loss="cross_entropy",
                         dtype="float32", seed=4)
        history = net.fit(X, y, epochs=3, batch_size=32, optimizer=dp.Adam(lr=0.01), verbose=0)
        return net, history

    (fast_net, fast), (slow_net, slow) = train(True), train(False)
    np.testing.assert_allclose(fast["loss"], slow["loss"], rtol=1e-5)
    for key, value in slow_net.params().items():
        np.testing.assert_allclose(fast_net.params()[key], value, rtol=1e-4, atol=1e-6)


def test_backend_switch_and_environment_variable():
    previous = fused.use_kernels(False)
    try:
        assert fused.backend() == "numpy" and fused.kernel("adam") is None
        fused.use_kernels(True)
        assert fused.backend() == "numba" and fused.kernel("adam") is not None
    finally:
        fused.use_kernels(previous)
    code = "from deltaprop import fused; print(fused.backend(), fused.kernel('adam'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"DELTAPROP_KERNELS": "numpy", "PATH": ""}).stdout
    assert out.split() == ["numpy", "None"]


def _without_kernels(fn, *args):
    previous = fused.use_kernels(False)
    try:
        return fn(*args)
    finally:
        fused.use_kernels(previous)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 2), (32, 10), (300, 7)])
def test_softmax_kernel_equals_the_numpy_softmax(shape, dtype):
    z = (np.random.default_rng(5).standard_normal(shape) * 30).astype(dtype)
    z[0, 0] = 80  # exp(80) overflows float32 unless the row max is taken out first
    fast = activations.softmax(z, out=np.empty_like(z))
    slow = _without_kernels(activations.softmax, z, np.empty_like(z))
    np.testing.assert_allclose(fast, slow, rtol=RTOL[dtype] * 10, atol=1e-30)
    np.testing.assert_allclose(fast.sum(axis=1), 1, rtol=RTOL[dtype] * 10)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_kernel_equals_the_numpy_loss(dtype, weighted):
    rng = np.random.default_rng(6)
    z = (rng.standard_normal((50, 4)) * 20).astype(dtype)
    y = np.eye(4, dtype=dtype)[rng.integers(0, 4, 50)]
    w = rng.random(50) if weighted else None
    loss, sigma = dp.LOSSES["cross_entropy"], dp.ACTIVATIONS["softmax"]
    a = sigma.forward(z)
    fast = loss.value(z, a, y, sigma, w)
    slow = _without_kernels(loss.value, z, a, y, sigma, w)
    assert isinstance(fast, float)
    assert fast == pytest.approx(slow, rel=RTOL[dtype] * 10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["relu", "softmax"])
def test_bias_activation_kernels_equal_the_two_numpy_lines(activation, dtype, monkeypatch):
    """z = a_prev W + b and a = sigma(z) in one kernel call equal z += b, then sigma; NaN stays NaN."""
    rng = np.random.default_rng(7)
    layer = dp.Dense(6, 9, activation)
    layer.initialize(rng, np.dtype(dtype))
    layer.b[:] = rng.standard_normal(9)
    a_prev = rng.standard_normal((20, 6)).astype(dtype)
    a_prev[0, 0] = np.nan
    ran = _spy_on_run(monkeypatch)
    fast_z, fast_a = layer.forward(a_prev, z=np.empty((20, 9), dtype), a=np.empty((20, 9), dtype))
    with np.errstate(invalid="ignore"):
        slow_z, slow_a = _without_kernels(layer.forward, a_prev, np.empty((20, 9), dtype), np.empty((20, 9), dtype))
    assert ran == ["bias_" + activation]  # the kernel ran, once
    np.testing.assert_allclose(fast_z, slow_z, rtol=RTOL[dtype])
    np.testing.assert_allclose(fast_a, slow_a, rtol=RTOL[dtype] * 10)  # NaN rows match too (equal_nan)
    assert np.isnan(fast_a[0]).all() and (fast_a[1:] >= 0).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m", [1, 2, 33, 500])
def test_batch_sum_kernel_equals_numpy_column_sum_bit_for_bit(m, dtype):
    """Equation (4)'s sum over the batch adds the rows in NumPy's order: the same bits, NaN, inf and -0 kept."""
    delta = (np.random.default_rng(9).standard_normal((m, 7)) * 1e3).astype(dtype)
    delta[:, 0] = -0.0
    delta[0, 1], delta[-1, 2] = np.nan, np.inf
    expected = delta.sum(axis=0)
    got = backprop.batch_sum(delta, out=np.empty(7, dtype))
    assert got.tobytes() == expected.tobytes()


def test_whole_suite_of_numbers_agrees_for_predict(kernels_off):
    """predict / predict_proba with kernels equal those without (float32 rounding)."""
    rng = np.random.default_rng(8)
    X = rng.standard_normal((500, 12)).astype(np.float32)
    net = dp.Network([dp.Dense(12, 16, "relu"), dp.Dense(16, 3, "softmax")], loss="cross_entropy",
                     dtype="float32", seed=2)
    slow = net.predict_proba(X)
    fused.use_kernels(True)
    np.testing.assert_allclose(net.predict_proba(X), slow, rtol=1e-5, atol=1e-7)


def test_no_writable_cache_folder_still_compiles(monkeypatch):
    """numba raises RuntimeError when it finds nowhere to cache (read-only install, no home)."""
    import numba

    real = numba.njit

    def njit(**options):
        if options.get("cache"):
            raise RuntimeError("cannot cache function: no locator available")
        return real(**options)

    monkeypatch.setattr(numba, "njit", njit)
    monkeypatch.setattr(fused, "_compiled", {})
    kernel = fused.kernel("sgd")
    theta, g = np.ones(5, np.float32), np.full(5, 2, np.float32)
    kernel(theta, g, np.float32(0.25))
    np.testing.assert_array_equal(theta, 0.5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_flush_of_tiny_optimizer_state_equals_the_numpy_flush(dtype):
    """Every FLUSH_EVERY steps, state below 2^20 x the smallest normal is zeroed; the rest, NaN and inf stay."""
    from deltaprop.optimizers import FLUSH_EVERY

    tiny = float(np.finfo(dtype).tiny)
    values = np.array([0.0, tiny * 2**19, -tiny * 2**20, tiny * 2**21, -1e-3, 0.5, np.nan, -np.inf], dtype=dtype)

    def flushed(kernels):
        previous = fused.use_kernels(kernels)
        try:
            opt = dp.Adam()
            opt.t = FLUSH_EVERY
            state = {"m": values.copy(), "v": values[::-1].copy()}
            with np.errstate(invalid="ignore"):
                opt._flush_denormals(state, np.empty_like(values))
            return state
        finally:
            fused.use_kernels(previous)

    fast, slow = flushed(True), flushed(False)
    for slot in ("m", "v"):
        np.testing.assert_array_equal(fast[slot], slow[slot])
    np.testing.assert_array_equal(fast["m"][:4], [0, 0, 0, values[3]])


def test_float16_arrays_take_the_numpy_path():
    """numba cannot compile float16 arithmetic: such arrays must fall back, not crash."""
    theta, g = np.ones(4, np.float16), np.full(4, 2, np.float16)
    dp.SGD(lr=0.25).step({(1, "b"): theta}, {(1, "b"): g})
    np.testing.assert_array_equal(theta, 0.5)
    assert not fused.ready(theta, g)


def test_run_compiles_only_for_arrays_the_kernels_take():
    """run() skips strided, float16 and mixed-dtype arrays, leaving them untouched (the caller's NumPy
    code does the work), compiles for new valid types, and never holds a version for anything else."""
    g = np.full((4, 6), 2.0, np.float32)
    assert fused.run("relu_chain", g, -np.ones((4, 6), np.float32)) is not fused.SKIPPED
    np.testing.assert_array_equal(g, 0)
    refused = [(np.ones((4, 12), np.float32)[:, ::2], -np.ones((4, 6), np.float32)),
               (np.ones(5, np.float16), -np.ones(5, np.float16)),
               (np.ones(5, np.float32), -np.ones(5, np.float64))]
    for g, z in refused:
        before = g.copy()
        assert fused.run("relu_chain", g, z) is fused.SKIPPED
        np.testing.assert_array_equal(g, before)
    assert "relu_chain" in fused._refused  # from now on checked before the call, not refused by numba
    g64 = np.ones(3)
    assert fused.run("relu_chain", g64, np.array([1.0, -1.0, 0.0])) is not fused.SKIPPED
    np.testing.assert_array_equal(g64, [1, 0, 0])
    for signature in fused.kernel("relu_chain").signatures:
        assert all(t.layout == "C" and str(t.dtype) in ("float32", "float64") for t in signature)
        assert len({t.dtype for t in signature}) == 1
    assert fused.run("no_such_kernel", g64) is fused.SKIPPED


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shortcut_delta_kernel_equals_numpy_bit_for_bit(dtype, monkeypatch):
    """Equation (1)'s shortcut (a^L - y) / m in one pass: the same bits as subtract, then *= 1/m."""
    from deltaprop.losses import shortcut_delta

    rng = np.random.default_rng(10)
    a, y = rng.random((37, 5)).astype(dtype), np.eye(5, dtype=dtype)[rng.integers(0, 5, 37)]
    a[3, 1] = np.nan
    ran = _spy_on_run(monkeypatch)
    fast = shortcut_delta(a, y, None, out=np.empty_like(a))
    assert ran == ["scaled_difference"]
    slow = _without_kernels(shortcut_delta, a, y, None, np.empty_like(a))
    assert fast.tobytes() == slow.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_kernel_takes_underflowed_rows_from_z(dtype, monkeypatch):
    """The kernel reads -log a_y from the forward pass; where a_y underflowed to 0 (a target far below
    the row's top logit) that would be inf, so such rows must come from z by log-sum-exp: finite, exact."""
    z = np.array([[0.0, 1.0, 2.0], [-1000.0, 0.0, 5.0], [np.nan, 0.0, 0.0]], dtype=dtype)
    y = np.eye(3, dtype=dtype)[[2, 0, 1]]
    loss, sigma = dp.LOSSES["cross_entropy"], dp.ACTIVATIONS["softmax"]
    with np.errstate(invalid="ignore"):
        a = sigma.forward(z)
    assert a[1, 0] == 0  # underflowed
    ran = _spy_on_run(monkeypatch)
    finite = loss.value(z[:2], a[:2], y[:2], sigma)
    assert ran == ["cross_entropy"]
    row0 = np.log(np.exp(z[0]).sum()) - 2.0
    assert finite == pytest.approx((row0 + 1005.0 + np.log1p(np.exp(-5.0))) / 2, rel=RTOL[dtype] * 10)
    with np.errstate(invalid="ignore"):
        assert np.isnan(loss.value(z, a, y, sigma))  # a NaN logit still shows in the loss
