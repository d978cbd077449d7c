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
from multilayer.engine.registry import Config, Registry, positive_int

#: a learning rate: a number, or a schedule called with the step count
LearningRate = float | schedules.LearningRateSchedule
#: a flat vector (parameters, gradient, a state slot, scratch)
Array = np.ndarray
#: the state vectors by slot name
Slots = dict[str, np.ndarray]


class Optimizer:
    """Base class: learning rate (a number or a schedule), gradient clipping, decoupled weight
    decay and an exponential moving average of the weights, as Keras 3's base optimizer.

    One step (`apply`), in Keras 3's order: clip the gradient; decay the weights
    (``p -= lr * weight_decay * p``); the optimizer's own update; then, with ``use_ema``,
    update the moving average (``ema = p`` at the first step, else
    ``ema = ema_momentum * ema + (1 - ema_momentum) * p``) and, every
    ``ema_overwrite_frequency`` steps, copy it into the weights. `finalize_variable_values`
    (called at the end of ``fit``) copies the average into the weights.

    Args:
        learning_rate: a float, or a `LearningRateSchedule` called with the step count.
        weight_decay: decoupled weight decay, ``p -= lr * weight_decay * p`` before the update.
        clipnorm: clip each parameter tensor's gradient to this L2 norm.
        clipvalue: clip each gradient element to ``[-clipvalue, clipvalue]``.
        global_clipnorm: clip the gradient of all parameters together to this L2 norm.
        use_ema: keep an exponential moving average of the weights.
        ema_momentum: the average's momentum, in [0, 1].
        ema_overwrite_frequency: copy the average into the weights every this many steps
            (None: only at the end of ``fit``).

    At most one of ``clipnorm``, ``clipvalue`` and ``global_clipnorm`` may be given.
    """

    name = "optimizer"
    #: names of the per-parameter state vectors, allocated by `build`
    slots: tuple[str, ...] = ()
    #: the subclass's own constructor arguments, read back as attributes by `get_config`
    hyperparameters: tuple[str, ...] = ()

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
    ) -> None:
        clipping = {
            "clipnorm": clipnorm,
            "clipvalue": clipvalue,
            "global_clipnorm": global_clipnorm,
        }
        given = [argument for argument, value in clipping.items() if value is not None]
        if len(given) > 1:
            raise ValueError(
                f"give at most one of clipnorm, clipvalue and global_clipnorm, got {given}"
            )
        for argument, value in clipping.items():
            if value is not None and not finite(value, argument) > 0:
                raise ValueError(f"{argument} must be > 0, got {value!r}")
        self._learning_rate = self._check_learning_rate(learning_rate)
        self.clipnorm = finite_or_none(clipnorm, "clipnorm")
        self.clipvalue = finite_or_none(clipvalue, "clipvalue")
        self.global_clipnorm = finite_or_none(global_clipnorm, "global_clipnorm")
        self.weight_decay = finite_or_none(weight_decay, "weight_decay")
        if self.weight_decay is not None and self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        if not isinstance(use_ema, (bool, np.bool_)):
            raise ValueError(f"use_ema must be True or False, got {use_ema!r}")
        self.use_ema = bool(use_ema)
        self.ema_momentum = finite(ema_momentum, "ema_momentum")
        if not 0.0 <= self.ema_momentum <= 1.0:
            raise ValueError(f"ema_momentum must be in [0, 1], got {ema_momentum!r}")
        self.ema_overwrite_frequency = (
            None
            if ema_overwrite_frequency is None
            else positive_int(ema_overwrite_frequency, "ema_overwrite_frequency")
        )
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
        """Allocate state for ``size`` parameters; ``segments`` delimit tensors (for clipnorm
        and Lamb's per-tensor trust ratio). With ``use_ema`` the moving average is one more
        state vector, ``"ema"``, saved and restored with the others."""
        self.state = {slot: np.zeros(size, dtype=dtype) for slot in self.slots}
        if self.use_ema:
            self.state["ema"] = np.zeros(size, dtype=dtype)
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
        if self.use_ema:
            self._update_ema(params)
        self.iterations += 1

    def _clip(self, grads: np.ndarray) -> None:
        if self.global_clipnorm is not None:
            _clip_to_norm(grads, self.global_clipnorm)
        elif self.clipnorm is not None:
            for segment in self._segments:
                _clip_to_norm(grads[segment], self.clipnorm)
        elif self.clipvalue is not None:
            np.clip(grads, -self.clipvalue, self.clipvalue, out=grads)

    def _update_ema(self, params: np.ndarray) -> None:
        # Keras 3: the momentum is 0 at the first step (the average starts at the weights)
        ema = self.state["ema"]
        if self.iterations == 0:
            np.copyto(ema, params)
        else:
            ema *= self.ema_momentum
            tmp = np.multiply(params, 1.0 - self.ema_momentum, out=self._scratch)
            ema += tmp
        frequency = self.ema_overwrite_frequency
        if frequency is not None and (self.iterations + 1) % frequency == 0:
            np.copyto(params, ema)

    def finalize_variable_values(self, params: np.ndarray) -> None:
        """At the end of training: with ``use_ema``, copy the moving average into ``params``
        (as Keras 3's ``fit`` does). Nothing before the first step."""
        if self.use_ema and self.iterations > 0 and "ema" in self.state:
            np.copyto(params, self.state["ema"])

    def update(self, p: Array, g: Array, state: Slots, tmp: Array, lr: float, t: int) -> None:
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
        """Constructor arguments: the base ones only when they differ from the defaults, then
        the subclass's `hyperparameters`."""
        lr = self._learning_rate
        config: Config = {
            "learning_rate": schedules.serialize(lr)
            if isinstance(lr, schedules.LearningRateSchedule)
            else lr
        }
        for key in ("clipnorm", "clipvalue", "global_clipnorm", "weight_decay"):
            if getattr(self, key) is not None:
                config[key] = getattr(self, key)
        if self.use_ema:
            config["use_ema"] = True
            config["ema_momentum"] = self.ema_momentum
            config["ema_overwrite_frequency"] = self.ema_overwrite_frequency
        for key in self.hyperparameters:
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


