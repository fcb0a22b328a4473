"""Model files: one safetensors file, weights as tensors, the config as JSON in its header.

Loading never executes code (no pickle) and trusts nothing: the header size,
the config's schema and version, every tensor's name, shape and dtype are
checked against each other before any array is used, and every failure is a
ModelFileError that says what is wrong. Saving is atomic: a temporary file in
the same folder is written, flushed, fsynced and renamed over the target, so a
crash never leaves a half-written model where a good one was.

Tensor names: ``layers.{l}.{name}`` for each parameter layer l declares (Dense: W, b),
l = 1..L; a checkpoint (model + training state) adds ``optimizer.{l}.{name}.{slot}`` and
early stopping's best weights ``early_stopping.{l}.{name}``. This module reads and
writes; it builds no Network (``network.load`` puts the parts it reads together).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import schema
from .checks import PathLike, all_finite
from .errors import ModelFileError
from .preprocessing import record as preprocessing_record
from .preprocessing.pipeline import Pipeline
from .version import __version__

FORMAT = "deltaprop"
# 2: the preprocessing record (a deltaprop reading only 1 refuses such a file rather than predict without its
# scaling); 1 is still read, its loose extra keys turned into the record
FORMAT_VERSION = 2
READS_VERSIONS = (1, 2)
MAX_HEADER_BYTES = 16 * 2**20  # a real header is a few KB; refuse to parse absurd ones


def save(net, path: PathLike, include_optimizer: bool = True) -> None:
    """Write ``net`` to ``path`` atomically: its parameters and config, and with ``include_optimizer``
    its training state (the optimizer's state, early stopping's record during a fit) if it has one."""
    from safetensors.numpy import save as st_save

    host = net.ops.to_host  # a backend on a device: the file is written from host copies
    for (l, name), value in net.params().items():
        if not all_finite(host(value)):
            raise ModelFileError(f"refusing to save: layer {l} {name} holds NaN or inf")
    state = getattr(net, "training", None)
    optimizer = state.optimizer if include_optimizer and state is not None else None
    tensors = {key: np.ascontiguousarray(host(value))
               for key, value in named_tensors(net, optimizer is not None).items()}
    config = _config(net, state)
    if state is not None and optimizer is not None:  # (an optimizer is only ever the state's)
        config["optimizer"] = {"name": optimizer.name, "hyperparameters": optimizer.hyperparameters(),
                               "t": optimizer.t}
        if state.early_stopping is not None:  # a resumed run stops where this one would
            record = state.early_stopping
            config["early_stopping"] = {**{k: record[k] for k in ("monitor", "best", "best_epoch", "wait")},
                                        "weights": record["weights"] is not None}
    config_json = json.dumps(config)
    data = st_save(tensors, metadata={"format": FORMAT, "config": config_json,
                                      "sha256": checksum(config_json, tensors)})
    atomic_write(Path(path), data)


def named_tensors(net, include_optimizer: bool = True) -> dict:
    """{file name: array}: ``layers.{l}.{name}``; with the training state, ``optimizer.{l}.{name}.{slot}`` and
    early stopping's best weights ``early_stopping.{l}.{name}`` (during a fit)."""
    tensors = {f"layers.{l}.{name}": value for (l, name), value in net.params().items()}
    state = getattr(net, "training", None)
    if include_optimizer and state is not None and state.optimizer is not None:
        tensors |= {"optimizer.{}.{}.{}".format(*key): value for key, value in state.optimizer.state_arrays().items()}
        best = (state.early_stopping or {}).get("weights")
        tensors |= {f"early_stopping.{l}.{name}": value for (l, name), value in (best or {}).items()}
    return tensors


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path``, fsync it, rename it over ``path``.

    The temp file's name carries the writer's process id; a later successful write to
    the same path deletes the temp files of writers that no longer run (killed mid-save).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would make the model private: the user's umask decides
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)
    _remove_orphaned_temp_files(path)


def _umask() -> int:
    """The process's file-creation mask (reading it means setting it: it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _remove_orphaned_temp_files(path: Path) -> None:
    """Delete ``.NAME.PID.*.tmp`` beside ``path`` whose writer PID is gone (left by a killed save)."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _running(int(pid)):
            continue  # another writer may be busy with it
        try:
            tmp.unlink()
        except OSError:
            pass


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True


def _config(net, state) -> dict:
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "library_version": __version__,
              **net.config(), "epochs_trained": state.epoch if state is not None else 0}
    if net.classes is not None:
        config["classes"] = {"kind": net.classes.dtype.kind, "values": net.classes.tolist()}
    if state is not None and len(state.history):
        config["history"] = state.history.history
    if net.extra:
        config["extra"] = net.extra
    if net.pipeline:
        config["preprocessing"] = preprocessing_record.to_record(net.pipeline)
    return config


@dataclass
class Saved:
    """What a model file holds, checked: the layers with their parameters, the model's settings, and the
    training state's parts (history lists, optimizer, early stopping's record; None where absent)."""

    layers: list
    loss: str
    dtype: str
    seed: int
    classes: np.ndarray | None
    extra: dict
    epochs_trained: int
    history: dict | None
    optimizer: object
    early_stopping: dict | None
    pipeline: Pipeline


