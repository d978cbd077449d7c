"""Keras-compatible namespace: ``multilayer.optimizers.Adam``, ``optimizers.schedules``."""

from multilayer.engine.optimizers import (  # noqa: F401
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Lamb,
    Lion,
    Nadam,
    Optimizer,
    RMSprop,
    get,
)
from multilayer.optimizers import (
    legacy,  # noqa: F401 - Keras 2's spelling
    schedules,  # noqa: F401
)
