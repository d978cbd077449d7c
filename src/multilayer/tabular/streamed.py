"""Training on a CSV/Parquet file too large to read at once: the streaming form of
:mod:`multilayer.tabular.training`.

    from multilayer.tabular.streamed import train_streamed

    result = train_streamed("big.parquet", "y", seed=0, output="runs/big")

The same run as ``train_table`` (the recipe's model, best epoch on a validation split, the
task's test metrics, the same run directory), but the file is never read whole: one pass
finds the rows, the column kinds and the target's classes (`scan_table`), one pass over the
training rows adapts the `FeatureSpace` (and the target's mean and standard deviation for
a regression), and training, validation and the test metrics read the file batch by batch
(`multilayer.data.streaming.TableBatches`). Memory: a chunk of the file, the shuffle buffer,
the model, and the test split's targets and outputs (one number or one row of
probabilities per test row).

What differs from ``train_table``: the test and validation rows are chosen by a hash of the
row index (a fixed share of the file up to sampling noise, not stratified), and the training
rows are shuffled by row group and a bounded buffer, not uniformly (see
:mod:`multilayer.data.streaming`). `STREAM_BYTES` is the file size from which ``mlp train``
streams by itself.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from multilayer.data import tables
from multilayer.data.streaming import TableBatches, TableScan, scan_table
from multilayer.recipes import Recipe
from multilayer.runs import new_run_path
from multilayer.tabular.features import FeatureSpace
from multilayer.tabular.spec import TableSpec
from multilayer.tabular.training import (
    DEFAULT_RECIPE,
    TableRunResult,
    best_epoch_callbacks,
    build_table_model,
    new_run_directory,
    run_config,
    run_metrics,
    save_run,
    table_recipe,
)

if TYPE_CHECKING:
    from multilayer.models.functional import Model

__all__ = [
    "STREAM_BYTES",
    "PreparedStreamedRun",
    "prepare_streamed_run",
    "should_stream",
    "train_streamed",
]

#: ``mlp train --data FILE`` streams a file at least this large (bytes on disk); a smaller
#: one is read into memory (``--stream``/``--no-stream`` decide instead).
STREAM_BYTES = 256 * 2**20
#: Rows of the file read at a time, and rows of a batch when adapting.
READ_ROWS = 65_536
#: Rows in the shuffle buffer of the training batches.
SHUFFLE_BUFFER = 65_536
#: Rows of a validation or test batch: the activations of a batch are held at once (65,536
#: rows through a 256-wide layer are 134 MB; measured peak 530 MB on 10 million rows).
EVAL_ROWS = 8_192


def should_stream(data: Any, stream: bool | None = None) -> bool:
    """Whether a table run on ``data`` streams: ``stream`` if given (True needs a CSV/Parquet
    path), else whether ``data`` is a path to a file of at least `STREAM_BYTES`."""
    is_path = isinstance(data, (str, Path))
    if stream:
        if not is_path:
            raise ValueError(f"streaming needs a CSV or Parquet file, not a {type(data).__name__}")
        tables.table_format(Path(data))  # TableError for another format
        return True
    if stream is None and is_path:
        path = Path(data)
        return path.is_file() and path.stat().st_size >= STREAM_BYTES
    return False


def _label(value: Any) -> Any:
    """A class label as a JSON scalar: whole floats as ints (1.0 -> 1), as train_table."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass
