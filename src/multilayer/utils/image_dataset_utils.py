"""``image_dataset_from_directory``: a folder of images sorted by class, as Keras'
``keras.utils.image_dataset_from_directory``, without tf.data.

A directory laid out as ``root/<class>/...*.png|jpg|jpeg|bmp|gif`` (sub-folders of a class
folder are searched too) becomes images and integer labels, the classes numbered in
alphabetical order of their folder names. Files with other extensions, files directly in
``root``, and hidden files (names starting with ``.``, such as macOS' ``._photo.jpg``) are
ignored. Images are decoded with Pillow (``multilayer[images]``) under the same limits as
`multilayer.data.images.load_image`: a byte limit checked before reading, a pixel limit
checked from the header before decoding (decompression bombs), and only the whitelisted
formats. Nothing is ever written into the directory.

Differs from Keras: ``batch_size=None`` returns NumPy arrays ``(images, labels)`` (Keras
returns an unbatched ``tf.data.Dataset``); an integer ``batch_size`` returns an
`ImageFolderDataset`, a `multilayer.utils.PyDataset` that decodes one batch at a time (memory
bounded by the batch, whatever the folder's size). ``on_error`` chooses what happens to a
file that cannot be decoded: ``"raise"`` (the default) stops with an
`multilayer.errors.ImageError` naming it, ``"skip"`` leaves it out and counts it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from multilayer.data.images import (
    _DEFAULT_MAX_BYTES,
    _DEFAULT_MAX_PIXELS,
    _pillow,
    _read_bounded,
    decoded_image,
)
from multilayer.errors import ImageError
from multilayer.models.data_adapters import PyDataset

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

__all__ = [
    "ALLOWED_FORMATS",
    "ImageFolderDataset",
    "image_dataset_from_directory",
    "load_image_file",
    "paths_and_labels",
]

#: File extensions read as images (as Keras' ``ALLOWLIST_FORMATS``).
ALLOWED_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
#: ``batch_size=None`` refuses to allocate more than this many bytes of images.
MAX_ARRAY_BYTES = 2**31
_CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
_PIL_MODES = {"grayscale": "L", "rgb": "RGB", "rgba": "RGBA"}
_LABEL_MODES = ("int", "categorical", "binary", None)


def _resampling(interpolation: str) -> Any:
    Image = _pillow()
    methods = {
        "bilinear": Image.Resampling.BILINEAR,
        "nearest": Image.Resampling.NEAREST,
        "bicubic": Image.Resampling.BICUBIC,
        "area": Image.Resampling.BOX,
        "lanczos3": Image.Resampling.LANCZOS,
    }
    if interpolation not in methods:
        raise ValueError(
            f"interpolation must be one of {', '.join(methods)}, got {interpolation!r}"
        )
    return methods[interpolation]


def paths_and_labels(
    directory: str | os.PathLike[str],
    labels: str | Sequence[int] | None = "inferred",
    class_names: Sequence[str] | None = None,
    follow_links: bool = False,
) -> tuple[list[Path], np.ndarray | None, tuple[str, ...]]:
    """The image files under ``directory``, their labels and the class names.

    Returns:
        ``(paths, labels, class_names)``: paths sorted (by class, then by path), labels as
        int32 (None when ``labels`` is None), class names in label order (empty when the
        labels are not inferred).

    Raises:
        FileNotFoundError: ``directory`` is not a directory.
        ValueError: no images, ``class_names`` that do not match the sub-folders, fewer
            than two classes, or explicit labels of the wrong length.
    """
    root = Path(directory).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{directory}: no such directory")
    if labels == "inferred":
        found = sorted(
            p.name
            for p in root.iterdir()
            if not p.name.startswith(".") and (p.is_dir() and (follow_links or not p.is_symlink()))
        )
        if class_names is not None:
            names = tuple(str(c) for c in class_names)
            if sorted(names) != found:
                raise ValueError(
                    f"The `class_names` passed did not match the names of the subdirectories "
                    f"of the target directory. Expected: {found}, but received: {list(names)}"
                )
        else:
            names = tuple(found)
        if len(names) < 2:
            raise ValueError(
                f"{directory}: found {len(names)} class folder(s) {list(names)}: a "
                f"classification needs at least 2 (one sub-folder per class)"
            )
        paths: list[Path] = []
        label_list: list[int] = []
        for index, name in enumerate(names):
            files = _image_files(root / name, follow_links)
            paths.extend(files)
            label_list.extend([index] * len(files))
        out_labels: np.ndarray | None = np.asarray(label_list, dtype=np.int32)
    elif labels is None or isinstance(labels, list | tuple):
        if class_names is not None:
            raise ValueError("class_names is only used with labels='inferred'")
        names = ()
        paths = _image_files(root, follow_links)
        out_labels = None
        if labels is not None:
            if len(labels) != len(paths):
                raise ValueError(
                    f"Expected the lengths of `labels` to match the number of files in the "
                    f"target directory. len(labels) is {len(labels)} while we found "
                    f"{len(paths)} files in directory {directory}."
                )
            out_labels = np.asarray(labels)
            if out_labels.dtype.kind not in "iu" or (out_labels < 0).any():
                raise ValueError("labels must be non-negative integers")
            out_labels = out_labels.astype(np.int32)
    else:
        raise ValueError(
            f"`labels` argument should be a list/tuple of integer labels, of the same size "
            f"as the number of image files in the target directory. If you wish to infer "
            f'the labels from the subdirectory names in the target directory, pass `labels="'
            f'inferred"`. If you wish to get a dataset that only contains images (no '
            f"labels), pass `labels=None`. Received: labels={labels!r}"
        )
    if not paths:
        raise ValueError(
            f"No images found in directory {directory}. Allowed formats: "
            f"{', '.join(ALLOWED_FORMATS)}"
        )
    return paths, out_labels, names


def _image_files(folder: Path, follow_links: bool) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=follow_links):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for filename in filenames:
            if filename.startswith(".") or not filename.lower().endswith(ALLOWED_FORMATS):
                continue
            path = Path(dirpath) / filename
            if not follow_links and path.is_symlink():
                continue
            found.append(path)
    return sorted(found)


def load_image_file(
    path: str | os.PathLike[str],
    image_size: tuple[int, int] = (256, 256),
    color_mode: str = "rgb",
    interpolation: str = "bilinear",
    crop_to_aspect_ratio: bool = False,
    pad_to_aspect_ratio: bool = False,
    *,
    max_bytes: int = _DEFAULT_MAX_BYTES,
    max_pixels: int = _DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """One image file as float32 ``(height, width, channels)`` with values 0..255.

    Raises:
        ImageError: the file is empty, too large, not a whitelisted format, or damaged.
    """
    height, width = image_size
    data, name = _read_bounded(path, max_bytes=max_bytes, name=None)
    if not data:
        raise ImageError(f"{name} is empty (0 bytes)")
    with decoded_image(
        data, name=name, max_pixels=max_pixels, formats="PNG, JPEG, BMP or GIF"
    ) as img:
        converted = _convert(img, color_mode)
    converted = _fit_aspect(converted, width, height, crop_to_aspect_ratio, pad_to_aspect_ratio)
    if converted.size != (width, height):
        converted = converted.resize((width, height), _resampling(interpolation))
    pixels = np.asarray(converted, dtype=np.float32)
    return pixels.reshape(height, width, _CHANNELS[color_mode])


def _convert(img: PILImage, color_mode: str) -> PILImage:
    if img.mode.startswith("I") and color_mode == "grayscale":
        # 16-bit grayscale: scale to 8 bits instead of clipping at 255.
        values = np.asarray(img, dtype=np.float64) / 257.0
        return _pillow().fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))
    if img.mode.startswith("I"):
        return _convert(_convert(img, "grayscale"), color_mode)
    if img.mode == "P" or "transparency" in img.info:
        img = img.convert("RGBA")
    return img.convert(_PIL_MODES[color_mode])


def _fit_aspect(img: PILImage, width: int, height: int, crop: bool, pad: bool) -> PILImage:
    """Centre-crop or zero-pad ``img`` to the aspect ratio ``width / height``."""
    w, h = img.size
    if not (crop or pad) or w * height == h * width:
        return img
    if crop:
        # The largest centred box of the target ratio inside the image.
        if w * height > h * width:
            new_w, new_h = max(1, round(h * width / height)), h
        else:
            new_w, new_h = w, max(1, round(w * height / width))
        left, top = (w - new_w) // 2, (h - new_h) // 2
        return img.crop((left, top, left + new_w, top + new_h))
    # The smallest centred canvas of the target ratio around the image, black.
    if w * height > h * width:
        new_w, new_h = w, max(h, round(w * height / width))
    else:
        new_w, new_h = max(w, round(h * width / height)), h
    canvas = _pillow().new(img.mode, (new_w, new_h))
    canvas.paste(img, ((new_w - w) // 2, (new_h - h) // 2))
    return canvas


class _Loader:
    """The decoding settings shared by arrays and batches, and the skipped files."""

    def __init__(self, **settings: Any) -> None:
        self.settings = settings
        self.on_error = settings.pop("on_error")
        self.skipped: list[tuple[str, str]] = []  # (path, reason)

    def load(self, paths: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
        """Decode ``paths``; returns the images and the indices (into ``paths``) kept."""
        height, width = self.settings["image_size"]
        channels = _CHANNELS[self.settings["color_mode"]]
        out = np.empty((len(paths), height, width, channels), dtype=np.float32)
        kept: list[int] = []
        for i, path in enumerate(paths):
            try:
                out[len(kept)] = load_image_file(path, **self.settings)
            except ImageError as error:
                if self.on_error == "raise":
                    raise
                self.skipped.append((str(path), str(error)))
                continue
            kept.append(i)
        return out[: len(kept)], np.asarray(kept, dtype=np.intp)


def _encode_labels(labels: np.ndarray, label_mode: str | None, num_classes: int) -> np.ndarray:
    if label_mode == "categorical":
        out = np.zeros((len(labels), num_classes), dtype=np.float32)
        out[np.arange(len(labels)), labels] = 1.0
        return out
    if label_mode == "binary":
        return labels.astype(np.float32).reshape(-1, 1)
    return labels


class ImageFolderDataset(PyDataset):
    """Batches ``(images, labels)`` (or ``images``) of an image folder, decoded on demand.

    Made by `image_dataset_from_directory` with an integer ``batch_size``. Each
    ``__getitem__`` decodes only that batch's files, so memory is bounded by one batch.
    With ``on_error="skip"`` a batch may be shorter than ``batch_size`` by the files that
    could not be decoded; those are listed in `skipped` as ``(path, reason)``.

    Attributes:
        file_paths: the files, in the order batches read them.
        class_names: the class names, in label order.
    """

    def __init__(
        self,
        file_paths: list[str],
        labels: np.ndarray | None,
        class_names: tuple[str, ...],
        label_mode: str | None,
        batch_size: int,
        loader: _Loader,
        shuffle: bool,
        seed: int | None,
    ) -> None:
        super().__init__()
        self.file_paths = file_paths
        self.class_names = list(class_names)
        self._labels = labels
        self._label_mode = label_mode
        self._batch_size = batch_size
        self._loader = loader
        self._shuffle = shuffle
        self._rng = np.random.default_rng(seed)
        self._order = np.arange(len(file_paths))

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """The files left out so far (``on_error="skip"``), as ``(path, reason)``."""
        return list(self._loader.skipped)

    def __len__(self) -> int:
        return -(-len(self.file_paths) // self._batch_size)

    def __getitem__(self, index: int) -> Any:
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range: there are {len(self)} batches")
        rows = self._order[index * self._batch_size : (index + 1) * self._batch_size]
        images, kept = self._loader.load([Path(self.file_paths[i]) for i in rows])
        if self._labels is None or self._label_mode is None:
            return images
        labels = self._labels[rows[kept]]
        return images, _encode_labels(labels, self._label_mode, len(self.class_names))

    def on_epoch_end(self) -> None:
        if self._shuffle:
            self._order = self._rng.permutation(len(self.file_paths))


def image_dataset_from_directory(
    directory: str | os.PathLike[str],
    labels: str | Sequence[int] | None = "inferred",
    label_mode: str | None = "int",
    class_names: Sequence[str] | None = None,
    color_mode: str = "rgb",
    batch_size: int | None = 32,
    image_size: tuple[int, int] = (256, 256),
    shuffle: bool = True,
    seed: int | None = None,
    validation_split: float | None = None,
    subset: str | None = None,
    interpolation: str = "bilinear",
    follow_links: bool = False,
    crop_to_aspect_ratio: bool = False,
    pad_to_aspect_ratio: bool = False,
    verbose: bool = True,
    *,
    on_error: str = "raise",
    max_bytes: int = _DEFAULT_MAX_BYTES,
    max_pixels: int = _DEFAULT_MAX_PIXELS,
) -> Any:
    """Images and labels from ``directory`` (see the module docstring).

    Args:
        directory: ``root`` with one sub-folder per class (``labels="inferred"``).
        labels: ``"inferred"`` (from the folder names), None (images only), or a list of
            integer labels, one per image file in sorted path order.
        label_mode: ``"int"`` (int32, shape (n,)), ``"categorical"`` (one-hot float32),
            ``"binary"`` (float32 (n, 1), exactly 2 classes) or None (no labels).
        class_names: the class folder names in the order to number them (must be exactly
            the sub-folders); default alphabetical.
        color_mode: ``"grayscale"``, ``"rgb"`` or ``"rgba"`` (1, 3 or 4 channels).
        batch_size: images per batch (an `ImageFolderDataset`), or None for NumPy arrays.
        image_size: ``(height, width)`` every image is resized to.
        shuffle: shuffle the files (and, for batches, again after every epoch); without it
            they are in alphabetical order.
        seed: seed of the shuffle; required with ``validation_split`` and ``shuffle``.
        validation_split: fraction of the files kept for validation (the last ones after
            the shuffle, as Keras).
        subset: ``"training"``, ``"validation"`` or ``"both"`` (a pair), with
            ``validation_split``.
        interpolation: ``"bilinear"``, ``"nearest"``, ``"bicubic"``, ``"area"`` or
            ``"lanczos3"``.
        follow_links: follow symbolic links to folders and files (ignored otherwise).
        crop_to_aspect_ratio: centre-crop each image to the target aspect ratio first.
        pad_to_aspect_ratio: pad each image with black to the target aspect ratio first.
        verbose: print how many files and classes were found.
        on_error: ``"raise"`` or ``"skip"`` for images that cannot be decoded.
        max_bytes, max_pixels: limits per image file, as `multilayer.data.images.load_image`.

    Returns:
        With ``batch_size=None``: ``(images, labels)`` (``images`` float32 (n, height,
        width, channels), values 0..255), or ``images`` alone without labels. Otherwise an
        `ImageFolderDataset`. With ``subset="both"``, a pair of those (training,
        validation). Arrays carry no class names: read them from
        `paths_and_labels`, or use an `ImageFolderDataset`'s ``class_names``.

    Raises:
        ValueError: an invalid argument, no images, or too many pixels for arrays.
        ImageError: an image cannot be decoded and ``on_error="raise"``.
        FileNotFoundError: ``directory`` does not exist.
    """
    if label_mode not in _LABEL_MODES:
        raise ValueError(
            f'`label_mode` argument must be one of "int", "categorical", "binary", or None. '
            f"Received: label_mode={label_mode!r}"
        )
    if color_mode not in _CHANNELS:
        raise ValueError(
            f'`color_mode` must be one of {{"rgb", "rgba", "grayscale"}}. '
            f"Received: color_mode={color_mode!r}"
        )
    if on_error not in ("raise", "skip"):
        raise ValueError(f'on_error must be "raise" or "skip", got {on_error!r}')
    if crop_to_aspect_ratio and pad_to_aspect_ratio:
        raise ValueError(
            "Only one of `crop_to_aspect_ratio`, `pad_to_aspect_ratio` can be set to `True`."
        )
    if (
        not isinstance(image_size, tuple | list)
        or len(image_size) != 2
        or not all(isinstance(s, int) and s > 0 for s in image_size)
    ):
        raise ValueError(f"image_size must be (height, width), positive ints; got {image_size}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
    _resampling(interpolation)
    if validation_split is not None and not 0 < validation_split < 1:
        raise ValueError(
            f"`validation_split` must be between 0 and 1, received: {validation_split}"
        )
    if subset is not None and subset not in ("training", "validation", "both"):
        raise ValueError(
            f'`subset` must be either "training", "validation" or "both", received: {subset}'
        )
    if (validation_split is None) != (subset is None):
        raise ValueError("If `subset` is set, `validation_split` must be set, and inversely.")
    if validation_split and shuffle and seed is None:
        raise ValueError(
            "If using `validation_split` and shuffling the data, you must provide a `seed` "
            "argument, to make sure that there is no overlap between the training and "
            "validation subset."
        )
    if labels is None:
        label_mode = None

    paths, label_array, names = paths_and_labels(directory, labels, class_names, follow_links)
    num_classes = (
        len(names) if names else (int(label_array.max()) + 1 if label_array is not None else 0)
    )
    if label_mode == "binary" and num_classes != 2:
        raise ValueError(
            f'When passing `label_mode="binary"`, there must be exactly 2 class_names. '
            f"Received: class_names={list(names)}"
        )
    if verbose:
        classes = f" belonging to {num_classes} classes" if names else ""
        print(f"Found {len(paths)} files{classes}.")
    order = np.arange(len(paths))
    if shuffle:
        order = np.random.default_rng(seed).permutation(len(paths))
    files = [str(paths[i]) for i in order]
    ordered_labels = None if label_array is None else label_array[order]

    pieces: list[tuple[list[str], np.ndarray | None]] = []
    if validation_split:
        n_val = int(validation_split * len(files))
        cut = len(files) - n_val
        training = (files[:cut], None if ordered_labels is None else ordered_labels[:cut])
        validation = (files[cut:], None if ordered_labels is None else ordered_labels[cut:])
        if subset in ("training", "both"):
            pieces.append(training)
        if subset in ("validation", "both"):
            pieces.append(validation)
        if verbose:
            if subset in ("training", "both"):
                print(f"Using {cut} files for training.")
            if subset in ("validation", "both"):
                print(f"Using {n_val} files for validation.")
    else:
        pieces.append((files, ordered_labels))

    settings = dict(
        image_size=tuple(image_size),
        color_mode=color_mode,
        interpolation=interpolation,
        crop_to_aspect_ratio=crop_to_aspect_ratio,
        pad_to_aspect_ratio=pad_to_aspect_ratio,
        max_bytes=max_bytes,
        max_pixels=max_pixels,
        on_error=on_error,
    )
    results = []
    for piece_files, piece_labels in pieces:
        loader = _Loader(**settings)
        if batch_size is None:
            results.append(
                _as_arrays(piece_files, piece_labels, label_mode, num_classes, loader, verbose)
            )
        else:
            results.append(
                ImageFolderDataset(
                    piece_files,
                    piece_labels,
                    names,
                    label_mode,
                    batch_size,
                    loader,
                    shuffle,
                    seed,
                )
            )
    return tuple(results) if subset == "both" else results[0]


def _as_arrays(
    files: list[str],
    labels: np.ndarray | None,
    label_mode: str | None,
    num_classes: int,
    loader: _Loader,
    verbose: bool,
) -> Any:
    height, width = loader.settings["image_size"]
    channels = _CHANNELS[loader.settings["color_mode"]]
    needed = len(files) * height * width * channels * 4
    if needed > MAX_ARRAY_BYTES:
        raise ValueError(
            f"{len(files)} images of {height}x{width}x{channels} need {needed:,} bytes as "
            f"float32 arrays (the limit is {MAX_ARRAY_BYTES:,}): pass a batch_size to read "
            f"them batch by batch, or a smaller image_size"
        )
    images, kept = loader.load([Path(f) for f in files])
    if loader.skipped and verbose:
        print(f"Skipped {len(loader.skipped)} file(s) that could not be decoded.")
    if not len(kept):
        raise ValueError(f"none of the {len(files)} image files could be decoded")
    if labels is None or label_mode is None:
        return images
    return images, _encode_labels(labels[kept], label_mode, num_classes)
