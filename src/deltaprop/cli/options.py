"""deltaprop train's options, each declared once: flag, TOML key, type, default, help, rule and commands.

An option used to be written four times (its add_argument call, DEFAULTS, a tuple of its type, the
default repeated in its help), and they drifted. Here one Option per option is the whole truth: the
argparse arguments (add_arguments), DEFAULTS, the TOML type check (check_types) and the rule checks of
resolve are generated from OPTIONS, and a help text states its default through ``{default}``, so it says
the default there is. Where an option is one of fit's (a TrainConfig field: batch_size, clip_norm, ...),
its default and rule are TrainConfig's, read from it; where the command line chooses otherwise (epochs,
validation_split, optimizer) the declaration says so and why.

The values merge as defaults, then a TOML file, then the command line (each overriding the last).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..activations import ACTIVATIONS
from ..constraints import Constraint, Real, Whole, check
from ..data.piecewise import AUTO_BINS, AUTO_MIN_ROWS, MAX_BINS
from ..errors import ConfigError
from ..training import TrainConfig
from .common import DATA_HELP

FIT, FIT_RULES = TrainConfig.defaults(), TrainConfig.CONSTRAINTS  # fit's defaults and rules, for its options
HIDDEN = [name for name in ACTIVATIONS if name != "softmax"]  # the registry's, in its order: a new one is listed
TASKS = ("auto", "classification", "regression")
MAX_CONFIG_BYTES = 2**20
# --task auto: integer targets with at most FEW_CLASSES distinct values are classes, and so are those with at
# most MAX_AUTO_CLASSES that are label codes (exactly 0..k-1 or 1..k); other integers (grams, prices) are quantities
FEW_CLASSES = 20
# Without --epochs: enough epochs for AUTO_STEPS gradient steps (30 at least, 1000 at most), and with a
# validation split, early stopping after AUTO_PATIENCE epochs without a better validation loss (best weights
# kept). A small table gets as many steps as a large one instead of 30 epochs of a few batches each.
AUTO_STEPS, AUTO_PATIENCE = 4000, 20
# Without --folds: cross-fitting of AUTO_FOLDS networks for a table (cli/folds.py), one network otherwise, which
# holds ONE_NETWORK_VALIDATION of its training rows out for early stopping; at most MAX_FOLDS folds
AUTO_FOLDS, MAX_FOLDS, ONE_NETWORK_VALIDATION = 5, 20, 0.1
MAX_AUTO_CLASSES = 100

# what each kind of option is on the command line (argparse's type) and in a TOML file (the check, its words)
KINDS: dict[str, tuple[Any, Any, str]] = {
    "int": (int, lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "number": (float, lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
               "a finite number"),
    "flag": (None, lambda v: isinstance(v, bool), "true or false"),
    "text": (None, lambda v: isinstance(v, str), "a string"),
    "widths": (None, lambda v: isinstance(v, (str, int)) and not isinstance(v, bool), "a string"),  # --layers
    "names": (None, None, "comma-separated names or a list of strings"),  # checked by _names
}


@dataclass(frozen=True)
class Option:
    """One option. ``name`` is its TOML key and, with dashes, its flag; ``kind`` a key of KINDS; a default of
    None means the option may be unset. ``help`` may say ``{default}``. ``rule``: a Constraint (or a tuple of
    them, None among them for unset) its value must meet once its type is right, ``why`` what a refusal
    adds. ``choices``: the values it takes. ``commands``: the subcommands that have it."""

    name: str
    kind: str
    default: Any
    help: str
    rule: Constraint | tuple | None = None
    why: str = ""
    choices: tuple = ()
    metavar: str | None = None
    commands: tuple = ("train",)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def argument(self) -> dict:
        """The keyword arguments of argparse's add_argument (no default: the parser's SUPPRESS keeps an
        option not given out of the namespace, so that a TOML file's value is not overridden by it)."""
        shown = f"{self.default:g}" if isinstance(self.default, float) else self.default  # 0.001, not 1e-03
        kwargs: dict[str, Any] = {"help": self.help.format(default=shown)}
        if self.kind == "flag":
            kwargs["action"] = "store_true"
        elif KINDS[self.kind][0] is not None:
            kwargs["type"] = KINDS[self.kind][0]
        if self.metavar:
            kwargs["metavar"] = self.metavar
        return kwargs

    def check(self, value) -> None:
        """The option's type (the TOML file can hold anything), then its rule and choices."""
        if value is None and (self.default is None or self.kind == "names"):
            return
        ok = KINDS[self.kind][1]
        if ok is not None and not ok(value):
            raise ConfigError(f"option {self.name} must be {KINDS[self.kind][2]}, got {value!r}")
        if self.choices and value not in self.choices:
            raise ConfigError(f"{self.name} must be one of {', '.join(map(repr, self.choices))}, got {value!r}")
        if self.rule is not None:
            check(self.name, value, self.rule if isinstance(self.rule, tuple) else (self.rule,), typed=True,
                  why=self.why)


