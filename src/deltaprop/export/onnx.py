"""A trained network as an ONNX graph, its preprocessing included, for ONNX Runtime and its peers.

The graph does what ``deltaprop predict`` does: a table model takes one input per original column
(strings for categories, an empty string where one is missing; floats for numbers, NaN where one is
missing), strips and one-hot encodes categories as predict does (onnx_table.py; one never seen in
training: all zeros), imputes the training median with its was-missing indicator; then the saved
feature scaling (in double for a table, as predict) and, where the model has one, the piecewise-linear
encoding (Gather, Sub, Div, Max, Min: the bins' ramps clipped to [0, 1]); then per layer ``z^l = a^{l-1} W^l + b^l``
(MatMul, Add) and ``a^l = sigma(z^l)``; then, for a classifier, ``probabilities`` (one column per
class, in ``classes`` order) and ``label`` (the original labels), or for a regressor ``variable`` in
the target's units.

The contract with predict: predict refuses a call when any row gives a non-finite a^0 (an infinite
input, or one that overflows the scaling or the network's dtype) or a non-finite output; the graph
answers row by row, and its output ``valid`` (bool, one per row) is False exactly on the rows that
predict refuses. Such a row's ``probabilities`` or ``variable`` are NaN and its ``label`` means
nothing. Where ``valid`` is True, the graph gives predict's answer.

Names: every name inside the graph starts with a prefix no input starts with, and an output whose name
is an input's (a column named ``label``) gets ``_`` appended until it is free; the metadata key
``outputs`` maps label, probabilities, variable and valid to the names used. Built with the onnx
package's helper API and checked with ``onnx.checker`` (full check).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import PathLike
from ..data.piecewise import PiecewiseLinear
from ..data.robust import RobustScaler
from ..errors import ConfigError
from ..io import atomic_write, checksum, named_tensors
from ..layers import Dense
from ..version import __version__
from . import onnx_table

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError:  # the extra is missing: to_onnx says so when it is called
    HAVE_ONNX = False
else:
    HAVE_ONNX = True

OPSET = 20  # RegexFullMatch (stripping categories), Softmax over the last axis
ACTIVATIONS: dict[str, tuple[str, dict[str, Any]]] = {  # name -> the ONNX op and its attributes
    "sigmoid": ("Sigmoid", {}), "tanh": ("Tanh", {}), "relu": ("Relu", {}),
    "leaky_relu": ("LeakyRelu", {"alpha": 0.01}), "elu": ("Elu", {"alpha": 1.0}),
    "softplus": ("Softplus", {}), "identity": ("Identity", {}), "softmax": ("Softmax", {"axis": -1}),
    "mish": ("Mish", {})}  # (Mish since opset 18)


class Graph:
    """The nodes and constants of a graph under construction; ``add`` returns the output's name."""

    def __init__(self, prefix: str = "", taken=()):
        while any(name.startswith(prefix) for name in taken):  # never an input's name (prefix "" only with none)
            prefix = "_" + prefix
        self.nodes: list[onnx.NodeProto] = []
        self.constants: list[onnx.TensorProto] = []
        self.prefix, self.count = prefix, 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{self.prefix}{hint}_{self.count}"

    def const(self, hint: str, value) -> str:
        name = self.name(hint)
        value = np.asarray(value)
        self.constants.append(numpy_helper.from_array(value.astype(object) if value.dtype.kind == "U" else value,
                                                      name))
        return name

    def add(self, op: str, inputs: list, hint: str | None = None, output: str | None = None, **attrs) -> str:
        output = output or self.name(hint or op.lower())
        self.nodes.append(helper.make_node(op, inputs, [output], name=self.name(op), **attrs))
        return output


