"""Weight penalties added to the loss: L1, L2 and both (Keras' names and defaults)."""

from __future__ import annotations

import numpy as np

from multilayer.engine.checks import finite
from multilayer.utils.naming import unknown_name_error


class Regularizer:
    """``penalty(w) = l1 * sum(|w|) + l2 * sum(w^2)``; ``gradient(w)`` is its derivative."""

    name = "l1_l2"

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1 = finite(l1, "regularizer: l1")
        self.l2 = finite(l2, "regularizer: l2")
        if self.l1 < 0 or self.l2 < 0:
            raise ValueError(f"regularization factors must be >= 0, got l1={l1}, l2={l2}")

    def __call__(self, weights: np.ndarray) -> float:
        total = 0.0
        if self.l1:
            total += self.l1 * float(np.abs(weights).sum(dtype=np.float64))
        if self.l2:
            total += self.l2 * float(np.square(weights, dtype=np.float64).sum())
        return total

    def add_gradient(self, weights: np.ndarray, grad: np.ndarray) -> None:
        """Add d(penalty)/dw to ``grad`` in place."""
        if self.l1:
            grad += self.l1 * np.sign(weights)
        if self.l2:
            grad += (2.0 * self.l2) * weights

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}


class L1(Regularizer):
    name = "l1"

    def __init__(self, l1: float = 0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(Regularizer):
    name = "l2"

    def __init__(self, l2: float = 0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


class L1L2(Regularizer):
    name = "l1_l2"


def l1(l1: float = 0.01) -> L1:  # noqa: D103 - Keras' functional spelling
    return L1(l1)


def l2(l2: float = 0.01) -> L2:
    return L2(l2)


def l1_l2(l1: float = 0.0, l2: float = 0.0) -> L1L2:
    return L1L2(l1, l2)


_REGISTRY = {"l1": L1, "l2": L2, "l1_l2": L1L2}


def get(identifier: str | Regularizer | dict | None) -> Regularizer | None:
    """A `Regularizer` from a name (``"l2"``), a config dict, an instance, or None."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, dict):
        config = dict(identifier)
        name = str(config.pop("name", ""))
        if name not in _REGISTRY:
            raise unknown_name_error("regularizer", name, _REGISTRY)
        return _REGISTRY[name](**config)
    if isinstance(identifier, str):
        if identifier.lower() not in _REGISTRY:
            raise unknown_name_error("regularizer", identifier, _REGISTRY)
        return _REGISTRY[identifier.lower()]()
    raise TypeError(f"regularizer must be a name or a Regularizer, got {type(identifier).__name__}")


def serialize(regularizer: Regularizer | None) -> dict | None:
    return None if regularizer is None else {"name": regularizer.name, **regularizer.get_config()}
