"""Array helpers for preparing data: one-hot labels, L-p normalisation, validation split.

``to_categorical`` and ``normalize`` follow ``keras.utils``; they differ only in refusing
labels Keras would silently misuse (negative, fractional, out of range).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from multilayer.engine.registry import positive_int
from multilayer.errors import DataError

__all__ = ["normalize", "to_categorical", "train_validation_split"]


def to_categorical(
    y: ArrayLike, num_classes: int | None = None, dtype: DTypeLike = "float32"
) -> np.ndarray:
    """One-hot encode integer class labels, as ``keras.utils.to_categorical``.

    Args:
        y: integer labels of any shape (floats holding whole numbers are accepted). A
            trailing dimension of size 1, as in shape (n, 1), is dropped first.
        num_classes: number of classes; default ``max(y) + 1``.
        dtype: dtype of the result.

    Returns:
        ``y.shape + (num_classes,)`` (after dropping a trailing 1), zeros with a 1 at each
        label.

    Raises:
        DataError: a label is negative, not a whole number, or ``>= num_classes``; ``y``
            is empty and ``num_classes`` is not given; ``num_classes < 1``.
    """
    labels = _integer_labels(y, "to_categorical")
    shape = labels.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    labels = labels.reshape(-1)
    if num_classes is None:
        if labels.size == 0:
            raise DataError("to_categorical: cannot infer num_classes from empty labels")
        num_classes = int(labels.max()) + 1
    num_classes = positive_int(num_classes, "to_categorical: num_classes", error=DataError)
    if labels.size and labels.max() >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise DataError(
            f"to_categorical: label {labels[bad]} at index {bad} is out of range: expected "
            f"0..{num_classes - 1} for num_classes={num_classes}"
        )
    categorical = np.zeros((labels.size, num_classes), dtype=dtype)
    categorical[np.arange(labels.size), labels] = 1
    return categorical.reshape(shape + (num_classes,))


def normalize(x: ArrayLike, axis: int = -1, order: float = 2) -> np.ndarray:
    """Scale vectors to unit L-``order`` norm along ``axis``, as ``keras.utils.normalize``.

    Args:
        x: array of any shape.
        axis: the axis holding the vectors.
        order: the norm's order ``p`` (2 for Euclidean, 1, ``np.inf``...); must be > 0.

    Returns:
        ``x / ||x||_p`` with the shape of ``x``; vectors of norm 0 stay zero. Floating
        inputs keep their dtype, others become float64.

    Raises:
        DataError: ``order <= 0`` (not a norm) or ``axis`` out of range.
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if not order > 0:
        raise DataError(f"normalize: order must be > 0 (a norm), not {order}")
    if not -x.ndim <= axis < x.ndim:
        raise DataError(f"normalize: axis {axis} is out of range for {x.ndim} dimensions")
    norm = np.linalg.norm(x, ord=order, axis=axis, keepdims=True)
    norm[norm == 0] = 1  # zero vectors stay zero instead of becoming NaN
    return x / norm


