"""Row splits of the CLI: training/test rows (stratified for class labels) and k folds, seeded.

Why not scikit-learn's ``train_test_split`` and ``KFold``/``StratifiedKFold``: importing
``sklearn.model_selection`` pulls in SciPy's statistics and costs about 1.6 s on the 2-core test machine,
while issue 29 gives a whole CLI run on a 300-row table a budget of 1 s beyond its fit (benchmarks/startup.py,
results in benchmarks/results/startup.txt). The guide prefers libraries; this is a measured exception, kept to
the two splits the CLI needs, with the same rules as scikit-learn's (the number of test rows rounded up, each
class's share of them by largest remainder, folds of sizes differing by at most one).

Models trained before this module recorded no ``split`` in their source: their held-out rows were scikit-learn's,
and ``legacy_split`` re-derives exactly those (it imports scikit-learn when it runs), so that ``deltaprop
evaluate`` never scores a silently different test set.
"""

from __future__ import annotations

import math

import numpy as np

SPLIT = "deltaprop-1"  # the name a model's source records for split(): a later change of it gets a new name


def split(n: int, test_size: float, seed: int, labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, test rows) of n rows, each row in exactly one, both in a random order: ceil(test_size * n)
    test rows, drawn within each class of ``labels`` in proportion to its size (a class's test count is its share
    rounded, the rounding going to the largest remainders) when labels are given."""
    rng = np.random.default_rng(seed)
    n_test = math.ceil(test_size * n)
    if labels is None:
        order = rng.permutation(n)
        return order[n_test:], order[:n_test]
    classes, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
    share = counts * (n_test / n)
    taken = np.floor(share).astype(np.int64)
    extra = np.argsort(-(share - taken), kind="stable")[:n_test - taken.sum()]  # largest remainders first
    taken[extra] += 1
    train, test = [], []
    for k in range(len(classes)):
        rows = rng.permutation(np.flatnonzero(codes == k))
        test.append(rows[:taken[k]])
        train.append(rows[taken[k]:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def folds(n: int, k: int, seed: int, labels: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """k (training rows, held-out rows) pairs whose held-out parts partition the n rows, their sizes differing by at
    most one; with ``labels``, each class dealt out over the folds in turn (its count in a fold within one of
    every other fold's), as stratified k-fold does."""
    rng = np.random.default_rng(seed)
    if labels is None:
        order = rng.permutation(n)
    else:  # class by class, each class's rows shuffled: dealing positions round-robin spreads every class evenly
        codes = np.unique(labels, return_inverse=True)[1]
        order = np.concatenate([rng.permutation(np.flatnonzero(codes == c)) for c in range(codes.max() + 1)])
    fold_of = np.empty(n, dtype=np.int64)
    fold_of[order] = np.arange(n) % k
    return [(np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)) for f in range(k)]


def legacy_split(n: int, test_size: float, seed: int, labels: np.ndarray | None = None):
    """The split of models saved before ``split`` was recorded: scikit-learn's train_test_split (imported here, on
    the rare path that needs it)."""
    from sklearn.model_selection import train_test_split

    return train_test_split(np.arange(n), test_size=test_size, random_state=seed, stratify=labels)
