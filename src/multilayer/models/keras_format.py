"""Keras 3 files: the ``.keras`` archive (both ways) and ``.weights.h5`` weight files.

A ``.keras`` file is a zip archive of three members:

* ``config.json``: the model as Keras serializes it, ``{"module", "class_name", "config",
  "registered_name", "build_config", "compile_config"}``;
* ``metadata.json``: ``{"keras_version", "date_saved"}``;
* ``model.weights.h5``: the variables, one HDF5 group per layer,
  ``layers/{snake_case(class name)}[_{k}]/vars/{0,1,...}``, in the order of the model's layers
  (a Sequential model's ``Input`` declaration excluded; a functional model's layers in
  Keras' order, `keras_layer_order`, input layers included). Group names come from class
  names, not layer names: the second Dense layer is ``dense_1`` whatever it is called.

A Keras functional model that is a chain is read as a multilayer `Sequential` model; any
other graph (branches, merge layers, several inputs or outputs) as a functional `Model`.

A ``.weights.h5`` file (Keras' ``save_weights``) is the same HDF5 layout on its own.

Translation between Keras configs and multilayer layers is one `LayerTranslation` per layer
type in `LAYERS`: adding a layer type is one entry. A Keras argument that multilayer cannot
honour (a constraint, a non-default ``noise_shape``, ...) is refused with an error naming the
layer and the argument, never silently dropped.

Reading never executes code: configs are JSON, weights are HDF5 datasets read as numbers, and
there is no Lambda layer, no ``registered_name`` lookup of custom objects, no pickle. A hostile
archive is refused with `ModelFileError` before anything large is allocated: the number of
members, member names (no absolute paths, no ``..``), declared sizes and compression ratios
are checked before reading a member, and every HDF5 dataset's declared shape and type is
checked against the architecture (and must be stored inside the file) before it is read.
"""

from __future__ import annotations

import io
import json
import math
import re
import struct
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from multilayer.engine import activations, initializers, regularizers
from multilayer.engine.checks import finite
from multilayer.engine.layers import (
    Activation,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    InputLayer,
    IntegerLookup,
    Rescaling,
    RobustScaling,
    StringLookup,
)
from multilayer.engine.layers.base import Layer
from multilayer.engine.layers.merge import Add, Average, Concatenate, Multiply
from multilayer.engine.layers.symbolic import KerasTensor
from multilayer.engine.registry import Config
from multilayer.errors import ModelFileError
from multilayer.models.input_scale import InputScale
from multilayer.utils.files import atomic_write_bytes

if TYPE_CHECKING:
    from multilayer.models.functional import Model

CONFIG_MEMBER = "config.json"
METADATA_MEMBER = "metadata.json"
WEIGHTS_MEMBER = "model.weights.h5"
#: The ``keras_version`` written in ``metadata.json``: the format version these files follow.
KERAS_VERSION = "3.0.0"

# Limits checked before anything is read from an archive.
MAX_MEMBERS = 64
MAX_JSON_BYTES = 4 * 2**20  # config.json: a Keras Dense layer's config is about 1 kB
#: Layers in a model (each becomes a Python object: bounded before any is made).
MAX_LAYERS = 4096
MAX_METADATA_BYTES = 2**20
#: Values per input sample (a 2**31-feature input is no MLP; keeps sizes far from overflow).
MAX_INPUT_SIZE = 2**31
#: A member that expands more than this many times is refused as a likely zip bomb (a real
#: ``model.weights.h5`` is stored; JSON compresses about 10 times).
MAX_RATIO = 200
#: model.weights.h5 may hold the optimizer's variables besides the weights (Adam: two per
#: weight): at most this many bytes per float64 weight, plus `H5_OVERHEAD`.
H5_BYTES_PER_WEIGHT = 8 * 8
H5_OVERHEAD = 64 * 2**20

_FLOAT_POLICIES = {"float32", "float64"}


def _h5py() -> Any:
    try:
        import h5py
    except ImportError:
        raise ImportError(
            "Keras .keras and .weights.h5 files need the h5py package: "
            "pip install 'multilayer[keras]'"
        ) from None
    return h5py


def snake_case(class_name: str) -> str:
    """Keras' group name for a class: ``"BatchNormalization"`` -> ``"batch_normalization"``."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


# -- reading Keras configs --------------------------------------------------------------------


class KerasArgs:
    """The ``config`` of one Keras layer, consumed argument by argument.

    Every key must be taken (`take`) or checked to hold a value multilayer can honour
    (`require`); `finish` refuses anything left over, naming the layer and the keys.
    """

    def __init__(self, class_name: str, config: Config, where: str) -> None:
        self.class_name = class_name
        self.config = dict(config)
        self.where = where
        self.name = self.config.get("name")
        #: Set when the layer computes in float64: the model then does.
        self.float64 = False

    def error(self, message: str) -> ModelFileError:
        label = f" {self.name!r}" if isinstance(self.name, str) else ""
        return ModelFileError(f"{self.where}: {self.class_name} layer{label}: {message}")

    def take(self, key: str, default: Any = None) -> Any:
        return self.config.pop(key, default)

    def number(self, key: str, default: float) -> float:
        try:
            return finite(self.take(key, default), key)
        except ValueError as error:
            raise self.error(str(error)) from None

    def require(self, key: str, *allowed: Any) -> None:
        """Refuse ``key`` unless absent or one of ``allowed`` (values multilayer honours)."""
        if key in self.config:
            value = self.config.pop(key)
            if not any(value == a and type(value) is type(a) for a in allowed):
                shown = value.get("class_name", value) if isinstance(value, dict) else value
                raise self.error(
                    f"{key}={shown!r} is not supported by multilayer "
                    f"(supported: {', '.join(repr(a) for a in allowed)})"
                )

    def finish(self) -> None:
        if self.config:
            raise self.error(f"unsupported arguments {sorted(self.config)}")


def _policy_name(value: object) -> str | None:
    """The dtype named by a Keras dtype (a string or a ``DTypePolicy`` config)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict):
        inner = value.get("config")
        if isinstance(inner, dict) and isinstance(inner.get("name"), str):
            return str(inner["name"])
    return "?"


def _common(args: KerasArgs) -> dict[str, Any]:
    """The arguments every Keras layer has: name, trainable, dtype."""
    name = args.take("name")
    if name is not None and not isinstance(name, str):
        raise args.error(f"name must be a string, got {name!r}")
    trainable = args.take("trainable", True)
    if not isinstance(trainable, bool):
        raise args.error(f"trainable must be true or false, got {trainable!r}")
    dtype = _policy_name(args.take("dtype"))
    if dtype is not None and dtype not in _FLOAT_POLICIES:
        raise args.error(f"dtype {dtype!r} is not supported (float32 or float64)")
    if dtype == "float64":
        args.float64 = True
    return {"name": name, "trainable": trainable}


def _activation(args: KerasArgs, key: str = "activation") -> activations.Activation:
    value = args.take(key, "linear")
    if isinstance(value, dict) and value.get("class_name") == "function":
        value = value.get("config")  # Keras' serialized built-in function
    if value is None:
        value = "linear"
    if not isinstance(value, str):
        raise args.error(f"{key} {value!r} is not a built-in activation")
    try:
        return activations.get(value)
    except ValueError:
        raise args.error(
            f"activation {value!r} is not supported (supported: "
            f"{', '.join(activations.REGISTRY.names())})"
        ) from None


