"""DeltaClassifier and DeltaRegressor against scikit-learn's own estimator checks, and in use."""

import re

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from deltaprop.estimators import DeltaClassifier, DeltaRegressor

pytestmark = pytest.mark.slow  # scikit-learn's estimator checks (not in the quick tier)


# No check is declared an expected failure. The sample-weight equivalence checks (weights 0..4 against
# removed / repeated rows, dense and sparse) pass because a weighted batch loss is the weighted mean
# sum w_i L_i / sum w_i and the checks' data (15 rows, their repetitions about 30) fit in one batch of
# 32; with several batches per epoch the shuffled order depends on the rows present, so no estimator
# trained by mini-batch SGD could pass them.
@parametrize_with_checks([DeltaClassifier(max_iter=100, random_state=0), DeltaRegressor(max_iter=100, random_state=0)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_classifier_in_a_pipeline_with_grid_search():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import GridSearchCV, train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    pipe = make_pipeline(StandardScaler(), DeltaClassifier(max_iter=15, random_state=0))
    search = GridSearchCV(pipe, {"deltaclassifier__hidden_layer_sizes": [(16,), (64,)]}, cv=2)
    search.fit(X_train, y_train)
    assert search.best_params_["deltaclassifier__hidden_layer_sizes"] in [(16,), (64,)]
    assert search.score(X_test, y_test) > 0.93


def test_fitted_attributes_follow_sklearn_names():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = np.where(X[:, 0] > 0, "yes", "no")
    clf = DeltaClassifier(hidden_layer_sizes=(7,), learning_rate=0.01, max_iter=30, random_state=0).fit(X, y)
    assert [W.shape for W in clf.coefs_] == [(4, 7), (7, 2)]  # W^l is (n_{l-1}, n_l)
    assert [b.shape for b in clf.intercepts_] == [(7,), (2,)]
    assert list(clf.classes_) == ["no", "yes"] and clf.n_features_in_ == 4
    assert clf.n_iter_ == len(clf.loss_curve_) <= 30 and clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert set(clf.predict(X)) <= {"no", "yes"} and clf.score(X, y) > 0.9


def test_partial_fit_continues_and_needs_classes_first():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(100, 3))
    y = (X[:, 1] > 0).astype(int)
    clf = DeltaClassifier(learning_rate=0.01, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:50], y[:50], classes=[0, 1])
    first = clf.coefs_[0].copy()
    for _ in range(20):
        clf.partial_fit(X, y)
    assert clf.n_iter_ == 21 and not np.array_equal(first, clf.coefs_[0])
    assert clf.score(X, y) > 0.9


def test_regressor_fits_a_linear_function_and_multi_output():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 3))
    y = X @ np.array([1.5, -2.0, 0.5]) + 0.3
    reg = DeltaRegressor(hidden_layer_sizes=(16,), learning_rate=0.01, max_iter=200, random_state=0).fit(X, y)
    assert reg.predict(X).shape == (200,) and reg.score(X, y) > 0.98
    Y = np.column_stack([y, -y])
    multi = DeltaRegressor(hidden_layer_sizes=(16,), learning_rate=0.01, max_iter=100, random_state=0).fit(X, Y)
    assert multi.predict(X).shape == (200, 2) and multi.score(X, Y) > 0.95


# --- scikit-learn's documented behaviour, with scikit-learn's own code as the oracle ----------------------
def _sklearn_stop_epoch(curve, tol, n_iter_no_change):
    """The epoch (1-based) at which MLPClassifier stops on this loss curve, by its own
    _update_no_improvement_count and its loop's `> n_iter_no_change` test; None if it never does."""
    from sklearn.neural_network import MLPClassifier

    mlp = MLPClassifier(tol=tol, n_iter_no_change=n_iter_no_change)
    mlp.loss_curve_, mlp.best_loss_, mlp._no_improvement_count = [], np.inf, 0
    for epoch, loss in enumerate(curve, start=1):
        mlp.loss_curve_.append(loss)
        mlp._update_no_improvement_count(False, None, None, None)
        if mlp._no_improvement_count > mlp.n_iter_no_change:
            return epoch
    return None


def _our_stop_epoch(curve, tol, n_iter_no_change):
    from types import SimpleNamespace

    from deltaprop.estimators import NoImprovementStop

    rule, net = NoImprovementStop(tol, n_iter_no_change), SimpleNamespace(training=SimpleNamespace(stop=False))
    rule.on_train_begin(net)
    for epoch, loss in enumerate(curve):
        rule.on_epoch_logs(net, epoch, {"loss": loss})
        if net.training.stop:
            return epoch + 1
    return None


