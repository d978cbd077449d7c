"""Global numeric settings (Keras' ``floatx``): float32 by default, float64 for gradient checks."""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

_FLOATX = "float32"
_SUPPORTED = ("float32", "float64")


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


def resolve_dtype(dtype: DTypeLike | None) -> np.dtype:
    """``dtype`` as a NumPy float dtype, or the current `floatx` when it is None."""
    if dtype is None:
        return np.dtype(_FLOATX)
    resolved = np.dtype(dtype)
    if resolved.name not in _SUPPORTED:
        raise ValueError(f"dtype must be one of {_SUPPORTED}, got {dtype!r}")
    return resolved
