"""Checkpoints in one process: contents, exact resume, pruning, damaged files, full disks,
unwritable directories, divergence, and ModelCheckpoint's full-state mode.

Killed processes are in test_kill_resume.py."""

from __future__ import annotations

import contextlib
import errno
import re
import subprocess
import uuid

import numpy as np
import pytest

import multilayer.utils.files as files_module
from multilayer.engine.layers import Dense, Dropout, Input
from multilayer.errors import ModelFileError, TrainingError
from multilayer.models.callbacks import Callback, ModelCheckpoint
from multilayer.models.checkpoint import (
    CheckpointConfig,
    latest_checkpoint,
    list_checkpoints,
    model_from_checkpoint,
    parse_every,
    read_checkpoint,
)
from multilayer.models.sequential import Sequential


def _data(n=300, features=12, classes=4):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, features)).astype("float32")
    return x, x[:, :classes].argmax(axis=1)


def _model(optimizer="adam", seed=5):
    model = Sequential(
        [
            Input(shape=(12,)),
            Dense(16, activation="relu"),
            Dropout(0.3),
            Dense(4, activation="softmax"),
        ],
        seed=seed,
    )
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _fit(model, checkpoint=None, epochs=3, **kwargs):
    x, y = _data()
    return model.fit(
        x,
        y,
        batch_size=32,
        epochs=epochs,
        verbose=0,
        validation_split=0.2,
        checkpoint=checkpoint,
        **kwargs,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", (1, "epoch")),
        ("3e", (3, "epoch")),
        ("500s", (500, "step")),
        (" 20 steps", (20, "step")),
    ],
)
def test_parse_every_accepts_epochs_and_steps(text, expected):
    assert parse_every(text) == expected


