"""The checkpoint file format: everything needed to continue a run exactly where it stopped.

This module only writes, reads and checks files; *when* to write them, how many to keep
and how to resume is the policy of `multilayer.models.backup` (`BackupAndRestore`, the
callback ``fit(checkpoint=...)`` adds). Its names (`CheckpointConfig`, `TrainingInterrupted`,
`model_from_checkpoint`, ...) are re-exported here.

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

Every object writes its own state: the model its weights (``named_weights``) and generators
(``get_state``), the optimizer its slots, step count and learning rate (``get_state``), the
trainer its loop position and running sums (``training_state``).

Files are named ``checkpoint-{optimizer step:09d}.safetensors`` in the run directory, and
each holds the id of the run that wrote it (header ``run_id``; a resumed run keeps the id).
`latest_checkpoint` falls back from the newest file to older ones when a file is damaged.
Everything a file declares is checked (`multilayer.models.file_checks`) before it is used.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from multilayer.engine import optimizers as optimizer_module
from multilayer.errors import ModelFileError
from multilayer.models import file_checks
from multilayer.models.loop import TrainingState
from multilayer.models.saving import header_json, model_tensors, read_checked
from multilayer.utils.files import atomic_write_bytes

#: names of the policy module, importable from here as before the split
_POLICY = {
    "BackupAndRestore",
    "CheckpointConfig",
    "TrainingInterrupted",
    "model_from_checkpoint",
    "parse_every",
    "prune",
    "restore",
}


def __getattr__(name: str):
    if name in _POLICY:
        from multilayer.models import backup

        return getattr(backup, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
#: a layer's path in ``layer_rngs``: its index, or indices through nested models ("0.3")
_LAYER_PATH = re.compile(r"^\d+(\.\d+)*$")


# -- the file -------------------------------------------------------------------------------
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
    optimizer_state = optimizer.get_state()
    for slot, value in optimizer_state["slots"].items():
        tensors[f"optimizer.{slot}"] = value
    if state.order is not None:
        tensors[_ORDER] = np.ascontiguousarray(state.order, dtype=np.int64)
    model_state = model.get_state()
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
        "optimizer_iterations": optimizer_state["iterations"],
        "rng": model_state["rng"],
        "layer_rngs": model_state["layer_rngs"],
    }
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": json.dumps(model.get_config()),
        "compile": json.dumps(model.compile_config),
        "state": json.dumps(info),
        "run": json.dumps(run or {}),
        "sha256": _digest(tensors),
    }
    if run_id is not None:
        metadata["run_id"] = run_id
    if path is None:
        path = checkpoint_path(directory, optimizer_state["iterations"])
    path = Path(path)
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
    if optimizer_name(info["optimizer"]) is None:
        raise ValueError("optimizer must be an object with a name")
    if not isinstance(info["optimizer"].get("config", {}), dict):
        raise ValueError("optimizer config must be an object")
    file_checks.check_finite_json(info["optimizer"], path, "state.optimizer")
    if not isinstance(info["rng"], dict) or not isinstance(info["layer_rngs"], dict):
        raise ValueError("rng and layer_rngs must be objects")
    for key, value in info["layer_rngs"].items():
        if not _LAYER_PATH.match(key) or not isinstance(value, dict):
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


def optimizer_name(config: object) -> str | None:
    """The optimizer a saved config names: ``class_name`` of ``{"class_name": "Adam",
    "config": {...}}`` (the registry's shape), or ``name`` of the older ``{"name": "adam",
    "config": {...}}`` that checkpoints written before it hold; None if it names none."""
    if not isinstance(config, dict):
        return None
    name = config.get("class_name", config.get("name"))
    return name if isinstance(name, str) else None


def optimizer_class(config: object) -> type[Optimizer] | None:
    """The registered optimizer class a saved config names (either shape), or None."""
    from multilayer.engine import optimizers as optimizer_module

    name = optimizer_name(config)
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


def read_run_id(path: Path) -> str | None:
    """The run id in a checkpoint's header (None for files without one or unreadable)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            run_id = (handle.metadata() or {}).get("run_id")
    except Exception:  # a damaged file belongs to no run
        return None
    return run_id if isinstance(run_id, str) and _RUN_ID.match(run_id) else None
