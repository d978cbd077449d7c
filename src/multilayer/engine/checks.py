"""Checks of configuration values shared by the engine's constructors.

A configuration value such as ``Rescaling(scale=...)`` or a learning rate must be a finite
number: NaN or infinity would silently turn every output into NaN.
"""

from __future__ import annotations

import math

import numpy as np


def finite(value: object, what: str) -> float:
    """``value`` as a float, or ValueError ``"{what} must be a finite number, got {value!r}"``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return number


def finite_or_none(value: object, what: str) -> float | None:
    return None if value is None else finite(value, what)
