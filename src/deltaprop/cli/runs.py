"""What a training run leaves behind, and where: its folder (never another run's), the lock that keeps two
runs out of one folder, the model and history.csv, the summary printed at the end and the plots."""

from __future__ import annotations

import contextlib
import fcntl
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..plots import plot_confusion, plot_curves, plot_gradient_flow, plot_predicted
from ..training import evaluate
from .common import confusion_matrix, r_squared, table

CHECKPOINT = "checkpoint.safetensors"
LOCK = ".deltaprop.lock"


def output_folder(opts: dict, name: str, comm) -> Path:
    """Where the run writes. Runs never overwrite each other: without --out, the first of runs/NAME,
    runs/NAME-2, runs/NAME-3, ... that holds no earlier run (as experiment trackers number runs); an --out
    that holds a model is refused unless --overwrite; --resume without --out continues in its checkpoint's
    folder."""
    if opts["out"]:
        out = Path(opts["out"])
        if (out / "model.safetensors").exists() and not opts["overwrite"]:
            raise ConfigError(f"{out} already holds a trained model (model.safetensors); pass --overwrite to "
                              "replace it, or choose another --out")
        return out
    if opts["resume"]:
        return Path(opts["resume"]).parent
    out, k = Path("runs") / name, 1
    while _holds_a_run(out):
        k += 1
        out = Path("runs") / f"{name}-{k}"
    if comm is not None and comm.size > 1:  # rank 0's choice everywhere (the others may look after it made it)
        out = Path(comm.broadcast_value(str(out)))
    if k > 1:
        print(f"note: runs/{name} holds an earlier run; this one writes to {out} (pass --out to choose)")
    return out


def _holds_a_run(folder: Path) -> bool:
    return folder.exists() and any(p.name != LOCK for p in folder.iterdir()) if folder.is_dir() else folder.exists()


