"""Callbacks: code that runs at the start and end of training, epochs and batches (Keras' API).

``logs`` are dicts of floats such as ``{"loss": 0.21, "accuracy": 0.94, "val_loss": ...}``.
"""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from multilayer.engine import metrics as metric_module

if TYPE_CHECKING:
    from multilayer.models.functional import Model

#: The hooks a `CallbackList` dispatches, in Keras 3's names.
HOOKS = (
    "on_train_begin",
    "on_train_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_test_begin",
    "on_test_end",
    "on_predict_begin",
    "on_predict_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_predict_batch_begin",
    "on_predict_batch_end",
)


class Callback:
    """Base class: override the hooks you need. ``self.model`` is set before training.

    Every hook receives a ``logs`` dict (Keras 3's contents): empty at the ``*_begin`` hooks;
    the running means of the epoch at ``on_train_batch_end`` / ``on_test_batch_end``; the
    epoch's results (with ``val_*``) at ``on_epoch_end``; the last epoch's at
    ``on_train_end``; the evaluation's at ``on_test_end``; ``{"outputs": batch_outputs}`` at
    ``on_predict_batch_end``. ``on_batch_begin``/``on_batch_end`` are the Keras 2 names of
    the training-batch hooks: the default ``on_train_batch_*`` calls them.
    """

    def __init__(self) -> None:
        #: the model being trained (a `Model` or `Sequential`; None before `set_model`)
        self.model: Model | None = None
        self.params: dict[str, Any] = {}

    def set_model(self, model: Model) -> None:
        self.model = model

    def trained_model(self) -> Model:
        """``self.model``, which `fit` sets before the first hook.

        Raises:
            RuntimeError: the callback is not attached to a model.
        """
        if self.model is None:
            raise RuntimeError(f"{type(self).__name__} is not attached to a model (fit sets it)")
        return self.model

    def set_params(self, params: dict[str, Any]) -> None:
        """The fit arguments callbacks may need: ``epochs``, ``steps``, ``verbose``."""
        self.params = dict(params)

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_test_begin(self, logs=None): ...
    def on_test_end(self, logs=None): ...
    def on_predict_begin(self, logs=None): ...
    def on_predict_end(self, logs=None): ...
    def on_batch_begin(self, batch, logs=None): ...
    def on_batch_end(self, batch, logs=None): ...

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None): ...
    def on_test_batch_end(self, batch, logs=None): ...
    def on_predict_batch_begin(self, batch, logs=None): ...
    def on_predict_batch_end(self, batch, logs=None): ...


def _overrides(callback: Callback, name: str) -> bool:
    """Whether ``callback`` does something in hook ``name`` (a method overriding the base
    class, or a function set on the instance as `LambdaCallback` does)."""
    method = getattr(callback, name)
    return getattr(method, "__func__", None) is not getattr(Callback, name)


