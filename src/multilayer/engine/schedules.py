"""Learning-rate schedules: the learning rate as a function of the optimizer step.

Each schedule is called with the number of steps already taken (0 for the first update), as
in Keras. `OneCycle` is not in Keras; it follows Smith & Topin (2018) with cosine annealing,
like PyTorch's ``OneCycleLR``.
"""

from __future__ import annotations

import math

from multilayer.engine.checks import finite, finite_or_none
from multilayer.engine.registry import Config, Registry, positive_int


class LearningRateSchedule:
    name = "schedule"

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def get_config(self) -> Config:
        return dict(vars(self))


class _StepDecay(LearningRateSchedule):
    """Shared by the two decays of ``progress = step / decay_steps`` (floored if
    ``staircase``): their arguments and that progress."""

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        decay_rate: float,
        staircase: bool = False,
    ) -> None:
        self.initial_learning_rate = finite(initial_learning_rate, "initial_learning_rate")
        self.decay_steps = positive_int(decay_steps, f"{type(self).__name__}: decay_steps")
        self.decay_rate = finite(decay_rate, "decay_rate")
        self.staircase = bool(staircase)

    def _progress(self, step: int) -> float:
        progress = step / self.decay_steps
        return math.floor(progress) if self.staircase else progress


class ExponentialDecay(_StepDecay):
    """``initial * decay_rate ** (step / decay_steps)`` (integer division if ``staircase``)."""

    name = "ExponentialDecay"

    def __call__(self, step: int) -> float:
        return self.initial_learning_rate * self.decay_rate ** self._progress(step)


class InverseTimeDecay(_StepDecay):
    """``initial / (1 + decay_rate * step / decay_steps)`` (``floor(step / decay_steps)`` if
    ``staircase``); with ``decay_steps=1`` it is Keras 2's ``decay=`` optimizer argument."""

    name = "InverseTimeDecay"

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        decay_rate: float,
        staircase: bool = False,
    ) -> None:
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase)
        if self.decay_rate < 0:
            raise ValueError(f"InverseTimeDecay: decay_rate must be >= 0, got {decay_rate!r}")

    def __call__(self, step: int) -> float:
        return self.initial_learning_rate / (1.0 + self.decay_rate * self._progress(step))


