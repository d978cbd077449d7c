"""skl2onnx converters for multilayer's scikit-learn estimators (`multilayer.sklearn`).

After `register()`, ``skl2onnx.to_onnx(pipeline, X[:1])`` converts a scikit-learn
``Pipeline`` (or any estimator graph skl2onnx knows) that contains an `MLPClassifier`,
`MLPRegressor`, `ModelClassifier` or `ModelRegressor`::

    from multilayer.export.sklearn_onnx import register
    register()
    onx = skl2onnx.to_onnx(pipeline, X[:1].astype(np.float32), options={"zipmap": False})

The estimator's network is converted by `multilayer.export.onnx` (the same converters as
``model.export``) and embedded in skl2onnx's graph: its input is cast to the network's float
type; a classifier's outputs are skl2onnx's ``label`` (``classes_[argmax]``) and
``probabilities`` (as ``predict_proba`` gives them: two columns for a one-sigmoid binary
network, rows renormalised for softmax); a regressor's output is ``variable``, shape
``(n, n_outputs)``. Multi-label classifiers are not converted (skl2onnx's classifier outputs
have no place for them): `ExportError`. The graph needs opset 18 or newer (``target_opset``).
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from multilayer.export.onnx import (
    DEFAULT_OPSET,
    FLOAT,
    ExportError,
    GraphBuilder,
    convert_graph,
    prepare,
)

__all__ = ["register"]

SKL2ONNX_HINT = "converting a pipeline needs skl2onnx: pip install skl2onnx"


def _target_opset(container: Any) -> int:
    opset = container.target_opset
    if isinstance(opset, dict):
        opset = opset.get("", DEFAULT_OPSET)
    if opset is None or int(opset) < DEFAULT_OPSET:
        raise ExportError(
            f"a multilayer estimator needs target_opset >= {DEFAULT_OPSET} in skl2onnx, got {opset}"
        )
    return int(opset)


def _embed(scope: Any, operator: Any, container: Any) -> tuple[str, Any]:
    """Add the estimator's network to ``container``; returns the name of its output and
    the ONNX element type of the network's floats."""
    onnx = importlib.import_module("onnx")
    helper = onnx.helper
    estimator = operator.raw_operator
    model = estimator.model_
    prepare(model)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ExportError(
            f"{type(estimator).__name__}: a network with one input and one output converts, "
            f"this one has {len(model.inputs)} and {len(model.outputs)}"
        )
    g = GraphBuilder(np.dtype(model.dtype), _target_opset(container))
    float_type = g.elem_type(FLOAT)
    source = operator.inputs[0].full_name
    network_input = g.name("input")
    g.kinds[network_input] = FLOAT
    (result,) = convert_graph(g, model, [network_input])
    prefix = scope.get_unique_variable_name(f"{model.name}_")
    names = {network_input: scope.get_unique_variable_name(f"{prefix}input")}

    def rename(name: str) -> str:
        if name not in names:
            names[name] = scope.get_unique_variable_name(f"{prefix}{name}")
        return names[name]

    container.add_node(
        "Cast", [source], [names[network_input]], name=scope.get_unique_operator_name("Cast"),
        to=float_type,
    )  # fmt: skip
    for tensor in g.initializers:
        container.add_initializer(rename(tensor.name), tensor.data_type, list(tensor.dims), tensor)
    for node in g.nodes:
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        container.add_node(
            node.op_type,
            [rename(i) for i in node.input],
            [rename(o) for o in node.output],
            op_domain=node.domain or "",
            name=scope.get_unique_operator_name(node.op_type),
            **attributes,
        )
    return rename(result), float_type


def _convert_classifier(scope: Any, operator: Any, container: Any) -> None:
    estimator = operator.raw_operator
    if getattr(estimator, "multilabel_", False):
        raise ExportError(
            f"{type(estimator).__name__} fitted on a multi-label indicator matrix cannot be "
            "converted: skl2onnx's classifier outputs are one label per sample"
        )
    scores, float_type = _embed(scope, operator, container)
    name = scope.get_unique_variable_name
    op = scope.get_unique_operator_name
    label, probabilities = operator.outputs[0].full_name, operator.outputs[1].full_name
    units = estimator.model_.outputs[0].sample_shape[-1]
    if units == 1:  # one sigmoid unit: [1 - p, p]
        one = name("one")
        container.add_initializer(one, float_type, [], [1.0])
        negative = name("negative")
        container.add_node("Sub", [one, scores], [negative], name=op("Sub"))
        proba = name("proba")
        container.add_node("Concat", [negative, scores], [proba], name=op("Concat"), axis=1)
    else:  # rows renormalised, as predict_proba does
        axes, total, proba = name("axes"), name("total"), name("proba")
        container.add_initializer(axes, onnx_int64(), [1], [1])
        container.add_node("ReduceSum", [scores, axes], [total], name=op("ReduceSum"), keepdims=1)
        container.add_node("Div", [scores, total], [proba], name=op("Div"))
    out_type = operator.outputs[1].type.to_onnx_type().tensor_type.elem_type
    container.add_node("Cast", [proba], [probabilities], name=op("Cast"), to=out_type)
    index = name("index")
    container.add_node("ArgMax", [proba], [index], name=op("ArgMax"), axis=1, keepdims=0)
    classes = np.asarray(estimator.classes_)
    table = name("classes")
    if classes.dtype.kind in "iub":
        container.add_initializer(table, onnx_int64(), [len(classes)], classes.astype(np.int64))
    else:
        strings = [str(c).encode("utf-8") for c in classes.tolist()]
        container.add_initializer(table, onnx_string(), [len(classes)], strings)
    container.add_node("Gather", [table, index], [label], name=op("Gather"), axis=0)


def _convert_regressor(scope: Any, operator: Any, container: Any) -> None:
    result, _ = _embed(scope, operator, container)
    out_type = operator.outputs[0].type.to_onnx_type().tensor_type.elem_type
    container.add_node(
        "Cast", [result], [operator.outputs[0].full_name],
        name=scope.get_unique_operator_name("Cast"), to=out_type,
    )  # fmt: skip


def onnx_int64() -> int:
    return int(importlib.import_module("onnx").TensorProto.INT64)


def onnx_string() -> int:
    return int(importlib.import_module("onnx").TensorProto.STRING)


def register() -> None:
    """Register the converters of multilayer's estimators with skl2onnx (idempotent).

    Raises:
        ImportError: skl2onnx or scikit-learn is missing.
    """
    try:
        skl2onnx = importlib.import_module("skl2onnx")
        shapes = importlib.import_module("skl2onnx.common.shape_calculator")
    except ImportError:
        raise ImportError(SKL2ONNX_HINT) from None
    from multilayer.sklearn import MLPClassifier, MLPRegressor, ModelClassifier, ModelRegressor

    for cls in (MLPClassifier, ModelClassifier):
        skl2onnx.update_registered_converter(
            cls,
            f"Multilayer{cls.__name__}",
            shapes.calculate_linear_classifier_output_shapes,
            _convert_classifier,
            options={"zipmap": [True, False, "columns"], "nocl": [True, False]},
        )
    for regressor in (MLPRegressor, ModelRegressor):
        skl2onnx.update_registered_converter(
            regressor,
            f"Multilayer{regressor.__name__}",
            shapes.calculate_linear_regressor_output_shapes,
            _convert_regressor,
        )
