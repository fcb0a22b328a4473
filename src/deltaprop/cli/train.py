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
from ..training import TrainConfig
from ..training.crossfit import cross_fit, fold_seed, fresh_copy
from .build import TRAINING_COPIES, build_network, make_optimizer, make_schedule, new_network, parse_layers
from .options import add_arguments, resolve
from .prepare import prepare_run
from .runs import CHECKPOINT, run_folder, save_run, summarise, summarise_folds, write_fold_histories, write_plots

__all__ = ["TRAINING_COPIES", "add_parser", "build_network", "make_optimizer", "make_schedule", "new_network",
           "parse_layers", "run", "train", "train_run"]  # (the builders live in build.py; named here as before)


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a network (digits by default) and save it with plots",
                       description="Train a network and write model.safetensors, plots and history.csv into "
                                   "--out. With no options: a 64-128-10 relu network on scikit-learn's digits.",
                       argument_default=argparse.SUPPRESS)
    p.add_argument("--config", metavar="TOML", help="a TOML file whose keys are these options (CLI wins)")
    add_arguments(p, "train")  # every other option, from its one declaration (options.py)
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
        if run.held is not None:
            return cross_fitted_run(run, opts, comm)
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
    return written(run, opts, test)


def written(run, opts: dict, test: float) -> int:
    """The run's last lines: where the model went, and how to score it when there was no test split."""
    out = run.out
    if not np.isfinite(test):
        raise DivergenceError(f"the test loss is {test}: the trained model's outputs overflow on the test data")
    print(f"\nwrote {out / 'model.safetensors'}" + ("" if opts["no_plots"] else f" and plots in {out}/"))
    if len(run.y_test) == 0:
        print(f"no test split (--test-size 0): the model trained on all {len(run.y_train)} rows and has no test "
              f"score; score it on other data with: deltaprop evaluate {out / 'model.safetensors'} --data OTHER.csv")
    return 0


def cross_fitted_run(run, opts: dict, comm) -> int:
    """--folds K (a table's default): K networks of the run's design by cross-fitting (training/crossfit.py),
    merged into the one model saved; the folds' figures, the out-of-fold estimate and the test figures reported."""
    if opts["plots"]:
        print("note: --plots draws the gradient flow of one network's training; with cross-fitting there are "
              f"{opts['folds']}, so gradient-flow.png is not written (pass --folds 1 for it)")
    if run.net.is_classifier:
        run.net.set_classes(run.y_train)  # every fold's network knows every class, whichever its rows hold
    started = time.perf_counter()
    result = cross_fit(lambda i: fresh_copy(run.net, fold_seed(opts["seed"], i)), run.X_train, run.y_train,
                       run.held, config=fit_config(opts, opts["epochs"], False), patience=opts["patience"], comm=comm)
    seconds = time.perf_counter() - started
    result.net.pipeline = run.net.pipeline
    test, estimate = summarise_folds(result, run.X_train, run.y_train, run.X_test, run.y_test, seconds)
    result.net.pipeline.source.update(folds=len(run.held), out_of_fold=estimate)
    if comm.rank == 0:
        result.net.save(run.out / "model.safetensors")
        write_fold_histories(result.histories, run.out / "history.csv")
        if not opts["no_plots"]:
            write_plots(result.net, result.histories, run.X_test, run.y_test, run.out)
    return written(run, opts, test)


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
    started = time.perf_counter()
    try:  # (preprocessed: the run applied the model's stages)
        history = net.fit(X_train, y_train, config=fit_config(opts, remaining, isinstance(X_train, Stream)),
                          preprocessed=True, callbacks=callbacks, comm=comm)
    except KeyboardInterrupt:
        if (out / CHECKPOINT).exists():
            print(f"deltaprop train: the last checkpoint is {out / CHECKPOINT}; continue the run with the same "
                  f"options and --resume {out / CHECKPOINT}", file=sys.stderr)
        raise
    return history, time.perf_counter() - started, flow, stopper


def fit_config(opts: dict, epochs: int, streamed: bool) -> TrainConfig:
    """fit's options from the run's: ``epochs`` still to train; a stream holds its validation rows out itself."""
    keeps_optimizer = opts["resume"] and opts["optimizer"] != "lbfgs"  # L-BFGS's memory is not saved: it restarts
    return TrainConfig(epochs=epochs, batch_size=opts["batch_size"], clip_norm=opts["clip_norm"],
                       optimizer=None if keeps_optimizer else make_optimizer(opts), schedule=make_schedule(opts),
                       validation_split=0.0 if streamed else opts["validation_split"],
                       verbose=0 if opts["quiet"] else 1)