class PolynomialDecay(LearningRateSchedule):
    """``(initial - end) * (1 - step / decay_steps) ** power + end``, the step held at
    ``decay_steps`` afterwards; with ``cycle``, ``decay_steps`` is instead multiplied by
    ``ceil(step / decay_steps)`` (1 at step 0), restarting the decay (Keras 3's form)."""

    name = "PolynomialDecay"

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        end_learning_rate: float = 0.0001,
        power: float = 1.0,
        cycle: bool = False,
    ) -> None:
        self.initial_learning_rate = finite(initial_learning_rate, "initial_learning_rate")
        self.decay_steps = positive_int(decay_steps, "PolynomialDecay: decay_steps")
        self.end_learning_rate = finite(end_learning_rate, "end_learning_rate")
        self.power = finite(power, "power")
        self.cycle = bool(cycle)

    def __call__(self, step: int) -> float:
        decay_steps = float(self.decay_steps)
        if self.cycle:
            decay_steps *= max(math.ceil(step / self.decay_steps), 1)
        else:
            step = min(step, self.decay_steps)
        fraction = step / decay_steps
        initial, end = self.initial_learning_rate, self.end_learning_rate
        return (initial - end) * (1.0 - fraction) ** self.power + end


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[i]`` while ``boundaries[i-1] < step <= boundaries[i]`` (Keras' convention)."""

    name = "PiecewiseConstantDecay"

    def __init__(self, boundaries: list[int], values: list[float]) -> None:
        if len(values) != len(boundaries) + 1:
            raise ValueError(
                f"PiecewiseConstantDecay: needs len(values) == len(boundaries) + 1, "
                f"got {len(values)} values and {len(boundaries)} boundaries"
            )
        if list(boundaries) != sorted(boundaries):
            raise ValueError(
                f"PiecewiseConstantDecay: boundaries must be increasing, got {boundaries}"
            )
        self.boundaries = [int(b) for b in boundaries]
        self.values = [finite(v, "PiecewiseConstantDecay: values") for v in values]

    def __call__(self, step: int) -> float:
        for boundary, value in zip(self.boundaries, self.values, strict=False):
            if step <= boundary:
                return value
        return self.values[-1]


class CosineDecay(LearningRateSchedule):
    """Optional linear warm-up to ``warmup_target``, then cosine decay to ``alpha * peak``.

    Keras 3's signature: without ``warmup_target`` the peak is ``initial_learning_rate`` and
    there is no warm-up.
    """

    name = "CosineDecay"

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        alpha: float = 0.0,
        warmup_target: float | None = None,
        warmup_steps: int = 0,
    ) -> None:
        self.initial_learning_rate = finite(initial_learning_rate, "initial_learning_rate")
        self.decay_steps = positive_int(decay_steps, "CosineDecay: decay_steps")
        self.alpha = finite(alpha, "alpha")
        self.warmup_target = finite_or_none(warmup_target, "warmup_target")
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step: int) -> float:
        if self.warmup_target is None:
            peak = self.initial_learning_rate
        else:
            peak = self.warmup_target
            if step < self.warmup_steps:
                fraction = step / self.warmup_steps
                return self.initial_learning_rate + fraction * (peak - self.initial_learning_rate)
        progress = min(max(step - self.warmup_steps, 0), self.decay_steps) / self.decay_steps
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return peak * ((1.0 - self.alpha) * cosine + self.alpha)


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts, SGDR (Loshchilov & Hutter, 2017), in Keras 3's form:
    the first period lasts ``first_decay_steps``, each next one ``t_mul`` times longer and
    starting from ``m_mul`` times the previous peak. In period ``i`` (from 0), ``fraction``
    of the way through it, the rate is (as Keras computes it, ``alpha`` outside ``m_mul^i``)

        initial * ((1 - alpha) * 0.5 * m_mul^i * (1 + cos(pi * fraction)) + alpha)
    """

    name = "CosineDecayRestarts"

    def __init__(
        self,
        initial_learning_rate: float,
        first_decay_steps: int,
        t_mul: float = 2.0,
        m_mul: float = 1.0,
        alpha: float = 0.0,
    ) -> None:
        self.initial_learning_rate = finite(initial_learning_rate, "initial_learning_rate")
        self.first_decay_steps = positive_int(
            first_decay_steps, "CosineDecayRestarts: first_decay_steps"
        )
        self.t_mul = finite(t_mul, "t_mul")
        if self.t_mul <= 0:
            raise ValueError(f"CosineDecayRestarts: t_mul must be > 0, got {t_mul!r}")
        self.m_mul = finite(m_mul, "m_mul")
        self.alpha = finite(alpha, "alpha")

    def __call__(self, step: int) -> float:
        fraction = step / self.first_decay_steps
        if self.t_mul == 1.0:
            restart = math.floor(fraction)
            fraction -= restart
        else:
            # periods 1, t, t^2, ...: restart i begins at (1 - t^i) / (1 - t) periods
            t = self.t_mul
            restart = math.floor(math.log(1.0 - fraction * (1.0 - t)) / math.log(t))
            begun = (1.0 - t**restart) / (1.0 - t)
            fraction = (fraction - begun) / t**restart
        cosine = 0.5 * self.m_mul**restart * (1.0 + math.cos(math.pi * fraction))
        return self.initial_learning_rate * ((1.0 - self.alpha) * cosine + self.alpha)


class OneCycle(LearningRateSchedule):
    """Warm up from ``max_learning_rate / div_factor`` to the maximum over ``pct_start`` of
    ``total_steps``, then anneal (cosine) to ``initial / final_div_factor``."""

    name = "OneCycle"

    def __init__(
        self,
        max_learning_rate: float,
        total_steps: int,
        pct_start: float = 0.3,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
    ) -> None:
        if total_steps <= 1:
            raise ValueError(f"OneCycle: total_steps must be > 1, got {total_steps!r}")
        if not 0.0 < pct_start < 1.0:
            raise ValueError(f"OneCycle: pct_start must be in (0, 1), got {pct_start!r}")
        self.max_learning_rate = finite(max_learning_rate, "max_learning_rate")
        self.total_steps = int(total_steps)
        self.pct_start = finite(pct_start, "pct_start")
        self.div_factor = finite(div_factor, "div_factor")
        self.final_div_factor = finite(final_div_factor, "final_div_factor")

    def __call__(self, step: int) -> float:
        initial = self.max_learning_rate / self.div_factor
        final = initial / self.final_div_factor
        warmup_end = self.pct_start * self.total_steps - 1
        if step <= warmup_end:
            start, end, fraction = initial, self.max_learning_rate, step / max(warmup_end, 1e-12)
        else:
            span = self.total_steps - 1 - warmup_end
            start, end = self.max_learning_rate, final
            fraction = min((step - warmup_end) / span, 1.0)
        return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * fraction))


REGISTRY: Registry[LearningRateSchedule] = Registry(
    "learning-rate schedule", LearningRateSchedule, names_are_class_names=True, legacy=False
)
for _cls in (
    ExponentialDecay,
    InverseTimeDecay,
    PolynomialDecay,
    PiecewiseConstantDecay,
    CosineDecay,
    CosineDecayRestarts,
    OneCycle,
):
    REGISTRY.register(_cls, names=())


def serialize(schedule: LearningRateSchedule) -> Config:
    """``{"class_name": ..., "config": ...}``."""
    return REGISTRY.serialize(schedule)


def deserialize(config: Config) -> LearningRateSchedule:
    return REGISTRY.deserialize(config)