@pytest.mark.parametrize("text", ["0", "-1", "s", "5x", "1.5", ""])
def test_parse_every_refuses_anything_else(text):
    with pytest.raises(ValueError, match="checkpoint frequency"):
        parse_every(text)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"every": 0}, "every"),
        ({"keep": 0}, "keep"),
        ({"unit": "hour"}, "unit"),
        ({"every": 1.5}, "every"),
    ],
)
def test_checkpoint_config_validation(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        CheckpointConfig(tmp_path, **kwargs)


def test_checkpointing_does_not_change_training(tmp_path):
    plain, checkpointed = _model(), _model()
    history = _fit(plain)
    history_c = _fit(checkpointed, CheckpointConfig(tmp_path, every=4, unit="step"))
    assert plain.parameters.values.tobytes() == checkpointed.parameters.values.tobytes()
    assert history.history == history_c.history


def test_mid_epoch_checkpoint_holds_the_full_training_state(tmp_path):
    model = _model()
    _fit(model, CheckpointConfig(tmp_path, every=5, unit="step", keep=10), epochs=1)
    # 240 training samples / 32 = 8 steps: checkpoints after step 5 and at the epoch end (8)
    assert [p.name for p in list_checkpoints(tmp_path)] == [
        "checkpoint-000000008.safetensors",
        "checkpoint-000000005.safetensors",
    ]
    checkpoint = read_checkpoint(tmp_path / "checkpoint-000000005.safetensors")
    state = checkpoint.state
    assert (state.epoch, state.step, state.seen, state.batch_size, state.n_samples) == (
        0,
        5,
        160,
        32,
        240,
    )
    assert sorted(state.order) == list(range(240))  # the epoch's permutation
    assert set(checkpoint.tensors) == {
        "layers.1.kernel", "layers.1.bias", "layers.3.kernel", "layers.3.bias", "optimizer.m", "optimizer.v",
    }  # fmt: skip
    assert checkpoint.optimizer_iterations == 5
    assert checkpoint.rng["bit_generator"] == "PCG64"
    end = read_checkpoint(tmp_path / "checkpoint-000000008.safetensors").state
    assert (end.epoch, end.step, end.order) == (1, 0, None)
    assert end.history_epochs == [0] and set(end.history) == {
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
    }


@pytest.mark.parametrize(
    ("every", "unit", "drop"), [(1, "epoch", 1), (3, "step", 2), (7, "step", 1)]
)
def test_resume_from_any_checkpoint_is_bitwise_identical(tmp_path, every, unit, drop):
    reference = _model()
    expected = _fit(reference, epochs=4)
    _fit(_model(), CheckpointConfig(tmp_path, every=every, unit=unit, keep=5), epochs=4)
    for path in list_checkpoints(tmp_path)[:drop]:  # as if the run had been killed earlier
        path.unlink()
    resumed = _model(seed=99)  # a different seed: everything must come from the checkpoint
    history = _fit(
        resumed, CheckpointConfig(tmp_path, every=every, unit=unit, resume=True), epochs=4
    )
    assert resumed.parameters.values.tobytes() == reference.parameters.values.tobytes()
    assert history.history == expected.history
    assert history.epoch == [0, 1, 2, 3]


def test_resume_can_extend_a_finished_run(tmp_path):
    reference = _model()
    _fit(reference, epochs=3)
    _fit(_model(), CheckpointConfig(tmp_path), epochs=2)
    resumed = _model()
    history = _fit(resumed, CheckpointConfig(tmp_path, resume=True), epochs=3)
    assert resumed.parameters.values.tobytes() == reference.parameters.values.tobytes()
    assert history.epoch == [0, 1, 2]


def test_keep_prunes_old_checkpoints(tmp_path):
    _fit(_model(), CheckpointConfig(tmp_path, every=2, unit="step", keep=3))
    assert len(list_checkpoints(tmp_path)) == 3


def test_model_from_checkpoint_rebuilds_a_trained_model(tmp_path):
    model = _model()
    _fit(model, CheckpointConfig(tmp_path))
    restored = model_from_checkpoint(latest_checkpoint(tmp_path))
    x, _ = _data()
    assert np.array_equal(restored.predict(x), model.predict(x))
    assert restored.optimizer.iterations == model.optimizer.iterations
    assert restored.rng.bit_generator.state == model.rng.bit_generator.state


def test_damaged_checkpoints_are_refused_and_skipped(tmp_path, capsys):
    _fit(_model(), CheckpointConfig(tmp_path, every=2, unit="step", keep=3))
    newest, middle, oldest = list_checkpoints(tmp_path)
    newest.write_bytes(newest.read_bytes()[:-100])  # truncated
    data = bytearray(middle.read_bytes())
    data[-1] ^= 1  # one bit flipped in the tensor data
    middle.write_bytes(bytes(data))
    for path, match in ((newest, "not a valid"), (middle, "checksum")):
        with pytest.raises(ModelFileError, match=match):
            read_checkpoint(path)
    assert latest_checkpoint(tmp_path).path == oldest
    assert "skipping damaged checkpoint" in capsys.readouterr().err


def test_a_model_file_is_not_a_checkpoint(tmp_path):
    model = _model()
    _fit(model)
    model.save(tmp_path / "checkpoint-000000001.safetensors")
    with pytest.raises(ModelFileError, match="not a multilayer checkpoint"):
        read_checkpoint(tmp_path / "checkpoint-000000001.safetensors")
    assert latest_checkpoint(tmp_path) is None


@pytest.mark.parametrize(
    ("change", "match"),
    [({"batch_size": 16}, "batch_size"), ({"shuffle": False}, "shuffle")],
)
def test_resume_refuses_a_different_run(tmp_path, change, match):
    x, y = _data()
    _model().fit(x, y, batch_size=32, epochs=1, verbose=0, checkpoint=CheckpointConfig(tmp_path))
    arguments = {"batch_size": 32, "shuffle": True, **change}
    with pytest.raises(TrainingError, match=match):
        _model().fit(
            x,
            y,
            epochs=2,
            verbose=0,
            checkpoint=CheckpointConfig(tmp_path, resume=True),
            **arguments,
        )


def test_resume_refuses_another_architecture(tmp_path):
    _fit(_model(), CheckpointConfig(tmp_path), epochs=1)
    other = Sequential(
        [Input(shape=(12,)), Dense(8, activation="relu"), Dense(4, activation="softmax")]
    )
    other.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    with pytest.raises(ModelFileError, match="does not fit this model"):
        _fit(other, CheckpointConfig(tmp_path, resume=True))


def test_resume_without_checkpoint_starts_from_scratch(tmp_path):
    reference, fresh = _model(), _model()
    _fit(reference)
    _fit(fresh, CheckpointConfig(tmp_path / "new", resume=True))
    assert fresh.parameters.values.tobytes() == reference.parameters.values.tobytes()


# -- disks that fail --------------------------------------------------------------------------
@contextlib.contextmanager
def _tmpfs(tmp_path, options):
    """A tiny tmpfs mounted on a fresh directory (root only); skips the test otherwise."""
    mountpoint = tmp_path / f"mnt-{uuid.uuid4().hex[:8]}"
    mountpoint.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mountpoint)], capture_output=True
    )
    if result.returncode != 0:  # pytest's -ra (pyproject.toml) prints this reason in CI
        pytest.skip(
            "disk-full test not run: cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN; "
            f"CI runs as root): {result.stderr.decode().strip()}"
        )
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=False)