def _plain(value: Config) -> Config:
    """``{"class_name", "config"}`` out of Keras' ``{"module", "class_name", "config", ...}``."""
    config = value.get("config")
    return {"class_name": value.get("class_name"), "config": config if config is not None else {}}


def _initializer(args: KerasArgs, key: str, default: str) -> initializers.Initializer:
    """The initializer (only used to re-initialize: the file's weights are loaded anyway).

    One multilayer does not have is replaced by ``default``, with a warning.
    """
    value = args.take(key, default)
    try:
        if isinstance(value, str):
            return initializers.get(value)
        if isinstance(value, dict):
            plain = _plain(value)
            cls = initializers.REGISTRY.lookup(str(plain["class_name"]))
            known = set(cls().get_config())
            return cls(**{k: v for k, v in dict(plain["config"]).items() if k in known})
    except (ValueError, TypeError):
        pass
    warnings.warn(
        f"{args.where}: {args.class_name} layer {args.name!r}: initializer {value!r} is not "
        f"available in multilayer; {default!r} is used if the layer is ever re-initialized",
        stacklevel=4,
    )
    return initializers.get(default)


def _regularizer(args: KerasArgs, key: str) -> regularizers.Regularizer | None:
    value = args.take(key)
    if value is None:
        return None
    try:
        if isinstance(value, dict):
            return regularizers.deserialize(_plain(value))
        if isinstance(value, str):
            return regularizers.get(value)
    except (ValueError, TypeError):
        pass
    raise args.error(f"{key} {value!r} is not supported (L1, L2 or L1L2)")


def _dense_from_keras(args: KerasArgs) -> Layer:
    common = _common(args)
    units = args.take("units")
    if isinstance(units, bool) or not isinstance(units, int) or not 0 < units <= MAX_INPUT_SIZE:
        raise args.error(f"units must be a positive integer up to 2**31, got {units!r}")
    activation = _activation(args)
    use_bias = args.take("use_bias", True)
    if not isinstance(use_bias, bool):
        raise args.error(f"use_bias must be true or false, got {use_bias!r}")
    kernel_initializer = _initializer(args, "kernel_initializer", "glorot_uniform")
    bias_initializer = _initializer(args, "bias_initializer", "zeros")
    kernel_regularizer = _regularizer(args, "kernel_regularizer")
    bias_regularizer = _regularizer(args, "bias_regularizer")
    for key in ("activity_regularizer", "kernel_constraint", "bias_constraint"):
        args.require(key, None)
    args.require("quantization_config", None)
    args.require("lora_rank", None)
    args.take("lora_alpha")  # meaningless without lora_rank
    args.finish()
    return Dense(
        units,
        activation=activation,
        use_bias=use_bias,
        kernel_initializer=kernel_initializer,
        bias_initializer=bias_initializer,
        kernel_regularizer=kernel_regularizer,
        bias_regularizer=bias_regularizer,
        **common,
    )


