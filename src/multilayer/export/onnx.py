"""ONNX export: a multilayer model as an ONNX graph that onnxruntime (or any ONNX runtime) runs.

    model.export("model.onnx")                 # Keras 3's name; the format comes from ".onnx"
    mlp export runs/mnist-fast -o model.onnx   # the same from the command line

The graph is built with the ``onnx`` package's helpers (the ``onnx`` extra), one converter per
layer class in `CONVERTERS` (layer class -> function); the layer classes know nothing of ONNX.
Every export is checked with ``onnx.checker.check_model(full_check=True)`` before it is written.

What the file contains:

* inputs: ``input`` for a one-input model, else one per model input, named as the model names
  them (``model.input_names``: the dict keys or the ``Input(name=...)`` names). Each has a
  dynamic batch axis (``batch``) and the sample shape; its type is the model's float type
  (float32 by default), or ``string`` for an input read directly by a `StringLookup`.
  Integer ids (for lookups, CategoryEncoding or Embedding) are given as floats holding whole
  numbers, as ``model.predict`` takes them; a NaN is a missing value where ``predict``
  takes one (RobustScaling, IntegerLookup). A string tensor cannot hold None: a missing
  string is given as the lookup's ``oov_token``, which gets the same OOV index.
* outputs: for a one-output classifier (a softmax output, or one sigmoid unit)
  ``probabilities`` and ``label`` (int64, the argmax, or ``p > 0.5`` for one sigmoid unit);
  for another one-output model ``output``; for several outputs, each under the model's output
  name, plus ``{name}_label`` for each classifier output.
* metadata: ``multilayer.input_scale`` (the pixel scale the model takes, as JSON) when the
  model records one, and ``multilayer.version``.

Inference only: Dropout and the noise layers are identities, BatchNormalization uses its
moving statistics, exactly as ``model.predict``.

Where ONNX cannot reproduce multilayer's checks, the exported model does not raise: an id
outside ``[0, depth)`` given to a one-hot, multi-hot or count encoding gives an all-zero row
(multilayer raises ValueError), and a value missing from a lookup's vocabulary with
``num_oov_indices=0`` gets the index ``vocabulary_size()``, one past the last (multilayer
raises), which an Embedding after it rejects (onnxruntime's Gather fails on it).

``keras.ops`` calls in a model (OpLayer) convert for the element-wise functions of one
tensor, arithmetic between tensors and numbers, softmax / log_softmax and the reductions over
sample axes (`_op_layer`). Layers with no ONNX form raise `ExportError` naming them: Hashing
(FarmHash Fingerprint64 is not an ONNX operator), the other ``keras.ops`` calls, and any
layer class not in `CONVERTERS` (subclasses of the built-in layers included: their
``forward`` may differ).
"""

from __future__ import annotations

import importlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from multilayer._version import __version__
from multilayer.engine import activations
from multilayer.engine.layers import (
    ELU,
    Activation,
    ActivityRegularization,
    Add,
    AlphaDropout,
    Average,
    BatchNormalization,
    CategoryEncoding,
    Concatenate,
    Dense,
    Discretization,
    Dot,
    Dropout,
    Embedding,
    Flatten,
    GaussianDropout,
    GaussianNoise,
    Hashing,
    Identity,
    InputLayer,
    IntegerLookup,
    Layer,
    LayerNormalization,
    LeakyReLU,
    Maximum,
    Minimum,
    Multiply,
    Normalization,
    OpLayer,
    PReLU,
    ReLU,
    Rescaling,
    Reshape,
    RobustScaling,
    Softmax,
    StringLookup,
    Subtract,
)
from multilayer.engine.layers.activation_layers import sample_axes
from multilayer.engine.layers.normalization import EPSILON
from multilayer.engine.layers.symbolic import KerasTensor, Node
from multilayer.errors import MultilayerError

__all__ = [
    "CONVERTERS",
    "DEFAULT_OPSET",
    "ExportError",
    "converter_for",
    "export_model",
    "supported_layers",
    "to_onnx",
]

#: The ONNX opset (``ai.onnx`` domain) of exported models, unless ``opset_version`` says
#: otherwise: opset 18 (ONNX 1.13, onnxruntime >= 1.14) has every operator used here.
DEFAULT_OPSET = 18
#: The ``ai.onnx.ml`` opset (LabelEncoder with int64 and string keys).
ML_OPSET = 3
ML_DOMAIN = "ai.onnx.ml"
ONNX_HINT = "ONNX export needs the onnx package: pip install 'multilayer[onnx]'"
#: What `export_model` accepts as ``format`` (Keras 3 also knows these other names).
KERAS_FORMATS = ("tf_saved_model", "openvino", "litert")


class ExportError(MultilayerError, ValueError):
    """The model cannot be exported: a layer with no ONNX form, or a bad argument."""


def _onnx() -> Any:
    try:
        return importlib.import_module("onnx")
    except ImportError:
        raise ImportError(ONNX_HINT) from None


# -- the graph being built ------------------------------------------------------------------
#: kinds of values: the model's float type, int64, string, float64 (Discretization's
#: comparisons) and bool (comparisons)
FLOAT, INT64, STRING, DOUBLE, BOOL = "float", "int64", "string", "double", "bool"