def to_onnx(net, path: PathLike | None = None, opset: int = OPSET) -> onnx.ModelProto:
    """The ONNX model of ``net`` (an onnx.ModelProto), written atomically to ``path`` if given."""
    if not HAVE_ONNX:
        raise ConfigError('ONNX export needs the onnx package: pip install "deltaprop[onnx]"')
    columns = net.pipeline.columns
    graph, names = Graph("dp/", taken=columns), output_names(columns)
    inputs, a0, checked = _inputs(net, graph)
    z_L, a_L = layers(net, graph, a0)
    valid = graph.add("Not", [_any_not_finite(graph, [*checked, a0, z_L, a_L])], output=names["valid"])
    outputs = _heads(net, graph, (z_L, a_L, valid), names)
    outputs.append(helper.make_tensor_value_info(valid, TensorProto.BOOL, [None]))
    model = helper.make_model(
        helper.make_graph(graph.nodes, "deltaprop", inputs, outputs, graph.constants),
        opset_imports=[helper.make_opsetid("", opset)], producer_name="deltaprop")
    _metadata(net, model, opset, names)
    onnx.checker.check_model(model, full_check=True)
    if path is not None:
        atomic_write(Path(path), model.SerializeToString())
    return model


def output_names(columns) -> dict:
    """The graph's output names: each one's own unless an input has it, then with ``_`` appended until free."""
    names, taken = {}, set(columns)
    for name in ("label", "probabilities", "variable", "valid"):
        names[name] = name
        while names[name] in taken:
            names[name] += "_"
    return names


def network_graph(net, graph: Graph, x: str) -> str:
    """Layers 1..L on input ``x`` (network dtype): MatMul, Add, sigma per layer; returns a^L's name."""
    return layers(net, graph, x)[1]


def layers(net, graph: Graph, x: str) -> tuple[str, str]:
    """Layers 1..L on ``x``: the names of z^L and a^L."""
    a = z = x
    for l, layer in enumerate(net.layers, start=1):
        name = layer.activation.name
        if type(layer) is not Dense:
            raise ConfigError(f"layer {l} is a {type(layer).__name__}; ONNX export knows Dense layers only")
        if name not in ACTIVATIONS:
            raise ConfigError(f"layer {l}'s activation {name!r} has no ONNX form; the activations that export: "
                              f"{', '.join(ACTIVATIONS)}")
        z = graph.add("Add", [graph.add("MatMul", [a, graph.const(f"W{l}", layer.W)]), graph.const(f"b{l}", layer.b)],
                      hint=f"z{l}")
        if net.dtype == np.float64 and name in COMPOSED:  # ONNX Runtime has no double kernel for these
            a = COMPOSED[name](graph, z, net.dtype)
        else:
            op, attrs = ACTIVATIONS[name]
            a = graph.add(op, [z], hint=f"a{l}", **attrs)
    return z, a


def _any_not_finite(graph: Graph, matrices: list[str]) -> str:
    """(m,) bool: True where a row of any of the (m, n) float ``matrices`` holds NaN or inf."""
    counts = []
    for x in matrices:
        bad = graph.add("Or", [graph.add("IsNaN", [x]), graph.add("IsInf", [x])])
        counts.append(graph.add("ReduceMax", [graph.add("Cast", [bad], to=TensorProto.FLOAT),
                                              graph.const("axis", np.array([1]))], keepdims=0))
    total = counts[0] if len(counts) == 1 else graph.add("Sum", counts)
    return graph.add("Greater", [total, graph.const("zero", np.array(0.0, np.float32))], hint="refused")


def _leaky_relu(graph: Graph, z: str, dtype) -> str:
    """max(z, alpha z): alpha < 1 picks z above 0, alpha z below."""
    return graph.add("Max", [z, graph.add("Mul", [z, graph.const("alpha", np.array(0.01, dtype))])])


def _elu(graph: Graph, z: str, dtype) -> str:
    """z above 0, e^z - 1 below (e^min(z, 0): the exponential never overflows)."""
    zero, one = graph.const("zero", np.array(0.0, dtype)), graph.const("one", np.array(1.0, dtype))
    below = graph.add("Sub", [graph.add("Exp", [graph.add("Min", [z, zero])]), one])
    return graph.add("Where", [graph.add("Less", [z, zero]), below, z])


