"""Keras-compatible namespace: ``from multilayer.layers import Dense, Flatten``."""

from multilayer.engine.layers import (  # noqa: F401
    REGISTRY,
    Activation,
    Dense,
    Dropout,
    Flatten,
    Input,
    InputLayer,
    Layer,
    Rescaling,
    deserialize,
    serialize,
)
