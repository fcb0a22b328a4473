"""The model-file config schema: check every field, then build the parts it describes.

The parts (layers, optimizer, early stopping's record, history lists) are returned
to io.read; the Network and its TrainingState are put together above, by load.

A config comes from a file that may have been written by someone else, so each
value is checked for type and range before use, and sizes are checked against
the file's size before any array is allocated.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .activations import ACTIVATIONS
from .errors import ConfigError, DeltapropError, ModelFileError
from .layers import LAYERS
from .losses import LOSSES
from .optimizers import OPTIMIZERS

DTYPES = ("float32", "float64")
MAX_LAYERS = 1000
MAX_DEPTH = 32  # JSON nesting accepted in 'extra' (a real model's is 4 levels)
MAX_STEPS = 2**53  # an optimizer step count beyond this is no real run (and no exact float)

# the Python types a class label of each NumPy kind may be, in a model file's JSON
LABEL_TYPES: dict[str, type | tuple[type, ...]] = {"i": int, "u": int, "f": (int, float), "b": bool, "U": str}


def _need(ok: bool, path: Path, what: str) -> None:
    if not ok:
        raise _invalid(path, what)


def _invalid(path: Path, what: str) -> ModelFileError:
    return ModelFileError(f"{path}: invalid model config: {what} (file tampered with?)")


def _is_int(value, lo: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= lo


def check_layers(config: dict, path: Path) -> list:
    """The layer specs of the config, each checked (sizes, dropout, activation, kind), and consecutive."""
    layers = config.get("layers")
    if not (isinstance(layers, list) and 1 <= len(layers) <= MAX_LAYERS):  # raised here: mypy sees a list below
        raise _invalid(path, "'layers' must be a non-empty list")
    for l, spec in enumerate(layers, start=1):
        _need(isinstance(spec, dict), path, f"layer {l} must be an object")
        _need(_is_int(spec.get("n_in"), 1) and _is_int(spec.get("n_out"), 1), path,
              f"layer {l} needs positive integer n_in and n_out")
        _need(isinstance(spec.get("dropout", 0.0), (int, float)) and 0 <= spec.get("dropout", 0.0) < 1, path,
              f"layer {l} dropout must be in [0, 1)")
        if l > 1:
            _need(layers[l - 2]["n_out"] == spec["n_in"], path,
                  f"layer {l - 1} has n_out={layers[l - 2]['n_out']} but layer {l} has n_in={spec['n_in']}")
        _need(spec.get("kind", "dense") in LAYERS, path, f"layer {l} is of kind {spec.get('kind')!r}, which is not "
              f"registered here (known: {', '.join(sorted(LAYERS))})")
        act = spec.get("activation")
        if act not in ACTIVATIONS:
            raise ModelFileError(f"{path}: layer {l} uses activation {act!r}, which is not registered here; "
                                 "register it with deltaprop.register_activation before loading")
    return layers


def _depth(value, limit: int = 64) -> int:
    """How deeply lists and objects nest in ``value`` (counting stops past ``limit``)."""
    if limit <= 0 or not isinstance(value, (dict, list)):
        return 0
    items = value.values() if isinstance(value, dict) else value
    return 1 + max((_depth(v, limit - 1) for v in items), default=0)


def build_layers(specs: list, path: Path) -> list:
    """Layer objects (no parameters yet) of the checked specs, through the registry of kinds."""
    try:
        return [LAYERS[spec.get("kind", "dense")].from_config(spec) for spec in specs]
    except (DeltapropError, KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: invalid model config: {exc}") from None


def check_tensor_headers(layers: list, dtype_name: str, tensors: dict, data_bytes: int, path: Path) -> None:
    """Before anything is allocated: every parameter the layers declare is a tensor of the header with
    their dtype and shape, whose byte range lies inside the file's data (so they fit in the file)."""
    code, itemsize = {"float32": ("F32", 4), "float64": ("F64", 8)}[dtype_name]
    for l, layer in enumerate(layers, start=1):
        for name, shape in layer.param_shapes().items():
            info = tensors.get(f"layers.{l}.{name}")
            if not (isinstance(info, dict) and info.get("dtype") == code and info.get("shape") == list(shape)):
                declared = (info.get("dtype"), info.get("shape")) if isinstance(info, dict) else ("no", "tensor")
                raise ModelFileError(f"{path}: tensor 'layers.{l}.{name}' is {declared[0]} {declared[1]}, "
                                     f"the config says {code} {list(shape)}")
            offsets = info.get("data_offsets")
            _need(isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)
                  and offsets[1] - offsets[0] == math.prod(shape) * itemsize and offsets[1] <= data_bytes, path,
                  f"tensor layers.{l}.{name} does not lie inside the file's {data_bytes} bytes of data")