def _softplus(graph: Graph, z: str, dtype) -> str:
    """log(1 + e^z) = max(z, 0) + log(1 + e^-|z|), stable for any z."""
    zero, one = graph.const("zero", np.array(0.0, dtype)), graph.const("one", np.array(1.0, dtype))
    tail = graph.add("Log", [graph.add("Add", [one, graph.add("Exp", [graph.add("Neg", [graph.add("Abs", [z])])])])])
    return graph.add("Add", [graph.add("Max", [z, zero]), tail])


def _mish(graph: Graph, z: str, dtype) -> str:
    """z tanh(softplus(z)), softplus composed as above (ONNX Runtime's Mish, made of its Softplus, has no double
    kernel either)."""
    return graph.add("Mul", [z, graph.add("Tanh", [_softplus(graph, z, dtype)])])


COMPOSED = {"leaky_relu": _leaky_relu, "elu": _elu, "softplus": _softplus, "mish": _mish}


def _tensor_type(net_or_dtype) -> int:
    dtype = getattr(net_or_dtype, "dtype", net_or_dtype)
    return TensorProto.DOUBLE if dtype == np.float64 else TensorProto.FLOAT


def _inputs(net, graph: Graph) -> tuple[list, str, list]:
    """The graph inputs, the name of a^0 (m, n_0) and those of the matrices ``valid`` also checks (see
    ``_scaled``): the table's columns encoded and scaled in double, then cast to the network's dtype, as predict
    does; an array model's X (network dtype) scaled."""
    encoder = net.pipeline.table
    if encoder is None:
        x = graph.add("Identity", ["X"], hint="X")
        first = net.pipeline.stages[0] if net.pipeline.stages else None  # the raw width: before any widening
        width = first.n_in if isinstance(first, PiecewiseLinear) else len(first.shift) if first is not None else \
            net.layers[0].n_in
        return [helper.make_tensor_value_info("X", _tensor_type(net), [None, width])], \
            *_scaled(net, graph, x, net.dtype)
    inputs, encoded = onnx_table.inputs(encoder, graph)
    a0, checked = _scaled(net, graph, encoded, np.float64)
    return inputs, graph.add("Cast", [a0], hint="a0", to=_tensor_type(net)), checked


def _scaled(net, graph: Graph, x: str, dtype) -> tuple[str, list]:
    """The model's stages after the table's (the same stages, in the same order, as ``net.predict``), and the
    matrices a piecewise-linear stage took: predict refuses a row where one is not finite (an input that
    overflows the scaling), which the stage's clip would hide from the check of a^0."""
    checked = []
    for scaler in net.pipeline.stages[1 if net.pipeline.table is not None else 0:]:
        if isinstance(scaler, PiecewiseLinear):
            checked.append(x)
            x = _piecewise(graph, x, scaler, dtype)
            continue
        shift = graph.const("shift", np.asarray(scaler.shift, dtype=dtype))
        x = graph.add("Div", [graph.add("Sub", [x, shift]), graph.const("scale", np.asarray(scaler.scale, dtype))],
                      hint="scaled")
        if isinstance(scaler, RobustScaler) and scaler.fitted_clip().any():
            x = _smooth_clip(graph, x, scaler, dtype)
    return x, checked


def _piecewise(graph: Graph, x: str, stage: PiecewiseLinear, dtype) -> str:
    """The piecewise-linear encoding as data/piecewise.py computes it: each output column gathers its input, then
    (x - low) / span held within [lo, hi] ([0, 1] for a bin, (-inf, inf) for an input passed as it is)."""
    source, low, span, lo, hi = stage.ops()
    gathered = graph.add("Gather", [x, graph.const("source", source)], hint="bins_of", axis=1)
    ramp = graph.add("Div", [graph.add("Sub", [gathered, graph.const("low", low.astype(dtype))]),
                             graph.const("span", span.astype(dtype))], hint="ramp")
    return graph.add("Min", [graph.add("Max", [ramp, graph.const("lo", lo.astype(dtype))]),
                             graph.const("hi", hi.astype(dtype))], hint="piecewise")


