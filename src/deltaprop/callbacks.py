"""Callbacks: code that runs at the edges of training epochs.

A callback sees ``on_train_begin(net)``, then for each epoch ``on_epoch_logs(net,
epoch, logs)`` (every callback updates its own state) followed by ``on_epoch_end(net,
epoch, logs)`` (every callback acts: saves, prints), and finally ``on_train_end(net)``;
``logs`` holds the epoch's figures ("loss", "val_loss", "accuracy", "val_accuracy",
"time", "lr"). Setting ``net.training.stop = True`` ends training after the current epoch
(``net.training`` is the TrainingState that fit keeps: optimizer, history, epoch, ...).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from .errors import ConfigError
from .io import save


class Callback:
    def on_train_begin(self, net) -> None: ...

    def on_batch_end(self, net, batch: int, n_batches: int) -> None: ...

    def on_backward(self, net, grads) -> None: ...

    def on_epoch_logs(self, net, epoch: int, logs: dict) -> None: ...

    def on_epoch_end(self, net, epoch: int, logs: dict) -> None: ...

    def on_train_end(self, net) -> None: ...


def _better(mode: str, value: float, best: float, min_delta: float) -> bool:
    return value < best - min_delta if mode == "min" else value > best + min_delta


def _mode_for(monitor: str, mode: str) -> str:
    """"min" or "max"; "auto" is Keras's rule: "max" for accuracy-like metrics ("acc", "accuracy", "auc",
    with or without "val_"), "min" for the rest (losses)."""
    if mode == "auto":
        name = monitor.removeprefix("val_")
        return "max" if name in ("acc", "auc") or "accuracy" in name else "min"
    if mode not in ("min", "max"):
        raise ConfigError(f"mode must be 'min', 'max' or 'auto', got {mode!r}")
    return mode


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    With ``restore_best_weights`` the network ends with the weights of its best
    epoch, not its last. While a fit runs, its record (best value and epoch, epochs
    waited, best weights) is kept in the training state (``net.training.early_stopping``), which
    checkpoints save:
    a run resumed from one stops and restores exactly as the uninterrupted run would.
    The record is updated in on_epoch_logs, before any callback's on_epoch_end, so a
    checkpoint holds the epoch's record wherever the two stand in the callback list.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = True):
        if not (isinstance(patience, (int, float, np.integer, np.floating)) and not isinstance(patience, bool)
                and patience >= 0 and (patience == math.inf or float(patience).is_integer())):
            raise ConfigError(f"patience must be a whole number of epochs >= 0 or inf, got {patience!r}")
        # Keras: the size of min_delta counts, not its sign; patience=inf never stops (best weights still kept)
        self.monitor, self.patience, self.min_delta = monitor, patience, abs(float(min_delta))
        self.mode = _mode_for(monitor, mode)
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self, net):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch, self.best_weights, self.wait = None, None, 0
        record = net.training.early_stopping  # left by an interrupted run (loaded from its checkpoint)
        if record is not None and record["monitor"] == self.monitor:
            self.best, self.best_epoch, self.wait = record["best"], record["best_epoch"], record["wait"]
            self.best_weights = record["weights"] if self.restore_best_weights else None

    def on_epoch_logs(self, net, epoch, logs):
        if self.monitor not in logs:
            raise ConfigError(f"EarlyStopping monitors {self.monitor!r}, which training does not report; "
                              f"available: {', '.join(sorted(logs))}")
        value = logs[self.monitor]
        if _better(self.mode, value, self.best, self.min_delta):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = net.get_weights()
        else:
            self.wait += 1
            if self.wait >= self.patience:
                net.training.stop = True
        net.training.early_stopping = {"monitor": self.monitor, "best": self.best, "best_epoch": self.best_epoch,
                              "wait": self.wait, "weights": self.best_weights} if math.isfinite(self.best) else None

    def on_train_end(self, net):
        net.training.early_stopping = None  # the fit finished: nothing left to resume
        if self.restore_best_weights and self.best_weights is not None:
            net.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the network (with optimizer state) after each epoch, or only on improvement.

    The file name (not the folders above it) may contain ``{epoch}``, replaced by the 1-based
    epoch; nothing else in a path is a template (a folder named ``runs{a}`` is just that).
    Files are written atomically, by rank 0 alone in a data-parallel job.
    """

    def __init__(self, path, monitor: str = "val_loss", save_best_only: bool = False, mode: str = "auto"):
        self.path, self.monitor, self.save_best_only = str(path), monitor, save_best_only
        self.mode = _mode_for(monitor, mode)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.last: Path | None = None  # the file written last

    def on_epoch_end(self, net, epoch, logs):
        if net.training.comm.rank != 0:  # one writer in a job of several ranks (they hold the same weights)
            return
        if self.save_best_only:
            value = logs.get(self.monitor)
            if value is None or not _better(self.mode, value, self.best, 0.0):
                return
            self.best = value
        path = Path(self.path)
        self.last = path.with_name(path.name.replace("{epoch}", str(epoch + 1)))
        save(net, self.last, include_optimizer=True)


class GradientFlow(Callback):
    """Record the mean norm of delta^l and dW^l per layer and epoch: how the error signal flows back.

    ``delta_norms[l]`` and ``dW_norms[l]`` (l = 1..L) hold one value per epoch, the mean
    over the epoch's batches of the Frobenius norm. A deep sigmoid network shows its
    vanishing gradients here: the norms shrink layer by layer towards l = 1.
    """

    def on_train_begin(self, net):
        if not hasattr(self, "delta_norms"):
            self.delta_norms: dict[int, list[float]] = {l: [] for l in range(1, net.L + 1)}
            self.dW_norms: dict[int, list[float]] = {l: [] for l in range(1, net.L + 1)}
        self._sums, self._batches = np.zeros((2, net.L + 1)), 0

    def on_backward(self, net, grads):
        for l in range(1, net.L + 1):
            self._sums[0, l] += float(np.linalg.norm(grads.delta[l]))
            dW = grads.params[l].get("W")  # a layer kind without a W records 0
            self._sums[1, l] += 0.0 if dW is None else float(np.linalg.norm(dW))
        self._batches += 1

    def on_epoch_end(self, net, epoch, logs):
        for l in self.delta_norms:
            self.delta_norms[l].append(self._sums[0, l] / max(self._batches, 1))
            self.dW_norms[l].append(self._sums[1, l] / max(self._batches, 1))
        self._sums[:], self._batches = 0.0, 0


def format_logs(epoch: int, logs: dict) -> str:
    """One line per epoch: 'epoch 3  loss 0.4213  accuracy 0.8732  val_loss ...  2.10 s' (or '4.3 ms')."""
    parts = [f"epoch {epoch + 1:>3}"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if key in logs:
            parts.append(f"{key} {logs[key]:.4f}")
    seconds = logs["time"]
    parts.append(f"{seconds * 1000:.1f} ms" if seconds < 0.1 else f"{seconds:.2f} s")  # a digits epoch takes ms
    return "  ".join(parts)


class Progress(Callback):
    """A tqdm bar over the batches on a terminal; one line per epoch otherwise."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.bar = None

    def _bar(self, n_batches):
        if not self.stream.isatty():
            return None
        try:
            from tqdm import tqdm
        except ImportError:
            return None
        return tqdm(total=n_batches, file=self.stream, leave=False, unit="batch")

    def on_batch_end(self, net, batch, n_batches):
        if batch == 0:
            self.bar = self._bar(n_batches)
        if self.bar is not None:
            self.bar.update(1)

    def on_epoch_end(self, net, epoch, logs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        print(format_logs(epoch, logs), file=self.stream, flush=True)
