"""Normalization layers: BatchNormalization, LayerNormalization and Normalization (Keras 3).

Axes count the batch axis as 0, as in Keras (``axis=-1`` is the last feature axis).

BatchNormalization, per feature along ``axis``, with the statistics taken over every other
axis (the batch included), ``N`` values each::

    training:   mean, var = mean(x), mean((x - mean)^2)          (biased variance, as Keras)
                moving_mean     <- momentum * moving_mean     + (1 - momentum) * mean
                moving_variance <- momentum * moving_variance + (1 - momentum) * var
    inference:  mean, var = moving_mean, moving_variance
    xhat = (x - mean) / sqrt(var + epsilon)        y = gamma * xhat + beta

Backward (g = dL/dy; sums over the reduced axes)::

    dL/dgamma = sum(g * xhat)      dL/dbeta = sum(g)
    training:   dL/dx = gamma / sqrt(var + eps) * (g - mean(g) - xhat * mean(g * xhat))
                (the batch statistics depend on x: this is the exact gradient)
    inference:  dL/dx = gamma / sqrt(var + eps) * g

The moving statistics are non-trainable weights (no gradient, never touched by the
optimizer), saved in model files and checkpoints like every weight. As in Keras 3, a layer
with ``trainable = False`` uses its moving statistics even while the model trains.

LayerNormalization is the same computation with the statistics taken per sample over
``axis`` and no moving statistics. Normalization is a fixed ``(x - mean) / max(sqrt(var),
1e-7)``, with ``mean``/``variance`` given or computed by `Normalization.adapt`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any, cast

import numpy as np

from multilayer.engine import constraints, initializers, regularizers
from multilayer.engine.checks import finite
from multilayer.engine.layers.activation_layers import sample_axes
from multilayer.engine.layers.base import Layer
from multilayer.engine.outputs import OutputArray
from multilayer.engine.registry import Config

#: Keras' ``backend.epsilon()``: the smallest standard deviation Normalization divides by.
EPSILON = 1e-7
#: Samples per chunk when `Normalization.adapt` reads one large array.
ADAPT_CHUNK = 4096


def _reduced(axes: tuple[int, ...], ndim: int) -> tuple[int, ...]:
    return tuple(a for a in range(ndim) if a not in axes)


def _broadcast_shape(axes: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` (of the full batch array) with every axis not in ``axes`` set to 1."""
    return tuple(shape[a] if a in axes else 1 for a in range(len(shape)))


