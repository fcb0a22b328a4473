"""scikit-learn estimators: DeltaClassifier and DeltaRegressor.

They follow scikit-learn's conventions (constructor arguments stored as given,
fitted attributes with a trailing underscore, input checked by
``validate_data``) so they work in Pipeline, GridSearchCV and cross_val_score,
and they pass ``sklearn.utils.estimator_checks``. The trained deltaprop
Network is ``network_``; ``coefs_[l - 1]`` is the notes' W^l.

With scikit-learn's array API dispatch on (``sklearn.set_config(array_api_dispatch=True)``),
inputs of another Array API library (array_api_strict, PyTorch, CuPy) train the network on
their namespace and device (ops.ArrayAPIOps): they are checked on the host, each batch is sent
over, and predictions come back in X's namespace and on X's device, as scikit-learn's own
array API estimators do.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn import get_config
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .activations import log_softmax
from .callbacks import Callback
from .checks import ArrayLike
from .constraints import Exactly, Real, Whole, check
from .layers import Dense
from .network import Network
from .ops import ArrayAPIOps
from .optimizers import OPTIMIZERS, Optimizer, get_optimizer
from .training import TrainingState
from .training.lbfgs import LBFGS

# The numeric settings' rules, as scikit-learn's _parameter_constraints: checked when fit starts, each error
# naming the setting (a string max_iter or a negative alpha used to fail deep inside with another name).
PARAMETERS = {"alpha": (Real(minimum=0),), "batch_size": (Whole(1),), "max_iter": (Whole(1),),
              "tol": (Real(minimum=0),), "n_iter_no_change": (Whole(1), Exactly(math.inf, "inf (never stop)")),
              "dropout": (Real(minimum=0, below=1),),
              "max_fun": (Whole(1),), "learning_rate": (None, Real(above=0))}


class NoImprovementStop(Callback):
    """scikit-learn's stopping rule for MLPClassifier / MLPRegressor (``tol``, ``n_iter_no_change``).

    An epoch whose training loss is above ``best - tol`` (best: the lowest loss so far)
    counts as one without improvement, any other resets the count; training stops once
    the count exceeds ``n_iter_no_change`` (``np.inf``: never).
    """

    def __init__(self, tol: float, n_iter_no_change: float):
        self.tol, self.n_iter_no_change = tol, n_iter_no_change

    def on_train_begin(self, net) -> None:
        self.best, self.count = math.inf, 0

    def on_epoch_logs(self, net, epoch: int, logs: dict) -> None:  # (as Callback declares them)
        loss = logs["loss"]
        self.count = self.count + 1 if loss > self.best - self.tol else 0
        self.best = min(self.best, loss)
        if self.count > self.n_iter_no_change:
            net.training.stop = True


class _DeltaEstimator(BaseEstimator):
    """What both estimators share: the options, building and training the network.

    ``alpha`` is scikit-learn's L2 penalty: (alpha / 2) sum_l ||W^l||^2 divided by the
    batch's size (its weight total), so dL/dW^l gains alpha W^l / m; biases are not
    penalised. ``learning_rate`` None takes the optimizer's own (1e-3 for a name); with
    an Optimizer instance, a copy of it with fresh state trains each ``fit``.

    ``solver="lbfgs"`` trains by full-batch L-BFGS-B instead (training/lbfgs.py), with scikit-learn's
    meaning of the options: ``max_iter`` its most iterations, ``tol`` the gradient size where it stops,
    ``max_fun`` its most loss evaluations; optimizer, learning_rate, batch_size and n_iter_no_change are
    then unused, dropout is refused, and so is partial_fit (as scikit-learn's). ``solver=None`` (the
    default) trains by mini-batches with ``optimizer``: the optimizer already names the step rule, so
    solver takes no step-rule names. As scikit-learn's MLP, only the architecture may be given by position.
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, optimizer="adam", learning_rate=None,
                 alpha=0.0, batch_size=32, max_iter=200, tol=1e-4, n_iter_no_change=10, dropout=0.0,
                 dtype="float64", random_state=None, verbose=0, solver=None, max_fun=15000):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.alpha = alpha
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.dropout = dropout
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose
        self.solver = solver
        self.max_fun = max_fun

    def _build(self, n_in: int, n_out: int, output: str, loss: str) -> Network:
        sizes = [n_in] + [int(n) for n in np.atleast_1d(self.hidden_layer_sizes)]
        layers = [Dense(sizes[l - 1], sizes[l], self.activation, self.dropout) for l in range(1, len(sizes))]
        layers.append(Dense(sizes[-1], n_out, output))
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        net = Network(layers, loss=loss, dtype=self.dtype, seed=seed, ops=getattr(self, "_fit_ops", None))
        net.training = TrainingState(None if self._lbfgs() else self._new_optimizer())
        return net

    def _lbfgs(self) -> bool:
        """Whether ``solver`` asks for full-batch L-BFGS (None: mini-batches with ``optimizer``)."""
        if self.solver is None or self.solver == "lbfgs":
            return self.solver == "lbfgs"
        raise ValueError(f"solver must be None (mini-batch training with optimizer={self.optimizer!r}) or "
                         f"'lbfgs', got {self.solver!r}" + (f"; for that step rule set optimizer={self.solver!r}"
                                                           if self.solver in OPTIMIZERS else ""))

    def _new_optimizer(self) -> Optimizer:
        """A fresh optimizer for a new fit: the named one, or a stateless copy of the instance given."""
        if not isinstance(self.optimizer, Optimizer):
            return get_optimizer(self.optimizer, lr=1e-3 if self.learning_rate is None else self.learning_rate)
        settings = self.optimizer.hyperparameters()
        if self.learning_rate is not None and self.learning_rate != settings["lr"]:
            raise ValueError(f"learning_rate={self.learning_rate} conflicts with the optimizer's "
                             f"lr={settings['lr']}; set one of them (learning_rate=None keeps the optimizer's)")
        return type(self.optimizer)(**settings)

    def _mini_batches(self) -> bool:
        """partial_fit exists only for mini-batch training: it is one epoch of them, and L-BFGS has none (its
        curvature memory spans one fit). As scikit-learn's MLP, the attribute itself is absent, so that
        code asking hasattr(model, "partial_fit") learns it cannot call it."""
        if self._lbfgs():
            raise AttributeError("partial_fit trains one epoch of mini-batches; solver='lbfgs' has none: use fit, "
                                 "or solver=None")
        return True

    def _train(self, X, Y, sample_weight, epochs: int) -> None:
        """``epochs`` passes; stops as scikit-learn's MLP does (see NoImprovementStop). With L-BFGS,
        ``epochs`` iterations at most, and scikit-learn's ConvergenceWarning when they did not suffice."""
        if self._lbfgs():
            self.network_.fit(X, Y, epochs=epochs, optimizer=LBFGS(self.tol, self.max_fun),
                              sample_weight=sample_weight, verbose=self.verbose, l2=self.alpha)
            result = self.network_.training.solver_result
            if not result["converged"]:
                warnings.warn(f"lbfgs stopped before converging after {result['iterations']} iteration(s) "
                              f"({result['message']}); raise max_iter (or max_fun) or scale the data",
                              ConvergenceWarning, stacklevel=3)
            return
        if not (self.n_iter_no_change == np.inf or (isinstance(self.n_iter_no_change, (int, np.integer))
                                                    and self.n_iter_no_change >= 1)):
            raise ValueError(f"n_iter_no_change must be an integer >= 1 or np.inf, got {self.n_iter_no_change!r}")
        stop = NoImprovementStop(self.tol, self.n_iter_no_change)
        self.network_.fit(X, Y, epochs=epochs, batch_size=min(self.batch_size, X.shape[0]),
                          sample_weight=sample_weight, callbacks=[stop] if epochs > 1 else [],
                          verbose=self.verbose, l2=self.alpha)

    def _check(self, X, y, sample_weight, reset: bool, **options):
        for name, rule in PARAMETERS.items():  # by the estimator's own names, before any work (not l2's, deep down)
            check(name, getattr(self, name), rule)
        # (dispatch on and X not NumPy's: the network trains where X lives; L-BFGS is SciPy's: on the host)
        backend = _backend_of(X)
        self._fit_ops = None if self._lbfgs() else backend
        if reset:  # where fit's inputs lived: predict's must live there too (scikit-learn's rule)
            self._fit_where = None if backend is None else (backend.xp, str(backend.device))
        X, y, sample_weight = _host(X), _host(y), _host(sample_weight)  # checked on the host
        X, y = validate_data(self, X, y, reset=reset, dtype=[np.float64, np.float32], accept_sparse=["csr", "csc"],
                             **options)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        return X, y, sample_weight

    @property
    def coefs_(self) -> list:
        """W^l for l = 1..L (list index l - 1), shape (n_{l-1}, n_l)."""
        check_is_fitted(self)
        return [layer.W for layer in self.network_.layers]

    @property
    def intercepts_(self) -> list:
        """b^l for l = 1..L (list index l - 1), shape (n_l,)."""
        check_is_fitted(self)
        return [layer.b for layer in self.network_.layers]

    @property
    def loss_curve_(self) -> list:
        check_is_fitted(self)
        return list(self.network_.training.history["loss"])

    @property
    def n_iter_(self) -> int:
        check_is_fitted(self)
        return self.network_.training.epoch

    def _inputs(self, X, method: str):
        check_is_fitted(self)
        self._same_namespace(X, method)
        return validate_data(self, _host(X), reset=False, dtype=[np.float64, np.float32],
                             accept_sparse=["csr", "csc"])

    def _same_namespace(self, X, method: str) -> None:
        """Refuse (array API dispatch) an X of another namespace or device than fit's, as scikit-learn's own
        estimators do: the network's arrays live where fit's inputs did."""
        ops = _backend_of(X)
        where = None if ops is None else (ops.xp, str(ops.device))
        was = getattr(self, "_fit_where", None)
        if get_config()["array_api_dispatch"] and where != was:
            def name(w):
                return "numpy" if w is None else f"{w[0].__name__} on {w[1]}"
            raise ValueError(f"Inputs passed to {type(self).__name__}.{method}() must use the same namespace and the "
                             f"same device as those passed to fit(): fit used {name(was)}, this X is {name(where)}")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # CSR/CSC rows are densified one batch at a time
        tags.array_api_support = True  # see the module's text
        return tags


