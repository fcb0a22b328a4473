"""deltaprop train: build a network from options, train it, report, save model and plots."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

import numpy as np

from ..callbacks import Callback, EarlyStopping, GradientFlow, ModelCheckpoint
from ..data import Stream
from ..data.cache import remove_caches
from ..distributed import clean_up_before_abort, communicator, watch_interrupts
from ..errors import ConfigError, DivergenceError
from ..plots import plot_curves
from .build import TRAINING_COPIES, build_network, make_optimizer, make_schedule, new_network, parse_layers
from .common import DATA_HELP
from .options import AUTO_PATIENCE, DEFAULTS, FEW_CLASSES, MAX_AUTO_CLASSES, resolve
from .prepare import prepare_run
from .runs import CHECKPOINT, run_folder, save_run, summarise, write_plots

__all__ = ["TRAINING_COPIES", "add_parser", "build_network", "make_optimizer", "make_schedule", "new_network",
           "parse_layers", "run", "train", "train_run"]  # (the builders live in build.py; named here as before)


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
    """Prepare the run (prepare.py: in memory or streamed), fit it with a checkpoint after every epoch, save
    the model and history from rank 0, and report: the summary and plots of the test rows, or a stream's."""
    run = prepare_run(opts, comm)
    net, out, writer, test = run.net, run.out, comm.rank == 0, 0.0
    with run_folder(out) if writer else contextlib.nullcontext():
        history, seconds, flow, stopper = train(net, opts, run.X_train, run.y_train, out, comm)
        if writer:
            save_run(net, history, out)
        if run.stream is None:
            test = summarise(net, history, run.X_test, run.y_test, seconds, stopper)
            if writer and not opts["no_plots"]:
                write_plots(net, history, run.X_test, run.y_test, out, flow)
        elif writer and not opts["no_plots"]:
            plot_curves(history, out)
    if run.stream is not None:
        files = len(getattr(run.stream.source, "files", run.stream.source.shards))
        print(f"trained on {run.stream.n_train:,} rows streamed from {files} file(s) in {seconds:.1f} s; "
              f"wrote {out / 'model.safetensors'}")
        return 0
    if not np.isfinite(test):
        raise DivergenceError(f"the test loss is {test}: the trained model's outputs overflow on the test data")
    print(f"\nwrote {out / 'model.safetensors'}" + ("" if opts["no_plots"] else f" and plots in {out}/"))
    if len(run.y_test) == 0:
        print(f"no test split (--test-size 0): the model trained on all {len(run.y_train)} rows and has no test "
              f"score; score it on other data with: deltaprop evaluate {out / 'model.safetensors'} --data OTHER.csv")
    return 0


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
