"""Checkpointing policy: `BackupAndRestore`, the callback behind ``fit(checkpoint=...)``.

As Keras' ``BackupAndRestore``: at the start of training it restores the newest valid
checkpoint of the run directory (weights, optimizer state, random generators and the loop
position, so the run continues at the same batch), then writes a checkpoint every N epochs
or N optimizer steps and at the end, keeps the newest few, and turns Ctrl-C into "finish the
batch, write a checkpoint, raise `TrainingInterrupted`". The file format itself is
`multilayer.models.checkpoint`; every object saves and restores its own state
(``named_weights``, ``get_state``/``set_state``, ``training_state``/``restore_training_state``).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from multilayer.errors import ModelFileError, TrainingError
from multilayer.models import file_checks
from multilayer.models.callbacks import Callback
from multilayer.models.checkpoint import (
    Checkpoint,
    latest_checkpoint,
    list_checkpoints,
    optimizer_class,
    optimizer_name,
    read_run_id,
    write_checkpoint,
)
from multilayer.models.loop import TrainingState
from multilayer.models.saving import compile_model, model_from_config, model_tensors

#: Unit suffixes of `parse_every`: "5" or "5e" is every 5 epochs, "200s" every 200 steps.
_EVERY = re.compile(r"^\s*(\d+)\s*(e|epochs?|s|steps?)?\s*$", re.IGNORECASE)


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) stopped `fit` after it wrote a checkpoint.

    Attributes:
        checkpoint: the path of that checkpoint.
        message: what happened and how to resume.
    """

    def __init__(self, checkpoint: Path, message: str):
        super().__init__(message)
        self.checkpoint = checkpoint
        self.message = message


@dataclass
class CheckpointConfig:
    """Where and how often `fit` writes checkpoints, and whether it resumes.

    Args:
        directory: the run directory; created if missing.
        every: write a checkpoint every ``every`` units (a positive integer), and at the end
            of training; None: only when Ctrl-C interrupts training.
        unit: ``"epoch"`` or ``"step"`` (one optimizer step = one batch).
        keep: how many of this run's newest checkpoints to keep (>= 1; 2 or more lets a
            resume fall back to an older file if the newest is damaged). Files of other runs
            are never deleted.
        resume: continue from the newest valid checkpoint in ``directory`` if there is one
            (training starts from scratch when there is none). Without it, ``fit`` refuses
            a directory that already holds checkpoints (TrainingError): one run per
            directory, so a later resume cannot continue the wrong run.
        run: JSON-serialisable dict stored in each checkpoint for the caller (the CLI keeps
            its arguments there).
        resume_hint: how to resume, printed when Ctrl-C interrupts training.

    Raises:
        ValueError: a non-positive ``every`` or ``keep``, or an unknown ``unit``.
    """

    directory: str | os.PathLike
    every: int | None = 1
    unit: str = "epoch"
    keep: int = 2
    resume: bool = False
    run: dict = field(default_factory=dict)
    resume_hint: str | None = None

    def __post_init__(self):
        self.directory = Path(self.directory)
        for name in ("every", "keep"):
            value = getattr(self, name)
            if name == "every" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(
                    f"CheckpointConfig: {name} must be a positive integer, got {value!r}"
                )
        if self.unit not in ("epoch", "step"):
            raise ValueError(f"CheckpointConfig: unit must be 'epoch' or 'step', got {self.unit!r}")


def parse_every(text: str) -> tuple[int, str]:
    """``"3"`` / ``"3e"`` -> ``(3, "epoch")``; ``"500s"`` -> ``(500, "step")``.

    Raises:
        ValueError: anything else, or a count of 0.
    """
    match = _EVERY.match(str(text))
    if not match or int(match.group(1)) <= 0:
        raise ValueError(
            f"invalid checkpoint frequency {text!r}: expected N (every N epochs) or Ns "
            "(every N steps), with N a positive integer, e.g. 1 or 500s"
        )
    unit = "step" if (match.group(2) or "e").lower().startswith("s") else "epoch"
    return int(match.group(1)), unit