def _move_towards(x: Array, target: Array, tmp: Array, beta: float) -> None:
    """``x = beta x + (1 - beta) target`` in place, as ``x += (1 - beta) (target - x)``
    (``target`` may be ``tmp``)."""
    np.subtract(target, x, out=tmp)
    tmp *= 1.0 - beta
    x += tmp


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum.

    Keras' form: ``v = momentum * v - lr * g``; then ``p += v``, or with Nesterov
    ``p += momentum * v - lr * g``. Without momentum: ``p -= lr * g``.
    """

    name = "sgd"
    hyperparameters = ("momentum", "nesterov")

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

    def update(self, p: Array, g: Array, state: Slots, tmp: Array, lr: float, t: int) -> None:
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


class _Moments(Optimizer):
    """Shared by the Adam family: ``beta_1``, ``beta_2`` and ``epsilon`` (Keras' defaults) and
    the moment updates ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``."""

    hyperparameters: tuple[str, ...] = ("beta_1", "beta_2", "epsilon")

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        label = type(self).__name__
        self.beta_1 = finite(beta_1, f"{label}: beta_1")
        self.beta_2 = finite(beta_2, f"{label}: beta_2")
        self.epsilon = finite(epsilon, f"{label}: epsilon")

    def _update_moments(self, m: Array, v: Array, g: Array, tmp: Array) -> None:
        _move_towards(m, g, tmp, self.beta_1)
        np.multiply(g, g, out=tmp)
        _move_towards(v, tmp, tmp, self.beta_2)

    def _corrected_root(self, v: Array, tmp: Array, t: int) -> Array:
        """``tmp = sqrt(v / (1 - b2^t)) + epsilon``, the bias-corrected denominator."""
        np.multiply(v, 1.0 / (1.0 - self.beta_2**t), out=tmp)
        np.sqrt(tmp, out=tmp)
        tmp += self.epsilon
        return tmp


class Adam(_Moments):
    """Adam (Kingma & Ba, 2015) with the bias correction folded into the step size:

        m = b1 m + (1 - b1) g          v = b2 v + (1 - b2) g^2
        p -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + epsilon)

    ``amsgrad`` uses the running maximum of ``v`` instead.
    """

    name = "adam"
    hyperparameters = (*_Moments.hyperparameters, "amsgrad")

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, beta_1, beta_2, epsilon, **kwargs)
        self.amsgrad = bool(amsgrad)
        self.slots = ("m", "v", "v_max") if self.amsgrad else ("m", "v")

    def update(self, p: Array, g: Array, state: Slots, tmp: Array, lr: float, t: int) -> None:
        m, v = state["m"], state["v"]
        alpha = lr * math.sqrt(1.0 - self.beta_2**t) / (1.0 - self.beta_1**t)
        self._update_moments(m, v, g, tmp)
        if self.amsgrad:
            np.maximum(state["v_max"], v, out=state["v_max"])
            v = state["v_max"]
        np.sqrt(v, out=tmp)
        tmp += self.epsilon
        np.divide(m, tmp, out=tmp)
        tmp *= alpha
        p -= tmp


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
    hyperparameters = ("rho", "momentum", "epsilon", "centered")

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

    def update(self, p: Array, g: Array, state: Slots, tmp: Array, lr: float, t: int) -> None:
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


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011): ``a += g^2``; ``p -= lr g / sqrt(a + epsilon)``,
    with ``a`` starting at ``initial_accumulator_value`` (Keras: 0.1)."""

    name = "adagrad"
    slots = ("accumulator",)
    hyperparameters = ("initial_accumulator_value", "epsilon")

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

    def update(self, p: Array, g: Array, state: Slots, tmp: Array, lr: float, t: int) -> None:
        a = state["accumulator"]
        np.multiply(g, g, out=tmp)
        a += tmp
        np.add(a, self.epsilon, out=tmp)
        np.sqrt(tmp, out=tmp)
        np.divide(g, tmp, out=tmp)
        tmp *= lr
        p -= tmp


