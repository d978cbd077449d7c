"""What ``fit`` prints: a live progress bar per epoch on a terminal, one line per epoch elsewhere.

The live bar is drawn by `rich` (``pip install 'multilayer[progress]'``); without rich, or when
the output is not a terminal (a log file, CI), each epoch prints one line instead.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from multilayer.models.callbacks import Callback


def _format(value) -> str:
    """A number as ``0.1234``; an array (a metric per class or per threshold) as
    ``[0.1234 0.5678]``."""
    if np.ndim(value) == 0:
        return f"{value:.4f}"
    return "[" + " ".join(f"{v:.4f}" for v in np.ravel(value)) + "]"


def format_logs(logs: dict) -> str:
    return " - ".join(f"{key}: {_format(value)}" for key, value in logs.items())


def _rich_progress():
    try:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )
    except ImportError:
        return None
    return Progress(
        TextColumn("[bold]{task.description}"),
        MofNCompleteColumn(),
        BarColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[step_time]}"),
        TextColumn("{task.fields[metrics]}"),
        transient=False,
    )


class ProgressLogger(Callback):
    """verbose=1: live bar on a terminal (one line per epoch otherwise); verbose=2: one line."""

    def __init__(self, epochs: int, steps: int, verbose: int, stream=None):
        super().__init__()
        self.epochs, self.steps, self.verbose = epochs, steps, verbose
        self.stream = stream or sys.stdout
        live = verbose == 1 and getattr(self.stream, "isatty", lambda: False)()
        self.progress = _rich_progress() if live else None

    def on_train_begin(self, logs=None):
        if self.progress is not None:
            self.progress.start()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.perf_counter()
        self.seen = 0
        if self.progress is not None:
            self.task = self.progress.add_task(
                f"Epoch {epoch + 1}/{self.epochs}", total=self.steps, metrics="", step_time=""
            )

    def on_train_batch_end(self, batch, logs=None):
        self.seen = batch + 1
        if self.progress is not None and (batch % 10 == 0 or batch + 1 == self.steps):
            per_step = (time.perf_counter() - self.epoch_start) / self.seen
            self.progress.update(
                self.task,
                completed=self.seen,
                metrics=format_logs(logs or {}),
                step_time=f"{per_step * 1e3:.0f}ms/step",
            )

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self.epoch_start
        per_step = elapsed / max(self.seen, 1)
        if self.progress is not None:
            self.progress.update(
                self.task,
                completed=self.seen,
                metrics=format_logs(logs or {}),
                step_time=f"{per_step * 1e3:.0f}ms/step",
            )
            return
        print(
            f"Epoch {epoch + 1}/{self.epochs} - {self.seen}/{self.steps} - {elapsed:.1f}s - "
            f"{per_step * 1e3:.0f}ms/step - {format_logs(logs or {})}",
            file=self.stream,
            flush=True,
        )

    def on_train_end(self, logs=None):
        if self.progress is not None:
            self.progress.stop()
