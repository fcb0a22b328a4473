"""The engine on each array backend: NumPy, array_api_strict (the standard's own strict library: anything
outside the standard is refused) and PyTorch CPU tensors through array-api-compat; CuPy and CUDA tensors
where a GPU is present (skipped, with the reason, where there is none).

Each result is compared with the NumpyOps run of the same seed: within 1e-12 in float64, 1e-5 in float32
(the fresh forms and the libraries' own kernels round differently from NumPy's in-place lines).
"""

import importlib.util

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.ops import ArrayAPIOps, NumpyOps, Ops, get_ops
from helpers import BUILTIN_ACTIVATIONS, OUTPUTS_FOR_LOSS, targets_for

TOL = {"float64": 1e-12, "float32": 1e-5}


def _cuda() -> str | None:
    """Why no CUDA device can be used here (None when one can)."""
    if importlib.util.find_spec("torch") is None:
        return "PyTorch is not installed"
    import torch

    return None if torch.cuda.is_available() else "no CUDA GPU on this machine (torch.cuda.is_available() is False)"


def _cupy() -> str | None:
    if importlib.util.find_spec("cupy") is None:
        return 'CuPy is not installed (pip install "deltaprop[gpu]" on a machine with a CUDA GPU)'
    import cupy

    return None if cupy.cuda.runtime.getDeviceCount() > 0 else "no CUDA GPU on this machine"


def _converter(name: str):
    """A function taking a NumPy array to the backend's array type (None: NumPy arrays as they are)."""
    if name == "numpy":
        return None
    if name == "array_api_strict":
        xp = pytest.importorskip("array_api_strict")
        return xp.asarray
    if name == "cupy":
        import cupy

        return cupy.asarray
    import torch

    device = "cuda" if name == "torch_cuda" else "cpu"
    return lambda x: torch.asarray(np.ascontiguousarray(x), device=device)


BACKENDS = ["numpy", "array_api_strict", "torch",
            pytest.param("torch_cuda", marks=pytest.mark.skipif(_cuda() is not None, reason=str(_cuda()))),
            pytest.param("cupy", marks=pytest.mark.skipif(_cupy() is not None, reason=str(_cupy())))]


@pytest.fixture(params=BACKENDS)
def backend(request):
    """(name, to_backend): a NumPy array to the backend's arrays; a network given them trains on them."""
    if request.param == "torch":
        pytest.importorskip("torch")
    return request.param, _converter(request.param)


def _ops(name: str):
    return "numpy" if name == "numpy" else "array_api"


def _arrays(convert, *arrays):
    return [a if convert is None or a is None else convert(a) for a in arrays]


def _host(net, x):
    return np.asarray(net.ops.to_host(x))


def _same_weights(net, ref, tol):
    for key, value in ref.params().items():
        np.testing.assert_allclose(_host(net, net.params()[key]), value, rtol=0, atol=tol, err_msg=str(key))


def _pair(sizes, hidden, output, loss, ops, dtype="float64", dropout=0.0, seed=5):
    acts = [hidden] * (len(sizes) - 2) + [output]
    layers = [dp.Dense(sizes[l - 1], sizes[l], acts[l - 1], dropout=dropout if l < len(sizes) - 1 else 0.0)
              for l in range(1, len(sizes))]
    return dp.Network(layers, loss=loss, dtype=dtype, seed=seed, ops=ops)


def _fit_both(backend, sizes, hidden, output, loss, dtype="float64", dropout=0.0, fresh=lambda: {}, **options):
    """The same network fitted on NumPy (NumpyOps) and on the backend; returns (backend net, reference).
    ``fresh()`` gives the options each run needs its own of (an optimizer, callbacks)."""
    name, convert = backend
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, sizes[0]))
    y = targets_for(loss, 60, sizes[-1], rng)
    ref = _pair(sizes, hidden, output, loss, "numpy", dtype, dropout)
    net = _pair(sizes, hidden, output, loss, _ops(name), dtype, dropout)
    weights = options.pop("sample_weight", None)
    ref.fit(X, y, verbose=0, sample_weight=weights, **options, **fresh())
    Xb, yb, wb = _arrays(convert, X, y, weights)
    net.fit(Xb, yb, verbose=0, sample_weight=wb, **options, **fresh())
    return net, ref, X, y


