"""Weight penalties added to the loss: L1, L2 and both (Keras' names and defaults)."""

from __future__ import annotations

import numpy as np

from multilayer.engine.checks import finite
from multilayer.engine.registry import Config, Registry


class Regularizer:
    """``penalty(w) = l1 * sum(|w|) + l2 * sum(w^2)``; ``gradient(w)`` is its derivative."""

    name = "l1_l2"

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
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

    def get_config(self) -> Config:
        return {"l1": self.l1, "l2": self.l2}


class L1(Regularizer):
    name = "l1"

    def __init__(self, l1: float = 0.01) -> None:
        super().__init__(l1=l1)

    def get_config(self) -> Config:
        return {"l1": self.l1}


class L2(Regularizer):
    name = "l2"

    def __init__(self, l2: float = 0.01) -> None:
        super().__init__(l2=l2)

    def get_config(self) -> Config:
        return {"l2": self.l2}


class L1L2(Regularizer):
    name = "l1_l2"


def l1(l1: float = 0.01) -> L1:  # noqa: D103 - Keras' functional spelling
    return L1(l1)


def l2(l2: float = 0.01) -> L2:
    return L2(l2)


def l1_l2(l1: float = 0.0, l2: float = 0.0) -> L1L2:
    return L1L2(l1, l2)


REGISTRY: Registry[Regularizer] = Registry("regularizer", Regularizer)
REGISTRY.register(Regularizer, names=())  # usable itself; "l1_l2" is L1L2's name
for _cls in (L1, L2, L1L2):
    REGISTRY.register(_cls)


def get(identifier: str | Regularizer | Config | None) -> Regularizer | None:
    """A `Regularizer` from a name (``"l2"``), a config dict, an instance, or None."""
    return None if identifier is None else REGISTRY.get(identifier)


def serialize(regularizer: Regularizer | None) -> Config | None:
    """``{"class_name": ..., "config": ...}``, or None for no regularizer."""
    return None if regularizer is None else REGISTRY.serialize(regularizer)


def deserialize(config: str | Config | None) -> Regularizer | None:
    return None if config is None else REGISTRY.deserialize(config)
