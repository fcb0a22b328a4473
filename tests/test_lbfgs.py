"""Full-batch L-BFGS (training/lbfgs.py): the minimum it reaches, the gradient it hands SciPy, scikit-learn's
expectations of an L-BFGS MLP, the CLI's --optimizer lbfgs, and what it refuses."""

import csv
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize
from sklearn.datasets import load_digits, load_iris, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import MinMaxScaler, StandardScaler, scale
from sklearn.utils.estimator_checks import parametrize_with_checks

import deltaprop as dp
from deltaprop.cli.epochs import cross_validated_epochs
from deltaprop.cli.options import DEFAULTS
from deltaprop.estimators import DeltaClassifier, DeltaRegressor
from deltaprop.gradcheck import central_difference
from deltaprop.training import lbfgs
from deltaprop.training.lbfgs import LBFGS
from test_cli import deltaprop

pytestmark = pytest.mark.slow  # scikit-learn's estimator checks and an mpiexec job (not in the quick tier)


def linear_problem(seed=0, m=60):
    """X (m, 3), Y (m, 2) = X B + c + noise: least squares has one minimum, numpy.linalg.lstsq's."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, 3))
    Y = X @ rng.normal(size=(3, 2)) + rng.normal(size=2) + 0.3 * rng.normal(size=(m, 2))
    return X, Y


def test_a_linear_network_reaches_the_least_squares_solution_as_scipy_does():
    """One identity layer with mse is least squares (1/2m sum ||XW + b - Y||^2): its minimum is lstsq's. The
    fit reaches it (weights to 1e-6), and in the same iterations as SciPy's L-BFGS-B on the written-out
    least-squares objective from the same start: the solver is SciPy's, driven by the notes' gradient."""
    X, Y = linear_problem()
    net = dp.Network([dp.Dense(3, 2, "identity")], loss="mse", dtype="float64", seed=3)
    start = np.concatenate([net.layers[0].W.ravel(), net.layers[0].b])
    history = net.fit(X, Y, optimizer=LBFGS(tol=1e-10, ftol=1e-15), epochs=100, verbose=0)
    A = np.column_stack([X, np.ones(len(X))])
    beta = np.linalg.lstsq(A, Y, rcond=None)[0]
    np.testing.assert_allclose(net.layers[0].W, beta[:3], atol=1e-6)
    np.testing.assert_allclose(net.layers[0].b, beta[3], atol=1e-6)
    np.testing.assert_allclose(net.output(X), A @ beta, atol=1e-6)

    def least_squares(theta):  # the same layout as FlatParams: W^1 (3, 2) row by row, then b^1
        W, b = theta[:6].reshape(3, 2), theta[6:]
        residual = X @ W + b - Y
        return 0.5 * np.sum(residual**2) / len(X), np.concatenate([(X.T @ residual).ravel(), residual.sum(0)]) / len(X)

    reference = scipy.optimize.minimize(least_squares, start, method="L-BFGS-B", jac=True,
                                        options={"maxiter": 100, "gtol": 1e-10, "ftol": 1e-15, "maxfun": 15000,
                                                 "maxcor": 10})
    assert len(history) == reference.nit == net.training.solver_result["iterations"]
    np.testing.assert_allclose(np.concatenate([net.layers[0].W.ravel(), net.layers[0].b]), reference.x, atol=1e-9)
    assert history["loss"][-1] == pytest.approx(reference.fun, rel=1e-9)
    assert net.training.solver_result["converged"]


def handed_to_scipy(monkeypatch, net, X, y, **options):
    """(x0, loss, gradient) of the first evaluation SciPy asks of fit's objective."""
    seen, real = [], scipy.optimize.minimize

    def spy(fun, x0, **kwargs):
        loss, grad = fun(x0.copy())
        seen.append((x0.copy(), loss, grad.copy()))
        return real(fun, x0, **kwargs)

    monkeypatch.setattr(scipy.optimize, "minimize", spy)
    net.fit(X, y, optimizer="lbfgs", epochs=1, verbose=0, **options)
    return seen[0]


def small_classifier(seed=0):
    return dp.Network([dp.Dense(4, 5, "tanh"), dp.Dense(5, 3, "softmax")], loss="cross_entropy", dtype="float64",
                      seed=seed)