class Nadam(_Moments):
    """Nadam: Adam with Nesterov momentum (Dozat, 2016), with the momentum schedule
    ``mu_t = beta_1 (1 - 0.5 * 0.96^t)`` as Keras 3 implements it:

        m = b1 m + (1 - b1) g          v = b2 v + (1 - b2) g^2
        m_hat = mu_{t+1} m / (1 - prod_{i<=t+1} mu_i) + (1 - mu_t) g / (1 - prod_{i<=t} mu_i)
        v_hat = v / (1 - b2^t)
        p -= lr * m_hat / (sqrt(v_hat) + epsilon)
    """

    name = "nadam"
    slots = ("m", "v")
    _products: tuple[int, float] = (0, 1.0)  # (t, prod_{i<=t} mu_i), a cache per instance

    def _mu(self, t: int) -> float:
        return self.beta_1 * (1.0 - 0.5 * 0.96**t)

    def _mu_product(self, t: int) -> float:
        """``prod_{i<=t} mu_i``, a function of the step alone (so nothing more to save): kept
        from the previous step, recomputed in the same order after a restore."""
        known, product = self._products
        if known > t:
            known, product = 0, 1.0
        for i in range(known + 1, t + 1):
            product = product * self._mu(i)
        self._products = (t, product)
        return product

    def update(self, p: Array, g: Array, state: Slots, tmp: Array, lr: float, t: int) -> None:
        m, v = state["m"], state["v"]
        mu_t, mu_next = self._mu(t), self._mu(t + 1)
        product = self._mu_product(t)
        product_next = product * mu_next
        self._update_moments(m, v, g, tmp)
        denominator = self._corrected_root(v, tmp, t)
        m_hat = m * (mu_next / (1.0 - product_next))
        m_hat += g * ((1.0 - mu_t) / (1.0 - product))
        m_hat /= denominator
        m_hat *= lr
        p -= m_hat


class Adamax(_Moments):
    """Adamax, Adam with the infinity norm (Kingma & Ba, 2015, section 7.1):

    m = b1 m + (1 - b1) g          u = max(b2 u, |g|)
    p -= lr m / ((1 - b1^t) (u + epsilon))
    """

    name = "adamax"
    slots = ("m", "u")

    def update(self, p: Array, g: Array, state: Slots, tmp: Array, lr: float, t: int) -> None:
        m, u = state["m"], state["u"]
        _move_towards(m, g, tmp, self.beta_1)
        u *= self.beta_2
        np.maximum(u, np.abs(g, out=tmp), out=u)
        np.add(u, self.epsilon, out=tmp)
        np.divide(m, tmp, out=tmp)
        tmp *= lr / (1.0 - self.beta_1**t)
        p -= tmp


