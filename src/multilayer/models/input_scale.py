"""What a model takes as input, recorded with it: `InputScale`.

A model built by ``multilayer.recipes.build_model`` takes images as stored (pixels 0..255)
and rescales or standardises them itself with its first layers. Its `InputScale` says so,
and is saved in the model file (header entry ``input``), so that ``mlp predict``,
``mlp evaluate`` and the web app feed it the right values without guessing from its layers
(`multilayer.inference.model_inputs`). Models without one (written by hand, or saved before
the scale was recorded) are recognised from their leading layers instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["InputScale"]


def _finite(name: str, value) -> float:
    if not isinstance(value, bool) and isinstance(value, (int, float)):
        try:
            number = float(value)  # a huge JSON integer overflows here
        except OverflowError:
            number = math.inf
        if math.isfinite(number):
            return number
    raise ValueError(f"InputScale: {name} must be a finite number, got {value!r:.50}")


@dataclass(frozen=True)
class InputScale:
    """The pixel values a model is fed: images with pixels in ``0 .. pixel_max``.

    Attributes:
        pixel_max: 255 for a model that takes pixels as stored (uint8 images), 1 for one
            that takes images already scaled to [0, 1].
        mean, std: the standardisation the model's own first layers apply, on the [0, 1]
            scale (``(x / 255 - mean) / std``), or None when they only rescale; recorded
            so it can be shown, never applied a second time.

    Raises:
        ValueError: a value that is not finite, a ``pixel_max`` or ``std`` that is not
            positive, or only one of ``mean`` and ``std``.
    """

    pixel_max: float = 255.0
    mean: float | None = None
    std: float | None = None

    def __post_init__(self):
        if _finite("pixel_max", self.pixel_max) <= 0:
            raise ValueError(f"InputScale: pixel_max must be positive, got {self.pixel_max!r}")
        if (self.mean is None) != (self.std is None):
            raise ValueError("InputScale: give both mean and std, or neither")
        if self.mean is not None:
            _finite("mean", self.mean)
            if _finite("std", self.std) <= 0:
                raise ValueError(f"InputScale: std must be positive, got {self.std!r}")

    def to_dict(self) -> dict:
        return {"pixel_max": self.pixel_max, "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, data: object) -> InputScale:
        """The scale written by `to_dict`.

        Raises:
            ValueError: not a dict with exactly those keys, or invalid values.
        """
        if not isinstance(data, dict) or set(data) != {"pixel_max", "mean", "std"}:
            raise ValueError(
                f"InputScale: expected {{'pixel_max', 'mean', 'std'}}, got {data!r:.200}"
            )
        return cls(data["pixel_max"], data["mean"], data["std"])
