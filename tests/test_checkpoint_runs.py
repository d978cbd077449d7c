"""Issue 8, item 12: checkpoint pruning keeps the checkpoints the current run just wrote, and
a directory never mixes two runs (so a resume never continues the wrong one)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from multilayer.engine.layers import Dense, Dropout, Input
from multilayer.errors import TrainingError
from multilayer.models.checkpoint import (
    CheckpointConfig,
    list_checkpoints,
    prune,
    read_checkpoint,
)
from multilayer.models.sequential import Sequential

X = np.random.default_rng(3).normal(size=(80, 6)).astype("float32")
Y = X[:, :3].argmax(axis=1)


def _model(seed):
    model = Sequential(
        [Input(shape=(6,)), Dense(8, activation="relu"), Dropout(0.2), Dense(3, "softmax")],
        seed=seed,
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def _fit(model, directory, epochs, resume=False, keep=2):
    config = CheckpointConfig(directory, every=1, unit="step", keep=keep, resume=resume)
    return model.fit(X, Y, batch_size=16, epochs=epochs, verbose=0, checkpoint=config)


def _names(directory):
    return [path.name for path in list_checkpoints(directory)]


def test_damaged_old_checkpoints_never_push_out_the_new_runs(tmp_path):
    _fit(_model(seed=1), tmp_path, epochs=4)  # an old run: steps 19 and 20 remain
    assert _names(tmp_path) == [
        "checkpoint-000000020.safetensors",
        "checkpoint-000000019.safetensors",
    ]
    for path in list_checkpoints(tmp_path):
        path.write_bytes(path.read_bytes()[:-10])  # every old checkpoint damaged

    _fit(_model(seed=2), tmp_path, epochs=1, resume=True)  # nothing valid: starts afresh
    # The new run's two newest checkpoints (steps 4 and 5) survive; the damaged files
    # were set aside, not left to sort as "newest".
    assert _names(tmp_path) == [
        "checkpoint-000000005.safetensors",
        "checkpoint-000000004.safetensors",
    ]
    assert sorted(p.name for p in tmp_path.glob("*.damaged")) == [
        "checkpoint-000000019.safetensors.damaged",
        "checkpoint-000000020.safetensors.damaged",
    ]
    # ... and a later resume continues the *new* run, exactly.
    reference = _model(seed=2)
    reference.fit(X, Y, batch_size=16, epochs=3, verbose=0)
    resumed = _model(seed=7)
    _fit(resumed, tmp_path, epochs=3, resume=True)
    assert resumed.parameters.values.tobytes() == reference.parameters.values.tobytes()


def test_a_fresh_run_refuses_a_directory_with_another_runs_checkpoints(tmp_path):
    _fit(_model(seed=1), tmp_path, epochs=4)
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    message = (
        f"{tmp_path} already holds checkpoints of another run (checkpoint-000000020.safetensors, "
        "checkpoint-000000019.safetensors): continue that run with resume=True, or delete them "
        "or choose another directory to start a new one"
    )
    model = _model(seed=2)
    initial = model.get_weights()
    with pytest.raises(TrainingError, match="^" + re.escape(message) + "$"):
        _fit(model, tmp_path, epochs=1)
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before
    assert all(np.array_equal(a, b) for a, b in zip(initial, model.get_weights(), strict=True))


def test_a_resumed_run_keeps_its_run_id_and_prunes_its_own_older_files(tmp_path):
    _fit(_model(seed=1), tmp_path, epochs=1, keep=3)
    first = {read_checkpoint(path).run_id for path in list_checkpoints(tmp_path)}
    assert len(first) == 1 and re.fullmatch("[0-9a-f]{32}", next(iter(first)))
    _fit(_model(seed=1), tmp_path, epochs=2, keep=3, resume=True)
    assert _names(tmp_path) == [f"checkpoint-{step:09d}.safetensors" for step in (10, 9, 8)]
    assert {read_checkpoint(path).run_id for path in list_checkpoints(tmp_path)} == first


def test_prune_only_deletes_the_runs_own_older_files(tmp_path):
    own = [tmp_path / f"checkpoint-{step:09d}.safetensors" for step in (1, 2, 3)]
    foreign = tmp_path / "checkpoint-000000999.safetensors"
    for path in [*own, foreign]:
        path.write_bytes(b"x")
    kept = prune(own[:2], own[2], keep=2)
    assert kept == own[1:]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in [*own[1:], foreign])
    assert prune(kept, own[2], keep=2) == own[1:]  # the same step written again: no loss
