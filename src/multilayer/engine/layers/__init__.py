"""Layers: Dense, the weightless helpers (Input, Flatten, Rescaling, Activation, Dropout) and
the merge layers of functional models (Concatenate, Add, Multiply, Average)."""

from multilayer.engine.layers.base import Layer
from multilayer.engine.layers.core import Activation, Dropout, Flatten, Input, InputLayer, Rescaling
from multilayer.engine.layers.dense import Dense
from multilayer.engine.layers.merge import (
    Add,
    Average,
    Concatenate,
    Multiply,
    add,
    average,
    concatenate,
    multiply,
)
from multilayer.engine.layers.symbolic import KerasTensor
from multilayer.engine.registry import Config, Registry

__all__ = [
    "Activation",
    "Add",
    "Average",
    "Concatenate",
    "Dense",
    "Dropout",
    "Flatten",
    "Input",
    "InputLayer",
    "KerasTensor",
    "Layer",
    "Multiply",
    "Rescaling",
    "add",
    "average",
    "concatenate",
    "multiply",
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
    Dropout,
    Flatten,
    InputLayer,
    Multiply,
    Rescaling,
):
    REGISTRY.register(_cls, names=())


def serialize(layer: Layer) -> Config:
    """``{"class_name": ..., "config": ...}``, as in Keras' model configs."""
    return REGISTRY.serialize(layer)


def deserialize(config: Config) -> Layer:
    """The layer described by a `serialize` dict. Unknown types or keys raise ValueError."""
    return REGISTRY.deserialize(config)
