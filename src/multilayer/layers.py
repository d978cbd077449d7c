"""Keras-compatible namespace: ``from multilayer.layers import Dense, Flatten, Concatenate``."""

from multilayer.engine.layers import (  # noqa: F401
    REGISTRY,
    Activation,
    Add,
    Average,
    Concatenate,
    Dense,
    Dropout,
    Flatten,
    Input,
    InputLayer,
    Layer,
    Multiply,
    Rescaling,
    add,
    average,
    concatenate,
    deserialize,
    multiply,
    serialize,
)
