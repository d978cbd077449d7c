"""Utilities with Keras' names: one-hot encoding, normalisation, seeding, data splitting."""

from multilayer.engine.config import floatx, set_floatx
from multilayer.engine.random import set_random_seed
from multilayer.utils.data_utils import normalize, to_categorical, train_validation_split

__all__ = [
    "floatx",
    "normalize",
    "set_floatx",
    "set_random_seed",
    "to_categorical",
    "train_validation_split",
]
