"""Keras-compatible namespace for weight initializers."""

from multilayer.engine.initializers import (  # noqa: F401
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    Initializer,
    LecunNormal,
    Ones,
    RandomNormal,
    RandomUniform,
    Zeros,
    get,
)
