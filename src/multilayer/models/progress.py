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


def _rich_progress(stream, epochs: int, steps: int):
    """A rich Progress on ``stream`` for the epoch being trained, or None without rich.

    Only the running epoch has a live row; its fixed columns never shrink, and the metrics
    (the only column that may be cut, with an ellipsis) come last, so at 80 columns the row
    still reads ``Epoch 2/4 37/106 ━━━━ 0:00:01 24ms/step loss: ...``. Finished epochs are
    printed as whole lines above it (see `ProgressLogger.on_epoch_end`).
    """
    try:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.table import Column
    except ImportError:
        return None

    def fixed(width: int) -> Column:
        return Column(width=width, no_wrap=True)

    return Progress(
        TextColumn("[bold]{task.description}", table_column=fixed(len(f"Epoch {epochs}/{epochs}"))),
        MofNCompleteColumn(table_column=fixed(2 * len(str(steps)) + 1)),
        BarColumn(bar_width=20),
        TimeElapsedColumn(),
        TextColumn("{task.fields[step_time]}", table_column=fixed(10)),
        TextColumn(
            "{task.fields[metrics]}",
            markup=False,
            table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1),
        ),
        console=Console(file=stream, highlight=False),
        transient=True,
    )


def epoch_line(epoch: int, epochs: int, seen: int, steps: int, elapsed: float, logs) -> str:
    """The line a finished epoch leaves: ``Epoch 1/4 - 106/106 - 5.1s - 48ms/step - loss: ...``."""
    per_step = elapsed / max(seen, 1)
    return (
        f"Epoch {epoch + 1}/{epochs} - {f'{seen}/{steps}' if steps else seen} - {elapsed:.1f}s - "
        f"{per_step * 1e3:.0f}ms/step - {format_logs(logs or {})}"
    )


class ProgressLogger(Callback):
    """verbose=1: live bar on a terminal (one line per epoch otherwise); verbose=2: one line."""

    def __init__(self, epochs: int, steps: int, verbose: int, stream=None):
        super().__init__()
        self.epochs, self.steps, self.verbose = epochs, steps, verbose
        self.stream = stream or sys.stdout
        live = verbose == 1 and getattr(self.stream, "isatty", lambda: False)()
        self.progress = _rich_progress(self.stream, epochs, steps) if live else None

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
        line = epoch_line(epoch, self.epochs, self.seen, self.steps, elapsed, logs)
        if self.progress is not None:
            # The finished epoch leaves one whole line (wrapped, never cut) above the live
            # row, which then starts over for the next epoch.
            self.progress.remove_task(self.task)
            self.progress.console.print(line, markup=False, highlight=False)
            return
        print(line, file=self.stream, flush=True)

    def on_train_end(self, logs=None):
        if self.progress is not None:
            self.progress.stop()