class CallbackList(Callback):
    """Calls every callback in order, each hook with a ``logs`` dict (``{}`` when none).

    The batch hooks of a kind (train, test, predict) are only called when some callback
    overrides one of them (``wants_train_batches`` etc.), so a loop without such callbacks
    spends nothing per batch on them (Keras 2 did the same; Keras 3 dispatches them to a
    thread instead).
    """

    def __init__(self, callbacks, model):
        super().__init__()
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            callback.set_model(model)
        # per hook, the callbacks that do something there (the default training-batch hooks
        # forward to the on_batch_* aliases, so overriding an alias counts)
        aliases = {"on_train_batch_begin": "on_batch_begin", "on_train_batch_end": "on_batch_end"}
        self._targets = {
            name: [
                c
                for c in self.callbacks
                if _overrides(c, name) or (name in aliases and _overrides(c, aliases[name]))
            ]
            for name in (*HOOKS, "on_batch_begin", "on_batch_end")
        }
        targets = self._targets
        self.wants_train_batches = bool(
            targets["on_train_batch_begin"] or targets["on_train_batch_end"]
        )
        self.wants_test_batches = bool(
            targets["on_test_batch_begin"] or targets["on_test_batch_end"]
        )
        self.wants_predict_batches = bool(
            targets["on_predict_batch_begin"] or targets["on_predict_batch_end"]
        )

    def set_params(self, params: dict) -> None:
        for callback in self.callbacks:
            callback.set_params(params)

    def _call(self, name: str, logs) -> None:
        logs = {} if logs is None else logs
        for callback in self._targets[name]:
            getattr(callback, name)(logs)

    def _call_at(self, name: str, index: int, logs) -> None:
        logs = {} if logs is None else logs
        if name.startswith("on_epoch"):
            for callback in self._targets[name]:
                getattr(callback, name)(index, logs)
        else:  # Keras passes the logs of batch hooks by keyword
            for callback in self._targets[name]:
                getattr(callback, name)(index, logs=logs)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs)

    def on_test_begin(self, logs=None):
        self._call("on_test_begin", logs)

    def on_test_end(self, logs=None):
        self._call("on_test_end", logs)

    def on_predict_begin(self, logs=None):
        self._call("on_predict_begin", logs)

    def on_predict_end(self, logs=None):
        self._call("on_predict_end", logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call_at("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call_at("on_epoch_end", epoch, logs)

    def on_batch_begin(self, batch, logs=None):
        self._call_at("on_batch_begin", batch, logs)

    def on_batch_end(self, batch, logs=None):
        self._call_at("on_batch_end", batch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._call_at("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call_at("on_train_batch_end", batch, logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._call_at("on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        self._call_at("on_test_batch_end", batch, logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._call_at("on_predict_batch_begin", batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._call_at("on_predict_batch_end", batch, logs)


class LambdaCallback(Callback):
    """A callback made of functions (Keras' arguments): ``on_epoch_begin(epoch, logs)``,
    ``on_epoch_end(epoch, logs)``, ``on_train_begin(logs)``, ``on_train_end(logs)``,
    ``on_train_batch_begin(batch, logs)``, ``on_train_batch_end(batch, logs)`` (Keras 2's
    ``on_batch_begin``/``on_batch_end`` too), and any other hook passed by name.

    Raises:
        TypeError: an argument that is not a hook name, or a hook that is not callable.
    """

    def __init__(
        self,
        on_epoch_begin=None,
        on_epoch_end=None,
        on_train_begin=None,
        on_train_end=None,
        on_train_batch_begin=None,
        on_train_batch_end=None,
        **kwargs,
    ):
        super().__init__()
        hooks = {
            "on_epoch_begin": on_epoch_begin,
            "on_epoch_end": on_epoch_end,
            "on_train_begin": on_train_begin,
            "on_train_end": on_train_end,
            "on_train_batch_begin": on_train_batch_begin,
            "on_train_batch_end": on_train_batch_end,
        }
        names = set(HOOKS) | {"on_batch_begin", "on_batch_end"}
        for name, function in kwargs.items():
            if name not in names:
                raise TypeError(f"LambdaCallback: unknown hook {name!r}")
            hooks[name] = function
        for name, function in hooks.items():
            if function is None:
                continue
            if not callable(function):
                raise TypeError(f"LambdaCallback: {name} must be callable, got {function!r}")
            setattr(self, name, function)


class History(Callback):
    """Records the logs of every epoch: ``history.history["val_accuracy"][-1]``."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        self.epoch = list(self.epoch)

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            # a metric per class or per threshold (F1Score(average=None), Precision with
            # several thresholds) is kept as a list, the rest as floats
            entry = float(value) if np.ndim(value) == 0 else np.asarray(value).tolist()
            self.history.setdefault(key, []).append(entry)


def _monitor_mode(monitor: str, mode: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    if "acc" in monitor or monitor.endswith("auc"):
        return "max"
    return "max" if metric_module.direction(monitor) == "up" else "min"


class _Monitor(Callback):
    """Shared logic: watch ``monitor`` and tell whether it improved by more than min_delta."""

    def __init__(self, monitor: str, mode: str, min_delta: float):
        super().__init__()
        self.monitor = monitor
        self.mode = _monitor_mode(monitor, mode)
        self.min_delta = abs(float(min_delta))
        self.best = math.inf if self.mode == "min" else -math.inf

    def _current(self, logs: dict | None) -> float:
        value = (logs or {}).get(self.monitor)
        if value is None:
            available = ", ".join(sorted(logs or {}))
            raise ValueError(
                f"{type(self).__name__}: metric {self.monitor!r} is not in the logs (available: {available})"
            )
        return float(value)

    def _improved(self, value: float) -> bool:
        return self._beats(value, self.best)

    def _beats(self, value: float, reference: float) -> bool:
        if self.mode == "min":
            return value < reference - self.min_delta
        return value > reference + self.min_delta


class EarlyStopping(_Monitor):
    """Stop training when ``monitor`` has not improved for ``patience`` epochs.

    ``restore_best_weights=True`` puts back the weights of the best epoch when stopping.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ):
        super().__init__(monitor, mode, min_delta)
        self.patience = int(patience)
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = int(start_from_epoch)

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best_epoch = 0
        self.best_weights = None
        self.best = None  # Keras: the first watched value is the best so far

    def on_epoch_end(self, epoch, logs=None):
        """Keras 3's rule: the first watched value is the best so far; an improvement resets
        the patience only if it also beats ``baseline``; stop once ``patience`` epochs have
        passed without improvement (never after the first epoch)."""
        value = (logs or {}).get(self.monitor)
        if value is None:
            warnings.warn(
                f"EarlyStopping: {self.monitor!r} is not in the logs "
                f"(available: {', '.join(sorted(logs or {}))})",
                stacklevel=2,
            )
            return
        if epoch < self.start_from_epoch:
            return
        value = float(value)
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.trained_model().get_weights()  # fallback: the first epoch
            self.best_epoch = epoch
        self.wait += 1
        if self.best is None or self._beats(value, self.best):
            self.best, self.best_epoch = value, epoch
            if self.restore_best_weights:
                # every weight, BatchNormalization's moving statistics included
                self.best_weights = self.trained_model().get_weights()
            if self.baseline is None or self._beats(value, float(self.baseline)):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.trained_model().stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(
                    f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}."
                )
            self.trained_model().set_weights(self.best_weights)


class ModelCheckpoint(_Monitor):
    """Save the model after each epoch or every ``save_freq`` batches, or only when
    ``monitor`` improves (Keras 3's semantics).

    ``filepath`` may contain ``{epoch}`` (1-based), ``{batch}`` and log keys, e.g.
    ``"ckpt/m-{epoch:02d}-{val_loss:.3f}.safetensors"``; its folder is created when
    missing. The file is written by ``model.save`` (the format follows the extension), or
    by ``model.save_weights`` with ``save_weights_only=True``. With ``save_best_only``, an
    epoch whose logs lack ``monitor`` is skipped with a warning, as in Keras;
    ``initial_value_threshold`` is the value the first save must beat.

    Args:
        save_freq: ``"epoch"``, or a positive integer: save every that many batches (Keras'
            meaning; the logs are then the running means of the current epoch).
        save_training_state: write a full training checkpoint instead of a model file:
            optimizer state, random-generator state, epoch and history as well (see
            `multilayer.models.checkpoint`; read it back with ``read_checkpoint`` and
            ``model_from_checkpoint``). Only at epoch ends (``save_freq="epoch"``). To resume
            an interrupted run exactly, even mid-epoch, prefer ``fit(checkpoint=...)``.

    Raises:
        ValueError: an invalid ``save_freq``, or ``save_training_state`` with a step frequency.
    """

    def __init__(
        self,
        filepath: str | Path,
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        save_freq="epoch",
        initial_value_threshold: float | None = None,
        save_training_state: bool = False,
    ):
        super().__init__(monitor, mode, 0.0)
        if save_freq != "epoch" and (
            isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq <= 0
        ):
            raise ValueError(
                f"ModelCheckpoint: save_freq must be 'epoch' or a positive number of batches, "
                f"got {save_freq!r}"
            )
        if save_training_state and save_freq != "epoch":
            raise ValueError(
                "ModelCheckpoint: save_training_state=True needs save_freq='epoch'; for "
                "checkpoints every N steps use fit(checkpoint=CheckpointConfig(dir, every=N, "
                "unit='step'))"
            )
        self.filepath = str(filepath)
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.save_freq = save_freq
        self.save_training_state = save_training_state
        if initial_value_threshold is not None:
            self.best = float(initial_value_threshold)
        self._epoch = 0
        self._batches_seen = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches_seen += 1
        if self._batches_seen >= self.save_freq:
            self._batches_seen = 0
            self._save(dict(logs or {}), epoch=self._epoch + 1, batch=batch + 1)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(dict(logs or {}), epoch=epoch + 1, batch=0)

    def _save(self, logs: dict, epoch: int, batch: int) -> None:
        if self.save_best_only:
            value = (logs or {}).get(self.monitor)
            if value is None:  # Keras warns and skips; so do we
                warnings.warn(
                    f"ModelCheckpoint: can save the best model only with {self.monitor} "
                    f"available (logs: {', '.join(sorted(logs))}), skipping",
                    stacklevel=2,
                )
                return
            if not self._improved(float(value)):
                return
            self.best = float(value)
        try:
            path = Path(self.filepath.format(epoch=epoch, batch=batch, **logs))
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(
                f"ModelCheckpoint: cannot fill in the filepath {self.filepath!r} ({error!r}); "
                f"its fields must be epoch, batch or log keys: {', '.join(sorted(logs))}"
            ) from None
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.save_training_state:
            from multilayer.models.checkpoint import write_checkpoint

            model = self.trained_model()
            state = model.training_state()  # at an epoch end: the next epoch's start
            write_checkpoint(model, path.parent, state, path=path)
        elif self.save_weights_only:
            self.trained_model().save_weights(path)
        else:
            self.trained_model().save(path)
        if self.verbose:
            print(f"Epoch {epoch}: saved model to {path}")


class ReduceLROnPlateau(_Monitor):
    """Multiply the learning rate by ``factor`` when ``monitor`` stalls for ``patience`` epochs."""

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ):
        super().__init__(monitor, mode, min_delta)
        if not 0.0 < factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor!r}")
        self.factor, self.patience, self.verbose = float(factor), int(patience), verbose
        self.cooldown, self.min_lr = int(cooldown), float(min_lr)

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.cooldown_counter = 0
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, epoch, logs=None):
        value = self._current(logs)
        if logs is not None:
            logs["learning_rate"] = self.model.optimizer.learning_rate
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(value):
            self.best, self.wait = value, 0
            return
        if self.cooldown_counter > 0:
            return
        self.wait += 1
        if self.wait >= self.patience:
            old = self.model.optimizer.learning_rate
            new = max(old * self.factor, self.min_lr)
            if old - new > 1e-12:
                self.model.optimizer.learning_rate = new
                if self.verbose:
                    print(
                        f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new:.4g}."
                    )
                self.cooldown_counter = self.cooldown
                self.wait = 0


