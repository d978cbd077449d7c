"""Training-only noise layers (Keras 3): GaussianNoise, GaussianDropout, AlphaDropout.

Each is the identity at inference. While training, the noise is drawn from the layer's
generator: its own when a ``seed`` is given, otherwise the model's (so a model built with
``seed=`` trains reproducibly, and checkpoints resume with the same noise).

    GaussianNoise(stddev)   y = x + e,  e ~ N(0, stddev^2)               dL/dx = g
    GaussianDropout(rate)   y = x * m,  m ~ N(1, rate / (1 - rate))      dL/dx = g * m
    AlphaDropout(rate)      keep ~ Bernoulli(1 - rate) (``u >= rate``, u uniform as Keras),
                            y = a * (x * keep + alpha' * (1 - keep)) + b  dL/dx = g * a * keep
                            alpha' = -1.6732632... * 1.0507009...  (SELU's saturation value),
                            a = ((1 - rate) * (1 + rate * alpha'^2))^-1/2,  b = -a * alpha' * rate
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from multilayer.engine.checks import finite
from multilayer.engine.layers.base import Layer
from multilayer.engine.registry import Config

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


class _Noise(Layer):
    """Shared code: the seed, the generator and the training-only switch."""

    def __init__(self, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(
                f"{type(self).__name__}: seed must be a non-negative integer, got {seed!r}"
            )
        self.seed = seed
        #: a seeded layer has its own generator (its state is saved in checkpoints)
        self.owns_rng = seed is not None
        if seed is not None:
            self.rng = np.random.default_rng(seed)

    def _generator(self) -> np.random.Generator:
        if self.rng is None:
            raise RuntimeError(
                f"{type(self).__name__} layer {self.name!r} has no random generator: give it a "
                "seed, or train it inside a model (which provides one)"
            )
        return self.rng

    def _float(self, x: np.ndarray) -> np.ndarray:
        dtype = self.dtype or np.dtype("float32")
        return x if x.dtype == dtype else x.astype(dtype)


def _rate(rate: object, what: str) -> float:
    value = finite(rate, f"{what}: rate")
    if not 0 <= value < 1:
        raise ValueError(f"{what}: rate must be in [0, 1), got {rate!r}")
    return value


class GaussianNoise(_Noise):
    """Adds zero-mean Gaussian noise of standard deviation ``stddev`` (in [0, 1], as Keras
    checks) while training."""

    def __init__(self, stddev: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        self.stddev = finite(stddev, "GaussianNoise: stddev")
        if not 0 <= self.stddev <= 1:
            raise ValueError(f"GaussianNoise: stddev must be in [0, 1], got {stddev!r}")

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if not training or self.stddev == 0:
            return x
        x = self._float(x)
        noise = self._generator().standard_normal(size=x.shape, dtype=x.dtype)
        noise *= x.dtype.type(self.stddev)
        noise += x
        return noise

    def backward(
        self, grad: np.ndarray, need_input_grad: bool = True, fused: bool = False
    ) -> np.ndarray | None:
        return grad if need_input_grad else None

    def get_config(self) -> Config:
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


class GaussianDropout(_Noise):
    """Multiplies by Gaussian noise of mean 1 and variance ``rate / (1 - rate)`` while
    training. ``rate`` in [0, 1) (Keras also takes 1, which divides by zero)."""

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        self.rate = _rate(rate, "GaussianDropout")

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._noise: np.ndarray | None = None
        if not training or self.rate == 0:
            return x
        x = self._float(x)
        noise = self._generator().standard_normal(size=x.shape, dtype=x.dtype)
        noise *= x.dtype.type(math.sqrt(self.rate / (1.0 - self.rate)))
        noise += 1
        self._noise = noise
        return x * noise

    def backward(
        self, grad: np.ndarray, need_input_grad: bool = True, fused: bool = False
    ) -> np.ndarray | None:
        if not need_input_grad:
            return None
        return grad if self._noise is None else grad * self._noise

    def get_config(self) -> Config:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class AlphaDropout(_Noise):
    """Dropout that keeps the mean and variance of SELU activations: dropped units are set to
    SELU's negative saturation value, then everything is shifted and scaled back (see the
    module docstring). ``noise_shape``: the shape of the keep mask, batch axis included, with
    ``None`` for "as the input" (e.g. ``(None, 1)`` drops whole samples)."""

    def __init__(
        self,
        rate: float,
        noise_shape: Sequence[int | None] | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed=seed, **kwargs)
        self.rate = _rate(rate, "AlphaDropout")
        if noise_shape is not None:
            if not isinstance(noise_shape, (list, tuple)) or not all(
                d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0)
                for d in noise_shape
            ):
                raise ValueError(
                    "AlphaDropout: noise_shape must be a list of positive integers or None, "
                    f"got {noise_shape!r}"
                )
            noise_shape = list(noise_shape)
        self.noise_shape = noise_shape

    def build(self, input_shape: tuple[int, ...]) -> None:
        if self.noise_shape is not None:
            full = (None, *input_shape)
            if len(self.noise_shape) != len(full) or any(
                d is not None and d not in (1, full[i]) for i, d in enumerate(self.noise_shape)
            ):
                raise ValueError(
                    f"AlphaDropout layer {self.name!r}: noise_shape {self.noise_shape} does not "
                    f"broadcast to inputs of shape (batch, {', '.join(map(str, input_shape))})"
                )
        super().build(input_shape)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._keep: np.ndarray | None = None
        if not training or self.rate == 0:
            return x
        x = self._float(x)
        shape = (
            x.shape
            if self.noise_shape is None
            else tuple(x.shape[i] if d is None else d for i, d in enumerate(self.noise_shape))
        )
        keep = (self._generator().random(size=shape, dtype=x.dtype) >= self.rate).astype(x.dtype)
        alpha_p = -_SELU_ALPHA * _SELU_SCALE
        a = ((1 - self.rate) * (1 + self.rate * alpha_p**2)) ** -0.5
        b = -a * alpha_p * self.rate
        self._keep, self._a = keep, a
        return (a * (x * keep + alpha_p * (1 - keep)) + b).astype(x.dtype, copy=False)

    def backward(
        self, grad: np.ndarray, need_input_grad: bool = True, fused: bool = False
    ) -> np.ndarray | None:
        if not need_input_grad:
            return None
        if self._keep is None:
            return grad
        return (grad * (self._a * self._keep)).astype(grad.dtype, copy=False)

    def get_config(self) -> Config:
        return {
            **super().get_config(),
            "rate": self.rate,
            "noise_shape": self.noise_shape,
            "seed": self.seed,
        }
