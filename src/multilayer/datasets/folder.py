"""An image folder as a `multilayer.datasets.Dataset`: ``load_dataset("path/to/folder")``.

The folder holds one sub-folder per class (``root/<class>/*.png|jpg|jpeg|bmp|gif``, searched
recursively; see `multilayer.utils.image_dataset_from_directory` for which files count).
Every image is converted to grayscale and resized to ``image_size`` (28x28 by default, the
size of the built-in datasets), giving uint8 pixels 0..255. The class names are the folder
names, in alphabetical order. A fixed fraction ``test_split`` of each class (at least one
image when a class has two or more) is held out as the test set, chosen by a seeded shuffle,
so the same folder always gives the same split (``mlp evaluate`` and ``mlp report`` reload
it). The folder is only read, never written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from multilayer.errors import DataError, ImageError

__all__ = ["COLOR_MODES", "ImageOptions", "load_image_folder", "prepare_image"]

#: How images are resized (Pillow's box filter: every source pixel counts once).
INTERPOLATION = "area"
#: Seed of the train/test split of a folder (fixed: the split must be reproducible).
SPLIT_SEED = 0
COLOR_MODES = ("grayscale", "rgb")
#: Largest image side a folder may be resized to (a bound on the arrays it makes).
MAX_SIDE = 1024


@dataclass(frozen=True)
class ImageOptions:
    """How an image folder is read: the size images are resized to, grayscale or RGB, and
    what to do with a file that cannot be decoded (``"raise"``: stop, naming it; ``"skip"``:
    leave it out)."""

    image_size: tuple[int, int] = (28, 28)
    color_mode: str = "grayscale"
    on_error: str = "raise"

    def __post_init__(self) -> None:
        size = self.image_size
        if (
            not isinstance(size, tuple)
            or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in size)
            or not all(0 < v <= MAX_SIDE for v in size)
        ):
            raise ValueError(
                f"image_size must be (height, width) with sides 1..{MAX_SIDE}, got {size!r}"
            )
        if self.color_mode not in COLOR_MODES:
            raise ValueError(
                f"color_mode must be one of {list(COLOR_MODES)}, got {self.color_mode!r}"
            )
        if self.on_error not in ("raise", "skip"):
            raise ValueError(f'on_error must be "raise" or "skip", got {self.on_error!r}')

    def to_config(self) -> dict:
        return {
            "image_size": list(self.image_size),
            "color_mode": self.color_mode,
            "on_error": self.on_error,
        }

    @classmethod
    def from_config(cls, config: object) -> ImageOptions:
        """The options ``to_config`` wrote; ValueError for anything else."""
        if not isinstance(config, dict) or set(config) != {"image_size", "color_mode", "on_error"}:
            raise ValueError(
                f"image options must be {{image_size, color_mode, on_error}}, got {config!r}"
            )
        size = config["image_size"]
        if not isinstance(size, list):
            raise ValueError(f"image_size must be [height, width], got {size!r}")
        return cls(tuple(size), config["color_mode"], config["on_error"])


def load_image_folder(
    directory: str | os.PathLike[str],
    *,
    image_size: tuple[int, int] = (28, 28),
    test_split: float = 0.2,
    on_error: str = "raise",
    interpolation: str = INTERPOLATION,
    color_mode: str = "grayscale",
) -> tuple[dict[str, np.ndarray], tuple[str, ...], list[tuple[str, str]]]:
    """Read an image folder into train and test arrays.

    Args:
        directory: the folder, with one sub-folder per class.
        image_size: ``(height, width)`` of every image.
        test_split: fraction of each class held out for testing, in (0, 1).
        on_error: ``"raise"`` (stop at the first image that cannot be decoded, naming it)
            or ``"skip"`` (leave it out; it is listed in the third return value).
        interpolation: as `multilayer.utils.image_dataset_from_directory`.
        color_mode: ``"grayscale"`` (images ``(n, height, width)``) or ``"rgb"``
            (``(n, height, width, 3)``).

    Returns:
        ``(arrays, class_names, skipped)``: arrays ``x_train``, ``y_train``, ``x_test``,
        ``y_test`` (uint8 (n, height, width) and intp labels), the class names, and the
        ``(path, reason)`` of each skipped file.

    Raises:
        DataError: fewer than two classes, no images, no decodable images, or a class with
            too few images to be in both splits.
        ImageError: an image cannot be decoded and ``on_error="raise"``.
        FileNotFoundError: ``directory`` is not a directory.
    """
    from multilayer.utils.image_dataset_utils import load_image_file, paths_and_labels

    if on_error not in ("raise", "skip"):
        raise ValueError(f'on_error must be "raise" or "skip", got {on_error!r}')
    if color_mode not in COLOR_MODES:
        raise ValueError(f"color_mode must be one of {list(COLOR_MODES)}, got {color_mode!r}")
    if not 0 < test_split < 1:
        raise ValueError(f"test_split must be in (0, 1), got {test_split}")
    try:
        paths, labels, names = paths_and_labels(directory)
    except ValueError as error:
        raise DataError(str(error)) from None
    assert labels is not None
    height, width = image_size
    channels = () if color_mode == "grayscale" else (3,)
    images = np.empty((len(paths), height, width, *channels), dtype=np.uint8)
    kept: list[int] = []
    skipped: list[tuple[str, str]] = []
    for i, path in enumerate(paths):
        try:
            pixels = load_image_file(path, image_size, color_mode, interpolation=interpolation)
        except ImageError as error:
            if on_error == "raise":
                raise ImageError(
                    f"{error} (pass on_error='skip' to leave such files out)"
                ) from error
            skipped.append((str(path), str(error)))
            continue
        images[len(kept)] = _to_uint8(pixels if channels else pixels[..., 0])
        kept.append(i)
    if not kept:
        raise DataError(f"{directory}: none of the {len(paths)} image files could be decoded")
    x = images[: len(kept)]
    y = labels[np.asarray(kept, dtype=np.intp)].astype(np.intp)
    rng = np.random.default_rng(SPLIT_SEED)
    test_mask = np.zeros(len(y), dtype=bool)
    for label in range(len(names)):
        members = np.flatnonzero(y == label)
        if len(members) == 0:
            continue
        if len(members) == 1:
            raise DataError(
                f"{Path(directory) / names[label]}: only 1 image, but each class needs at "
                f"least 2 (one for training, one for testing)"
            )
        n_test = min(len(members) - 1, max(1, round(test_split * len(members))))
        test_mask[rng.permutation(members)[:n_test]] = True
    arrays: dict[str, np.ndarray] = {
        "x_train": x[~test_mask],
        "y_train": y[~test_mask],
        "x_test": x[test_mask],
        "y_test": y[test_mask],
    }
    return arrays, names, skipped


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def prepare_image(
    path: str | os.PathLike[str], image_size: tuple[int, int] = (28, 28)
) -> np.ndarray:
    """One picture prepared exactly as `load_image_folder` prepares a folder's images, for a
    model trained on one: grayscale, resized to ``image_size``.

    Returns:
        float32 array of shape ``image_size``, values in [0, 1] (as
        `multilayer.data.images.load_image`, which `mlp predict` feeds to models).

    Raises:
        ImageError: the file cannot be decoded or is too large.
        OSError: the file cannot be read.
    """
    from multilayer.utils.image_dataset_utils import load_image_file

    pixels = load_image_file(path, image_size, "grayscale", interpolation=INTERPOLATION)
    return _to_uint8(pixels[..., 0]).astype(np.float32) / np.float32(255.0)
