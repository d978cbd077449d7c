"""Weight constraints: projections applied to a weight after every optimizer step (Keras' names).

``Dense(64, kernel_constraint=MaxNorm(3))`` rescales, after each update, every column of the
kernel (the weights into one unit, ``axis=0``) whose L2 norm exceeds 3 back to norm 3. As in
Keras, a constraint is not part of the gradient: the optimizer takes its step, then the model
replaces the weight by ``constraint(weight)``.

Keras' definitions (``eps`` is Keras' fuzz factor, 1e-7)::

    MaxNorm(max_value=2, axis=0)    w * clip(|w|, 0, max_value) / (eps + |w|)
    MinMaxNorm(min_value=0, max_value=1, rate=1, axis=0)
                                    w * (rate * clip(|w|, min, max) + (1 - rate) * |w|) / (eps + |w|)
    UnitNorm(axis=0)                w / (eps + |w|)
    NonNeg()                        max(w, 0)

where ``|w|`` is the L2 norm along ``axis`` (kept for broadcasting).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from multilayer.engine.checks import finite
from multilayer.engine.registry import Config, Registry

#: Keras' ``backend.epsilon()``, added to norms before dividing.
EPSILON = 1e-7

Axis = int | tuple[int, ...]


def _axis(axis: object, what: str) -> Axis:
    if isinstance(axis, bool):
        raise ValueError(f"{what}: axis must be an integer or a list of integers, got {axis!r}")
    if isinstance(axis, (int, np.integer)):
        return int(axis)
    if (
        isinstance(axis, Sequence)
        and not isinstance(axis, str)
        and axis
        and all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axis)
    ):
        return tuple(int(a) for a in axis)
    raise ValueError(f"{what}: axis must be an integer or a list of integers, got {axis!r}")


def _norms(w: np.ndarray, axis: Axis) -> np.ndarray:
    try:
        return np.sqrt(np.sum(np.square(w), axis=axis, keepdims=True))
    except ValueError:  # NumPy's AxisError is a ValueError
        raise ValueError(
            f"constraint axis {axis} is out of range for a weight of shape {w.shape}"
        ) from None


class Constraint:
    """Base class: ``constraint(w)`` returns the projected weight (a new array)."""

    name = "constraint"

    def __call__(self, w: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def apply(self, w: np.ndarray) -> None:
        """Project ``w`` in place (what the model does after each optimizer step)."""
        w[...] = self(w)

    def get_config(self) -> Config:
        return {}

    def __repr__(self) -> str:
        return f"<constraint {type(self).__name__} {self.get_config()}>"


class MaxNorm(Constraint):
    """Rescales the weights into each unit so that their L2 norm is at most ``max_value``."""

    name = "max_norm"

    def __init__(self, max_value: float = 2, axis: int | Sequence[int] = 0) -> None:
        self.max_value = finite(max_value, "MaxNorm: max_value")
        if self.max_value < 0:
            raise ValueError(f"MaxNorm: max_value must be >= 0, got {max_value!r}")
        self.axis = _axis(axis, "MaxNorm")

    def __call__(self, w: np.ndarray) -> np.ndarray:
        norms = _norms(w, self.axis)
        desired = np.clip(norms, 0, self.max_value)
        return (w * (desired / (EPSILON + norms))).astype(w.dtype, copy=False)

    def get_config(self) -> Config:
        return {"max_value": self.max_value, "axis": _axis_config(self.axis)}


class MinMaxNorm(Constraint):
    """Moves the norm of the weights into each unit into ``[min_value, max_value]`` (by a
    fraction ``rate`` of the way at each step)."""

    name = "min_max_norm"

    def __init__(
        self,
        min_value: float = 0.0,
        max_value: float = 1.0,
        rate: float = 1.0,
        axis: int | Sequence[int] = 0,
    ) -> None:
        self.min_value = finite(min_value, "MinMaxNorm: min_value")
        self.max_value = finite(max_value, "MinMaxNorm: max_value")
        self.rate = finite(rate, "MinMaxNorm: rate")
        if not 0 <= self.min_value <= self.max_value:
            raise ValueError(
                "MinMaxNorm: need 0 <= min_value <= max_value, got "
                f"min_value={min_value!r}, max_value={max_value!r}"
            )
        if not 0 <= self.rate <= 1:
            raise ValueError(f"MinMaxNorm: rate must be in [0, 1], got {rate!r}")
        self.axis = _axis(axis, "MinMaxNorm")

    def __call__(self, w: np.ndarray) -> np.ndarray:
        norms = _norms(w, self.axis)
        desired = (
            self.rate * np.clip(norms, self.min_value, self.max_value) + (1 - self.rate) * norms
        )
        return (w * (desired / (EPSILON + norms))).astype(w.dtype, copy=False)

    def get_config(self) -> Config:
        return {
            "min_value": self.min_value,
            "max_value": self.max_value,
            "rate": self.rate,
            "axis": _axis_config(self.axis),
        }


class UnitNorm(Constraint):
    """Rescales the weights into each unit to unit L2 norm."""

    name = "unit_norm"

    def __init__(self, axis: int | Sequence[int] = 0) -> None:
        self.axis = _axis(axis, "UnitNorm")

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return (w / (EPSILON + _norms(w, self.axis))).astype(w.dtype, copy=False)

    def get_config(self) -> Config:
        return {"axis": _axis_config(self.axis)}


class NonNeg(Constraint):
    """Sets negative weights to zero."""

    name = "non_neg"

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return np.maximum(w, 0)

    def apply(self, w: np.ndarray) -> None:
        np.maximum(w, 0, out=w)


def _axis_config(axis: Axis) -> int | list[int]:
    return list(axis) if isinstance(axis, tuple) else axis


REGISTRY: Registry[Constraint] = Registry("constraint", Constraint, legacy=False)
for _cls in (MaxNorm, MinMaxNorm, UnitNorm, NonNeg):
    REGISTRY.register(_cls)


def get(identifier: str | Constraint | Config | None) -> Constraint | None:
    """A `Constraint` from a name (``"max_norm"``, ``"MaxNorm"``), a config dict, an
    instance, or None (no constraint)."""
    return None if identifier is None else REGISTRY.get(identifier)


def serialize(constraint: Constraint | None) -> Config | None:
    """``{"class_name": ..., "config": ...}``, or None for no constraint."""
    return None if constraint is None else REGISTRY.serialize(constraint)


def deserialize(config: Config) -> Constraint:
    return REGISTRY.deserialize(config)


# Keras' lower-case aliases of the classes.
max_norm = MaxNorm
min_max_norm = MinMaxNorm
unit_norm = UnitNorm
non_neg = NonNeg
