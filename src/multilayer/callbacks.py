"""Keras-compatible namespace for callbacks."""

from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from multilayer.models.mlflow_logging import MlflowCallback  # noqa: F401
    from multilayer.models.tensorboard import TensorBoard  # noqa: F401

#: The experiment-log callbacks, imported on first use: they are seldom needed, and
#: ``import multilayer`` stays as quick as it was without them.
_LAZY = {
    "MlflowCallback": "multilayer.models.mlflow_logging",
    "TensorBoard": "multilayer.models.tensorboard",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
