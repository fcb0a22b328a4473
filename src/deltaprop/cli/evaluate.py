"""deltaprop evaluate and deltaprop predict: use a saved model on data."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

from ..data import ReadOptions, read_table
from ..data import open as open_data
from ..data.formats import lookup
from ..errors import DataError
from ..network import load, probabilities
from ..training import evaluate as evaluate_net
from .common import DATA_HELP, labelled_data, model_test_data, numeric_columns, r_squared, table
from .options import add_arguments, header_option
from .tables import read_for

# The backend predict runs a saved model's forward pass on: NumPy's. numba's fused bias + activation saves little
# beside the matrix products (BLAS's on either backend), while importing numba (and the SciPy it checks for) and
# loading its cached kernels takes about 1 s, most of a one-row prediction (benchmarks/startup.py).
PREDICTION_OPS = "numpy"
HEADER_HELP = ("yes or no: whether the file's first row names its columns (default: as the model's training file "
               "was read, detected where training detected it)")


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="accuracy, per-class precision/recall/F1 and confusion matrix",
                       description="Evaluate a saved model. Without --data it scores exactly the rows held out "
                                   "for testing when it was trained (refusing a data file that has changed "
                                   "since); a file given with --data is scored whole.")
    p.add_argument("model", help="a model file written by 'deltaprop train' (model.safetensors)")
    p.add_argument("--data", help=DATA_HELP)
    p.add_argument("--target", help="CSV target column (default: the one used in training, else the last)")
    add_arguments(p, "evaluate")  # --data-dir, declared once with train's (options.py)
    p.add_argument("--header", choices=("yes", "no"), help=HEADER_HELP)
    p.set_defaults(run=run_evaluate)

    p = sub.add_parser("predict", help="write predictions (and probabilities) for new data as CSV",
                       description="Predict with a saved model. Table columns are matched by name, in any "
                                   "order; extra columns (the target, say) are ignored, a missing one is an error.")
    p.add_argument("model", help="a model file written by 'deltaprop train'")
    p.add_argument("--data", required=True, help="a table (.csv, .tsv, .parquet) or an .npz file of inputs")
    p.add_argument("--header", choices=("yes", "no"), help=HEADER_HELP)
    p.add_argument("--output", "-o", help="CSV file to write (default: standard output)")
    p.add_argument("--proba", action="store_true", help="add one probability column per class")
    p.set_defaults(run=run_predict)


def run_evaluate(args) -> int:
    net = load(args.model)
    if args.data:
        X, y = labelled_data(net, args.data, args.data_dir, args.target, header_option(args.header))
    else:
        X, y = model_test_data(net, args.data_dir)
    a0 = net.pipeline.inputs(X, net.dtype)  # the model's stages, once: the loss and the answers both use a^0
    result = evaluate_net(net, a0, net.pipeline.targets(y))
    predicted = net.decide(net.output(a0))
    scaled = " (on standardized targets, as in training)" if net.pipeline.target is not None else ""
    print(f"samples: {len(y)}   loss: {result['loss']:.4f}{scaled}")
    if not net.is_classifier:
        return _regression_report(predicted, y)
    from sklearn.metrics import classification_report, confusion_matrix

    names = net.class_names()
    print(f"accuracy: {result['accuracy']:.4f}\n")
    print(classification_report(y, predicted, labels=net.classes, target_names=names, digits=4, zero_division=0))
    matrix = confusion_matrix(y, predicted, labels=net.classes)
    print("confusion matrix (rows: true, columns: predicted)")
    print(table([[name] + list(row) for name, row in zip(names, matrix, strict=True)], ["true \\ pred"] + names))
    return 0


def _regression_report(predicted: np.ndarray, y: np.ndarray) -> int:
    residual = predicted - y.astype(np.float64).reshape(predicted.shape)
    print(f"mean absolute error: {np.abs(residual).mean():.4f}   R^2: {r_squared(predicted, y):.4f}")
    return 0


def run_predict(args) -> int:
    net = load(args.model, ops=PREDICTION_OPS)
    X = _prediction_inputs(net, Path(args.data), header_option(args.header))
    a_L = net.model_output(X)  # raw inputs through the model's stages
    predicted = net.decide(a_L)  # a regressor's in the target's units; labels as they are
    header = ["prediction"]
    rows = [[p] for p in (predicted.tolist() if predicted.ndim == 1 else predicted[:, 0].tolist())]
    if args.proba:
        if not net.is_classifier:
            raise DataError("--proba needs a classifier; this model is a regressor")
        header += [f"p_{c}" for c in net.class_names()]
        rows = [row + [f"{p:.6g}" for p in probs] for row, probs in zip(rows, probabilities(a_L), strict=True)]
    out = open(args.output, "w", newline="") if args.output else sys.stdout
    try:
        writer = csv.writer(out)
        writer.writerow([spreadsheet_safe(cell) for cell in header])
        writer.writerows([spreadsheet_safe(cell) for cell in row] for row in rows)
    finally:
        if args.output:
            out.close()
    return 0


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell):
    """A text cell that a spreadsheet would run as a formula (it starts with = + - @, a tab or a carriage
    return: OWASP's "CSV injection"), prefixed with a single quote, as OWASP advises; other cells as they are.

    Prefixing, not refusing: the labels came from the user's own training file, and a prediction
    file that cannot be written helps no one, while the quote shows in any reader that the cell is
    text. Numbers are never prefixed (a negative prediction stays a number); a text label that
    merely reads as a number ("-1") is not a formula either.
    """
    if not isinstance(cell, str) or not cell.startswith(FORMULA_STARTS):
        return cell
    try:
        float(cell)
        return cell
    except ValueError:
        return "'" + cell


def _prediction_inputs(net, path: Path, header: bool | None = None):
    """Raw inputs from an NPZ file, or a table (whose columns the model matches by name)."""
    fmt = lookup(path)
    if fmt is not None and not fmt.table:  # arrays (an .npz file): X, as data.open reads it
        return open_data(path).read().X
    if net.pipeline.table is not None:
        return read_for(net.pipeline, path, header)
    return numeric_columns(net, read_table(path, ReadOptions(header=header)), path)
