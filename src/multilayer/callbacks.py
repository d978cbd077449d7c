"""Keras-compatible namespace for callbacks."""

from multilayer.models.backup import BackupAndRestore  # noqa: F401
from multilayer.models.callbacks import (  # noqa: F401
    Callback,
    CSVLogger,
    EarlyStopping,
    History,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
