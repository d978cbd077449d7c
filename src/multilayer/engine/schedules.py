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


class ExponentialDecay(LearningRateSchedule):
    """``initial * decay_rate ** (step / decay_steps)`` (integer division if ``staircase``)."""

    name = "ExponentialDecay"

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        decay_rate: float,
        staircase: bool = False,
    ) -> None:
        self.initial_learning_rate = finite(initial_learning_rate, "initial_learning_rate")
        self.decay_steps = positive_int(decay_steps, "ExponentialDecay: decay_steps")
        self.decay_rate = finite(decay_rate, "decay_rate")
        self.staircase = bool(staircase)

    def __call__(self, step: int) -> float:
        exponent = step / self.decay_steps
        if self.staircase:
            exponent = math.floor(exponent)
        return self.initial_learning_rate * self.decay_rate**exponent


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
for _cls in (ExponentialDecay, PiecewiseConstantDecay, CosineDecay, OneCycle):
    REGISTRY.register(_cls, names=())


def serialize(schedule: LearningRateSchedule) -> Config:
    """``{"class_name": ..., "config": ...}``."""
    return REGISTRY.serialize(schedule)


def deserialize(config: Config) -> LearningRateSchedule:
    return REGISTRY.deserialize(config)
