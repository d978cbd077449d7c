"""Keras-compatible namespace for weight constraints: ``Dense(64, kernel_constraint=MaxNorm(3))``."""

from multilayer.engine.constraints import (  # noqa: F401
    Constraint,
    MaxNorm,
    MinMaxNorm,
    NonNeg,
    UnitNorm,
    deserialize,
    get,
    max_norm,
    min_max_norm,
    non_neg,
    serialize,
    unit_norm,
)
