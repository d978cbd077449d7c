"""Predictions and metrics of a table model on new rows: what ``mlp predict`` and
``mlp evaluate`` do with a run trained on a table.

`predict_table` gives one output row per input row, in order:

- ``prediction``: the predicted class label, of the type the training target had (text,
  integer, number, true/false), or the predicted value for a regression;
- for classification, ``proba_<class>``: the probability of each class, in the order of
  ``spec.classes`` (binary: both classes; they sum to 1);
- for multi-label, ``prediction_<label>`` (0 or 1) and ``proba_<label>`` per label column
  instead.

Input is a CSV or Parquet file (read in batches, memory bounded by one batch), a
:class:`~multilayer.data.tables.Table` or a pandas/polars DataFrame. It needs every column the
model was trained on (a missing one is named, with a close match if there is one); other
columns, such as the target, are ignored. `write_predictions` streams the predictions into a
``.csv`` or ``.parquet`` file, chosen by its extension.

`evaluate_table` (and `test_metrics`, which ``mlp train`` calls for its test split) compute
:func:`multilayer.tabular.metrics.task_metrics` over a table that has the target column(s).
"""

from __future__ import annotations

import contextlib
import difflib
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from multilayer.data.tables import BATCH_ROWS, Table, TableError, from_frame, is_frame
from multilayer.errors import DataError
from multilayer.runs import RunDir
from multilayer.tabular.metrics import THRESHOLD, task_metrics
from multilayer.tabular.spec import TableSpec

__all__ = [
    "OUTPUT_FORMATS",
    "evaluate_table",
    "load_table_run",
    "model_table_spec",
    "output_format",
    "prediction_columns",
    "predict_batches",
    "predict_table",
    "table_outputs",
    "target_values",
    "targets_and_outputs",
    "test_metrics",
    "write_predictions",
]

#: File extensions `write_predictions` writes, and the format of each.
OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet"}

TableSource = str | Path | Table | Any  # Any: a pandas or polars DataFrame


def model_table_spec(model: Any) -> TableSpec | None:
    """The :class:`TableSpec` a table model carries in its ``training_info`` (written by
    table training), or None. Raises DataError if it is malformed."""
    info = getattr(model, "training_info", None)
    if not isinstance(info, dict) or "table" not in info:
        return None
    return TableSpec.from_config(info["table"])


def load_table_run(path: Any) -> tuple[Any, TableSpec]:
    """The model and :class:`TableSpec` of a run directory (or a model file) trained on a
    table: the spec from the run's config.json, else from the model's ``training_info``.

    Raises:
        FileNotFoundError / ModelFileError: no model at ``path``.
        DataError: a model that was not trained on a table.
    """
    from multilayer.runs import resolve_model_path

    model_file, run = resolve_model_path(path.path if isinstance(path, RunDir) else path)
    spec = run.table_spec() if run is not None else None
    model = load_model_file(model_file)
    spec = spec or model_table_spec(model)
    if spec is None:
        raise DataError(
            f"{path} was not trained on a table (no 'table' entry in its config.json or "
            "its model's training_info)"
        )
    return model, spec


def load_model_file(path: Path) -> Any:
    from multilayer.models import load_model

    return load_model(path, compile=False)


def _model_and_spec(run_or_model: Any, spec: TableSpec | None) -> tuple[Any, TableSpec]:
    if isinstance(run_or_model, (str, Path, RunDir)):
        model, recorded = load_table_run(run_or_model)
        return model, spec or recorded
    spec = spec or model_table_spec(run_or_model)
    if spec is None:
        raise ValueError(
            "give the TableSpec of the model (it has none in its training_info), or pass its "
            "run directory instead"
        )
    return run_or_model, spec


def _batches(table: TableSource, batch_rows: int) -> Iterator[Table]:
    """The table in batches of at most ``batch_rows`` rows (a file is read as it goes: CSV in
    blocks of about a megabyte, Parquet in ``batch_rows`` rows)."""
    if isinstance(table, (str, Path)):
        from multilayer.data.tables import iter_batches

        rows = 0
        for block in iter_batches(table, batch_rows):
            rows += block.rows
            yield from _split(block, batch_rows)
        if rows == 0:
            raise TableError(f"{table} has a header but no rows")
        return
    if is_frame(table):
        table = from_frame(table, check=False)  # rows to predict may be few and incomplete
    if not isinstance(table, Table):
        raise TypeError(
            "expected a CSV or Parquet path, a Table or a pandas/polars DataFrame, "
            f"got {type(table).__name__}"
        )
    if table.rows == 0:
        raise TableError(f"{table.source} has no rows")
    yield from _split(table, batch_rows)


