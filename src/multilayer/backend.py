"""``keras.backend``: the global state and settings Keras MLP programs reach for.

``import multilayer as keras`` then ``keras.backend.clear_session()``,
``keras.backend.floatx()``, ``keras.backend.epsilon()`` work as in Keras 3. The backend is
always NumPy (`backend` returns ``"numpy"``).
"""

from __future__ import annotations

import gc

import numpy as np

from multilayer.engine.config import epsilon, floatx, set_epsilon, set_floatx
from multilayer.engine.layers.base import next_uid, reset_default_names
from multilayer.engine.layers.symbolic import KerasTensor

__all__ = [
    "backend",
    "clear_session",
    "epsilon",
    "floatx",
    "get_uid",
    "image_data_format",
    "is_float_dtype",
    "is_int_dtype",
    "is_keras_tensor",
    "set_epsilon",
    "set_floatx",
    "set_image_data_format",
    "standardize_dtype",
]


def backend() -> str:
    """The name of the backend: always ``"numpy"``."""
    return "numpy"


def clear_session(free_memory: bool = True) -> None:
    """Reset the state Keras keeps between models, as ``keras.backend.clear_session()``.

    Generated layer names start again (the next ``Dense()`` is ``"dense"``), `get_uid`
    counters restart, and the generator behind ``keras.random``'s ``seed=None`` is dropped
    (it is derived again from the global seed). As in Keras, settings are kept: `floatx`,
    `epsilon` and the seed given to ``set_random_seed``.

    Args:
        free_memory: also run Python's garbage collector (Keras' default).
    """
    from multilayer.random import reset_global_seed_generator

    reset_default_names()
    reset_global_seed_generator()
    if free_memory:
        gc.collect()


def get_uid(prefix: str = "") -> int:
    """How many times ``prefix`` was asked for, this call included (1 the first time).

    Shares its counters with generated layer names, as in Keras: after one ``Dense()``,
    ``get_uid("dense")`` is 2.
    """
    return next_uid(prefix)


_IMAGE_DATA_FORMAT = "channels_last"


def image_data_format() -> str:
    """``"channels_last"``: images are ``(height, width, channels)``, Keras' default."""
    return _IMAGE_DATA_FORMAT


def set_image_data_format(data_format: str) -> None:
    """Only ``"channels_last"`` is accepted: multilayer has no layer that reads channels
    first, so accepting ``"channels_first"`` would change nothing and mislead."""
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            f"data_format must be 'channels_first' or 'channels_last', got {data_format!r}"
        )
    if data_format != "channels_last":
        raise ValueError(
            "set_image_data_format: multilayer supports only 'channels_last' (no layer of it "
            "reads channels-first images); transpose the images to (height, width, channels)"
        )


def standardize_dtype(dtype=None) -> str:
    """A dtype's name as Keras spells it (``"float32"``); None gives `floatx`."""
    if dtype is None:
        return floatx()
    if dtype is int or (
        isinstance(dtype, str) and dtype == "int"
    ):  # Keras' choice for Python ints outside TensorFlow
        return "int32"
    if dtype is float:
        return "float32"
    if dtype is bool:
        return "bool"
    name = getattr(dtype, "name", None)
    if isinstance(name, str) and not isinstance(dtype, np.dtype):
        dtype = name
    try:
        return np.dtype(dtype).name
    except TypeError:
        raise ValueError(f"Invalid dtype: {dtype!r}") from None


def is_keras_tensor(x) -> bool:
    """Whether ``x`` is a symbolic tensor of a model under construction (``keras.Input``
    and layer calls on it), not an array."""
    return isinstance(x, KerasTensor)


def is_float_dtype(dtype) -> bool:
    """Whether ``dtype`` is a floating point type."""
    return standardize_dtype(dtype).startswith(("float", "bfloat"))


def is_int_dtype(dtype) -> bool:
    """Whether ``dtype`` is an (unsigned) integer type."""
    return standardize_dtype(dtype).startswith(("int", "uint"))
