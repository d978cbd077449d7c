"""``split_dataset``: cut in-memory data in two, as ``keras.utils.split_dataset``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from multilayer.engine.random import global_generator

__all__ = ["split_dataset"]


def split_dataset(
    dataset: Any,
    left_size: float | None = None,
    right_size: float | None = None,
    shuffle: bool = False,
    seed: int | None = None,
) -> tuple[Any, Any]:
    """Split arrays into a left part (the first samples) and a right part (the last ones).

    Sizes follow Keras: a float in (0, 1) is a fraction of the samples (rounded to the
    nearest count), an int a number of samples; a missing size is the complement of the
    other. When both are given and add up to fewer than all samples, the samples between
    the two parts are left out.

    Differs from Keras: Keras returns two ``tf.data.Dataset`` objects; this returns the data
    in the structure it came in, so ``(x, y)`` gives ``((x_left, y_left), (x_right,
    y_right))`` and one array gives two arrays, ready for ``fit``. The shuffle is NumPy's
    (``seed`` repeats it; without one it follows `multilayer.utils.set_random_seed`).

    Args:
        dataset: a NumPy array, or a list, tuple or dict of arrays of one length.
        left_size, right_size: fraction (float) or count (int) of samples.
        shuffle: shuffle the samples (all arrays alike) before splitting.
        seed: seed of the shuffle.

    Returns:
        ``(left, right)``, each of the structure of ``dataset``.

    Raises:
        TypeError: ``dataset`` is not arrays, or a size is neither int, float nor None.
        ValueError: arrays of different lengths, no samples, both sizes None, a size out of
            range, or sizes leaving a part empty.
    """
    arrays, rebuild = _as_arrays(dataset)
    total = len(arrays[0])
    if total == 0:
        raise ValueError("split_dataset: the dataset has no samples")
    left, right = _sizes(left_size, right_size, total)
    order = np.arange(total)
    if shuffle:
        rng = np.random.default_rng(
            seed if seed is not None else int(global_generator().integers(2**63 - 1))
        )
        order = rng.permutation(total)
    left_index, right_index = order[:left], order[total - right :]
    return (
        rebuild([a[left_index] for a in arrays]),
        rebuild([a[right_index] for a in arrays]),
    )


def _as_arrays(dataset: Any) -> tuple[list[np.ndarray], Callable[[list[np.ndarray]], Any]]:
    if isinstance(dataset, np.ndarray):
        if dataset.ndim == 0:
            raise ValueError("split_dataset: a dataset array needs a sample axis")
        return [dataset], lambda parts: parts[0]
    rebuild: Callable[[list[np.ndarray]], Any]
    if isinstance(dataset, dict):
        keys = list(dataset)
        arrays = [dataset[k] for k in keys]
        rebuild = lambda parts: dict(zip(keys, parts, strict=True))  # noqa: E731
    elif isinstance(dataset, (list, tuple)):
        arrays = list(dataset)
        kind = type(dataset)
        rebuild = lambda parts: kind(parts)  # noqa: E731
    else:
        raise TypeError(
            "split_dataset: `dataset` must be a NumPy array or a list, tuple or dict of "
            f"arrays, got {type(dataset).__name__}"
        )
    if not arrays:
        raise ValueError("split_dataset: received an empty list of arrays")
    for index, array in enumerate(arrays):
        if not isinstance(array, np.ndarray):
            raise TypeError(
                f"split_dataset: expected NumPy arrays, got {type(array).__name__} at index {index}"
            )
        if array.ndim == 0 or len(array) != len(arrays[0]):
            raise ValueError(
                f"split_dataset: the arrays differ in length: index 0 has {len(arrays[0])} "
                f"samples, index {index} has shape {array.shape}"
            )
    return arrays, rebuild


def _sizes(left_size: Any, right_size: Any, total: int) -> tuple[int, int]:
    if left_size is None and right_size is None:
        raise ValueError(
            "At least one of the `left_size` or `right_size` must be specified. "
            "Received: left_size=None and right_size=None"
        )
    counts: list[int | None] = []
    for side, size in (("left", left_size), ("right", right_size)):
        if size is None:
            counts.append(None)
            continue
        if isinstance(size, bool) or not isinstance(size, (int, float, np.integer, np.floating)):
            raise TypeError(
                f"Invalid `{side}_size` type. Expected: int or float or None, "
                f"received: {type(size).__name__}"
            )
        if isinstance(size, (float, np.floating)):
            if not 0 < size < 1:
                raise ValueError(
                    f"`{side}_size` should be either a positive integer smaller than {total}, "
                    f"or a float within the range (0, 1). Received: {side}_size={size}"
                )
            counts.append(round(float(size) * total))
        else:
            if not 0 < size < total:
                raise ValueError(
                    f"`{side}_size` should be either a positive integer smaller than {total}, "
                    f"or a float within the range (0, 1). Received: {side}_size={size}"
                )
            counts.append(int(size))
    given_left, given_right = counts
    if given_left is None:
        assert given_right is not None  # both None was refused above
        left, right = total - given_right, given_right
    else:
        left = given_left
        right = total - left if given_right is None else given_right
    if left + right > total:
        raise ValueError(
            f"The sum of `left_size` and `right_size` ({left} + {right} samples) is more than "
            f"the {total} samples of the dataset"
        )
    for side, count in (("left", left), ("right", right)):
        if count == 0:
            raise ValueError(
                f"With a dataset of {total} samples, left_size={left_size} and "
                f"right_size={right_size}, the {side} part would be empty"
            )
    return left, right
