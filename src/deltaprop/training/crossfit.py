"""Cross-fitting: k networks, each trained on k-1 folds of the rows and early-stopped on its own fold, merged
into one network whose output is their mean z^L.

Why: a run that holds out 10% of a small table for early stopping trains on 90% of it and stops on a handful
of rows whose verdict swings with the seed. Here every row trains k-1 of the networks and validates one,
and averaging k networks removes much of each one's noise (a bagged ensemble, as AutoGluon and RealMLP
do: on issue 29's suite it lifted a 442-row regression's test R^2 from 0.29 to 0.41, benchmarks/real_tables.py).
The rows each network never trained on give an honest estimate of the model's score: every row predicted by
the network that held it out (the out-of-fold figure; slightly optimistic, as each fold also chose its
network's epoch).

The merged network is one network of the notes, not a list of them (``merge``): for networks of the same
layer sizes n_0, n_1, ..., n_L, the hidden layers sit side by side (layer 1's W^1 side by side, deeper ones
block-diagonal, zero between the networks), and layer L's weights are stacked and divided by k, so that
z^L = (1/k) sum_i z^L_i exactly (up to rounding), and sigma_L is applied once to that mean. A regression's
prediction is the networks' mean prediction; a classifier's is the softmax (or sigmoid) of their mean
logits. Every door (predict, ONNX, explain, the CLI) then sees one ordinary network.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..callbacks import EarlyStopping
from ..errors import ConfigError
from .config import TrainConfig
from .history import History


@dataclass
class CrossFit:
    """What ``cross_fit`` leaves: the merged network, each fold's history and kept epoch, the held-out rows of
    each fold and every training row's out-of-fold output a^L (from the network that did not train on it)."""

    net: Any  # a Network (this module never imports the model: training sits below it)
    histories: list[History] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)
    held: list[np.ndarray] = field(default_factory=list)
    out_of_fold: np.ndarray | None = None
    patience: int = 0  # the early stopping's (0: every network trained all its epochs)


def fold_seed(seed: int, fold: int) -> int:
    """Fold ``fold``'s network seed: independent streams from (seed, fold), in 0..2^63-1."""
    return int(np.random.SeedSequence([seed, fold]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def fresh_copy(net, seed: int):
    """A network of ``net``'s layers (kinds, sizes, activations, dropout), loss, dtype and backend, initialized
    afresh from ``seed``, knowing the same classes."""
    layers = [type(layer)(layer.n_in, layer.n_out, layer.activation, layer.dropout) for layer in net.layers]
    copy = type(net)(layers, loss=net.loss_fn.name, dtype=net.dtype.name, seed=seed, ops=net.ops)
    copy.classes = net.classes
    return copy


def cross_fit(new_net: Callable[[int], Any], X: np.ndarray, y: np.ndarray, held: list[np.ndarray], *,
              config: TrainConfig, patience: int, comm=None) -> CrossFit:
    """Train ``new_net(i)`` on every row but ``held[i]`` for each fold i, with early stopping after ``patience``
    epochs without a better loss on ``held[i]`` (its best epoch's weights kept; patience 0: all of config's
    epochs), and merge them. X, y are the network's inputs and targets (preprocessed)."""
    result = CrossFit(net=None, held=held, patience=patience)
    nets = []
    for i, rows in enumerate(held):
        net, train = new_net(i), np.setdiff1d(np.arange(len(y)), rows)
        if config.verbose:
            print(f"fold {i + 1} of {len(held)}: training on {len(train)} rows, early stopping on the other "
                  f"{len(rows)}" if patience else f"fold {i + 1} of {len(held)}: training on {len(train)} rows, "
                  f"validating on the other {len(rows)}")
        stopper = EarlyStopping(patience=patience) if patience else None
        history = net.fit(X[train], y[train], config=config, validation_data=(X[rows], y[rows]),
                          callbacks=[stopper] if stopper else [], preprocessed=True, comm=comm)
        kept = stopper.best_epoch if stopper is not None and stopper.best_epoch is not None else len(history) - 1
        out = np.asarray(net.output(X[rows]))
        if result.out_of_fold is None:
            result.out_of_fold = np.empty((len(y), out.shape[1]), dtype=out.dtype)
        result.out_of_fold[rows] = out
        result.histories.append(history)
        result.kept.append(kept)
        nets.append(net)
    result.net = merge(nets)
    return result


def merge(nets: list) -> Any:
    """One network whose z^L is the mean of the given networks' z^L (see the module docstring): same layer
    sizes, activations, loss and dtype required; the first network's seed and classes kept, and a copy of its
    pipeline."""
    first = nets[0]
    for net in nets[1:]:
        if [(l.kind, l.n_in, l.n_out, l.activation.name) for l in net.layers] != \
                [(l.kind, l.n_in, l.n_out, l.activation.name) for l in first.layers]:
            raise ConfigError("only networks of the same layers (kinds, sizes and activations) can be merged")
    if any(layer.kind != "dense" for layer in first.layers):
        raise ConfigError("merging networks takes Dense layers only")
    k, L, layers = len(nets), first.L, []
    for l in range(1, L + 1):
        W = [np.asarray(first.ops.to_host(net.layers[l - 1].W), dtype=first.dtype) for net in nets]
        b = [np.asarray(first.ops.to_host(net.layers[l - 1].b), dtype=first.dtype) for net in nets]
        template = first.layers[l - 1]
        layer = type(template)(W[0].shape[0] * (k if l > 1 else 1), W[0].shape[1] * (k if l < L else 1),
                               template.activation, template.dropout)
        if l == L:  # stacked and averaged: z^L = (1/k) sum_i a^{L-1}_i W^L_i + mean b^L_i
            layer.W, layer.b = np.vstack(W) / first.dtype.type(k), np.mean(b, axis=0).astype(first.dtype)
        elif l == 1:  # side by side: every network reads the same a^0
            layer.W, layer.b = np.hstack(W), np.concatenate(b)
        else:  # block-diagonal: network i's units read only network i's units below
            layer.W, layer.b = _block_diagonal(W), np.concatenate(b)
        layers.append(layer)
    merged = type(first)(layers, loss=first.loss_fn.name, dtype=first.dtype.name, seed=first.seed,
                         initialize=False, ops=first.ops)
    merged.classes, merged.pipeline, merged.extra = first.classes, copy.deepcopy(first.pipeline), dict(first.extra)
    return merged


def _block_diagonal(blocks: list[np.ndarray]) -> np.ndarray:
    rows, cols = sum(B.shape[0] for B in blocks), sum(B.shape[1] for B in blocks)
    out = np.zeros((rows, cols), dtype=blocks[0].dtype)
    r = c = 0
    for B in blocks:
        out[r:r + B.shape[0], c:c + B.shape[1]] = B
        r, c = r + B.shape[0], c + B.shape[1]
    return out