class DeltaClassifier(ClassifierMixin, _DeltaEstimator):
    """A softmax + cross-entropy network classifier with deltaprop's backpropagation."""

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> DeltaClassifier:
        """Train a new network on (X, y) for up to ``max_iter`` epochs."""
        X, y, sample_weight = self._check(X, y, sample_weight, reset=True)
        self._start(X, y, classes=None)
        self._train(X, self._encode(y), sample_weight, self.max_iter)
        return self

    @available_if(_DeltaEstimator._mini_batches)
    def partial_fit(self, X: ArrayLike, y: ArrayLike, classes: ArrayLike | None = None,
                    sample_weight: ArrayLike | None = None) -> DeltaClassifier:
        """One epoch on (X, y); the first call needs ``classes`` (every label that will occur)."""
        first = not hasattr(self, "network_")
        X, y, sample_weight = self._check(X, y, sample_weight, reset=first)
        if first:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit")
            self._start(X, y, classes)
        elif classes is not None and not np.array_equal(np.unique(np.asarray(classes)), self.classes_):
            raise ValueError(f"classes={np.asarray(classes).tolist()} is not the same as on the first call to "
                             f"partial_fit, was {self.classes_.tolist()}")
        self._train(X, self._encode(y), sample_weight, 1)
        return self

    def _start(self, X, y, classes) -> None:
        check_classification_targets(y)
        self.classes_ = np.unique(y if classes is None else np.asarray(classes))
        if len(self.classes_) < 2:
            raise ValueError(f"a classifier needs samples of at least 2 classes; got 1 class ({self.classes_[0]!r})")
        self.network_ = self._build(X.shape[1], len(self.classes_), "softmax", "cross_entropy")
        self.network_.classes = np.arange(len(self.classes_))

    def _encode(self, y) -> np.ndarray:
        idx = np.searchsorted(self.classes_, y)
        idx = np.clip(idx, 0, len(self.classes_) - 1)
        if np.any(self.classes_[idx] != y):
            unknown = y[self.classes_[idx] != y][0]
            raise ValueError(f"label {unknown!r} is not in classes {list(self.classes_)}")
        return idx

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        a0 = self._inputs(X, "predict_proba")  # (first: it checks that fit has run)
        return _like(X, self.network_.predict_proba(a0))

    def predict_log_proba(self, X: ArrayLike) -> np.ndarray:
        """log of ``predict_proba``, from z^L (log-softmax): finite where a probability underflows to 0."""
        a0 = self._inputs(X, "predict_log_proba")
        z_L = self.network_.output(a0, sigma_L=False)
        return _like(X, log_softmax(self.network_.ops.to_host(z_L)))

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The most probable label of each row."""
        a0 = self._inputs(X, "predict")
        best = self.network_.predict_proba(a0).argmax(axis=1)
        labels = self.classes_[best]
        return _like(X, labels) if labels.dtype.kind in "biuf" else labels  # (text labels stay NumPy's)


class DeltaRegressor(RegressorMixin, _DeltaEstimator):
    """An identity-output network with the notes' 1/2 squared-error loss."""

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> DeltaRegressor:
        """Train a new network on (X, y) for up to ``max_iter`` epochs."""
        X, y, sample_weight = self._check(X, y, sample_weight, reset=True, multi_output=True, y_numeric=True)
        self._start(X, y)
        self._train(X, self._targets(y), sample_weight, self.max_iter)
        return self

    @available_if(_DeltaEstimator._mini_batches)
    def partial_fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> DeltaRegressor:
        """One epoch on (X, y), continuing from the current weights."""
        first = not hasattr(self, "network_")
        X, y, sample_weight = self._check(X, y, sample_weight, reset=first, multi_output=True, y_numeric=True)
        if first:
            self._start(X, y)
        self._train(X, self._targets(y), sample_weight, 1)
        return self

    def _start(self, X, y) -> None:
        self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        self._y_is_2d = y.ndim == 2
        self.network_ = self._build(X.shape[1], self.n_outputs_, "identity", "mse")

    def _targets(self, y) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        return y.reshape(-1, 1) if y.ndim == 1 else y

    def predict(self, X: ArrayLike) -> np.ndarray:
        a0 = self._inputs(X, "predict")
        a_L = self.network_.ops.to_host(self.network_.output(a0))
        return _like(X, a_L if self._y_is_2d else a_L[:, 0])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def _backend_of(X) -> ArrayAPIOps | None:
    """The backend of X's namespace and device when scikit-learn's array API dispatch is on and X is an array
    of another library than NumPy; None otherwise (the network's default backend)."""
    if not get_config()["array_api_dispatch"] or isinstance(X, np.ndarray) or not hasattr(X, "shape"):
        return None
    from array_api_compat import is_array_api_obj  # (dispatch needs it installed: scikit-learn says so)

    return ArrayAPIOps.for_arrays(X) if is_array_api_obj(X) else None


def _host(x):
    """An array of another library as a NumPy array (the estimators check inputs on the host); else as is."""
    ops = _backend_of(x) if x is not None else None
    return x if ops is None else ops.to_host(x)


def _like(X, result: np.ndarray):
    """A prediction in X's namespace and on X's device (array API dispatch), else the NumPy array itself."""
    ops = _backend_of(X)
    return result if ops is None else ops.asarray(result)