def model_from_checkpoint(checkpoint: Checkpoint):
    """A new, compiled model with the checkpoint's architecture and full state.

    Raises:
        ModelFileError: an architecture over the limits or not matching the tensors (checked
            before anything is allocated), or state that does not fit it.
    """
    path = checkpoint.path
    config = file_checks.model_config(checkpoint.model_config, path)
    expected = file_checks.parameter_shapes(config, path)  # before allocating anything
    declared = {
        name: (value.shape, {4: "F32", 8: "F64"}.get(value.dtype.itemsize, str(value.dtype)))
        for name, value in checkpoint.tensors.items()
        if not name.startswith("optimizer.") and value.dtype.kind == "f"
    }
    file_checks.check_declared_tensors(
        expected, declared, file_checks.model_dtype(config, path), path
    )
    try:
        model = model_from_config(config)
        model.build()
        compile_model(model, checkpoint.compile_config or {})
    except (KeyError, ValueError, TypeError) as error:
        raise ModelFileError(f"{checkpoint.path}: invalid model configuration: {error}") from None
    restore(model, checkpoint)
    return model


def restore(model, checkpoint: Checkpoint) -> None:
    """Put the checkpoint's weights, optimizer state and generator states into ``model``.

    ``model`` must be built and compiled with the same architecture and optimizer type.

    Raises:
        ModelFileError: the tensors do not fit the model, or the optimizer differs.
    """
    path = checkpoint.path
    weights = model_tensors(model)
    model._build_optimizer()
    optimizer = model.optimizer
    slots = {f"optimizer.{slot}": value for slot, value in optimizer.get_state()["slots"].items()}
    expected = {**weights, **slots}
    if set(expected) != set(checkpoint.tensors):
        raise ModelFileError(
            f"{path}: the checkpoint does not fit this model: it holds "
            f"{sorted(checkpoint.tensors)}, the model needs {sorted(expected)}"
        )
    for name, target in expected.items():
        value = checkpoint.tensors[name]
        if value.shape != target.shape or value.dtype != target.dtype:
            raise ModelFileError(
                f"{path}: tensor {name!r} has shape {value.shape} and dtype {value.dtype}, but "
                f"the model needs shape {target.shape} and dtype {target.dtype}"
            )
    saved = checkpoint.optimizer_config or {}
    if optimizer_class(saved) is not type(optimizer):
        raise ModelFileError(
            f"{path}: the checkpoint was trained with optimizer {optimizer_name(saved)!r}, "
            f"this model is compiled with {type(optimizer).__name__!r}"
        )
    # A callback may have changed a constant learning rate: the saved one goes on. (A saved
    # schedule is the model's own, rebuilt from the compile configuration.)
    learning_rate = saved.get("config", {}).get("learning_rate")
    if optimizer.schedule is not None or learning_rate is None or isinstance(learning_rate, dict):
        learning_rate = None
    elif (
        isinstance(learning_rate, bool)
        or not isinstance(learning_rate, (int, float))
        or not 0 < learning_rate < math.inf
    ):
        raise ModelFileError(
            f"{path}: the saved learning rate {learning_rate!r} is not a positive finite number"
        )
    try:
        model.set_state({"rng": checkpoint.rng, "layer_rngs": checkpoint.layer_rngs})
    except (ValueError, TypeError) as error:
        raise ModelFileError(f"{path}: invalid random-generator state ({error})") from None
    for name, target in weights.items():
        target[...] = checkpoint.tensors[name]
    optimizer.set_state(
        {
            "iterations": checkpoint.optimizer_iterations,
            "learning_rate": learning_rate,
            "slots": {name[len("optimizer.") :]: checkpoint.tensors[name] for name in slots},
        }
    )


