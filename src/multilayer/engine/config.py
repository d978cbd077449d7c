"""Global numeric settings (Keras' ``floatx``): float32 by default, float64 for gradient checks."""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

_FLOATX = "float32"
_SUPPORTED = ("float32", "float64")
#: The fuzz factor of Keras' ``epsilon()``: probabilities are clipped to [eps, 1 - eps] before
#: a log in the cross-entropy losses.
_EPSILON = 1e-7


def floatx() -> str:
    """The default float type of new models: ``"float32"`` unless changed with `set_floatx`."""
    return _FLOATX


def set_floatx(dtype: str) -> None:
    """Set the default float type of models built afterwards (``"float32"`` or ``"float64"``)."""
    global _FLOATX
    name = np.dtype(dtype).name
    if name not in _SUPPORTED:
        raise ValueError(f"set_floatx: dtype must be one of {_SUPPORTED}, got {dtype!r}")
    _FLOATX = name


def epsilon() -> float:
    """The fuzz factor used by the losses (Keras' ``epsilon()``): ``1e-7`` unless changed."""
    return _EPSILON


def set_epsilon(value: float) -> None:
    """Set the fuzz factor of `epsilon` (a positive number smaller than 0.5)."""
    global _EPSILON
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise ValueError(f"set_epsilon: expected a number, got {value!r}")
    if not 0 < float(value) < 0.5:
        raise ValueError(f"set_epsilon: epsilon must be in (0, 0.5), got {value!r}")
    _EPSILON = float(value)


def resolve_dtype(dtype: DTypeLike | None) -> np.dtype:
    """``dtype`` as a NumPy float dtype, or the current `floatx` when it is None."""
    if dtype is None:
        return np.dtype(_FLOATX)
    resolved = np.dtype(dtype)
    if resolved.name not in _SUPPORTED:
        raise ValueError(f"dtype must be one of {_SUPPORTED}, got {dtype!r}")
    return resolved
