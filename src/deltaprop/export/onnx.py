"""A trained network as an ONNX graph, its preprocessing included, for ONNX Runtime and its peers.

The graph does what ``deltaprop predict`` does: a table model takes one input per original column
(strings for categories, an empty string where one is missing; floats for numbers, NaN where one is
missing), imputes the training median with its was-missing indicator and one-hot encodes categories
(one never seen in training: all zeros); then the saved feature scaling; then per layer
``z^l = a^{l-1} W^l + b^l`` (MatMul, Add) and ``a^l = sigma(z^l)``; then, for a classifier,
``probabilities`` (one column per class, in ``classes`` order) and ``label`` (the original labels),
or for a regressor ``variable`` in the target's units. Built with the onnx package's helper API and
checked with ``onnx.checker`` (full check).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..data.robust import RobustScaler
from ..errors import ConfigError
from ..io import atomic_write, checksum, named_tensors
from ..layers import Dense
from ..version import __version__

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError:  # the extra is missing: to_onnx says so when it is called
    onnx = None

OPSET = 19  # Equal on strings, Softmax over the last axis
ACTIVATIONS = {"sigmoid": ("Sigmoid", {}), "tanh": ("Tanh", {}), "relu": ("Relu", {}),
               "leaky_relu": ("LeakyRelu", {"alpha": 0.01}), "elu": ("Elu", {"alpha": 1.0}),
               "softplus": ("Softplus", {}), "identity": ("Identity", {}), "softmax": ("Softmax", {"axis": -1})}


class Graph:
    """The nodes and constants of a graph under construction; ``add`` returns the output's name."""

    def __init__(self, prefix: str = ""):
        self.nodes, self.constants, self.prefix, self.count = [], [], prefix, 0

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


def to_onnx(net, path=None, opset: int = OPSET):
    """The ONNX model of ``net`` (an onnx.ModelProto), written atomically to ``path`` if given."""
    if onnx is None:
        raise ConfigError('ONNX export needs the onnx package: pip install "deltaprop[onnx]"')
    graph = Graph()
    inputs, x = _inputs(net, graph)
    x = _scaled(net, graph, x)
    outputs = _heads(net, graph, network_graph(net, graph, x))
    model = helper.make_model(
        helper.make_graph(graph.nodes, "deltaprop", inputs, outputs, graph.constants),
        opset_imports=[helper.make_opsetid("", opset)], producer_name="deltaprop")
    _metadata(net, model, opset)
    onnx.checker.check_model(model, full_check=True)
    if path is not None:

        atomic_write(Path(path), model.SerializeToString())
    return model


def network_graph(net, graph: Graph, x: str) -> str:
    """Layers 1..L on input ``x`` (network dtype): MatMul, Add, sigma per layer; returns a^L's name."""
    a = x
    for l, layer in enumerate(net.layers, start=1):
        name = layer.activation.name
        if type(layer) is not Dense:
            raise ConfigError(f"layer {l} is a {type(layer).__name__}; ONNX export knows Dense layers only")
        if name not in ACTIVATIONS:
            raise ConfigError(f"layer {l}'s activation {name!r} has no ONNX form; only the built-in "
                              f"activations export ({', '.join(ACTIVATIONS)})")
        z = graph.add("Add", [graph.add("MatMul", [a, graph.const(f"W{l}", layer.W)]), graph.const(f"b{l}", layer.b)],
                      hint=f"z{l}")
        if net.dtype == np.float64 and name in COMPOSED:  # ONNX Runtime has no double kernel for these
            a = COMPOSED[name](graph, z, net.dtype)
        else:
            op, attrs = ACTIVATIONS[name]
            a = graph.add(op, [z], hint=f"a{l}", **attrs)
    return a


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


COMPOSED = {"leaky_relu": _leaky_relu, "elu": _elu, "softplus": _softplus}


def _tensor_type(net) -> int:
    return TensorProto.DOUBLE if net.dtype == np.float64 else TensorProto.FLOAT


def _inputs(net, graph: Graph) -> tuple[list, str]:
    """The graph inputs and the name of the (m, n_0) feature matrix built from them."""
    encoder = net.pipeline.table
    if encoder is None:
        return [helper.make_tensor_value_info("X", _tensor_type(net), [None, net.layers[0].n_in])], "X"
    inputs, blocks = [], []
    for column in encoder.columns:
        text = column.kind == "categorical"
        inputs.append(helper.make_tensor_value_info(column.name, TensorProto.STRING if text else TensorProto.DOUBLE,
                                                    [None, 1]))
        blocks += _one_hot(graph, column) if text else _imputed(graph, column)
    X = graph.add("Concat", blocks, hint="encoded", axis=1)
    return inputs, graph.add("Cast", [X], hint="X", to=_tensor_type(net))