def read(path: PathLike) -> Saved:
    """Read and check a model file written by ``save``: every size before allocating, every value after."""
    path = Path(path)
    header, data_bytes = read_header(path)
    config = _parse_config(header, path)
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    layers = schema.check_model(config, path, tensors, data_bytes)
    classes = schema.classes(config.get("classes"), layers[-1].n_out, path)
    history = schema.history_lists(config.get("history"), path)
    dtype = np.dtype(config["dtype"])
    shapes = {(l, name): shape for l, layer in enumerate(layers, start=1)
              for name, shape in layer.param_shapes().items()}
    read_values: dict[str, np.ndarray] = {}

    def get(key, shape):
        read_values[key] = _tensor(f, tensors, key, shape, dtype, path)
        return read_values[key]

    optimizer = early_stopping = None
    with _open(path) as f:
        for (l, name), shape in shapes.items():
            setattr(layers[l - 1], name, get(f"layers.{l}.{name}", shape))
        if "optimizer" in config:
            optimizer = schema.build_optimizer(config["optimizer"], shapes, get, path)
        if "early_stopping" in config:
            early_stopping = schema.build_early_stopping(config["early_stopping"], config.get("epochs_trained", 0),
                                                         shapes, get, path)
    extra_names = set(tensors) - set(read_values)
    if extra_names:
        raise ModelFileError(f"{path}: unexpected tensors {sorted(extra_names)[:5]} (file tampered with?)")
    if header["__metadata__"].get("sha256") != checksum(header["__metadata__"]["config"], read_values):
        raise ModelFileError(f"{path}: checksum mismatch: the file is corrupt or was modified after saving")
    n_in, n_out = layers[0].n_in, layers[-1].n_out
    if "preprocessing" in config:
        pipeline, extra = preprocessing_record.from_record(config["preprocessing"], n_in, n_out, path), \
            config.get("extra", {})
    else:  # written before the record: the loose keys of extra
        pipeline, extra = preprocessing_record.split_legacy(config.get("extra", {}), n_in, n_out, path)
    return Saved(layers, config["loss"], config["dtype"], config["seed"], classes, extra,
                 config.get("epochs_trained", 0), history, optimizer, early_stopping, pipeline)


def checksum(config_json: str, tensors: dict) -> str:
    """SHA-256 over the config and every tensor (by name order): detects any corrupted byte."""
    digest = hashlib.sha256(config_json.encode("utf-8"))
    for name in sorted(tensors):
        digest.update(name.encode("utf-8"))
        digest.update(np.ascontiguousarray(tensors[name]).data.cast("B"))
    return digest.hexdigest()


def read_header(path: Path) -> tuple[dict, int]:
    """The safetensors JSON header, after checking its declared size against the file, and the number
    of bytes after it (where the tensors lie)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            prefix = f.read(8)
            if len(prefix) < 8:
                raise ModelFileError(f"{path}: not a deltaprop model file (too short: {size} bytes)")
            n = int.from_bytes(prefix, "little")
            if n > MAX_HEADER_BYTES or n > size - 8:
                raise ModelFileError(f"{path}: corrupt model file (header claims {n} bytes, file has {size})")
            stored = getattr(path.stat(), "st_blocks", None)
            if stored is not None and size > 2**24 and stored * 512 < size // 2:
                raise ModelFileError(f"{path}: the file claims {size} bytes but only {stored * 512} are stored on "
                                     "disk (a sparse file: its weights would be holes, not a trained model)")
            raw = f.read(n)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: is a folder, not a model file") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # ValueError: JSON errors, 5000-digit ints
        raise ModelFileError(f"{path}: corrupt model file header ({exc.__class__.__name__})") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: corrupt model file header (not a JSON object)")
    return header, size - 8 - n


def _parse_config(header: dict, path: Path) -> dict:
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not isinstance(meta.get("config"), str):
        raise ModelFileError(f"{path}: not a deltaprop model file (no deltaprop config in its header)")
    try:
        config = json.loads(meta["config"])
    except (ValueError, RecursionError):  # JSON errors, and integers of more than 4300 digits
        raise ModelFileError(f"{path}: the model config is not valid JSON (file tampered with?)") from None
    if not isinstance(config, dict):
        raise ModelFileError(f"{path}: the model config must be a JSON object")
    if config.get("format_version") not in READS_VERSIONS:
        raise ModelFileError(f"{path}: model format version {config.get('format_version')!r} is not "
                             f"supported (this deltaprop reads versions {READS_VERSIONS})")
    return config


_DTYPE_NAMES = {"float32": "F32", "float64": "F64"}


def _tensor(f, tensors: dict, key: str, shape: tuple, dtype: np.dtype, path: Path) -> np.ndarray:
    """Tensor ``key`` after checking its declared dtype and shape, then its values."""
    info = tensors.get(key)
    if not isinstance(info, dict):
        raise ModelFileError(f"{path}: tensor {key!r} is missing")
    if info.get("dtype") != _DTYPE_NAMES[dtype.name] or list(info.get("shape", [])) != list(shape):
        raise ModelFileError(f"{path}: tensor {key!r} is {info.get('dtype')} {info.get('shape')}, "
                             f"the config says {_DTYPE_NAMES[dtype.name]} {list(shape)}")
    try:
        value = f.get_tensor(key)
    except Exception as exc:  # safetensors reports corrupt offsets with its own error type
        raise ModelFileError(f"{path}: tensor {key!r} cannot be read ({exc})") from None
    if not all_finite(value):
        raise ModelFileError(f"{path}: tensor {key!r} holds NaN or inf")
    return value


class _open:
    """safetensors.safe_open with its errors turned into ModelFileError."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        from safetensors import safe_open

        try:
            self.ctx = safe_open(str(self.path), framework="numpy")
            return self.ctx.__enter__()
        except Exception as exc:
            raise ModelFileError(f"{self.path}: corrupt model file ({exc})") from None

    def __exit__(self, *exc):
        return self.ctx.__exit__(*exc)