class PreparedStreamedRun:
    """A streamed table run ready to train (`prepare_streamed_run`); nothing written yet."""

    recipe: Recipe
    spec: TableSpec
    space: FeatureSpace
    model: Model
    train: TableBatches
    validation: TableBatches | None
    test: TableBatches
    seed: int
    output: Path
    source: dict[str, Any]
    flags: dict[str, Any]

    @property
    def steps_per_epoch(self) -> int:
        return len(self.train)

    @property
    def sizes(self) -> tuple[int, int, int]:
        """Rows of training, validation and test."""
        held = 0 if self.validation is None else self.validation.rows
        return self.train.rows, held, self.test.rows

    def run(self, verbose: int = 0, steps_per_epoch: int | None = None) -> TableRunResult:
        """Train (best epoch on the validation rows), test, write the run directory.
        ``steps_per_epoch`` bounds the batches of an epoch (a benchmark's short run)."""
        with new_run_directory(self.output) as run:
            callbacks = best_epoch_callbacks(self.recipe, self.spec, self.validation is not None)
            start = time.perf_counter()
            history = self.model.fit(
                self.train,
                epochs=self.recipe.epochs,
                steps_per_epoch=steps_per_epoch,
                validation_data=self.validation,
                callbacks=callbacks,
                verbose=verbose,
            )
            seconds = time.perf_counter() - start
            best = callbacks[0].best_epoch if callbacks else len(history.epoch) - 1
            # The test rows batch by batch: only their targets and outputs are kept.
            loss = self.model.evaluate(self.test, verbose=0, return_dict=True)["loss"]
            ys, outputs = [], []
            for x, y in self.test:
                ys.append(y)
                outputs.append(np.asarray(self.model.predict(x, verbose=0)))
            metrics = run_metrics(
                self.spec,
                loss,
                np.concatenate(ys),
                np.concatenate(outputs),
                history,
                seconds,
                best,
            )
            metrics["streamed"] = True
            samples = (
                self.train.rows,
                0 if self.validation is None else self.validation.rows,
                self.test.rows,
            )
            config = run_config(self.recipe, self.flags, self.seed, self.source, self.spec, samples)
            save_run(run, self.model, config, history, metrics)
        return TableRunResult(run, self.model, history, config, metrics)


def _spec(scan: TableScan, columns: list[str]) -> TableSpec:
    classes = [_label(c) for c in scan.classes] if scan.task != "regression" else []
    if scan.task == "binary" and scan.kinds.get(scan.target[0]) == "boolean":
        classes = [bool(c) for c in classes]
    return TableSpec(
        target=list(scan.target),
        task=scan.task,
        classes=list(scan.target) if scan.task == "multilabel" else classes,
        columns=columns,
        kinds={name: scan.kinds[name] for name in columns},
    )


def _adapt(space: FeatureSpace, train: TableBatches) -> tuple[float, float]:
    """Adapt ``space`` in one pass over the training rows; the targets' mean and (population)
    standard deviation from the same pass (Chan et al.'s parallel update)."""
    count, mean, m2 = 0, 0.0, 0.0

    def columns() -> Iterator[dict[str, np.ndarray]]:
        nonlocal count, mean, m2
        for x, y in train:
            values = np.asarray(y, dtype=np.float64).reshape(-1)
            n = len(values)
            batch_mean = float(values.mean())
            batch_m2 = float(((values - batch_mean) ** 2).sum())
            delta = batch_mean - mean
            total = count + n
            mean += delta * n / total
            m2 += batch_m2 + delta**2 * count * n / total
            count = total
            yield x

    space.adapt(columns())
    return mean, math.sqrt(m2 / count) if count else 0.0


