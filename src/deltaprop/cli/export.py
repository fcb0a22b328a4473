"""deltaprop export: a saved model as an ONNX file (its preprocessing included), for ONNX Runtime."""

from __future__ import annotations

from ..network import load


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="write a model as ONNX (feature scaling and table columns included)",
                       description="Export a saved model to ONNX: the graph takes the raw inputs (one input per "
                                   "table column, or X) and gives label and probabilities (classifiers) or "
                                   "variable (regressors, in the target's units). Needs the onnx extra: "
                                   'pip install "deltaprop[onnx]".')
    p.add_argument("model", help="a model file written by 'deltaprop train'")
    p.add_argument("--output", "-o", required=True, help="the .onnx file to write (atomically)")
    p.set_defaults(run=run_export)


def run_export(args) -> int:
    from ..export.onnx import to_onnx

    net = load(args.model)
    model = to_onnx(net, args.output)
    inputs = ", ".join(f"{i.name}" for i in model.graph.input)
    outputs = ", ".join(o.name for o in model.graph.output)
    print(f"wrote {args.output}: inputs {inputs}; outputs {outputs}")
    return 0
