"""deltaprop explain: the notes' derivation, computed on one sample of a real network."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..data import Scaler
from ..errors import ConfigError, DataError
from ..explain import notes_example, render_html, render_markdown, render_text
from ..explain.compute import explain
from ..network import load
from .common import labelled_data, load_data, model_test_data
from .train import new_network


def add_parser(sub) -> None:
    p = sub.add_parser("explain", help="show every number of backpropagation on one sample, in the notes' notation",
                       description="Run the notes' derivation on one sample: the forward pass, equations (1)-(4) "
                                   "with their numbers, and the chain rule for one weight beside a finite "
                                   "difference. Without a model or --layers: the notes' own 2-2-2 sigmoid "
                                   "network with mse and fixed weights.")
    p.add_argument("model", nargs="?", help="a model file (default: the notes' network)")
    p.add_argument("--layers", help="explain a new network with these hidden widths (e.g. 4,3) on --data")
    p.add_argument("--activation", default="sigmoid", help="hidden activation of a new network (default sigmoid)")
    p.add_argument("--loss", help="loss of a new network (default: cross_entropy)")
    p.add_argument("--data", help="data to take the sample from (default: the model's, else digits)")
    p.add_argument("--sample", type=int, default=0, help="index of the sample in the test data (default 0)")
    p.add_argument("--weight", help="the weight w_ij^l whose chain rule is written out, as l,i,j counted from 1 as "
                                    "in the notes (default 1,1,1, unless its product is 0 for this sample: then "
                                    "the drawn weight of layer 1 with the largest |dW|)")
    p.add_argument("--neuron", type=int, default=1, help="the neuron j shown in equation (2) (default 1)")
    p.add_argument("--format", choices=("text", "md", "html"), default="text",
                   help="terminal text (default), Markdown with TeX math, or a self-contained HTML page")
    p.add_argument("--output", "-o", help="file to write (default: standard output)")
    p.add_argument("--seed", type=int, default=0, help="seed of a new network")
    p.set_defaults(run=run)


def parse_weight(text: str) -> tuple[int, int, int]:
    try:
        l, i, j = (int(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"--weight takes l,i,j (three integers counted from 1), got {text!r}") from None
    return l, i, j


def _subject(args):
    """(network, x, y, the sample's raw values or None) to explain: x is a^0, y the network's target."""
    if args.model is None and args.layers is None:
        return (*notes_example(), None)
    if args.model is not None:
        net = load(args.model)
        X, y = labelled_data(net, args.data) if args.data else model_test_data(net)
        _check_sample(args.sample, len(y))
        row = X.iloc[[args.sample]] if hasattr(X, "iloc") else X[[args.sample]]  # raw, as predict takes it
        raw = raw_values(net, row)
        return net, net.pipeline.inputs(row)[0], net.pipeline.targets(y[[args.sample]])[0], raw
    data, _, _, _ = load_data(args.data or "digits", seed=args.seed)
    X, y = Scaler("standard").fit(data.X_train).transform(data.X_test), data.y_test
    net = new_network(args.layers, args.activation, args.loss, args.seed, X.shape[1], data.y_train)
    _check_sample(args.sample, len(y))
    return net, X[args.sample], y[args.sample], None


def _check_sample(sample: int, m: int) -> None:
    if not 0 <= sample < m:
        raise DataError(f"--sample must be in 0..{m - 1}, got {sample}")


def raw_values(net, row) -> list | None:
    """The sample as the model's user gave it, (name, value) per raw input: a table's columns, or the
    unscaled features; None when the model has no stages (a^0 is the raw input)."""
    if not net.pipeline.stages:
        return None
    if hasattr(row, "iloc"):
        return [(name, row[name].iloc[0]) for name in net.pipeline.columns]
    piecewise = net.pipeline.piecewise  # (its names are the raw inputs', a^0's are its bins')
    names = piecewise.names if piecewise is not None else net.pipeline.feature_names
    if names is None or len(names) != row.shape[1]:
        names = [f"x{i + 1}" for i in range(row.shape[1])]
    return list(zip(names, np.asarray(row)[0].tolist(), strict=True))


def run(args) -> int:
    net, x, y, raw = _subject(args)
    ex = explain(net, x, y, weight=None if args.weight is None else parse_weight(args.weight), neuron=args.neuron,
                 raw=raw)
    if args.format == "md":
        text = render_markdown(ex)
    elif args.format == "html":
        text = render_html(ex)
    else:
        text = render_text(ex, color=args.output is None and sys.stdout.isatty())
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0