def test_a_backend_is_any_object_of_the_protocol_shape():
    """get_ops takes a backend that is not a NumpyOps subclass (it has the protocol's attributes), and refuses
    an object that lacks some, naming them."""

    class Wrapped:  # every attribute NumpyOps' by delegation: no inheritance
        def __init__(self):
            self._inner = NumpyOps()

        def __getattr__(self, name):
            return getattr(self._inner, name)

    ops = Wrapped()
    for attr in ("alloc", "asarray", "to_host", "gemm", "kernel"):  # (a __getattr__ is not seen by isinstance)
        setattr(ops, attr, getattr(NumpyOps(), attr))
    ops.name, ops.xp, ops.steps = "wrapped", np, None
    ops.__dict__.update({name: getattr(NumpyOps(), name) for name in dir(NumpyOps) if not name.startswith("_")})
    assert not isinstance(ops, NumpyOps) and isinstance(ops, Ops) and get_ops(ops) is ops
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 3)), rng.integers(0, 2, 40)
    net, ref = (dp.Network([dp.Dense(3, 4, "relu"), dp.Dense(4, 2, "softmax")], loss="cross_entropy", seed=1,
                           ops=o) for o in (ops, "numpy"))
    for n in (net, ref):
        n.fit(X, y, epochs=2, batch_size=8, verbose=0)
    _same_weights(net, ref, 0.0)  # the same lines: the same bits
    with pytest.raises(dp.ConfigError, match="lacks .*alloc"):
        get_ops(object())
    assert isinstance(get_ops("array_api"), ArrayAPIOps)
    assert all(isinstance(backend, Ops) for backend in (NumpyOps(), ArrayAPIOps(), get_ops("numba")))


@pytest.mark.parametrize("activation", BUILTIN_ACTIVATIONS)
def test_every_activation_forward_and_derivative(backend, activation):
    """sigma(z) and g ⊙ sigma'(z) (softmax: the Jacobian product) on the backend's arrays equal NumPy's."""
    name, convert = backend
    act = dp.ACTIVATIONS[activation]
    rng = np.random.default_rng(1)
    for dtype in ("float64", "float32"):
        z, g = rng.normal(0, 3, (7, 5)).astype(dtype), rng.normal(size=(7, 5)).astype(dtype)
        zb, gb = _arrays(convert, z, g)
        ops = get_ops("numpy") if convert is None else ArrayAPIOps.for_arrays(zb)
        np.testing.assert_allclose(_host(ops_net(ops), act.forward(zb)), act.forward(z), rtol=0, atol=TOL[dtype])
        np.testing.assert_allclose(_host(ops_net(ops), act.times_sigma_prime(gb, zb)), act.times_sigma_prime(g, z),
                                   rtol=0, atol=TOL[dtype])


def ops_net(ops):
    """An object with the ``ops`` attribute _host reads."""
    return type("Holder", (), {"ops": ops})()


LOSS_PAIRS = [(loss, output) for loss, outputs in OUTPUTS_FOR_LOSS.items() for output in outputs
              if output in ("identity", "sigmoid", "softmax", "tanh")]


