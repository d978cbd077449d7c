"""Keras-compatible namespace for callbacks."""

from multilayer.models.backup import BackupAndRestore  # noqa: F401
from multilayer.models.callbacks import (  # noqa: F401
    Callback,
    CallbackList,
    CSVLogger,
    EarlyStopping,
    History,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from multilayer.models.mlflow_logging import MlflowCallback  # noqa: F401
from multilayer.models.tensorboard import TensorBoard  # noqa: F401
