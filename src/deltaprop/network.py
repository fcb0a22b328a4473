"""Network: the model. Layers 1..L, a loss, a dtype, classes, preprocessing; the forward and backward passes.

What exists only because the model is trained (optimizer, history, epochs, early
stopping's record, the flat parameter vector) is a TrainingState on ``net.training``,
made and continued by ``fit`` (training/), saved with the model in checkpoints.
"""

from __future__ import annotations

import os
import secrets
import warnings
from collections.abc import Sequence
from typing import Any, TextIO

import numpy as np

from . import backprop, devices, io
from .backprop import Grads, Trace
from .checks import ArrayLike, Inputs, PathLike, all_finite, check_weights, check_whole_numbers, check_X, encode_targets
from .data.stream import Stream
from .errors import (
    ConfigError,
    DataError,
    DeltapropError,
    DeltapropWarning,
    DivergenceError,
    ModelFileError,
    ShapeError,
)
from .layers import Layer
from .losses import get_loss
from .ops import ArrayAPIOps, Ops, get_ops
from .preprocessing import Pipeline
from .schema import DTYPES, MAX_LAYERS
from .summary import summary_html, summary_text
from .training import History, TrainingState
from .training import fit as train
from .workspace import Workspace

Array = np.ndarray


class Network:
    """A fully-connected network: ``layers[l - 1]`` is layer l of the notes.

    Parameters
    ----------
    layers : list of Layer (Dense, ...), consecutive sizes matching (n_out of l == n_in of l+1).
    loss : "mse", "cross_entropy" or "binary_cross_entropy".
    dtype : "float64" or "float32"; every array of the network's work has it.
    seed : seeds the weight init and, in ``fit``, shuffling and dropout (an integer in 0..2^63-1).
    initialize : False keeps the parameters the layers hold (a loader's), checked against their declaration.
    ops : the array backend, "numpy", "numba" or a backend object; None takes ``ops.default_ops()``.
    """

    def __init__(self, layers: Sequence[Layer], loss: str = "mse", dtype: str = "float64", seed: int | None = None,
                 initialize: bool = True, ops: str | Ops | None = None):
        if not layers or not all(isinstance(layer, Layer) for layer in layers):
            raise ConfigError("Network needs a non-empty list of layers (Dense, or another Layer kind)")
        for l in range(1, len(layers)):
            if layers[l - 1].n_out != layers[l].n_in:
                raise ShapeError(f"layer {l} has n_out={layers[l - 1].n_out} but layer {l + 1} "
                                 f"has n_in={layers[l].n_in}; they must be equal")
        if layers[-1].dropout:
            raise ConfigError("dropout on the output layer L would drop predictions; use it on hidden layers")
        if layers[-1].activation.name == "softmax" and layers[-1].n_out == 1:
            raise ConfigError("a softmax over one output neuron is always 1; use sigmoid for one output")
        if str(dtype) not in DTYPES:
            raise ConfigError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        if len(layers) > MAX_LAYERS:
            raise ConfigError(f"a network of {len(layers)} layers is more than a model file holds ({MAX_LAYERS})")
        check_memory(layers, np.dtype(str(dtype)), copies=2)  # the layers' arrays and the flat vector
        for l, layer in enumerate(layers[:-1], start=1):
            if layer.activation.name == "softmax" and initialize:  # (a loaded model was warned about when made)
                warnings.warn(f"layer {l} is a hidden layer with softmax: its outputs sum to 1, so the layer above "
                              "sees a distribution, not features, and learning is slow; softmax belongs on the "
                              "output layer L (use relu or tanh here)", DeltapropWarning, stacklevel=2)
        self.layers = list(layers)
        self.loss_fn = get_loss(loss)
        self.loss_fn.check_output(self.layers[-1].activation)
        self.dtype = np.dtype(str(dtype))
        if seed is not None and not (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)
                                     and 0 <= seed < 2**63):
            raise ConfigError(f"seed must be an integer in 0..2^63-1, got {seed!r}")
        self.seed = secrets.randbits(63) if seed is None else int(seed)  # (SeedSequence's own source of entropy)
        self.classes: Array | None = None  # labels behind output neurons 0..n_L-1, set by fit
        self.pipeline = Pipeline()  # fitted stages raw inputs -> a^0 and a^L -> the target's units (none: identity)
        self.extra: dict = {}  # the user's JSON-able notes, saved with the model
        self.ops = get_ops(ops)  # the array backend of every pass and step, chosen once
        self.training: TrainingState | None = None  # made by the first fit (or a loaded checkpoint)
        rng = np.random.default_rng(self.seed)
        for layer in self.layers:
            if initialize:
                layer.initialize(rng, self.dtype, self.ops)
            else:
                _check_loaded(layer, self.dtype, self.ops)

    @property
    def L(self) -> int:
        """The number of layers with weights (the notes' L)."""
        return len(self.layers)

    @property
    def is_classifier(self) -> bool:
        return self.classes is not None or self.loss_fn.classification

    # --- the two passes -------------------------------------------------------
    def forward(self, X: ArrayLike, training: bool = False, rng: np.random.Generator | None = None) -> Trace:
        """z^l = a^{l-1} W^l + b^l and a^l = sigma(z^l) for l = 1..L; a^0 = X (m, n_0).

        With ``training=True`` each layer's dropout is applied to its a^l, with
        masks drawn from ``rng``; otherwise (predict, loss, gradcheck) none is.
        """
        a0 = check_X(self.bind(X), self.layers[0].n_in, self.dtype)  # (binding first: it may change self.ops)
        return self.propagate(self.ops.asarray(a0), training, rng)

    def propagate(self, a0: Array, training: bool = False, rng: np.random.Generator | None = None,
                  workspace: Workspace | None = None, rows: tuple | None = None) -> Trace:
        """``forward`` for an input already checked (C-contiguous, network dtype, finite).

        With a ``workspace`` (see workspace.py) every array is written into its buffers. With
        ``rows`` = (first, k), a0 is one rank's rows first.. of a global batch of k rows: the
        dropout masks are drawn for all k rows, as one process draws them, and its rows kept.
        """
        L = self.L
        trace = workspace.trace(a0) if workspace is not None else Trace([None] * (L + 1), [a0] + [None] * L,
                                                                        [None] * (L + 1))
        for l, layer in enumerate(self.layers, start=1):
            z, a = layer.forward(trace.a[l - 1], self.ops, trace.z[l], trace.a[l])
            mask = None
            if training and layer.dropout:
                mask = self._mask(l, a.shape, rng or np.random.default_rng(), trace.mask[l], workspace, rows)
                if workspace is not None:
                    a *= mask
                else:
                    a = a * mask
            trace.z[l], trace.a[l], trace.mask[l] = z, a, mask
        return trace

    def _mask(self, l: int, shape: tuple, rng, out, workspace, rows) -> Array:
        """Layer l's dropout mask for a batch of ``shape``, or a rank's rows of the global batch's (``rows``)."""
        p = self.layers[l - 1].dropout
        if rows is None:
            return dropout_mask(rng, shape, p, self.dtype, out=out, ops=self.ops)
        first, k = rows
        whole = dropout_mask(rng, (k, shape[1]), p, self.dtype, out=None if workspace is None else
                             workspace.mask[l][:k, ...], ops=self.ops)
        return whole[first:first + shape[0], ...]

    def backward(self, trace: Trace, y: ArrayLike, sample_weight: ArrayLike | None = None) -> Grads:
        """Equations (1)-(4): fresh dW[l], db[l], delta[l] for l = 1..L (see backprop.py)."""
        m, ops = trace.a[0].shape[0], self.ops
        target, w = self.targets(self.bind(y), m), check_weights(self.bind(sample_weight), m)
        return backprop.backward(self.layers, self.loss_fn, trace, ops.asarray(target),
                                 None if w is None else ops.asarray(w), ops=ops)

    def targets(self, y: ArrayLike, m: int) -> Array:
        """y encoded as (m, n_L) in the network's dtype (one-hot for labels), checked for the loss."""
        Y = encode_targets(y, m, self.layers[-1].n_out, self.loss_fn, self.dtype, self.classes)
        self.loss_fn.check_targets(Y, self.layers[-1].activation)
        return Y

    def loss(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """L averaged over the batch (no dropout), a Python float."""
        trace = self.forward(X)
        m, ops = trace.a[0].shape[0], self.ops
        w = check_weights(self.bind(sample_weight), m)
        return self.loss_fn.value(trace.z[self.L], trace.a[self.L], ops.asarray(self.targets(self.bind(y), m)),
                                  self.layers[-1].activation, None if w is None else ops.asarray(w))

    # --- predictions ----------------------------------------------------------
    def output(self, X: ArrayLike, chunk: int | None = None, sigma_L: bool = True) -> Array:
        """a^L (m, n_L) for X (z^L if ``sigma_L`` is False), ``chunk`` rows at a time.

        Inference keeps no trace: each hidden layer's a^l is written over its z^l in one
        buffer per layer, reused from chunk to chunk (no allocation per chunk), and
        layer L writes straight into the result. The default chunk holds about 4 MB of
        buffers, and at least 1024 rows so the matrix products stay efficient. A sparse X
        is densified a chunk at a time (its dense rows count towards the 4 MB).
        """
        a0 = check_X(self.bind(X), self.layers[0].n_in, self.dtype, sparse_ok=True)
        m, dense = a0.shape[0], isinstance(a0, np.ndarray)
        widths = sum(layer.n_out for layer in self.layers) + (0 if dense else self.layers[0].n_in)
        chunk = chunk or max(1024 if dense else 1, 2**22 // (self.dtype.itemsize * widths))
        ops = self.ops
        out = ops.alloc((m, self.layers[-1].n_out), self.dtype)
        buffers = [ops.alloc((min(chunk, m), layer.n_out), self.dtype) for layer in self.layers[:-1]]
        rows = None if dense else host_buffer((min(chunk, m), self.layers[0].n_in), self.dtype)
        for start in range(0, m, chunk):
            part = a0[start:start + chunk]
            a = ops.asarray(part if rows is None else part.toarray(out=rows[:min(chunk, m - start)]))  # a sparse X's
            for layer, buffer in zip(self.layers[:-1], buffers, strict=True):
                z = buffer[:a.shape[0], ...]
                _, a = layer.forward(a, ops, z=z, a=z)  # a^l written over z^l
            z_L = out[start:min(start + chunk, m), ...]  # (the standard has no out-of-bounds stop)
            if sigma_L:
                self.layers[-1].forward(a, self.ops, z=z_L, a=z_L)  # a^L written over z^L, in the result
            else:
                self.layers[-1].pre_activation(a, self.ops, out=z_L)
        if not (all_finite(out) if isinstance(out, np.ndarray) else bool(ops.xp.all(ops.xp.isfinite(out)))):
            raise DivergenceError(self._non_finite_output(ops.to_host(out), a0))
        return out

    def _non_finite_output(self, out: Array, a0) -> str:
        """Why a prediction is NaN or inf: the row, and the largest weight and input magnitudes."""
        row = int(np.argmax(~np.isfinite(out).all(axis=1)))
        params = {key: self.ops.to_host(value) for key, value in self.params().items()}  # (read on the host)
        (l, name), value = max(params.items(), key=lambda item: float(np.abs(item[1]).max(initial=0)))
        return (f"the network's output a^L is not finite for row {row}: a layer overflowed (largest parameter "
                f"|{name}| {float(np.abs(value).max()):.3g}, in layer {l}); the model's weights or the inputs "
                "are out of range")

    # The model's level: raw inputs through the preprocessing stages (forward, loss, output: a^0 = X) ------
    def model_output(self, X: Inputs, sigma_L: bool = True) -> Array:
        """a^L (z^L if not ``sigma_L``) for raw inputs X: the stages of ``self.pipeline`` give a^0 (a table
        a part at a time), then ``output``. With no stages X is a^0 itself."""
        parts = [self.ops.to_host(self.output(a0, sigma_L=sigma_L))
                 for a0 in self.pipeline.encoded(self.bind(X), self.dtype)]  # predictions come back to the host
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def predict_proba(self, X: Inputs) -> Array:
        """Class probabilities (m, n_classes) for raw inputs X; one sigmoid output gives columns [1 - p, p]."""
        if not self.is_classifier:
            raise DataError(f"predict_proba needs a classifier; this model is a regressor (loss {self.loss_fn.name}): "
                            "use predict")
        return probabilities(self.model_output(X))

    def predict(self, X: Inputs) -> Array:
        """For raw inputs X (a table by column name, if the model was trained on one): labels for a classifier,
        a regressor's values in the target's units (see ``decide``)."""
        softmax = self.is_classifier and self.layers[-1].activation.name == "softmax"
        return self.decide(self.model_output(X, sigma_L=not softmax))  # softmax keeps the order of z^L

    def decide(self, a_L: Array) -> Array:
        """What outputs a^L (m, n_L) answer: a classifier's labels (argmax over the neurons, or p > 0.5 for one
        sigmoid output; a softmax layer's z^L gives the same), a regressor's values in the target's units."""
        if not self.is_classifier:
            a_L = self.pipeline.outputs(a_L)
            return a_L[:, 0] if a_L.shape[1] == 1 else a_L
        idx = (a_L[:, 0] > 0.5).astype(np.intp) if a_L.shape[1] == 1 else a_L.argmax(axis=1)
        return idx if self.classes is None else self.classes[idx]

    def class_names(self) -> list[str]:
        """What each class is called, in the order of ``classes``: the names the pipeline gives where it names
        every class (digits' "0".."9", say), else the labels themselves as text."""
        names = self.pipeline.class_names or []
        classes: list = [] if self.classes is None else self.classes.tolist()
        return [str(n) for n in names] if len(names) == len(classes) else [str(c) for c in classes]

    def set_classes(self, y: ArrayLike) -> None:
        """Remember the sorted labels of y as the classes behind output neurons 0..n_L-1."""
        classes = np.unique(np.asarray(y))
        n_out = self.layers[-1].n_out
        if classes.dtype.kind == "f":
            check_whole_numbers(classes)
        if len(classes) > max(n_out, 2):
            raise DataError(f"y has {len(classes)} distinct labels but the output layer has {n_out} neurons")
        if n_out > 1 and len(classes) < n_out and classes.dtype.kind in "iu" and classes.min() >= 0 \
                and classes.max() < n_out:
            classes = np.arange(n_out)  # integer labels 0..n_L-1, some missing from this sample
        self.classes = classes  # every label of y is among them, by construction

    # --- the backend's arrays: an "array_api" network computes where its inputs live (see devices.py) ----
    def bind(self, x: Any) -> Any:
        """``x`` as the host reads it (checks, encoding, batching). An "array_api" network given an array of
        another library (array_api_strict, a PyTorch tensor, CuPy) first binds its backend to that array's
        namespace and device, moving its parameters and training state there once."""
        return devices.bind(self, x)

    # --- parameters -----------------------------------------------------------
    def params(self) -> dict:
        """{(l, name): array} for every parameter layer l declares ((l, 'W'): W^l, (l, 'b'): b^l for Dense),
        l = 1..L: the live arrays, updated in place."""
        return {(l, name): value for l, layer in enumerate(self.layers, start=1)
                for name, value in layer.params().items()}

    def get_weights(self) -> dict:
        """A copy of every parameter, keyed as ``params``."""
        xp = self.ops.xp  # (NumPy's copy(), which NumPy 1.x's asarray lacks)
        return {key: value.copy() if isinstance(value, np.ndarray) else xp.asarray(value, copy=True)
                for key, value in self.params().items()}

    def set_weights(self, weights: dict) -> None:
        """Copy ``weights`` (keyed as ``params``) into the network's arrays, in place."""
        for key, value in self.params().items():
            value[...] = weights[key]

    def fit(self, X: Inputs | Stream, y: ArrayLike | None = None, *, preprocessed: bool = False,
            **options: Any) -> History:
        """Train on raw (X, y), as ``predict`` takes them: a model with preprocessing stages (a loaded CLI
        model) applies its fitted stages to X (and ``validation_data``) and its target scaling to y, refitting
        none. ``preprocessed=True``: X is a^0 and y the network's targets already. A stream applies its own.

        The options are keyword-only (epochs=..., batch_size=..., a TrainConfig as config=...): see
        ``deltaprop.training.fit``. The network is the model; training is the trainer's (training/), this
        is its door."""
        if isinstance(self.ops, ArrayAPIOps):
            X, y, options = devices.fit_arrays(self, X, y, options)
        if self.pipeline and not preprocessed and not isinstance(X, Stream):
            X, y, options["validation_data"] = self.pipeline.training_data(X, y, options.get("validation_data"))
        return train(self, X, y, **options)

    def save(self, path: PathLike, include_optimizer: bool = True) -> None:
        """Write weights and config (and the training state) to ``path`` (safetensors, no pickle); see io.py."""
        io.save(self, path, include_optimizer)

    def config(self) -> dict:
        return {"layers": [layer.config() for layer in self.layers], "loss": self.loss_fn.name,
                "dtype": self.dtype.name, "seed": self.seed}

    def summary(self, file: TextIO | None = None) -> None:
        """Print the layers as a table: parameter shapes, activations, counts, and what training has done."""
        print(summary_text(self), file=file)

    def _repr_html_(self) -> str:
        """The summary table, for a notebook."""
        return summary_html(self)

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Network([\n  {inner}],\n  loss={self.loss_fn.name!r}, dtype={self.dtype.name!r})"


def _check_loaded(layer: Layer, dtype: np.dtype, ops: Ops) -> None:
    """A layer given with its parameters (``initialize=False``) holds each declared one, a NumPy array of its
    shape and dtype (as a model file gives them), brought to the backend's device (NumPy's: as they are)."""
    for name, shape in layer.param_shapes().items():
        value = getattr(layer, name, None)
        if not (isinstance(value, np.ndarray) and value.shape == shape and value.dtype == dtype):
            raise ConfigError(f"with initialize=False every layer must hold its parameters: {layer!r}'s {name} "
                              f"must be a {dtype.name} array of shape {shape}")
        setattr(layer, name, ops.asarray(value))


def load(path: PathLike, ops: str | Ops | None = None) -> Network:
    """Read a model file written by ``save`` (io.read checks it): a Network ready to predict, or, from a
    checkpoint, to continue training where it stopped, on the backend ``ops`` (as ``Network`` takes it)."""
    saved = io.read(path)
    try:
        net = Network(saved.layers, loss=saved.loss, dtype=saved.dtype, seed=saved.seed, initialize=False, ops=ops)
    except DeltapropError as exc:
        raise ModelFileError(f"{path}: invalid model config: {exc}") from None
    net.classes, net.extra, net.pipeline = saved.classes, saved.extra, saved.pipeline
    if saved.epochs_trained or saved.history or saved.optimizer is not None:
        net.training = TrainingState(saved.optimizer, History.from_lists(saved.history or {}), saved.epochs_trained,
                                     saved.early_stopping)
    if isinstance(net.ops, ArrayAPIOps) and net.ops.bound:  # the optimizer's state to the device as well
        devices.move_to(net, net.ops)
    return net


def resume(path: PathLike, X: Inputs | Stream, y: ArrayLike | None = None, *, epochs: int,
           **options: Any) -> Network:
    """Continue the run saved at ``path`` (a ModelCheckpoint file) until it has ``epochs`` epochs in all
    (keyword-only, as fit's options, which ``options`` passes on).

    The file holds the weights, the optimizer state and the epoch count, and every
    epoch's randomness derives from (seed, epoch), so the result equals a run that was
    never interrupted. Returns the network.
    """
    net = load(path)
    done = net.training.epoch if net.training is not None else 0
    if epochs < done:
        raise ConfigError(f"{path} has trained {done} epochs already, more than epochs={epochs}")
    net.fit(X, y, epochs=epochs - done, **options)
    return net


def check_memory(layers: Sequence[Layer], dtype: np.dtype, copies: int) -> None:
    """Refuse, naming the sizes, a network whose ``copies`` of all parameters exceed the machine's memory
    (a MemoryError from deep inside, or swapping, otherwise)."""
    n_params = sum(layer.n_params() for layer in layers)
    needed = n_params * dtype.itemsize * copies
    try:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not on this platform: no check
        return
    if needed > available:
        raise ConfigError(f"the network has {n_params:,} parameters: {copies} copies in {dtype.name} need "
                          f"{needed / 2**30:.1f} GiB, more than this machine's {available / 2**30:.1f} GiB of memory")


def probabilities(a_L: Array) -> Array:
    """A classifier's class probabilities from a^L: the softmax outputs, or [1 - p, p] for one sigmoid output."""
    return np.hstack([1 - a_L, a_L]) if a_L.shape[1] == 1 else a_L


def dropout_mask(rng: np.random.Generator, shape: tuple, p: float, dtype: np.dtype, out=None,
                 ops: Ops | None = None) -> Array:
    """Inverted dropout: 1/(1-p) with probability 1-p, else 0, so E[mask] = 1 (into ``out`` if given), by the
    backend ``ops`` (NumPy's by default; see its ``dropout``). The draws are ``rng``'s on every backend."""
    ops = get_ops("numpy") if ops is None else ops
    return ops.dropout(rng, p, ops.alloc(shape, dtype) if out is None else out)


def host_buffer(shape: tuple, dtype: np.dtype) -> np.ndarray:
    """A NumPy buffer in host memory, for the edge where data enters: SciPy densifies a sparse X's rows only
    into NumPy arrays (they cross to the backend's device after, with the dense rows)."""
    return np.empty(shape, dtype=dtype)
