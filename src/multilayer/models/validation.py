"""Checks on the arrays given to fit / evaluate / predict, with errors that say what was wrong
and what was expected. They run once per call, before any work, in O(data) time."""

from __future__ import annotations

import numpy as np

from multilayer.engine.registry import positive_int


def as_array(value, argument: str, text: bool = False) -> np.ndarray:
    """``value`` as a non-empty numeric NumPy array, or a TypeError / ValueError naming it.
    With ``text``, str/bytes/object arrays are accepted too (see `check_numeric`)."""
    try:
        array = np.asarray(value)
    except Exception as error:  # ragged lists and the like
        raise TypeError(
            f"{argument} must be a numeric array, could not convert it: {error}"
        ) from None
    if not text:
        check_numeric(array, argument)
    if np.issubdtype(array.dtype, np.complexfloating):
        raise TypeError(
            f"{argument} must hold real numbers, got complex values (dtype {array.dtype}); "
            f"pass {argument}.real or abs({argument}) if that is what you mean"
        )
    if array.ndim == 0:
        raise ValueError(f"{argument} must be an array of samples, got a scalar")
    if len(array) == 0:
        raise ValueError(f"{argument} is empty: it needs at least one sample")
    return array


def check_numeric(array: np.ndarray, argument: str) -> None:
    """Refuse an array that does not hold numbers (text, objects)."""
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise TypeError(f"{argument} must hold numbers, got an array of dtype {array.dtype}")


def check_finite(array: np.ndarray, argument: str) -> None:
    """Refuse NaN or infinite values, naming the first offending rows."""
    if not np.issubdtype(array.dtype, np.floating):
        return
    # One cheap reduction first; only a failing array pays for the row-by-row search.
    if np.isfinite(np.sum(array, dtype=np.float64)):
        return
    bad_rows = np.flatnonzero(~np.isfinite(array.reshape(len(array), -1)).all(axis=1))
    if len(bad_rows) == 0:
        return  # the sum overflowed, but every value is finite
    shown = ", ".join(str(i) for i in bad_rows[:5]) + (", ..." if len(bad_rows) > 5 else "")
    raise ValueError(
        f"{argument} contains NaN or infinite values in {len(bad_rows)} row(s), first at row(s) {shown}"
    )


def expand_1d(x: np.ndarray, expected: tuple[int, ...]) -> np.ndarray:
    """A rank-1 array of scalars as a column, when the model takes samples of shape (1,):
    Keras accepts ``fit(df["column"], ...)`` for a one-feature model, as (n, 1)."""
    if x.ndim == 1 and tuple(expected) == (1,):
        return x.reshape(len(x), 1)
    return x


def check_input_shape(x: np.ndarray, expected: tuple[int, ...], argument: str = "x") -> None:
    sample = tuple(x.shape[1:])
    if sample == tuple(expected):
        return
    message = (
        f"{argument} has samples of shape {sample} (array shape {tuple(x.shape)}), but the model "
        f"expects samples of shape {tuple(expected)}."
    )
    if int(np.prod(sample)) == int(np.prod(expected)) and len(expected) == 1:
        message += (
            f" Flatten them: add Flatten() as the model's first layer, or pass "
            f"{argument}.reshape(len({argument}), {expected[0]})."
        )
    raise ValueError(message)


def check_lengths(x: np.ndarray, y: np.ndarray, x_name: str = "x", y_name: str = "y") -> None:
    if len(x) != len(y):
        raise ValueError(
            f"{x_name} and {y_name} have different lengths: {len(x)} samples and {len(y)} targets"
        )


def prepare_targets(
    y: np.ndarray, loss, output_shape: tuple[int, ...], dtype, argument: str = "y"
) -> np.ndarray:
    """Check targets against the loss and the model's output; return them in working dtype."""
    units = int(np.prod(output_shape))
    kind = loss.target_kind
    check_finite(y, argument)
    if kind == "sparse":
        labels = y.reshape(-1) if (y.ndim == 2 and y.shape[1] == 1) else y
        if labels.ndim != 1:
            raise ValueError(
                f"{argument} must hold one integer class label per sample for {loss.name}, "
                f"got shape {tuple(y.shape)}"
            )
        if not np.all(np.equal(np.mod(labels, 1), 0)):
            raise ValueError(
                f"{argument} must hold integer class labels for {loss.name}, found non-integer values"
            )
        low, high = labels.min(), labels.max()
        if low < 0 or high >= units:
            bad = low if low < 0 else high
            raise ValueError(
                f"{argument} has a label out of range: {bad:g}, but the model has {units} output classes "
                f"(valid labels: 0 to {units - 1})"
            )
        return labels.astype(np.intp)
    expected = (len(y), *output_shape)
    if kind == "categorical" and y.ndim == 1:
        raise ValueError(
            f"{argument} holds class labels of shape {tuple(y.shape)}, but {loss.name} expects one-hot "
            f"targets of shape {expected}: convert them with multilayer.utils.to_categorical({argument}, {units}) "
            f"or use loss='sparse_categorical_crossentropy'"
        )
    if y.shape != expected and not (y.size == len(y) * units and y.shape[0] == len(y)):
        raise ValueError(
            f"{argument} has shape {tuple(y.shape)}, but the model's output has shape {expected}"
        )
    y = y.reshape(expected)
    if kind == "categorical" and (y.min() < 0 or y.max() > 1):
        raise ValueError(
            f"{argument} must hold one-hot (or probability) targets in [0, 1] for {loss.name}"
        )
    if kind == "binary" and loss.name == "binary_crossentropy" and (y.min() < 0 or y.max() > 1):
        raise ValueError(
            f"{argument} must hold targets in [0, 1] for {loss.name}, found values outside"
        )
    return np.ascontiguousarray(y, dtype=dtype)


def non_negative_int(value: object, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{argument} must be a non-negative integer, got {value!r}")
    return int(value)


def inference_batch_size(batch_size: int | None, default: int) -> int:
    """``batch_size`` of evaluate / predict: ``default`` when None, else a positive integer
    (0 is refused, not taken as "the default")."""
    return positive_int(default if batch_size is None else batch_size, "batch_size")


def check_callbacks(callbacks) -> list:
    """``callbacks`` as a list of `Callback` objects, or a TypeError naming what was given."""
    from multilayer.models.callbacks import Callback

    if callbacks is None:
        return []
    if isinstance(callbacks, Callback) or not isinstance(callbacks, (list, tuple)):
        raise TypeError(
            f"callbacks must be a list of Callback objects, got {type(callbacks).__name__}"
        )
    for index, callback in enumerate(callbacks):
        if not isinstance(callback, Callback):
            raise TypeError(
                f"callbacks[{index}] must be a Callback object (multilayer.callbacks), "
                f"got {type(callback).__name__}: {callback!r}"
            )
    return list(callbacks)