def _dropout_from_keras(args: KerasArgs) -> Layer:
    common = _common(args)
    rate = args.number("rate", 0.0)
    seed = args.take("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise args.error(f"seed must be a non-negative integer or null, got {seed!r}")
    args.require("noise_shape", None)
    args.finish()
    try:
        return Dropout(rate, seed=seed, **common)
    except ValueError as error:
        raise args.error(str(error)) from None


def _flatten_from_keras(args: KerasArgs) -> Layer:
    common = _common(args)
    args.require("data_format", None, "channels_last")
    args.finish()
    return Flatten(**common)


def _rescaling_from_keras(args: KerasArgs) -> Layer:
    common = _common(args)
    scale, offset = args.number("scale", 1.0), args.number("offset", 0.0)
    args.finish()
    return Rescaling(scale, offset, **common)


def _activation_layer_from_keras(args: KerasArgs) -> Layer:
    common = _common(args)
    activation = _activation(args)
    args.finish()
    return Activation(activation, **common)


# -- writing Keras configs --------------------------------------------------------------------


def _keras_object(module: str, class_name: str, config: object) -> Config:
    return {"module": module, "class_name": class_name, "config": config, "registered_name": None}


def _policy(dtype: np.dtype | None) -> Config:
    return _keras_object("keras", "DTypePolicy", {"name": np.dtype(dtype or "float32").name})


def _activation_name(layer: Layer, activation: activations.Activation) -> str:
    if activation.get_config() != type(activation)().get_config():
        raise ValueError(
            f"layer {layer.name!r}: activation {activation.name!r} with arguments "
            f"{activation.get_config()} has no Keras string name, so it cannot be written to a "
            ".keras file (Keras' string names use the default arguments)"
        )
    return activation.name


def _initializer_to_keras(initializer: initializers.Initializer) -> Config:
    config = initializers.serialize(initializer)
    return _keras_object("keras.initializers", config["class_name"], config["config"])


def _regularizer_to_keras(regularizer: regularizers.Regularizer | None) -> Config | None:
    config = regularizers.serialize(regularizer)
    if config is None:
        return None
    class_name = "L1L2" if config["class_name"] == "Regularizer" else config["class_name"]
    return _keras_object("keras.regularizers", class_name, config["config"])


def _dense_to_keras(layer: Layer) -> Config:
    assert isinstance(layer, Dense)
    for argument in ("kernel_constraint", "bias_constraint"):
        if getattr(layer, argument) is not None:
            # Reading refuses constraints too: writing null would silently drop them.
            raise ValueError(
                f"layer {layer.name!r}: {argument} has no .keras translation in multilayer yet, "
                "so the model cannot be written as a Keras file without losing it; save it to "
                ".safetensors instead"
            )
    return {
        "units": layer.units,
        "activation": _activation_name(layer, layer.activation),
        "use_bias": layer.use_bias,
        "kernel_initializer": _initializer_to_keras(layer.kernel_initializer),
        "bias_initializer": _initializer_to_keras(layer.bias_initializer),
        "kernel_regularizer": _regularizer_to_keras(layer.kernel_regularizer),
        "bias_regularizer": _regularizer_to_keras(layer.bias_regularizer),
        "kernel_constraint": None,
        "bias_constraint": None,
    }


def _merge_from_keras(layer_class: type[Layer]) -> Callable[[KerasArgs], Layer]:
    def build(args: KerasArgs) -> Layer:
        common = _common(args)
        args.finish()
        return layer_class(**common)

    return build


def _concatenate_from_keras(args: KerasArgs) -> Layer:
    common = _common(args)
    axis = args.take("axis", -1)
    args.finish()
    try:
        return Concatenate(axis=axis, **common)
    except ValueError as error:
        raise args.error(str(error)) from None


def _merge_to_keras(layer: Layer) -> Config:
    return {}


def _concatenate_to_keras(layer: Layer) -> Config:
    assert isinstance(layer, Concatenate)
    return {"axis": layer.axis}


def _dropout_to_keras(layer: Layer) -> Config:
    assert isinstance(layer, Dropout)
    return {"rate": layer.rate, "seed": layer.seed, "noise_shape": None}


def _flatten_to_keras(layer: Layer) -> Config:
    return {"data_format": "channels_last"}


def _rescaling_to_keras(layer: Layer) -> Config:
    assert isinstance(layer, Rescaling)
    return {"scale": layer.scale, "offset": layer.offset}


def _activation_layer_to_keras(layer: Layer) -> Config:
    assert isinstance(layer, Activation)
    return {"activation": _activation_name(layer, layer.activation)}


# -- table layers (issue 11): Embedding, StringLookup, IntegerLookup, RobustScaling -----------------


def _embedding_from_keras(args: KerasArgs) -> Layer:

    common = _common(args)
    sizes = {key: args.take(key) for key in ("input_dim", "output_dim")}
    for key, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_INPUT_SIZE:
            raise args.error(f"{key} must be a positive integer up to 2**31, got {value!r}")
    initializer = _initializer(args, "embeddings_initializer", "uniform")
    regularizer = _regularizer(args, "embeddings_regularizer")
    for key in ("activity_regularizer", "embeddings_constraint", "lora_rank", "input_length"):
        args.require(key, None)
    args.take("lora_alpha")
    args.require("mask_zero", False)
    args.finish()
    return Embedding(
        sizes["input_dim"],
        sizes["output_dim"],
        embeddings_initializer=initializer,
        embeddings_regularizer=regularizer,
        **common,
    )


def _embedding_to_keras(layer: Layer) -> Config:

    assert isinstance(layer, Embedding)
    if layer.embeddings_constraint is not None:
        raise ValueError(
            f"layer {layer.name!r}: embeddings_constraint has no .keras translation in "
            "multilayer yet; save it to .safetensors instead"
        )
    return {
        "input_dim": layer.input_dim,
        "output_dim": layer.output_dim,
        "embeddings_initializer": _initializer_to_keras(layer.embeddings_initializer),
        "embeddings_regularizer": _regularizer_to_keras(layer.embeddings_regularizer),
        "activity_regularizer": None,
        "embeddings_constraint": None,
        "mask_zero": False,
    }


_LOOKUP_KEYS = (
    "max_tokens",
    "num_oov_indices",
    "mask_token",
    "oov_token",
    "vocabulary",
    "output_mode",
)


def _lookup_from_keras(
    layer_class: type[Layer], fixed: dict[str, Any]
) -> Callable[[KerasArgs], Layer]:
    def build(args: KerasArgs) -> Layer:
        common = _common(args)
        values = {key: args.take(key) for key in _LOOKUP_KEYS if key in args.config}
        vocabulary = values.get("vocabulary")
        if vocabulary is not None and not isinstance(vocabulary, list):
            raise args.error("vocabulary must be a list written in the file")
        for key, allowed in (("invert", False), ("sparse", False), ("pad_to_max_tokens", False)):
            args.require(key, allowed)
        args.require("idf_weights", None)
        for key, value in fixed.items():
            args.require(key, value)
        args.finish()
        try:
            return layer_class(**values, **common)
        except (TypeError, ValueError) as error:
            raise args.error(str(error)) from None

    return build


def _lookup_to_keras(fixed: dict[str, Any]) -> Callable[[Layer], Config]:
    def convert(layer: Layer) -> Config:
        config = layer.get_config()
        return {key: config[key] for key in _LOOKUP_KEYS} | {
            "invert": False,
            "sparse": False,
            "pad_to_max_tokens": False,
            "idf_weights": None,
            **fixed,
        }

    return convert


def _robust_from_keras(args: KerasArgs) -> Layer:

    common = _common(args)
    values = {key: args.take(key) for key in ("center", "scale", "clip", "missing_indicator")}
    args.finish()
    try:
        return RobustScaling(
            center=values["center"] if values["center"] is not None else 0.0,
            scale=values["scale"] if values["scale"] is not None else 1.0,
            clip=values["clip"],
            missing_indicator=values["missing_indicator"] or False,
            **common,
        )
    except ValueError as error:
        raise args.error(str(error)) from None


def _robust_to_keras(layer: Layer) -> Config:
    config = layer.get_config()
    return {key: config[key] for key in ("center", "scale", "clip", "missing_indicator")}


# -- the table --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerTranslation:
    """How one layer type maps between Keras and multilayer.

    Attributes:
        keras_class: Keras' class name (``config.json``'s ``class_name``).
        layer_class: the multilayer class.
        from_keras: builds the multilayer layer from Keras' config arguments.
        to_keras: Keras' config arguments of a multilayer layer (besides name, trainable,
            dtype).
        weights: the multilayer weight names in the order of Keras' variables (``vars/0``,
            ``vars/1``, ...); names a layer does not have (a Dense without bias) are skipped.
    """

    keras_class: str
    layer_class: type[Layer]
    from_keras: Callable[[KerasArgs], Layer]
    to_keras: Callable[[Layer], Config]
    weights: tuple[str, ...] = ()
    #: where Keras looks the class up: multilayer's own layers (RobustScaling) are written as
    #: ``multilayer.layers`` classes, which Keras itself cannot load
    module: str = "keras.layers"


LAYERS: dict[str, LayerTranslation] = {
    t.keras_class: t
    for t in [
        LayerTranslation("Dense", Dense, _dense_from_keras, _dense_to_keras, ("kernel", "bias")),
        LayerTranslation("Dropout", Dropout, _dropout_from_keras, _dropout_to_keras),
        LayerTranslation("Flatten", Flatten, _flatten_from_keras, _flatten_to_keras),
        LayerTranslation("Rescaling", Rescaling, _rescaling_from_keras, _rescaling_to_keras),
        LayerTranslation(
            "Activation", Activation, _activation_layer_from_keras, _activation_layer_to_keras
        ),
        LayerTranslation("Add", Add, _merge_from_keras(Add), _merge_to_keras),
        LayerTranslation("Multiply", Multiply, _merge_from_keras(Multiply), _merge_to_keras),
        LayerTranslation("Average", Average, _merge_from_keras(Average), _merge_to_keras),
        LayerTranslation(
            "Concatenate", Concatenate, _concatenate_from_keras, _concatenate_to_keras
        ),
        LayerTranslation(
            "Embedding", Embedding, _embedding_from_keras, _embedding_to_keras, ("embeddings",)
        ),
        LayerTranslation(
            "StringLookup",
            StringLookup,
            _lookup_from_keras(StringLookup, {"encoding": "utf-8"}),
            _lookup_to_keras({"encoding": "utf-8"}),
        ),
        LayerTranslation(
            "IntegerLookup",
            IntegerLookup,
            _lookup_from_keras(IntegerLookup, {"vocabulary_dtype": "int64"}),
            _lookup_to_keras({"vocabulary_dtype": "int64"}),
        ),
        LayerTranslation(
            "RobustScaling",
            RobustScaling,
            _robust_from_keras,
            _robust_to_keras,
            module="multilayer.layers",
        ),
    ]
}
_BY_LAYER_CLASS = {t.layer_class: t for t in LAYERS.values()}


def translation_of(layer: Layer) -> LayerTranslation:
    """The `LayerTranslation` of a multilayer layer, or ValueError naming it."""
    translation = _BY_LAYER_CLASS.get(type(layer))
    if translation is None:
        raise ValueError(
            f"layer {layer.name!r} ({type(layer).__name__}) has no Keras equivalent known to "
            "multilayer, so the model cannot be written as a Keras file"
        )
    return translation


def weight_names(layer: Layer) -> list[str]:
    """The layer's weight names in Keras' variable order."""
    if isinstance(layer, InputLayer):
        return []
    return [name for name in translation_of(layer).weights if name in layer.weights]


def keras_layer_order(model: Model) -> list[Layer]:
    """The layers of a functional model in the order Keras' ``Functional.layers`` lists them
    (Keras' ``map_graph``: by decreasing depth from the outputs, ties in the order of a
    depth-first walk from the outputs). Keras names the HDF5 weight groups in this order."""
    graph_inputs = [tensor.layer for tensor in model.inputs]

    def parents(layer: Layer) -> list[Layer]:
        node = layer.inbound_node
        return [] if node is None else [tensor.layer for tensor in node.inputs]

    first_seen: dict[int, int] = {}
    finished: set[int] = set()
    post_order: list[Layer] = []
    for output in model.outputs:  # an iterative form of Keras' recursive _build_map
        stack: list[tuple[Layer, int]] = [(output.layer, 0)]
        while stack:
            layer, position = stack.pop()
            if position == 0:
                if id(layer) in finished:
                    continue
                first_seen.setdefault(id(layer), len(first_seen))
            inbound = parents(layer)
            if position < len(inbound):
                stack.append((layer, position + 1))
                stack.append((inbound[position], 0))
            elif id(layer) not in finished:
                finished.add(id(layer))
                post_order.append(layer)
    depth: dict[int, int] = {}
    for layer in reversed(post_order):
        current = depth.setdefault(id(layer), 0)
        for parent in parents(layer):
            depth[id(parent)] = max(current + 1, depth.get(id(parent), 0))
    layers = list(post_order)
    for layer in graph_inputs:  # inputs no output depends on
        if id(layer) not in depth:
            depth[id(layer)], first_seen[id(layer)] = 0, -1
            layers.append(layer)
    return sorted(layers, key=lambda layer: (-depth[id(layer)], first_seen[id(layer)]))


def weight_groups(model: Model, order: list[Layer] | None = None) -> Iterator[tuple[str, Layer]]:
    """``(HDF5 group name, layer)`` for each layer of the model, as Keras names the groups
    (a functional model's in Keras' layer order, or ``order`` when given: the order of the
    layers in a Keras ``config.json``)."""
    from multilayer.models.sequential import Sequential

    sequential = isinstance(model, Sequential)
    if order is None:
        order = list(model.layers) if sequential else keras_layer_order(model)
    used: dict[str, int] = {}
    for layer in order:
        if isinstance(layer, InputLayer):
            if sequential:
                continue
            name = "input_layer"
        else:
            name = snake_case(translation_of(layer).keras_class)
        if name in used:
            used[name] += 1
            name = f"{name}_{used[name]}"
        else:
            used[name] = 0
        yield name, layer


# -- model configs ----------------------------------------------------------------------------


def _layer_entry(layer: Layer, dtype: np.dtype) -> Config:
    """Keras' config of one (non-input) layer, with its ``build_config``."""
    translation = translation_of(layer)
    config = {
        "name": layer.name,
        "trainable": bool(layer.trainable),
        "dtype": _policy(layer.dtype or dtype),
        **translation.to_keras(layer),
    }
    entry = _keras_object(translation.module, translation.keras_class, config)
    node = layer.inbound_node
    if layer.multi_input and node is not None:
        entry["build_config"] = {"input_shape": [[None, *t.sample_shape] for t in node.inputs]}
    else:
        entry["build_config"] = {"input_shape": [None, *(layer.input_shape or ())]}
    return entry


def _functional_config(model: Model) -> Config:
    """Keras' ``config.json`` for a multilayer functional `Model` (no nested models)."""
    dtype = model._model_dtype()

    def tensor(value: Any) -> Config:
        return {
            "class_name": "__keras_tensor__",
            "config": {
                "shape": [None, *value.sample_shape],
                "dtype": dtype.name,
                "keras_history": [value.layer.name, 0, value.index],
            },
        }

    layers: list[Config] = []
    for layer in keras_layer_order(model):
        if isinstance(layer, InputLayer):
            entry = _keras_object(
                "keras.layers",
                "InputLayer",
                {
                    "batch_shape": [None, *layer.output.sample_shape],
                    "dtype": dtype.name,
                    "sparse": False,
                    "name": layer.name,
                },
            )
            entry["name"], entry["inbound_nodes"] = layer.name, []
            layers.append(entry)
            continue
        if not isinstance(layer, tuple(_BY_LAYER_CLASS)):
            translation_of(layer)  # the ValueError naming the layer
        entry = _layer_entry(layer, dtype)
        node = layer.inbound_node
        assert node is not None
        inputs = [tensor(t) for t in node.inputs]
        argument = inputs if layer.multi_input else inputs[0]
        entry["name"] = layer.name
        entry["inbound_nodes"] = [{"args": [argument], "kwargs": {}}]
        layers.append(entry)

    def endpoints(tensors: list[Any]) -> list[Any]:
        triples = [[t.layer.name, 0, t.index] for t in tensors]
        return triples[0] if len(triples) == 1 else triples

    result = _keras_object(
        "keras.src.models.functional",
        "Functional",
        {
            "name": model.name,
            "trainable": True,
            "layers": layers,
            "input_layers": endpoints(model.inputs),
            "output_layers": endpoints(model.outputs),
        },
    )
    result["registered_name"] = "Functional"
    result["build_config"] = {"input_shape": None}
    compile_config = _compile_to_keras(model)
    if compile_config is not None:
        result["compile_config"] = compile_config
    return result


def model_config(model: Model) -> Config:
    """Keras' ``config.json`` for a multilayer model (`Sequential` or functional)."""
    from multilayer.models.sequential import Sequential

    if not isinstance(model, Sequential):
        return _functional_config(model)
    input_shape = model.input_shape
    if input_shape is None or not model.built:
        raise ValueError("cannot save a model that is not built yet (it has no weights)")
    dtype = model._model_dtype()
    layers: list[Config] = []
    first = model.layers[0]
    input_name = first.name if isinstance(first, InputLayer) else "input_layer"
    layers.append(
        _keras_object(
            "keras.layers",
            "InputLayer",
            {
                "batch_shape": [None, *input_shape],
                "dtype": dtype.name,
                "sparse": False,
                "name": input_name,
            },
        )
    )
    for layer in model.layers:
        if isinstance(layer, InputLayer):
            continue
        entry = _layer_entry(layer, dtype)
        entry["build_config"] = {"input_shape": [None, *(layer.input_shape or ())]}
        layers.append(entry)
    result = _keras_object(
        "keras",
        "Sequential",
        {
            "name": model.name,
            "trainable": True,
            "dtype": _policy(dtype),
            "layers": layers,
            "build_input_shape": [None, *input_shape],
        },
    )
    result["build_config"] = {"input_shape": [None, *input_shape]}
    compile_config = _compile_to_keras(model)
    if compile_config is not None:
        result["compile_config"] = compile_config
    return result


def _compile_to_keras(model: Model) -> Config | None:
    """Keras' ``compile_config``, or None when the model is not compiled (or has several
    outputs: their losses are not written)."""
    compiled = model.compile_config
    if model.loss is None or not isinstance(compiled, dict):
        return None
    if not isinstance(compiled.get("loss"), dict) or not isinstance(compiled.get("metrics"), list):
        return None
    optimizer = dict(compiled["optimizer"])
    class_name = type(model.optimizer).__name__
    optimizer_config = dict(optimizer.get("config", {}))
    rate = optimizer_config.get("learning_rate")
    if isinstance(rate, dict):
        optimizer_config["learning_rate"] = _keras_object(
            "keras.optimizers.schedules", rate["class_name"], rate["config"]
        )
    loss = compiled["loss"]
    return {
        "optimizer": _keras_object("keras.optimizers", class_name, optimizer_config),
        "loss": _keras_object("keras.losses", loss["class_name"], loss["config"]),
        "loss_weights": None,
        "metrics": list(compiled["metrics"]) or None,
        "weighted_metrics": None,
        "run_eagerly": False,
        "steps_per_execution": 1,
        "jit_compile": False,
    }


def model_from_config(config: object, where: str) -> Model:
    """The multilayer model a Keras ``config.json`` describes (not built): a `Sequential`
    model for a Keras Sequential model or a functional chain, else a functional `Model`.

    Raises:
        ModelFileError: another kind of model, or a layer or argument multilayer lacks.
    """
    from multilayer.models.sequential import Sequential

    if not isinstance(config, dict):
        raise ModelFileError(f"{where}: config.json must hold a JSON object")
    class_name = config.get("class_name")
    inner = config.get("config")
    if class_name in ("Functional", "Model") and isinstance(inner, dict):
        chain = _functional_chain(inner, where)
        if chain is None:
            return _functional_from_keras(inner, where)
        inner = {**inner, "layers": chain}
    elif class_name != "Sequential":
        raise ModelFileError(
            f"{where}: only Keras Sequential and functional models can be read (this file "
            f"holds a {class_name!r} model)"
        )
    if not isinstance(inner, dict) or not isinstance(inner.get("layers"), list):
        raise ModelFileError(f"{where}: the model config has no list of layers")
    if len(inner["layers"]) > MAX_LAYERS:
        raise ModelFileError(
            f"{where}: the model has {len(inner['layers'])} layers (at most {MAX_LAYERS})"
        )
    dtype = _policy_name(inner.get("dtype"))
    if dtype is not None and dtype not in _FLOAT_POLICIES:
        raise ModelFileError(f"{where}: model dtype {dtype!r} is not supported")
    # One float type per multilayer model: float64 if any layer of the Keras model uses it.
    float64 = dtype == "float64"
    layers: list[Layer] = []
    for index, entry in enumerate(inner["layers"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
            raise ModelFileError(f"{where}: layer {index} is not a Keras layer config")
        keras_class = entry.get("class_name")
        if keras_class == "InputLayer":
            if index != 0:
                raise ModelFileError(f"{where}: an InputLayer can only be the first layer")
            args = KerasArgs("InputLayer", entry["config"], where)
            layers.append(_input_from_keras(args))
            float64 = float64 or args.float64
            continue
        layer, layer_float64 = _layer_from_keras(entry, index, where)
        if layer.multi_input:
            raise ModelFileError(
                f"{where}: layer {index} ({layer.name!r}) is a merge layer, which a Sequential "
                "model cannot hold"
            )
        layers.append(layer)
        float64 = float64 or layer_float64
    if not layers or not isinstance(layers[0], InputLayer):
        shape = inner.get("build_input_shape")
        if shape is None and isinstance(config.get("build_config"), dict):
            shape = config["build_config"].get("input_shape")
        layers.insert(0, _input_from_keras(KerasArgs("InputLayer", {"batch_shape": shape}, where)))
    name = inner.get("name", "sequential")
    try:
        return Sequential(
            layers,
            name=name if isinstance(name, str) else "sequential",
            dtype="float64" if float64 else "float32",
        )
    except (ValueError, TypeError) as error:
        raise ModelFileError(f"{where}: invalid model: {error}") from None


def _layer_from_keras(entry: Config, index: int, where: str) -> tuple[Layer, bool]:
    """The multilayer layer of one Keras layer config (not an InputLayer), and whether it
    asks for float64.

    Raises:
        ModelFileError: a layer or argument multilayer does not support (named).
    """
    keras_class = entry.get("class_name")
    translation = LAYERS.get(keras_class) if isinstance(keras_class, str) else None
    if translation is None:
        name = entry["config"].get("name")
        if keras_class == "Lambda":
            raise ModelFileError(
                f"{where}: layer {index} ({name!r}) is a Keras Lambda layer: it holds "
                "Python code, and multilayer never runs code from a file"
            )
        raise ModelFileError(
            f"{where}: layer {index} ({name!r}) is a Keras {keras_class!r} layer, which "
            f"multilayer does not support (supported: InputLayer, {', '.join(LAYERS)})"
        )
    args = KerasArgs(translation.keras_class, entry["config"], where)
    return translation.from_keras(args), args.float64


def _functional_from_keras(config: Config, where: str) -> Model:
    """A multilayer functional `Model` from a Keras functional ``config`` (its layers in
    Keras' order, each with its ``inbound_nodes``; ``input_layers`` and ``output_layers``).

    Raises:
        ModelFileError: a layer called more than once (shared), a call with arguments
            multilayer does not read, a reference to an unknown or later layer, a layer or
            argument multilayer does not support, or an invalid graph.
    """
    from multilayer.models.functional import Model

    entries = config.get("layers")
    if not isinstance(entries, list):
        raise ModelFileError(f"{where}: the model config has no list of layers")
    if len(entries) > MAX_LAYERS:
        raise ModelFileError(f"{where}: the model has {len(entries)} layers (at most {MAX_LAYERS})")
    dtype = _policy_name(config.get("dtype"))
    if dtype is not None and dtype not in _FLOAT_POLICIES:
        raise ModelFileError(f"{where}: model dtype {dtype!r} is not supported")
    float64 = dtype == "float64"
    tensors: dict[str, KerasTensor] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
            raise ModelFileError(f"{where}: layer {index} is not a Keras layer config")
        name = entry.get("name")
        if not isinstance(name, str) or name in tensors:
            raise ModelFileError(
                f"{where}: layer {index} has no name or the name of an earlier layer ({name!r})"
            )
        nodes = entry.get("inbound_nodes")
        layer: Layer
        if entry.get("class_name") == "InputLayer":
            if nodes:
                raise ModelFileError(f"{where}: InputLayer {name!r} has inbound nodes")
            args = KerasArgs("InputLayer", entry["config"], where)
            layer = _input_from_keras(args)
            float64 = float64 or args.float64
        else:
            layer, layer_float64 = _layer_from_keras(entry, index, where)
            float64 = float64 or layer_float64
        if layer.name != name:
            raise ModelFileError(
                f"{where}: layer {index} is named {name!r} in the graph but {layer.name!r} in "
                "its config"
            )
        if isinstance(layer, InputLayer):
            tensors[name] = layer.output
            continue
        inputs = _node_inputs(nodes, name, tensors, where)
        try:
            tensors[name] = layer(inputs if layer.multi_input else inputs[0])
        except (ValueError, TypeError) as error:
            raise ModelFileError(f"{where}: layer {name!r}: {error}") from None
    graph_inputs = _endpoints(config.get("input_layers"), "input_layers", tensors, where)
    graph_outputs = _endpoints(config.get("output_layers"), "output_layers", tensors, where)
    model_name = config.get("name")
    try:
        return Model(
            graph_inputs if len(graph_inputs) > 1 else graph_inputs[0],
            graph_outputs if len(graph_outputs) > 1 else graph_outputs[0],
            name=model_name if isinstance(model_name, str) else None,
            dtype="float64" if float64 else "float32",
        )
    except (ValueError, TypeError) as error:
        raise ModelFileError(f"{where}: invalid model: {error}") from None


def _ignorable(kwargs: object) -> bool:
    """Whether a layer call's keyword arguments carry nothing multilayer must honour: none,
    or only ``training`` (Keras records training=False on a Dropout call; at run time the
    model's own training flag replaces it)."""
    if kwargs is None:
        return True
    return (
        isinstance(kwargs, dict)
        and set(kwargs) <= {"training"}
        and kwargs.get("training") in (None, False, True)
    )


def _node_inputs(
    nodes: object, name: str, tensors: dict[str, KerasTensor], where: str
) -> list[KerasTensor]:
    """The tensors a layer is called on, from its Keras ``inbound_nodes``."""
    if not isinstance(nodes, list) or len(nodes) != 1 or not isinstance(nodes[0], dict):
        count = len(nodes) if isinstance(nodes, list) else nodes
        raise ModelFileError(
            f"{where}: layer {name!r} has {count!r} inbound nodes; multilayer reads layers "
            "called exactly once (no shared layers)"
        )
    args, kwargs = nodes[0].get("args"), nodes[0].get("kwargs")
    if not isinstance(args, list) or len(args) != 1 or not _ignorable(kwargs):
        raise ModelFileError(
            f"{where}: layer {name!r} is called with arguments multilayer does not read "
            "(one tensor, or one list of tensors, and no keyword arguments)"
        )
    items = args[0] if isinstance(args[0], list) else [args[0]]
    if not items:
        raise ModelFileError(f"{where}: layer {name!r} is called on an empty list")
    result = []
    for item in items:
        inner = item.get("config") if isinstance(item, dict) else None
        history = inner.get("keras_history") if isinstance(inner, dict) else None
        if (
            not isinstance(item, dict)
            or item.get("class_name") != "__keras_tensor__"
            or not isinstance(history, list)
            or len(history) != 3
            or not isinstance(history[0], str)
            or history[1:] != [0, 0]
        ):
            raise ModelFileError(
                f"{where}: layer {name!r} takes an input that is not the output of one layer "
                "(a Keras tensor with keras_history [layer, 0, 0])"
            )
        if history[0] not in tensors:
            raise ModelFileError(
                f"{where}: layer {name!r} takes the output of {history[0]!r}, which is not an "
                "earlier layer of the model"
            )
        result.append(tensors[history[0]])
    return result


def _endpoints(
    value: object, key: str, tensors: dict[str, KerasTensor], where: str
) -> list[KerasTensor]:
    """The tensors ``input_layers`` / ``output_layers`` name: ``[name, 0, 0]`` or a list."""
    if isinstance(value, list) and value and isinstance(value[0], str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ModelFileError(f"{where}: {key} must be a non-empty list of [layer, 0, 0]")
    result = []
    for triple in value:
        if (
            not isinstance(triple, list)
            or len(triple) != 3
            or not isinstance(triple[0], str)
            or triple[1:] != [0, 0]
        ):
            raise ModelFileError(f"{where}: {key}: {triple!r} is not [layer, 0, 0]")
        if triple[0] not in tensors:
            raise ModelFileError(f"{where}: {key} names {triple[0]!r}, which is not a layer")
        result.append(tensors[triple[0]])
    return result


def _functional_chain(config: Config, where: str) -> list[Config] | None:
    """The layers of a Keras functional model that is a chain (one input, each layer called
    once on the previous layer's output, the last one the output), in order; None for any
    other graph (branches, merges, several inputs or outputs).
    """
    not_chain = None
    layers = config.get("layers")
    if not isinstance(layers, list):
        return not_chain
    if len(layers) > MAX_LAYERS:
        raise ModelFileError(f"{where}: the model has {len(layers)} layers (at most {MAX_LAYERS})")

    def endpoint(value: object) -> object:
        # [name, 0, 0], or a list holding one such triple
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
            value = value[0]
        return value[0] if isinstance(value, list) and value[1:] == [0, 0] else None

    previous = None
    for index, layer in enumerate(layers):
        if not isinstance(layer, dict):
            return not_chain
        nodes = layer.get("inbound_nodes")
        if index == 0:
            if layer.get("class_name") != "InputLayer" or nodes:
                return not_chain
        else:
            if not isinstance(nodes, list) or len(nodes) != 1 or not isinstance(nodes[0], dict):
                return not_chain
            args, kwargs = nodes[0].get("args"), nodes[0].get("kwargs")
            if not isinstance(args, list) or len(args) != 1 or not _ignorable(kwargs):
                return not_chain
            tensor = args[0]
            inner = tensor.get("config") if isinstance(tensor, dict) else None
            history = inner.get("keras_history") if isinstance(inner, dict) else None
            if (
                not isinstance(tensor, dict)
                or tensor.get("class_name") != "__keras_tensor__"
                or not isinstance(history, list)
                or history[:1] != [previous]
                or history[1:] != [0, 0]
            ):
                return not_chain
        previous = layer.get("name")
        if not isinstance(previous, str):
            return not_chain
    if (
        not layers
        or endpoint(config.get("input_layers")) != layers[0].get("name")
        or endpoint(config.get("output_layers")) != previous
    ):
        return not_chain
    return [
        {k: v for k, v in layer.items() if k not in ("name", "inbound_nodes")} for layer in layers
    ]


def _count_parameters(model: Model, where: str) -> int:
    """The number of parameters of ``model`` (not built), without allocating them: the
    layers of a copy are sized one after the other (a functional model sizes its graph)."""
    from multilayer.models.sequential import Sequential

    if not isinstance(model, Sequential):
        try:
            shapes = model.parameter_shapes()
        except (ValueError, TypeError) as error:
            raise ModelFileError(f"{where}: invalid model: {error}") from None
        return sum(int(np.prod(shape, dtype=np.int64)) for shape in shapes.values())
    try:
        probe = Sequential.from_config(model.get_config())
        shape = probe.input_shape
        total = 0
        for layer in probe.layers:
            assert shape is not None
            layer.build(tuple(shape))
            total += layer.count_params()
            shape = layer.output_shape
    except (ValueError, TypeError) as error:
        raise ModelFileError(f"{where}: invalid model: {error}") from None
    return total


def _input_from_keras(args: KerasArgs) -> InputLayer:
    shape = args.take("batch_shape")
    if shape is None and "batch_input_shape" in args.config:
        shape = args.take("batch_input_shape")
    if (
        not isinstance(shape, list)
        or len(shape) < 2
        or shape[0] is not None
        and not isinstance(shape[0], int)
        or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape[1:])
    ):
        raise args.error(
            f"the input shape must be [null, d1, d2, ...] with known positive sizes, "
            f"got {shape!r} (a model without a known input shape has no weights to read)"
        )
    if math.prod(shape[1:]) > MAX_INPUT_SIZE:
        raise args.error(f"input samples of shape {shape[1:]} are too large for an MLP")
    name = args.take("name")
    dtype = _policy_name(args.take("dtype"))
    if dtype is not None and dtype not in _FLOAT_POLICIES:
        raise args.error(f"dtype {dtype!r} is not supported (float32 or float64)")
    args.float64 = dtype == "float64"
    args.take("batch_size")
    for key in ("sparse", "ragged", "optional"):
        args.require(key, False)
    args.require("input_tensor", None)
    args.finish()
    return InputLayer(shape=shape[1:], name=name if isinstance(name, str) else None)


# -- HDF5 weights -----------------------------------------------------------------------------


def weights_h5_bytes(model: Model) -> bytes:
    """The model's weights in Keras' HDF5 layout (what ``save_weights`` writes).

    Raises:
        ValueError: a layer Keras has no equivalent of (a nested model).
    """
    h5py = _h5py()
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        layers_group = handle.create_group("layers")
        for group_name, layer in weight_groups(model):
            group = layers_group.create_group(group_name).create_group("vars")
            group.attrs["name"] = layer.name
            for index, name in enumerate(weight_names(layer)):
                group.create_dataset(str(index), data=np.ascontiguousarray(layer.weights[name]))
        handle.create_group("vars").attrs["name"] = model.name
    return buffer.getvalue()


def _check_dataset(h5py: Any, group: Any, key: str, where: str) -> Any:
    """The dataset ``key`` of ``group``: a hard link to data stored inside this file."""
    link = group.get(key, getlink=True)
    if not isinstance(link, h5py.HardLink):
        raise ModelFileError(f"{where}: {group.name}/{key} is a link, not a dataset in the file")
    dataset = group[key]
    if not isinstance(dataset, h5py.Dataset):
        raise ModelFileError(f"{where}: {group.name}/{key} is not a dataset")
    if dataset.external or dataset.is_virtual:
        raise ModelFileError(f"{where}: {group.name}/{key} refers to data outside the file")
    return dataset


def read_weights_h5(
    model: Model, source: object, where: str, order: list[Layer] | None = None
) -> None:
    """Check every variable of an HDF5 weights file (Keras layout) against ``model``, then
    copy them in. Nothing is read before all declared shapes and types have been checked.

    Raises:
        ModelFileError: a missing or extra variable, a shape or type that does not match, a
            link or external storage, NaN or infinite values, or a file h5py cannot read.
        ValueError: a layer Keras has no equivalent of (a nested model).
    """
    h5py = _h5py()
    try:
        with h5py.File(source, "r") as handle:
            plan: list[tuple[Any, np.ndarray, str]] = []
            groups = dict(weight_groups(model, order))
            stored: Any = handle.get("layers")
            if stored is not None and not isinstance(stored, h5py.Group):
                raise ModelFileError(f"{where}: 'layers' is not a group")
            stored_names = list(stored) if stored is not None else []
            for group_name in stored_names:
                if group_name in groups:
                    continue
                item = handle.get(f"layers/{group_name}")
                inner = item.get("vars") if isinstance(item, h5py.Group) else item
                if inner is not None and (not isinstance(inner, h5py.Group) or len(inner)):
                    raise ModelFileError(
                        f"{where}: the file has variables for a layer group {group_name!r} "
                        "that this model does not have (another architecture?)"
                    )
            for group_name, layer in groups.items():
                names = weight_names(layer)
                path = f"layers/{group_name}/vars"
                if path not in handle:
                    if names:
                        raise ModelFileError(
                            f"{where}: no variables for layer {layer.name!r} (group {path!r})"
                        )
                    continue
                group = handle[path]
                if not isinstance(group, h5py.Group):
                    raise ModelFileError(f"{where}: {path} is not a group")
                keys = set(group.keys())
                if keys != {str(i) for i in range(len(names))}:
                    raise ModelFileError(
                        f"{where}: layer {layer.name!r} ({path}) holds variables "
                        f"{sorted(keys)}, but multilayer expects {len(names)} "
                        f"({', '.join(names) or 'none'})"
                    )
                for index, name in enumerate(names):
                    dataset = _check_dataset(h5py, group, str(index), where)
                    target = layer.weights[name]
                    if dataset.shape != target.shape or dataset.dtype.kind != "f":
                        raise ModelFileError(
                            f"{where}: {path}/{index} ({layer.name!r} {name}) has shape "
                            f"{dataset.shape} and dtype {dataset.dtype}, but the architecture "
                            f"needs shape {target.shape} (floating point)"
                        )
                    plan.append((dataset, target, f"{layer.name!r} {name}"))
            values = []
            for dataset, target, label in plan:
                value = np.asarray(dataset[()])
                if not np.all(np.isfinite(value)):
                    raise ModelFileError(f"{where}: {label} contains NaN or infinite values")
                values.append((target, value))
    except ModelFileError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelFileError(f"{where}: not a readable HDF5 weights file ({reason})") from None
    for target, value in values:
        target[...] = value


# -- the archive ------------------------------------------------------------------------------


def save_keras(model: Model, filepath: str | Path) -> Path:
    """Write ``model`` as a Keras 3 ``.keras`` archive (atomically).

    The optimizer's state is not written (Keras builds a fresh optimizer from
    ``compile_config``). Raises ValueError for a model with a layer or activation Keras
    cannot express (a nested model among them).
    """
    config = model_config(model)
    metadata: Config = {
        "keras_version": KERAS_VERSION,
        "date_saved": time.strftime("%Y-%m-%d@%H:%M:%S"),
    }
    if model.input_scale is not None:
        # multilayer's own record of the pixel values the model takes (Keras ignores it)
        metadata["multilayer"] = {"input": model.input_scale.to_dict()}
    weights = weights_h5_bytes(model)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(METADATA_MEMBER, json.dumps(metadata))
        archive.writestr(CONFIG_MEMBER, json.dumps(config))
        archive.writestr(WEIGHTS_MEMBER, weights)
    return atomic_write_bytes(filepath, buffer.getvalue())


def _declared_member_count(path: Path) -> int | None:
    """The number of members the archive's end record declares (zip64 included), read
    before `zipfile` parses the central directory (which would hold one object per member
    in memory); None when there is no end record (zipfile then refuses the file)."""
    with path.open("rb") as handle:
        size = handle.seek(0, 2)
        tail_size = min(size, 22 + 65535)  # the end record, then a comment of up to 64 kB
        handle.seek(size - tail_size)
        tail = handle.read(tail_size)
        position = tail.rfind(b"PK\x05\x06")
        if position < 0 or position + 22 > len(tail):
            return None
        (count,) = struct.unpack_from("<H", tail, position + 10)
        locator = position - 20
        if count != 0xFFFF or locator < 0 or tail[locator : locator + 4] != b"PK\x06\x07":
            return int(count)
        (offset,) = struct.unpack_from("<Q", tail, locator + 8)
        if offset > size - 56:
            return None
        handle.seek(offset)
        record = handle.read(56)
        if record[:4] != b"PK\x06\x06":
            return None
        return int(struct.unpack_from("<Q", record, 32)[0])


def _checked_members(archive: zipfile.ZipFile, where: str) -> dict[str, zipfile.ZipInfo]:
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ModelFileError(f"{where}: {len(infos)} archive members (at most {MAX_MEMBERS})")
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename
        parts = PurePosixPath(name).parts
        if (
            name.startswith(("/", "\\"))
            or "\\" in name
            or ".." in parts
            or re.match(r"^[A-Za-z]:", name)
            or "\x00" in name
        ):
            raise ModelFileError(f"{where}: unsafe member name {name!r} in the archive")
        if name in members:
            raise ModelFileError(f"{where}: member {name!r} appears twice in the archive")
        if info.flag_bits & 0x1:
            raise ModelFileError(f"{where}: member {name!r} is encrypted")
        members[name] = info
    return members


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, where: str) -> bytes:
    """A member's bytes, after checking its declared size and compression ratio."""
    if info.file_size > limit:
        raise ModelFileError(
            f"{where}: {info.filename} declares {info.file_size} bytes (at most {limit} "
            "expected for this model)"
        )
    if info.file_size > 2**20 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        raise ModelFileError(
            f"{where}: {info.filename} expands {info.file_size} bytes from "
            f"{info.compress_size}: refused as a likely zip bomb"
        )
    with archive.open(info) as member:
        # Never more than declared: a member that holds more fails its CRC check instead.
        return member.read(info.file_size)


def _json_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, where: str) -> Any:
    data = _read_member(archive, info, limit, where)
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ModelFileError(f"{where}: {info.filename} is not valid JSON ({error})") from None
    except ValueError as error:
        raise ModelFileError(f"{where}: {info.filename}: {error}") from None


def _no_constant(name: str) -> object:
    """Python's json accepts NaN and Infinity, which are not JSON: refuse them."""
    raise ValueError(f"{name} is not a JSON number (configs must hold finite numbers)")


def load_keras(filepath: str | Path, compile: bool = True) -> Model:
    """Read a Keras 3 ``.keras`` file into a multilayer model: a `Sequential` one for a Keras
    Sequential model or a functional chain, else a functional `Model`.

    Raises:
        FileNotFoundError: no such file.
        ModelFileError: not a zip archive, an unsafe or oversized member, a layer or argument
            multilayer does not support (named), or weights that do not match.
    """
    from multilayer.models.sequential import Sequential

    path = Path(filepath)
    where = str(path)
    if not path.exists():
        raise FileNotFoundError(f"model file not found: {path}")
    if path.is_dir():
        raise ModelFileError(f"{path} is a directory, not a .keras file")
    try:
        declared = _declared_member_count(path)
        if declared is not None and declared > MAX_MEMBERS:
            raise ModelFileError(f"{where}: {declared} archive members (at most {MAX_MEMBERS})")
        with zipfile.ZipFile(path) as archive:
            members = _checked_members(archive, where)
            for required in (CONFIG_MEMBER, METADATA_MEMBER):
                if required not in members:
                    raise ModelFileError(f"{where}: not a Keras 3 archive (no {required})")
            if WEIGHTS_MEMBER not in members:
                other = "model.weights.npz" in members
                raise ModelFileError(
                    f"{where}: no {WEIGHTS_MEMBER} in the archive"
                    + (" (weights stored as .npz are not supported)" if other else "")
                )
            metadata = _json_member(archive, members[METADATA_MEMBER], MAX_METADATA_BYTES, where)
            if not isinstance(metadata, dict) or not str(
                metadata.get("keras_version", "")
            ).startswith("3."):
                raise ModelFileError(
                    f"{where}: metadata.json does not name a Keras 3 version "
                    f"(keras_version {metadata.get('keras_version') if isinstance(metadata, dict) else None!r})"
                )
            config = _json_member(archive, members[CONFIG_MEMBER], MAX_JSON_BYTES, where)
            model = model_from_config(config, where)
            count = _count_parameters(model, where)
            info = members[WEIGHTS_MEMBER]
            if 2 * count > info.file_size:  # float16, the smallest float type, takes 2 bytes
                raise ModelFileError(
                    f"{where}: the architecture has {count} parameters, more than "
                    f"{WEIGHTS_MEMBER} ({info.file_size} bytes) can hold"
                )
            try:
                model.build()
            except (ValueError, TypeError) as error:
                raise ModelFileError(f"{where}: invalid model: {error}") from None
            limit = H5_BYTES_PER_WEIGHT * count + H5_OVERHEAD
            weights = _read_member(archive, info, limit, where)
    except ModelFileError:
        raise
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,
        EOFError,
        ValueError,  # e.g. a member name that is not valid UTF-8
    ) as error:
        raise ModelFileError(f"{where} is not a valid .keras archive ({error})") from None
    except OSError as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise ModelFileError(f"{where} is not a valid .keras archive ({error})") from None
    order = None
    if not isinstance(model, Sequential):  # the HDF5 groups follow the config's layer order
        order = [model.get_layer(entry["name"]) for entry in config["config"]["layers"]]
    read_weights_h5(model, io.BytesIO(weights), where, order)
    model.input_scale = _input_scale(metadata, where)
    compile_config = config.get("compile_config")
    if compile and isinstance(compile_config, dict) and compile_config.get("loss") is not None:
        _compile_from_keras(model, compile_config, where)
    return model