class _Normalizer(Layer):
    """Shared code of Batch- and LayerNormalization: gamma, beta and the exact backward."""

    axis: int | list[int]
    #: kept by `forward` for `backward`: the normalised input and 1 / sqrt(variance + epsilon)
    _xhat: np.ndarray
    _inv_std: np.ndarray

    def __init__(
        self,
        axis: int | Sequence[int],
        epsilon: float,
        center: bool,
        scale: bool,
        beta_initializer: str | initializers.Initializer | Config,
        gamma_initializer: str | initializers.Initializer | Config,
        beta_regularizer: str | regularizers.Regularizer | Config | None,
        gamma_regularizer: str | regularizers.Regularizer | Config | None,
        beta_constraint: str | constraints.Constraint | Config | None,
        gamma_constraint: str | constraints.Constraint | Config | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        what = type(self).__name__
        self.epsilon = finite(epsilon, f"{what}: epsilon")
        if self.epsilon <= 0:
            raise ValueError(f"{what}: epsilon must be > 0, got {epsilon!r}")
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self._axes: tuple[int, ...] = ()
        self._param_broadcast: tuple[int, ...] = ()

    def _add_gamma_beta(self, shape: tuple[int, ...]) -> None:
        if self.scale:
            self.add_weight(
                "gamma",
                shape,
                self.gamma_initializer,
                self.gamma_regularizer,
                constraint=self.gamma_constraint,
            )
        if self.center:
            self.add_weight(
                "beta",
                shape,
                self.beta_initializer,
                self.beta_regularizer,
                constraint=self.beta_constraint,
            )

    def _param(self, name: str) -> np.ndarray | None:
        value = self.weights.get(name)
        return None if value is None else value.reshape(self._param_broadcast)

    def _affine(self, xhat: np.ndarray) -> np.ndarray:
        gamma, beta = self._param("gamma"), self._param("beta")
        y = xhat * gamma if gamma is not None else xhat.copy()
        if beta is not None:
            y += beta
        return y

    def backward(
        self, grad: np.ndarray, need_input_grad: bool = True, fused: bool = False
    ) -> np.ndarray | None:
        self._param_grads(grad, self._xhat)
        if not need_input_grad:
            return None
        gamma = self._param("gamma")
        dxhat = grad * gamma if gamma is not None else grad
        return self._input_grad(dxhat)

    def _input_grad(self, dxhat: np.ndarray) -> np.ndarray:
        """dL/dx from dL/dxhat (``xhat`` and ``inv_std`` kept by `forward`)."""
        raise NotImplementedError

    def _param_grads(self, grad: np.ndarray, xhat: np.ndarray) -> None:
        """dL/dgamma and dL/dbeta: sums of g * xhat and g over the non-feature axes."""
        others = _reduced(self._axes, grad.ndim)
        if self.scale:
            self.grads["gamma"][...] = np.sum(grad * xhat, axis=others).reshape(
                self.grads["gamma"].shape
            )
            if self.gamma_regularizer is not None:
                self.gamma_regularizer.add_gradient(self.weights["gamma"], self.grads["gamma"])
        if self.center:
            self.grads["beta"][...] = np.sum(grad, axis=others).reshape(self.grads["beta"].shape)
            if self.beta_regularizer is not None:
                self.beta_regularizer.add_gradient(self.weights["beta"], self.grads["beta"])

    def _config(self) -> Config:
        return {
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            "beta_regularizer": regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
            "beta_constraint": constraints.serialize(self.beta_constraint),
            "gamma_constraint": constraints.serialize(self.gamma_constraint),
        }


def _normalized_gradient(
    dxhat: np.ndarray, xhat: np.ndarray, inv_std: np.ndarray, stats_axes: tuple[int, ...]
) -> np.ndarray:
    """dL/dx when ``xhat = (x - mean(x)) * inv_std`` with the statistics of x over
    ``stats_axes``: ``inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))``."""
    dx = dxhat - np.mean(dxhat, axis=stats_axes, keepdims=True)
    dx -= xhat * np.mean(dxhat * xhat, axis=stats_axes, keepdims=True)
    dx *= inv_std
    return dx


class BatchNormalization(_Normalizer):
    """Normalizes each feature with the batch's statistics while training and with moving
    averages of them at inference (Keras 3's arguments and defaults).

    Args:
        axis: the feature axis (an int; -1, the last one, by default).
        momentum: of the moving averages (0.99).
        epsilon: added to the variance (1e-3).
        center, scale: learn ``beta`` / ``gamma`` (both True).
        renorm, synchronized: only False is supported (batch renormalization and
            cross-device statistics are not implemented).
    """

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: str | initializers.Initializer | Config = "zeros",
        gamma_initializer: str | initializers.Initializer | Config = "ones",
        moving_mean_initializer: str | initializers.Initializer | Config = "zeros",
        moving_variance_initializer: str | initializers.Initializer | Config = "ones",
        beta_regularizer: str | regularizers.Regularizer | Config | None = None,
        gamma_regularizer: str | regularizers.Regularizer | Config | None = None,
        beta_constraint: str | constraints.Constraint | Config | None = None,
        gamma_constraint: str | constraints.Constraint | Config | None = None,
        renorm: bool = False,
        renorm_clipping: dict | None = None,
        renorm_momentum: float = 0.99,
        synchronized: bool = False,
        **kwargs: Any,
    ) -> None:
        if renorm:
            raise ValueError(
                "BatchNormalization: renorm=True (batch renormalization) is not supported"
            )
        if synchronized:
            raise ValueError(
                "BatchNormalization: synchronized=True (statistics across devices) is not supported"
            )
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise ValueError(f"BatchNormalization: axis must be an integer, got {axis!r}")
        super().__init__(
            int(axis),
            epsilon,
            center,
            scale,
            beta_initializer,
            gamma_initializer,
            beta_regularizer,
            gamma_regularizer,
            beta_constraint,
            gamma_constraint,
            **kwargs,
        )
        self.axis: int = int(axis)
        self.momentum: float = finite(momentum, "BatchNormalization: momentum")
        if not 0 <= self.momentum <= 1:
            raise ValueError(f"BatchNormalization: momentum must be in [0, 1], got {momentum!r}")
        self.moving_mean_initializer: initializers.Initializer = initializers.get(
            moving_mean_initializer
        )
        self.moving_variance_initializer: initializers.Initializer = initializers.get(
            moving_variance_initializer
        )
        self.renorm_momentum: float = finite(renorm_momentum, "BatchNormalization: renorm_momentum")

    def build(self, input_shape: tuple[int, ...]) -> None:
        super().build(input_shape)
        (axis,) = sample_axes(
            self.axis, len(input_shape), f"BatchNormalization layer {self.name!r}"
        )
        if axis == 0:
            raise ValueError(
                f"BatchNormalization layer {self.name!r}: axis {self.axis} is the batch axis; "
                "give the feature axis (-1 for the last one)"
            )
        self._axes = (axis,)
        self._param_broadcast = _broadcast_shape(self._axes, (1, *input_shape))
        shape = (input_shape[axis - 1],)
        self._add_gamma_beta(shape)
        self.add_weight("moving_mean", shape, self.moving_mean_initializer, trainable=False)
        self.add_weight("moving_variance", shape, self.moving_variance_initializer, trainable=False)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        dtype = self.weights["moving_mean"].dtype
        if x.dtype != dtype:
            x = x.astype(dtype)
        stats = _reduced(self._axes, x.ndim)
        self._batch_statistics = training and self.trainable
        if self._batch_statistics:
            mean = np.mean(x, axis=stats, keepdims=True)
            variance = np.mean(np.square(x - mean), axis=stats, keepdims=True)
            for name, value in (("moving_mean", mean), ("moving_variance", variance)):
                moving = self.weights[name]
                moving *= self.momentum
                moving += (1.0 - self.momentum) * value.reshape(moving.shape)
        else:
            mean = self.weights["moving_mean"].reshape(self._param_broadcast)
            variance = self.weights["moving_variance"].reshape(self._param_broadcast)
        inv_std = 1.0 / np.sqrt(variance + dtype.type(self.epsilon))
        xhat = (x - mean) * inv_std
        self._xhat, self._inv_std = xhat, inv_std
        return self._affine(xhat)

    def _input_grad(self, dxhat: np.ndarray) -> np.ndarray:
        if not self._batch_statistics:
            return dxhat * self._inv_std
        return _normalized_gradient(
            dxhat, self._xhat, self._inv_std, _reduced(self._axes, dxhat.ndim)
        )

    def get_config(self) -> Config:
        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            **self._config(),
            "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
            "moving_variance_initializer": initializers.serialize(self.moving_variance_initializer),
            "synchronized": False,
            "renorm": False,
            "renorm_clipping": None,
            "renorm_momentum": self.renorm_momentum,
        }


