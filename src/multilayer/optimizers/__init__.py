"""Keras-compatible namespace: ``multilayer.optimizers.Adam``, ``optimizers.schedules``."""

from multilayer.engine.optimizers import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop, get  # noqa: F401
from multilayer.optimizers import legacy, schedules  # noqa: F401 - legacy: Keras 2's spelling
