"""Layers: Dense, the weightless helpers (Input, Flatten, Rescaling, Activation, Dropout), the
merge layers of functional models (Concatenate, Add, Subtract, Multiply, Average, Maximum,
Minimum, Dot), op layers (keras.ops on symbolic tensors), activation layers, normalization,
noise, activity regularization, Reshape, Identity, Embedding and the preprocessing layers
(IntegerLookup, StringLookup, CategoryEncoding, Discretization, Hashing, RobustScaling)."""

from multilayer.engine.layers.activation_layers import ELU, LeakyReLU, PReLU, ReLU, Softmax
from multilayer.engine.layers.base import Layer
from multilayer.engine.layers.core import Activation, Dropout, Flatten, Input, InputLayer, Rescaling
from multilayer.engine.layers.dense import Dense
from multilayer.engine.layers.embedding import Embedding
from multilayer.engine.layers.merge import (
    Add,
    Average,
    Concatenate,
    Dot,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    add,
    average,
    concatenate,
    dot,
    maximum,
    minimum,
    multiply,
    subtract,
)
from multilayer.engine.layers.noise import AlphaDropout, GaussianDropout, GaussianNoise
from multilayer.engine.layers.normalization import (
    BatchNormalization,
    LayerNormalization,
    Normalization,
)
from multilayer.engine.layers.op_layer import OpLayer
from multilayer.engine.layers.preprocessing import (
    CategoryEncoding,
    Discretization,
    Hashing,
    IntegerLookup,
    StringLookup,
)
from multilayer.engine.layers.regularization import ActivityRegularization
from multilayer.engine.layers.reshaping import Identity, Reshape
from multilayer.engine.layers.robust import RobustScaling
from multilayer.engine.layers.symbolic import KerasTensor
from multilayer.engine.registry import Config, Registry

__all__ = [
    "ELU",
    "Activation",
    "ActivityRegularization",
    "Add",
    "AlphaDropout",
    "Average",
    "BatchNormalization",
    "CategoryEncoding",
    "Concatenate",
    "Dense",
    "Discretization",
    "Dot",
    "Dropout",
    "Embedding",
    "Flatten",
    "GaussianDropout",
    "GaussianNoise",
    "Hashing",
    "Identity",
    "Input",
    "InputLayer",
    "IntegerLookup",
    "KerasTensor",
    "Layer",
    "LayerNormalization",
    "LeakyReLU",
    "Maximum",
    "Minimum",
    "Multiply",
    "Normalization",
    "PReLU",
    "ReLU",
    "Rescaling",
    "Reshape",
    "RobustScaling",
    "Softmax",
    "StringLookup",
    "Subtract",
    "add",
    "average",
    "concatenate",
    "dot",
    "maximum",
    "minimum",
    "multiply",
    "subtract",
]

REGISTRY: Registry[Layer] = Registry(
    "layer type", Layer, names_are_class_names=True, noun="layer", legacy=False
)
for _cls in (
    Activation,
    Add,
    Average,
    Concatenate,
    Dense,
    Dot,
    Dropout,
    Flatten,
    InputLayer,
    Maximum,
    Minimum,
    Multiply,
    OpLayer,
    Rescaling,
    Softmax,
    ReLU,
    LeakyReLU,
    PReLU,
    ELU,
    BatchNormalization,
    LayerNormalization,
    Normalization,
    GaussianNoise,
    GaussianDropout,
    AlphaDropout,
    ActivityRegularization,
    Reshape,
    Identity,
    Subtract,
    Embedding,
    IntegerLookup,
    StringLookup,
    CategoryEncoding,
    Discretization,
    Hashing,
    RobustScaling,
):
    REGISTRY.register(_cls, names=())


def serialize(layer: Layer) -> Config:
    """``{"class_name": ..., "config": ...}``, as in Keras' model configs."""
    return REGISTRY.serialize(layer)


def deserialize(config: Config) -> Layer:
    """The layer described by a `serialize` dict. Unknown types or keys raise ValueError."""
    return REGISTRY.deserialize(config)