OPTIONS: tuple[Option, ...] = (
    Option("data", "text", "digits", DATA_HELP + " (default: {default})"),
    Option("data_dir", "text", None, "folder of the IDX files of fashion-mnist / mnist (default "
           "/usr/share/datasets/NAME)", commands=("train", "evaluate")),
    Option("target", "text", None, "CSV target column, by name or 0-based index (default: the last column)"),
    Option("test_size", "number", 0.25, "fraction held out for testing (default {default}; 0: train on all rows "
           "and score other data with evaluate --data)", Real(minimum=0, below=1),
           " (0: no test split, train on all rows)"),
    Option("categorical", "names", None, "table columns to one-hot encode, comma-separated (default: text "
           "columns)"),
    Option("numeric", "names", None, "table columns to read as numbers, comma-separated (default: number columns)"),
    Option("drop", "names", None, "table columns to leave out, comma-separated"),
    Option("na_values", "names", None, "cell values that mean missing, besides empty, NA, NaN, ?, null, None"),
    Option("delimiter", "text", None, "CSV delimiter: , ; tab or | (default: detected)",
           choices=(",", ";", "\t", "|", "tab")),
    Option("decimal", "text", None, "decimal mark of CSV numbers: . or , (default: detected)", choices=(".", ",")),
    Option("header", "text", None, "whether a CSV file's first row names the columns: yes, no or auto (default "
           "auto: detected, saying so where it could be either)"),
    Option("layers", "widths", "128", "hidden layer widths, comma-separated, e.g. 256,128 (default {default})"),
    Option("activation", "text", "relu", f"hidden activation: {', '.join(HIDDEN)} (default {{default}})"),
    Option("output_activation", "text", None, "output activation (default: softmax for cross_entropy, sigmoid "
           "for binary_cross_entropy, identity for regression)"),
    Option("task", "text", "auto", "classification, regression or auto (default): text, boolean and integer "
           f"targets with at most {FEW_CLASSES} distinct values (or label codes 0..k-1 up to {MAX_AUTO_CLASSES}) "
           "are classes, other numbers are quantities", choices=TASKS),
    Option("loss", "text", None, "cross_entropy, binary_cross_entropy or mse (default: cross_entropy for labels, "
           "mse for real-valued targets)"),
    # fit's None keeps a model's optimizer; a run names one, its --lr, --momentum and --weight-decay applied
    Option("optimizer", "text", "adam", "sgd, adam, adamw, rmsprop, or lbfgs: full-batch L-BFGS-B for small "
           "tables (--epochs counts its iterations; no learning rate, batch size or dropout) (default {default})"),
    Option("lr", "number", 1e-3, "learning rate (default {default})"),
    Option("momentum", "number", 0.0, "momentum for sgd and rmsprop (default {default})"),
    Option("weight_decay", "number", 0.0, "L2 weight decay, decoupled for adamw (default {default})"),
    Option("dropout", "number", 0.0, "dropout probability of every hidden layer (default {default})"),
    Option("schedule", "text", FIT["schedule"], "learning-rate schedule: constant, step, exponential, cosine "
           "(default: none: a constant learning rate)"),
    # not fit's 10: without --epochs a run chooses its own (epochs.py); 0 would write an untrained model
    Option("epochs", "int", None, "passes over the training data (default: enough for 4000 steps, at least 30, "
           "with early stopping on the validation loss)", Whole(1), " (an untrained model is not written)"),
    Option("batch_size", "int", FIT["batch_size"], "samples per gradient step (default {default})",
           FIT_RULES["batch_size"]),
    # not fit's 0: a run holds rows out for early stopping and the validation curves of its plots
    # not fit's 0: a run of one network holds rows out for early stopping and the validation curves of its plots
    Option("validation_split", "number", None, "fraction of training data for validation of one network (--folds "
           f"1) (default {ONE_NETWORK_VALIDATION}; 0 for none)", FIT_RULES["validation_split"]),
    Option("folds", "int", None, "cross-fitting: this many networks, each trained on all training rows but one fold "
           "and early-stopped on that fold, averaged into one network; 1: one network early-stopped on "
           f"--validation-split (default {AUTO_FOLDS} for a table, 1 for images and shards)", Whole(1, MAX_FOLDS)),
    Option("patience", "int", 0, "stop after this many epochs without improvement of the validation loss, "
           f"keeping the best weights (default: {AUTO_PATIENCE} when --epochs is not given and the validation "
           "split has enough rows, else 0: off)", Whole(0)),
    Option("clip_norm", "number", FIT["clip_norm"], "clip the global gradient norm to this value (default: "
           "none: no clipping)",
           FIT_RULES["clip_norm"]),
    Option("scaling", "text", "standard", "feature scaling fitted on training data: standard, minmax, none, or "
           "robust (median and IQR, then a smooth clip to +-3: outliers cannot drive the output; a quantity's "
           "target by median and IQR) (default {default})"),
    Option("bins", "int", None, "piecewise-linear encoding of a table's numeric inputs, after the scaling (Gorishniy "
           "et al. 2022): each becomes N ramps between quantiles of its training values, clipped to their range; 0: "
           f"off (default: {AUTO_BINS} bins on a table of at least {AUTO_MIN_ROWS} training rows, else off; never "
           "for images or arrays)",
           (None, Whole(0, 0), Whole(2, MAX_BINS)), " (0: off; one bin would only rescale the input)"),
    Option("shuffle_buffer", "int", None, "rows of the shuffle buffer when --data names shards (a glob or folder "
           "of Parquet/CSV files; default: 256 MB of rows)"),
    Option("stream_cache", "text", None, "where shards of Parquet/CSV keep their decoded copy, read by every "
           "epoch after the first (a folder; default the system's temporary folder; off: decode every epoch)"),
    Option("dtype", "text", "float32", "float32 or float64 (default {default})"),
    Option("device", "text", None, "where to train, in PyTorch's names: cpu (NumPy, numba's loops) or cuda / "
                                   "cuda:N (PyTorch tensors on that GPU, else CuPy; pip install "
                                   '"deltaprop[torch]" or "deltaprop[gpu]") (default cpu)'),
    Option("seed", "int", 0, "seed of initialisation, shuffling and dropout (default {default})",
           Whole(0, 2**32 - 1)),
    Option("out", "text", None, "output folder (default runs/DATA)"),
    Option("overwrite", "flag", False, "replace the model in --out (default: refuse; without --out a new "
           "runs/NAME-k folder is used)"),
    Option("plots", "flag", False, "write every plot, including gradient-flow.png: the mean norms of delta^l "
           "and dW^l per layer per epoch"),
    Option("no_plots", "flag", False, "write no PNG plots"),
    Option("quiet", "flag", False, "no per-epoch output"),
    Option("resume", "text", None, "continue a killed run from its checkpoint.safetensors (same options; trains "
           "until --epochs in all)", metavar="CHECKPOINT"),
)


def options_of(command: str) -> Iterable[Option]:
    """The declared options ``command`` has."""
    return (option for option in OPTIONS if command in option.commands)


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """The flags of ``command``'s options, generated from their declarations."""
    for option in options_of(command):
        parser.add_argument(option.flag, **option.argument())


# train's options by name with their defaults: the keys a TOML file may hold (values heterogeneous until checked)
DEFAULTS: dict[str, Any] = {option.name: option.default for option in options_of("train")}


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
    """Merge defaults < --config file < command-line flags, and check each option by its declaration."""
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
    for option in options_of("train"):
        option.check(opts[option.name])
        if option.kind == "names":
            opts[option.name] = _names(option.name, opts[option.name])
    opts["header"] = header_option(opts["header"])
    if opts["delimiter"] == "tab":
        opts["delimiter"] = "\t"
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