class LayerNormalization(_Normalizer):
    """Normalizes each sample over ``axis`` (default -1; an int or a list), then scales by
    ``gamma`` and shifts by ``beta`` (learned, one per position along ``axis``).

    Keras' deprecated ``rms_scaling=True`` is refused (use RMS normalization instead).
    """

    def __init__(
        self,
        axis: int | Sequence[int] = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: str | initializers.Initializer | Config = "zeros",
        gamma_initializer: str | initializers.Initializer | Config = "ones",
        beta_regularizer: str | regularizers.Regularizer | Config | None = None,
        gamma_regularizer: str | regularizers.Regularizer | Config | None = None,
        beta_constraint: str | constraints.Constraint | Config | None = None,
        gamma_constraint: str | constraints.Constraint | Config | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.pop("rms_scaling", False):
            raise ValueError(
                "LayerNormalization: rms_scaling=True (deprecated in Keras) is not supported"
            )
        if isinstance(axis, numbers.Integral) and not isinstance(axis, bool):
            self.axis: int | list[int] = int(axis)
        elif (
            isinstance(axis, (list, tuple))
            and axis
            and all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in axis)
        ):
            self.axis = [int(a) for a in axis]
        else:
            raise ValueError(
                f"LayerNormalization: axis must be an integer or a list of integers, got {axis!r}"
            )
        super().__init__(
            self.axis,
            epsilon,
            center,
            scale,
            beta_initializer,
            gamma_initializer,
            beta_regularizer,
            gamma_regularizer,
            beta_constraint,
            gamma_constraint,
            **kwargs,
        )

    def build(self, input_shape: tuple[int, ...]) -> None:
        super().build(input_shape)
        axes = sample_axes(self.axis, len(input_shape), f"LayerNormalization layer {self.name!r}")
        if 0 in axes:
            raise ValueError(
                f"LayerNormalization layer {self.name!r}: axis {self.axis} includes the batch axis"
            )
        self._axes = axes
        self._param_broadcast = _broadcast_shape(axes, (1, *input_shape))
        self._add_gamma_beta(tuple(input_shape[a - 1] for a in axes))

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        dtype = self.dtype or np.dtype("float32")
        if x.dtype != dtype:
            x = x.astype(dtype)
        mean = np.mean(x, axis=self._axes, keepdims=True)
        centered = x - mean
        variance = np.mean(np.square(centered), axis=self._axes, keepdims=True)
        inv_std = 1.0 / np.sqrt(variance + self.epsilon)  # a Python float keeps x's dtype
        xhat = centered * inv_std
        self._xhat, self._inv_std = xhat, inv_std
        return self._affine(xhat)

    def _input_grad(self, dxhat: np.ndarray) -> np.ndarray:
        return _normalized_gradient(dxhat, self._xhat, self._inv_std, self._axes)

    def get_config(self) -> Config:
        return {**super().get_config(), "axis": self.axis, **self._config(), "rms_scaling": False}