def test_full_disk_fails_clearly_and_keeps_the_last_good_checkpoint(tmp_path):
    with _tmpfs(tmp_path, "size=256k") as disk:
        model = _model()
        _fit(model, CheckpointConfig(disk / "run"), epochs=1)
        (good,) = list_checkpoints(disk / "run")
        before = good.read_bytes()
        filler = disk / "filler"
        with contextlib.suppress(OSError), open(filler, "wb") as handle:
            while True:
                handle.write(b"\0" * 4096)
                handle.flush()
        with pytest.raises(
            OSError, match="cannot write .*checkpoint-.*No space left on device"
        ) as info:
            _fit(model, CheckpointConfig(disk / "run", resume=True), epochs=2)
        assert info.value.errno == errno.ENOSPC
        assert good.read_bytes() == before
        assert not list((disk / "run").glob(".*.tmp"))


def test_ci_prints_why_the_disk_full_test_was_skipped(tmp_path):
    """Where no tmpfs can be mounted, the skip and its reason appear in the test summary
    (``-ra`` in pyproject.toml's addopts), so CI shows that the test did not run."""
    import os
    import sys
    from pathlib import Path

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "mount").write_text("#!/bin/sh\necho 'mount: only root can do that' >&2\nexit 1\n")
    (fake / "mount").chmod(0o755)
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
         "tests/test_checkpoint.py::test_full_disk_fails_clearly_and_keeps_the_last_good_checkpoint"],
        cwd=root,
        env={**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(
        r"SKIPPED \[1\] tests/test_checkpoint.py:\d+: disk-full test not run: cannot mount a "
        r"tmpfs here \(needs root or CAP_SYS_ADMIN; CI runs as root\): mount: only root can do that",
        result.stdout,
    ), result.stdout


def test_failing_fsync_leaves_no_partial_file(tmp_path, monkeypatch):
    model = _model()
    _fit(model, CheckpointConfig(tmp_path), epochs=1)
    (good,) = list_checkpoints(tmp_path)
    before = good.read_bytes()

    class _Os:
        def __getattr__(self, name):
            import os

            return getattr(os, name)

        def fsync(self, fd):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files_module, "os", _Os())
    with pytest.raises(OSError, match="No space left on device"):
        _fit(model, CheckpointConfig(tmp_path, resume=True), epochs=2)
    assert list(tmp_path.iterdir()) == [good]
    assert good.read_bytes() == before


def test_read_only_directory_fails_clearly(tmp_path):
    with _tmpfs(tmp_path, "size=64k,ro") as readonly, pytest.raises(OSError, match="Read-only"):
        _fit(_model(), CheckpointConfig(readonly / "run"), epochs=1)


def test_directory_under_a_file_fails_clearly(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(OSError, match="cannot create the checkpoint directory"):
        _fit(_model(), CheckpointConfig(tmp_path / "file" / "run"), epochs=1)


# -- divergence -------------------------------------------------------------------------------
class _RecordWeights(Callback):
    def on_train_batch_begin(self, batch, logs=None):
        self.before = self.model.parameters.values.copy()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_stops_with_a_clear_message_and_keeps_the_last_good_weights():
    model = Sequential([Input(shape=(12,)), Dense(16, activation="relu"), Dense(4)], seed=0)
    model.compile(optimizer={"name": "sgd", "config": {"learning_rate": 1e20}}, loss="mse")
    x, _ = _data()
    recorder = _RecordWeights()
    with pytest.raises(TrainingError, match="training diverged.*keeps the weights from before"):
        model.fit(x * 1e3, np.ones((len(x), 4)), epochs=5, verbose=0, callbacks=[recorder])
    assert np.isfinite(model.parameters.values).all()
    assert model.parameters.values.tobytes() == recorder.before.tobytes()


# -- ModelCheckpoint ----------------------------------------------------------------------------
def test_model_checkpoint_every_n_batches(tmp_path):
    callback = ModelCheckpoint(str(tmp_path / "m-{epoch}-{batch}.safetensors"), save_freq=3)
    _fit(_model(), callbacks=[callback], epochs=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m-1-3.safetensors", "m-1-6.safetensors"]


def test_model_checkpoint_with_training_state(tmp_path):
    model = _model()
    callback = ModelCheckpoint(
        str(tmp_path / "state-{epoch}.safetensors"), save_training_state=True
    )
    _fit(model, callbacks=[callback], epochs=2)
    checkpoint = read_checkpoint(tmp_path / "state-2.safetensors")
    assert (checkpoint.state.epoch, checkpoint.optimizer_iterations) == (2, 16)
    restored = model_from_checkpoint(checkpoint)
    assert restored.parameters.values.tobytes() == model.parameters.values.tobytes()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"save_freq": 0}, "save_freq"),
        ({"save_freq": 5, "save_training_state": True}, "save_training_state"),
    ],
)
def test_model_checkpoint_validation(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ModelCheckpoint(str(tmp_path / "m.safetensors"), **kwargs)
