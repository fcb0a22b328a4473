"""How many epochs a run trains when --epochs is not given, and when a held-out split can be trusted to say.

With enough validation rows, early stopping on them decides (AUTO_PATIENCE epochs without a better
validation loss, the best epoch's weights kept). With fewer than MIN_VALIDATION_ROWS, one validation
loss is mostly noise (on msleep's 4 validation rows the best epoch was the first, and the model kept
was untrained), so the run uses all its training rows instead: k-fold cross-validation of the epoch
count (each fold's validation loss curve over the same epochs, averaged; the epoch where the mean is
lowest), then one model trained on every training row for that many epochs, with no rows held back.
Why this rule: it uses every row for training and every row once for validation, and the final model
is one network (what the notes' equations describe), not an ensemble of the folds' models.

Why 50 (benchmarks/small_validation.py, results in benchmarks/results/small_validation.txt: 4 tables cut
to validation splits of 5..120 rows, 5 seeds): the cross-validated rule won 13 to 18 of 20 paired runs at
every size, by 1-7 points of test score at 20 rows or fewer (where the split's kept epoch swings widely
with the seed), and by about 0.5-1 point from 35 rows up, at 2-5 times the training time. No size
measured was a crossover, so 50 is a cost/benefit choice: the gain below it is worth the time, and above
it the split is trusted and the run stays fast.
"""

from __future__ import annotations

import math

import numpy as np

from ..training.inputs import validation_rows
from .folds import fold_rows
from .options import AUTO_PATIENCE, AUTO_STEPS

MIN_VALIDATION_ROWS = 50
FOLDS = 5
# --optimizer lbfgs: an iteration sees every row (a step count per batch does not apply), and scikit-learn's
# MLP allows 200; early stopping or the cross-validation below picks the iteration among these
LBFGS_ITERATIONS = 500


def auto_epochs(opts: dict, n_train: int, least: int = 30) -> tuple[int, int]:
    """(epochs, patience) when --epochs is not given: AUTO_STEPS gradient steps, at least ``least`` epochs, early
    stopping on the validation loss unless --patience says otherwise (see options.py; LBFGS_ITERATIONS for
    lbfgs)."""
    batches = math.ceil(n_train * (1 - opts["validation_split"]) / opts["batch_size"])
    epochs = min(1000, max(least, math.ceil(AUTO_STEPS / max(batches, 1))))
    if opts["optimizer"] == "lbfgs":
        epochs = LBFGS_ITERATIONS
    patience = opts["patience"] or (AUTO_PATIENCE if opts["validation_split"] else 0)
    return epochs, patience


def too_few_to_stop_on(opts: dict, n_train: int) -> bool:
    """Whether early stopping would decide on fewer than MIN_VALIDATION_ROWS rows, as many as fit holds out
    (and the user left the choice to the run: no --epochs, no --patience)."""
    return opts["epochs"] is None and not opts["patience"] and 0 < opts["validation_split"] and \
        validation_rows(n_train, opts["validation_split"]) < MIN_VALIDATION_ROWS


def cross_validated_epochs(new_net, new_optimizer, opts: dict, X: np.ndarray, y: np.ndarray,
                           comm=None) -> tuple[int, float]:
    """(epochs, mean validation loss there): FOLDS networks from ``new_net()``, each trained (optimizer from
    ``new_optimizer()``) on the other folds for the auto epoch count with its fold held out, their validation
    losses averaged epoch by epoch. X and y are the network's inputs and targets (preprocessed)."""
    epochs, _ = auto_epochs({**opts, "validation_split": 1 / FOLDS}, len(y))
    curves = []
    for held in fold_rows(y, FOLDS, opts["seed"]):
        train = np.setdiff1d(np.arange(len(y)), held)
        net = new_net()
        history = net.fit(X[train], y[train], epochs=epochs, batch_size=opts["batch_size"], preprocessed=True,
                          validation_data=(X[held], y[held]), verbose=0, comm=comm, optimizer=new_optimizer())
        curve = history["val_loss"]  # L-BFGS ends early once converged, and its weights would stay there:
        curves.append(curve + curve[-1:] * (epochs - len(curve)))  # its last value stands for the rest
    mean = np.mean(np.asarray(curves, dtype=np.float64), axis=0)
    best = int(np.argmin(mean))
    return best + 1, float(mean[best])
