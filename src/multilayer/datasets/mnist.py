"""MNIST handwritten digits, as ``keras.datasets.mnist``.

The four IDX files of the original distribution live in ``data_dir()/mnist``. They are
downloaded on first use from the mirrors below (override with the ``mirrors`` argument or
the environment variable ``MULTILAYER_MNIST_MIRRORS``, URLs separated by commas), and
verified against the MD5 checksums of their *decompressed* content as published with
MNIST, so any faithful copy, however it was recompressed, is accepted.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from multilayer.data.download import FileCheck, Md5Of, fetch_files, mirrors_from_env
from multilayer.data.idx import read_idx
from multilayer.data.paths import data_dir
from multilayer.errors import DataError

__all__ = [
    "CLASS_NAMES",
    "DEFAULT_MIRRORS",
    "FILES",
    "MIRRORS_ENV_VAR",
    "SUBDIR",
    "IdxContent",
    "load_data",
]

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
    files: Mapping[str, str | FileCheck],
    mirrors: Sequence[str],
    *,
    md5_of: Md5Of,
    num_classes: int = 10,
) -> tuple[Split, Split]:
    """Fetch and load an MNIST-format dataset (shared with Fashion-MNIST).

    ``files`` maps the train images, train labels, test images and test labels file names,
    in this order, to their MD5s (of what ``md5_of`` says) or ``FileCheck``s.
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


@dataclass(frozen=True)
class IdxContent:
    """The exact structure of the decompressed content of an MNIST-format uint8 IDX file.

    Calling it makes a streaming ``multilayer.data.download.ContentCheck`` for one file,
    which checks, in this order: the IDX header (type uint8, exactly ``shape``), the exact
    size (header + ``prod(shape)`` bytes), and for a labels file (``class_counts`` given)
    that class ``c`` occurs exactly ``class_counts[c]`` times and no other value occurs.
    It says nothing of the pixel values, nor of which sample carries which label.
    """

    shape: tuple[int, ...]
    #: Labels file: exact number of samples of each class 0..len-1.
    class_counts: tuple[int, ...] | None = None

    @property
    def header(self) -> bytes:
        """The IDX header the content must start with."""
        return struct.pack(f">BBBB{len(self.shape)}I", 0, 0, 0x08, len(self.shape), *self.shape)

    @property
    def size(self) -> int:
        """The exact size of the decompressed content, in bytes."""
        return len(self.header) + math.prod(self.shape)

    def __call__(self) -> _IdxContentCheck:
        return _IdxContentCheck(self)


class _IdxContentCheck:
    """A ``ContentCheck`` for one file, following an ``IdxContent``."""

    def __init__(self, spec: IdxContent) -> None:
        self._spec = spec
        self._header = spec.header
        self._head = bytearray()
        self._size = 0
        self._counts = np.zeros(256, dtype=np.int64)

    def update(self, chunk: bytes) -> bool:
        missing = len(self._header) - len(self._head)
        self._head += chunk[:missing]
        payload = chunk[max(missing, 0) :]
        self._size += len(chunk)
        if self._size > self._spec.size or not self._header.startswith(self._head):
            return False  # refused whatever follows: read no further
        if self._spec.class_counts is not None and payload:
            self._counts += np.bincount(np.frombuffer(payload, dtype=np.uint8), minlength=256)
        return True

    def problem(self) -> str | None:
        spec = self._spec
        if not self._header.startswith(self._head):
            return (
                f"the decompressed content does not start with the IDX header of uint8 data "
                f"of shape {spec.shape} (0x{self._header.hex().upper()}): found "
                f"0x{bytes(self._head).hex().upper()}"
            )
        if self._size > spec.size:
            return f"the decompressed content is longer than the expected {spec.size} bytes"
        if self._size != spec.size:
            return f"the decompressed content is {self._size} bytes, expected {spec.size}"
        if spec.class_counts is None:
            return None
        classes = len(spec.class_counts)
        outside = int(self._counts[classes:].sum())
        if outside:
            return f"expected labels 0..{classes - 1}, found {outside} outside that range"
        found = self._counts[:classes].tolist()
        if found == list(spec.class_counts):
            return None
        if len(set(spec.class_counts)) == 1:
            wrong = ", ".join(
                f"{n} of class {c}" for c, n in enumerate(found) if n != spec.class_counts[c]
            )
            return (
                f"expected {spec.class_counts[0]} labels of each class 0..{classes - 1}, "
                f"found {wrong}"
            )
        return (
            f"expected {list(spec.class_counts)} labels of classes 0..{classes - 1}, found {found}"
        )