def test_the_gradient_handed_to_scipy_is_gradchecks_reference(monkeypatch):
    """On a tanh/softmax network with sample weights, evaluated in chunks of 7 rows (the sums over chunks
    are what a large set uses), the gradient SciPy receives equals gradcheck's central differences of the
    loss over all rows (relative error < 1e-6), and the loss is the network's own."""
    monkeypatch.setattr(lbfgs, "CHUNK", 7)
    rng = np.random.default_rng(1)
    X, y, w = rng.normal(size=(30, 4)), rng.integers(0, 3, 30), rng.random(30) + 0.2
    net = small_classifier()
    twin = small_classifier()
    x0, loss, grad = handed_to_scipy(monkeypatch, net, X, y, sample_weight=w)
    theta = np.concatenate([p.ravel() for layer in twin.layers for p in (layer.W, layer.b)])
    np.testing.assert_array_equal(x0, theta)  # SciPy starts from the network's weights, in FlatParams' layout
    twin.fit(X, y, epochs=0, verbose=0)  # binds the twin's layers to one flat vector, weights unchanged
    flat = twin.training.flat_for(twin.layers, twin.dtype)
    numeric = np.array([central_difference(twin, X, y, flat.theta, i, eps=1e-6, sample_weight=w)
                        for i in range(flat.theta.size)])
    assert np.linalg.norm(grad - numeric) / (np.linalg.norm(grad) + np.linalg.norm(numeric)) < 1e-6
    assert loss == pytest.approx(twin.loss(X, y, w), rel=1e-12)
    assert dp.gradcheck(twin, X, y, sample_weight=w).ok


def test_the_gradient_handed_to_scipy_includes_l2_as_fit_defines_it(monkeypatch):
    """With l2, the objective is the weighted mean loss + (l2 / 2) sum_l ||W^l||^2 / sum(w) (biases free):
    central differences of that function match the gradient SciPy receives."""
    rng = np.random.default_rng(2)
    X, y, w = rng.normal(size=(25, 4)), rng.integers(0, 3, 25), rng.random(25) + 0.2
    net, twin, l2 = small_classifier(1), small_classifier(1), 0.7
    _, loss, grad = handed_to_scipy(monkeypatch, net, X, y, sample_weight=w, l2=l2)
    twin.fit(X, y, epochs=0, verbose=0)
    theta = twin.training.flat_for(twin.layers, twin.dtype).theta

    def objective(i, step):
        saved = theta[i]
        theta[i] = saved + step
        value = twin.loss(X, y, w) + 0.5 * l2 / w.sum() * sum(np.sum(layer.W**2) for layer in twin.layers)
        theta[i] = saved
        return value

    numeric = np.array([(objective(i, 1e-6) - objective(i, -1e-6)) / 2e-6 for i in range(theta.size)])
    assert np.linalg.norm(grad - numeric) / (np.linalg.norm(grad) + np.linalg.norm(numeric)) < 1e-6
    assert loss == pytest.approx(objective(0, 0.0), rel=1e-12)


@pytest.mark.parametrize("activation", ["identity", "sigmoid", "tanh", "relu"])
def test_scikit_learns_lbfgs_regression_expectation(activation):
    """scikit-learn's test_lbfgs_regression, mirrored: its data set, 50 hidden units, max_iter=200, tol=1e-3,
    random_state=1; training R^2 > 0.98 for a non-linear network, > 0.80 for the linear bottleneck."""
    X, y = make_regression(n_samples=200, n_features=10, bias=20.0, noise=100.0, random_state=7)
    y = scale(y)
    model = DeltaRegressor(solver="lbfgs", hidden_layer_sizes=50, max_iter=200, tol=1e-3, random_state=1,
                           activation=activation)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    assert model.score(X, y) > (0.80 if activation == "identity" else 0.98)
    assert model.n_iter_ == len(model.loss_curve_) <= 200


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_scikit_learns_lbfgs_classification_expectation(activation):
    """scikit-learn's test_lbfgs_classification on its 3-class digits rows: training accuracy > 0.95 after
    at most 150 iterations; and iris (all rows, standardized) fits to > 0.95 as well."""
    X, y = load_digits(n_class=3, return_X_y=True)
    X, y = MinMaxScaler().fit_transform(X[:200]), y[:200]
    model = DeltaClassifier(solver="lbfgs", hidden_layer_sizes=50, max_iter=150, random_state=1,
                            activation=activation).fit(X[:150], y[:150])
    assert model.score(X[:150], y[:150]) > 0.95
    assert model.predict(X[150:]).shape == (50,)
    X, y = load_iris(return_X_y=True)  # standardized: unscaled, 200 iterations were not enough on one backend
    X = StandardScaler().fit_transform(X)
    assert DeltaClassifier(solver="lbfgs", hidden_layer_sizes=20, max_iter=500, random_state=0,
                           activation=activation).fit(X, y).score(X, y) > 0.95