class GraphBuilder:
    """The nodes, constants and value kinds of the ONNX graph being written.

    Converters add nodes with `op` and constants with `const`; every name is unique.
    """

    def __init__(self, dtype: np.dtype, opset: int) -> None:
        self.onnx = _onnx()
        self.dtype = np.dtype(dtype)
        self.opset = opset
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.kinds: dict[str, str] = {}
        self._used: set[str] = set()

    def name(self, hint: str) -> str:
        base = "".join(c if c.isalnum() or c in "_./-" else "_" for c in hint) or "v"
        name, i = base, 1
        while name in self._used:
            name, i = f"{base}_{i}", i + 1
        self._used.add(name)
        return name

    def elem_type(self, kind: str) -> int:
        tp = self.onnx.TensorProto
        if kind == FLOAT:
            return int(tp.DOUBLE if self.dtype == np.float64 else tp.FLOAT)
        return int({INT64: tp.INT64, STRING: tp.STRING, DOUBLE: tp.DOUBLE, BOOL: tp.BOOL}[kind])

    def const(self, hint: str, value: Any, kind: str = FLOAT) -> str:
        """A constant tensor (an initializer) of ``kind``."""
        dtypes = {FLOAT: self.dtype, INT64: np.dtype(np.int64), DOUBLE: np.dtype(np.float64)}
        name = self.name(hint)
        array = np.asarray(value, dtype=dtypes[kind])
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        self.kinds[name] = kind
        return name

    def op(
        self,
        op_type: str,
        inputs: Sequence[str],
        hint: str,
        kind: str = FLOAT,
        domain: str = "",
        **attributes: Any,
    ) -> str:
        """One node with one output (of ``kind``); returns the output's name."""
        out = self.name(hint)
        self.nodes.append(
            self.onnx.helper.make_node(
                op_type,
                list(inputs),
                [out],
                name=self.name(f"{hint}/{op_type}"),
                domain=domain or None,
                **attributes,
            )  # fmt: skip
        )
        self.kinds[out] = kind
        return out

    def to_float(self, x: str, hint: str) -> str:
        if self.kinds[x] == FLOAT:
            return x
        return self.op("Cast", [x], f"{hint}/to_float", to=self.elem_type(FLOAT))

    def to_int64(self, x: str, hint: str) -> str:
        if self.kinds[x] == INT64:
            return x
        return self.op("Cast", [x], f"{hint}/to_int64", kind=INT64, to=self.elem_type(INT64))

    def axes(self, hint: str, axes: Sequence[int]) -> str:
        return self.const(f"{hint}/axes", list(axes), INT64)


Converter = Callable[[GraphBuilder, Any, Any], str]


def _in_shape(layer: Layer) -> tuple[int, ...]:
    """The sample shape a built one-input layer takes."""
    return tuple(cast(tuple[int, ...], layer.input_shape))


def _out_shape(layer: Layer) -> tuple[int, ...]:
    return tuple(cast(tuple[int, ...], layer.output_shape))


def _in_shapes(layer: Layer) -> list[tuple[int, ...]]:
    """The sample shape of each input of a built merge layer."""
    return [tuple(shape) for shape in cast(list[tuple[int, ...]], layer.input_shape)]


# -- activations ------------------------------------------------------------------------------
def _activation(g: GraphBuilder, activation: activations.Activation, x: str, hint: str) -> str:
    name = activation.name
    x = g.to_float(x, hint)
    if name == "linear":
        return x
    if name == "relu":
        return g.op("Relu", [x], hint)
    if name == "sigmoid":
        return g.op("Sigmoid", [x], hint)
    if name == "tanh":
        return g.op("Tanh", [x], hint)
    if name == "softmax":
        return g.op("Softmax", [x], hint, axis=-1)
    if isinstance(activation, activations.LeakyReLU):
        # max(z, a*z), as multilayer computes it (equal to LeakyRelu for 0 <= a <= 1)
        scaled = g.op("Mul", [x, g.const(f"{hint}/slope", activation.negative_slope)], hint)
        return g.op("Max", [x, scaled], hint)
    if isinstance(activation, activations.ELU):
        return g.op("Elu", [x], hint, alpha=float(activation.alpha))
    if isinstance(activation, activations.Softplus):
        # max(z, 0) + log1p(exp(-|z|)): stable for large |z|, as multilayer computes it
        positive = g.op("Relu", [x], hint)
        decay = g.op("Exp", [g.op("Neg", [g.op("Abs", [x], hint)], hint)], hint)
        log = g.op("Log", [g.op("Add", [decay, g.const(f"{hint}/one", 1.0)], hint)], hint)
        return g.op("Add", [positive, log], hint)
    if isinstance(activation, activations.GELU):
        half = g.const(f"{hint}/half", 0.5)
        one = g.const(f"{hint}/one", 1.0)
        if activation.approximate:
            cube = g.op("Mul", [g.op("Mul", [x, x], hint), x], hint)
            inner = g.op(
                "Add", [x, g.op("Mul", [cube, g.const(f"{hint}/c", 0.044715)], hint)], hint
            )
            inner = g.op("Mul", [inner, g.const(f"{hint}/k", math.sqrt(2.0 / math.pi))], hint)
            cdf = g.op("Add", [one, g.op("Tanh", [inner], hint)], hint)
        else:
            scaled = g.op("Div", [x, g.const(f"{hint}/sqrt2", math.sqrt(2.0))], hint)
            cdf = g.op("Add", [one, g.op("Erf", [scaled], hint)], hint)
        return g.op("Mul", [x, g.op("Mul", [half, cdf], hint)], hint)
    raise ExportError(f"activation {name!r} ({type(activation).__name__}) has no ONNX form")


# -- layer converters ---------------------------------------------------------------------------
def _dense(g: GraphBuilder, layer: Dense, x: str) -> str:
    x = g.to_float(x, layer.name)
    kernel = g.const(f"{layer.name}/kernel", layer.weights["kernel"])
    inputs = [x, kernel]
    if layer.use_bias:
        inputs.append(g.const(f"{layer.name}/bias", layer.weights["bias"]))
    z = g.op("Gemm", inputs, f"{layer.name}/z")
    return _activation(g, layer.activation, z, layer.name)


