"""Fashion-MNIST (Zalando), as ``keras.datasets.fashion_mnist``.

Same format, sizes and file names as MNIST, in ``data_dir()/fashion_mnist``. Mirrors can
be overridden with the ``mirrors`` argument or ``MULTILAYER_FASHION_MNIST_MIRRORS``.

Unlike MNIST, the authors publish only the MD5 of the **.gz files as downloaded**, not of
their decompressed content, yet distributions and mirrors often ship the same content
recompressed. Each file is therefore verified as follows (``file_checks``):

1. Its own MD5 is the published one (``FILES``): it is the official file, bit for bit.
2. Otherwise, if the MD5 of its decompressed content is known (``CONTENT_MD5``), that
   must match: then a recompressed copy is guaranteed identical in content to the
   official files. **These digests are not known yet** (``None``): the official files
   were not at hand when this was written, and they must not be taken from an
   unverified copy.
3. Otherwise its decompressed content must have exactly the published structure
   (``CONTENT``): gzip's own CRC-32 and length checks intact; the exact IDX header
   (uint8, 60000x28x28 and 10000x28x28 images, 60000 and 10000 labels); the exact size
   (47040016, 60008, 7840016 and 10008 bytes); labels 0..9 with exactly 6000 of each
   class in the training set and 1000 in the test set, as Fashion-MNIST is balanced.
   This refuses truncated, damaged or mislabelled-by-accident files and other datasets,
   but it is **not** proof of identity: pixels changed, or labels swapped between two
   samples, would pass. Until ``CONTENT_MD5`` is filled in, only an official ``.gz``
   file carries that proof.

Labels: 0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal, 6 Shirt,
7 Sneaker, 8 Bag, 9 Ankle boot (see ``CLASS_NAMES``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from multilayer.data.download import FileCheck, mirrors_from_env
from multilayer.data.paths import data_dir
from multilayer.datasets.mnist import IdxContent, Split, load_idx_dataset

__all__ = [
    "CLASS_NAMES",
    "CONTENT",
    "CONTENT_MD5",
    "DEFAULT_MIRRORS",
    "FILES",
    "MIRRORS_ENV_VAR",
    "SUBDIR",
    "file_checks",
    "load_data",
]

SUBDIR = "fashion_mnist"
MIRRORS_ENV_VAR = "MULTILAYER_FASHION_MNIST_MIRRORS"
DEFAULT_MIRRORS = (
    "https://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
)
#: File name -> MD5 of the .gz file itself, as Zalando publishes it (train images, train
#: labels, test images, test labels: the order ``load_data`` relies on).
FILES = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
#: File name -> MD5 of the decompressed content, enforced for any copy whose .gz MD5 is
#: not the published one. NOT KNOWN YET, hence None: Zalando does not publish them and no
#: official copy was available when this was written. Fill them in only from the official
#: files, i.e. ones whose .gz MD5 matches ``FILES`` (``multilayer.data.file_md5(path)``
#: gives the digest), never from a mirror's or a distribution's copy.
CONTENT_MD5: dict[str, str | None] = {
    "train-images-idx3-ubyte.gz": None,
    "train-labels-idx1-ubyte.gz": None,
    "t10k-images-idx3-ubyte.gz": None,
    "t10k-labels-idx1-ubyte.gz": None,
}
#: File name -> exact structure of the decompressed content (checked when neither MD5
#: decides): 60000 training and 10000 test images of 28x28 pixels, and their labels,
#: 6000 of each class in training and 1000 in test.
CONTENT = {
    "train-images-idx3-ubyte.gz": IdxContent((60000, 28, 28)),
    "train-labels-idx1-ubyte.gz": IdxContent((60000,), (6000,) * 10),
    "t10k-images-idx3-ubyte.gz": IdxContent((10000, 28, 28)),
    "t10k-labels-idx1-ubyte.gz": IdxContent((10000,), (1000,) * 10),
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


def file_checks() -> dict[str, FileCheck]:
    """File name -> how it is verified, from ``FILES``, ``CONTENT_MD5`` and ``CONTENT``."""
    return {
        name: FileCheck(md5=md5, content_md5=CONTENT_MD5.get(name), content_check=CONTENT.get(name))
        for name, md5 in FILES.items()
    }


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
        DataError: a file is damaged, fails verification (see the module's docstring:
            a recompressed copy is accepted by its content), or is inconsistent.
    """
    return load_idx_dataset(
        "Fashion-MNIST",
        data_dir(path) / SUBDIR,
        file_checks(),
        mirrors_from_env(mirrors, MIRRORS_ENV_VAR, DEFAULT_MIRRORS),
        md5_of="file",
    )