def _split(table: Table, batch_rows: int) -> Iterator[Table]:
    if table.rows <= batch_rows:
        if table.rows:
            yield table
        return
    names = table.column_names
    booleans = [n for n in names if table.kind(n) == "boolean"]
    for start in range(0, table.rows, batch_rows):
        part = {n: table.column(n)[start : start + batch_rows] for n in names}
        yield Table(part, table.source, booleans)


def _missing_columns(spec: TableSpec, available: Sequence[str], source: str) -> TableError:
    missing = [name for name in spec.columns if name not in available]
    hints = []
    for name in missing:
        close = difflib.get_close_matches(name, available, n=1, cutoff=0.6)
        if close:
            hints.append(f"{name!r} -> {close[0]!r}?")
    return TableError(
        f"{source} does not have the columns training used: missing {missing}; "
        f"it has {list(available)}" + (f"; did you mean {', '.join(hints)}" if hints else "")
    )


def _feature(table: Table, name: str, kind: str) -> np.ndarray:
    """One input column in the form the model takes (see :mod:`multilayer.tabular`)."""
    values = table.column(name)
    if kind == "categorical":
        if values.dtype == object:
            return values
        # Read as numbers here (digits only, or all missing in this batch): text again, as
        # pyarrow would have read "7" (integral numbers without ".0").
        return np.asarray(
            [
                None if np.isnan(v) else (str(int(v)) if float(v).is_integer() else repr(v))
                for v in values.tolist()
            ],
            dtype=object,
        )
    if values.dtype == object:  # text where training saw numbers
        numbers = []
        for row, value in enumerate(values.tolist()):
            try:
                numbers.append(np.nan if value is None else float(value))
            except ValueError:
                raise TableError(
                    f"column {name!r} of {table.source} has the non-numeric value {value!r} "
                    f"(row {row + 1} of a batch of {table.rows}), but the model was trained "
                    f"on it as {kind} values"
                ) from None
        return np.asarray(numbers, dtype=np.float64)  # numbers written as text, or all missing
    return values


def table_outputs(model: Any, table: Table, spec: TableSpec) -> np.ndarray:
    """The model's outputs for the rows of ``table``: (rows, spec.n_outputs) float64.

    Raises TableError naming the columns training used that ``table`` lacks, or a column
    whose values are not of the kind training saw.
    """
    available = table.column_names
    if any(name not in available for name in spec.columns):
        raise _missing_columns(spec, available, table.source)
    inputs = {name: _feature(table, name, spec.kinds[name]) for name in spec.columns}
    outputs = np.asarray(model.predict(inputs), dtype=np.float64)
    if outputs.ndim == 1:
        outputs = outputs[:, None]
    expected = (table.rows, spec.n_outputs)
    if outputs.shape != expected:
        raise DataError(
            f"the model's outputs have shape {outputs.shape}, but a {spec.task} task with "
            f"{len(spec.classes)} classes needs {expected}"
        )
    return outputs


def _label_array(classes: Sequence[Any]) -> np.ndarray:
    """The class labels as an array of their own type (int, float, bool or text)."""
    kinds = {type(c) for c in classes}
    if kinds == {bool}:
        return np.asarray(classes, dtype=bool)
    if kinds == {int}:
        return np.asarray(classes, dtype=np.int64)
    if kinds <= {int, float}:
        return np.asarray(classes, dtype=np.float64)
    return np.asarray([str(c) if not isinstance(c, str) else c for c in classes], dtype=object)


