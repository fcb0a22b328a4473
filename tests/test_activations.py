"""Activations: values, derivatives at z, stability for |z| up to 1e4, dtype, registration."""

import numpy as np
import pytest
import scipy.special

import deltaprop as dp
from deltaprop.activations import softmax, softmax_jvp

ELEMENTWISE = sorted(name for name, act in dp.ACTIVATIONS.items() if act.sigma_prime is not None)
Z = np.array([[-3.1, -0.7, -0.05, 0.05, 0.4, 2.3]])
H = 1e-6


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_sigma_prime_is_the_derivative_at_z(name):
    """sigma'(z) against a central difference of sigma at the same z (tolerance 1e-8 relative)."""
    act = dp.ACTIVATIONS[name]
    numeric = (act.sigma(Z + H) - act.sigma(Z - H)) / (2 * H)
    np.testing.assert_allclose(act.sigma_prime(Z), numeric, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "elu", "softplus"])
def test_sigma_prime_taken_at_a_would_differ(name):
    """Guards the test above: sigma'(a) is measurably different from sigma'(z) here."""
    act = dp.ACTIVATIONS[name]
    assert np.abs(act.sigma_prime(act.sigma(Z)) - act.sigma_prime(Z)).max() > 1e-2


@pytest.mark.parametrize("name", sorted(dp.ACTIVATIONS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_and_dtype_preserving_for_large_z(name, dtype):
    act = dp.ACTIVATIONS[name]
    z = np.array([[-1e4, -1000.0, -50.0, 0.0, 50.0, 1000.0, 1e4]], dtype=dtype)
    a = act.sigma(z)
    d = act.times_sigma_prime(np.ones_like(z), z)
    assert a.dtype == dtype and d.dtype == dtype
    assert np.isfinite(a).all() and np.isfinite(d).all()


def test_known_values():
    z = np.array([[-1000.0, 0.0, 1000.0]])
    np.testing.assert_array_equal(dp.ACTIVATIONS["sigmoid"].sigma(z), [[0.0, 0.5, 1.0]])
    np.testing.assert_array_equal(dp.ACTIVATIONS["relu"].sigma_prime(z), [[0.0, 0.0, 1.0]])  # 1[z > 0]
    np.testing.assert_allclose(dp.ACTIVATIONS["softplus"].sigma(z), [[0.0, np.log(2), 1000.0]])
    np.testing.assert_allclose(dp.ACTIVATIONS["elu"].sigma(z), [[-1.0, 0.0, 1000.0]])
    np.testing.assert_allclose(dp.ACTIVATIONS["leaky_relu"].sigma(z), [[-10.0, 0.0, 1000.0]])


def test_softmax_jacobian_vector_product_matches_full_jacobian():
    """delta = a ⊙ (g - rowsum(g ⊙ a)) equals g @ J with J_ij = a_j (1[i=j] - a_i)."""
    rng = np.random.default_rng(0)
    z, g = rng.normal(size=(1, 5)), rng.normal(size=(1, 5))
    a = softmax(z)[0]
    J = np.diag(a) - np.outer(a, a)
    np.testing.assert_allclose(softmax_jvp(g, z)[0], g[0] @ J, rtol=1e-12)
    np.testing.assert_allclose(softmax(z).sum(), 1.0)


@pytest.fixture
def registry():
    """Registrations made by a test are removed afterwards."""
    saved = dict(dp.ACTIVATIONS)
    yield dp.ACTIVATIONS
    dp.ACTIVATIONS.clear()
    dp.ACTIVATIONS.update(saved)


def test_register_accepts_a_correct_derivative(registry):
    act = dp.register_activation("swish_test", lambda z: z * dp.activations.sigmoid(z),
                                 lambda z: dp.activations.sigmoid(z) * (1 + z * (1 - dp.activations.sigmoid(z))),
                                 )
    net = dp.Network([dp.Dense(3, 4, "swish_test"), dp.Dense(4, 1, "identity")], loss="mse", seed=0)
    assert net.layers[0].activation is act
    rng = np.random.default_rng(0)
    assert dp.gradcheck(net, rng.normal(size=(4, 3)), rng.normal(size=4)).ok


def test_register_refuses_a_wrong_derivative(registry):
    with pytest.raises(dp.ActivationError, match="disagrees with a central difference"):
        dp.register_activation("bad_sin", np.sin, lambda z: -np.cos(z))
    assert "bad_sin" not in dp.ACTIVATIONS


def test_register_refuses_duplicates_and_broken_functions(registry):
    with pytest.raises(dp.ActivationError, match="already exists"):
        dp.register_activation("tanh", np.tanh, lambda z: 1 - np.tanh(z) ** 2)
    with pytest.raises(dp.ActivationError, match="keep the input shape"):
        dp.register_activation("shape_bug", np.tanh, lambda z: np.ones(3))


def test_unknown_activation_names_the_known_ones():
    with pytest.raises(dp.ConfigError, match="unknown activation 'rleu'.*relu"):
        dp.Dense(2, 3, activation="rleu")


@pytest.mark.parametrize("name", sorted(dp.ACTIVATIONS))
def test_sigma_written_over_its_own_z_equals_sigma_into_a_fresh_array(name):
    """Inference writes a^l over z^l (sigma(z, out=z)). leaky_relu and elu read z after writing out, so
    predictions of networks with those hidden layers were wrong (found by the ONNX Runtime oracle)."""
    act = dp.ACTIVATIONS[name]
    z = np.array([[-1e4, -2.0, -0.5, 0.0, 0.3, 1.5, 1e4]])
    over = z.copy()
    np.testing.assert_array_equal(act.forward(over, out=over), act.forward(z, out=np.empty_like(z)))
    np.testing.assert_array_equal(act.forward(z.copy()), act.forward(z, out=np.empty_like(z)))


KERNELED = sorted(name for name, act in dp.ACTIVATIONS.items() if act.kernel is not None)


@pytest.mark.parametrize("name", KERNELED)
def test_each_kernel_computes_its_numpy_rule(name):
    """An activation's kernel (run here as the Python it is; numba compiles these same lines) gives its NumPy
    rule's numbers: z + b, sigma(z + b), g ⊙ sigma'(z), and in place over z; NaN stays NaN. A kernel drifting
    from its rule would train another network in the compiled step than in the readable one."""
    act = dp.ACTIVATIONS[name]
    rng = np.random.default_rng(4)
    z, b = rng.standard_normal((5, 6)) * 3, rng.standard_normal(6)
    z[0, 0] = np.nan
    z_kernel, a_kernel = z.copy(), np.empty_like(z)
    act.kernel.forward(z_kernel, b, a_kernel)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(z_kernel, z + b)
        np.testing.assert_allclose(a_kernel, act.forward(z + b), rtol=1e-14, atol=1e-15)
        over = z.copy()
        (act.kernel.over_z or (lambda z_, b_: act.kernel.forward(z_, b_, z_)))(over, b)
        np.testing.assert_allclose(over, act.forward(z + b), rtol=1e-14, atol=1e-15)
        if act.kernel.chain is not None:
            g = rng.standard_normal(z.shape)
            kernel_g, z_before = g.copy(), z.copy()
            act.kernel.chain(kernel_g, z)
            np.testing.assert_array_equal(z, z_before)  # z^l is left as it is
            expected = act.times_sigma_prime(g.copy(), z.copy(), in_place=True)  # the chain training runs
            np.testing.assert_allclose(kernel_g, expected, rtol=1e-14, atol=1e-15)
    assert np.isnan(a_kernel[0, 0])


def test_mish_values_and_gradients_of_a_network():
    """mish(z) = z tanh(softplus(z)) at hand-computed points, and a network of mish layers passes gradcheck
    (backprop against central differences of the loss)."""
    from helpers import make_net

    mish = dp.ACTIVATIONS["mish"]
    np.testing.assert_allclose(mish.sigma(np.array([[1.0, -1.0, 0.0]])),
                               [[np.tanh(np.log1p(np.e)), -np.tanh(np.log1p(1 / np.e)), 0.0]], rtol=1e-15)
    net = make_net([4, 6, 5, 3], "mish", "softmax", "cross_entropy", seed=2)
    X = np.random.default_rng(1).standard_normal((7, 4))
    report = dp.gradcheck(net, X, np.arange(7) % 3, tol=1e-7)
    assert report.ok, report


def expit_forward_loop(z, b, a):
    """sigmoid's forward by scipy.special.expit: right as Python, but a call numba has no type for."""
    for r in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[r, j] += b[j]
            a[r, j] = scipy.special.expit(z[r, j])


def test_register_refuses_a_kernel_numba_cannot_compile(registry):
    """A kernel that computes its rule as Python but that numba cannot compile is refused on registration with
    numba's message (no ANSI colour codes), not at the first fit's compiled step."""
    pytest.importorskip("numba")
    sigmoid = dp.ACTIVATIONS["sigmoid"]
    with pytest.raises(dp.ActivationError, match="numba cannot compile the kernel's forward of activation "
                                                 "'expit_test': Unknown attribute 'expit'") as caught:
        dp.register_activation("expit_test", sigmoid.sigma, sigmoid.sigma_prime,
                               kernel=dp.Kernel(expit_forward_loop, sigmoid.kernel.chain))
    assert "\x1b" not in str(caught.value) and "expit_test" not in dp.ACTIVATIONS


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_a_kernel_numba_cannot_compile_fails_a_fit_by_name(dropout):
    """An Activation made without registration's check (or a dtype it did not probe) whose kernel numba cannot
    compile: the fit, compiled step (no dropout) or readable step's NumbaOps (dropout), raises a DeltapropError
    naming the activation and the fix, not numba's TypingError."""
    pytest.importorskip("numba")
    sigmoid = dp.ACTIVATIONS["sigmoid"]
    act = dp.Activation("expit_test", sigmoid.sigma, sigmoid.sigma_prime,
                        kernel=dp.Kernel(expit_forward_loop, sigmoid.kernel.chain))
    net = dp.Network([dp.Dense(3, 4, act, dropout=dropout), dp.Dense(4, 2, "softmax")], loss="cross_entropy",
                     seed=1, ops="numba")
    rng = np.random.default_rng(0)
    with pytest.raises(dp.DeltapropError, match="kernel of activation 'expit_test': Unknown attribute 'expit'.*"
                                                "fix the kernel") as caught:
        net.fit(rng.standard_normal((40, 3)), rng.integers(0, 2, 40), epochs=1, batch_size=8, verbose=0)
    assert "\x1b" not in str(caught.value)