def _curves():
    rng = np.random.default_rng(0)
    tol = 1e-4
    yield "flat", np.ones(600), tol
    yield "falling 0.6 tol per epoch", 1 - 0.6 * tol * np.arange(600), tol
    yield "falling 1.5 tol per epoch, then flat", np.r_[1 - 1.5 * tol * np.arange(300), np.full(300, 1 - 0.0449)], tol
    yield "noisy decay", np.exp(-np.arange(600) / 80) + rng.normal(0, 2e-4, 600), tol
    yield "steps", np.repeat(np.linspace(1, 0.5, 150), 4), 1e-3


@pytest.mark.parametrize("name,curve,tol", list(_curves()), ids=[c[0] for c in _curves()])
@pytest.mark.parametrize("n_iter_no_change", [1, 5, 10, np.inf])
def test_stopping_follows_scikit_learns_rule(name, curve, tol, n_iter_no_change):
    """tol / n_iter_no_change mean what they mean in MLPClassifier: the same stop epoch on the same curve
    (deltaprop used to stop 36, 92, 142, 400, 546 epochs in where scikit-learn stops at 19, 7, 15, 63, 102)."""
    assert _our_stop_epoch(curve, tol, n_iter_no_change) == _sklearn_stop_epoch(curve, tol, n_iter_no_change)


def test_fit_stops_where_scikit_learns_rule_stops_on_its_own_curve():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    clf = DeltaClassifier(hidden_layer_sizes=(8,), learning_rate=0.01, tol=1e-3, n_iter_no_change=3,
                          max_iter=500, random_state=0).fit(X, y)
    assert clf.n_iter_ < 500 and clf.n_iter_ == _sklearn_stop_epoch(clf.loss_curve_, 1e-3, 3)
    forever = DeltaClassifier(hidden_layer_sizes=(8,), n_iter_no_change=np.inf, tol=10.0, max_iter=7).fit(X, y)
    assert forever.n_iter_ == 7  # np.inf raised OverflowError
    with pytest.raises(ValueError, match="n_iter_no_change"):
        DeltaClassifier(n_iter_no_change=0).fit(X, y)


def test_alpha_and_sample_weights_give_scikit_learns_loss_and_gradients():
    """One full-batch SGD step (lr 1) from MLPClassifier's own weights: our loss (with the L2 term) and
    gradients equal those of MLPClassifier._backprop, which adds alpha W / sum(w) to dL/dW only and
    normalises a weighted loss by sum(w). Float64, relative 1e-10. (alpha used to add alpha W.)"""
    from sklearn.neural_network import MLPClassifier

    import deltaprop as dp

    rng = np.random.default_rng(5)
    X, y, w = rng.normal(size=(30, 4)), rng.integers(0, 3, 30), rng.integers(0, 4, 30).astype(float)
    mlp = MLPClassifier(hidden_layer_sizes=(5,), activation="tanh", alpha=0.3, max_iter=1, random_state=0)
    with pytest.warns(Warning):  # one iteration: ConvergenceWarning
        mlp.fit(X, y)
    Y = mlp._label_binarizer.transform(y).astype(float)
    coef_grads = [np.empty_like(W) for W in mlp.coefs_]
    intercept_grads = [np.empty_like(b) for b in mlp.intercepts_]
    loss, coef_grads, intercept_grads = mlp._backprop(X, Y, w, [X, None, None], [None, None], coef_grads,
                                                      intercept_grads)

    net = dp.Network([dp.Dense(4, 5, "tanh"), dp.Dense(5, 3, "softmax")], loss="cross_entropy", seed=0)
    for layer, W, b in zip(net.layers, mlp.coefs_, mlp.intercepts_, strict=True):
        layer.W[...], layer.b[...] = W, b
    before = net.get_weights()
    history = net.fit(X, y, epochs=1, batch_size=30, optimizer=dp.SGD(lr=1.0), shuffle=False, sample_weight=w,
                      l2=0.3, verbose=0)
    assert history["loss"][0] == pytest.approx(loss, rel=1e-10)
    after = net.get_weights()
    for l in (1, 2):
        np.testing.assert_allclose(before[(l, "W")] - after[(l, "W")], coef_grads[l - 1], rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(before[(l, "b")] - after[(l, "b")], intercept_grads[l - 1], rtol=1e-10,
                                   atol=1e-14)


def test_fit_is_idempotent_with_an_optimizer_instance():
    """The instance's step count and momentum used to carry into the next fit (predictions differed by
    up to 1.14) and learning_rate was silently ignored."""
    import deltaprop as dp

    rng = np.random.default_rng(6)
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] > 0).astype(int)
    opt = dp.Adam(lr=0.05)
    clf = DeltaClassifier(hidden_layer_sizes=(6,), optimizer=opt, max_iter=15, random_state=0)
    first = clf.fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(clf.fit(X, y).predict_proba(X), first)
    assert opt.t == 0 and not opt.state  # the instance itself never trains
    same = DeltaClassifier(hidden_layer_sizes=(6,), optimizer="adam", learning_rate=0.05, max_iter=15, random_state=0)
    np.testing.assert_array_equal(same.fit(X, y).predict_proba(X), first)
    with pytest.raises(ValueError, match="learning_rate=0.1 conflicts with the optimizer's lr=0.05"):
        DeltaClassifier(optimizer=opt, learning_rate=0.1).fit(X, y)