class Normalization(Layer):
    """Shifts and scales inputs to zero mean and unit variance: ``(x - mean) /
    max(sqrt(variance), 1e-7)`` (``invert=True``: ``mean + x * max(sqrt(variance), 1e-7)``).

    Give ``mean`` and ``variance`` (numbers, or lists shaped like the kept axes), or call
    `adapt` with data before training. ``axis`` are the axes kept (one mean per position along
    them): -1, the last, by default; None for one mean and variance over everything.

    When not given, mean and variance are non-trainable weights (saved with the model).
    Keras also creates a ``count`` weight, which its ``adapt`` never updates; it is not kept.
    """

    def __init__(
        self,
        axis: int | Sequence[int] | None = -1,
        mean: float | Sequence[Any] | None = None,
        variance: float | Sequence[Any] | None = None,
        invert: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if axis is None:
            self.axis: tuple[int, ...] = ()
        elif isinstance(axis, numbers.Integral) and not isinstance(axis, bool):
            self.axis = (int(axis),)
        elif isinstance(axis, (list, tuple)) and all(
            isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in axis
        ):
            self.axis = tuple(int(a) for a in axis)
        else:
            raise ValueError(
                f"Normalization: axis must be an integer, a list of integers or None, got {axis!r}"
            )
        if (mean is None) != (variance is None):
            raise ValueError("Normalization: give both mean and variance, or neither")
        self.input_mean: np.ndarray | None = None
        self.input_variance: np.ndarray | None = None
        if mean is not None:
            self.input_mean = self._statistic(mean, "mean")
            self.input_variance = self._statistic(variance, "variance")
            if self.input_mean.shape != self.input_variance.shape:
                raise ValueError(
                    "Normalization: mean and variance must have the same shape, got "
                    f"{self.input_mean.shape} and {self.input_variance.shape}"
                )
            if np.any(self.input_variance < 0):
                raise ValueError("Normalization: variance must be >= 0")
            if self.input_mean.ndim > len(self.axis):
                raise ValueError(
                    f"Normalization: mean has rank {self.input_mean.ndim}, more than the "
                    f"{len(self.axis)} kept axes {self.axis}"
                )
        self.invert = bool(invert)
        self._adapted: tuple[np.ndarray, np.ndarray] | None = None

    @staticmethod
    def _statistic(value: object, name: str) -> np.ndarray:
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"Normalization: {name} must be a number or a list of numbers"
            ) from None
        if not np.all(np.isfinite(array)):
            raise ValueError(f"Normalization: {name} must be finite")
        return array

    # -- shapes -----------------------------------------------------------------------------
    def _resolve(self, input_shape: tuple[int, ...]) -> None:
        self._keep = (
            sample_axes(self.axis, len(input_shape), f"Normalization layer {self.name!r}")
            if self.axis
            else ()
        )
        if 0 in self._keep:
            raise ValueError(
                f"Normalization layer {self.name!r}: axis {self.axis} includes the batch axis"
            )
        full = (1, *input_shape)
        self._broadcast = _broadcast_shape(self._keep, full)
        self._stats_shape = tuple(full[a] for a in self._keep)
        self._reduce = _reduced(self._keep, len(full))

    def build(self, input_shape: tuple[int, ...]) -> None:
        if self._adapted is not None and tuple(input_shape) != self.input_shape:
            raise ValueError(
                f"Normalization layer {self.name!r} was adapted to samples of shape "
                f"{self.input_shape}, but the model gives it samples of shape {tuple(input_shape)}"
            )
        super().build(input_shape)
        self._resolve(tuple(input_shape))
        if self.input_mean is not None:
            mean, variance = self.input_mean, cast(np.ndarray, self.input_variance)
            if mean.ndim:
                # mean's axes are the last kept axes (as Keras aligns them)
                shape = [1] * (len(input_shape) + 1)
                for i in range(1, mean.ndim + 1):
                    shape[self._keep[-i]] = mean.shape[-i]
                try:
                    mean, variance = mean.reshape(shape), variance.reshape(shape)
                    np.broadcast_shapes(mean.shape, self._broadcast)
                except ValueError:
                    raise ValueError(
                        f"Normalization layer {self.name!r}: mean of shape {self.input_mean.shape} "
                        f"does not fit the kept axes of samples of shape {tuple(input_shape)}"
                    ) from None
            self._fixed = (mean, variance)
        elif not self.parameter_specs:
            self.add_weight("mean", self._stats_shape, initializers.Zeros(), trainable=False)
            self.add_weight("variance", self._stats_shape, initializers.Ones(), trainable=False)

    def bind_parameter(
        self, name: str, value: np.ndarray, grad: np.ndarray | None, *args: object
    ) -> None:
        super().bind_parameter(name, value, grad, *args)
        if self._adapted is not None:  # adapted before the model allocated the weights
            value[...] = self._adapted[0 if name == "mean" else 1]

    def adapt(self, data: Any) -> None:
        """Set mean and variance to those of ``data`` over the reduced axes.

        ``data``: an array of samples ``(n, *sample_shape)``, or an iterable of such batches
        (or of ``(x, y)`` pairs), combined with Chan's parallel formula as Keras does. An array
        is read in chunks of `ADAPT_CHUNK` samples, so memory stays bounded.
        """
        if self.input_mean is not None:
            raise ValueError(
                f"Normalization layer {self.name!r} was given mean and variance; it cannot adapt"
            )
        if isinstance(data, (str, bytes)) or not isinstance(data, (Iterable, np.ndarray)):
            raise TypeError(
                "Normalization.adapt: data must be an array or an iterable of batches, got "
                f"{type(data).__name__}"
            )
        if isinstance(data, np.ndarray):
            if data.ndim < 1 or len(data) == 0:
                raise ValueError("Normalization.adapt: data must be a non-empty batch of samples")
            batches: Iterable[Any] = (
                data[start : start + ADAPT_CHUNK] for start in range(0, len(data), ADAPT_CHUNK)
            )
        else:
            batches = data
        total = 0
        mean = variance = None
        for batch in batches:
            if isinstance(batch, tuple):
                batch = batch[0]  # (x, y) pairs: adapt to x
            array = np.asarray(batch)
            if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
                raise ValueError(
                    f"Normalization.adapt: data must be numeric, got dtype {array.dtype}"
                )
            if array.ndim < 1 or array.shape[0] == 0:
                raise ValueError("Normalization.adapt: data must be a non-empty batch of samples")
            array = array.astype(np.float64)
            if array.ndim == 1:  # a column of scalars (Keras: one feature), as (n, 1)
                array = array.reshape(len(array), 1)
            if not np.all(np.isfinite(array)):
                raise ValueError("Normalization.adapt: data contains NaN or infinite values")
            if mean is None:
                if self.built and self.input_shape != array.shape[1:]:
                    raise ValueError(
                        f"Normalization.adapt: the layer has samples of shape {self.input_shape}, "
                        f"the data {array.shape[1:]}"
                    )
                self.input_shape = tuple(array.shape[1:])
                self._resolve(self.input_shape)
            elif array.shape[1:] != self.input_shape:
                raise ValueError(
                    f"Normalization.adapt: a batch has samples of shape {array.shape[1:]}, "
                    f"the first had {self.input_shape}"
                )
            batch_mean = np.mean(array, axis=self._reduce)
            batch_variance = np.var(array, axis=self._reduce)
            count = math.prod(array.shape[a] for a in self._reduce)
            if mean is None or variance is None:
                mean, variance, total = batch_mean, batch_variance, count
                continue
            total += count
            weight = count / total
            new_mean = mean * (1 - weight) + batch_mean * weight
            variance = (variance + (mean - new_mean) ** 2) * (1 - weight) + (
                batch_variance + (batch_mean - new_mean) ** 2
            ) * weight
            mean = new_mean
        if mean is None or variance is None:
            raise ValueError("Normalization.adapt: no data (an empty iterable)")
        self._adapted = (mean.reshape(self._stats_shape), variance.reshape(self._stats_shape))
        if "mean" in self.weights:  # already in a built model: write into its weights
            self.weights["mean"][...] = self._adapted[0]
            self.weights["variance"][...] = self._adapted[1]

    def _statistics(self) -> tuple[np.ndarray, np.ndarray]:
        if self.input_mean is not None:
            return self._fixed
        if "mean" not in self.weights:
            raise RuntimeError(
                f"Normalization layer {self.name!r} is not in a built model yet; add it to a "
                "model (its mean and variance are weights the model allocates)"
            )
        return (
            self.weights["mean"].reshape(self._broadcast),
            self.weights["variance"].reshape(self._broadcast),
        )

    def _statistic_value(self, index: int, name: str) -> OutputArray:
        if self.input_mean is not None and hasattr(self, "_fixed"):
            value = self._fixed[index]
        elif "mean" in self.weights:
            value = self._statistics()[index]
        elif self._adapted is not None:
            value = self._adapted[index].reshape(self._broadcast)
        else:
            raise AttributeError(
                f"Normalization layer {self.name!r} has no {name} yet: call adapt() or build it"
            )
        return np.array(value, dtype=self.dtype or np.dtype("float32")).view(OutputArray)

    @property
    def mean(self) -> OutputArray:
        """The mean the layer subtracts, shaped to broadcast against a batch (Keras'
        ``layer.mean``; ``.numpy()`` works): set by `adapt`, given, or read from the model."""
        return self._statistic_value(0, "mean")

    @property
    def variance(self) -> OutputArray:
        """The variance the layer divides by (its square root), shaped like `mean`."""
        return self._statistic_value(1, "variance")

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        dtype = self.dtype or np.dtype("float32")
        mean, variance = self._statistics()
        std = np.maximum(np.sqrt(variance), EPSILON).astype(dtype)
        self._std = std
        x = x.astype(dtype, copy=False)
        if self.invert:
            return (mean.astype(dtype) + x * std).astype(dtype, copy=False)
        return ((x - mean.astype(dtype)) / std).astype(dtype, copy=False)

    def backward(
        self, grad: np.ndarray, need_input_grad: bool = True, fused: bool = False
    ) -> np.ndarray | None:
        if not need_input_grad:
            return None
        return grad * self._std if self.invert else grad / self._std

    def get_config(self) -> Config:
        def listed(value: np.ndarray | None) -> Any:
            return None if value is None else value.tolist()

        return {
            **super().get_config(),
            "axis": list(self.axis) if len(self.axis) != 1 else self.axis[0],
            "invert": self.invert,
            "mean": listed(self.input_mean),
            "variance": listed(self.input_variance),
        }
