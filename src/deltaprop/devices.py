"""Where an "array_api" network's arrays live: bound to the namespace and device of the arrays it is given.

A network made with ``ops="array_api"`` starts with NumPy arrays (ops.ArrayAPIOps, unbound). The first
array of another library it meets (a PyTorch tensor, CuPy, array_api_strict: in ``fit``, ``predict``,
``forward``, ``loss``) binds its backend to that namespace and device, and its parameters and optimizer
state move there once. The inputs themselves are read on the host (checks, encoding, batching); each
batch crosses to the device as it is served (ops.array_api.DeviceBatches).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .distributed import communicator
from .errors import ConfigError
from .ops import ArrayAPIOps

LIBRARIES = ("torch", "cupy", "array_api_strict", "jax")  # the Array API libraries recognised by their types


def foreign(x: Any) -> bool:
    """True for an array of an Array API library other than NumPy (by the library its type comes from)."""
    return type(x).__module__.split(".")[0] in LIBRARIES


def bind(net, x: Any) -> Any:
    """``x`` as the host reads it; an "array_api" ``net`` first moves to ``x``'s namespace and device."""
    if not isinstance(net.ops, ArrayAPIOps) or isinstance(x, np.ndarray) or not foreign(x):
        return x
    if not net.ops.bound_to(x):
        move_to(net, ArrayAPIOps.for_arrays(x))
    return net.ops.to_host(x)


def fit_arrays(net, X: Any, y: Any, options: dict) -> tuple:
    """An "array_api" network's fit arguments: bound to X's namespace and device, read on the host (each
    batch is sent over as it is served). What runs only on NumPy is refused by name."""
    if str(getattr(options.get("optimizer"), "name", options.get("optimizer"))).lower() == "lbfgs":
        raise ConfigError('optimizer "lbfgs" runs on the NumPy backends only (SciPy\'s solver); this network\'s '
                          'backend is "array_api"')
    if communicator(options.get("comm")).size > 1:
        raise ConfigError('data-parallel training over MPI runs on the NumPy backends only (its messages are NumPy '
                          'buffers); this network\'s backend is "array_api"')
    X, y = bind(net, X), bind(net, y)
    if options.get("sample_weight") is not None:
        options["sample_weight"] = bind(net, options["sample_weight"])
    if options.get("validation_data") is not None:
        options["validation_data"] = tuple(bind(net, part) for part in options["validation_data"])
    return X, y, options


def move_to(net, ops: ArrayAPIOps) -> None:
    """Every parameter of ``net``, and its optimizer's state, copied to ``ops``'s device; the flat vector is
    made again by the next fit. ``net.ops`` becomes ``ops``."""
    for layer in net.layers:
        for name, value in layer.params().items():
            setattr(layer, name, ops.asarray(net.ops.to_host(value)))
    optimizer = None if net.training is None else net.training.optimizer
    if optimizer is not None:
        optimizer.load_state_arrays({key: ops.asarray(net.ops.to_host(value))
                                     for key, value in optimizer.state_arrays().items()}, optimizer.t)
    if net.training is not None:
        net.training.flat = None
    net.ops = ops