def _activation_layer(g: GraphBuilder, layer: Activation, x: str) -> str:
    return _activation(g, layer.activation, x, layer.name)


def _identity(g: GraphBuilder, layer: Layer, x: str) -> str:
    return x


def _flatten(g: GraphBuilder, layer: Flatten, x: str) -> str:
    return g.op("Flatten", [x], layer.name, kind=g.kinds[x], axis=1)


def _reshape(g: GraphBuilder, layer: Reshape, x: str) -> str:
    shape = g.const(f"{layer.name}/shape", [0, *_out_shape(layer)], INT64)
    return g.op("Reshape", [x, shape], layer.name, kind=g.kinds[x])


def _rescaling(g: GraphBuilder, layer: Rescaling, x: str) -> str:
    y = g.op(
        "Mul", [g.to_float(x, layer.name), g.const(f"{layer.name}/scale", layer.scale)], layer.name
    )
    if layer.offset:
        y = g.op("Add", [y, g.const(f"{layer.name}/offset", layer.offset)], layer.name)
    return y


def _softmax(g: GraphBuilder, layer: Softmax, x: str) -> str:
    x = g.to_float(x, layer.name)
    axes = sample_axes(layer.axis, len(_in_shape(layer)), f"Softmax layer {layer.name!r}")
    if len(axes) == 1:
        return g.op("Softmax", [x], layer.name, axis=axes[0])
    # over several axes: exp(x - max) / sum, as multilayer computes it
    ax = g.axes(layer.name, axes)
    peak = g.op("ReduceMax", [x, ax], layer.name, keepdims=1)
    e = g.op("Exp", [g.op("Sub", [x, peak], layer.name)], layer.name)
    return g.op("Div", [e, g.op("ReduceSum", [e, ax], layer.name, keepdims=1)], layer.name)


def _relu(g: GraphBuilder, layer: ReLU, x: str) -> str:
    x = g.to_float(x, layer.name)
    if layer.max_value is None and not layer.negative_slope and not layer.threshold:
        return g.op("Relu", [x], layer.name)
    threshold = g.const(f"{layer.name}/threshold", layer.threshold)
    above = x
    if layer.max_value is not None:
        above = g.op("Min", [x, g.const(f"{layer.name}/max_value", layer.max_value)], layer.name)
    passing = g.op("Greater", [x, threshold], layer.name, kind=BOOL)
    y = g.op("Where", [passing, above, g.const(f"{layer.name}/zero", 0.0)], layer.name)
    if layer.negative_slope:
        below = g.op("Sub", [x, threshold], layer.name)
        below = g.op("Min", [below, g.const(f"{layer.name}/zero", 0.0)], layer.name)
        leak = g.op(
            "Mul", [below, g.const(f"{layer.name}/slope", layer.negative_slope)], layer.name
        )
        y = g.op("Add", [y, leak], layer.name)
    return y


def _leaky_relu(g: GraphBuilder, layer: LeakyReLU, x: str) -> str:
    return g.op("LeakyRelu", [g.to_float(x, layer.name)], layer.name, alpha=layer.negative_slope)


def _elu(g: GraphBuilder, layer: ELU, x: str) -> str:
    return g.op("Elu", [g.to_float(x, layer.name)], layer.name, alpha=layer.alpha)


def _prelu(g: GraphBuilder, layer: PReLU, x: str) -> str:
    alpha = g.const(f"{layer.name}/alpha", layer.weights["alpha"][None])
    return g.op("PRelu", [g.to_float(x, layer.name), alpha], layer.name)


