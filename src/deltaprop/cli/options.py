"""Training options: defaults, then a TOML file, then the command line (each overriding the last)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import ConfigError

DEFAULTS = {
    "data": "digits", "data_dir": None, "target": None, "test_size": 0.25,
    "layers": "128", "activation": "relu", "output_activation": None, "loss": None,
    "optimizer": "adam", "lr": 1e-3, "momentum": 0.0, "weight_decay": 0.0, "dropout": 0.0, "schedule": None,
    "epochs": None, "batch_size": 32, "validation_split": 0.1, "patience": 0, "clip_norm": None,
    "scaling": "standard", "dtype": "float32", "seed": 0, "out": None, "plots": False, "no_plots": False,
    "quiet": False, "resume": None, "task": "auto",
    "categorical": None, "numeric": None, "drop": None, "na_values": None, "delimiter": None, "decimal": None,
}
COLUMN_LISTS = ("categorical", "numeric", "drop", "na_values")  # comma-separated on the command line
TASKS = ("auto", "classification", "regression")
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
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None
    options = {key.replace("-", "_"): value for key, value in raw.items()}
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"{path}: unknown option(s) {', '.join(unknown)}; known: {', '.join(DEFAULTS)}")
    return options


def resolve(cli: dict) -> dict:
    """Merge defaults < --config file < command-line flags, and check types."""
    opts = dict(DEFAULTS)
    if cli.get("config"):
        opts.update(read_toml(Path(cli["config"])))
    opts.update({k: v for k, v in cli.items() if k in DEFAULTS})
    if isinstance(opts["layers"], list):
        opts["layers"] = ",".join(str(w) for w in opts["layers"])
    for key in ("epochs", "batch_size", "seed", "patience"):
        if key == "epochs" and opts[key] is None:  # auto: see AUTO_STEPS
            continue
        if not isinstance(opts[key], int) or isinstance(opts[key], bool):
            raise ConfigError(f"option {key} must be an integer, got {opts[key]!r}")
    for key in ("lr", "momentum", "weight_decay", "dropout", "test_size", "validation_split"):
        if not isinstance(opts[key], (int, float)) or isinstance(opts[key], bool):
            raise ConfigError(f"option {key} must be a number, got {opts[key]!r}")
    if opts["epochs"] is not None and opts["epochs"] < 1:
        raise ConfigError(f"epochs must be at least 1, got {opts['epochs']} (an untrained model is not written)")
    for key in COLUMN_LISTS:
        opts[key] = _names(key, opts[key])
    for key, allowed in (("delimiter", (",", ";", "\t", "|", "tab")), ("decimal", (".", ","))):
        if opts[key] is not None and opts[key] not in allowed:
            raise ConfigError(f"{key} must be one of {', '.join(map(repr, allowed))}, got {opts[key]!r}")
    if opts["delimiter"] == "tab":
        opts["delimiter"] = "\t"
    if not 0 < opts["test_size"] < 1:
        raise ConfigError(f"test_size must be in (0, 1), got {opts['test_size']}")
    if opts["task"] not in TASKS:
        raise ConfigError(f"task must be one of {', '.join(TASKS)}, got {opts['task']!r}")
    return opts


def _names(key: str, value) -> list[str]:
    """A list of column names (or NA markers) from "a,b" or a TOML list; [] when unset."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(f"option {key} takes comma-separated names or a list of strings, got {value!r}")
