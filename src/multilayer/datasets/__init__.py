"""Datasets with Keras' API (``multilayer.datasets.mnist.load_data()``), and
`load_dataset` for a built-in dataset by name or your own ``.npz`` file, checked.

Each built-in module downloads its files on first use into ``multilayer.data.data_dir()``
(set ``MULTILAYER_DATA`` to choose the directory) and verifies their checksums.
"""

from multilayer.datasets import fashion_mnist, mnist
from multilayer.datasets.dataset import (
    BUILTIN,
    DATASETS,
    NPZ_KEYS,
    Dataset,
    check_split,
    class_count,
    is_builtin,
    load_dataset,
)
from multilayer.datasets.npz import MAX_NPZ_BYTES, read_npz

__all__ = [
    "BUILTIN",
    "DATASETS",
    "MAX_NPZ_BYTES",
    "NPZ_KEYS",
    "Dataset",
    "check_split",
    "class_count",
    "fashion_mnist",
    "is_builtin",
    "load_dataset",
    "mnist",
    "read_npz",
]
