"""``keras.config``: global settings. The backend is NumPy and cannot be changed.

``keras.config.set_floatx("float64")`` and ``keras.config.floatx()`` work as in Keras 3;
``keras.config.set_backend("tensorflow")`` says clearly that multilayer runs on NumPy.
"""

from __future__ import annotations

from multilayer.backend import (
    backend,
    epsilon,
    floatx,
    image_data_format,
    set_epsilon,
    set_floatx,
    set_image_data_format,
)
from multilayer.errors import MultilayerError

__all__ = [
    "BackendNotAvailableError",
    "backend",
    "epsilon",
    "floatx",
    "image_data_format",
    "set_backend",
    "set_epsilon",
    "set_floatx",
    "set_image_data_format",
]


class BackendNotAvailableError(MultilayerError, ValueError):
    """A backend other than NumPy was asked for."""


def set_backend(backend: str) -> None:
    """Accepts only ``"numpy"`` (a no-op): multilayer computes with NumPy, nothing else.

    Raises:
        BackendNotAvailableError: any other backend (``"tensorflow"``, ``"jax"``,
            ``"torch"``...), saying so.
    """
    if backend != "numpy":
        raise BackendNotAvailableError(
            f"set_backend({backend!r}): multilayer has one backend, NumPy; it cannot run on "
            f"{backend!r}. Remove the set_backend call (or the KERAS_BACKEND setting), or "
            "use Keras itself for that backend."
        )
