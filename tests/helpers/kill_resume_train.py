"""A small, deterministic training run for tests/test_kill_resume.py, meant to be killed.

Usage::

    python kill_resume_train.py RUN_DIR OUT_PREFIX [--no-checkpoint] [--pause PHASE:K]
                                [--functional]

It trains a 32-64-10 MLP with dropout (so the random generator matters) on fixed synthetic
data for 4 epochs of 38 batches, writing a checkpoint every 10 optimizer steps into RUN_DIR
and resuming from the newest valid one if there is any. After every batch it prints
``step N`` (N = optimizer steps done) so a test can kill it at a known point. At the end it
writes OUT_PREFIX.weights.npy (the flat parameter vector) and OUT_PREFIX.history.json, and
prints ``DONE``. Ctrl-C (SIGINT) makes fit write a checkpoint; the script then exits with 130.

``--functional`` trains a functional model with two branches instead (the same 32-64-10
stack with dropout, plus a skip path Dense(8) from the input, joined by Concatenate).

``--pause PHASE:K`` freezes the K-th checkpoint write (counting from 1 in this process)
and prints ``PAUSED PHASE``, so the test can SIGKILL it in the middle of the write:
``partial`` after half the bytes reached the temporary file, ``fsync`` after all bytes
were written but before fsync, ``replace`` after fsync but before the rename.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

import multilayer.utils.files as files_module
from multilayer.engine.layers import Concatenate, Dense, Dropout, Input
from multilayer.models import checkpoint as checkpoint_module
from multilayer.models.callbacks import Callback
from multilayer.models.checkpoint import CheckpointConfig, TrainingInterrupted
from multilayer.models.functional import Model
from multilayer.models.sequential import Sequential

EPOCHS, BATCH, SAMPLES, STEP_DELAY = 4, 32, 1200, 0.004


class _Pause:
    """Freezes one checkpoint write at a chosen phase (see the module docstring)."""

    def __init__(self, phase: str, which: int):
        self.phase, self.which, self.writes = phase, which, 0

    def freeze(self, phase: str) -> None:
        if phase == self.phase and self.writes == self.which:
            print(f"PAUSED {phase}", flush=True)
            time.sleep(60)

    def install(self) -> None:
        real_write = checkpoint_module.atomic_write_bytes
        pause = self

        def counting_write(path, data):
            pause.writes += 1
            return real_write(path, data)

        class _Handle:
            def __init__(self, handle):
                self._handle = handle

            def write(self, data):
                if pause.phase == "partial" and pause.writes == pause.which:
                    self._handle.write(data[: len(data) // 2])
                    self._handle.flush()
                    pause.freeze("partial")
                return self._handle.write(data)

            def __getattr__(self, name):
                return getattr(self._handle, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return self._handle.__exit__(*exc)

        class _Os:
            # Only multilayer.utils.files sees this proxy; everything else uses the real os.
            def __getattr__(self, name):
                return getattr(os, name)

            def fdopen(self, *args, **kwargs):
                return _Handle(os.fdopen(*args, **kwargs))

            def fsync(self, fd):
                pause.freeze("fsync")
                return os.fsync(fd)

            def replace(self, src, dst):
                pause.freeze("replace")
                return os.replace(src, dst)

        checkpoint_module.atomic_write_bytes = counting_write
        files_module.os = _Os()


class _Steps(Callback):
    def on_train_batch_end(self, batch, logs=None):
        print(f"step {self.model.optimizer.iterations}", flush=True)
        time.sleep(STEP_DELAY)  # leaves the test time to kill between known steps


def main(argv: list[str]) -> int:
    run_dir, out = Path(argv[0]), argv[1]
    if "--pause" in argv:
        phase, which = argv[argv.index("--pause") + 1].split(":")
        _Pause(phase, int(which)).install()
    data = np.random.default_rng(0)
    x = data.normal(size=(SAMPLES, 32)).astype("float32")
    y = (x[:, :10].argmax(axis=1) + (x[:, 10] > 1)) % 10
    if "--functional" in argv:
        inputs = Input(shape=(32,))
        deep = Dropout(0.25)(Dense(64, activation="relu")(inputs))
        joined = Concatenate()([deep, Dense(8, activation="tanh")(inputs)])
        model = Model(inputs, Dense(10, activation="softmax")(joined), seed=7)
    else:
        model = Sequential(
            [
                Input(shape=(32,)),
                Dense(64, activation="relu"),
                Dropout(0.25),
                Dense(10, activation="softmax"),
            ],
            seed=7,
        )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    checkpoint = None
    if "--no-checkpoint" not in argv:
        checkpoint = CheckpointConfig(run_dir, every=10, unit="step", keep=2, resume=True)
    try:
        history = model.fit(
            x,
            y,
            batch_size=BATCH,
            epochs=EPOCHS,
            verbose=0,
            validation_split=0.1,
            callbacks=[_Steps()],
            checkpoint=checkpoint,
        )
    except TrainingInterrupted:
        return 130
    np.save(f"{out}.weights.npy", model.parameters.values, allow_pickle=False)
    Path(f"{out}.history.json").write_text(json.dumps(history.history))
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
