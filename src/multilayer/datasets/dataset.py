"""A classification dataset by name: a built-in one, your own ``.npz`` file or image folder,
checked.

``load_dataset("mnist")``, ``load_dataset("fashion_mnist")`` or
``load_dataset("my_data.npz")`` returns a `Dataset`. An ``.npz`` file holds the arrays
``x_train``, ``y_train``, ``x_test``, ``y_test``: images of any size (n, height, width)
with numeric pixels 0..255, and integer labels 0..K-1 for any number of classes K >= 2
(K is the largest label + 1). It is
read with `multilayer.datasets.npz.read_npz`, which trusts nothing in the file. Every
source is checked the same way before any training: shapes, label range, NaN, pixel range.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from multilayer.data.paths import data_dir as resolve_data_dir
from multilayer.datasets import fashion_mnist, mnist
from multilayer.datasets.folder import ImageOptions
from multilayer.datasets.npz import MAX_NPZ_BYTES, read_npz
from multilayer.errors import DataError

__all__ = [
    "BUILTIN",
    "DATASETS",
    "NPZ_KEYS",
    "Dataset",
    "check_split",
    "class_count",
    "is_builtin",
    "load_dataset",
]

#: The built-in datasets by name: each module has ``load_data``, ``SUBDIR`` and ``CLASS_NAMES``.
BUILTIN = {"mnist": mnist, "fashion_mnist": fashion_mnist}
#: Names of the built-in datasets.
DATASETS = tuple(BUILTIN)
#: The arrays an ``.npz`` dataset must hold.
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


@dataclass
class Dataset:
    """A classification dataset as uint8-range images and integer labels."""

    name: str
    source: str  # the directory or file it was read from (absolute)
    x_train: np.ndarray  # (n, height, width), pixel values 0..255
    y_train: np.ndarray  # (n,), integer labels 0..num_classes-1
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    #: Read from an image folder (``multilayer.datasets.folder``): images to predict on are
    #: then prepared as its images were (`multilayer.datasets.folder.prepare_image`).
    image_folder: bool = False

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    def describe(self) -> dict:
        described = {
            "name": self.name,
            "source": self.source,
            "train_samples": len(self.x_train),
            "test_samples": len(self.x_test),
            "image_shape": list(self.image_shape),
            "classes": list(self.class_names),
        }
        if self.image_folder:
            described["image_folder"] = True
        return described


def is_builtin(name: str) -> bool:
    """Whether ``name`` names a built-in dataset (``-`` and case ignored)."""
    return _builtin_key(name) in BUILTIN


def _builtin_key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def load_dataset(
    name: str | os.PathLike[str],
    data_dir: str | os.PathLike[str] | None = None,
    *,
    max_bytes: int = MAX_NPZ_BYTES,
    image_options: ImageOptions | None = None,
) -> Dataset:
    """Load and check a dataset (see the module docstring).

    Args:
        name: "mnist", "fashion_mnist", the path of an ``.npz`` file, or an image folder
            (one sub-folder per class; see `multilayer.datasets.folder`: grayscale 28x28,
            20% of each class held out for testing by a fixed seed).
        data_dir: the data root for the built-in datasets; None means ``MULTILAYER_DATA``,
            else the per-user cache.
        max_bytes: the largest total size of an ``.npz`` file's arrays.
        image_options: how an image folder is read (`multilayer.datasets.folder.ImageOptions`:
            size, grayscale or RGB, skip or refuse undecodable files); only for a folder.

    Raises:
        DataError: an unreadable or malformed file, malformed arrays, labels out of range,
            NaN or out-of-range pixels.
        DatasetNotFoundError: the built-in dataset is not on disk and cannot be downloaded.
        ImageError: an image of a folder cannot be decoded (named).
        FileNotFoundError: the ``.npz`` file does not exist.
        ValueError: ``name`` is neither a built-in dataset nor an ``.npz`` path.
    """
    text = os.fspath(name)
    image_folder = False
    if image_options is not None and not Path(text).expanduser().is_dir():
        raise ValueError(
            f"{text} is not an image folder: image options (size, color mode, bad images) "
            "only apply to image folders"
        )
    if is_builtin(text):
        key = _builtin_key(text)
        module = BUILTIN[key]
        (x_train, y_train), (x_test, y_test) = module.load_data(data_dir)
        names = tuple(module.CLASS_NAMES)
        source = str((resolve_data_dir(data_dir) / module.SUBDIR).absolute())
        check_split(x_train, y_train, f"{source}: x_train", f"{source}: y_train", len(names))
        check_split(x_test, y_test, f"{source}: x_test", f"{source}: y_test", len(names))
        dataset_name = key
    elif text.endswith(".npz"):
        path = Path(text).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{text}: no such file")
        source = str(path.absolute())
        arrays = read_npz(path, NPZ_KEYS, max_bytes=max_bytes)
        x_train, y_train, x_test, y_test = (arrays[key] for key in NPZ_KEYS)
        check_split(x_train, y_train, f"{text}: x_train", f"{text}: y_train")
        check_split(x_test, y_test, f"{text}: x_test", f"{text}: y_test")
        classes = class_count({f"{text}: y_train": y_train, f"{text}: y_test": y_test})
        names = tuple(str(c) for c in range(classes))
        dataset_name = path.stem
    elif Path(text).expanduser().is_dir():
        from multilayer.datasets.folder import load_image_folder

        path = Path(text).expanduser()
        source = str(path.absolute())
        options = image_options or ImageOptions()
        arrays, names, _ = load_image_folder(
            path,
            image_size=options.image_size,
            color_mode=options.color_mode,
            on_error=options.on_error,
        )
        x_train, y_train, x_test, y_test = (arrays[key] for key in NPZ_KEYS)
        rgb = options.color_mode == "rgb"
        check_split(
            x_train, y_train, f"{text}: training images", f"{text}: labels", len(names), rgb
        )
        check_split(x_test, y_test, f"{text}: test images", f"{text}: labels", len(names), rgb)
        dataset_name = path.name
        image_folder = True
    else:
        from multilayer.utils.naming import unknown_name_error

        error = unknown_name_error("dataset", text, DATASETS)
        raise ValueError(f"{error} Or give the path of an .npz file or an image folder.")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"{source}: training images are {x_train.shape[1:]} but test images are "
            f"{x_test.shape[1:]}"
        )
    return Dataset(
        dataset_name,
        source,
        x_train,
        y_train.astype(np.intp),
        x_test,
        y_test.astype(np.intp),
        names,
        image_folder,
    )


def _check_labels(y: np.ndarray, name: str) -> None:
    if y.dtype.kind not in "uif":
        raise DataError(f"{name}: labels must be integers, got dtype {y.dtype}")
    if y.dtype.kind == "f" and not (np.isfinite(y).all() and np.all(np.mod(y, 1) == 0)):
        raise DataError(f"{name}: labels must be integers, found NaN or fractional values")


def class_count(labels: dict[str, np.ndarray]) -> int:
    """K for labels 0..K-1: the largest label of all the splits + 1, at least 2, and at most
    the number of labels (so that a stray huge label cannot ask for a huge output layer).

    Args:
        labels: name (for messages) -> integer-valued label array, already checked by
            `check_split`.

    Raises:
        DataError: a negative label, fewer than 2 classes, or too large a label.
    """
    for name, y in labels.items():
        if (y < 0).any():
            index = int(np.argmax(y < 0))
            raise DataError(
                f"{name}: label {y[index]:g} at index {index} is negative: labels must be 0..K-1"
            )
    samples = sum(len(y) for y in labels.values())
    name, y = max(labels.items(), key=lambda item: item[1].max())
    largest = y.max()
    if largest < 1:
        raise DataError(
            f"{name}: every label is {largest:g}: a classification needs at least 2 classes "
            "(labels 0..K-1)"
        )
    if largest >= samples:
        raise DataError(
            f"{name}: the largest label is {largest:g}, so the labels would name "
            f"{largest + 1:g} classes but there are only {samples} samples: labels must be "
            "0..K-1, numbered from 0"
        )
    return int(largest) + 1


def check_split(
    x: np.ndarray,
    y: np.ndarray,
    x_name: str,
    y_name: str,
    classes: int | None = None,
    rgb: bool = False,
) -> int | None:
    """Check images ``x`` (n, height, width) and labels ``y`` (n,) for ``classes`` classes.

    Args:
        classes: the number of classes; None skips the label range check (see
            `class_count` to take the number from the labels).
        rgb: the images are (n, height, width, 3) (an image folder read in RGB).

    Returns:
        ``classes``.

    Raises:
        DataError: wrong shapes or dtypes, NaN or infinite pixels, pixels outside 0..255,
            non-integer labels, or a label outside ``0..classes-1``; the message names the
            array and the first offending index.
    """
    shape_ok = x.ndim == 4 and x.shape[-1] == 3 if rgb else x.ndim == 3
    if x.dtype.kind not in "uif" or not shape_ok or 0 in x.shape:
        expected = "(n, height, width, 3)" if rgb else "(n, height, width)"
        raise DataError(
            f"{x_name}: expected images of shape {expected} with numeric pixels and "
            f"no empty dimension, got "
            f"{x.dtype} of shape {x.shape}"
        )
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(
            f"{y_name}: expected {len(x)} labels of shape ({len(x)},), got shape {y.shape}"
        )
    if x.dtype.kind == "f":
        finite = np.isfinite(x.reshape(len(x), -1)).all(axis=1)
        if not finite.all():
            raise DataError(
                f"{x_name} contains NaN or infinite values ({int((~finite).sum())} image(s), "
                f"first at index {int(np.argmin(finite))})"
            )
    if x.dtype != np.uint8 and (x.min() < 0 or x.max() > 255):
        raise DataError(
            f"{x_name}: pixel values must be in 0..255, found {x.min():g} to {x.max():g}"
        )
    _check_labels(y, y_name)
    if classes is None:
        return None
    bad = (y < 0) | (y >= classes)
    if bad.any():
        index = int(np.argmax(bad))
        raise DataError(
            f"{y_name}: label {y[index]:g} at index {index} is out of range: expected 0 to "
            f"{classes - 1}"
        )
    return classes
