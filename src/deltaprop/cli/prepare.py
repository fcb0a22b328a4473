"""prepare_run: what a training run sets up before it fits, in memory or streamed, in one flow.

Both kinds of run take the same steps: read the data (a source read whole, or a stream's first pass),
build the network or resume it, fit the model's preprocessing (the pipeline it carries), choose the
epochs, and find the output folder; only how the data is read differs. train.py then fits, saves
and reports what prepare_run gives (a Run).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data import ReadOptions, RobustScaler, Scaler, Stream, TableEncoder, feature_scaler, is_sharded, stream
from ..data.columns import unseen_notes
from ..data.piecewise import AUTO_MAX_INPUTS, PiecewiseLinear, auto_bins
from ..distributed import fingerprint
from ..errors import ConfigError, DataError
from ..network import Network, load
from ..preprocessing import Pipeline
from ..training.inputs import validation_rows
from .build import backend, build_network, each_value_once, is_classification, make_optimizer
from .common import load_data, table
from .epochs import FOLDS, MIN_VALIDATION_ROWS, auto_epochs, cross_validated_epochs, too_few_to_stop_on
from .folds import CROSS_FIT_EPOCHS, fold_rows, settle_folds
from .options import AUTO_PATIENCE
from .runs import output_folder


@dataclass
class Run:
    """A prepared run: the network (its pipeline fitted or resumed), the training data (scaled arrays, or a
    prepared Stream), the test rows (none for a stream), and the output folder."""

    net: Network
    X_train: Any
    y_train: Any
    X_test: Any
    y_test: Any
    out: Path = Path()
    stream: Stream | None = None
    held: list | None = None  # cross-fitting: each fold's held-out training rows (folds.py)


def prepare_run(opts: dict, comm) -> Run:
    """The run ``opts`` describe: the data read (streamed when --data names shards), the network built or
    resumed with its pipeline, --epochs chosen when not given, and the output folder (rank 0's, in a job)."""
    run = _streamed(opts, comm) if is_sharded(opts["data"]) else _in_memory(opts, comm)
    run.out = output_folder(opts, "stream" if run.stream is not None else Path(opts["data"]).stem, comm)
    return run


def _reading(opts: dict) -> tuple[ReadOptions, TableEncoder]:
    """How a table is read (as predict will read new files) and the column encoding the options ask for."""
    return (ReadOptions(opts["delimiter"], opts["decimal"], opts["na_values"], opts["header"]),
            TableEncoder(opts["categorical"], opts["numeric"], opts["drop"]))


def _in_memory(opts: dict, comm) -> Run:
    """The data read whole and split; the pipeline fitted on the training rows; arrays scaled in place (they
    were just loaded for this run, and a scaled copy would double the memory)."""
    read, encoder = _reading(opts)
    data, feature_names, source, notes = load_data(opts["data"], opts["target"], opts["data_dir"],
                                                   test_size=opts["test_size"], seed=opts["seed"], read=read,
                                                   encoder=encoder)
    if source is not None and not opts["quiet"]:
        print(table(encoder.report(), ["column", "kind", "what was done"]) + "\n")
    if comm.size > 1:
        comm.agree(data_record(data), "data")
    for note in notes + unseen_notes(encoder.unseen, "test row(s)"):
        print(f"note: {note}")
    if opts["resume"]:
        net = load(opts["resume"], ops=backend(opts))
        if "folds" in net.pipeline.source:
            raise ConfigError(f"{opts['resume']} is {net.pipeline.source['folds']} cross-fitted networks merged into "
                              "one, not the checkpoint of a stopped run (a cross-fitted run leaves none); --resume "
                              "continues a killed run from its checkpoint.safetensors: train this model anew")
    else:
        net = _new_in_memory(opts, data, feature_names, encoder, source)
    scaler = feature_scaling(net, opts)
    X_train, X_test = scaler.transform(data.X_train, in_place=True), scaler.transform(data.X_test, in_place=True)
    X_train, X_test = (net.pipeline.after_scaling(X, net.dtype) for X in (X_train, X_test))  # (piecewise-linear)
    y_train, y_test = net.pipeline.targets(data.y_train), net.pipeline.targets(data.y_test)
    held = plan_validation(opts, source is not None, X_train, y_train, data.y_train, comm)
    return Run(net, X_train, y_train, X_test, y_test, held=held)


def plan_validation(opts: dict, table: bool, X_train, y_train, labels, comm) -> list | None:
    """How the run validates (folds.py): cross-fitting's held-out rows of each fold (each network early-stopped
    on its own), or None for one network, whose epochs choose_epochs settles; --epochs chosen when not given."""
    if settle_folds(opts, table, len(y_train)) == 1:
        if opts["epochs"] is None:
            choose_epochs(opts, X_train, y_train, labels, comm)
        return None
    if opts["epochs"] is None:  # each network early-stopped on its fold (1/folds of the rows)
        opts["epochs"], opts["patience"] = auto_epochs({**opts, "validation_split": 1 / opts["folds"]}, len(y_train),
                                                       least=CROSS_FIT_EPOCHS)
    return fold_rows(y_train, opts["folds"], opts["seed"])


def _new_in_memory(opts: dict, data, feature_names: list, encoder: TableEncoder, source: dict | None) -> Network:
    """A new network for data in memory, its pipeline fitted on the training rows and its source recorded."""
    if each_value_once(opts, data.y_train):
        opts["task"] = "regression"
    if is_classification(opts, data.y_train) and data.y_train.dtype.kind != "f":  # floats: fit names them
        check_test_labels(data.y_train, data.y_test)
    net = build_network(opts, data.X_train.shape[1], data.y_train)
    if not net.is_classifier:
        check_numeric_target(opts, data.y_train, (source or {}).get("target", opts["target"]))
    pipeline = fit_pipeline(opts, data, feature_names, encoder if source is not None else None, net.is_classifier)
    if pipeline.piecewise is not None:  # a^0 is wider than the table's inputs: layer 1 takes the encoding's
        net = build_network(opts, pipeline.piecewise.width, data.y_train)
    net.pipeline = pipeline
    spec = str(Path(opts["data"]).resolve()) if Path(opts["data"]).exists() else opts["data"]
    net.pipeline.source = {"data": spec, "test_size": opts["test_size"], "seed": opts["seed"],
                           **({"target": opts["target"]} if opts["target"] is not None else {}), **(source or {})}
    return net


def _streamed(opts: dict, comm) -> Run:
    """Shards larger than memory (dp.data.stream): the validation rows are --validation-split of every chunk, the
    encoding and scaler are fitted in the stream's first pass (every rank of a job reads its own shards)."""
    settle_folds(opts, table=False)
    if not opts["target"]:
        raise ConfigError("training from shards needs --target, the label column's name")
    if opts["scaling"] == "robust":
        raise ConfigError("--scaling robust takes medians and quartiles of all training rows, which shards streamed "
                          "in one pass do not give; use standard, minmax or none")
    if opts["bins"]:  # (0 and unset: a stream gets no encoding)
        raise ConfigError("--bins takes quantiles of all training rows, which shards streamed in one pass do not give; "
                          "leave it out")
    read, encoder = _reading(opts)
    data = stream(opts["data"], target=opts["target"], scaling=opts["scaling"], shuffle_buffer=opts["shuffle_buffer"],
                  validation_fraction=opts["validation_split"], encoder=encoder, read=read,
                  cache={None: True, "off": False}.get(opts["stream_cache"], opts["stream_cache"]))
    if comm.size > 1:
        comm.agree(shards_record(data.source), "data")
    data.prepare(comm)
    if opts["resume"]:
        net = load(opts["resume"], ops=backend(opts))
        if net.pipeline.piecewise is not None:
            raise ConfigError(f"{opts['resume']}: the model encodes its inputs piecewise-linearly, which a stream of "
                              "shards does not apply; resume it on data read whole")
        data.scaler = feature_scaling(net, opts)
        if net.pipeline.table is not None:
            data.encoder = net.pipeline.table
    else:
        net = _new_streamed(opts, data, read)
    if opts["epochs"] is None:
        opts["epochs"], opts["patience"] = auto_epochs({**opts, "validation_split": 0.0}, data.n_train)
        opts["patience"] = opts["patience"] or (AUTO_PATIENCE if data.n_val else 0)
    return Run(net, data, None, None, None, stream=data)


def _new_streamed(opts: dict, data: Stream, read: ReadOptions) -> Network:
    """A new network for a stream, with the column encoding and scaling fitted in the first pass (for evaluate
    and predict by column name)."""
    if data.labels is None and opts["task"] == "classification":
        raise DataError(f"--target {opts['target']} holds more than {data.max_classes} distinct values")
    labels = data.labels if data.labels is not None else np.zeros(1)  # (many values: a quantity)
    if data.labels is None:
        opts["task"] = "regression"
    net = build_network(opts, data.n_features, labels)
    names = data.encoder.feature_names if data.table else data.source.features or None
    net.pipeline = Pipeline(([data.encoder] if data.table else []) + [data.scaler],
                            feature_names=None if names is None else list(map(str, names)),
                            source={"data": opts["data"], "target": opts["target"], "streamed": True,
                                    **({"read": read.to_config()} if data.table else {})})
    return net


def choose_epochs(opts: dict, X_train, y_train, labels, comm) -> None:
    """--epochs and --patience when --epochs is not given: early stopping on the validation split, or, where
    that split is too small to trust, the epoch count of a cross-validation and no split (see epochs.py)."""
    if not too_few_to_stop_on(opts, len(y_train)):
        opts["epochs"], opts["patience"] = auto_epochs(opts, len(y_train))
        return

    def new_net():
        net = build_network(opts, X_train.shape[1], labels)
        if net.is_classifier:
            net.set_classes(labels)  # every fold's network knows every class, whichever its rows hold
        return net

    n_val = validation_rows(len(y_train), opts["validation_split"])
    started = time.perf_counter()
    epochs, loss = cross_validated_epochs(new_net, lambda: make_optimizer(opts), opts, X_train, y_train, comm)
    print(f"note: a validation split of {n_val} row(s) is too few to stop on (fewer than {MIN_VALIDATION_ROWS}): "
          f"the epoch count was chosen by {FOLDS}-fold cross-validation on the {len(y_train)} training rows (mean "
          f"validation loss {loss:.4f} at epoch {epochs}; {time.perf_counter() - started:.1f} s), and the model is "
          f"trained on all {len(y_train)} rows for {epochs} epochs (pass --epochs or --patience to decide yourself)")
    opts["epochs"], opts["patience"], opts["validation_split"] = epochs, 0, 0.0


def fit_pipeline(opts: dict, data, feature_names: list, encoder: TableEncoder | None, classifier: bool) -> Pipeline:
    """The model's preprocessing, fitted on the training rows: the table's encoder (already fitted, when the
    data is a table), the feature scaling of --scaling (0/1 inputs of a table left as they are), and for a
    quantity the target's scaling (an output of 1e5 would take ages to reach): standardized, or with --scaling
    robust by median and IQR without the clip, which has no inverse beyond its bound (see data/robust.py)."""
    try:
        scaler = feature_scaler(opts["scaling"]).fit(data.X_train)
    except DataError as exc:  # "input j: ..." named by its column
        raise DataError(named_input(str(exc), feature_names)) from None
    if encoder is not None:
        scaler.leave(encoder.binary_outputs)
    stages: list = ([encoder] if encoder is not None else []) + [scaler]
    names = list(map(str, feature_names))
    piecewise = piecewise_stage(opts, data.X_train, scaler, encoder, names)
    if piecewise is not None:
        stages.append(piecewise)
        names = piecewise.output_names(scaler)  # a^0's names: each bin's, its edges in the column's units
    target = None
    if not classifier:
        y = np.asarray(data.y_train, dtype=np.float64)
        target = (RobustScaler(clip=False) if opts["scaling"] == "robust" else Scaler("standard"))
        target.fit(y.reshape(len(y), -1))
    return Pipeline(stages, target, names, list(map(str, data.class_names)) or None)


def piecewise_stage(opts: dict, X_train: np.ndarray, scaler: Scaler, encoder: TableEncoder | None,
                    names: list[str]) -> PiecewiseLinear | None:
    """The piecewise-linear encoding of a table's numeric inputs (data/piecewise.py), fitted on the scaled training
    rows (0/1 inputs left as they are): --bins, or without it ``auto_bins``'s choice, off where it would make more
    than AUTO_MAX_INPUTS inputs. Never for array data (pixels of an image, where a bin per grey level is no
    feature): an explicit --bins there is refused."""
    if encoder is None:
        if opts["bins"]:
            raise ConfigError(f"--bins encodes the numeric columns of a table; {opts['data']} is array data (e.g. an "
                              "image's pixels), which the piecewise-linear encoding is not for: leave out --bins")
        return None
    bins = auto_bins(len(X_train)) if opts["bins"] is None else opts["bins"]
    if not bins:
        return None
    stage = PiecewiseLinear(bins).fit(scaler.transform(X_train), encoder.binary_outputs, names)
    if opts["bins"] is None and stage.width > AUTO_MAX_INPUTS:
        print(f"note: no piecewise-linear encoding: {bins} bins per numeric column would make the table's "
              f"{stage.n_in} inputs {stage.width}, more than {AUTO_MAX_INPUTS} (pass --bins to have it anyway)")
        return None
    if not opts["quiet"]:
        print(f"note: the numeric inputs are encoded piecewise-linearly in up to {bins} quantile bins each, clipped to "
              f"the training range ({stage.n_in} inputs -> {stage.width}; --bins 0: off)")
    return stage


def named_input(message: str, names: list) -> str:
    """A message about "input j" (1-based) with the input's name, where the run knows it."""
    head, _, rest = message.partition(": ")
    j = int(head.split()[1]) - 1 if head.startswith("input ") and head.split()[1].isdigit() else -1
    return f"{names[j]!r}: {rest}" if 0 <= j < len(names or []) else message


def feature_scaling(net: Network, opts: dict) -> Scaler:
    """The model's feature scaling stage; one resumed from a model without it (made in Python with no
    preprocessing) is refused, naming the file, rather than met by a traceback: there is no stage to scale with."""
    scaler = net.pipeline.scaler
    if scaler is None:
        raise ConfigError(f"{opts['resume']}: the model has no feature scaling stage (made in Python without "
                          "preprocessing?); deltaprop train --resume continues models that deltaprop train made")
    return scaler


def check_numeric_target(opts: dict, y: np.ndarray, name) -> None:
    """Refuse a text target for a regression (--task regression or --loss mse), naming the column and a value,
    before the target's scaling meets the text as a traceback: a quantity is a number, and the fix is the user's
    choice (drop the option to classify, or name another column)."""
    if y.dtype.kind not in "USO":
        return
    given = " / ".join(flag for flag, on in (("--task regression", opts["task"] == "regression"),
                                             ("--loss mse", opts["loss"] == "mse")) if on) or "a regression loss"
    raise DataError(f"the target column {name!r} holds text (e.g. {str(y[0])!r}), but {given} asks for a "
                    "regression, which needs numbers; leave out --task regression and --loss mse to classify "
                    "its values, or pass --target with a column of numbers")


def check_test_labels(y_train: np.ndarray, y_test: np.ndarray) -> None:
    """Refuse, before training, a test split with labels the training split lacks."""
    unseen = np.setdiff1d(np.unique(y_test), np.unique(y_train))
    if unseen.size:
        raise DataError(f"the test split holds {unseen.size} label(s) never seen in training (e.g. "
                        f"{unseen[:1].tolist()[0]!r}); if the target is a quantity rather than a class, pass "
                        "--task regression")


def data_record(data) -> dict:
    """What the ranks of a job compare of the data they loaded: the same rows, split the same way."""
    return {"training rows and features": data.X_train.shape, "test rows": len(data.y_test),
            "contents (digest)": fingerprint(data.X_train, data.y_train, data.X_test, data.y_test)}


def shards_record(source) -> dict:
    """What the ranks of a job compare of the shards they will share out: the same files, of the same sizes."""
    files = list(dict.fromkeys(source.path(s) for s in range(len(source.shards))))
    return {"files": len(files), "shards": len(source.shards),
            "names and sizes (digest)": fingerprint(np.array([f"{p.name}:{p.stat().st_size}" for p in files]))}
