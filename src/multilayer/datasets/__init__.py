"""Ready-to-use datasets with Keras' API: ``multilayer.datasets.mnist.load_data()``.

Each module downloads its files on first use into ``multilayer.data.data_dir()`` (set
``MULTILAYER_DATA`` to choose the directory) and verifies their checksums.
"""

from multilayer.datasets import fashion_mnist, mnist

#: The built-in datasets by name: each module has ``load_data``, ``SUBDIR`` and ``CLASS_NAMES``.
BUILTIN = {"mnist": mnist, "fashion_mnist": fashion_mnist}

__all__ = ["BUILTIN", "fashion_mnist", "mnist"]
