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

Files are named ``checkpoint-{optimizer step:09d}.safetensors`` in the run directory;
`latest_checkpoint` falls back from the newest file to older ones when a file is damaged.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from multilayer.engine import optimizers as optimizer_module
from multilayer.errors import ModelFileError
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
    "restore",
}


def __getattr__(name: str):
    if name in _POLICY:
        from multilayer.models import backup

        return getattr(backup, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
            metrics=[[float(t), _count(c)] for t, c in info["metrics"]],
            history={str(k): [float(v) for v in values] for k, values in info["history"].items()},
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


def _count(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a non-negative integer, got {value!r}")
    return value
