"""Learning-rate schedules: ``multilayer.optimizers.schedules.CosineDecay`` and friends."""

from multilayer.engine.schedules import (  # noqa: F401
    CosineDecay,
    ExponentialDecay,
    InverseTimeDecay,
    LearningRateSchedule,
    OneCycle,
    PiecewiseConstantDecay,
)