@contextlib.contextmanager
def run_folder(out: Path):
    """The run's output folder, made if needed and locked for this process while it writes there: a second
    `deltaprop train` on the same folder is refused (it would delete this run's checkpoint). A folder this
    run made and left empty (interrupted before its first checkpoint) is removed again; otherwise the empty
    lock file .deltaprop.lock stays in it."""
    made = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        with open(out / LOCK, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ConfigError(f"another deltaprop train is writing to {out}; wait for it to finish or "
                                  "choose another --out") from None
            yield out
    finally:  # the lock file stays (removing it would let a waiting run and a new one both lock)
        if made and out.is_dir() and all(p.name == LOCK for p in out.iterdir()):
            (out / LOCK).unlink(missing_ok=True)
            out.rmdir()


def save_run(net, history, out: Path) -> None:
    """The trained model and its history into the run folder; the checkpoint, now superseded, removed."""
    net.save(out / "model.safetensors")
    (out / CHECKPOINT).unlink(missing_ok=True)
    write_history(history, out / "history.csv")


def write_history(history, path: Path) -> None:
    path.write_text("\n".join([",".join(["epoch"] + list(history.history))] + _history_rows(history)) + "\n")


def write_fold_histories(histories: list, path: Path) -> None:
    """history.csv of a cross-fitted run: a fold column, then each fold's epochs as write_history writes them."""
    lines = [",".join(["fold", "epoch"] + list(histories[0].history))]
    for fold, history in enumerate(histories, start=1):
        lines += [f"{fold},{row}" for row in _history_rows(history)]
    path.write_text("\n".join(lines) + "\n")


def _history_rows(history) -> list[str]:
    """One CSV row per epoch: its number (from 1), then every figure of the history in its key order."""
    keys = list(history.history)
    return [",".join([str(epoch + 1)] + [repr(float(history[k][i])) for k in keys])
            for i, epoch in enumerate(history.epoch)]


def summarise_folds(result, X_train, y_train, X_test, y_test, seconds: float) -> tuple[float, float]:
    """A cross-fitted run's report: each fold's kept epoch and losses, then the out-of-fold estimate (every
    training row predicted by the network that held it out) beside the merged model's test figures. Returns
    (the test loss, or the folds' mean validation loss without a test split; the out-of-fold figure)."""
    net, rows = result.net, []
    for fold, (history, kept, held) in enumerate(zip(result.histories, result.kept, result.held, strict=True), 1):
        val = f"{history['val_loss'][kept]:.4f}" if "val_loss" in history else "-"
        rows.append([fold, f"{len(y_train) - len(held)} / {len(held)}", f"{kept + 1} / {len(history)}",
                     f"{history['loss'][kept]:.4f}", val])
    print("\n" + table(rows, ["fold", "rows trained / held out", "epoch kept / trained", "train loss", "val loss"]))
    hidden = ", ".join(str(layer.n_out) for layer in net.layers[:-1])
    stopped = "early-stopped on" if result.patience else "validated on"
    print(f"cross-fitting: {len(rows)} networks, each trained on the training rows but its fold and {stopped} "
          f"that fold, merged into one network whose output is their mean (hidden widths {hidden})")
    metric = "accuracy" if net.is_classifier else "R^2"
    oof = result.out_of_fold
    estimate = float(np.mean(net.decide(oof) == np.asarray(y_train))) if net.is_classifier else \
        r_squared(oof, y_train)
    held_out = len(y_test) > 0
    test = evaluate(net, X_test, y_test) if held_out else {"loss": float("nan")}
    figure = (f"{test['accuracy']:.4f}" if net.is_classifier else f"{r_squared(net.output(X_test), y_test):.4f}") \
        if held_out else "-"
    print("\n" + table([[f"{estimate:.4f}", f"{test['loss']:.4f}" if held_out else "-", figure, f"{seconds:.1f} s"]],
                       [f"out-of-fold {metric}", "test loss", f"test {metric}", "time"]))
    folds_loss = float(np.mean([h["val_loss"][k] for h, k in zip(result.histories, result.kept, strict=True)]))
    return (test["loss"] if held_out else folds_loss), estimate


def summarise(net, history, X_test, y_test, seconds: float, stopper=None) -> float:
    """Print which epoch's weights were kept (and whether training stopped early), then the summary table of
    that epoch's losses and the test figures of the model saved; returns the test loss."""
    kept = len(history) - 1  # the last epoch, unless early stopping restored a better one
    if stopper is not None and stopper.best_epoch is not None:
        kept = stopper.best_epoch
        stopped = stopper.wait >= stopper.patience
        print(f"\n{'stopped early after' if stopped else 'trained'} {len(history)} epochs; kept the weights of "
              f"epoch {kept + 1}, whose validation loss {history['val_loss'][kept]:.4f} was the lowest")
    held_out = len(y_test) > 0  # --test-size 0: none
    test = evaluate(net, X_test, y_test) if held_out else {"loss": history["loss"][kept]}
    header = ["epoch kept / trained", "train loss", "val loss", "test loss"] + (["test accuracy"] if net.is_classifier
                                                                                 else ["test R^2"])
    row = [f"{kept + 1} / {len(history)}", f"{history['loss'][kept]:.4f}",
           f"{history['val_loss'][kept]:.4f}" if "val_loss" in history else "-",
           f"{test['loss']:.4f}" if held_out else "-"]
    if not held_out:
        row.append("-")
    elif net.is_classifier:
        row.append(f"{test['accuracy']:.4f}")
    else:
        row.append(f"{r_squared(net.output(X_test), y_test):.4f}")
    print("\n" + table([row + [f"{seconds:.1f} s"]], header + ["time"]))
    return test["loss"]  # (the training loss where there is no test split)


def write_plots(net, history, X_test, y_test, out: Path, flow=None) -> None:
    """loss.png (accuracy.png), gradient-flow.png with --plots, and the test set's confusion matrix or predicted
    against actual values."""
    plot_curves(history, out, "loss" if net.is_classifier or net.pipeline.target is None else
                f"{net.loss_fn.name} on standardized targets")
    if flow is not None:
        plot_gradient_flow(flow, out / "gradient-flow.png")
    if len(y_test) == 0:  # no test split: nothing to plot against
        return
    if not net.is_classifier:  # in the target's units (training saw them standardized)
        predicted, actual = net.decide(net.output(X_test)), net.pipeline.outputs(np.asarray(y_test))
        plot_predicted(predicted, actual, out / "predicted.png")
    if net.is_classifier:
        matrix = confusion_matrix(y_test, net.decide(net.output(X_test)), net.classes)
        plot_confusion(matrix, net.class_names(), out / "confusion.png")