def test_the_estimators_say_when_max_iter_did_not_suffice_and_refuse_what_lbfgs_lacks():
    X, y = make_regression(n_samples=80, n_features=5, noise=5.0, random_state=0)
    y = scale(y)
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        model = DeltaRegressor(solver="lbfgs", hidden_layer_sizes=10, max_iter=3, tol=0.0, random_state=0).fit(X, y)
    assert model.n_iter_ == 3
    with pytest.raises(AttributeError, match="partial_fit"):  # absent, as scikit-learn's for lbfgs
        DeltaRegressor(solver="lbfgs").partial_fit(X, y)
    assert not hasattr(DeltaClassifier(solver="lbfgs"), "partial_fit") and hasattr(DeltaClassifier(), "partial_fit")
    with pytest.raises(ValueError, match="optimizer='adam'"):
        DeltaRegressor(solver="adam").fit(X, y)
    with pytest.raises(ValueError, match="dropout"):
        DeltaRegressor(solver="lbfgs", dropout=0.2).fit(X, y)


@parametrize_with_checks([DeltaClassifier(solver="lbfgs", hidden_layer_sizes=8, max_iter=50, random_state=0),
                          DeltaRegressor(solver="lbfgs", hidden_layer_sizes=8, max_iter=50, random_state=0)])
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sklearn_estimator_checks_with_lbfgs(estimator, check):
    """Every scikit-learn estimator check, the sample-weight equivalences included (the full-batch loss is
    the weighted mean over all rows), and partial_fit absent as scikit-learn's MLP has it for lbfgs."""
    check(estimator)


def test_validation_callbacks_and_early_stopping_see_each_iteration():
    """validation_split gives val_loss per iteration; EarlyStopping stops the solver and restores its best
    iteration's weights, as after an epoch."""
    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    net = dp.Network([dp.Dense(4, 20, "tanh"), dp.Dense(20, 3, "softmax")], loss="cross_entropy", dtype="float64",
                     seed=0)
    stop = dp.EarlyStopping(patience=3)
    history = net.fit(X, y, optimizer="lbfgs", epochs=300, validation_split=0.3, callbacks=[stop], verbose=0)
    assert len(history["val_loss"]) == len(history) == stop.best_epoch + 4 < 300
    assert net.training.solver_result["stopped"] and not net.training.solver_result["converged"]
    order = np.random.default_rng([net.seed, 2**31]).permutation(len(X))  # fit's held-out rows
    held = np.sort(order[:45])
    assert net.loss(X[held], y[held]) == pytest.approx(history["val_loss"][stop.best_epoch], rel=1e-12)


def test_a_converging_solver_still_gives_a_cross_validated_epoch_count():
    """Folds whose L-BFGS converges before the auto iteration count leave shorter validation curves: the
    CLI's cross-validation carries each last value on (it raised on ragged curves)."""
    X, Y = linear_problem(m=60)
    y = Y[:, 0]
    opts = {**DEFAULTS, "optimizer": "lbfgs", "seed": 0}

    def new_net():
        return dp.Network([dp.Dense(3, 1, "identity")], loss="mse", dtype="float64", seed=0)

    epochs, loss = cross_validated_epochs(new_net, lambda: "lbfgs", opts, X, y)
    assert 1 <= epochs < 100 and np.isfinite(loss)


def test_cli_trains_with_lbfgs_and_the_saved_model_predicts(tmp_path):
    rng = np.random.default_rng(0)
    X = np.round(rng.normal(size=(120, 3)), 4)  # written exactly to the CSV
    y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2] + 0.05 * rng.normal(size=120)
    path = tmp_path / "small.csv"
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", header="a,b,c,y", comments="", fmt="%.6g")
    out = tmp_path / "run"
    result = deltaprop("train", "--data", path, "--target", "y", "--optimizer", "lbfgs", "--epochs", 40,
                       "--layers", "16", "--out", out, "--quiet", "--no-plots")
    assert "test R^2" in result.stdout and "cross-fitting: 5 networks" in result.stdout  # (a table's default)
    history = list(csv.DictReader((out / "history.csv").read_text().splitlines()))
    for fold in "12345":  # each network's L-BFGS iterations
        rows = [row for row in history if row["fold"] == fold]
        assert 1 <= len(rows) <= 40 and float(rows[-1]["loss"]) < float(rows[0]["loss"])
    net = dp.load(out / "model.safetensors")
    predicted = np.array([float(row["prediction"]) for row in csv.DictReader(
        deltaprop("predict", out / "model.safetensors", "--data", path).stdout.splitlines())])
    assert predicted.shape == (120,)
    table = {name: X[:, k] for k, name in enumerate("abc")}  # a table model predicts from its columns
    np.testing.assert_allclose(predicted, net.predict(table).ravel(), rtol=1e-5, atol=1e-5)
    assert np.corrcoef(predicted, y)[0, 1] > 0.8
    refused = deltaprop("train", "--data", path, "--target", "y", "--optimizer", "lbfgs", "--dropout", 0.2,
                        "--epochs", 5, "--out", tmp_path / "r2", "--quiet", "--no-plots", check=False)
    assert refused.returncode != 0 and "dropout" in refused.stderr and "Traceback" not in refused.stderr


