"""Experiments towards 0.91 on Fashion-MNIST within 90 s, beyond what a recipe file can say: data augmentation
(horizontal flips, shifts by a pixel), label smoothing and an exponential moving average (EMA) of the weights.

    python benchmarks/time_to_accuracy.py --choose     # the recipes (architecture, optimizer, schedule, dropout)
    python benchmarks/towards_091.py                   # these experiments, on the same validation split

Each trains on the first 55,000 training rows and prints the accuracy on the last 5,000 after every epoch, as
``--choose`` does (the test set plays no part); through the public API only: an augmented copy of the training
images each epoch (flipped or shifted before standardizing, as a camera would give them), smoothed one-hot
targets (y of shape (m, 10)), and a callback that keeps the EMA after every batch, evaluated in place of the
weights after each epoch.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import deltaprop as dp

sys.path.insert(0, str(Path(__file__).parent))
import time_to_accuracy as recipes  # noqa: E402  (the candidates' networks, optimizers and schedules)

WIDE = recipes.BASE | {"layers": "1024,1024", "dropout": 0.3, "weight_decay": 0.02, "lr": 1e-3, "batch_size": 256,
                       "epochs": 14}
FAST = recipes.BASE | {"layers": "256,256", "lr": 3e-3, "batch_size": 512, "epochs": 14}
LONG = recipes.BASE | {"layers": "256,256", "dropout": 0.2, "lr": 3e-3, "batch_size": 512, "epochs": 40}
EXPERIMENTS = {  # name: (recipe, flip, shift in pixels, label smoothing, EMA decay per batch)
    "1024-1024 with flips": (WIDE, True, 0, 0.0, 0.0),
    "1024-1024 with flips and 1-pixel shifts": (WIDE, True, 1, 0.0, 0.0),
    "256-256 (the fast recipe) with flips": (FAST, True, 0, 0.0, 0.0),
    "1024-1024, label smoothing 0.1, EMA 0.998": (WIDE, False, 0, 0.1, 0.998),
    "256-256 (the fast recipe), label smoothing 0.1, EMA 0.99": (FAST, False, 0, 0.1, 0.99),
    "256-256, dropout 0.2, 40 epochs, label smoothing 0.1, EMA 0.995": (LONG, False, 0, 0.1, 0.995),
}


class Average(dp.Callback):
    """theta_EMA <- decay theta_EMA + (1 - decay) theta, after every batch."""

    def __init__(self, decay: float):
        self.decay, self.theta = decay, None

    def on_batch_end(self, net, batch, n_batches):
        theta = net.training.flat.theta
        if self.theta is None:
            self.theta = theta.copy()
        else:
            self.theta *= self.decay
            self.theta += (1 - self.decay) * theta


def augmented(images: np.ndarray, rng, flip: bool, shift: int) -> np.ndarray:
    """A copy of the (m, 28, 28) images, half of them mirrored, each moved by up to ``shift`` pixels (zeros in)."""
    out = images.copy()
    if flip:
        mirrored = rng.random(len(out)) < 0.5
        out[mirrored] = out[mirrored, :, ::-1]
    if shift:
        moves = rng.integers(-shift, shift + 1, (len(out), 2))
        for dy, dx in {tuple(move) for move in moves.tolist()}:
            rows = np.flatnonzero((moves[:, 0] == dy) & (moves[:, 1] == dx))
            moved = np.zeros_like(out[rows])
            moved[:, max(dy, 0):28 + min(dy, 0), max(dx, 0):28 + min(dx, 0)] = \
                out[rows, max(-dy, 0):28 + min(-dy, 0), max(-dx, 0):28 + min(-dx, 0)]
            out[rows] = moved
    return out.reshape(len(out), -1)


def experiment(name, recipe, flip, shift, smoothing, decay, images, y, X_val, y_val, scaler) -> None:
    """Train as ``--choose`` does, epoch by epoch; print the validation accuracy (and the EMA's) per epoch."""
    net, rates, rng = recipes.network(recipe), recipes.learning_rates(recipe), np.random.default_rng(0)
    Y = np.full((len(y), 10), smoothing / 10, np.float32)
    Y[np.arange(len(y)), y] += 1 - smoothing
    average, seconds, plain, smoothed = Average(decay) if decay else None, 0.0, [], []
    X = None if flip or shift else scaler.transform(images.reshape(len(images), -1)).astype(np.float32)
    for epoch in range(recipe["epochs"]):
        started = time.perf_counter()
        if flip or shift:  # a new augmented copy every epoch
            X = scaler.transform(augmented(images, rng, flip, shift)).astype(np.float32)
        net.fit(X, Y if smoothing else y, epochs=1, batch_size=recipe["batch_size"], verbose=0,
                optimizer=recipes.optimizer(recipe) if epoch == 0 else None,
                schedule=recipes._Fixed(rates[epoch]), callbacks=[average] if average else ())
        seconds += time.perf_counter() - started  # the augmentation counts as training time
        plain.append(float((net.predict(X_val) == y_val).mean()))
        if average:
            theta = net.training.flat.theta
            kept = theta.copy()
            theta[...] = average.theta
            smoothed.append(float((net.predict(X_val) == y_val).mean()))
            theta[...] = kept
    print(f"{name}: validation accuracy per epoch {' '.join(f'{a:.3f}' for a in plain)}"
          + (f"; with the EMA {' '.join(f'{a:.3f}' for a in smoothed)}" if smoothed else "")
          + f"; {seconds:.1f} s of training", flush=True)


def main() -> None:
    from deltaprop.data import Scaler, load_builtin

    only = sys.argv[1] if len(sys.argv) > 1 else ""
    data = load_builtin("fashion-mnist")
    images, y = data.X_train[:55000].reshape(-1, 28, 28), data.y_train[:55000].astype(np.int64)
    scaler = Scaler("standard").fit(data.X_train[:55000])
    X_val = scaler.transform(data.X_train[55000:]).astype(np.float32)
    for name, (recipe, flip, shift, smoothing, decay) in EXPERIMENTS.items():
        if only in name:
            experiment(name, recipe, flip, shift, smoothing, decay, images, y, X_val,
                       data.y_train[55000:].astype(np.int64), scaler)


if __name__ == "__main__":
    main()
