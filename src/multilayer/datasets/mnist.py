"""MNIST handwritten digits, as ``keras.datasets.mnist``.

The four IDX files of the original distribution live in ``data_dir()/mnist``. They are
downloaded on first use from the mirrors below (override with the ``mirrors`` argument or
the environment variable ``MULTILAYER_MNIST_MIRRORS``, URLs separated by commas), and
verified against the MD5 checksums of their *decompressed* content as published with
MNIST, so any faithful copy, however it was recompressed, is accepted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from multilayer.data.download import Md5Of, fetch_files, mirrors_from_env
from multilayer.data.idx import read_idx
from multilayer.data.paths import data_dir
from multilayer.errors import DataError

__all__ = ["CLASS_NAMES", "DEFAULT_MIRRORS", "FILES", "MIRRORS_ENV_VAR", "SUBDIR", "load_data"]

#: Subdirectory of the data root.
SUBDIR = "mnist"
#: The label of each class: the digit itself.
CLASS_NAMES = tuple(str(digit) for digit in range(10))
#: Environment variable overriding the mirror list.
MIRRORS_ENV_VAR = "MULTILAYER_MNIST_MIRRORS"
DEFAULT_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
#: File name -> MD5 of its decompressed content (train images, train labels, test images,
#: test labels: the order ``load_data`` relies on).
FILES = {
    "train-images-idx3-ubyte.gz": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte.gz": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte.gz": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte.gz": "27ae3e4e09519cfbb04c329615203637",
}

Split = tuple[np.ndarray, np.ndarray]


def load_data(
    path: str | os.PathLike[str] | None = None, *, mirrors: Sequence[str] | None = None
) -> tuple[Split, Split]:
    """Load MNIST, downloading and verifying it on first use.

    Args:
        path: the data root directory (MNIST is in its ``mnist`` subdirectory). Default:
            ``MULTILAYER_DATA``, else the per-user cache (see ``multilayer.data.data_dir``).
            Unlike Keras, this names a directory, not an .npz file.
        mirrors: base URLs to download from (default: ``MULTILAYER_MNIST_MIRRORS``, else
            ``DEFAULT_MIRRORS``).

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: uint8 arrays of shapes (60000, 28, 28),
        (60000,), (10000, 28, 28), (10000,); pixels 0..255, labels 0..9.

    Raises:
        DatasetNotFoundError: files are missing and cannot be downloaded; the message says
            which files to put in which directory.
        DataError: a file is damaged, fails its checksum, or is inconsistent.
    """
    return load_idx_dataset(
        "MNIST",
        data_dir(path) / SUBDIR,
        FILES,
        mirrors_from_env(mirrors, MIRRORS_ENV_VAR, DEFAULT_MIRRORS),
        md5_of="decompressed",
    )


def load_idx_dataset(
    title: str,
    dataset_dir: Path,
    files: Mapping[str, str],
    mirrors: Sequence[str],
    *,
    md5_of: Md5Of,
    num_classes: int = 10,
) -> tuple[Split, Split]:
    """Fetch and load an MNIST-format dataset (shared with Fashion-MNIST).

    ``files`` maps the train images, train labels, test images and test labels file names,
    in this order, to their MD5s.
    """
    paths = list(fetch_files(files, dataset_dir, mirrors, md5_of=md5_of, title=title).values())
    train = load_split(paths[0], paths[1], num_classes)
    test = load_split(paths[2], paths[3], num_classes)
    return train, test


def load_split(images_path: Path, labels_path: Path, num_classes: int = 10) -> Split:
    """Read an images file and its labels file, and check they belong together.

    Returns:
        ``(images, labels)``: uint8 arrays of shapes (n, height, width) and (n,).

    Raises:
        DataError: wrong dtype or number of dimensions, different counts, or a label
            outside ``0..num_classes-1``.
    """
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise DataError(
            f"{images_path}: expected uint8 images of shape (n, height, width), found "
            f"{images.dtype} of shape {images.shape}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataError(
            f"{labels_path}: expected uint8 labels of shape (n,), found {labels.dtype} of "
            f"shape {labels.shape}"
        )
    if len(labels) != len(images):
        raise DataError(
            f"{labels_path}: expected {len(images)} labels, one per image of "
            f"{images_path.name}, found {len(labels)}"
        )
    if labels.size and labels.max() >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise DataError(
            f"{labels_path}: expected labels 0..{num_classes - 1}, found {labels[bad]} at "
            f"index {bad}"
        )
    return images, labels
