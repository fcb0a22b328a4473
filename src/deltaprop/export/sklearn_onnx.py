"""skl2onnx converters for DeltaClassifier and DeltaRegressor, so a scikit-learn Pipeline ending in one
exports with ``skl2onnx.to_onnx(pipeline, X[:1])``. Call ``register()`` once first."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto
from skl2onnx import update_registered_converter
from skl2onnx.common.data_types import FloatTensorType, guess_proto_type
from skl2onnx.common.shape_calculator import (
    calculate_linear_classifier_output_shapes,
    calculate_linear_regressor_output_shapes,
)

from ..estimators import DeltaClassifier, DeltaRegressor
from .onnx import Graph, network_graph


def register() -> None:
    """Tell skl2onnx how to convert the two estimators (the network's layers, as ``to_onnx`` writes them)."""
    update_registered_converter(DeltaClassifier, "DeltapropDeltaClassifier", _classifier_shapes, _convert_classifier,
                                options={"zipmap": [True, False, "columns"], "nocl": [True, False]})
    update_registered_converter(DeltaRegressor, "DeltapropDeltaRegressor", calculate_linear_regressor_output_shapes,
                                _convert_regressor)


def _classifier_shapes(operator) -> None:
    """label and probabilities as for scikit-learn's classifiers; probabilities in float (skl2onnx's ZipMap,
    added after a classifier by default, takes no double)."""
    calculate_linear_classifier_output_shapes(operator)
    operator.outputs[1].type = FloatTensorType(operator.outputs[1].type.shape)


def _network(scope, operator, container) -> tuple[Graph, str, int]:
    """The network's nodes on the operator's input, cast to the network's dtype; returns (graph, a^L,
    the input's ONNX type, which the outputs are cast back to)."""
    net = operator.raw_operator.network_
    graph = Graph(prefix=scope.get_unique_variable_name("deltaprop") + "_")
    to = TensorProto.DOUBLE if net.dtype == np.float64 else TensorProto.FLOAT
    x = graph.add("Cast", [operator.inputs[0].full_name], to=to)
    return graph, network_graph(net, graph, x), guess_proto_type(operator.inputs[0].type)


def _emit(graph: Graph, container) -> None:
    container.nodes.extend(graph.nodes)
    container.initializers.extend(graph.constants)


def _convert_classifier(scope, operator, container) -> None:
    estimator = operator.raw_operator
    graph, a_L, _ = _network(scope, operator, container)
    label_out, proba_out = operator.outputs[0].full_name, operator.outputs[1].full_name
    graph.add("Cast", [a_L], output=proba_out, to=TensorProto.FLOAT)
    index = graph.add("ArgMax", [a_L], axis=1, keepdims=0)
    classes = estimator.classes_
    values = classes.astype(object) if classes.dtype.kind in "USO" else classes.astype(np.int64)
    graph.add("Gather", [graph.const("classes", values), index], output=label_out, axis=0)
    _emit(graph, container)


def _convert_regressor(scope, operator, container) -> None:
    graph, a_L, proto = _network(scope, operator, container)
    graph.add("Cast", [a_L], output=operator.outputs[0].full_name, to=proto)
    _emit(graph, container)
