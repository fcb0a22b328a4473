"""How a run validates what it trains: cross-fitting of --folds networks on a table, or one network that holds
--validation-split of its rows out for early stopping.

The default for a table is cross-fitting (training/crossfit.py): every training row trains most of the networks
and validates one, so nothing is set aside, and the networks' mean beats any one of them. On issue 29's suite of
16 public tables (benchmarks/real_tables.py's tables and splits, 3 seeds, the same preprocessing) it raised the
median test score over one network early-stopped on 10% of the rows on 9 tables (by more than 0.005; a 442-row
regression from R^2 0.29 to 0.41), tied on 6 and lost on one (a 397-row table, by 0.016, within its seeds'
spread of 0.14). Its cost is training five networks: 0.5 to 11 s on the suite's tables (2 shared cores).
Images and shards keep one network: there the 10% split is thousands of rows, early stopping on it is sound,
and five networks would cost five times as long; a resumed run continues its one network.
"""

from __future__ import annotations

import numpy as np

from ..data.splits import folds as k_folds
from ..errors import ConfigError
from .options import AUTO_FOLDS, ONE_NETWORK_VALIDATION

# Without --epochs, a cross-fitted network may train up to this many epochs where 4,000 steps would be fewer (a
# table of thousands of rows): its fold's early stopping ends it where it stops improving. On the suite's
# 6,259-row price table the networks were still improving at 34 epochs (test R^2 0.926; with 100, 0.932), and
# the other tables over 1,000 rows stopped earlier anyway (the same scores, within 0.001).
CROSS_FIT_EPOCHS = 100


def settle_folds(opts: dict, table: bool, n_train: int | None = None) -> int:
    """opts["folds"] and opts["validation_split"] decided for this run: AUTO_FOLDS for a table held in memory
    (one network when it has fewer than two rows per fold), 1 otherwise; an explicit choice that cannot hold
    is refused, naming why."""
    folds, resumed = opts["folds"], bool(opts["resume"])
    if folds is not None and folds > 1 and (resumed or not table):
        why = "a resumed run continues its one network" if resumed else \
            "cross-fitting takes a table held in memory (CSV or Parquet read whole), not images or shards"
        raise ConfigError(f"--folds {folds}: {why}; leave --folds out or pass --folds 1")
    if folds is None:
        folds = AUTO_FOLDS if table and not resumed and (n_train is None or n_train >= 2 * AUTO_FOLDS) else 1
    if n_train is not None and folds > n_train:
        raise ConfigError(f"--folds {folds} is more than the {n_train} training rows; pass at most {n_train}")
    if folds > 1 and opts["validation_split"] is not None:
        raise ConfigError(f"--validation-split holds rows out of one network (--folds 1); with --folds {folds} each "
                          "network is validated on its own fold: leave --validation-split out, or pass --folds 1")
    opts["folds"] = folds
    if opts["validation_split"] is None:
        opts["validation_split"] = 0.0 if folds > 1 else ONE_NETWORK_VALIDATION
    return folds


def fold_rows(y: np.ndarray, folds: int, seed: int) -> list[np.ndarray]:
    """The held-out rows of each of ``folds`` folds, shuffled by ``seed``: stratified by label when y holds
    labels of which every class has at least ``folds`` rows (each fold then holds each class's share), plain
    otherwise."""
    labels = y.ndim == 1 and y.dtype.kind in "biuUSO" and np.unique(y, return_counts=True)[1].min() >= folds
    return [held for _, held in k_folds(len(y), folds, seed, y if labels else None)]