def check_model(config: dict, path: Path, tensors: dict, data_bytes: int) -> list:
    """The config's loss, dtype, seed and epoch count checked, and its layers built, once the file's tensor
    headers (``tensors``, over ``data_bytes`` of data) hold the parameters they declare."""
    specs = check_layers(config, path)
    _need(config.get("loss") in LOSSES, path, f"unknown loss {config.get('loss')!r}")
    _need(config.get("dtype") in DTYPES, path, f"dtype must be one of {DTYPES}")
    _need(_is_int(config.get("seed")) and config["seed"] < 2**63, path, "'seed' must be an integer in 0..2^63-1")
    _need(_is_int(config.get("epochs_trained", 0)), path, "'epochs_trained' must be a non-negative integer")
    extra = config.get("extra", {})
    _need(isinstance(extra, dict), path, "'extra' must be an object")
    _need(_depth(extra) <= MAX_DEPTH, path, f"'extra' is nested more than {MAX_DEPTH} levels deep")
    layers = build_layers(specs, path)
    check_tensor_headers(layers, config["dtype"], tensors, data_bytes, path)
    return layers


def classes(spec, n_out: int, path: Path):
    """The class labels behind the output neurons, checked (None when the config has none)."""
    if spec is None:
        return None
    _need(isinstance(spec, dict) and spec.get("kind") in ("i", "u", "f", "b", "U")
          and isinstance(spec.get("values"), list), path, "'classes' must be {kind, values}")
    values = spec["values"]
    _need(1 <= len(values) <= max(n_out, 2), path, f"{len(values)} classes for {n_out} output neurons")
    types = LABEL_TYPES[spec["kind"]]
    _need(all(isinstance(v, types) for v in values), path, "class labels do not match their kind")
    classes = np.array(values)
    _need(bool(np.all(classes[1:] > classes[:-1])) if len(values) > 1 else True, path,
          "class labels must be sorted and distinct")
    return classes


def history_lists(spec, path: Path) -> dict | None:
    """The saved history {name: [one number per epoch]}, checked (None when the config has none)."""
    if spec is None:
        return None
    _need(isinstance(spec, dict) and all(isinstance(v, list) for v in spec.values()), path,
          "'history' must map names to lists")
    _need(all(isinstance(x, (int, float)) for v in spec.values() for x in v), path, "history values must be numbers")
    _need(len({len(v) for v in spec.values()}) <= 1, path, "history lists must have equal lengths")
    return spec


def build_optimizer(spec, shapes: dict, get_tensor, path: Path):
    """The saved optimizer with its state arrays, each checked against its parameter's shape
    (``shapes``: {(l, name): shape} of every parameter)."""
    _need(isinstance(spec, dict) and spec.get("name") in OPTIMIZERS, path, "unknown optimizer")
    _need(isinstance(spec.get("hyperparameters"), dict) and _is_int(spec.get("t")) and spec["t"] <= MAX_STEPS,
          path, f"optimizer needs hyperparameters and a step count t in 0..{MAX_STEPS}")
    try:
        optimizer = OPTIMIZERS[spec["name"]](**spec["hyperparameters"])
    except (TypeError, ConfigError) as exc:
        raise ModelFileError(f"{path}: invalid optimizer settings: {exc}") from None
    arrays = {}
    if spec["t"] > 0:
        for (l, name), shape in shapes.items():
            for slot in optimizer.slots:
                arrays[(l, name, slot)] = get_tensor(f"optimizer.{l}.{name}.{slot}", shape)
    optimizer.load_state_arrays(arrays, spec["t"])
    return optimizer


def build_early_stopping(spec, epochs_trained: int, shapes: dict, get_tensor, path: Path) -> dict:
    """EarlyStopping's saved record (monitor, best, best_epoch, wait) and best weights, checked."""
    _need(isinstance(spec, dict) and isinstance(spec.get("monitor"), str), path,
          "early_stopping needs the monitored name")
    _need(isinstance(spec.get("best"), (int, float)) and not isinstance(spec.get("best"), bool)
          and math.isfinite(spec["best"]), path, "early_stopping needs a finite best value")
    _need(_is_int(spec.get("best_epoch")) and 0 <= spec["best_epoch"] < max(epochs_trained, 1), path,
          "early_stopping's best_epoch must be an epoch already trained")
    _need(_is_int(spec.get("wait")) and spec["wait"] >= 0 and isinstance(spec.get("weights"), bool), path,
          "early_stopping needs a wait count and a weights flag")
    weights = None
    if spec["weights"]:
        weights = {(l, name): get_tensor(f"early_stopping.{l}.{name}", shape) for (l, name), shape in shapes.items()}
    return {"monitor": spec["monitor"], "best": float(spec["best"]), "best_epoch": spec["best_epoch"],
            "wait": spec["wait"], "weights": weights}