def prediction_columns(spec: TableSpec, outputs: np.ndarray) -> dict[str, np.ndarray]:
    """The output columns (see the module docstring) for the model's ``outputs``."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if spec.task == "regression":
        return {"prediction": outputs[:, 0]}
    if spec.task == "binary":
        probabilities = np.column_stack([1.0 - outputs[:, 0], outputs[:, 0]])
        chosen = (outputs[:, 0] > THRESHOLD).astype(np.int64)
    else:
        probabilities = outputs
        chosen = np.argmax(outputs, axis=1)
    names = [f"proba_{c}" for c in spec.classes]
    columns: dict[str, np.ndarray] = {}
    if spec.task == "multilabel":
        predicted = (outputs > THRESHOLD).astype(np.int64)
        for k, label in enumerate(spec.classes):
            columns[f"prediction_{label}"] = predicted[:, k]
    else:
        columns["prediction"] = _label_array(spec.classes)[chosen]
    for k, name in enumerate(names):
        columns[name] = probabilities[:, k]
    expected = len(names) * (2 if spec.task == "multilabel" else 1) + (spec.task != "multilabel")
    if len(columns) != expected:  # classes 1 and "1" both make "proba_1"
        raise DataError(
            f"the classes {list(spec.classes)[:20]} give two output columns the same name"
        )
    return columns


def predict_batches(
    run_or_model: Any,
    table: TableSource,
    *,
    spec: TableSpec | None = None,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[dict[str, np.ndarray]]:
    """`predict_table`, one batch of at most ``batch_rows`` rows at a time (memory bounded by
    a batch; for a file, it is read as it is consumed)."""
    model, spec = _model_and_spec(run_or_model, spec)
    for batch in _batches(table, batch_rows):
        yield prediction_columns(spec, table_outputs(model, batch, spec))


def predict_table(
    run_or_model: Any,
    table: TableSource,
    *,
    spec: TableSpec | None = None,
    batch_rows: int = BATCH_ROWS,
) -> dict[str, np.ndarray]:
    """Predictions for every row of ``table``, as columns (see the module docstring).

    Args:
        run_or_model: a run directory (path or ``RunDir``) trained on a table, or a table
            model (then ``spec`` is required).
        table: a CSV or Parquet path, a `Table`, or a pandas/polars DataFrame.
        spec: the model's :class:`TableSpec` (default: the run's).
        batch_rows: rows per batch given to the model.

    Raises:
        TableError: an empty table, missing columns (named), a column of the wrong kind.
        DataError: a run not trained on a table; outputs that do not fit the spec.
    """
    parts = list(predict_batches(run_or_model, table, spec=spec, batch_rows=batch_rows))
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


# -- files --------------------------------------------------------------------------------------
def output_format(path: str | Path) -> str:
    """``csv`` or ``parquet``, chosen by the file extension; ValueError for any other."""
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise ValueError(
            f"{path}: unknown output format {suffix or '(no extension)'!r}; "
            f"use one of {sorted(OUTPUT_FORMATS)}"
        )
    return OUTPUT_FORMATS[suffix]


def write_predictions(
    run_or_model: Any,
    table: TableSource,
    path: str | Path,
    *,
    spec: TableSpec | None = None,
    batch_rows: int = BATCH_ROWS,
) -> int:
    """Write `predict_table`'s columns to ``path`` (``.csv`` or ``.parquet``, by its
    extension) batch by batch, with pyarrow; returns the number of rows written.

    The file appears only once complete (written to a temporary file beside it, then
    renamed): an error part-way leaves no partial file and an existing file untouched.
    Refuses to write over the input file.
    """
    path = Path(path)
    fmt = output_format(path)
    if isinstance(table, (str, Path)) and path.exists() and path.resolve() == Path(table).resolve():
        raise ValueError(f"{path} is the input file: write the predictions to another file")
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(f"cannot write {path}: directory {directory} does not exist")
    batches = predict_batches(run_or_model, table, spec=spec, batch_rows=batch_rows)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        rows = _write_batches(batches, Path(temporary), fmt)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return rows


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _arrow_table(columns: dict[str, np.ndarray]) -> Any:
    import pyarrow as pa

    return pa.table({name: pa.array(values) for name, values in columns.items()})


def _write_batches(batches: Iterable[dict[str, np.ndarray]], path: Path, fmt: str) -> int:
    rows = 0
    writer: Any = None
    try:
        for columns in batches:
            part = _arrow_table(columns)
            if writer is None:
                if fmt == "csv":
                    import pyarrow.csv as pacsv

                    writer = pacsv.CSVWriter(str(path), part.schema)
                else:
                    import pyarrow.parquet as pq

                    writer = pq.ParquetWriter(str(path), part.schema)
            writer.write_table(part)
            rows += part.num_rows
    finally:
        if writer is not None:
            writer.close()
    return rows


# -- metrics ------------------------------------------------------------------------------------
def target_values(table: Table, spec: TableSpec) -> np.ndarray:
    """The target column(s) of ``table`` as `task_metrics` takes them: the values
    (regression), the index in ``spec.classes`` (binary, multi-class) or a 0/1 matrix
    (multi-label).

    Raises TableError naming a missing target column, a missing value (with its row), a label
    that is not one of the classes training saw, or a multi-label value that is not 0/1.
    """
    for name in spec.target:
        if name not in table.column_names:
            close = difflib.get_close_matches(name, table.column_names, n=1, cutoff=0.6)
            raise TableError(
                f"target column {name!r} is not in {table.source}; the columns are "
                f"{table.column_names}" + (f"; did you mean {close[0]!r}?" if close else "")
            )
    columns = [table.column(name) for name in spec.target]
    for name, values in zip(spec.target, columns, strict=True):
        absent = (
            np.flatnonzero([v is None for v in values.tolist()])
            if values.dtype == object
            else np.flatnonzero(np.isnan(values))
        )
        if absent.size:
            raise TableError(
                f"target column {name!r} of {table.source} has {absent.size} missing values "
                f"(first on data row {int(absent[0]) + 1})"
            )
    if spec.task == "regression":
        if columns[0].dtype == object:
            raise TableError(
                f"target column {spec.target[0]!r} of {table.source} is text; the model "
                "predicts numbers"
            )
        return columns[0].astype(np.float64)
    if spec.task == "multilabel":
        for name, values in zip(spec.target, columns, strict=True):
            if values.dtype == object or not np.all(np.isin(values, (0.0, 1.0))):
                raise TableError(
                    f"multi-label target column {name!r} of {table.source} must hold 0/1 "
                    "or true/false"
                )
        return np.column_stack(columns).astype(np.int64)
    return _class_indices(columns[0], spec, table.source)


def _class_indices(values: np.ndarray, spec: TableSpec, source: str) -> np.ndarray:
    """Each row's index in ``spec.classes``; labels compare as read: text as text, numbers
    and true/false as numbers."""
    keys = [c if isinstance(c, str) else float(c) for c in spec.classes]
    if values.dtype != object and not any(isinstance(k, str) for k in keys):
        numbers = np.asarray(keys, dtype=np.float64)
        order = np.argsort(numbers)
        at = np.clip(np.searchsorted(numbers[order], values), 0, len(keys) - 1)
        found = numbers[order][at] == values
        out = order[at].astype(np.int64)
    else:
        index = {key: k for k, key in enumerate(keys)}
        raw = values.tolist()
        looked = [index.get(v if isinstance(v, str) else float(v), -1) for v in raw]
        out = np.asarray(looked, dtype=np.int64)
        found = out >= 0
    if not np.all(found):
        row = int(np.flatnonzero(~found)[0])
        value = values[row]
        shown = value.item() if isinstance(value, np.generic) else value
        raise TableError(
            f"target column {spec.target[0]!r} of {source}, data row {row + 1}: "
            f"{shown!r} is not one of the classes the model was trained on "
            f"{list(spec.classes)[:20]}"
        )
    return out


def targets_and_outputs(
    run_or_model: Any,
    table: TableSource,
    *,
    spec: TableSpec | None = None,
    batch_rows: int = BATCH_ROWS,
) -> tuple[np.ndarray, np.ndarray, TableSpec]:
    """The targets (`target_values`) and the model's outputs (rows, spec.n_outputs) for every
    row of ``table``, which must have the target column(s); and the spec.

    A file is read in batches; memory grows with the targets and outputs kept (a few numbers
    per row), not with the input columns.
    """
    model, spec = _model_and_spec(run_or_model, spec)
    targets, outputs = [], []
    for batch in _batches(table, batch_rows):
        targets.append(target_values(batch, spec))
        outputs.append(table_outputs(model, batch, spec))
    return np.concatenate(targets), np.concatenate(outputs), spec


def evaluate_table(
    run_or_model: Any,
    table: TableSource,
    *,
    spec: TableSpec | None = None,
    batch_rows: int = BATCH_ROWS,
) -> dict[str, float | int | None]:
    """`task_metrics` of the model on ``table``, which must have the target column(s)
    (see `targets_and_outputs`)."""
    y, p, spec = targets_and_outputs(run_or_model, table, spec=spec, batch_rows=batch_rows)
    return task_metrics(spec.task, y, p[:, 0] if spec.n_outputs == 1 else p, spec.classes)


def test_metrics(model: Any, table: TableSource, spec: TableSpec) -> dict[str, float | int | None]:
    """The test metrics ``mlp train`` writes into metrics.json for a table run: `task_metrics`
    of ``model`` on ``table`` (see `evaluate_table`)."""
    return evaluate_table(model, table, spec=spec)


test_metrics.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
