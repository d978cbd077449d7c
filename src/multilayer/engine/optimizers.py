"""Optimizers with Keras' names, defaults and update equations, one small class each.

Every optimizer updates *one flat vector* of parameters from *one flat vector* of gradients
(see `multilayer.engine.parameters`), in place, with preallocated scratch space: a step is a
dozen vectorised passes over memory whatever the number of layers.

Notation in the docstrings: ``p`` parameters, ``g`` gradient, ``lr`` learning rate at this
step, ``t`` the 1-based step number.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from multilayer.engine import schedules
from multilayer.engine.checks import finite, finite_or_none
from multilayer.engine.registry import Config, Registry

#: a learning rate: a number, or a schedule called with the step count
LearningRate = float | schedules.LearningRateSchedule


class Optimizer:
    """Base class: learning rate (a number or a schedule), clipping, decoupled weight decay.

    Args:
        learning_rate: a float, or a `LearningRateSchedule` called with the step count.
        clipnorm: clip each parameter tensor's gradient to this L2 norm.
        global_clipnorm: clip the gradient of all parameters together to this L2 norm.
        weight_decay: decoupled weight decay, ``p -= lr * weight_decay * p`` before the update.
    """

    name = "optimizer"
    #: names of the per-parameter state vectors, allocated by `build`
    slots: tuple[str, ...] = ()

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        clipnorm: float | None = None,
        global_clipnorm: float | None = None,
        weight_decay: float | None = None,
    ) -> None:
        if clipnorm is not None and global_clipnorm is not None:
            raise ValueError("give at most one of clipnorm and global_clipnorm")
        for argument, value in (("clipnorm", clipnorm), ("global_clipnorm", global_clipnorm)):
            if value is not None and not finite(value, argument) > 0:
                raise ValueError(f"{argument} must be > 0, got {value!r}")
        self._learning_rate = self._check_learning_rate(learning_rate)
        self.clipnorm = clipnorm
        self.global_clipnorm = global_clipnorm
        self.weight_decay = finite_or_none(weight_decay, "weight_decay")
        self.iterations = 0
        self.state: dict[str, np.ndarray] = {}
        #: whether `build` allocated the state for a parameter vector
        self.built = False
        self._segments: list[slice] = []

    @staticmethod
    def _check_learning_rate(value: object) -> float | schedules.LearningRateSchedule:
        if isinstance(value, schedules.LearningRateSchedule):
            return value
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float, np.floating))
            or not value > 0
            or not math.isfinite(value)
        ):
            raise ValueError(
                f"learning_rate must be a positive number or a schedule, got {value!r}"
            )
        return float(value)

    # -- learning rate ------------------------------------------------------------------
    @property
    def learning_rate(self) -> float:
        """The learning rate the next step will use."""
        return self.learning_rate_at(self.iterations)

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        if isinstance(self._learning_rate, schedules.LearningRateSchedule):
            raise TypeError(
                "this optimizer's learning rate is a schedule and cannot be set to a number"
            )
        self._learning_rate = self._check_learning_rate(value)

    @property
    def schedule(self) -> schedules.LearningRateSchedule | None:
        lr = self._learning_rate
        return lr if isinstance(lr, schedules.LearningRateSchedule) else None

    def learning_rate_at(self, step: int) -> float:
        lr = self._learning_rate
        return float(lr(step)) if callable(lr) else lr

    # -- state ----------------------------------------------------------------------------
    def build(self, size: int, dtype: DTypeLike, segments: list[slice] | None = None) -> None:
        """Allocate state for ``size`` parameters; ``segments`` delimit tensors (for clipnorm)."""
        self.state = {slot: np.zeros(size, dtype=dtype) for slot in self.slots}
        self._init_state()
        self._scratch = np.empty(size, dtype=dtype)
        self._segments = list(segments or [slice(0, size)])
        self.built = True

    def _init_state(self) -> None:
        pass

    # -- the step -------------------------------------------------------------------------
    def apply(self, params: np.ndarray, grads: np.ndarray) -> None:
        """One update of ``params`` (flat, in place) from ``grads`` (flat; may be modified)."""
        if len(self._scratch) != params.size:
            raise ValueError(
                f"optimizer was built for {self._scratch.size} parameters, got {params.size}"
            )
        lr = self.learning_rate_at(self.iterations)
        self._clip(grads)
        if self.weight_decay:
            params -= (lr * self.weight_decay) * params
        self.update(params, grads, self.state, self._scratch, lr, self.iterations + 1)
        self.iterations += 1

    def _clip(self, grads: np.ndarray) -> None:
        if self.global_clipnorm is not None:
            _clip_to_norm(grads, self.global_clipnorm)
        elif self.clipnorm is not None:
            for segment in self._segments:
                _clip_to_norm(grads[segment], self.clipnorm)

    def update(
        self,
        p: np.ndarray,
        g: np.ndarray,
        state: dict[str, np.ndarray],
        tmp: np.ndarray,
        lr: float,
        t: int,
    ) -> None:
        """Update ``p`` in place from ``g`` (flat vectors of the same length); ``state`` holds
        the slots, ``tmp`` is scratch of that length, ``t`` the 1-based step number."""
        raise NotImplementedError

    # -- state ----------------------------------------------------------------------------
    def get_state(self) -> dict:
        """What the optimizer has learned, besides its configuration: the step count, the
        learning rate when it is a number (a callback may have changed it) and the state
        vectors (``slots``: views, not copies)."""
        lr = self._learning_rate
        return {
            "iterations": self.iterations,
            "learning_rate": None if callable(lr) else lr,
            "slots": dict(self.state),
        }

    def set_state(self, state: dict) -> None:
        """Restore what `get_state` returned (the optimizer must be built for the same size).

        Raises:
            ValueError: slots missing or of the wrong shape or dtype, a negative step count.
        """
        slots = state.get("slots", {})
        if set(slots) != set(self.state):
            raise ValueError(
                f"optimizer state has slots {sorted(slots)}, {self.name} needs {sorted(self.state)}"
            )
        for slot, target in self.state.items():
            value = np.asarray(slots[slot])
            if value.shape != target.shape or value.dtype != target.dtype:
                raise ValueError(
                    f"optimizer state {slot!r} has shape {value.shape} and dtype {value.dtype}, "
                    f"expected {target.shape} and {target.dtype}"
                )
        iterations = state.get("iterations", 0)
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
            raise ValueError(
                f"optimizer iterations must be a non-negative integer, got {iterations!r}"
            )
        for slot, target in self.state.items():
            target[...] = slots[slot]
        self.iterations = iterations
        learning_rate = state.get("learning_rate")
        if self.schedule is None and isinstance(learning_rate, (int, float)):
            self.learning_rate = learning_rate

    # -- description ----------------------------------------------------------------------
    def get_config(self) -> Config:
        lr = self._learning_rate
        config: Config = {
            "learning_rate": schedules.serialize(lr)
            if isinstance(lr, schedules.LearningRateSchedule)
            else lr
        }
        for key in ("clipnorm", "global_clipnorm", "weight_decay"):
            if getattr(self, key) is not None:
                config[key] = getattr(self, key)
        return config

    @classmethod
    def from_config(cls, config: Config) -> Optimizer:
        """The optimizer `get_config` describes (a schedule given as its config dict)."""
        arguments: dict[str, Any] = dict(config)
        if isinstance(arguments.get("learning_rate"), dict):
            arguments["learning_rate"] = schedules.deserialize(arguments["learning_rate"])
        return cls(**arguments)


def _clip_to_norm(g: np.ndarray, max_norm: float) -> None:
    norm = math.sqrt(float(np.dot(g, g)))
    if norm > max_norm:
        g *= max_norm / norm


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum.

    Keras' form: ``v = momentum * v - lr * g``; then ``p += v``, or with Nesterov
    ``p += momentum * v - lr * g``. Without momentum: ``p -= lr * g``.
    """

    name = "sgd"

    def __init__(
        self,
        learning_rate: LearningRate = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"SGD: momentum must be in [0, 1], got {momentum!r}")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.slots = ("velocity",) if self.momentum else ()

    def update(
        self,
        p: np.ndarray,
        g: np.ndarray,
        state: dict[str, np.ndarray],
        tmp: np.ndarray,
        lr: float,
        t: int,
    ) -> None:
        step = np.multiply(g, lr, out=tmp)
        if not self.momentum:
            p -= step
            return
        v = state["velocity"]
        v *= self.momentum
        v -= step
        if self.nesterov:
            p -= step
            step = np.multiply(v, self.momentum, out=tmp)
            p += step
        else:
            p += v

    def get_config(self) -> Config:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with the bias correction folded into the step size:

        m = b1 m + (1 - b1) g          v = b2 v + (1 - b2) g^2
        p -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + epsilon)

    ``amsgrad`` uses the running maximum of ``v`` instead.
    """

    name = "adam"

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = finite(beta_1, "Adam: beta_1")
        self.beta_2 = finite(beta_2, "Adam: beta_2")
        self.epsilon = finite(epsilon, "Adam: epsilon")
        self.amsgrad = bool(amsgrad)
        self.slots = ("m", "v", "v_max") if self.amsgrad else ("m", "v")

    def update(
        self,
        p: np.ndarray,
        g: np.ndarray,
        state: dict[str, np.ndarray],
        tmp: np.ndarray,
        lr: float,
        t: int,
    ) -> None:
        m, v = state["m"], state["v"]
        alpha = lr * math.sqrt(1.0 - self.beta_2**t) / (1.0 - self.beta_1**t)
        np.subtract(g, m, out=tmp)
        tmp *= 1.0 - self.beta_1
        m += tmp
        np.multiply(g, g, out=tmp)
        tmp -= v
        tmp *= 1.0 - self.beta_2
        v += tmp
        if self.amsgrad:
            np.maximum(state["v_max"], v, out=state["v_max"])
            v = state["v_max"]
        np.sqrt(v, out=tmp)
        tmp += self.epsilon
        np.divide(m, tmp, out=tmp)
        tmp *= alpha
        p -= tmp

    def get_config(self) -> Config:
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "amsgrad": self.amsgrad,
        }


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019):
    ``p -= lr * weight_decay * p``, then the Adam step. Keras' default decay: 0.004."""

    name = "adamw"

    def __init__(
        self, learning_rate: LearningRate = 0.001, weight_decay: float = 0.004, **kwargs: Any
    ) -> None:
        super().__init__(learning_rate, weight_decay=weight_decay, **kwargs)


