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

# Keras 2's ``keras.layers.core`` (the same classes), for old programs importing from there.
_sys.modules[f"{__name__}.core"] = core
