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
import os
import re
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from multilayer.errors import ModelFileError, TrainingError
from multilayer.models.callbacks import Callback
from multilayer.models.checkpoint import (
    Checkpoint,
    latest_checkpoint,
    list_checkpoints,
    write_checkpoint,
)
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
        keep: how many of the newest checkpoints to keep (>= 1; 2 or more lets a resume fall
            back to an older file if the newest is damaged).
        resume: continue from the newest valid checkpoint in ``directory`` if there is one
            (training starts from scratch when there is none).
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
    """A new, compiled model with the checkpoint's architecture and full state."""
    try:
        model = model_from_config(checkpoint.model_config)
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
    if saved.get("name") != optimizer.name:
        raise ModelFileError(
            f"{path}: the checkpoint was trained with optimizer {saved.get('name')!r}, this "
            f"model is compiled with {optimizer.name!r}"
        )
    learning_rate = saved.get("config", {}).get("learning_rate")
    try:
        model.set_state({"rng": checkpoint.rng, "layer_rngs": checkpoint.layer_rngs})
    except (ValueError, TypeError) as error:
        raise ModelFileError(f"{path}: invalid random-generator state ({error})") from None
    for name, target in weights.items():
        target[...] = checkpoint.tensors[name]
    optimizer.set_state(
        {
            "iterations": checkpoint.optimizer_iterations,
            "learning_rate": learning_rate if isinstance(learning_rate, (int, float)) else None,
            "slots": {name[len("optimizer.") :]: checkpoint.tensors[name] for name in slots},
        }
    )


class BackupAndRestore(Callback):
    """Crash-safe checkpoints of a `fit` run, and exact resume (Keras' callback of that name).

    ``fit(checkpoint=CheckpointConfig(...))`` adds it as the last callback, so a checkpoint
    taken at a batch or epoch end includes what the other callbacks did there.

    Raises:
        TypeError: ``config`` is not a `CheckpointConfig`.
    """

    def __init__(self, config: CheckpointConfig):
        super().__init__()
        if not isinstance(config, CheckpointConfig):
            raise TypeError(
                f"checkpoint must be a CheckpointConfig or None, got {type(config).__name__}"
            )
        self.config = config
        self.interrupted = False
        self.last_path: Path | None = None
        self._last_written_step: int | None = None
        self._previous_handler: object = None

    # -- the hooks --------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        if self.config.resume:
            self._resume()
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

    def on_train_end(self, logs=None):
        if self._previous_handler is not None:
            signal.signal(signal.SIGINT, self._previous_handler)  # type: ignore[arg-type]
            self._previous_handler: object = None

    # -- writing ----------------------------------------------------------------------------
    def _after(self, due: bool) -> None:
        """Write a checkpoint if one is ``due``; after Ctrl-C, write one and raise
        `TrainingInterrupted`."""
        if self.interrupted:
            raise self._interrupt()
        if due:
            self.save()

    def save(self) -> Path:
        """Write a checkpoint of the current training state and prune old ones."""
        iterations = self.model.optimizer.iterations
        self.last_path = write_checkpoint(
            self.model,
            self.config.directory,
            self.model.training_state(),
            run=self.config.run,
        )
        self._last_written_step = iterations
        for old in list_checkpoints(self.config.directory)[self.config.keep :]:
            with contextlib.suppress(OSError):
                old.unlink()
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
        if checkpoint is None:
            return
        # Set damaged newer files aside: left in place they would sort as "newest" and
        # pruning would delete the good checkpoints this run writes.
        for path in list_checkpoints(directory):
            if path == checkpoint.path:
                break
            with contextlib.suppress(OSError):
                path.rename(path.with_name(path.name + ".damaged"))
        loop = self.model.loop
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
        restore(self.model, checkpoint)
        try:
            self.model.restore_training_state(state)
        except ValueError as error:
            raise TrainingError(f"cannot resume from {checkpoint.path}: {error}") from None
        self.last_path = checkpoint.path
        self._last_written_step = checkpoint.optimizer_iterations

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
        iterations = self.model.optimizer.iterations
        fresh = self._last_written_step == iterations and self.last_path is not None
        path = self.last_path if fresh and self.last_path is not None else self.save()
        loop = self.model.loop
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