def _imputed(graph: Graph, column) -> list[str]:
    """A number column (m, 1): NaN replaced by the training median, then its was-missing 0/1 column."""
    absent = graph.add("IsNaN", [column.name], hint=f"{column.name}_absent")
    filled = graph.add("Where", [absent, graph.const("median", np.array([[column.median]])), column.name])
    if not column.indicator:
        return [filled]
    return [filled, graph.add("Cast", [absent], hint=f"{column.name}_indicator", to=TensorProto.DOUBLE)]


def _one_hot(graph: Graph, column) -> list[str]:
    """A category column (m, 1) of strings: one 0/1 column per training category (Equal broadcasts over
    the row of categories); "" (missing) to the missing level when there is one; anything else all zeros."""
    levels = list(column.categories) + ([""] if column.missing_level else [])
    hits = graph.add("Equal", [column.name, graph.const("categories", np.array([levels], dtype=object))])
    return [graph.add("Cast", [hits], hint=f"{column.name}_onehot", to=TensorProto.DOUBLE)]


def _scaled(net, graph: Graph, x: str) -> str:
    """The model's scaling stages after the table's (the same stages, in the same order, as ``net.predict``)."""
    dtype = net.dtype
    for scaler in net.pipeline.stages[1 if net.pipeline.table is not None else 0:]:
        shift = graph.const("shift", np.asarray(scaler.shift, dtype=dtype))
        x = graph.add("Div", [graph.add("Sub", [x, shift]), graph.const("scale", np.asarray(scaler.scale, dtype))],
                      hint="scaled")
        if isinstance(scaler, RobustScaler) and scaler.clip.any():
            x = _smooth_clip(graph, x, scaler, dtype)
    return x


def _smooth_clip(graph: Graph, x: str, scaler, dtype) -> str:
    """The robust stage's clip on its clipped columns (Where picks them): B t / sqrt(1 + t^2), t = x / B, with t
    first held within +-1e8 so that t^2 never overflows (past 1e8 the quotient is +-1 in float64 already)."""
    bound = graph.const("bound", np.array(scaler.bound, dtype))
    t = graph.add("Clip", [graph.add("Div", [x, bound]), graph.const("low", np.array(-1e8, dtype)),
                           graph.const("high", np.array(1e8, dtype))])
    root = graph.add("Sqrt", [graph.add("Add", [graph.const("one", np.array(1.0, dtype)), graph.add("Mul", [t, t])])])
    clipped = graph.add("Mul", [graph.add("Div", [t, root]), bound])
    return graph.add("Where", [graph.const("clip", scaler.clip.reshape(1, -1)), clipped, x], hint="clipped")


def _heads(net, graph: Graph, a_L: str) -> list:
    """The outputs: label and probabilities for a classifier, variable for a regressor."""
    m, dtype = None, _tensor_type(net)
    if not net.is_classifier:
        variable = a_L
        target = net.pipeline.target
        if target is not None:
            scale = graph.const("target_scale", np.asarray(target.scale, dtype=net.dtype))
            shift = graph.const("target_shift", np.asarray(target.shift, dtype=net.dtype))
            variable = graph.add("Add", [graph.add("Mul", [a_L, scale]), shift])
        graph.add("Identity", [variable], output="variable")
        return [helper.make_tensor_value_info("variable", dtype, [m, net.layers[-1].n_out])]
    probabilities = a_L
    if net.layers[-1].n_out == 1:  # one sigmoid output: the columns [1 - p, p]
        one = graph.const("one", np.ones((1, 1), dtype=net.dtype))
        probabilities = graph.add("Concat", [graph.add("Sub", [one, a_L]), a_L], axis=1)
    graph.add("Identity", [probabilities], output="probabilities")
    index = graph.add("ArgMax", ["probabilities"], hint="index", axis=1, keepdims=0)
    classes = net.classes if net.classes is not None else np.arange(max(net.layers[-1].n_out, 2))
    text = classes.dtype.kind in "US"
    values = classes.astype(object) if text else classes.astype(np.int64)
    graph.add("Gather", [graph.const("classes", values), index], output="label", axis=0)
    n = len(classes)
    return [helper.make_tensor_value_info("label", TensorProto.STRING if text else TensorProto.INT64, [m]),
            helper.make_tensor_value_info("probabilities", dtype, [m, n])]


def _metadata(net, model, opset: int) -> None:

    config = json.dumps(net.config())
    inputs = net.pipeline.columns or net.pipeline.feature_names
    props = {"deltaprop_version": __version__, "opset": str(opset),
             "source_sha256": checksum(config, named_tensors(net, include_optimizer=False)),
             "classes": json.dumps(None if net.classes is None else net.classes.tolist()),
             "inputs": json.dumps(inputs), "feature_names": json.dumps(net.pipeline.feature_names)}
    helper.set_model_props(model, props)
