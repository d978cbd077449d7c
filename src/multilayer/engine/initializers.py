"""Weight initializers with Keras' names, formulas and defaults.

``fan_in`` and ``fan_out`` are the number of inputs and outputs of a kernel of shape
``(fan_in, fan_out)``. The "normal" variance-scaling initializers draw from a normal
distribution truncated at two standard deviations, rescaled so the variance is the intended
one (as Keras does).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from numpy.typing import DTypeLike

from multilayer.engine.checks import finite
from multilayer.engine.random import global_generator
from multilayer.engine.registry import Config, Registry

# Standard deviation of a unit normal truncated to [-2, 2].
_TRUNCATED_STD = 0.87962566103423978


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) == 1:
        return shape[0], shape[0]
    return int(np.prod(shape[:-1])), shape[-1]


def _truncated_normal(
    rng: np.random.Generator, shape: tuple[int, ...], stddev: float
) -> np.ndarray:
    values = rng.standard_normal(shape)
    outside = np.abs(values) > 2.0
    while outside.any():  # resample the tails: about 4.6% per round
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2.0
    return values * (stddev / _TRUNCATED_STD)


class Initializer:
    """Base class: ``initializer(shape, dtype, rng)`` returns a new array."""

    name = "initializer"

    def __call__(
        self,
        shape: Iterable[int],
        dtype: DTypeLike = "float32",
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        rng = rng if rng is not None else global_generator()
        return np.asarray(self.sample(tuple(int(s) for s in shape), rng), dtype=dtype)

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> Config:
        return {}


class Zeros(Initializer):
    name = "zeros"

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        return np.zeros(shape)


class Ones(Initializer):
    name = "ones"

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        return np.ones(shape)


class RandomNormal(Initializer):
    name = "random_normal"

    def __init__(self, mean: float = 0.0, stddev: float = 0.05) -> None:
        self.mean = finite(mean, "RandomNormal: mean")
        self.stddev = finite(stddev, "RandomNormal: stddev")

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        return rng.normal(self.mean, self.stddev, shape)

    def get_config(self) -> Config:
        return {"mean": self.mean, "stddev": self.stddev}


class RandomUniform(Initializer):
    name = "random_uniform"

    def __init__(self, minval: float = -0.05, maxval: float = 0.05) -> None:
        self.minval = finite(minval, "RandomUniform: minval")
        self.maxval = finite(maxval, "RandomUniform: maxval")

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.minval, self.maxval, shape)

    def get_config(self) -> Config:
        return {"minval": self.minval, "maxval": self.maxval}


class GlorotUniform(Initializer):
    """U(-l, l) with l = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010). Keras' default."""

    name = "glorot_uniform"

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        fan_in, fan_out = _fans(shape)
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape)


class GlorotNormal(Initializer):
    """Truncated normal with stddev sqrt(2 / (fan_in + fan_out))."""

    name = "glorot_normal"

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        fan_in, fan_out = _fans(shape)
        return _truncated_normal(rng, shape, math.sqrt(2.0 / (fan_in + fan_out)))


class HeUniform(Initializer):
    """U(-l, l) with l = sqrt(6 / fan_in) (He et al., 2015): suited to ReLU."""

    name = "he_uniform"

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        limit = math.sqrt(6.0 / _fans(shape)[0])
        return rng.uniform(-limit, limit, shape)


class HeNormal(Initializer):
    """Truncated normal with stddev sqrt(2 / fan_in)."""

    name = "he_normal"

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        return _truncated_normal(rng, shape, math.sqrt(2.0 / _fans(shape)[0]))


class LecunNormal(Initializer):
    """Truncated normal with stddev sqrt(1 / fan_in)."""

    name = "lecun_normal"

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        return _truncated_normal(rng, shape, math.sqrt(1.0 / _fans(shape)[0]))


REGISTRY: Registry[Initializer] = Registry("initializer", Initializer)
for _cls in (
    Zeros,
    Ones,
    RandomNormal,
    RandomUniform,
    GlorotUniform,
    GlorotNormal,
    HeUniform,
    HeNormal,
    LecunNormal,
):
    REGISTRY.register(_cls)


def get(identifier: str | Initializer | Config) -> Initializer:
    """An `Initializer` from a name (``"he_normal"``), a config dict, or an instance."""
    return REGISTRY.get(identifier)


def serialize(initializer: Initializer) -> Config:
    """``{"class_name": ..., "config": ...}``."""
    return REGISTRY.serialize(initializer)


def deserialize(config: str | Config) -> Initializer:
    return REGISTRY.deserialize(config)
