"""Keras 2's ``keras.optimizers.legacy``: the same optimizers, with Keras 2's arguments.

Old programs write ``SGD(lr=0.01, decay=1e-6, momentum=0.9)``. Here ``lr`` is accepted as
the old name of ``learning_rate``, and ``decay`` as Keras 2's time-based decay: the learning
rate at step ``t`` is ``learning_rate / (1 + decay * t)``, i.e. an
`InverseTimeDecay(learning_rate, decay_steps=1, decay_rate=decay)` schedule (saved and
restored as such). The optimizers are the current ones (`multilayer.optimizers`), so a
model compiled with them saves and loads like any other (each name here is a function that
returns the current optimizer built from Keras 2's arguments).
"""

from __future__ import annotations

from typing import Any

from multilayer.engine import optimizers as _optimizers
from multilayer.engine.schedules import InverseTimeDecay

__all__ = ["SGD", "Adagrad", "Adam", "Optimizer", "RMSprop"]

Optimizer = _optimizers.Optimizer


def _legacy_arguments(
    cls_name: str, learning_rate: object, kwargs: dict[str, Any], default: float
) -> dict[str, Any]:
    lr = kwargs.pop("lr", None)
    if lr is not None:
        if learning_rate is not None:
            raise ValueError(f"{cls_name}: give learning_rate or its old name lr, not both")
        learning_rate = lr
    kwargs["learning_rate"] = default if learning_rate is None else learning_rate
    decay = kwargs.pop("decay", 0.0)
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or decay < 0:
        raise ValueError(f"{cls_name}: decay must be a number >= 0, got {decay!r}")
    if decay:
        learning_rate = kwargs["learning_rate"]
        if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)):
            raise ValueError(
                f"{cls_name}: decay= applies to a constant learning rate; with a schedule, "
                "put the decay in the schedule"
            )
        kwargs["learning_rate"] = InverseTimeDecay(learning_rate, 1, float(decay))
    return kwargs


def SGD(learning_rate: float | None = None, **kwargs: Any) -> _optimizers.SGD:  # noqa: N802
    """``keras.optimizers.legacy.SGD``: a `multilayer.optimizers.SGD`, from Keras 2's arguments."""
    return _optimizers.SGD(**_legacy_arguments("SGD", learning_rate, kwargs, 0.01))


def Adam(learning_rate: float | None = None, **kwargs: Any) -> _optimizers.Adam:  # noqa: N802
    """``keras.optimizers.legacy.Adam``: a `multilayer.optimizers.Adam`, from Keras 2's arguments."""
    return _optimizers.Adam(**_legacy_arguments("Adam", learning_rate, kwargs, 0.001))


def RMSprop(learning_rate: float | None = None, **kwargs: Any) -> _optimizers.RMSprop:  # noqa: N802
    """``keras.optimizers.legacy.RMSprop``: a `multilayer.optimizers.RMSprop`, from Keras 2's
    arguments."""
    return _optimizers.RMSprop(**_legacy_arguments("RMSprop", learning_rate, kwargs, 0.001))


def Adagrad(learning_rate: float | None = None, **kwargs: Any) -> _optimizers.Adagrad:  # noqa: N802
    """``keras.optimizers.legacy.Adagrad``: a `multilayer.optimizers.Adagrad`, from Keras 2's
    arguments."""
    return _optimizers.Adagrad(**_legacy_arguments("Adagrad", learning_rate, kwargs, 0.001))