class LearningRateScheduler(Callback):
    """Set the learning rate at each epoch start to ``schedule(epoch, current_lr)``."""

    def __init__(self, schedule, verbose: int = 0):
        super().__init__()
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        lr = float(self.schedule(epoch, self.model.optimizer.learning_rate))
        self.model.optimizer.learning_rate = lr
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr:.4g}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.model.optimizer.learning_rate


class CSVLogger(Callback):
    """Append one row of logs per epoch to a CSV file (``epoch`` first, keys sorted)."""

    def __init__(self, filename: str | Path, separator: str = ",", append: bool = False):
        super().__init__()
        self.filename, self.separator, self.append = Path(filename), separator, append
        self._keys = None

    def on_train_begin(self, logs=None):
        exists = self.append and self.filename.exists() and self.filename.stat().st_size > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="")  # noqa: SIM115
        self._writer = None
        if exists:
            with open(self.filename, newline="") as existing:
                header = next(csv.reader(existing, delimiter=self.separator), None)
            self._keys = header[1:] if header else None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._keys is None:
            self._keys = sorted(logs)
        if self._writer is None:
            self._writer = csv.writer(self._file, delimiter=self.separator)
            if self._file.tell() == 0:
                self._writer.writerow(["epoch", *self._keys])
        self._writer.writerow([epoch, *(logs.get(key, "") for key in self._keys)])
        self._file.flush()

    def on_train_end(self, logs=None):
        self._file.close()


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch loss is NaN or infinite."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            print(f"Batch {batch}: invalid loss, terminating training")
            self.model.stop_training = True
