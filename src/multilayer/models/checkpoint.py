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

Files are named ``checkpoint-{optimizer step:09d}.safetensors`` in the run directory; the
newest `CheckpointConfig.keep` are kept. Reading falls back from the newest file to older
ones when a file is damaged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from multilayer.errors import ModelFileError, TrainingError
from multilayer.models.saving import header_json, model_tensors, read_checked
from multilayer.utils.files import atomic_write_bytes

FORMAT = "multilayer.checkpoint"
FORMAT_VERSION = "1"
_METADATA_KEYS = {"format", "format_version", "model", "compile", "state", "run", "sha256"}
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


# -- the training state ------------------------------------------------------------------------
@dataclass
class TrainingState:
    """Where `fit` is: ``step`` batches of epoch ``epoch`` are done (0-based epoch).

    ``order`` is that epoch's sample order when ``step > 0`` (None at an epoch boundary);
    ``loss_sum``/``seen`` and ``metrics`` (each metric's ``get_state()``, a JSON-able dict;
    files written before read ``[total, count]``) are the partial epoch's running sums.
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
    model, directory: str | os.PathLike, state: TrainingState, run=None, path=None
) -> Path:
    """Write ``model``'s full training state to a new checkpoint file in ``directory``.

    Returns:
        the path written: ``path`` if given, else ``checkpoint-{optimizer step}.safetensors``.

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
    if not isinstance(info, dict) or set(info) != _STATE_KEYS:
        raise ModelFileError(f"{path}: the training state is malformed")
    model_config = header_json(metadata, "model", path)
    compile_config = header_json(metadata, "compile", path)
    run = header_json(metadata, "run", path) if "run" in metadata else {}
    order = tensors.pop(_ORDER, None)
    try:
        state = TrainingState(
            epoch=_count(info["epoch"]),
            step=_count(info["step"]),
            order=order,
            loss_sum=float(info["loss_sum"]),
            seen=_count(info["seen"]),
            metrics=[_metric_state(m) for m in info["metrics"]],
            history={str(k): [_logged(v) for v in values] for k, values in info["history"].items()},
            history_epochs=[_count(e) for e in info["history_epochs"]],
            batch_size=_count(info["batch_size"]),
            n_samples=_count(info["n_samples"]),
            shuffle=bool(info["shuffle"]),
        )
        iterations = _count(info["optimizer_iterations"])
    except (TypeError, ValueError, AttributeError) as error:
        raise ModelFileError(f"{path}: the training state is malformed ({error})") from None
    if (state.step > 0) != (order is not None) or (
        order is not None and order.shape != (state.n_samples,)
    ):
        raise ModelFileError(f"{path}: the partial epoch's sample order is missing or malformed")
    return Checkpoint(
        path=path,
        state=state,
        model_config=model_config,
        compile_config=compile_config,
        run=run if isinstance(run, dict) else {},
        tensors=tensors,
        optimizer_config=info["optimizer"],
        optimizer_iterations=iterations,
        rng=info["rng"],
        layer_rngs=info["layer_rngs"],
    )


def _logged(value) -> float | list[float]:
    """A history entry: a number, or a list of numbers (a metric per class or threshold)."""
    if isinstance(value, list):
        return [float(v) for v in value]
    return float(value)


def _metric_state(value) -> dict:
    """A metric's saved state: a dict (checked by the metric's own `set_state` on resume), or
    the ``[total, count]`` pair of older checkpoints."""
    if isinstance(value, dict):
        return value
    if isinstance(value, list) and len(value) == 2:
        return {"total": float(value[0]), "count": _count(value[1])}
    raise ValueError(f"expected a metric state, got {value!r}")


def _count(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a non-negative integer, got {value!r}")
    return value


def model_from_checkpoint(checkpoint: Checkpoint):
    """A new, compiled `Sequential` with the checkpoint's architecture and full state."""
    from multilayer.models.sequential import Sequential

    try:
        model = Sequential.from_config(checkpoint.model_config)
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
    if saved.get("name") != optimizer.name:
        raise ModelFileError(
            f"{path}: the checkpoint was trained with optimizer {saved.get('name')!r}, this "
            f"model is compiled with {optimizer.name!r}"
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
    learning_rate = saved.get("config", {}).get("learning_rate")
    if optimizer.schedule is None and isinstance(learning_rate, (int, float)):
        optimizer.learning_rate = learning_rate  # a callback may have changed it


def _set_generator(generator: np.random.Generator, state: dict) -> None:
    if state.get("bit_generator") != type(generator.bit_generator).__name__:
        raise ValueError(
            f"generator type {state.get('bit_generator')!r} differs from "
            f"{type(generator.bit_generator).__name__!r}"
        )
    generator.bit_generator.state = state


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
        """Write a checkpoint and prune old ones."""
        iterations = self.model.optimizer.iterations
        self.last_path = write_checkpoint(
            self.model, self.config.directory, state, run=self.config.run
        )
        self._last_written_step = iterations
        self._prune()
        return self.last_path

    def _prune(self) -> None:
        for old in list_checkpoints(self.config.directory)[self.config.keep :]:
            with contextlib.suppress(OSError):
                old.unlink()

    def restore(self, batch_size: int, n_samples: int, shuffle: bool) -> TrainingState | None:
        """Load the newest valid checkpoint into the model, or None if there is none.

        Raises:
            TrainingError: the checkpoint was written by a run with a different batch size,
                number of training samples or shuffle setting (resuming would not repeat it).
        """
        if not self.config.resume:
            return None
        self._remove_temporaries()
        checkpoint = latest_checkpoint(self.config.directory)
        if checkpoint is None:
            return None
        # Set damaged newer files aside: left in place they would sort as "newest" and
        # pruning would delete the good checkpoints this run writes.
        for path in list_checkpoints(self.config.directory):
            if path == checkpoint.path:
                break
            with contextlib.suppress(OSError):
                path.rename(path.with_name(path.name + ".damaged"))
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
        self.last_path = checkpoint.path
        self._last_written_step = checkpoint.optimizer_iterations
        return state

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
        fresh = self._last_written_step == iterations and self.last_path is not None
        path = self.last_path if fresh else self.save(state)
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
