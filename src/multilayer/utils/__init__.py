"""Utilities with Keras' names: one-hot encoding, normalisation, seeding, data splitting."""

from multilayer.engine.config import floatx, set_floatx
from multilayer.engine.random import set_random_seed
from multilayer.models.data_adapters import PyDataset
from multilayer.utils.data_utils import normalize, to_categorical, train_validation_split

#: Keras 2 name of `PyDataset`
Sequence = PyDataset

__all__ = [
    "PyDataset",
    "Sequence",
    "floatx",
    "normalize",
    "set_floatx",
    "set_random_seed",
    "to_categorical",
    "train_validation_split",
]