def test_partial_fit_refuses_other_classes_later():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    clf = DeltaClassifier(random_state=0).partial_fit(X, y, classes=[0, 1])
    clf.partial_fit(X, y, classes=[1, 0])  # the same set, in another order: fine
    with pytest.raises(ValueError, match=r"classes=\[1, 2\] is not the same .* was \[0, 1\]"):
        clf.partial_fit(X, y, classes=[1, 2])


def test_predict_log_proba_is_log_of_predict_proba_and_finite_where_it_underflows():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(60, 3))
    y = rng.integers(0, 3, 60)
    clf = DeltaClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0).fit(X, y)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(clf.predict_proba(X)), rtol=1e-12)
    clf.network_.layers[-1].W[...] *= 1e4  # probabilities of 0 for the losing classes
    log_p = clf.predict_log_proba(X)
    assert np.isfinite(log_p).all() and (clf.predict_proba(X) == 0).any()


def test_sparse_input_in_a_pipeline_and_in_bounded_memory():
    """make_pipeline(OneHotEncoder(), DeltaClassifier()) works as with MLPClassifier; sparse rows are
    densified per batch: a 20,000 x 5,000 CSR matrix (800 MB dense in float64) trains and predicts
    with a traced peak under 40 MB, and gives the same predictions as its dense form would."""
    import tracemalloc

    import scipy.sparse as sp
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(9)
    cats = rng.choice(["red", "green", "blue", "grey"], size=(300, 2))
    y = (cats[:, 0] == "red") | (cats[:, 1] == "blue")
    pipe = make_pipeline(OneHotEncoder(), DeltaClassifier(hidden_layer_sizes=(8,), learning_rate=0.01,
                                                          max_iter=60, random_state=0))
    assert pipe.fit(cats, y).score(cats, y) > 0.95

    X = sp.random(20_000, 5_000, density=0.001, format="csr", random_state=0, dtype=np.float64)
    labels = np.asarray(X[:, :2500].sum(axis=1)).ravel() > np.asarray(X[:, 2500:].sum(axis=1)).ravel()
    clf = DeltaClassifier(hidden_layer_sizes=(16,), max_iter=2, random_state=0)
    tracemalloc.start()
    clf.fit(X, labels)
    proba = clf.predict_proba(X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 40e6, f"peak {peak / 1e6:.1f} MB"
    np.testing.assert_allclose(clf.network_.predict_proba(X[:500].toarray()), proba[:500], rtol=1e-12)
    dense = DeltaClassifier(hidden_layer_sizes=(16,), max_iter=2, random_state=0).fit(X[:3000].toarray(),
                                                                                       labels[:3000])
    sparse = DeltaClassifier(hidden_layer_sizes=(16,), max_iter=2, random_state=0).fit(X[:3000], labels[:3000])
    np.testing.assert_array_equal(sparse.predict_proba(X[:3000]), dense.predict_proba(X[:3000].toarray()))


@pytest.mark.parametrize("setting,value,says", [("max_iter", "10", "max_iter must be a whole number >= 1"),
                                                ("alpha", -1.0, "alpha must be a finite number >= 0"),
                                                ("batch_size", 0, "batch_size must be a whole number >= 1"),
                                                ("dropout", 1.0, "dropout must be a number in [0, 1)"),
                                                ("learning_rate", 0.0, "learning_rate must be")])
def test_a_bad_setting_is_refused_by_its_own_name(setting, value, says):
    """A setting of the wrong type or range is refused when fit starts, naming the estimator's setting (a string
    max_iter failed with a TypeError deep inside, a negative alpha was called "l2")."""
    X, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    with pytest.raises(ValueError, match=re.escape(says)):
        DeltaClassifier((4,), **{setting: value}).fit(X, y)
