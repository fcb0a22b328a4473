"""deltaprop train: build a network from options, train it, report, save model and plots."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

import numpy as np

from .. import optimizers
from ..callbacks import Callback, EarlyStopping, GradientFlow, ModelCheckpoint
from ..data import ReadOptions, RobustScaler, Scaler, Stream, TableEncoder, feature_scaler, stream
from ..data.cache import remove_caches
from ..data.columns import unseen_notes
from ..distributed import clean_up_before_abort, communicator, fingerprint, watch_interrupts
from ..errors import ConfigError, DataError, DivergenceError
from ..layers import Dense
from ..network import Network, check_memory, load
from ..ops import for_device
from ..plots import plot_curves
from ..preprocessing import Pipeline
from ..schedules import get_schedule
from ..training.inputs import validation_rows
from .common import DATA_HELP, load_data, table
from .epochs import FOLDS, MIN_VALIDATION_ROWS, auto_epochs, cross_validated_epochs, too_few_to_stop_on
from .options import AUTO_PATIENCE, DEFAULTS, FEW_CLASSES, MAX_AUTO_CLASSES, resolve
from .runs import CHECKPOINT, output_folder, run_folder, save_run, summarise, write_plots

# copies of the parameters training holds: weights, gradients, the epoch's snapshot, two optimizer slots, and
# the optimizer's scratch
TRAINING_COPIES = 6


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a network (digits by default) and save it with plots",
                       description="Train a network and write model.safetensors, plots and history.csv into "
                                   "--out. With no options: a 64-128-10 relu network on scikit-learn's digits.",
                       argument_default=argparse.SUPPRESS)
    p.add_argument("--config", metavar="TOML", help="a TOML file whose keys are these options (CLI wins)")
    p.add_argument("--data", help=f"{DATA_HELP} (default: {DEFAULTS['data']})")
    p.add_argument("--data-dir", help="folder of the IDX files of fashion-mnist / mnist "
                                      "(default /usr/share/datasets/NAME)")
    p.add_argument("--target", help="CSV target column, by name or 0-based index (default: the last column)")
    p.add_argument("--test-size", type=float, help="fraction held out for testing (default 0.25; 0: train on all "
                                                   "rows and score other data with evaluate --data)")
    p.add_argument("--categorical", help="table columns to one-hot encode, comma-separated (default: text columns)")
    p.add_argument("--numeric", help="table columns to read as numbers, comma-separated (default: number columns)")
    p.add_argument("--drop", help="table columns to leave out, comma-separated")
    p.add_argument("--na-values", help="cell values that mean missing, besides empty, NA, NaN, ?, null, None")
    p.add_argument("--delimiter", help="CSV delimiter: , ; tab or | (default: detected)")
    p.add_argument("--decimal", help="decimal mark of CSV numbers: . or , (default: detected)")
    p.add_argument("--header", help="whether a CSV file's first row names the columns: yes, no or auto (default "
                                    "auto: detected, saying so where it could be either)")
    p.add_argument("--layers", help="hidden layer widths, comma-separated, e.g. 256,128 (default 128)")
    p.add_argument("--activation", help="hidden activation: sigmoid, tanh, relu, leaky_relu, elu, softplus, "
                                        "identity (default relu)")
    p.add_argument("--output-activation", help="output activation (default: softmax for cross_entropy, "
                                               "sigmoid for binary_cross_entropy, identity for regression)")
    p.add_argument("--task", help="classification, regression or auto (default): text, boolean and integer "
                                  f"targets with at most {FEW_CLASSES} distinct values (or label codes 0..k-1 up "
                                  f"to {MAX_AUTO_CLASSES}) are classes, other numbers are quantities")
    p.add_argument("--loss", help="cross_entropy, binary_cross_entropy or mse (default: cross_entropy for "
                                  "labels, mse for real-valued targets)")
    p.add_argument("--optimizer", help="sgd, adam, adamw, rmsprop, or lbfgs: full-batch L-BFGS-B for small tables "
                                       "(--epochs counts its iterations; no learning rate, batch size or dropout) "
                                       "(default adam)")
    p.add_argument("--lr", type=float, help="learning rate (default 1e-3)")
    p.add_argument("--momentum", type=float, help="momentum for sgd and rmsprop (default 0)")
    p.add_argument("--weight-decay", type=float, help="L2 weight decay (decoupled for adamw; default 0)")
    p.add_argument("--dropout", type=float, help="dropout probability of every hidden layer (default 0)")
    p.add_argument("--schedule", help="learning-rate schedule: constant, step, exponential, cosine")
    p.add_argument("--epochs", type=int, help="passes over the training data (default: enough for 4000 steps, "
                                              "at least 30, with early stopping on the validation loss)")
    p.add_argument("--batch-size", type=int, help="samples per gradient step (default 32)")
    p.add_argument("--validation-split", type=float, help="fraction of training data for validation "
                                                          "(default 0.1; 0 for none)")
    p.add_argument("--patience", type=int, help="stop after this many epochs without improvement of the "
                                                "validation loss, keeping the best weights (default: "
                                                f"{AUTO_PATIENCE} when --epochs is not given and the validation "
                                                "split has enough rows, else 0: off)")
    p.add_argument("--clip-norm", type=float, help="clip the global gradient norm to this value")
    p.add_argument("--scaling", help="feature scaling fitted on training data: standard, minmax, none, or robust "
                                     "(median and IQR, then a smooth clip to +-3: outliers cannot drive the output; "
                                     "a quantity's target by median and IQR) (default standard)")
    p.add_argument("--shuffle-buffer", type=int, help="rows of the shuffle buffer when --data names shards (a "
                                                      "glob or folder of Parquet/CSV files; default: 256 MB of rows)")
    p.add_argument("--stream-cache", help="where shards of Parquet/CSV keep their decoded copy, read by every epoch "
                                          "after the first (a folder; default the system's temporary folder; off: "
                                          "decode every epoch)")
    p.add_argument("--dtype", help="float32 or float64 (default float32)")
    p.add_argument("--device", help="where to train, in PyTorch's names: cpu (NumPy, numba's loops) or cuda / "
                                    "cuda:N (PyTorch tensors on that GPU, else CuPy; pip install "
                                    '"deltaprop[torch]" or "deltaprop[gpu]") (default cpu)')
    p.add_argument("--seed", type=int, help="seed of initialisation, shuffling and dropout (default 0)")
    p.add_argument("--out", help="output folder (default runs/DATA)")
    p.add_argument("--overwrite", action="store_true", help="replace the model in --out (default: refuse; without "
                                                           "--out a new runs/NAME-k folder is used)")
    p.add_argument("--plots", action="store_true", help="write every plot, including gradient-flow.png: the mean "
                                                        "norms of delta^l and dW^l per layer per epoch")
    p.add_argument("--no-plots", action="store_true", help="write no PNG plots")
    p.add_argument("--quiet", action="store_true", help="no per-epoch output")
    p.add_argument("--resume", metavar="CHECKPOINT", help="continue a killed run from its checkpoint.safetensors "
                                                         "(same options; trains until --epochs in all)")
    p.set_defaults(run=run)


def run(args) -> int:
    """Under ``mpiexec -n N``, every rank runs this; rank 0 alone prints and writes (the others' output is
    dropped, their errors still reach stderr)."""
    comm = communicator()
    if comm.size == 1:
        return train_run(resolve(vars(args)), comm)
    watch_interrupts()  # Ctrl-C: every rank's decoded-shard cache removed, even a rank waiting in MPI
    clean_up_before_abort(remove_caches)
    try:  # an error met by this rank alone ends the job: the other ranks would wait for this one for ever
        with contextlib.ExitStack() as stack:
            if comm.rank:
                stack.enter_context(contextlib.redirect_stdout(stack.enter_context(open(os.devnull, "w"))))
            opts = resolve(vars(args))
            comm.agree(opts, "options")  # e.g. another --seed would split the rows differently
            return train_run(opts, comm)
    except BaseException as exc:
        comm.end_job(exc)
        raise


def train_run(opts: dict, comm) -> int:
    if is_shards(opts["data"]):
        return train_streamed(opts, comm)
    read = ReadOptions(opts["delimiter"], opts["decimal"], opts["na_values"], opts["header"])
    encoder = TableEncoder(opts["categorical"], opts["numeric"], opts["drop"])
    data, feature_names, source, notes = load_data(opts["data"], opts["target"], opts["data_dir"],
                                                   opts["test_size"], opts["seed"], read, encoder)
    if source is not None and not opts["quiet"]:
        print(table(encoder.report(), ["column", "kind", "what was done"]) + "\n")
    if comm.size > 1:
        comm.agree(data_record(data), "data")
    for note in notes + unseen_notes(encoder.unseen, "test row(s)"):
        print(f"note: {note}")
    if opts["resume"]:
        net = load(opts["resume"], ops=for_device(opts["device"]))
    else:
        if is_classification(opts, data.y_train) and data.y_train.dtype.kind != "f":  # floats: fit names them
            check_test_labels(data.y_train, data.y_test)
        net = build_network(opts, data.X_train.shape[1], data.y_train)
        net.pipeline = fit_pipeline(opts, data, feature_names, encoder if source is not None else None,
                                    net.is_classifier)
        spec = str(Path(opts["data"]).resolve()) if Path(opts["data"]).exists() else opts["data"]
        net.pipeline.source = {"data": spec, "test_size": opts["test_size"], "seed": opts["seed"],
                               **({"target": opts["target"]} if opts["target"] is not None else {}), **(source or {})}
    # in place: the arrays were just loaded (and encoded) for this run, and a scaled copy would double the memory
    scaler = feature_scaling(net, opts)
    X_train, X_test = scaler.transform(data.X_train, in_place=True), scaler.transform(data.X_test, in_place=True)
    y_train, y_test = net.pipeline.targets(data.y_train), net.pipeline.targets(data.y_test)
    if opts["epochs"] is None:
        choose_epochs(opts, X_train, y_train, data.y_train, comm)
    out = output_folder(opts, Path(opts["data"]).stem, comm)
    writer = comm.rank == 0
    with run_folder(out) if writer else contextlib.nullcontext():
        history, seconds, flow, stopper = train(net, opts, X_train, y_train, out, comm)
        if writer:
            save_run(net, history, out)
        test = summarise(net, history, X_test, y_test, seconds, stopper)
        if writer and not opts["no_plots"]:
            write_plots(net, history, X_test, y_test, out, flow)
    if not np.isfinite(test):
        raise DivergenceError(f"the test loss is {test}: the trained model's outputs overflow on the test data")
    print(f"\nwrote {out / 'model.safetensors'}" + ("" if opts["no_plots"] else f" and plots in {out}/"))
    if len(y_test) == 0:
        print(f"no test split (--test-size 0): the model trained on all {len(y_train)} rows and has no test score; "
              f"score it on other data with: deltaprop evaluate {out / 'model.safetensors'} --data OTHER.csv")
    return 0


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
    epochs, loss = cross_validated_epochs(new_net, lambda: make_optimizer(opts), opts, X_train, y_train, comm)
    print(f"note: a validation split of {n_val} row(s) is too few to stop on (fewer than {MIN_VALIDATION_ROWS}): "
          f"the epoch count was chosen by {FOLDS}-fold cross-validation on the {len(y_train)} training rows (mean "
          f"validation loss {loss:.4f} at epoch {epochs}), and the model is trained on all {len(y_train)} rows "
          f"for {epochs} epochs (pass --epochs or --patience to decide yourself)")
    opts["epochs"], opts["patience"], opts["validation_split"] = epochs, 0, 0.0


def fit_pipeline(opts: dict, data, feature_names: list, encoder: TableEncoder | None, classifier: bool) -> Pipeline:
    """The model's preprocessing, fitted on the training rows: the table's encoder (already fitted, when the
    data is a table), the feature scaling of --scaling (0/1 inputs of a table left as they are), and for a
    quantity the target's scaling (an output of 1e5 would take ages to reach): standardized, or with --scaling
    robust by median and IQR without the clip, which has no inverse beyond its bound (see data/robust.py)."""
    scaler = feature_scaler(opts["scaling"]).fit(data.X_train)
    if encoder is not None:
        scaler.leave(encoder.binary_outputs)
    target = None
    if not classifier:
        y = np.asarray(data.y_train, dtype=np.float64)
        target = (RobustScaler(clip=False) if opts["scaling"] == "robust" else Scaler("standard"))
        target.fit(y.reshape(len(y), -1))
    return Pipeline(([encoder] if encoder is not None else []) + [scaler], target,
                    list(map(str, feature_names)), list(map(str, data.class_names)) or None)


def feature_scaling(net: Network, opts: dict) -> Scaler:
    """The model's feature scaling stage; one resumed from a model without it (made in Python with no
    preprocessing) is refused, naming the file, rather than met by a traceback: there is no stage to scale with."""
    scaler = net.pipeline.scaler
    if scaler is None:
        raise ConfigError(f"{opts['resume']}: the model has no feature scaling stage (made in Python without "
                          "preprocessing?); deltaprop train --resume continues models that deltaprop train made")
    return scaler


def is_shards(spec) -> bool:
    """--data names shards to stream: a glob, or a folder of Parquet or CSV files."""
    spec = str(spec)
    folder = Path(spec)
    return any(c in spec for c in "*?[") or (folder.is_dir() and any(folder.glob("*.parquet")) or
                                            folder.is_dir() and any(folder.glob("*.csv")))


def train_streamed(opts: dict, comm) -> int:
    """Train from shards larger than memory (dp.data.stream): the validation rows are --validation-split of
    every chunk, the scaler is fitted in the stream's first pass, the model and history go to --out (from
    rank 0 of a job; every rank reads its own shards)."""
    if not opts["target"]:
        raise ConfigError("training from shards needs --target, the label column's name")
    if opts["scaling"] == "robust":
        raise ConfigError("--scaling robust takes medians and quartiles of all training rows, which shards streamed "
                          "in one pass do not give; use standard, minmax or none")
    encoder = TableEncoder(opts["categorical"], opts["numeric"], opts["drop"])
    read = ReadOptions(opts["delimiter"], opts["decimal"], opts["na_values"], opts["header"])  # as predict will
    data = stream(opts["data"], target=opts["target"], scaling=opts["scaling"], shuffle_buffer=opts["shuffle_buffer"],
                  validation_fraction=opts["validation_split"], encoder=encoder, read=read,
                  cache={None: True, "off": False}.get(opts["stream_cache"], opts["stream_cache"]))
    if comm.size > 1:
        comm.agree(shards_record(data.source), "data")
    data.prepare(comm)
    if opts["resume"]:
        net = load(opts["resume"], ops=for_device(opts["device"]))
        data.scaler = feature_scaling(net, opts)
        if net.pipeline.table is not None:
            data.encoder = net.pipeline.table
    else:
        if data.labels is None and opts["task"] == "classification":
            raise DataError(f"--target {opts['target']} holds more than {data.max_classes} distinct values")
        labels = data.labels if data.labels is not None else np.zeros(1)  # (many values: a quantity)
        if data.labels is None:
            opts["task"] = "regression"
        net = build_network(opts, data.n_features, labels)
        names = data.encoder.feature_names if data.table else data.source.features or None
        # the column encoding and scaling fitted in the first pass, for evaluate and predict by column name
        net.pipeline = Pipeline(([data.encoder] if data.table else []) + [data.scaler],
                                feature_names=None if names is None else list(map(str, names)),
                                source={"data": opts["data"], "target": opts["target"], "streamed": True,
                                        **({"read": read.to_config()} if data.table else {})})
    if opts["epochs"] is None:
        opts["epochs"], opts["patience"] = auto_epochs({**opts, "validation_split": 0.0}, data.n_train)
        opts["patience"] = opts["patience"] or (AUTO_PATIENCE if data.n_val else 0)
    out = output_folder(opts, "stream", comm)
    writer = comm.rank == 0
    with run_folder(out) if writer else contextlib.nullcontext():
        history, seconds, _, _ = train(net, opts, data, None, out, comm)
        if writer:
            save_run(net, history, out)
            if not opts["no_plots"]:
                plot_curves(history, out)
    files = len(getattr(data.source, "files", data.source.shards))
    print(f"trained on {data.n_train:,} rows streamed from {files} file(s) in {seconds:.1f} s; "
          f"wrote {out / 'model.safetensors'}")
    return 0


def data_record(data) -> dict:
    """What the ranks of a job compare of the data they loaded: the same rows, split the same way."""
    return {"training rows and features": data.X_train.shape, "test rows": len(data.y_test),
            "contents (digest)": fingerprint(data.X_train, data.y_train, data.X_test, data.y_test)}


def shards_record(source) -> dict:
    """What the ranks of a job compare of the shards they will share out: the same files, of the same sizes."""
    files = list(dict.fromkeys(source.path(s) for s in range(len(source.shards))))
    return {"files": len(files), "shards": len(source.shards),
            "names and sizes (digest)": fingerprint(np.array([f"{p.name}:{p.stat().st_size}" for p in files]))}


def train(net, opts: dict, X_train, y_train, out: Path, comm=None):
    """fit() with the options, a checkpoint after every epoch; returns (history, seconds, gradient flow, the
    early stopping callback or None)."""
    done = net.training.epoch if net.training is not None else 0
    remaining = opts["epochs"] - done
    if remaining < 0:
        raise ConfigError(f"the checkpoint has trained {done} epochs, more than --epochs "
                          f"{opts['epochs']}")
    flow = GradientFlow() if opts["plots"] else None
    callbacks: list[Callback] = [ModelCheckpoint(out / CHECKPOINT)] + ([flow] if flow else [])
    stopper = EarlyStopping(patience=opts["patience"]) if opts["patience"] else None
    callbacks += [stopper] if stopper else []
    keeps_optimizer = opts["resume"] and opts["optimizer"] != "lbfgs"  # L-BFGS's memory is not saved: it restarts
    started = time.perf_counter()
    try:
        history = net.fit(X_train, y_train, epochs=remaining, batch_size=opts["batch_size"],
                          optimizer=None if keeps_optimizer else make_optimizer(opts), schedule=make_schedule(opts),
                          validation_split=0.0 if isinstance(X_train, Stream) else opts["validation_split"],
                          clip_norm=opts["clip_norm"], preprocessed=True,  # (the run applied the model's stages)
                          callbacks=callbacks, verbose=0 if opts["quiet"] else 1, comm=comm)
    except KeyboardInterrupt:
        if (out / CHECKPOINT).exists():
            print(f"deltaprop train: the last checkpoint is {out / CHECKPOINT}; continue the run with the same "
                  f"options and --resume {out / CHECKPOINT}", file=sys.stderr)
        raise
    return history, time.perf_counter() - started, flow, stopper


def is_classification(opts: dict, y: np.ndarray) -> bool:
    """--task, else: a classification loss, text or booleans, or integers with few distinct values."""
    if opts["task"] != "auto":
        return opts["task"] == "classification"
    if opts["loss"] in ("cross_entropy", "binary_cross_entropy") or y.dtype.kind in "USOb":
        return True
    if y.dtype.kind not in "iu":
        return False
    values = np.unique(y)
    codes = values[0] in (0, 1) and values[-1] - values[0] == len(values) - 1  # 0..k-1 or 1..k, none missing
    return len(values) <= FEW_CLASSES or (codes and len(values) <= MAX_AUTO_CLASSES)


def check_test_labels(y_train: np.ndarray, y_test: np.ndarray) -> None:
    """Refuse, before training, a test split with labels the training split lacks."""
    unseen = np.setdiff1d(np.unique(y_test), np.unique(y_train))
    if unseen.size:
        raise DataError(f"the test split holds {unseen.size} label(s) never seen in training (e.g. "
                        f"{unseen[:1].tolist()[0]!r}); if the target is a quantity rather than a class, pass "
                        "--task regression")


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
    return Network(layers, loss=loss, dtype=opts["dtype"], seed=opts["seed"], ops=for_device(opts["device"]))


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