class Adadelta(Optimizer):
    """Adadelta (Zeiler, 2012), scaled by the learning rate as in Keras (Keras' default
    learning rate is 0.001; the paper's method is ``learning_rate=1.0``):

        a = rho a + (1 - rho) g^2
        delta = -sqrt(d + epsilon) / sqrt(a + epsilon) * g
        d = rho d + (1 - rho) delta^2
        p += lr * delta
    """

    name = "adadelta"
    slots = ("accumulated_grad", "accumulated_delta")
    hyperparameters = ("rho", "epsilon")

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        rho: float = 0.95,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.rho = finite(rho, "Adadelta: rho")
        self.epsilon = finite(epsilon, "Adadelta: epsilon")

    def update(self, p: Array, g: Array, state: Slots, tmp: Array, lr: float, t: int) -> None:
        a, d = state["accumulated_grad"], state["accumulated_delta"]
        rho = self.rho
        a *= rho
        a += (1.0 - rho) * (g * g)
        # tmp = -delta = sqrt(d + eps) / sqrt(a + eps) * g
        np.add(d, self.epsilon, out=tmp)
        np.sqrt(tmp, out=tmp)
        tmp *= g
        tmp /= np.sqrt(a + self.epsilon)
        d *= rho
        d += (1.0 - rho) * (tmp * tmp)
        tmp *= lr
        p -= tmp


class Lion(Optimizer):
    """Lion, evolved sign momentum (Chen et al., 2023):

    p -= lr * sign(b1 m + (1 - b1) g)
    m = b2 m + (1 - b2) g
    """

    name = "lion"
    slots = ("m",)
    hyperparameters = ("beta_1", "beta_2")

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.99,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = finite(beta_1, "Lion: beta_1")
        self.beta_2 = finite(beta_2, "Lion: beta_2")
        if not 0.0 < self.beta_1 <= 1.0:
            raise ValueError(
                f"Lion: beta_1 must be in (0, 1] (0 would make it SignSGD), got {beta_1!r}"
            )

    def update(self, p: Array, g: Array, state: Slots, tmp: Array, lr: float, t: int) -> None:
        m = state["m"]
        np.multiply(m, self.beta_1, out=tmp)
        tmp += g * (1.0 - self.beta_1)
        np.sign(tmp, out=tmp)
        tmp *= lr
        p -= tmp
        m *= self.beta_2
        m += g * (1.0 - self.beta_2)


class Lamb(_Moments):
    """LAMB, layer-wise adaptive moments (You et al., 2020): the Adam direction
    ``r = m_hat / (sqrt(v_hat) + epsilon)``, scaled per parameter tensor by the trust ratio
    ``||p|| / ||r||`` (1 when either norm is 0):

        m = b1 m + (1 - b1) g          v = b2 v + (1 - b2) g^2
        m_hat = m / (1 - b1^t)         v_hat = v / (1 - b2^t)
        p -= lr * ratio * r            (per tensor)

    As in Keras 3, ``weight_decay`` is the base optimizer's decoupled decay, applied before
    the step (not inside the trust ratio as in the paper).
    """

    name = "lamb"
    slots = ("m", "v")

    def update(self, p: Array, g: Array, state: Slots, tmp: Array, lr: float, t: int) -> None:
        m, v = state["m"], state["v"]
        self._update_moments(m, v, g, tmp)
        np.divide(m, self._corrected_root(v, tmp, t), out=tmp)
        tmp *= 1.0 / (1.0 - self.beta_1**t)
        for segment in self._segments:
            r, w = tmp[segment], p[segment]
            w_norm = math.sqrt(float(np.dot(w, w)))
            r_norm = math.sqrt(float(np.dot(r, r)))
            ratio = w_norm / r_norm if w_norm > 0 and r_norm > 0 else 1.0
            r *= lr * ratio
            w -= r


REGISTRY: Registry[Optimizer] = Registry("optimizer", Optimizer)
for _cls in (SGD, Adam, AdamW, RMSprop, Adagrad, Nadam, Adamax, Adadelta, Lion, Lamb):
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