class RMSprop(Optimizer):
    """RMSprop (Hinton, 2012), Keras' form:

    v = rho v + (1 - rho) g^2
    step = lr g / sqrt(v + epsilon)     (centered: v - mean_g^2 under the root)
    p -= step,  or with momentum:  mom = momentum * mom + step;  p -= mom
    """

    name = "rmsprop"

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.rho = finite(rho, "RMSprop: rho")
        self.momentum = finite(momentum, "RMSprop: momentum")
        self.epsilon = finite(epsilon, "RMSprop: epsilon")
        self.centered = bool(centered)
        self.slots = (
            ("v",)
            + (("mean_g",) if self.centered else ())
            + (("momentum",) if self.momentum else ())
        )

    def update(
        self,
        p: np.ndarray,
        g: np.ndarray,
        state: dict[str, np.ndarray],
        tmp: np.ndarray,
        lr: float,
        t: int,
    ) -> None:
        v = state["v"]
        v *= self.rho
        v += (1.0 - self.rho) * g * g
        if self.centered:
            mean_g = state["mean_g"]
            mean_g *= self.rho
            mean_g += (1.0 - self.rho) * g
            np.subtract(v, mean_g * mean_g, out=tmp)
        else:
            np.copyto(tmp, v)
        tmp += self.epsilon
        np.sqrt(tmp, out=tmp)
        np.divide(g, tmp, out=tmp)
        tmp *= lr
        if self.momentum:
            mom = state["momentum"]
            mom *= self.momentum
            mom += tmp
            p -= mom
        else:
            p -= tmp

    def get_config(self) -> Config:
        return {
            **super().get_config(),
            "rho": self.rho,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "centered": self.centered,
        }


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011): ``a += g^2``; ``p -= lr g / sqrt(a + epsilon)``,
    with ``a`` starting at ``initial_accumulator_value`` (Keras: 0.1)."""

    name = "adagrad"
    slots = ("accumulator",)

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        initial_accumulator_value: float = 0.1,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value = finite(
            initial_accumulator_value, "Adagrad: initial_accumulator_value"
        )
        self.epsilon = finite(epsilon, "Adagrad: epsilon")

    def _init_state(self) -> None:
        self.state["accumulator"].fill(self.initial_accumulator_value)

    def update(
        self,
        p: np.ndarray,
        g: np.ndarray,
        state: dict[str, np.ndarray],
        tmp: np.ndarray,
        lr: float,
        t: int,
    ) -> None:
        a = state["accumulator"]
        np.multiply(g, g, out=tmp)
        a += tmp
        np.add(a, self.epsilon, out=tmp)
        np.sqrt(tmp, out=tmp)
        np.divide(g, tmp, out=tmp)
        tmp *= lr
        p -= tmp

    def get_config(self) -> Config:
        return {
            **super().get_config(),
            "initial_accumulator_value": self.initial_accumulator_value,
            "epsilon": self.epsilon,
        }


REGISTRY: Registry[Optimizer] = Registry("optimizer", Optimizer)
for _cls in (SGD, Adam, AdamW, RMSprop, Adagrad):
    REGISTRY.register(_cls)


def get(identifier: str | Optimizer | Config) -> Optimizer:
    """An `Optimizer` from a name (``"adam"``), a config dict, or an instance."""
    return REGISTRY.get(identifier)


def serialize(optimizer: Optimizer) -> Config:
    """``{"class_name": ..., "config": ...}``, the one config shape (`get` and `deserialize`
    also read the older ``{"name": ..., "config": ...}`` of files written before it)."""
    return REGISTRY.serialize(optimizer)


def deserialize(config: str | Config) -> Optimizer:
    return REGISTRY.deserialize(config)
