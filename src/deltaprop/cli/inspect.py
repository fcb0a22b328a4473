"""deltaprop gradcheck and deltaprop info."""

from __future__ import annotations

import numpy as np

from ..activations import ACTIVATIONS
from ..data.builtin import BUILTIN
from ..errors import ConfigError
from ..gradcheck import gradcheck
from ..losses import LOSSES
from ..network import load
from ..ops import describe as backend
from ..optimizers import OPTIMIZERS
from ..summary import summary_text
from ..training import TrainConfig
from ..training.fused import describe as step_line
from ..version import __version__
from .common import labelled_data, load_data, model_test_data
from .train import new_network

FIT_BATCH = TrainConfig.defaults()["batch_size"]  # fit's batch size, the one a further fit takes by default


def add_parser(sub) -> None:
    p = sub.add_parser("gradcheck", help="check backprop against finite differences on a model or new network",
                       description="Compare every layer's dW and db from backpropagation with central finite "
                                   "differences of the loss (float64), on a few samples. Exit code 1 if the "
                                   "relative error exceeds --tol.")
    p.add_argument("model", nargs="?", help="a saved model (default: a new network from --layers etc.)")
    p.add_argument("--data", help="data to take the samples from (default: a model's own held-out rows, else "
                                  "digits)")
    p.add_argument("--samples", type=int, default=8, help="number of samples in the batch (default 8)")
    p.add_argument("--layers", default="16", help="hidden widths of a new network (default 16)")
    p.add_argument("--activation", default="tanh", help="hidden activation of a new network (default tanh)")
    p.add_argument("--loss", default="cross_entropy", help="loss of a new network (default cross_entropy)")
    p.add_argument("--max-entries", type=int, default=200, help="entries checked per array (default 200)")
    p.add_argument("--tol", type=float, default=1e-6, help="largest relative error accepted (default 1e-6)")
    p.add_argument("--seed", type=int, default=0, help="seed of the new network and sample choice")
    p.set_defaults(run=run_gradcheck)

    p = sub.add_parser("info", help="describe a saved model, or this installation",
                       description="With a model file: its architecture, parameters, classes and training "
                                   "record. Without: versions and what this deltaprop provides.")
    p.add_argument("model", nargs="?", help="a model file")
    p.set_defaults(run=run_info)


def run_gradcheck(args) -> int:

    if args.samples < 1 or args.max_entries < 1:
        raise ConfigError(f"--samples and --max-entries must be at least 1, got {args.samples} and {args.max_entries}")
    rng = np.random.default_rng(args.seed)
    if args.model:  # the rows raw, through the model's own stages
        net = load(args.model)
        X, y = labelled_data(net, args.data) if args.data else model_test_data(net)
        rows = rng.choice(len(y), size=min(args.samples, len(y)), replace=False)
        X, y = net.pipeline.inputs(X.iloc[rows] if hasattr(X, "iloc") else X[rows]), net.pipeline.targets(y[rows])
    else:
        data, _, _, _ = load_data(args.data or "digits", seed=args.seed)
        rows = rng.choice(len(data.y_train), size=min(args.samples, len(data.y_train)), replace=False)
        X, y = data.X_train[rows] / max(float(np.abs(data.X_train).max()), 1.0), data.y_train[rows]
        net = new_network(args.layers, args.activation, args.loss, args.seed, X.shape[1], data.y_train)
    print(net)
    report = gradcheck(net, X, y, tol=args.tol, max_entries=args.max_entries, seed=args.seed)
    print(report)
    return 0 if report.ok else 1


def run_info(args) -> int:
    if args.model is None:
        print(f"deltaprop {__version__}, NumPy {np.__version__}")
        print(f"kernels: {backend()}")
        print(f"activations: {', '.join(sorted(ACTIVATIONS))}")
        print(f"losses: {', '.join(sorted(LOSSES))}")
        print(f"optimizers: {', '.join(OPTIMIZERS)}")
        print(f"with a compiled kernel: activations {_with_kernel(ACTIVATIONS)}; losses {_with_kernel(LOSSES)}; "
              f"optimizers {', '.join(name for name, cls in OPTIMIZERS.items() if cls().kernel is not None)}")

        print(f"built-in data: {', '.join(BUILTIN)}")
        return 0
    net = load(args.model)
    print(printable(summary_text(net)))
    print(f"layers: {' -> '.join([str(net.layers[0].n_in)] + [str(layer.n_out) for layer in net.layers])}   "
          f"seed: {net.seed}")
    state = net.training
    print(f"epochs trained: {state.epoch if state is not None else 0}" + cross_fitted(net))
    if net.classes is not None:
        print(printable(f"classes: {', '.join(map(str, net.classes))}"))
    if state is not None and state.optimizer is not None:
        print(f"optimizer: {state.optimizer.name} {state.optimizer.hyperparameters()} after {state.optimizer.t} steps")
    print(further_step(net))
    if state is not None and len(state.history):
        last = {k: f"{v[-1]:.4f}" for k, v in state.history.history.items() if k != "time"}
        print(printable(f"last epoch: {last}"))
    for line in net.pipeline.describe():
        print(printable(f"preprocessing: {line}"))
    if net.pipeline.source.get("data"):
        print(printable(f"trained on: {net.pipeline.source['data']}"))
    return 0


def further_step(net) -> str:
    """How a further fit of ``net`` would step (its saved optimizer, else Adam; fit's default batch size), said
    as such: the file does not record the batch size it was trained with, so this is not a report of how it was
    trained. A file with epochs but no optimizer state was trained by L-BFGS (whose memory is not saved) or saved
    without the state: the line says so rather than let Adam's step pass for its training."""
    state = net.training
    saved = state is not None and state.optimizer is not None
    optimizer = state.optimizer if saved else OPTIMIZERS["adam"]()
    line = step_line(net, optimizer, batch_size=FIT_BATCH,
                     of=f"a further fit of this model: {optimizer.name}, batch {FIT_BATCH}")
    if not saved and state is not None and state.epoch:
        line += (f"; it was trained {state.epoch} epoch(s) with no optimizer state saved: by L-BFGS (full-batch "
                 "L-BFGS-B, SciPy), or saved without it")
    return line


def _with_kernel(rules: dict) -> str:
    """The names of the rules that hold a kernel (they run in the compiled training step)."""
    return ", ".join(sorted(name for name, rule in rules.items() if rule.kernel is not None))


def printable(text: str) -> str:
    """Text from a model file made safe for a terminal: control characters (escape sequences that could
    recolour, retitle or rewrite the screen) shown as \\x.. escapes, never sent raw."""
    return "".join(c if c.isprintable() or c == "\n" else repr(c)[1:-1] for c in text)


def cross_fitted(net) -> str:
    """What the source record says of a cross-fitted model (cli/folds.py), for its epoch line."""
    source = net.pipeline.source
    if "folds" not in source:
        return ""
    estimate = f"; out-of-fold {'accuracy' if net.is_classifier else 'R^2'} {source['out_of_fold']:.4f}" \
        if "out_of_fold" in source else ""
    return f" as one network (cross-fitted: {source['folds']} networks, each trained on all training rows but its " \
        f"fold, merged{estimate})"