@pytest.mark.parametrize("loss,output", LOSS_PAIRS)
def test_every_loss_value_and_gradients(backend, loss, output):
    """The loss and equations (1)-(4) (dW, db of every layer) on the backend equal NumPy's, with sample weights,
    for every loss and output activation it takes (the shortcut pairs and the crossed ones)."""
    name, convert = backend
    rng = np.random.default_rng(2)
    X, w = rng.standard_normal((12, 4)), rng.uniform(0.5, 2, 12)
    y = targets_for(loss, 12, 3, rng)
    ref = _pair([4, 5, 3], "tanh", output, loss, "numpy")
    net = _pair([4, 5, 3], "tanh", output, loss, _ops(name))
    Xb, yb, wb = _arrays(convert, X, y, w)
    assert abs(net.loss(Xb, yb, wb) - ref.loss(X, y, w)) <= 1e-12
    trace, ref_trace = net.forward(Xb), ref.forward(X)
    grads = net.backward(trace, yb, wb)
    ref_grads = ref.backward(ref_trace, y, w)
    for (key, g), (_, g_ref) in zip(grads.items(), ref_grads.items(), strict=True):
        np.testing.assert_allclose(_host(net, g), g_ref, rtol=0, atol=1e-12, err_msg=str(key))


@pytest.mark.parametrize("output", OUTPUTS_FOR_LOSS["mse"])
def test_every_output_activation_trains_mse_the_same(backend, output):
    """A fit with mse after every output activation gives NumPy's weights. The test above calls backward without
    the workspace's buffers (the fresh forms) and fits only the shortcut pair, so the in-place output chain of
    fit (NumPy ``out=`` lines, which other libraries' arrays refuse) went untested on the backends."""
    net, ref, _, _ = _fit_both(backend, [4, 5, 3], "tanh", output, "mse", epochs=2, batch_size=8)
    _same_weights(net, ref, TOL["float64"])