def train_validation_split(
    x: ArrayLike,
    y: ArrayLike,
    validation_fraction: float,
    seed: int | np.random.Generator | None = None,
    stratify: bool = True,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Hold out a random, by default class-stratified, validation set.

    The validation set has ``n - int(n * (1 - validation_fraction))`` samples (as Keras'
    ``validation_split``), at least 1 and at most n - 1. With ``stratify``, each class
    contributes in proportion to its size (rounded so the total is exact: each class gets
    the floor of its share, and the largest remainders one more), so class frequencies
    match in both sets up to one sample per class.

    Args:
        x: samples, shape (n, ...).
        y: labels, shape (n,) or (n, 1) of class integers, or one-hot (n, num_classes);
            any targets when ``stratify`` is False.
        validation_fraction: in (0, 1).
        seed: an int or Generator for a deterministic split; None for a random one.
        stratify: keep class proportions; False draws the validation set uniformly.

    Returns:
        ``(x_train, y_train), (x_val, y_val)``: copies, each keeping the original order of
        the samples, ``y`` in its original encoding.

    Raises:
        DataError: ``x`` and ``y`` differ in length, fewer than 2 samples,
            ``validation_fraction`` outside (0, 1), or ``stratify`` with labels that are
            not classes (negative or fractional).
    """
    x, y = np.asarray(x), np.asarray(y)
    n = len(x) if x.ndim else 0
    if y.ndim == 0 or len(y) != n:
        raise DataError(
            f"train_validation_split: x has {n} samples but y has "
            f"{len(y) if y.ndim else 0}: expected one label per sample"
        )
    if not 0 < validation_fraction < 1:
        raise DataError(
            "train_validation_split: validation_fraction must be in (0, 1), "
            f"not {validation_fraction}"
        )
    if n < 2:
        raise DataError(f"train_validation_split: need at least 2 samples to split, got {n}")
    n_val = min(max(n - int(n * (1 - validation_fraction)), 1), n - 1)
    rng = np.random.default_rng(seed)

    if stratify:
        classes = _class_labels(y)
        is_val = np.zeros(n, dtype=bool)
        _, inverse, counts = np.unique(classes, return_inverse=True, return_counts=True)
        for members, take in zip(
            _members(inverse, len(counts)), _allocate(counts, n_val, rng), strict=True
        ):
            is_val[rng.choice(members, size=take, replace=False)] = True
    else:
        is_val = np.zeros(n, dtype=bool)
        is_val[rng.choice(n, size=n_val, replace=False)] = True

    train, val = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    return (x[train], y[train]), (x[val], y[val])


def _integer_labels(y: ArrayLike, who: str) -> np.ndarray:
    """``y`` as an int64 array, refusing what is not a valid class label."""
    y = np.asarray(y)
    if y.dtype == bool:
        y = y.astype(np.int64)
    elif not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise DataError(f"{who}: labels must be integers, not {y.dtype}")
    if np.issubdtype(y.dtype, np.floating):
        whole = np.isfinite(y) & (y == np.round(y))
        if not whole.all():
            bad = int(np.argmin(whole.reshape(-1)))
            raise DataError(
                f"{who}: labels must be whole numbers, found {y.reshape(-1)[bad]} at index {bad}"
            )
    labels = y.astype(np.int64)
    if labels.size and labels.min() < 0:
        bad = int(np.argmax(labels.reshape(-1) < 0))
        raise DataError(
            f"{who}: labels must be >= 0, found {labels.reshape(-1)[bad]} at index {bad}"
        )
    return labels


def _class_labels(y: np.ndarray) -> np.ndarray:
    """Class of each sample: argmax of one-hot rows, else the integer labels."""
    if y.ndim == 2 and y.shape[1] > 1:
        return np.argmax(y, axis=1)
    if y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1):
        raise DataError(
            f"train_validation_split: cannot stratify by labels of shape {y.shape}: expected "
            "(n,), (n, 1) or one-hot (n, num_classes); pass stratify=False"
        )
    return _integer_labels(y.reshape(-1), "train_validation_split (pass stratify=False)")


def _members(inverse: np.ndarray, num_classes: int) -> list[np.ndarray]:
    """Indices of the samples of each class, class by class."""
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse.reshape(-1), minlength=num_classes))[:-1]
    return np.split(order, bounds)


def _allocate(counts: np.ndarray, total: int, rng: np.random.Generator) -> np.ndarray:
    """Split ``total`` among classes proportionally to ``counts`` (largest remainders)."""
    # Integer arithmetic: exact, so the shares always add up to ``total``.
    take, remainder = np.divmod(counts.astype(np.int64) * total, int(counts.sum()))
    # Ties are broken at random so that no class is systematically favoured.
    order = np.lexsort((rng.random(len(counts)), -remainder))
    take[order[: total - take.sum()]] += 1
    return take
