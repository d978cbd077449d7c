"""RobustScaling: RealMLP's robust scaling with smooth clipping, for raw numeric table columns.

Per feature ``j`` (the last axis), with ``center`` the median and ``scale`` a multiplier::

    z = (x - center_j) * scale_j
    y = z / sqrt(1 + (z / clip)^2)          (smooth clipping; none when clip is None)

``RobustScaling.statistics(values)`` gives RealMLP's choice (Holzmüller et al. 2024):
``center`` = median, ``scale`` = 1 / (q75 - q25), or 2 / (max - min) when the quartiles are
equal, or 0 for a constant feature. A missing value (NaN, or None in an object array) becomes
0, the median; with ``missing_indicator`` (one flag per feature, or one for all) a 0/1 column
saying "this value was missing" is appended for each flagged feature, after the scaled
features. The layer takes raw table values as a model input (``accepts_raw_input``): NaN
never reaches the next layer.

The statistics are part of the layer's config (saved in the model file) and never trained.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from multilayer.engine.layers.base import Layer
from multilayer.engine.registry import Config

#: Most features one RobustScaling layer takes (a bound on what a model file may declare).
MAX_FEATURES = 1_000_000
DEFAULT_CLIP = 3.0


def _floats(value: Any, name: str) -> list[float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple, np.ndarray)):
        raise ValueError(
            f"RobustScaling: {name} must be a list of numbers, got {type(value).__name__}"
        )
    if len(value) > MAX_FEATURES:
        raise ValueError(
            f"RobustScaling: {name} has {len(value):,} entries (limit {MAX_FEATURES:,})"
        )
    out = []
    for v in list(value):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise ValueError(f"RobustScaling: {name} must hold numbers, got {v!r}")
        if not math.isfinite(float(v)):
            raise ValueError(f"RobustScaling: {name} must hold finite numbers, got {v!r}")
        out.append(float(v))
    return out


def as_float_column(x: np.ndarray) -> np.ndarray:
    """``x`` as float64, None (in an object array) as NaN."""
    if x.dtype == object:
        flat = [np.nan if v is None else v for v in x.reshape(-1).tolist()]
        try:
            return np.array(flat, dtype=np.float64).reshape(x.shape)
        except (TypeError, ValueError):
            raise TypeError("expects numbers (or None/NaN for missing values)") from None
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise TypeError(f"expects numbers, got an array of dtype {x.dtype}")
    return np.asarray(x, dtype=np.float64)


class RobustScaling(Layer):
    """Robust scaling with smooth clipping (see the module docstring).

    Args:
        center: per-feature values subtracted (the medians); one number for all features.
        scale: per-feature multipliers (1 / IQR); one number for all features.
        clip: the smooth-clipping bound (outputs stay within ``(-clip, clip)``); None: none.
        missing_indicator: append a missing-value column per feature (True), for none
            (False), or per feature (a list of booleans).
    """

    accepts_raw_input = True

    def __init__(
        self,
        center: float | Sequence[float] = 0.0,
        scale: float | Sequence[float] = 1.0,
        clip: float | None = DEFAULT_CLIP,
        missing_indicator: bool | Sequence[bool] = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.center = _floats(center, "center")
        self.scale = _floats(scale, "scale")
        if len(self.center) != len(self.scale):
            raise ValueError(
                f"RobustScaling: center and scale must have the same length, got "
                f"{len(self.center)} and {len(self.scale)}"
            )
        if clip is not None:
            if isinstance(clip, bool) or not isinstance(clip, (int, float)):
                raise ValueError(
                    f"RobustScaling: clip must be a positive number or None, got {clip!r}"
                )
            if not (math.isfinite(clip) and clip > 0):
                raise ValueError(
                    f"RobustScaling: clip must be a positive number or None, got {clip!r}"
                )
            clip = float(clip)
        self.clip = clip
        if isinstance(missing_indicator, bool):
            self.missing_indicator: bool | list[bool] = missing_indicator
        else:
            flags = (
                list(missing_indicator) if isinstance(missing_indicator, (list, tuple)) else None
            )
            if flags is None or not all(isinstance(f, bool) for f in flags):
                raise ValueError(
                    "RobustScaling: missing_indicator must be a boolean or a list of booleans"
                )
            if len(flags) != len(self.center):
                raise ValueError(
                    f"RobustScaling: missing_indicator has {len(flags)} flags for "
                    f"{len(self.center)} features"
                )
            self.missing_indicator = flags

    @staticmethod
    def statistics(values: np.ndarray) -> tuple[list[float], list[float]]:
        """RealMLP's ``(center, scale)`` per column of ``values`` (rows, features), ignoring
        NaN; a column without values gets center 0 and scale 0 (it outputs 0)."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        centers, scales = [], []
        for column in values.T:
            present = column[~np.isnan(column)]
            if present.size == 0:
                centers.append(0.0)
                scales.append(0.0)
                continue
            q25, median, q75 = np.quantile(present, [0.25, 0.5, 0.75])
            low, high = present.min(), present.max()
            if q75 > q25:
                scale = 1.0 / (q75 - q25)
            elif high > low:
                scale = 2.0 / (high - low)
            else:
                scale = 0.0
            centers.append(float(median))
            scales.append(float(scale) if math.isfinite(scale) else 0.0)
        return centers, scales

    def adapt(self, data: Any) -> None:
        """Set ``center`` and ``scale`` from ``data`` (rows, features) with `statistics`."""
        array = as_float_column(np.asarray(data))
        if array.size == 0:
            raise ValueError(f"RobustScaling layer {self.name!r}: adapt() got no data")
        self.center, self.scale = self.statistics(array.reshape(len(array), -1))
        if isinstance(self.missing_indicator, list) and len(self.missing_indicator) != len(
            self.center
        ):
            self.missing_indicator = False

    def _flags(self, features: int) -> np.ndarray:
        if isinstance(self.missing_indicator, bool):
            return np.full(features, self.missing_indicator)
        return np.asarray(self.missing_indicator, dtype=bool)

    def build(self, input_shape: tuple[int, ...]) -> None:
        shape = tuple(input_shape)
        if len(shape) != 1:
            raise ValueError(
                f"RobustScaling layer {self.name!r}: expects samples of shape (features,), "
                f"got {shape}"
            )
        features = shape[0]
        if len(self.center) == 1 and features != 1:
            self.center = self.center * features
            self.scale = self.scale * features
        if len(self.center) != features:
            raise ValueError(
                f"RobustScaling layer {self.name!r}: has statistics for {len(self.center)} "
                f"features, the input has {features}"
            )
        self.input_shape = shape
        self.output_shape = (features + int(self._flags(features).sum()),)
        self.built = True

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        values = as_float_column(np.asarray(x))
        center = np.asarray(self.center)
        scale = np.asarray(self.scale)
        missing = np.isnan(values)
        z = np.where(missing, 0.0, (values - center) * scale)
        z = np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0) if not np.isfinite(z).all() else z
        if self.clip is not None:
            self._slope = scale * np.power(1.0 + np.square(z / self.clip), -1.5)
            z = z / np.sqrt(1.0 + np.square(z / self.clip))
        else:
            self._slope = np.broadcast_to(scale, z.shape)
        self._slope = np.where(missing, 0.0, self._slope)
        flags = self._flags(values.shape[1])
        if flags.any():
            z = np.concatenate([z, missing[:, flags].astype(np.float64)], axis=1)
        return z.astype(self.dtype or np.float32)

    def backward(
        self, grad: np.ndarray, need_input_grad: bool = True, fused: bool = False
    ) -> np.ndarray | None:
        if not need_input_grad:
            return None
        features = len(self.center)
        return (grad[:, :features] * self._slope).astype(grad.dtype)

    def get_config(self) -> Config:
        return {
            **super().get_config(),
            "center": list(self.center),
            "scale": list(self.scale),
            "clip": self.clip,
            "missing_indicator": self.missing_indicator
            if isinstance(self.missing_indicator, bool)
            else list(self.missing_indicator),
        }
