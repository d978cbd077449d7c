"""Keras-compatible namespace: ``from multilayer.layers import Dense, Flatten, Concatenate``."""

import sys as _sys

from multilayer import _layers_core as core
from multilayer.engine.layers import (  # noqa: F401
    ELU,
    REGISTRY,
    Activation,
    ActivityRegularization,
    Add,
    AlphaDropout,
    Average,
    BatchNormalization,
    Concatenate,
    Dense,
    Dot,
    Dropout,
    Flatten,
    GaussianDropout,
    GaussianNoise,
    Identity,
    Input,
    InputLayer,
    Layer,
    LayerNormalization,
    LeakyReLU,
    Maximum,
    Minimum,
    Multiply,
    Normalization,
    PReLU,
    ReLU,
    Rescaling,
    Reshape,
    Softmax,
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
