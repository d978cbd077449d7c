"""Keras-compatible namespace: ``from multilayer.layers import Dense, Flatten, Concatenate``."""

import sys as _sys

from multilayer import _layers_core as core
from multilayer.engine.layers import (  # noqa: F401
    REGISTRY,
    Activation,
    Add,
    Average,
    Concatenate,
    Dense,
    Dot,
    Dropout,
    Flatten,
    Input,
    InputLayer,
    Layer,
    Maximum,
    Minimum,
    Multiply,
    Rescaling,
    Subtract,
    add,
    average,
    concatenate,
    deserialize,
    dot,
    maximum,
    minimum,
    multiply,
    serialize,
    subtract,
)

# Keras 2's ``keras.layers.core`` (the same classes), for old programs importing from there.
_sys.modules[f"{__name__}.core"] = core
