"""Training options: defaults, then a TOML file, then the command line (each overriding the last)."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError

# option values are heterogeneous (strings, numbers, lists, None) until _check_types has vetted them
DEFAULTS: dict[str, Any] = {
    "data": "digits", "data_dir": None, "target": None, "test_size": 0.25,
    "layers": "128", "activation": "relu", "output_activation": None, "loss": None,
    "optimizer": "adam", "lr": 1e-3, "momentum": 0.0, "weight_decay": 0.0, "dropout": 0.0, "schedule": None,
    "epochs": None, "batch_size": 32, "validation_split": 0.1, "patience": 0, "clip_norm": None,
    "scaling": "standard", "dtype": "float32", "seed": 0, "out": None, "overwrite": False, "plots": False,
    "no_plots": False,
    "quiet": False, "resume": None, "task": "auto", "shuffle_buffer": None, "stream_cache": None,
    "categorical": None, "numeric": None, "drop": None, "na_values": None, "delimiter": None, "decimal": None,
    "header": None, "device": None,
}
COLUMN_LISTS = ("categorical", "numeric", "drop", "na_values")  # comma-separated on the command line
TASKS = ("auto", "classification", "regression")
MAX_CONFIG_BYTES = 2**20
# --task auto: integer targets with at most FEW_CLASSES distinct values are classes, and so are those with at
# most MAX_AUTO_CLASSES that are label codes (exactly 0..k-1 or 1..k); other integers (grams, prices) are quantities
FEW_CLASSES = 20
# Without --epochs: enough epochs for AUTO_STEPS gradient steps (30 at least, 1000 at most), and with a
# validation split, early stopping after AUTO_PATIENCE epochs without a better validation loss (best weights
# kept). A small table gets as many steps as a large one instead of 30 epochs of a few batches each.
AUTO_STEPS, AUTO_PATIENCE = 4000, 20
MAX_AUTO_CLASSES = 100


def read_toml(path) -> dict:
    """The options in a TOML file; keys may use dashes or underscores."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            if not Path(path).is_file():
                raise ConfigError(f"{path}: not a regular file; --config takes a TOML file")
            data = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: a config file of more than {MAX_CONFIG_BYTES} bytes is no training config")
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML (nested too deeply)") from None
    options = {key.replace("-", "_"): value for key, value in raw.items()}
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"{path}: unknown option(s) {', '.join(unknown)}; known: {', '.join(DEFAULTS)}")
    return options


def resolve(cli: dict[str, Any]) -> dict[str, Any]:
    """Merge defaults < --config file < command-line flags, and check types."""
    opts: dict[str, Any] = dict(DEFAULTS)
    if cli.get("config"):
        recipe = read_toml(Path(cli["config"]))
        opts.update(recipe)
        if "data" not in recipe and "data" not in cli:
            print(f"note: {cli['config']} names no data (a 'data = ...' key); training on {DEFAULTS['data']}, the "
                  "default (pass --data)", file=sys.stderr)
        elif "data" in recipe and cli.get("data", recipe["data"]) != recipe["data"]:
            print(f"note: --data {cli['data']} replaces the data {recipe['data']!r} that {cli['config']} names",
                  file=sys.stderr)
    opts.update({k: v for k, v in cli.items() if k in DEFAULTS})
    if isinstance(opts["layers"], list):
        opts["layers"] = ",".join(str(w) for w in opts["layers"])
    _check_types(opts)
    if not 0 <= opts["seed"] < 2**32:
        raise ConfigError(f"seed must be in 0..{2**32 - 1}, got {opts['seed']}")
    if opts["batch_size"] < 1 or opts["patience"] < 0:
        raise ConfigError(f"batch_size must be at least 1 and patience at least 0, got {opts['batch_size']} and "
                          f"{opts['patience']}")
    if opts["clip_norm"] is not None and not (math.isfinite(opts["clip_norm"]) and opts["clip_norm"] > 0):
        raise ConfigError(f"clip_norm must be a finite number > 0, got {opts['clip_norm']}")
    if opts["epochs"] is not None and opts["epochs"] < 1:
        raise ConfigError(f"epochs must be at least 1, got {opts['epochs']} (an untrained model is not written)")
    for key in COLUMN_LISTS:
        opts[key] = _names(key, opts[key])
    for key, allowed in (("delimiter", (",", ";", "\t", "|", "tab")), ("decimal", (".", ","))):
        if opts[key] is not None and opts[key] not in allowed:
            raise ConfigError(f"{key} must be one of {', '.join(map(repr, allowed))}, got {opts[key]!r}")
    opts["header"] = header_option(opts["header"])
    if opts["delimiter"] == "tab":
        opts["delimiter"] = "\t"
    if not 0 <= opts["test_size"] < 1:
        raise ConfigError(f"test_size must be in [0, 1) (0: no test split, train on all rows), got "
                          f"{opts['test_size']}")
    if opts["task"] not in TASKS:
        raise ConfigError(f"task must be one of {', '.join(TASKS)}, got {opts['task']!r}")
    return opts


def header_option(value) -> bool | None:
    """--header yes / no / auto as ReadOptions.header: True, False, None (detected)."""
    choices = {"yes": True, "no": False, "auto": None, None: None, True: True, False: False}
    if value not in choices:
        raise ConfigError(f"header must be yes, no or auto, got {value!r}")
    return choices[value]


def _names(key: str, value) -> list[str]:
    """A list of column names (or NA markers) from "a,b" or a TOML list; [] when unset."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(f"option {key} takes comma-separated names or a list of strings, got {value!r}")


INTEGERS = ("epochs", "batch_size", "seed", "patience", "shuffle_buffer")
NUMBERS = ("lr", "momentum", "weight_decay", "dropout", "test_size", "validation_split", "clip_norm")
FLAGS = ("plots", "no_plots", "quiet", "overwrite")
TEXTS = ("data", "data_dir", "target", "layers", "activation", "output_activation", "loss", "optimizer",
         "schedule", "scaling", "dtype", "out", "resume", "task", "delimiter", "decimal", "stream_cache", "header",
         "device")
OPTIONAL = ("epochs", "clip_norm", "data_dir", "target", "output_activation", "loss", "schedule", "out", "resume",
            "delimiter", "decimal", "shuffle_buffer", "stream_cache", "header", "device")


def _check_types(opts: dict) -> None:
    """Every option of the type it must have (a TOML file can hold anything): integers, numbers, true/false
    flags (never the string "no"), texts; None where an option may be unset."""
    for key, value in opts.items():
        if value is None and key in OPTIONAL or key in COLUMN_LISTS:
            continue
        if key in INTEGERS:
            ok, kind = isinstance(value, int) and not isinstance(value, bool), "an integer"
        elif key in NUMBERS:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            kind = "a finite number"
        elif key in FLAGS:
            ok, kind = isinstance(value, bool), "true or false"
        elif key in TEXTS:
            ok, kind = isinstance(value, str) or (key == "layers" and isinstance(value, int)), "a string"
        else:
            continue
        if not ok:
            raise ConfigError(f"option {key} must be {kind}, got {value!r}")