def test_hostile_options_are_refused_by_name():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 4)), rng.integers(0, 3, 20)
    dropped = dp.Network([dp.Dense(4, 5, "tanh", dropout=0.3), dp.Dense(5, 3, "softmax")], loss="cross_entropy",
                         dtype="float64")
    with pytest.raises(dp.ConfigError, match=r"dropout \(layer\(s\) \[1\]\)"):
        dropped.fit(X, y, optimizer="lbfgs", epochs=5, verbose=0)
    net = small_classifier()
    for epochs in (0, -1, 2.5):
        with pytest.raises(dp.ConfigError, match="epochs"):
            net.fit(X, y, optimizer="lbfgs", epochs=epochs, verbose=0)
    with pytest.raises(dp.ConfigError, match="schedule"):
        net.fit(X, y, optimizer="lbfgs", epochs=5, schedule="cosine", verbose=0)
    with pytest.raises(dp.ConfigError, match="clip_norm"):
        net.fit(X, y, optimizer="lbfgs", epochs=5, clip_norm=1.0, verbose=0)
    with pytest.raises(dp.ConfigError, match="max_fun"):
        LBFGS(max_fun=0)
    assert net.training is None or len(net.training.history) == 0  # nothing trained by a refused fit


def test_a_non_finite_loss_stops_with_divergence_error_and_the_weights_restored():
    """Targets of 1e300: the squared error overflows at the first evaluation; DivergenceError names the
    cause and the weights are those the fit started from."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), np.full(20, 1e300)
    net = dp.Network([dp.Dense(3, 4, "tanh"), dp.Dense(4, 1, "identity")], loss="mse", dtype="float64", seed=0)
    before = {key: value.copy() for key, value in net.params().items()}
    with pytest.raises(dp.DivergenceError, match="L-BFGS diverged in iteration 1: .*loss is inf.*start of the fit"):
        net.fit(X, y, optimizer="lbfgs", epochs=10, verbose=0)
    for key, value in net.params().items():
        np.testing.assert_array_equal(value, before[key])


MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")


@pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec (the mpich wheel of the [mpi] extra brings one)")
def test_several_ranks_are_refused_by_name_in_a_real_job(tmp_path):
    pytest.importorskip("mpi4py")
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent("""
        import numpy as np
        from mpi4py import MPI
        import deltaprop as dp
        net = dp.Network([dp.Dense(3, 1, "identity")], loss="mse", dtype="float64", seed=0)
        net.fit(np.ones((8, 3)), np.ones(8), optimizer="lbfgs", epochs=3, comm=MPI.COMM_WORLD, verbose=0)
    """))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    result = subprocess.run([MPIEXEC, "-n", "2", sys.executable, "-m", "mpi4py", str(script)], capture_output=True,
                            text=True, timeout=120, env=env)
    assert result.returncode != 0
    assert "runs on one process (this job has 2 ranks)" in result.stderr


def test_lbfgs_fit_says_its_step_and_info_does_not_pass_adam_off_as_its_training(tmp_path, capsys):
    """fit(optimizer="lbfgs", verbose=1) printed no first line (the Trainer's "training step: ..." is not run);
    and info of an L-BFGS-trained model said "training step: compiled (numba)", Adam's step at batch 32, as if
    that were how it was trained. Now the fit says L-BFGS-B, and info says its line is about a further fit."""
    X, y = load_iris(return_X_y=True)
    net = dp.Network([dp.Dense(4, 8, "tanh"), dp.Dense(8, 3, "softmax")], loss="cross_entropy", seed=0)
    net.fit(scale(X), y, optimizer="lbfgs", epochs=3, verbose=1)
    assert capsys.readouterr().out.splitlines()[0] == lbfgs.STEP_LINE
    assert "full-batch L-BFGS-B (SciPy)" in lbfgs.STEP_LINE
    net.save(tmp_path / "m.safetensors")
    info = deltaprop("info", tmp_path / "m.safetensors").stdout
    line = next(line for line in info.splitlines() if "step" in line)
    assert line.startswith(("training step (a further fit of this model: adam, batch 32): ",
                            "readable step (a further fit of this model: adam, batch 32): "))
    assert "trained 3 epoch(s) with no optimizer state saved: by L-BFGS" in line
