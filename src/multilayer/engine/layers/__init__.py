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

_REGISTRY: dict[str, type[Layer]] = {
    cls.__name__: cls
    for cls in (
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
    )
}


def serialize(layer: Layer) -> dict:
    """``{"class_name": ..., "config": ...}``, as in Keras' model configs."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(config: dict) -> Layer:
    """The layer described by a `serialize` dict. Unknown types or keys raise ValueError."""
    from multilayer.utils.naming import unknown_name_error

    if not isinstance(config, dict) or set(config) != {"class_name", "config"}:
        raise ValueError(
            f"a layer config must be {{'class_name': ..., 'config': {{...}}}}, got {config!r}"
        )
    cls = _REGISTRY.get(config["class_name"])
    if cls is None:
        raise unknown_name_error("layer type", str(config["class_name"]), _REGISTRY)
    try:
        return cls.from_config(dict(config["config"]))
    except TypeError as error:
        raise ValueError(
            f"invalid configuration for layer type {config['class_name']}: {error}"
        ) from None
