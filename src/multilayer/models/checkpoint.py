"""Training checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint is ONE ``.safetensors`` file, written atomically (temporary file, fsync,
rename: `multilayer.utils.files.atomic_write_bytes`), so a crash, a kill or a full disk at
any moment leaves either the previous checkpoint or the new one, never half of one.

What it holds:

* tensors: the weights (named as in model files, ``layers.{i}.{kernel|bias}``, see
  `multilayer.models.saving`), the optimizer's state vectors (``optimizer.{slot}``) and, for
  a checkpoint taken in the middle of an epoch, that epoch's shuffled sample order
  (``fit.order``);
* header (JSON): the architecture, the compile configuration, the optimizer's current
  configuration (a learning rate changed by a callback is kept) and step count, the model's
  random-generator state (and that of any layer with its own generator, e.g. a seeded
  Dropout), the epoch and step, the running loss and metric sums of a partial epoch, the
  history so far, the fit arguments that must not change on resume (batch size, number of
  samples, shuffle), an optional ``run`` dict for the caller (the CLI stores its arguments),
  and a SHA-256 of all tensor bytes so a damaged file is refused rather than trusted.

Resuming restores all of that, so the resumed run draws the same shuffles and dropout masks
and makes the same updates as an uninterrupted one: the final weights are bitwise identical
(same machine, same thread count; see docs/reliability.md).

Files are named ``checkpoint-{optimizer step:09d}.safetensors`` in the run directory, and
each holds the id of the run that wrote it (header ``run_id``; a resumed run keeps the id).
Pruning keeps the newest `CheckpointConfig.keep` of the current run's own files and never
touches others; a new run refuses a directory that already holds checkpoints. Reading falls
back from the newest file to older ones when a file is damaged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
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
from typing import TYPE_CHECKING

import numpy as np

from multilayer.errors import ModelFileError, TrainingError
from multilayer.models import file_checks
from multilayer.models.saving import header_json, model_tensors, read_checked
from multilayer.utils.files import atomic_write_bytes

if TYPE_CHECKING:
    from multilayer.engine.optimizers import Optimizer

FORMAT = "multilayer.checkpoint"
FORMAT_VERSION = "1"
_METADATA_KEYS = {
    "format",
    "format_version",
    "model",
    "compile",
    "state",
    "run",
    "run_id",
    "sha256",
}
_STATE_KEYS = {
    "epoch",
    "step",
    "loss_sum",
    "seen",
    "metrics",
    "history",
    "history_epochs",
    "batch_size",
    "n_samples",
    "shuffle",
    "optimizer",
    "optimizer_iterations",
    "rng",
    "layer_rngs",
}
_NAME = re.compile(r"^checkpoint-(\d{9,})\.safetensors$")
_ORDER = "fit.order"
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
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
    """Where and how often `Sequential.fit` writes checkpoints, and whether it resumes.

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


# -- the training state ------------------------------------------------------------------------
@dataclass
class TrainingState:
    """Where `fit` is: ``step`` batches of epoch ``epoch`` are done (0-based epoch).

    ``order`` is that epoch's sample order when ``step > 0`` (None at an epoch boundary);
    ``loss_sum``/``seen`` and ``metrics`` (each metric's ``get_state()``, a JSON-able dict;
    files written before read ``[total, count]``) are the partial epoch's running sums.
    ``segments`` are the training seconds of each segment of the run (the first ``fit``,
    then one per resume), the last one up to this checkpoint.
    """

    epoch: int
    step: int = 0
    order: np.ndarray | None = None
    loss_sum: float = 0.0
    seen: int = 0
    metrics: list = field(default_factory=list)
    history: dict = field(default_factory=dict)
    history_epochs: list = field(default_factory=list)
    batch_size: int = 32
    n_samples: int = 0
    shuffle: bool = True
    segments: list[float] = field(default_factory=list)


@dataclass
class Checkpoint:
    """A checkpoint read back from disk and checked (see `read_checkpoint`)."""

    path: Path
    state: TrainingState
    model_config: dict
    compile_config: dict | None
    run: dict
    tensors: dict[str, np.ndarray]
    optimizer_config: dict | None
    optimizer_iterations: int
    rng: dict
    layer_rngs: dict[str, dict]
    run_id: str | None = None


def checkpoint_path(directory: str | os.PathLike, step: int) -> Path:
    return Path(directory) / f"checkpoint-{step:09d}.safetensors"


