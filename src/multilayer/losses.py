"""Keras-compatible namespace for losses: classes and per-sample functions."""

from multilayer.engine.losses import (  # noqa: F401
    BinaryCrossentropy,
    CategoricalCrossentropy,
    Hinge,
    Loss,
    MeanAbsoluteError,
    MeanSquaredError,
    SparseCategoricalCrossentropy,
    binary_crossentropy,
    categorical_crossentropy,
    get,
    hinge,
    mae,
    mean_absolute_error,
    mean_squared_error,
    mse,
    sparse_categorical_crossentropy,
)