def _smooth_clip(graph: Graph, x: str, scaler, dtype) -> str:
    """The robust stage's clip on its clipped columns (Where picks them): B t / sqrt(1 + t^2), t = x / B, with t
    first held within +-1e8 so that t^2 never overflows (past 1e8 the quotient is +-1 in float64 already)."""
    bound = graph.const("bound", np.array(scaler.bound, dtype))
    t = graph.add("Clip", [graph.add("Div", [x, bound]), graph.const("low", np.array(-1e8, dtype)),
                           graph.const("high", np.array(1e8, dtype))])
    root = graph.add("Sqrt", [graph.add("Add", [graph.const("one", np.array(1.0, dtype)), graph.add("Mul", [t, t])])])
    clipped = graph.add("Mul", [graph.add("Div", [t, root]), bound])
    return graph.add("Where", [graph.const("clip", scaler.clip.reshape(1, -1)), clipped, x], hint="clipped")


def _heads(net, graph: Graph, network: tuple, names: dict) -> list:
    """The outputs: label and probabilities for a classifier, variable for a regressor (NaN where not valid;
    ``network``: the names of z^L, a^L and the valid flag)."""
    z_L, a_L, valid = network
    valid = graph.add("Unsqueeze", [valid, graph.const("axis", np.array([1]))])
    if not net.is_classifier:
        variable, dtype = a_L, net.dtype
        target = net.pipeline.target
        if target is not None:  # in double, as predict
            dtype = np.dtype(np.float64)
            scale = graph.const("target_scale", np.asarray(target.scale, dtype=dtype))
            shift = graph.const("target_shift", np.asarray(target.shift, dtype=dtype))
            variable = graph.add("Add", [graph.add("Mul", [graph.add("Cast", [a_L], to=TensorProto.DOUBLE), scale]),
                                         shift])
        _masked(graph, variable, valid, dtype, names["variable"])
        return [helper.make_tensor_value_info(names["variable"], _tensor_type(dtype), [None, net.layers[-1].n_out])]
    probabilities = a_L
    if net.layers[-1].n_out == 1:  # one sigmoid output: the columns [1 - p, p]
        one = graph.const("one", np.ones((1, 1), dtype=net.dtype))
        probabilities = graph.add("Concat", [graph.add("Sub", [one, a_L]), a_L], axis=1)
    softmax = net.layers[-1].activation.name == "softmax"  # predict's argmax is over z^L then
    index = graph.add("ArgMax", [z_L if softmax else probabilities], hint="index", axis=1, keepdims=0)
    _masked(graph, probabilities, valid, net.dtype, names["probabilities"])
    classes = net.classes if net.classes is not None else np.arange(max(net.layers[-1].n_out, 2))
    text = classes.dtype.kind in "USO"
    values = classes.astype(str).astype(object) if text else classes.astype(np.int64)
    graph.add("Gather", [graph.const("classes", values), index], output=names["label"], axis=0)
    return [helper.make_tensor_value_info(names["label"], TensorProto.STRING if text else TensorProto.INT64, [None]),
            helper.make_tensor_value_info(names["probabilities"], _tensor_type(net.dtype), [None, len(classes)])]


def _masked(graph: Graph, x: str, valid: str, dtype, output: str) -> str:
    """x where the row is valid, NaN elsewhere, as the graph output ``output``."""
    return graph.add("Where", [valid, x, graph.const("nan", np.array(np.nan, dtype))], output=output)


def _metadata(net, model, opset: int, names: dict) -> None:
    config = json.dumps(net.config())
    piecewise = net.pipeline.piecewise  # an array model's raw inputs are named before it widens them
    inputs = net.pipeline.columns or (piecewise.names if piecewise is not None else net.pipeline.feature_names)
    props = {"deltaprop_version": __version__, "opset": str(opset),
             "source_sha256": checksum(config, named_tensors(net, include_optimizer=False)),
             "classes": json.dumps(None if net.classes is None else net.classes.tolist()),
             "inputs": json.dumps(inputs), "feature_names": json.dumps(net.pipeline.feature_names),
             "outputs": json.dumps(names)}
    helper.set_model_props(model, props)