def list_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """Checkpoint files in ``directory``, newest (highest step) first. Temporary files of an
    interrupted write are not listed."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [
        (int(match.group(1)), path)
        for path in directory.iterdir()
        if (match := _NAME.match(path.name)) and path.is_file()
    ]
    return [path for _, path in sorted(found, reverse=True)]


def latest_checkpoint(directory: str | os.PathLike) -> Checkpoint | None:
    """The newest checkpoint in ``directory`` that reads back intact, or None.

    Damaged files (truncated, corrupted, not a checkpoint) are skipped with a warning on
    stderr, so a resume falls back to the previous good one.
    """
    for path in list_checkpoints(directory):
        try:
            return read_checkpoint(path)
        except (ModelFileError, OSError) as error:
            print(f"warning: skipping damaged checkpoint {path}: {error}", file=sys.stderr)
    return None


# -- writing -------------------------------------------------------------------------------------
def _digest(tensors: dict[str, np.ndarray]) -> str:
    sha = hashlib.sha256()
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        sha.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        sha.update(array.data)
    return sha.hexdigest()


def _layer_rngs(model) -> dict[str, dict]:
    """Generator states of layers that have their own generator (not the model's)."""
    return {
        str(index): layer.rng.bit_generator.state
        for index, layer in enumerate(model.layers)
        if layer.rng is not None and layer.rng is not model.rng
    }


def write_checkpoint(
    model,
    directory: str | os.PathLike,
    state: TrainingState,
    run=None,
    path=None,
    run_id: str | None = None,
) -> Path:
    """Write ``model``'s full training state to a new checkpoint file in ``directory``.

    Returns:
        the path written: ``path`` if given, else ``checkpoint-{optimizer step}.safetensors``.
        ``run_id`` (32 hex digits) marks the checkpoints of one training run.

    Raises:
        OSError: the directory cannot be created or written, or the disk is full; the
            message names the file. No partial file is left behind.
    """
    import safetensors.numpy as st_numpy

    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(
            error.errno, f"cannot create the checkpoint directory {directory}: {error.strerror}"
        ) from None
    tensors = {name: np.ascontiguousarray(v) for name, v in model_tensors(model).items()}
    optimizer = model.optimizer
    for slot, value in optimizer.state.items():
        tensors[f"optimizer.{slot}"] = value
    if state.order is not None:
        tensors[_ORDER] = np.ascontiguousarray(state.order, dtype=np.int64)
    from multilayer.engine import optimizers as optimizer_module

    info = {
        "epoch": state.epoch,
        "step": state.step,
        "loss_sum": state.loss_sum,
        "seen": state.seen,
        "metrics": state.metrics,
        "history": state.history,
        "history_epochs": state.history_epochs,
        "batch_size": state.batch_size,
        "n_samples": state.n_samples,
        "shuffle": state.shuffle,
        "segments": [float(seconds) for seconds in state.segments],
        "optimizer": optimizer_module.serialize(optimizer),
        "optimizer_iterations": optimizer.iterations,
        "rng": model.rng.bit_generator.state,
        "layer_rngs": _layer_rngs(model),
    }
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": json.dumps(model.get_config()),
        "compile": json.dumps(model._compile_config),
        "state": json.dumps(info),
        "run": json.dumps(run or {}),
        "sha256": _digest(tensors),
    }
    if run_id is not None:
        metadata["run_id"] = run_id
    path = Path(path) if path is not None else checkpoint_path(directory, optimizer.iterations)
    return atomic_write_bytes(path, st_numpy.save(tensors, metadata=metadata))


