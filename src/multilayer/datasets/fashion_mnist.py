"""Fashion-MNIST (Zalando), as ``keras.datasets.fashion_mnist``.

Same format, sizes and file names as MNIST, in ``data_dir()/fashion_mnist``. Mirrors can
be overridden with the ``mirrors`` argument or ``MULTILAYER_FASHION_MNIST_MIRRORS``.

Unlike MNIST, the authors publish the MD5 of the **.gz files as downloaded**, not of their
decompressed content, so that is what is verified: a copy recompressed by someone else
is refused, even when its content is identical.

Labels: 0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal, 6 Shirt,
7 Sneaker, 8 Bag, 9 Ankle boot (see ``CLASS_NAMES``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from multilayer.data.download import mirrors_from_env
from multilayer.data.paths import data_dir
from multilayer.datasets.mnist import Split, load_idx_dataset

__all__ = ["CLASS_NAMES", "DEFAULT_MIRRORS", "FILES", "MIRRORS_ENV_VAR", "SUBDIR", "load_data"]

SUBDIR = "fashion_mnist"
MIRRORS_ENV_VAR = "MULTILAYER_FASHION_MNIST_MIRRORS"
DEFAULT_MIRRORS = (
    "https://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
)
#: File name -> MD5 of the .gz file itself (train images, train labels, test images, test
#: labels).
FILES = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def load_data(
    path: str | os.PathLike[str] | None = None, *, mirrors: Sequence[str] | None = None
) -> tuple[Split, Split]:
    """Load Fashion-MNIST, downloading and verifying it on first use.

    Args:
        path: the data root directory (the dataset is in its ``fashion_mnist``
            subdirectory). Default: ``MULTILAYER_DATA``, else the per-user cache.
        mirrors: base URLs to download from (default: ``MULTILAYER_FASHION_MNIST_MIRRORS``,
            else ``DEFAULT_MIRRORS``).

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: uint8 arrays of shapes (60000, 28, 28),
        (60000,), (10000, 28, 28), (10000,); pixels 0..255, labels 0..9.

    Raises:
        DatasetNotFoundError: files are missing and cannot be downloaded; the message says
            which files to put in which directory.
        DataError: a file is damaged, fails its checksum, or is inconsistent.
    """
    return load_idx_dataset(
        "Fashion-MNIST",
        data_dir(path) / SUBDIR,
        FILES,
        mirrors_from_env(mirrors, MIRRORS_ENV_VAR, DEFAULT_MIRRORS),
        md5_of="file",
    )
