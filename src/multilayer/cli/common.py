"""What several ``mlp`` commands share: loading a dataset or a model named on the command line,
and printing tables.

Datasets (``--dataset``): ``mnist``, ``fashion_mnist``, or the path of an ``.npz`` file
with the arrays ``x_train``, ``y_train``, ``x_test``, ``y_test`` shaped like MNIST's
(images (n, height, width) with pixels 0..255, labels 0..9). Every source is checked the
same way before any training: shapes, label range, NaN, pixel range.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from multilayer.datasets import BUILTIN
from multilayer.errors import DataError
from multilayer.utils.naming import unknown_name_error

#: Names of the built-in datasets.
DATASETS = tuple(BUILTIN)
NUM_CLASSES = 10


@dataclass
class Dataset:
    """A classification dataset as uint8-range images and integer labels."""

    name: str
    source: str  # the directory or file it was read from
    x_train: np.ndarray  # (n, height, width), pixel values 0..255
    y_train: np.ndarray  # (n,), integer labels 0..num_classes-1
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "train_samples": len(self.x_train),
            "test_samples": len(self.x_test),
            "image_shape": list(self.x_train.shape[1:]),
            "classes": list(self.class_names),
        }


def check_dataset_name(value: str) -> str:
    """Typer callback for ``--dataset``: a built-in name or an existing ``.npz`` file."""
    name = value.strip().lower().replace("-", "_")
    if name in DATASETS:
        return name
    if value.endswith(".npz"):
        if not Path(value).is_file():
            raise typer.BadParameter(f"{value}: no such file")
        return value
    raise typer.BadParameter(
        str(unknown_name_error("dataset", value, DATASETS)) + " Or give the path of an .npz file."
    )


#: ``--dataset``, shared by the commands that read a dataset.
DatasetOption = Annotated[
    str,
    typer.Option(
        callback=check_dataset_name,
        help="mnist, fashion_mnist, or an .npz file with x_train, y_train, x_test, y_test.",
    ),
]
#: ``--data-dir``, shared by the commands that read a dataset.
DataDirOption = Annotated[
    Path | None,
    typer.Option(help="Directory holding the datasets (default: $MULTILAYER_DATA)."),
]


def load_dataset(name: str, data_dir: Path | None = None) -> Dataset:
    """Load and check a dataset (see the module docstring).

    Args:
        name: "mnist", "fashion_mnist" or the path of an ``.npz`` file.
        data_dir: the data root for the built-in datasets; None means ``MULTILAYER_DATA``,
            else the per-user cache.

    Raises:
        DataError: malformed arrays, labels out of range, NaN or out-of-range pixels.
        DatasetNotFoundError: the built-in dataset is not on disk and cannot be downloaded.
    """
    if name in DATASETS:
        from multilayer.data.paths import data_dir as resolve

        module = BUILTIN[name]
        (x_train, y_train), (x_test, y_test) = module.load_data(data_dir)
        names = tuple(module.CLASS_NAMES)
        source = str(resolve(data_dir) / module.SUBDIR)
    else:
        x_train, y_train, x_test, y_test = _load_npz(Path(name))
        names = tuple(str(c) for c in range(NUM_CLASSES))
        source = str(Path(name))
    where = source if name in DATASETS else name
    _check_split(x_train, y_train, f"{where}: x_train", f"{where}: y_train", len(names))
    _check_split(x_test, y_test, f"{where}: x_test", f"{where}: y_test", len(names))
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"{where}: training images are {x_train.shape[1:]} but test images are "
            f"{x_test.shape[1:]}"
        )
    return Dataset(
        Path(name).stem if name not in DATASETS else name,
        source,
        x_train,
        y_train.astype(np.intp),
        x_test,
        y_test.astype(np.intp),
        names,
    )


def _load_npz(path: Path) -> tuple[np.ndarray, ...]:
    keys = ("x_train", "y_train", "x_test", "y_test")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in keys if k not in archive.files]
            if missing:
                raise DataError(
                    f"{path}: missing arrays {missing}; an .npz dataset needs {', '.join(keys)}"
                )
            return tuple(archive[k] for k in keys)
    except (ValueError, OSError, EOFError) as error:
        if isinstance(error, DataError):
            raise
        raise DataError(f"{path} is not a readable .npz file ({error})") from None


def _check_split(x: np.ndarray, y: np.ndarray, x_name: str, y_name: str, classes: int) -> None:
    if x.dtype.kind not in "uif" or x.ndim != 3 or len(x) == 0:
        raise DataError(
            f"{x_name}: expected images of shape (n, height, width) with numeric pixels, got "
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
    if y.dtype.kind == "f" and not (np.isfinite(y).all() and np.all(np.mod(y, 1) == 0)):
        raise DataError(f"{y_name}: labels must be integers, found NaN or fractional values")
    if y.dtype.kind not in "uif":
        raise DataError(f"{y_name}: labels must be integers, got dtype {y.dtype}")
    bad = (y < 0) | (y >= classes)
    if bad.any():
        index = int(np.argmax(bad))
        raise DataError(
            f"{y_name}: label {y[index]:g} at index {index} is out of range: expected 0 to "
            f"{classes - 1}"
        )


def load_model_arg(path: Path):
    """Load the model named on the command line (a .safetensors file or a run directory).

    Returns:
        ``(model, model_file, run_dir)`` where ``run_dir`` is a `multilayer.runs.RunDir` or None.
    """
    from multilayer.models import load_model
    from multilayer.runs import resolve_model_path

    model_file, run = resolve_model_path(path)
    return load_model(model_file), model_file, run


def console(stderr: bool = False):
    """A rich Console (imported lazily: rich is part of the [cli] extra)."""
    from rich.console import Console

    # soft_wrap: long lines are not cut at 80 columns when the output is a file or a pipe.
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}%"


def show(key: str, value) -> str:
    """A metadata value for humans: accuracies as percentages, other floats to 4 digits."""
    if isinstance(value, float):
        return percent(value) if "accuracy" in key else f"{value:.4g}"
    return str(value)