# -- reading -------------------------------------------------------------------------------------
def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read and check a checkpoint file.

    Raises:
        FileNotFoundError: no such file.
        ModelFileError: not a safetensors file, not a checkpoint, a damaged file (the
            tensor checksum does not match) or an inconsistent training state.
    """
    path = Path(path)
    metadata, tensors = read_checked(path, FORMAT, FORMAT_VERSION, _METADATA_KEYS, "checkpoint")
    if metadata.get("sha256") != _digest(tensors):
        raise ModelFileError(f"{path}: the tensor data does not match its checksum (damaged file)")
    info = header_json(metadata, "state", path)
    # "segments" (training time per segment) is absent from files of earlier versions.
    if not isinstance(info, dict) or set(info) - {"segments"} != _STATE_KEYS:
        raise ModelFileError(f"{path}: the training state is malformed")
    model_config = header_json(metadata, "model", path)
    compile_config = header_json(metadata, "compile", path)
    run = header_json(metadata, "run", path) if "run" in metadata else {}
    if not isinstance(model_config, dict) or not isinstance(run, dict):
        raise ModelFileError(f"{path}: the header entries 'model' and 'run' must be JSON objects")
    file_checks.check_finite_json(run, path, "run")
    compile_config = file_checks.compile_config(compile_config, path)
    run_id = metadata.get("run_id")
    if run_id is not None and not _RUN_ID.match(run_id):
        raise ModelFileError(f"{path}: the run id {run_id!r} is not 32 hexadecimal digits")
    for name, value in tensors.items():
        if name != _ORDER and not np.all(np.isfinite(value)):
            raise ModelFileError(f"{path}: tensor {name!r} contains NaN or infinite values")
    order = tensors.pop(_ORDER, None)
    try:
        state, iterations = _training_state(info, order, path)
    except ModelFileError:
        raise
    except (TypeError, ValueError, AttributeError, KeyError) as error:
        raise ModelFileError(f"{path}: the training state is malformed ({error})") from None
    return Checkpoint(
        path=path,
        state=state,
        model_config=model_config,
        compile_config=compile_config,
        run=run,
        tensors=tensors,
        optimizer_config=info["optimizer"],
        optimizer_iterations=iterations,
        rng=info["rng"],
        layer_rngs=info["layer_rngs"],
        run_id=run_id,
    )


def _seconds(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e12:
        raise ValueError(f"expected a duration in seconds, got {value!r}")
    return float(value)


def _training_state(info: dict, order, path: Path) -> tuple[TrainingState, int]:
    """Check every field of a checkpoint's ``state`` header (types, ranges, and that they
    hold together) and build the `TrainingState`; ModelFileError or ValueError otherwise."""
    batch_size, n_samples = _count(info["batch_size"]), _count(info["n_samples"])
    epoch, step, seen = _count(info["epoch"]), _count(info["step"]), _count(info["seen"])
    if (step > 0) != (order is not None):
        raise ModelFileError(f"{path}: the partial epoch's sample order is missing or malformed")
    if batch_size == 0 or n_samples == 0:
        raise ValueError("batch_size and n_samples must be positive")
    if not isinstance(info["shuffle"], bool):
        raise ValueError(f"shuffle must be true or false, got {info['shuffle']!r}")
    steps = -(-n_samples // batch_size)
    if step > steps or seen != min(step * batch_size, n_samples):
        raise ValueError(
            f"step {step} and {seen} samples seen do not fit {n_samples} samples in batches "
            f"of {batch_size}"
        )
    loss_sum = _number(info["loss_sum"])
    metrics = info["metrics"]
    if not isinstance(metrics, list) or (step == 0 and (metrics or loss_sum)):
        raise ValueError("metrics must be a list (empty at an epoch boundary)")
    metrics = [_metric_state(m) for m in metrics]
    history, epochs = info["history"], info["history_epochs"]
    if not isinstance(history, dict) or not isinstance(epochs, list):
        raise ValueError("history must be an object and history_epochs a list")
    epochs = [_count(e) for e in epochs]
    if epochs != sorted(set(epochs)) or (epochs and epochs[-1] >= epoch):
        raise ValueError("history_epochs must be increasing epochs before the current one")
    for key, values in history.items():
        if not isinstance(values, list) or len(values) != len(epochs):
            raise ValueError(f"history {key!r} must hold one number per epoch")
    history = {key: [_logged(v) for v in values] for key, values in history.items()}
    if _optimizer_name(info["optimizer"]) is None:
        raise ValueError("optimizer must be an object with a name")
    if not isinstance(info["optimizer"].get("config", {}), dict):
        raise ValueError("optimizer config must be an object")
    file_checks.check_finite_json(info["optimizer"], path, "state.optimizer")
    if not isinstance(info["rng"], dict) or not isinstance(info["layer_rngs"], dict):
        raise ValueError("rng and layer_rngs must be objects")
    for key, value in info["layer_rngs"].items():
        if not key.isdecimal() or not isinstance(value, dict):
            raise ValueError(f"layer_rngs must map layer indices to objects, got key {key!r}")
    if order is not None:
        order = file_checks.sample_order(order, n_samples, info["shuffle"], path)
    state = TrainingState(
        epoch=epoch,
        step=step,
        order=order,
        loss_sum=loss_sum,
        seen=seen,
        metrics=metrics,
        history=history,
        history_epochs=epochs,
        batch_size=batch_size,
        n_samples=n_samples,
        shuffle=info["shuffle"],
        segments=[_seconds(v) for v in info.get("segments", [])],
    )
    return state, _count(info["optimizer_iterations"])


def _optimizer_name(config: object) -> str | None:
    """The optimizer a saved config names: ``class_name`` of ``{"class_name": "Adam",
    "config": {...}}`` (the registry's shape), or ``name`` of the older ``{"name": "adam",
    "config": {...}}`` that checkpoints written before it hold; None if it names none."""
    if not isinstance(config, dict):
        return None
    name = config.get("class_name", config.get("name"))
    return name if isinstance(name, str) else None


def _optimizer_class(config: object) -> type[Optimizer] | None:
    """The registered optimizer class a saved config names (either shape), or None."""
    from multilayer.engine import optimizers as optimizer_module

    name = _optimizer_name(config)
    if name is None:
        return None
    try:
        return optimizer_module.REGISTRY.lookup(name)
    except ValueError:
        return None


def _number(value, finite: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, got {value!r}")
    if finite and not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value!r}")
    return float(value)


def _logged(value) -> float | list[float]:
    """A history entry: a number, or a list of numbers (a metric per class or threshold)."""
    if isinstance(value, list):
        return [_number(v, finite=False) for v in value]
    return _number(value, finite=False)


def _metric_state(value) -> dict:
    """A metric's saved state: a dict (checked by the metric's own `set_state` on resume), or
    the ``[total, count]`` pair of older checkpoints."""
    if isinstance(value, dict):
        return value
    if isinstance(value, list) and len(value) == 2:
        return {"total": _number(value[0]), "count": _count(value[1])}
    raise ValueError(f"expected a metric state, got {value!r}")


def _count(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a non-negative integer, got {value!r}")
    return value


def model_from_checkpoint(checkpoint: Checkpoint):
    """A new, compiled `Sequential` with the checkpoint's architecture and full state."""
    from multilayer.models.sequential import Sequential

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
        model = Sequential.from_config(config)
        model.build()
        config = checkpoint.compile_config or {}
        model.compile(optimizer=config["optimizer"], loss=config["loss"], metrics=config["metrics"])
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
    expected = model_tensors(model)
    model._build_optimizer()
    optimizer = model.optimizer
    expected.update({f"optimizer.{slot}": value for slot, value in optimizer.state.items()})
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
    if _optimizer_class(saved) is not type(optimizer):
        raise ModelFileError(
            f"{path}: the checkpoint was trained with optimizer {_optimizer_name(saved)!r}, "
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
    layer_rngs = {int(k): v for k, v in checkpoint.layer_rngs.items()}
    try:
        _set_generator(model.rng, checkpoint.rng)
        for index, state in layer_rngs.items():
            _set_generator(model.layers[index].rng, state)
    except (IndexError, AttributeError, TypeError, ValueError, KeyError) as error:
        raise ModelFileError(f"{path}: invalid random-generator state ({error})") from None
    for name, target in expected.items():
        target[...] = checkpoint.tensors[name]
    optimizer.iterations = checkpoint.optimizer_iterations
    if learning_rate is not None:
        optimizer.learning_rate = learning_rate


def _set_generator(generator: np.random.Generator, state: dict) -> None:
    if state.get("bit_generator") != type(generator.bit_generator).__name__:
        raise ValueError(
            f"generator type {state.get('bit_generator')!r} differs from "
            f"{type(generator.bit_generator).__name__!r}"
        )
    generator.bit_generator.state = state


def read_run_id(path: Path) -> str | None:
    """The run id in a checkpoint's header (None for files without one or unreadable)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            run_id = (handle.metadata() or {}).get("run_id")
    except Exception:  # a damaged file belongs to no run
        return None
    return run_id if isinstance(run_id, str) and _RUN_ID.match(run_id) else None


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


# -- the fit loop's helper --------------------------------------------------------------------------
class Checkpointer:
    """Used by `Sequential.fit`: decides when to write, writes, prunes, restores, and turns
    Ctrl-C into "write a checkpoint, then stop"."""

    def __init__(self, config: CheckpointConfig, model):
        if not isinstance(config, CheckpointConfig):
            raise TypeError(
                f"checkpoint must be a CheckpointConfig or None, got {type(config).__name__}"
            )
        self.config = config
        self.model = model
        self.interrupted = False
        self.last_path: Path | None = None
        self._last_written_step: int | None = None
        #: this run's id, written into each of its checkpoints; a resume adopts the old one
        self.run_id = uuid.uuid4().hex
        #: this run's checkpoint files, oldest first: the only ones pruning may delete
        self.written: list[Path] = []
        # Training time: this segment's start, and the segments before it (on resume).
        self._started = time.perf_counter()
        self._previous_segments: list[float] = []

    # when
    def due_after_step(self) -> bool:
        config = self.config
        return (
            config.every is not None
            and config.unit == "step"
            and self.model.optimizer.iterations % config.every == 0
        )

    def due_after_epoch(self, epoch: int, last: bool) -> bool:
        config = self.config
        if config.every is None:
            return False
        return last or (config.unit == "epoch" and (epoch + 1) % config.every == 0)

    def after(self, due: bool, state) -> None:
        """At a step or epoch end: write a checkpoint if one is ``due``; after Ctrl-C, write
        one and raise `TrainingInterrupted`. ``state()`` builds the `TrainingState` (only
        when needed: it copies the history)."""
        if self.interrupted:
            raise self.interrupt(state())
        if due:
            self.save(state())

    # what
    def save(self, state: TrainingState) -> Path:
        """Write a checkpoint (with the training time of every segment so far) and prune old
        ones."""
        state.segments = [*self._previous_segments, time.perf_counter() - self._started]
        iterations = self.model.optimizer.iterations
        self.last_path = write_checkpoint(
            self.model, self.config.directory, state, run=self.config.run, run_id=self.run_id
        )
        self._last_written_step = iterations
        self.written = prune(self.written, self.last_path, self.config.keep)
        return self.last_path

    def restore(self, batch_size: int, n_samples: int, shuffle: bool) -> TrainingState | None:
        """Load the newest valid checkpoint into the model, or None if there is none.

        Raises:
            TrainingError: the checkpoint was written by a run with a different batch size,
                number of training samples or shuffle setting (resuming would not repeat it).
        """
        if not self.config.resume:
            self._refuse_used_directory()
            return None
        self._remove_temporaries()
        checkpoint = latest_checkpoint(self.config.directory)
        # Set damaged newer files aside (all of them if none is valid): left in place they
        # would sort as "newest", and a later resume would try them again.
        for path in list_checkpoints(self.config.directory):
            if checkpoint is not None and path == checkpoint.path:
                break
            with contextlib.suppress(OSError):
                path.rename(path.with_name(path.name + ".damaged"))
        if checkpoint is None:
            return None
        state = checkpoint.state
        for name, saved, now in (
            ("batch_size", state.batch_size, batch_size),
            ("the number of training samples", state.n_samples, n_samples),
            ("shuffle", state.shuffle, shuffle),
        ):
            if saved != now:
                raise TrainingError(
                    f"cannot resume from {checkpoint.path}: it was written with {name} = "
                    f"{saved!r}, this run has {now!r}"
                )
        if state.step and len(state.metrics) != len(self.model.metrics):
            raise TrainingError(
                f"cannot resume from {checkpoint.path}: it tracked {len(state.metrics)} metrics, "
                f"this model has {len(self.model.metrics)}"
            )
        for metric, saved in (
            zip(self.model.metrics, state.metrics, strict=True) if state.step else ()
        ):
            try:  # on a fresh copy: the model's own metric is restored when the epoch starts
                type(metric)(**metric.get_config()).set_state(saved)
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
            for path in reversed(list_checkpoints(self.config.directory))
            if read_run_id(path) == checkpoint.run_id
        ]
        return state

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

    def _remove_temporaries(self) -> None:
        """Delete temporary files left by a write that was killed before its rename."""
        directory = Path(self.config.directory)
        if directory.is_dir():
            for path in directory.glob(".checkpoint-*.tmp"):
                with contextlib.suppress(OSError):
                    path.unlink()

    # Ctrl-C
    @contextlib.contextmanager
    def catch_interrupt(self):
        """While active, SIGINT sets ``interrupted`` instead of raising at once, so `fit`
        can finish the current batch and write a checkpoint. A second Ctrl-C stops at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self.interrupted:
                raise KeyboardInterrupt
            self.interrupted = True

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def interrupt(self, state: TrainingState) -> TrainingInterrupted:
        """Write a checkpoint and return the exception that stops `fit` (print the hint)."""
        iterations = self.model.optimizer.iterations
        path = self.last_path
        if path is None or self._last_written_step != iterations:  # not written at this step
            path = self.save(state)
        hint = self.config.resume_hint or (
            f"model.fit(..., checkpoint=CheckpointConfig({str(self.config.directory)!r}, "
            "resume=True))"
        )
        message = (
            f"Training interrupted at epoch {state.epoch + 1}, step {state.step}; "
            f"checkpoint written to {path}.\nResume with: {hint}"
        )
        print(message, file=sys.stderr, flush=True)
        return TrainingInterrupted(path, message)
