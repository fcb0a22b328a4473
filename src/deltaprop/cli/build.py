"""The network, optimizer and schedule that the training options describe (train, explain, inspect)."""

from __future__ import annotations

import numpy as np

from .. import optimizers
from ..errors import ConfigError
from ..layers import Dense
from ..network import Network, check_memory
from ..ops import for_device
from ..schedules import get_schedule
from .options import DEFAULTS, FEW_CLASSES, MAX_AUTO_CLASSES

# copies of the parameters training holds: weights, gradients, the epoch's snapshot, two optimizer slots, and
# the optimizer's scratch
TRAINING_COPIES = 6


LABEL_LOSSES = ("cross_entropy", "binary_cross_entropy")  # a --loss that says the target holds labels


def is_classification(opts: dict, y: np.ndarray) -> bool:
    """--task, else: a classification loss, text or booleans, or integers with few distinct values. ``y`` may be
    the labels alone (a stream's), so that rows of which each value occurs once are told apart by
    ``each_value_once``."""
    if opts["task"] != "auto":
        return opts["task"] == "classification"
    if opts["loss"] in LABEL_LOSSES or y.dtype.kind in "USOb":
        return True
    if y.dtype.kind not in "iu":
        return False
    values = np.unique(y)
    codes = values[0] in (0, 1) and values[-1] - values[0] == len(values) - 1  # 0..k-1 or 1..k, none missing
    return len(values) <= FEW_CLASSES or (codes and len(values) <= MAX_AUTO_CLASSES)


def each_value_once(opts: dict, y_rows: np.ndarray) -> bool:
    """--task auto, no classification loss, and training rows of whole numbers each of which occurs once (a
    tiny table's 17 rates, say): no label would have two examples, so the target is a quantity."""
    return opts["task"] == "auto" and opts["loss"] not in LABEL_LOSSES and \
        y_rows.dtype.kind in "iu" and len(y_rows) > 2 and len(np.unique(y_rows)) == len(y_rows)


def build_network(opts: dict, n_in: int, y: np.ndarray) -> Network:
    """n_0 = features, the hidden widths of --layers, n_L = classes (or target columns)."""
    classify = is_classification(opts, y)
    n_classes = len(np.unique(y)) if classify else 1
    if classify and n_classes < 2:
        raise ConfigError("the training data holds a single class; a classifier needs at least two")
    loss = opts["loss"] or ("cross_entropy" if classify else "mse")
    if loss == "binary_cross_entropy" and n_classes == 2:
        n_classes = 1
    output = opts["output_activation"] or {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid"}.get(
        loss, "sigmoid" if classify else "identity")
    sizes = [n_in] + parse_layers(opts["layers"])
    layers = [Dense(sizes[l - 1], sizes[l], opts["activation"], opts["dropout"]) for l in range(1, len(sizes))]
    layers.append(Dense(sizes[-1], n_classes if classify else 1, output))
    if opts["dtype"] in ("float32", "float64"):  # (Network names a bad one)
        check_memory(layers, np.dtype(opts["dtype"]), copies=TRAINING_COPIES)
    return Network(layers, loss=loss, dtype=opts["dtype"], seed=opts["seed"], ops=backend(opts))


def new_network(layers: str, activation: str, loss: str | None, seed: int, n_in: int, y_train) -> Network:
    """A fresh float64 network from command-line options, its classes set from y_train
    (for gradcheck and explain, which look at a network rather than train it)."""

    opts = {**DEFAULTS, "layers": layers, "activation": activation, "loss": loss, "dtype": "float64", "seed": seed}
    net = build_network(opts, n_in, y_train)
    net.set_classes(y_train)
    return net


def parse_layers(spec) -> list[int]:
    if isinstance(spec, (list, tuple)):
        widths = list(spec)
    else:
        text = str(spec).strip()
        widths = [] if text in ("", "none") else text.split(",")
    try:
        widths = [int(w) for w in widths]
    except ValueError:
        raise ConfigError(f"--layers takes comma-separated widths like 256,128; got {spec!r}") from None
    if any(w < 1 for w in widths):
        raise ConfigError(f"layer widths must be positive, got {spec!r}")
    return widths


def make_optimizer(opts: dict):
    name = opts["optimizer"]
    if name == "lbfgs":  # fit's full-batch solver, not a step rule (training/lbfgs.py)
        if opts["weight_decay"] or opts["momentum"]:
            raise ConfigError("--optimizer lbfgs takes no --weight-decay or --momentum (it has no step rule)")
        return name
    kwargs = {"lr": opts["lr"], "weight_decay": opts["weight_decay"]}
    if name in ("sgd", "rmsprop"):
        kwargs["momentum"] = opts["momentum"]
    return optimizers.get_optimizer(name, **kwargs)


def make_schedule(opts: dict):

    name = opts["schedule"]
    return get_schedule(None if name in (None, "constant") else name,
                        **({"epochs": opts["epochs"]} if name == "cosine" else {}))


def backend(opts: dict):
    """The array backend of --device (ops.for_device: None is the default NumPy/numba backend)."""
    return for_device(opts["device"])