def prepare_streamed_run(
    data: str | Path,
    target: str | list[str],
    *,
    test_data: str | Path | None = None,
    test_split: float = 0.2,
    task: str | None = None,
    recipe: str = DEFAULT_RECIPE,
    overrides: dict[str, Any] | None = None,
    seed: int | None = None,
    output: str | Path | None = None,
    runs_root: str | Path = "runs",
    read_rows: int = READ_ROWS,
    shuffle_buffer: int = SHUFFLE_BUFFER,
) -> PreparedStreamedRun:
    """Scan, split, adapt and build a streamed table run; write nothing.

    Arguments as `multilayer.tabular.training.prepare_table_run`, but ``data`` (and
    ``test_data``) must be CSV/Parquet paths. The test rows (``test_split``, unless
    ``test_data`` is given) and then the validation rows (the recipe's ``validation_split``
    of the rest) are chosen by a hash of the row index seeded by ``seed``.

    Raises:
        TableError: as ``prepare_table_run`` (a missing target column with a "did you
            mean", missing target values, one class, mismatched test columns ...).
        ValueError: a bad ``test_split``, an unknown recipe or override.
    """
    chosen, overrides = table_recipe(recipe, overrides)
    if test_data is None and not 0 < test_split < 1:
        raise ValueError(f"test_split must be in (0, 1), got {test_split!r}")
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    path = Path(data)
    names = [target] if isinstance(target, str) else list(target)
    scan = scan_table(path, names, task, read_rows)
    columns = [c for c in scan.columns if c not in names]
    if not columns:
        raise tables.TableError(
            f"{path} has no columns besides the target {names}: nothing to learn from"
        )
    spec = _spec(scan, columns)
    common: dict[str, Any] = {
        "columns": columns,
        "task": scan.task,
        "classes": scan.classes,
        "batch_size": chosen.batch_size,
        "split_seed": seed,
        "read_rows": read_rows,
    }
    held = 0.0 if test_data is not None else float(test_split)
    if test_data is not None:
        test_path = Path(test_data)
        test_scan = scan_table(test_path, names, scan.task, read_rows)
        tables.check_columns(list(scan.columns), list(test_scan.columns), str(test_path))
        test = TableBatches(
            test_path,
            names,
            shuffle=False,
            scan=test_scan,
            **{**common, "batch_size": min(read_rows, EVAL_ROWS)},
        )
    else:
        test = TableBatches(
            path,
            names,
            shuffle=False,
            scan=scan,
            hash_range=(0.0, held),
            **{**common, "batch_size": min(read_rows, EVAL_ROWS)},
        )
    validation = None
    start = held
    if chosen.validation_split:
        start = held + (1.0 - held) * float(chosen.validation_split)
        validation = TableBatches(
            path,
            names,
            shuffle=False,
            scan=scan,
            hash_range=(held, start),
            **{**common, "batch_size": min(read_rows, EVAL_ROWS)},
        )
    train = TableBatches(
        path,
        names,
        shuffle=True,
        shuffle_buffer=shuffle_buffer,
        seed=seed,
        scan=scan,
        hash_range=(start, 1.0) if start > 0 else None,
        **common,
    )
    space = FeatureSpace.from_kinds(
        spec.kinds, one_hot_max=int(chosen.extra.get("one_hot_max", 16)), seed=seed
    )
    adapting = TableBatches(
        path,
        names,
        shuffle=False,
        scan=scan,
        hash_range=train.hash_range,
        **{**common, "batch_size": read_rows},
    )
    mean, std = _adapt(space, adapting)
    # build_table_model takes the training targets for a regression's mean and standard
    # deviation: two values with exactly those (the streamed ones) stand for them.
    y_stats = np.array([mean - std, mean + std])
    model = build_table_model(space, spec, chosen, y_stats, len(train), seed=seed)
    source = {
        "name": str(data),
        "rows": scan.rows,
        "test_source": None if test_data is None else str(test_data),
        "test_split": None if test_data is not None else test_split,
        "streamed": True,
    }
    output = Path(output) if output is not None else new_run_path(runs_root, chosen.name)
    flags = {
        "data": source["name"],
        "target": names,
        "task": task,
        "test_data": source["test_source"],
        "test_split": source["test_split"],
        "stream": True,
        **{k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
    }
    return PreparedStreamedRun(
        recipe=chosen,
        spec=spec,
        space=space,
        model=model,
        train=train,
        validation=validation,
        test=test,
        seed=seed,
        output=output,
        source=source,
        flags=flags,
    )


def train_streamed(data: str | Path, target: str | list[str], **options: Any) -> TableRunResult:
    """`prepare_streamed_run` then `PreparedStreamedRun.run` (``verbose`` and
    ``steps_per_epoch`` go to ``run``)."""
    verbose = options.pop("verbose", 0)
    steps = options.pop("steps_per_epoch", None)
    return prepare_streamed_run(data, target, **options).run(verbose=verbose, steps_per_epoch=steps)
