"""Utilities with Keras' names: one-hot encoding, normalisation, seeding, data splitting,
padding, downloading, plotting a model, image folders, FeatureSpace (table columns)."""

from multilayer.backend import clear_session
from multilayer.engine.config import floatx, set_floatx
from multilayer.engine.random import set_random_seed
from multilayer.models.data_adapters import PyDataset
from multilayer.tabular.features import FeatureSpace
from multilayer.utils import np_utils
from multilayer.utils.data_utils import normalize, to_categorical, train_validation_split
from multilayer.utils.dataset_utils import split_dataset
from multilayer.utils.file_utils import get_file
from multilayer.utils.image_dataset_utils import image_dataset_from_directory
from multilayer.utils.model_visualization import plot_model
from multilayer.utils.sequence_utils import pad_sequences

#: Keras 2 name of `PyDataset`
Sequence = PyDataset

__all__ = [
    "FeatureSpace",
    "PyDataset",
    "Sequence",
    "clear_session",
    "floatx",
    "get_file",
    "image_dataset_from_directory",
    "normalize",
    "np_utils",
    "pad_sequences",
    "plot_model",
    "set_floatx",
    "set_random_seed",
    "split_dataset",
    "to_categorical",
    "train_validation_split",
]