def _broadcast(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    """``(1, *shape)`` with every axis not in ``axes`` set to 1."""
    full = (1, *shape)
    return tuple(full[a] if a in axes else 1 for a in range(len(full)))


def _batch_normalization(g: GraphBuilder, layer: BatchNormalization, x: str) -> str:
    name = layer.name
    x = g.to_float(x, name)
    axes = sample_axes(layer.axis, len(_in_shape(layer)), f"BatchNormalization layer {name!r}")
    shape = _broadcast(_in_shape(layer), axes)
    dtype = g.dtype
    mean = layer.weights["moving_mean"].reshape(shape)
    variance = layer.weights["moving_variance"].reshape(shape)
    inv_std = (1.0 / np.sqrt(variance + dtype.type(layer.epsilon))).astype(dtype)
    y = g.op("Sub", [x, g.const(f"{name}/moving_mean", mean)], name)
    y = g.op("Mul", [y, g.const(f"{name}/inv_std", inv_std)], name)
    return _gamma_beta(g, layer, y, shape)


def _gamma_beta(g: GraphBuilder, layer: Any, y: str, shape: tuple[int, ...]) -> str:
    if "gamma" in layer.weights:
        gamma = g.const(f"{layer.name}/gamma", layer.weights["gamma"].reshape(shape))
        y = g.op("Mul", [y, gamma], layer.name)
    if "beta" in layer.weights:
        beta = g.const(f"{layer.name}/beta", layer.weights["beta"].reshape(shape))
        y = g.op("Add", [y, beta], layer.name)
    return y


def _layer_normalization(g: GraphBuilder, layer: LayerNormalization, x: str) -> str:
    name = layer.name
    x = g.to_float(x, name)
    axes = sample_axes(layer.axis, len(_in_shape(layer)), f"LayerNormalization layer {name!r}")
    ax = g.axes(name, axes)
    centered = g.op("Sub", [x, g.op("ReduceMean", [x, ax], name, keepdims=1)], name)
    square = g.op("Mul", [centered, centered], name)
    variance = g.op("ReduceMean", [square, ax], name, keepdims=1)
    std = g.op(
        "Sqrt", [g.op("Add", [variance, g.const(f"{name}/epsilon", layer.epsilon)], name)], name
    )
    inv_std = g.op("Div", [g.const(f"{name}/one", 1.0), std], name)
    y = g.op("Mul", [centered, inv_std], name)
    return _gamma_beta(g, layer, y, _broadcast(_in_shape(layer), axes))


def _normalization(g: GraphBuilder, layer: Normalization, x: str) -> str:
    name = layer.name
    x = g.to_float(x, name)
    mean = np.asarray(layer.mean, dtype=g.dtype)
    std = np.maximum(np.sqrt(np.asarray(layer.variance, dtype=np.float64)), EPSILON)
    mean_c, std_c = g.const(f"{name}/mean", mean), g.const(f"{name}/std", std.astype(g.dtype))
    if layer.invert:
        return g.op("Add", [mean_c, g.op("Mul", [x, std_c], name)], name)
    return g.op("Div", [g.op("Sub", [x, mean_c], name), std_c], name)


def _embedding(g: GraphBuilder, layer: Embedding, x: str) -> str:
    indices = g.to_int64(x, layer.name)
    table = g.const(f"{layer.name}/embeddings", layer.weights["embeddings"])
    return g.op("Gather", [table, indices], layer.name, axis=0)


def _encode(
    g: GraphBuilder, indices: str, depth: int, mode: str, sample: tuple[int, ...], hint: str
) -> str:
    """One-hot, multi-hot or count encoding (as multilayer's preprocessing layers give it),
    with ids outside ``[0, depth)`` encoded as all zeros."""
    depth_c = g.const(f"{hint}/depth", depth, INT64)
    outside = g.op(
        "Or",
        [
            g.op("Less", [indices, g.const(f"{hint}/zero", 0, INT64)], hint, kind=BOOL),
            g.op("GreaterOrEqual", [indices, depth_c], hint, kind=BOOL),
        ],
        hint,
        kind=BOOL,
    )
    indices = g.op("Where", [outside, depth_c, indices], hint, kind=INT64)
    values = g.const(f"{hint}/values", [0.0, 1.0])
    if mode == "one_hot":
        if sample and sample[-1] == 1:
            indices = g.op("Squeeze", [indices, g.axes(hint, [-1])], hint, kind=INT64)
        return g.op("OneHot", [indices, depth_c, values], hint, axis=-1)
    if not sample:
        indices = g.op("Unsqueeze", [indices, g.axes(hint, [-1])], hint, kind=INT64)
    hot = g.op("OneHot", [indices, depth_c, values], hint, axis=-1)
    reduce = "ReduceMax" if mode == "multi_hot" else "ReduceSum"
    return g.op(reduce, [hot, g.axes(hint, [-2])], hint, keepdims=0)


def _category_encoding(g: GraphBuilder, layer: CategoryEncoding, x: str) -> str:
    indices = g.to_int64(x, layer.name)
    return _encode(g, indices, layer.num_tokens, layer.output_mode, _in_shape(layer), layer.name)


def _lookup(g: GraphBuilder, layer: IntegerLookup | StringLookup, x: str) -> str:
    name = layer.name
    if layer.vocabulary is None:
        raise ExportError(f"{layer.kind} layer {name!r} has no vocabulary: give one or adapt it")
    if isinstance(layer, StringLookup):
        if g.kinds[x] != STRING:
            raise ExportError(
                f"StringLookup layer {name!r} takes strings: in an ONNX export it must read a "
                "model input directly (which then becomes a string input)"
            )
        tokens, missing = x, None
    else:
        # a NaN is a missing value: the first OOV index (after the lookup, below)
        missing = g.op("IsNaN", [x], name, kind=BOOL) if g.kinds[x] == FLOAT else None
        if missing is not None:
            x = g.op("Where", [missing, g.const(f"{name}/zero", 0.0), x], name)
        tokens = g.to_int64(x, name)
    masked = layer.mask_token is not None
    offset = layer.num_oov_indices + masked
    keys = ([layer.mask_token] if masked else []) + list(layer.vocabulary)
    values = ([0] if masked else []) + [offset + i for i in range(len(layer.vocabulary))]
    if not keys:
        raise ExportError(f"{layer.kind} layer {name!r} has an empty vocabulary")
    key_attribute = "keys_strings" if isinstance(layer, StringLookup) else "keys_int64s"
    found = g.op(
        "LabelEncoder", [tokens], name, kind=INT64, domain=ML_DOMAIN,
        **{key_attribute: keys}, values_int64s=values, default_int64=-1,
    )  # fmt: skip
    if layer.num_oov_indices == 0:
        oov = g.const(f"{name}/unknown", layer.vocabulary_size(), INT64)
    elif isinstance(layer, IntegerLookup) and layer.num_oov_indices > 1:
        bucket = g.op(
            "Mod", [tokens, g.const(f"{name}/buckets", layer.num_oov_indices, INT64)], name,
            kind=INT64,
        )  # fmt: skip
        oov = g.op(
            "Add", [bucket, g.const(f"{name}/mask_offset", int(masked), INT64)], name, kind=INT64
        )
    else:
        oov = g.const(f"{name}/oov", int(masked), INT64)
    unknown = g.op("Less", [found, g.const(f"{name}/zero", 0, INT64)], name, kind=BOOL)
    indices = g.op("Where", [unknown, oov, found], name, kind=INT64)
    if missing is not None:
        first_oov = layer.vocabulary_size() if layer.num_oov_indices == 0 else int(masked)
        first = g.const(f"{name}/first_oov", first_oov, INT64)
        indices = g.op("Where", [missing, first, indices], name, kind=INT64)
    if layer.output_mode == "int":
        return indices
    return _encode(g, indices, layer.vocabulary_size(), layer.output_mode, _in_shape(layer), name)


def _discretization(g: GraphBuilder, layer: Discretization, x: str) -> str:
    name = layer.name
    if layer.bin_boundaries is None:
        raise ExportError(f"Discretization layer {name!r} has no bin boundaries: adapt it first")
    bins = list(layer.bin_boundaries)
    if not bins:
        zeros = g.op(
            "Mul", [g.to_int64(x, name), g.const(f"{name}/zero", 0, INT64)], name, kind=INT64
        )
        buckets = zeros
    else:
        # np.digitize(x, bins) for non-decreasing bins: how many boundaries are <= x
        # (compared in float64, as multilayer does)
        xd = (
            x
            if g.kinds[x] == DOUBLE
            else g.op("Cast", [x], name, kind=DOUBLE, to=g.elem_type(DOUBLE))
        )
        column = g.op("Unsqueeze", [xd, g.axes(name, [-1])], name, kind=DOUBLE)
        above = g.op(
            "GreaterOrEqual", [column, g.const(f"{name}/bins", bins, DOUBLE)], name, kind=BOOL
        )
        counts = g.op("Cast", [above], name, kind=INT64, to=g.elem_type(INT64))
        buckets = g.op("ReduceSum", [counts, g.axes(name, [-1])], name, kind=INT64, keepdims=0)
    if layer.output_mode == "int":
        return buckets
    return _encode(g, buckets, len(bins) + 1, layer.output_mode, _in_shape(layer), name)


def _robust_scaling(g: GraphBuilder, layer: RobustScaling, x: str) -> str:
    """In float64 as multilayer computes it: a NaN is 0 (the median), a non-finite result
    0, smooth clipping, then the missing-value columns of the flagged features."""
    name = layer.name
    double = g.elem_type(DOUBLE)
    values = x if g.kinds[x] == DOUBLE else g.op("Cast", [x], name, kind=DOUBLE, to=double)
    zero = g.const(f"{name}/zero", 0.0, DOUBLE)
    missing = g.op("IsNaN", [values], name, kind=BOOL)
    z = g.op("Sub", [values, g.const(f"{name}/center", layer.center, DOUBLE)], name, kind=DOUBLE)
    z = g.op("Mul", [z, g.const(f"{name}/scale", layer.scale, DOUBLE)], name, kind=DOUBLE)
    z = g.op("Where", [missing, zero, z], name, kind=DOUBLE)
    bad = g.op(
        "Or",
        [g.op("IsNaN", [z], name, kind=BOOL), g.op("IsInf", [z], name, kind=BOOL)],
        name,
        kind=BOOL,
    )
    z = g.op("Where", [bad, zero, z], name, kind=DOUBLE)
    if layer.clip is not None:
        ratio = g.op("Div", [z, g.const(f"{name}/clip", layer.clip, DOUBLE)], name, kind=DOUBLE)
        square = g.op("Mul", [ratio, ratio], name, kind=DOUBLE)
        one = g.const(f"{name}/one", 1.0, DOUBLE)
        root = g.op("Sqrt", [g.op("Add", [one, square], name, kind=DOUBLE)], name, kind=DOUBLE)
        z = g.op("Div", [z, root], name, kind=DOUBLE)
    flags = layer.missing_indicator
    if isinstance(flags, bool):
        flags = [flags] * len(layer.center)
    flagged = [i for i, flag in enumerate(flags) if flag]
    if flagged:
        columns = g.op(
            "Gather", [missing, g.const(f"{name}/flagged", flagged, INT64)], name, kind=BOOL,
            axis=1,
        )  # fmt: skip
        indicator = g.op("Cast", [columns], name, kind=DOUBLE, to=double)
        z = g.op("Concat", [z, indicator], name, kind=DOUBLE, axis=1)
    return g.to_float(z, name)


def _fold(g: GraphBuilder, op: str, layer: Layer, xs: list[str]) -> str:
    xs = [g.to_float(x, layer.name) for x in xs]
    y = xs[0]
    for x in xs[1:]:
        y = g.op(op, [y, x], layer.name)
    return y


def _add(g: GraphBuilder, layer: Add, xs: list[str]) -> str:
    return _fold(g, "Add", layer, xs)


def _multiply(g: GraphBuilder, layer: Multiply, xs: list[str]) -> str:
    return _fold(g, "Mul", layer, xs)


def _maximum(g: GraphBuilder, layer: Maximum, xs: list[str]) -> str:
    return _fold(g, "Max", layer, xs)


def _minimum(g: GraphBuilder, layer: Minimum, xs: list[str]) -> str:
    return _fold(g, "Min", layer, xs)


def _subtract(g: GraphBuilder, layer: Subtract, xs: list[str]) -> str:
    return _fold(g, "Sub", layer, xs)


def _average(g: GraphBuilder, layer: Average, xs: list[str]) -> str:
    total = _fold(g, "Add", layer, xs)
    return g.op("Mul", [total, g.const(f"{layer.name}/scale", 1.0 / len(xs))], layer.name)


def _concatenate(g: GraphBuilder, layer: Concatenate, xs: list[str]) -> str:
    rank = len(_in_shapes(layer)[0]) + 1
    xs = [g.to_float(x, layer.name) for x in xs]
    return g.op("Concat", xs, layer.name, axis=layer.axis % rank)


def _dot(g: GraphBuilder, layer: Dot, xs: list[str]) -> str:
    name = layer.name
    shapes = _in_shapes(layer)
    x1, x2 = (g.to_float(x, name) for x in xs)
    a1, a2 = (axis % (len(shape) + 1) for axis, shape in zip(layer.axes, shapes, strict=True))
    if layer.normalize:
        floor = g.const(f"{name}/floor", 1e-12)
        normalized = []
        for x, a in ((x1, a1), (x2, a2)):
            sums = g.op(
                "ReduceSum", [g.op("Mul", [x, x], name), g.axes(name, [a])], name, keepdims=1
            )
            norm = g.op("Sqrt", [g.op("Max", [sums, floor], name)], name)
            normalized.append(g.op("Div", [x, norm], name))
        x1, x2 = normalized
    letters = iter("cdefghijklmnopqrstuvwxy")
    s1 = ["b"] + [next(letters) for _ in shapes[0]]
    s2 = ["b"] + [next(letters) for _ in shapes[1]]
    s1[a1] = s2[a2] = "z"
    out = ["b"] + [c for c in s1[1:] if c != "z"] + [c for c in s2[1:] if c != "z"]
    equation = f"{''.join(s1)},{''.join(s2)}->{''.join(out)}"
    y = g.op("Einsum", [x1, x2], name, equation=equation)
    return g.op("Reshape", [y, g.const(f"{name}/shape", [0, *_out_shape(layer)], INT64)], name)


#: keras.ops functions an OpLayer may apply, converted (one model tensor in; see `_op_layer`)
_UNARY_OPS = {
    "exp": "Exp",
    "log": "Log",
    "sqrt": "Sqrt",
    "abs": "Abs",
    "absolute": "Abs",
    "negative": "Neg",
    "tanh": "Tanh",
    "relu": "Relu",
}
_BINARY_OPS = {
    "add": "Add",
    "subtract": "Sub",
    "multiply": "Mul",
    "divide": "Div",
    "maximum": "Max",
    "minimum": "Min",
    "power": "Pow",
}
_REDUCE_OPS = {"mean": "ReduceMean", "sum": "ReduceSum", "max": "ReduceMax", "min": "ReduceMin"}


def _tensor_index(value: Any) -> int | None:
    """``i`` for the placeholder ``{"__tensor__": i}`` of an OpLayer argument (its documented
    form), else None."""
    if isinstance(value, dict) and set(value) == {"__tensor__"}:
        return int(value["__tensor__"])
    return None


def _op_layer(g: GraphBuilder, layer: OpLayer, x: Any) -> str:
    """The keras.ops calls with an ONNX form: element-wise functions of one tensor, binary
    arithmetic between tensors and numbers, softmax / log_softmax and the reductions over
    sample axes. Others raise ExportError naming the layer and the op."""
    xs = list(x) if layer.multi_input else [x]
    args, kwargs, op, name = list(layer.args), dict(layer.kwargs), layer.op, layer.name

    def unsupported() -> ExportError:
        return ExportError(
            f"layer {name!r} (OpLayer) has no ONNX form: keras.ops.{op} with these arguments "
            "is not converted (converted: "
            + ", ".join(sorted({*_UNARY_OPS, *_BINARY_OPS, *_REDUCE_OPS}))
            + ", sigmoid, square, softmax, log_softmax); use layers instead"
        )

    def operand(value: Any) -> str:
        index = _tensor_index(value)
        if index is not None:
            return g.to_float(xs[index], name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return g.const(f"{name}/constant", float(value))
        raise unsupported()

    first = _tensor_index(args[0]) if args else None
    if op in _UNARY_OPS or op in ("sigmoid", "square"):
        if len(args) != 1 or first is None or kwargs:
            raise unsupported()
        value = operand(args[0])
        if op == "square":
            return g.op("Mul", [value, value], name)
        return g.op("Sigmoid" if op == "sigmoid" else _UNARY_OPS[op], [value], name)
    if op in _BINARY_OPS:
        if len(args) != 2 or kwargs:
            raise unsupported()
        return g.op(_BINARY_OPS[op], [operand(args[0]), operand(args[1])], name)
    if op in ("softmax", "log_softmax") or op in _REDUCE_OPS:
        options = dict(zip(("axis", "keepdims"), args[1:], strict=False)) | kwargs
        default_axis = -1 if op in ("softmax", "log_softmax") else None
        axis, keepdims = options.pop("axis", default_axis), options.pop("keepdims", False)
        if first is None or options or axis is None or not isinstance(keepdims, bool):
            raise unsupported()
        rank = len(_in_shape(layer)) + 1
        axes = [axis] if isinstance(axis, int) else list(axis)
        if not all(isinstance(a, int) and -rank <= a < rank and a % rank for a in axes):
            raise unsupported()
        value = operand(args[0])
        if op in ("softmax", "log_softmax"):
            if len(axes) != 1:
                raise unsupported()
            kind = "Softmax" if op == "softmax" else "LogSoftmax"
            return g.op(kind, [value], name, axis=axes[0] % rank)
        reduce = _REDUCE_OPS[op]
        return g.op(
            reduce, [value, g.axes(name, [a % rank for a in axes])], name, keepdims=int(keepdims)
        )
    raise unsupported()


#: Layer class -> converter. Looked up by exact class (see `converter_for`).
CONVERTERS: dict[type[Layer], Converter] = {
    Dense: _dense,
    Activation: _activation_layer,
    Dropout: _identity,
    GaussianNoise: _identity,
    GaussianDropout: _identity,
    AlphaDropout: _identity,
    ActivityRegularization: _identity,
    Identity: _identity,
    Flatten: _flatten,
    Reshape: _reshape,
    Rescaling: _rescaling,
    Softmax: _softmax,
    ReLU: _relu,
    LeakyReLU: _leaky_relu,
    ELU: _elu,
    PReLU: _prelu,
    BatchNormalization: _batch_normalization,
    LayerNormalization: _layer_normalization,
    Normalization: _normalization,
    Embedding: _embedding,
    CategoryEncoding: _category_encoding,
    IntegerLookup: _lookup,
    StringLookup: _lookup,
    Discretization: _discretization,
    RobustScaling: _robust_scaling,
    OpLayer: _op_layer,
    Add: _add,
    Subtract: _subtract,
    Multiply: _multiply,
    Average: _average,
    Maximum: _maximum,
    Minimum: _minimum,
    Concatenate: _concatenate,
    Dot: _dot,
}

#: Why some layers cannot be exported (the rest of the message names the layer).
NO_ONNX_FORM: dict[type[Layer], str] = {
    Hashing: "FarmHash Fingerprint64, the hash it computes, is not an ONNX operator",
}


def supported_layers() -> list[str]:
    """The names of the layer classes `to_onnx` converts (models nest: Sequential, Model)."""
    return sorted(cls.__name__ for cls in CONVERTERS)


def converter_for(layer: Layer) -> Converter:
    """The converter of ``layer``'s exact class.

    Raises:
        ExportError: the class has none; the message names the layer and says why.
    """
    converter = CONVERTERS.get(type(layer))
    if converter is not None:
        return converter
    reason = NO_ONNX_FORM.get(type(layer))
    if reason is None:
        reason = (
            "no converter is registered for its class (layers that convert: "
            + ", ".join(supported_layers())
            + ")"
        )
    raise ExportError(f"layer {layer.name!r} ({type(layer).__name__}) has no ONNX form: {reason}")


# -- the model's graph --------------------------------------------------------------------------
def _is_model(layer: object) -> bool:
    from multilayer.models.functional import Model

    return isinstance(layer, Model)


def _nodes(model: Any) -> list[Node]:
    """The nodes between ``model``'s inputs and outputs, each after those it depends on."""
    inputs = {id(t) for t in model.inputs}
    order: list[Node] = []
    done: set[int] = set()
    stack: list[tuple[KerasTensor, bool]] = [(t, False) for t in reversed(model.outputs)]
    while stack:
        tensor, expanded = stack.pop()
        node = tensor.layer.inbound_node
        if id(tensor) in inputs or node is None or id(node) in done:
            continue
        if expanded:
            done.add(id(node))
            order.append(node)
            continue
        stack.append((tensor, True))
        stack.extend((t, False) for t in reversed(node.inputs))
    return order


def _convert(g: GraphBuilder, model: Any, inputs: list[str]) -> list[str]:
    """Add ``model``'s layers to ``g``, its inputs being ``inputs``; returns its outputs."""
    values = {id(t): name for t, name in zip(model.inputs, inputs, strict=True)}
    for node in _nodes(model):
        layer = node.layer
        if isinstance(layer, InputLayer):
            continue
        args = [values[id(t)] for t in node.inputs]
        if _is_model(layer):
            outs = _convert(g, layer, args)
        else:
            converter = converter_for(layer)
            outs = [converter(g, layer, args if layer.multi_input else args[0])]
        for tensor, out in zip(node.outputs, outs, strict=True):
            values[id(tensor)] = out
    return [values[id(t)] for t in model.outputs]


def _string_inputs(model: Any) -> set[int]:
    """The model inputs read only by StringLookup layers (exported as string tensors)."""
    readers: dict[int, list[Layer]] = {id(t): [] for t in model.inputs}
    for node in _nodes(model):
        for tensor in node.inputs:
            if id(tensor) in readers:
                readers[id(tensor)].append(node.layer)
    return {
        key
        for key, layers in readers.items()
        if layers and all(type(layer) is StringLookup for layer in layers)
    }


def _classifier(tensor: KerasTensor) -> str | None:
    """``"softmax"`` or ``"sigmoid"`` when the output is class probabilities, else None."""
    activation = tensor.layer.fusable_activation
    if activation == "softmax" and len(tensor.sample_shape) == 1:
        return "softmax"
    if activation == "sigmoid" and tensor.sample_shape == (1,):
        return "sigmoid"
    return None


def prepare(model: Any) -> None:
    """Build ``model`` and allocate its weights if needed, so its graph can be converted.

    Raises:
        ExportError: not a model, or a model whose input shape is unknown.
    """
    if not _is_model(model):
        raise ExportError(f"only models can be exported, got a {type(model).__name__}")
    if not model.built:
        try:
            model.build()
        except (ValueError, TypeError, RuntimeError, AttributeError) as error:
            raise ExportError(
                f"model {model.name!r} is not built, so its input shape is unknown ({error}); "
                "build it first (an Input, input_shape=, or model.build((None, n)))"
            ) from None
    model.get_weights()  # allocates the parameters of a model built from a file or a graph


def convert_graph(g: GraphBuilder, model: Any, inputs: list[str]) -> list[str]:
    """Add the nodes of a prepared ``model`` to ``g``, its inputs being the values ``inputs``
    (their kinds set in ``g.kinds``); returns the names of its outputs (for other
    converters that embed a model, such as `multilayer.export.sklearn_onnx`)."""
    return _convert(g, model, inputs)


def to_onnx(model: Any, opset_version: int | None = None) -> Any:
    """``model`` as an ``onnx.ModelProto`` (checked with the ONNX checker).

    Raises:
        ExportError: a layer with no ONNX form, a model that is not built, a bad opset.
        ImportError: the onnx package is missing.
    """
    onnx = _onnx()
    helper = onnx.helper
    opset = DEFAULT_OPSET if opset_version is None else opset_version
    newest = onnx.defs.onnx_opset_version()
    if (
        isinstance(opset, bool)
        or not isinstance(opset, int)
        or not DEFAULT_OPSET <= opset <= newest
    ):
        raise ExportError(
            f"opset_version must be an integer from {DEFAULT_OPSET} to {newest}, got {opset_version!r}"
        )
    prepare(model)
    g = GraphBuilder(np.dtype(model.dtype), opset)
    single_in, single_out = len(model.inputs) == 1, len(model.outputs) == 1
    in_names = ["input"] if single_in else list(model.input_names)
    strings = _string_inputs(model)
    graph_inputs, names = [], []
    for tensor, wanted in zip(model.inputs, in_names, strict=True):
        name = g.name(wanted)
        g.kinds[name] = STRING if id(tensor) in strings else FLOAT
        graph_inputs.append(
            helper.make_tensor_value_info(
                name, g.elem_type(g.kinds[name]), ["batch", *tensor.sample_shape]
            )
        )
        names.append(name)
    # the output names are reserved before any node is named
    plan = []
    for tensor, out_name in zip(model.outputs, model.output_names, strict=True):
        kind = _classifier(tensor)
        if single_out:
            value = g.name("probabilities" if kind else "output")
            label = g.name("label") if kind else None
        else:
            value = g.name(out_name)
            label = g.name(f"{out_name}_label") if kind else None
        plan.append((tensor, kind, value, label))
    results = _convert(g, model, names)
    graph_outputs = []
    for (tensor, kind, value, label), result in zip(plan, results, strict=True):
        g.nodes.append(
            helper.make_node("Identity", [result], [value], name=g.name(f"{value}/Identity"))
        )
        g.kinds[value] = g.kinds[result]
        graph_outputs.append(
            helper.make_tensor_value_info(
                value, g.elem_type(g.kinds[value]), ["batch", *tensor.sample_shape]
            )
        )
        if label is None:
            continue
        if kind == "softmax":
            g.nodes.append(
                helper.make_node(
                    "ArgMax", [value], [label], name=g.name(f"{label}/ArgMax"), axis=-1, keepdims=0
                )
            )
        else:
            above = g.op("Greater", [value, g.const("threshold", 0.5)], label, kind=BOOL)
            flat = g.op("Squeeze", [above, g.axes(label, [-1])], label, kind=INT64)
            g.nodes.append(
                helper.make_node(
                    "Cast", [flat], [label], name=g.name(f"{label}/Cast"), to=g.elem_type(INT64)
                )
            )
        graph_outputs.append(helper.make_tensor_value_info(label, g.elem_type(INT64), ["batch"]))
    graph = helper.make_graph(
        g.nodes, model.name, graph_inputs, graph_outputs, initializer=g.initializers
    )
    opsets = [helper.make_opsetid("", opset), helper.make_opsetid(ML_DOMAIN, ML_OPSET)]
    proto = helper.make_model(
        graph,
        opset_imports=opsets,
        producer_name="multilayer",
        producer_version=__version__,
        ir_version=helper.find_min_ir_version_for(opsets),
    )
    metadata = {"multilayer.version": __version__}
    if getattr(model, "input_scale", None) is not None:
        metadata["multilayer.input_scale"] = json.dumps(model.input_scale.to_dict())
    helper.set_model_props(proto, metadata)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise ExportError(
            f"the exported ONNX graph of model {model.name!r} is invalid: {error}"
        ) from None
    return proto


def export_model(
    model: Any,
    filepath: str | Path,
    format: str | None = None,
    verbose: bool | None = None,
    input_signature: Any = None,
    opset_version: int | None = None,
) -> Path:
    """Write ``model`` to ``filepath`` for inference in another runtime (Keras 3's
    ``model.export``). Only ``format="onnx"`` exists; it is inferred from a ``.onnx`` name,
    and an ONNX file is never written under another extension.

    Args:
        verbose: print one line naming the file written (default: no output).
        input_signature: only None (the inputs come from the model's own shapes).
        opset_version: the ``ai.onnx`` opset, `DEFAULT_OPSET` (18) or newer.

    Returns:
        the path written.

    Raises:
        ExportError: an unknown format, a file name that does not end in ``.onnx``, a layer
            with no ONNX form (named in the message).
    """
    path = Path(filepath)
    suffix = path.suffix.lower()
    if format is None:
        if suffix != ".onnx":
            raise ExportError(
                f"cannot tell the export format of {str(filepath)!r}: name the file *.onnx "
                "(the one format multilayer exports)"
            )
        format = "onnx"
    if format != "onnx":
        other = " (a Keras format multilayer does not write)" if format in KERAS_FORMATS else ""
        raise ExportError(f"unknown export format {format!r}{other}: the one format is 'onnx'")
    if suffix != ".onnx":
        raise ExportError(f"an ONNX file must be named *.onnx, got {str(filepath)!r}")
    if input_signature is not None:
        raise ExportError(
            "input_signature is not supported: the inputs are the model's own (float, or "
            "strings for a StringLookup input), with a dynamic batch size"
        )
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path.parent}: no such directory to write {path.name} into")
    proto = to_onnx(model, opset_version)
    onnx = _onnx()
    # written beside the target under a fresh name, then renamed: never a half-written file
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    tmp = Path(name)
    try:
        onnx.save_model(proto, str(tmp))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    if verbose:
        print(f"Saved ONNX model to {path}")
    return path


def default_path(model_file: str | Path) -> Path:
    """Where ``mlp export`` writes without ``-o``: beside the model file, named ``.onnx``
    (``runs/x/model.safetensors`` -> ``runs/x/model.onnx``)."""
    return Path(model_file).with_suffix(".onnx")


def signature(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    """The inputs and outputs of the ONNX file at ``path``: name, element type (``float``,
    ``int64``, ``string``...) and shape (``"batch"`` for the dynamic axis), for display."""
    onnx = _onnx()
    model = onnx.load(str(path), load_external_data=False)

    def describe(value: Any) -> dict[str, Any]:
        tensor = value.type.tensor_type
        shape = [d.dim_param or d.dim_value for d in tensor.shape.dim]
        kind = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)
        return {
            "name": value.name,
            "type": "string" if kind.kind == "O" else str(kind),
            "shape": shape,
        }

    return {
        "inputs": [describe(v) for v in model.graph.input],
        "outputs": [describe(v) for v in model.graph.output],
    }