OPTIMIZERS = {
    "sgd": lambda: dp.SGD(0.05),
    "momentum": lambda: dp.SGD(0.05, momentum=0.9),
    "nesterov": lambda: dp.SGD(0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda: dp.Adam(0.01),
    "adamw": lambda: dp.AdamW(0.01, weight_decay=0.05),
    "rmsprop": lambda: dp.RMSprop(0.005),
    "rmsprop_momentum": lambda: dp.RMSprop(0.005, momentum=0.5, weight_decay=1e-3),
}


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_optimizer_trains_the_same_weights(backend, optimizer, dtype):
    """Eight epochs of 8 batches (64 steps: the state flush of step 64 included) give NumPy's weights."""
    net, ref, X, _ = _fit_both(backend, [4, 6, 3], "relu", "softmax", "cross_entropy", dtype, epochs=8,
                               batch_size=8, fresh=lambda: {"optimizer": OPTIMIZERS[optimizer]()})
    assert net.training.optimizer.t == 64
    _same_weights(net, ref, TOL[dtype])


def test_a_fit_with_dropout_sample_weights_and_early_stopping(backend):
    """Dropout (the host generator's masks), sample weights, a validation split and early stopping with the
    best weights restored: the same history, the same stop, the same weights as NumPy's run."""
    name, _ = backend
    weights = np.random.default_rng(3).uniform(0.2, 3.0, 60)
    net, ref, X, _ = _fit_both(backend, [4, 16, 3], "elu", "softmax", "cross_entropy", dropout=0.3, epochs=40,
                               batch_size=16, validation_split=0.25, sample_weight=weights,
                               fresh=lambda: {"optimizer": dp.Adam(0.05), "callbacks": [dp.EarlyStopping(patience=2)]})
    assert len(ref.training.history["loss"]) < 40, "the reference run must stop early for this test to mean it"
    assert len(net.training.history["loss"]) == len(ref.training.history["loss"])
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(net.training.history[key], ref.training.history[key], rtol=0, atol=1e-12)
    _same_weights(net, ref, 1e-12)
    if name != "numpy":  # trained where its inputs live: the parameters are the backend's arrays, views of theta
        assert type(net.layers[0].W).__module__.split(".")[0] != "numpy"
        assert isinstance(net.ops, ArrayAPIOps) and net.ops.bound


def test_predictions_and_a_save_load_round_trip(backend, tmp_path):
    """predict / predict_proba on the backend's arrays equal NumPy's; the model file (safetensors, written
    from host copies) loads, predicts the same, and continues training on the backend as NumPy does."""
    name, convert = backend
    net, ref, X, y = _fit_both(backend, [4, 8, 3], "tanh", "softmax", "cross_entropy", epochs=3, batch_size=8)
    (Xb,) = _arrays(convert, X)
    np.testing.assert_allclose(net.predict_proba(Xb), ref.predict_proba(X), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(net.predict(Xb), ref.predict(X))
    net.save(tmp_path / "net.safetensors")
    ref.save(tmp_path / "ref.safetensors")
    back = dp.load(tmp_path / "net.safetensors", ops=_ops(name))
    np.testing.assert_allclose(back.predict_proba(Xb), ref.predict_proba(X), rtol=0, atol=1e-12)
    ref_back = dp.load(tmp_path / "ref.safetensors")
    yb = y if convert is None else convert(y)
    back.fit(Xb, yb, epochs=2, batch_size=8, verbose=0)  # the optimizer's moments came back with it
    ref_back.fit(X, y, epochs=2, batch_size=8, verbose=0)
    _same_weights(back, ref_back, 1e-12)


def test_a_bound_network_refuses_what_runs_on_numpy_only():
    """L-BFGS (SciPy's solver) is refused by name for an "array_api" network, not run on the wrong arrays."""
    torch = pytest.importorskip("torch")
    net = dp.Network([dp.Dense(2, 1, "identity")], ops="array_api", seed=0)
    with pytest.raises(dp.ConfigError, match="lbfgs.*NumPy"):
        net.fit(torch.zeros((4, 2), dtype=torch.float64), torch.zeros(4, dtype=torch.float64), optimizer="lbfgs",
                verbose=0)


def test_train_device_names_what_is_missing(monkeypatch):
    """--device cuda without a GPU, or without PyTorch and CuPy, is a one-line error naming the cause and the
    pip extra; a name PyTorch would not take is refused; cpu is the default backend."""
    from deltaprop.cli import main
    from deltaprop.ops import for_device

    assert for_device("cpu") is None and for_device(None) is None
    with pytest.raises(dp.ConfigError, match="cpu, cuda or cuda:N"):
        for_device("gpu")
    if _cuda() is not None and importlib.util.find_spec("torch") is not None:
        with pytest.raises(dp.ConfigError, match="no CUDA GPU"):
            for_device("cuda")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("torch", "cupy") else
                        real(name, *a))
    with pytest.raises(dp.ConfigError, match=r'deltaprop\[torch\].*deltaprop\[gpu\]'):
        for_device("cuda:0")
    assert main(["train", "--device", "cuda", "--epochs", "1"]) == 2  # refused before training, exit code 2


def test_the_cli_trains_on_a_device_backend(monkeypatch, tmp_path):
    """deltaprop train's whole flow (scaling, fit with validation and early stopping, evaluation, model file,
    plots) on an Array API backend: PyTorch CPU tensors stand in for --device cuda here. The model file loads
    on NumPy and predicts what the run's network predicts."""
    torch = pytest.importorskip("torch")
    import array_api_compat

    import deltaprop.cli.build as cli_build
    from deltaprop.cli import main

    ops = ArrayAPIOps(array_api_compat.array_namespace(torch.zeros(0)), torch.device("cpu"))
    made = []
    monkeypatch.setattr(cli_build, "for_device", lambda device: made.append(device) or ops)
    out = tmp_path / "run"
    assert main(["train", "--device", "cuda", "--epochs", "3", "--patience", "2", "--out", str(out), "--quiet",
                 "--dtype", "float64"]) == 0
    assert made == ["cuda"]
    back = dp.load(out / "model.safetensors")
    reference = dp.load(out / "model.safetensors", ops=ops)
    X = np.random.default_rng(0).uniform(0, 16, (20, 64))
    assert isinstance(reference.layers[0].W, torch.Tensor)
    np.testing.assert_allclose(reference.predict_proba(X), back.predict_proba(X), rtol=0, atol=1e-12)


CUDA_CHECK = pytest.mark.skipif(_cuda() is not None, reason=str(_cuda()))


@pytest.mark.parametrize("namespace,device,dtype", [("array_api_strict", None, "float64"),
                                                    ("array_api_strict", "device1", "float32"),
                                                    ("torch", "cpu", "float64"), ("torch", "cpu", "float32"),
                                                    pytest.param("torch", "cuda", "float64", marks=CUDA_CHECK),
                                                    pytest.param("torch", "cuda", "float32", marks=CUDA_CHECK)])
@pytest.mark.parametrize("make", ["DeltaClassifier", "DeltaRegressor"])
def test_sklearn_array_api_checks(namespace, device, dtype, make):
    """scikit-learn's array API estimator checks (array_api_dispatch=True): fitted on array_api_strict or
    torch inputs (CPU tensors, and CUDA tensors where a GPU is present), the estimators predict in X's namespace,
    device and dtype what the NumPy fit predicts; inputs from two libraries are taken; an X of another namespace
    than fit's is refused by name."""
    pytest.importorskip(namespace)
    from sklearn.utils.estimator_checks import (
        NamespaceAndDevice,
        check_array_api_input,
        check_array_api_mixed_inputs,
        check_array_api_same_namespace,
    )

    from deltaprop import estimators

    estimator = getattr(estimators, make)(max_iter=20, random_state=0)
    check_array_api_input(make, estimator, array_namespace=namespace, device_name=device, dtype_name=dtype,
                          check_sample_weight=True)
    check_array_api_same_namespace(make, estimator, array_namespace=namespace, device_name=device)
    check_array_api_mixed_inputs(make, estimator, X_ns_and_device=NamespaceAndDevice(namespace, device),
                                 other_ns_and_device=NamespaceAndDevice("numpy", None))


def test_l2_clipping_class_weights_and_divergence(backend):
    """L2, gradient clipping and class weights give NumPy's weights; a run that diverges is stopped with the
    same DivergenceError (where it happened) and its weights restored, on the backend's own arrays."""
    net, ref, X, y = _fit_both(backend, [4, 6, 3], "tanh", "softmax", "cross_entropy", epochs=3, batch_size=8,
                               l2=0.01, clip_norm=0.5, class_weight="balanced")
    _same_weights(net, ref, 1e-12)
    name, convert = backend
    Xb, yb = _arrays(convert, X, y)
    before = {key: _host(net, value).copy() for key, value in net.params().items()}
    with pytest.raises(dp.DivergenceError, match="training diverged in epoch 4") as raised:
        net.fit(Xb, yb, epochs=1, batch_size=8, optimizer=dp.SGD(1e300), verbose=0)
    with pytest.raises(dp.DivergenceError) as expected:
        ref.fit(X, y, epochs=1, batch_size=8, optimizer=dp.SGD(1e300), verbose=0)
    assert str(raised.value) == str(expected.value)
    for key, value in net.params().items():
        np.testing.assert_array_equal(_host(net, value), before[key])


def test_a_stream_of_files_trains_on_the_backend(backend, tmp_path):
    """A stream of CSV shards (data/stream.py) with its validation rows: each batch sent to the backend as it
    is served, the same losses and weights as NumPy's run of the stream."""
    pd = pytest.importorskip("pandas")
    name, convert = backend
    rng = np.random.default_rng(4)
    for i in range(3):
        X = rng.standard_normal((120, 4))
        frame = pd.DataFrame(X, columns=list("abcd")).assign(y=(X[:, 0] + X[:, 1] > 0).astype(int))
        frame.to_csv(tmp_path / f"part{i}.csv", index=False)
    nets = []
    for ops in ("numpy", "numpy" if convert is None else ArrayAPIOps.for_arrays(convert(np.zeros(1)))):
        net = _pair([4, 8, 2], "relu", "softmax", "cross_entropy", ops)
        history = net.fit(dp.data.stream(tmp_path, target="y", validation_fraction=0.2), epochs=2, batch_size=16,
                          verbose=0)
        nets.append((net, history))
    (net, history), (ref, expected) = nets[1], nets[0]
    np.testing.assert_allclose(history["val_loss"], expected["val_loss"], rtol=0, atol=1e-12)
    _same_weights(net, ref, 1e-12)