def prune(written: list[Path], latest: Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest of a run's own checkpoint files and return those
    kept, oldest first. ``written`` lists the run's files oldest first; ``latest`` was just
    written. Files of other runs, or damaged ones, are never touched, however high their
    step numbers: the checkpoints just written always survive."""
    files = [path for path in written if path != latest] + [latest]
    for old in files[:-keep]:
        with contextlib.suppress(OSError):
            old.unlink()
    return files[-keep:]


class BackupAndRestore(Callback):
    """Crash-safe checkpoints of a `fit` run, and exact resume (Keras' callback of that name).

    ``callbacks=[BackupAndRestore("backup")]`` as in Keras: resume from the backup directory
    if it holds this run's checkpoint, back up every epoch (``save_freq="epoch"``) or every
    ``save_freq`` batches, and delete the backup once training completes
    (``delete_checkpoint``). ``fit(checkpoint=CheckpointConfig(...))`` adds one built from
    that configuration (nothing deleted at the end). `fit` runs it after every other
    callback, so a checkpoint taken at a batch or epoch end includes what they did there.

    Args:
        backup_dir: the directory of the checkpoints, or a `CheckpointConfig`.
        save_freq: ``"epoch"`` or a positive number of batches (ignored with a config).
        delete_checkpoint: delete this run's checkpoints when training completes.
        double_checkpoint: Keras 3's option to keep the previous checkpoint too, so that a
            damaged newest one can be skipped: accepted, and always the case here (the two
            newest are kept, ``CheckpointConfig.keep``).

    Raises:
        TypeError: ``backup_dir`` is neither a path nor a `CheckpointConfig`.
        ValueError: an invalid ``save_freq``.
    """

    def __init__(
        self,
        backup_dir: str | os.PathLike | CheckpointConfig,
        save_freq: str | int = "epoch",
        double_checkpoint: bool = False,
        delete_checkpoint: bool = True,
    ):
        super().__init__()
        self.double_checkpoint = bool(double_checkpoint)
        if isinstance(backup_dir, CheckpointConfig):
            config, delete_checkpoint = backup_dir, False
        elif isinstance(backup_dir, (str, os.PathLike)):
            if save_freq == "epoch":
                every, unit = 1, "epoch"
            elif isinstance(save_freq, int) and not isinstance(save_freq, bool) and save_freq > 0:
                every, unit = save_freq, "step"
            else:
                raise ValueError(
                    "BackupAndRestore: save_freq must be 'epoch' or a positive number of "
                    f"batches, got {save_freq!r}"
                )
            config = CheckpointConfig(backup_dir, every=every, unit=unit, resume=True)
        else:
            raise TypeError(
                "BackupAndRestore: backup_dir must be a directory path or a CheckpointConfig, "
                f"got {type(backup_dir).__name__}"
            )
        self.config = config
        self.delete_checkpoint = bool(delete_checkpoint)
        self._completed = False
        self.interrupted = False
        self.last_path: Path | None = None
        self._last_written_step: int | None = None
        self._previous_handler: object = None
        #: this run's id, written into each of its checkpoints; a resume adopts the old one
        self.run_id = uuid.uuid4().hex
        #: this run's checkpoint files, oldest first: the only ones pruning may delete
        self.written: list[Path] = []
        # Training time: this segment's start, and the segments before it (on resume).
        self._started = time.perf_counter()
        self._previous_segments: list[float] = []

    # -- the hooks --------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._started = time.perf_counter()
        self._completed = False
        if self.config.resume:
            self._resume()
        else:
            self._refuse_used_directory()
        self._catch_interrupt()

    def on_train_batch_end(self, batch, logs=None):
        config = self.config
        due = (
            config.every is not None
            and config.unit == "step"
            and self.model.optimizer.iterations % config.every == 0
        )
        self._after(due)

    def on_epoch_end(self, epoch, logs=None):
        config = self.config
        last = epoch + 1 == self.params.get("epochs") or self.model.stop_training
        due = config.every is not None and (
            last or (config.unit == "epoch" and (epoch + 1) % config.every == 0)
        )
        self._after(due)
        self._completed = last

    def on_train_end(self, logs=None):
        if self._previous_handler is not None:
            signal.signal(signal.SIGINT, self._previous_handler)
            self._previous_handler = None
        if self.delete_checkpoint and self._completed:  # not after an error or Ctrl-C
            for path in self.written:
                with contextlib.suppress(OSError):
                    path.unlink()
            self.written = []
            with contextlib.suppress(OSError):
                Path(self.config.directory).rmdir()  # only if nothing else is in it

    # -- writing ----------------------------------------------------------------------------
    def _after(self, due: bool) -> None:
        """Write a checkpoint if one is ``due``; after Ctrl-C, write one and raise
        `TrainingInterrupted`."""
        if self.interrupted:
            raise self._interrupt()
        if due:
            self.save()

    def _iterations(self) -> int:
        """The model's optimizer step count."""
        optimizer = self.trained_model().optimizer
        if optimizer is None:
            raise RuntimeError("call compile(optimizer=..., loss=...) first")
        return optimizer.iterations

    def _loop(self) -> TrainingState:
        """The model's loop position (fit sets it before the callbacks run)."""
        loop = self.trained_model().loop
        if loop is None:
            raise RuntimeError("the loop state only exists while fit() runs")
        return loop

    def save(self) -> Path:
        """Write a checkpoint of the current training state (with the training time of every
        segment so far) and prune old ones."""
        iterations = self._iterations()
        state = self.trained_model().training_state()
        state.segments = [*self._previous_segments, time.perf_counter() - self._started]
        self.last_path = write_checkpoint(
            self.trained_model(),
            self.config.directory,
            state,
            run=self.config.run,
            run_id=self.run_id,
        )
        self._last_written_step = iterations
        self.written = prune(self.written, self.last_path, self.config.keep)
        return self.last_path

    # -- resuming -----------------------------------------------------------------------------
    def _resume(self) -> None:
        """Load the newest valid checkpoint into the model and the loop, if there is one.

        Raises:
            TrainingError: the checkpoint was written by a run with a different batch size,
                number of training samples, shuffle setting or metrics.
        """
        directory = Path(self.config.directory)
        if directory.is_dir():  # temporary files of a write killed before its rename
            for path in directory.glob(".checkpoint-*.tmp"):
                with contextlib.suppress(OSError):
                    path.unlink()
        checkpoint = latest_checkpoint(directory)
        # Set damaged newer files aside (all of them if none is valid): left in place they
        # would sort as "newest", and a later resume would try them again.
        for path in list_checkpoints(directory):
            if checkpoint is not None and path == checkpoint.path:
                break
            with contextlib.suppress(OSError):
                path.rename(path.with_name(path.name + ".damaged"))
        if checkpoint is None:
            return
        loop = self._loop()
        state = checkpoint.state
        for name, saved, now in (
            ("batch_size", state.batch_size, loop.batch_size),
            ("the number of training samples", state.n_samples, loop.n_samples),
            ("shuffle", state.shuffle, loop.shuffle),
        ):
            if saved != now:
                raise TrainingError(
                    f"cannot resume from {checkpoint.path}: it was written with {name} = "
                    f"{saved!r}, this run has {now!r}"
                )
        try:  # checks the metrics' states before the weights change
            self.trained_model().restore_training_state(state)
        except ValueError as error:
            raise TrainingError(f"cannot resume from {checkpoint.path}: {error}") from None
        restore(self.model, checkpoint)
        self._previous_segments = list(state.segments)
        self.last_path = checkpoint.path
        self._last_written_step = checkpoint.optimizer_iterations
        # The resumed run goes on under its id; its older files are its own to prune.
        self.run_id = checkpoint.run_id or self.run_id
        self.written = [
            path
            for path in reversed(list_checkpoints(directory))
            if read_run_id(path) == checkpoint.run_id
        ]

    def _refuse_used_directory(self) -> None:
        """A new run never shares a directory with another run's checkpoints: a later
        resume could not tell them apart."""
        found = list_checkpoints(self.config.directory)
        if found:
            shown = ", ".join(path.name for path in found[:3]) + (", ..." if len(found) > 3 else "")
            raise TrainingError(
                f"{self.config.directory} already holds checkpoints of another run ({shown}): "
                "continue that run with resume=True, or delete them or choose another "
                "directory to start a new one"
            )

    # -- Ctrl-C -------------------------------------------------------------------------------
    def _catch_interrupt(self) -> None:
        """Until the end of training, SIGINT sets ``interrupted`` instead of raising at once,
        so `fit` finishes the current batch and writes a checkpoint. A second Ctrl-C stops
        at once."""
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum, frame):
            if self.interrupted:
                raise KeyboardInterrupt
            self.interrupted = True

        self._previous_handler = signal.signal(signal.SIGINT, handler)

    def _interrupt(self) -> TrainingInterrupted:
        """Write a checkpoint (unless one of this very step exists) and return the exception
        that stops `fit` (print the hint)."""
        iterations = self._iterations()
        path = self.last_path
        if path is None or self._last_written_step != iterations:  # not written at this step
            path = self.save()
        loop = self._loop()
        hint = self.config.resume_hint or (
            f"model.fit(..., checkpoint=CheckpointConfig({str(self.config.directory)!r}, "
            "resume=True))"
        )
        message = (
            f"Training interrupted at epoch {loop.epoch + 1}, step {loop.step}; "
            f"checkpoint written to {path}.\nResume with: {hint}"
        )
        print(message, file=sys.stderr, flush=True)
        return TrainingInterrupted(path, message)