def _input_scale(metadata: Config, where: str) -> InputScale | None:
    """The `InputScale` multilayer records in ``metadata.json`` (None in Keras' files)."""
    own = metadata.get("multilayer")
    if own is None:
        return None
    if not isinstance(own, dict) or set(own) != {"input"}:
        raise ModelFileError(f"{where}: metadata.json: 'multilayer' must be {{'input': ...}}")
    try:
        return InputScale.from_dict(own["input"])
    except ValueError as error:
        raise ModelFileError(f"{where}: metadata.json: {error}") from None


# Keras optimizer arguments multilayer reads as "off" only when they hold these values.
_OPTIMIZER_OFF = {
    "weight_decay": None,
    "clipnorm": None,
    "global_clipnorm": None,
    "clipvalue": None,
    "use_ema": False,
    "ema_overwrite_frequency": None,
    "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
}
_OPTIMIZER_IGNORED = {"name", "ema_momentum"}
_LOSS_IGNORED = {"name", "dtype"}
# Keras loss arguments multilayer reads only with these (default) values.
_LOSS_DEFAULTS = {"axis": -1, "reduction": "sum_over_batch_size"}


def _compile_from_keras(model: Model, compile_config: Config, where: str) -> None:
    """Compile as Keras' ``compile_config`` says; like Keras, warn and leave the model
    uncompiled when that is not possible (the model still predicts)."""
    from multilayer.engine import optimizers

    try:
        optimizer = compile_config.get("optimizer", "rmsprop")
        if isinstance(optimizer, dict):
            plain = _plain(optimizer)
            arguments = dict(plain["config"])
            for key, off in _OPTIMIZER_OFF.items():
                if key in arguments and arguments[key] == off:
                    del arguments[key]
            for key in _OPTIMIZER_IGNORED:
                arguments.pop(key, None)
            rate = arguments.get("learning_rate")
            if isinstance(rate, dict):
                schedule = _plain(rate)
                schedule["config"] = {
                    k: v for k, v in dict(schedule["config"]).items() if k != "name"
                }
                arguments["learning_rate"] = schedule
            cls = optimizers.REGISTRY.lookup(str(plain["class_name"]))
            optimizer = cls.from_config(arguments) if hasattr(cls, "from_config") else None
            if optimizer is None:
                optimizer = cls(**arguments)
        loss = compile_config.get("loss")
        if isinstance(loss, dict):
            plain = _plain(loss)
            plain["config"] = {
                k: v
                for k, v in dict(plain["config"]).items()
                if k not in _LOSS_IGNORED and not (k in _LOSS_DEFAULTS and v == _LOSS_DEFAULTS[k])
            }
            loss = plain
        elif not isinstance(loss, str):
            raise ValueError(f"the loss {loss!r} is not one loss (a name or a loss config)")
        metrics = compile_config.get("metrics")
        if metrics is not None and not all(isinstance(m, str) for m in metrics):
            raise ValueError(f"metrics {metrics!r} are not all names")
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    except (ValueError, TypeError, KeyError) as error:
        warnings.warn(
            f"{where}: the model is loaded but not compiled, because its compile "
            f"configuration cannot be reproduced in multilayer ({error}). Call compile() "
            "before fit or evaluate.",
            stacklevel=3,
        )
        model.loss = None
