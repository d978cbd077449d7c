"""Training on CSV/Parquet files larger than memory: :class:`TableBatches`.

``TableBatches(path, target)`` is a `PyDataset` (so ``model.fit`` takes it as it is) that
reads the file in chunks (``tables.iter_batches``) and yields model-ready batches
``({column: values}, y)``; at no time does it hold more than one chunk of the file plus the
shuffle buffer. What it does, honestly:

- **Shuffling** is *not* a uniform permutation of the file. Each epoch, a Parquet file's row
  groups are read in a new random order (a CSV file is read front to back), and the rows pass
  through a shuffle buffer of ``shuffle_buffer`` rows (as ``tf.data``'s ``shuffle``): once the
  buffer is full, it is permuted and rows leave it a batch at a time. A row therefore moves at
  most about a row group plus ``shuffle_buffer`` rows away from its place in the file. Files
  sorted by the target need a buffer (or row groups) large enough to mix classes. Everything
  is seeded: the same ``seed`` and epoch give the same batches.
- **The validation split** needs no pass over the data and no list of rows: row ``i`` (0-based,
  in file order) is a validation row when ``hash(split_seed, i) < validation_split`` (a
  SplitMix64 hash of the row index, a fixed function). Two ``TableBatches`` over the same file
  with the same ``validation_split`` and ``split_seed``, one with ``subset="training"``, the
  other ``subset="validation"``, see disjoint rows that together are the whole file. The share
  of validation rows is ``validation_split`` up to sampling noise, not exact.
- **The target** is encoded as in ``tables.Table.target``: class indices (int64) for binary and
  multi-class, float64 values for regression, a 0/1 matrix for multi-label. The classes and the
  task come from :func:`scan_table`, one streaming pass over the target column (pass
  ``classes`` and ``task`` to skip it).

Each column of a batch is a 1-D array (numeric and boolean: float64 with NaN for missing;
text: an object array of ``str`` with ``None`` for missing), or of shape ``(n, 1)`` with
``column_shape="column"``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from multilayer.data import tables
from multilayer.data.tables import TableError
from multilayer.models.data_adapters import PyDataset

#: Distinct target values :func:`scan_table` keeps; more than this many classes is refused.
MAX_CLASSES = 10_000
#: Rows hashed at a time when counting the rows of a subset.
_HASH_CHUNK = 1 << 20
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


@dataclass(frozen=True)
class TableScan:
    """What one streaming pass learned about a table file.

    ``rows``: data rows; ``columns``: all column names in file order; ``kinds``: each column's
    kind (``numeric``, ``categorical``, ``boolean``) over the whole file; ``task`` and
    ``classes`` of the target (``classes`` is empty for regression, the label columns for
    multi-label).
    """

    rows: int
    columns: tuple[str, ...]
    kinds: dict[str, str]
    target: tuple[str, ...]
    task: str
    classes: tuple[Any, ...] = field(default=())


def _as_names(target: str | Sequence[str]) -> list[str]:
    names = [target] if isinstance(target, str) else list(target)
    if not names:
        raise TableError("give at least one target column")
    return names


def scan_table(
    path: str | Path,
    target: str | Sequence[str],
    task: str | None = None,
    read_rows: int = tables.BATCH_ROWS,
) -> TableScan:
    """One streaming pass over ``path``: row count, column kinds, and the target's task and
    classes (as ``tables.Table.target`` would choose them on the whole file).

    Memory: one chunk plus at most :data:`MAX_CLASSES` distinct target values. Raises
    :class:`TableError` for a missing target column (with the columns and a "did you mean"),
    a column with no values at all, missing target values (counted, the first data row named), a target with one class, and
    an empty file.
    """
    path = Path(path)
    wanted = _as_names(target)
    rows = 0
    kinds: dict[str, str] = {}
    columns: tuple[str, ...] = ()
    distinct: dict[str, set[Any]] = {name: set() for name in wanted}
    text: dict[str, bool] = {name: False for name in wanted}
    overflow = False
    filled: dict[str, int] = {}
    missing: dict[str, list[int]] = {name: [0, -1] for name in wanted}  # [count, first row]
    for chunk in tables.iter_batches(path, read_rows):
        if not columns:
            columns = tuple(chunk.column_names)
            for name in wanted:
                if name not in columns:
                    raise tables.missing_column_error(
                        name, list(columns), "target column", str(path)
                    )
        for column in chunk.columns:
            filled[column.name] = filled.get(column.name, 0) + chunk.rows - column.missing
            if column.name not in kinds or column.kind == "categorical":
                # A chunk where a text column had only missing values reads as NaN numbers.
                kinds[column.name] = column.kind
        for name in wanted:
            values = chunk.column(name)
            if values.dtype == object:
                absent = np.fromiter((v is None for v in values), bool, len(values))
                text[name] = text[name] or bool((~absent).any())
            else:
                absent = np.isnan(values)
            if absent.any():
                count_first = missing[name]
                if count_first[1] < 0:
                    count_first[1] = rows + int(np.flatnonzero(absent)[0])
                count_first[0] += int(absent.sum())
            if not overflow:
                present = values[~absent]
                distinct[name].update(present.tolist())
                overflow = len(distinct[name]) > MAX_CLASSES
        rows += chunk.rows
    if rows == 0:
        raise TableError(f"{path} has a header but no rows")
    empty = [name for name in columns if filled[name] == 0]
    if empty:
        raise TableError(
            f"{path}: the columns {empty} have no values in any of the {rows} rows; remove them"
        )
    for name, (count, first) in missing.items():
        if count:
            raise TableError(
                f"target column {name!r} of {path} has {count} missing values "
                f"(first on data row {first + 1}); drop those rows or fill them"
            )
    if len(wanted) == 1 and not overflow and len(distinct[wanted[0]]) < 2:
        only = next(iter(distinct[wanted[0]]))
        raise TableError(
            f"target column {wanted[0]!r} of {path} has one class ({only!r}) "
            f"in all {rows} rows: there is nothing to learn"
        )
    if overflow:
        if any(text.values()) or task not in (None, "regression"):
            raise TableError(
                f"target column(s) {wanted} of {path} have more than {MAX_CLASSES} distinct "
                "values; that is too many classes (use a numeric target for regression)"
            )
        return TableScan(rows, columns, kinds, tuple(wanted), "regression", ())
    # The task and classes of the distinct values are those of the whole column.
    sample = {
        name: np.asarray(sorted(distinct[name]), dtype=object if text[name] else np.float64)
        for name in wanted
    }
    boolean = frozenset(n for n in wanted if kinds.get(n) == "boolean")
    decided = tables.infer_target(sample, task, str(path), boolean)
    return TableScan(rows, columns, kinds, tuple(wanted), decided.task, decided.classes)


def row_hash(rows: np.ndarray, seed: int) -> np.ndarray:
    """A fixed hash of row indices to [0, 1) (SplitMix64 of ``index + seed * golden``)."""
    with np.errstate(over="ignore"):
        z = rows.astype(np.uint64) + np.uint64(seed % (1 << 64)) * np.uint64(0x9E3779B97F4A7C15)
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


Subset = Literal["training", "validation"]


class TableBatches(PyDataset):
    """Batches ``({column: values}, y)`` of a CSV/Parquet file, read in chunks (see the module
    docstring for what the shuffle and the validation split are).

    Args:
        path: a ``.csv``/``.tsv``/``.parquet`` file.
        target: the target column (or columns, multi-label).
        batch_size: rows per batch (the last batch of an epoch may be smaller).
        columns: the input columns, in order (default: every column but the target).
        task, classes: the target's task and classes; default: from :func:`scan_table`.
        shuffle: shuffle (row-group order and a shuffle buffer) every epoch.
        shuffle_buffer: rows in the shuffle buffer.
        seed: the seed of the shuffle (epoch ``e`` uses ``(seed, e)``).
        validation_split: the share of rows (by row-index hash) held out for validation.
        subset: ``"training"`` (the rows not held out) or ``"validation"`` (those held out);
            required when ``validation_split`` > 0.
        hash_range: ``(low, high)``: only the rows whose row hash is in ``[low, high)``
            (the general form of the split, e.g. three ways: test, validation, training);
            instead of ``validation_split``/``subset``.
        split_seed: the seed of the row-index hash (default ``seed``); give the training and the
            validation datasets the same one.
        read_rows: rows read from the file at a time.
        column_shape: ``"flat"`` (each column ``(n,)``) or ``"column"`` (``(n, 1)``).
        scan: a :class:`TableScan` of the file (skips the scan).
    """

    def __init__(
        self,
        path: str | Path,
        target: str | Sequence[str],
        *,
        batch_size: int = 256,
        columns: Sequence[str] | None = None,
        task: str | None = None,
        classes: Sequence[Any] | None = None,
        shuffle: bool = True,
        shuffle_buffer: int = 65_536,
        seed: int = 0,
        validation_split: float = 0.0,
        subset: Subset | None = None,
        split_seed: int | None = None,
        hash_range: tuple[float, float] | None = None,
        read_rows: int = tables.BATCH_ROWS,
        column_shape: Literal["flat", "column"] = "flat",
        scan: TableScan | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.path = Path(path)
        self.target = tuple(_as_names(target))
        for value, what in ((batch_size, "batch_size"), (read_rows, "read_rows")):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{what} must be a positive int, got {value!r}")
        if isinstance(shuffle_buffer, bool) or not isinstance(shuffle_buffer, int):
            raise ValueError(f"shuffle_buffer must be a non-negative int, got {shuffle_buffer!r}")
        if shuffle_buffer < 0:
            raise ValueError(f"shuffle_buffer must be a non-negative int, got {shuffle_buffer!r}")
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}")
        if validation_split > 0 and subset not in ("training", "validation"):
            raise ValueError(
                "with validation_split > 0, subset must be 'training' or 'validation', "
                f"got {subset!r}"
            )
        if validation_split == 0 and subset == "validation":
            raise ValueError("subset='validation' needs validation_split > 0")
        if hash_range is not None:
            if validation_split:
                raise ValueError("give validation_split and subset, or hash_range, not both")
            low, high = (float(v) for v in hash_range)
            if not 0.0 <= low < high <= 1.0:
                raise ValueError(
                    f"hash_range must be (low, high) with 0 <= low < high <= 1, got {hash_range!r}"
                )
            self.hash_range: tuple[float, float] | None = (low, high)
        elif validation_split > 0:
            held_out = (0.0, float(validation_split))
            self.hash_range = held_out if subset == "validation" else (held_out[1], 1.0)
        else:
            self.hash_range = None
        if column_shape not in ("flat", "column"):
            raise ValueError(f"column_shape must be 'flat' or 'column', got {column_shape!r}")
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.shuffle_buffer = shuffle_buffer
        self.seed = int(seed)
        self.validation_split = float(validation_split)
        self.subset: Subset | None = subset if validation_split > 0 else None
        self.split_seed = self.seed if split_seed is None else int(split_seed)
        self.read_rows = read_rows
        self.column_shape = column_shape
        if scan is None:
            scan = scan_table(self.path, self.target, task, read_rows)
        self.scan = scan
        self.task = task if task is not None else scan.task
        if classes is not None:
            self.classes: tuple[Any, ...] = tuple(classes)
        elif self.task == scan.task:
            self.classes = scan.classes
        else:
            raise ValueError(
                f"task {self.task!r} differs from the scan's {scan.task!r}: give classes too"
            )
        if self.task in ("binary", "multiclass") and len(self.classes) < 2:
            raise ValueError(f"task {self.task!r} needs at least two classes: {self.classes}")
        self._index = {c: k for k, c in enumerate(self.classes)}
        # Numeric classes: encoded by a sorted search instead of a dict lookup per row.
        self._numeric_classes: tuple[np.ndarray, np.ndarray] | None = None
        if self.classes and all(
            isinstance(c, (int, float)) and not isinstance(c, bool) for c in self.classes
        ):
            keys = np.asarray(self.classes, dtype=np.float64)
            order = np.argsort(keys, kind="stable")
            self._numeric_classes = (keys[order], order)
        if columns is None:
            columns = [c for c in scan.columns if c not in self.target]
        self.columns = tuple(columns)
        for name in self.columns:
            if name not in scan.columns:
                raise tables.missing_column_error(name, list(scan.columns), "column", str(path))
        overlap = [c for c in self.columns if c in self.target]
        if overlap:
            raise ValueError(f"the target column(s) {overlap} cannot also be input columns")
        self.rows = self._count_rows()
        if self.rows == 0:
            raise TableError(
                f"{self.path}: no rows fall in the row-hash range {self.hash_range} "
                f"(the file has {scan.rows}); use a larger split"
            )
        self._epoch = 0
        self._batches: Iterator[tuple[dict[str, np.ndarray], np.ndarray]] | None = None
        self._next = 0

    # -- PyDataset ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return -(-self.rows // self.batch_size)

    def __getitem__(self, index: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Batch ``index`` of the current epoch. Batches are read in order; asking for an
        earlier one than the next re-reads the file from the start of the epoch."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"batch index must be an int, got {type(index).__name__}")
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range: an epoch has {len(self)} batches")
        if self._batches is None or index < self._next:
            self._batches = self._epoch_batches(self._epoch)
            self._next = 0
        while self._next < index:  # skipping forward
            next(self._batches)
            self._next += 1
        self._next += 1
        return next(self._batches)

    def on_epoch_begin(self) -> None:
        self._batches = None

    def on_epoch_end(self) -> None:
        self._epoch += 1
        self._batches = None

    def __iter__(self) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
        """The batches of the current epoch, in order."""
        return self._epoch_batches(self._epoch)

    # -- reading -----------------------------------------------------------------------------
    def _count_rows(self) -> int:
        if self.hash_range is None:
            return self.scan.rows
        count = 0
        for start in range(0, self.scan.rows, _HASH_CHUNK):
            stop = min(start + _HASH_CHUNK, self.scan.rows)
            count += int(self._keep(np.arange(start, stop)).sum())
        return count

    def _keep(self, rows: np.ndarray) -> np.ndarray:
        assert self.hash_range is not None
        low, high = self.hash_range
        hashed = row_hash(rows, self.split_seed)
        return (hashed >= low) & (hashed < high)

    def _chunks(self, rng: np.random.Generator) -> Iterator[tuple[int, tables.Table]]:
        """(index of the first row, chunk) in reading order."""
        wanted = [*self.columns, *self.target]
        if tables.table_format(self.path) == "parquet":
            sizes = tables.parquet_row_groups(self.path)
            starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
            order = rng.permutation(len(sizes)) if self.shuffle else np.arange(len(sizes))
            for group in order.tolist():
                start = int(starts[group])
                for chunk in tables.iter_batches(self.path, self.read_rows, wanted, [group]):
                    yield start, chunk
                    start += chunk.rows
            return
        start = 0
        for chunk in tables.iter_batches(self.path, self.read_rows, wanted):
            yield start, chunk
            start += chunk.rows

    def _rows(self, rng: np.random.Generator) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
        """The subset's rows, chunk by chunk, as (columns, y)."""
        for start, chunk in self._chunks(rng):
            keep = None
            if self.hash_range is not None:
                keep = self._keep(np.arange(start, start + chunk.rows))
                if not keep.any():
                    continue
            x = {}
            for name in self.columns:
                values = chunk.column(name)
                if self.scan.kinds.get(name) == "categorical" and values.dtype != object:
                    values = np.full(len(values), None, dtype=object)  # an all-missing chunk
                x[name] = values if keep is None else values[keep]
            y = self._encode(chunk, start)
            yield x, (y if keep is None else y[keep])

    def _encode(self, chunk: tables.Table, start: int) -> np.ndarray:
        if self.task == "multilabel":
            return np.column_stack(
                [np.asarray(chunk.column(n), dtype=np.float64) for n in self.target]
            )
        values = chunk.column(self.target[0])
        if self.task == "regression":
            if values.dtype == object:
                raise TableError(
                    f"target column {self.target[0]!r} of {self.path} is text; "
                    "regression needs numbers"
                )
            return np.asarray(values, dtype=np.float64)
        if values.dtype != object and self._numeric_classes is not None:
            keys, order = self._numeric_classes
            at = np.minimum(np.searchsorted(keys, values), len(keys) - 1)
            found = keys[at] == values
            if not found.all():
                k = int(np.flatnonzero(~found)[0])
                raise TableError(
                    f"target column {self.target[0]!r} of {self.path}, data row "
                    f"{start + k + 1}: {values[k].item()!r} is not one of the classes "
                    f"{list(self.classes)[:10]}"
                )
            return order[at].astype(np.int64)
        listed = values.tolist()
        unknown = [k for k, v in enumerate(listed) if v not in self._index]
        if unknown:
            k = unknown[0]
            raise TableError(
                f"target column {self.target[0]!r} of {self.path}, data row {start + k + 1}: "
                f"{listed[k]!r} is not one of the classes {list(self.classes)[:10]}"
            )
        return np.fromiter((self._index[v] for v in listed), dtype=np.int64, count=len(listed))

    def _epoch_batches(self, epoch: int) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
        rng = np.random.default_rng([self.seed, epoch])
        buffer_x: dict[str, np.ndarray] = {}
        buffer_y: np.ndarray | None = None
        for x, y in self._rows(rng):
            if buffer_y is None:
                buffer_x, buffer_y = x, y
            else:
                buffer_x = {k: _concat(buffer_x[k], x[k]) for k in self.columns}
                buffer_y = np.concatenate([buffer_y, y])
            keep = self.shuffle_buffer if self.shuffle else 0
            if len(buffer_y) < keep + self.batch_size:
                continue
            if self.shuffle:
                order = rng.permutation(len(buffer_y))
                buffer_x = {k: v[order] for k, v in buffer_x.items()}
                buffer_y = buffer_y[order]
            ready = (len(buffer_y) - keep) // self.batch_size * self.batch_size
            for at in range(0, ready, self.batch_size):
                yield self._batch(buffer_x, buffer_y, at, at + self.batch_size)
            buffer_x = {k: v[ready:] for k, v in buffer_x.items()}
            buffer_y = buffer_y[ready:]
        if buffer_y is None or len(buffer_y) == 0:
            return
        if self.shuffle:
            order = rng.permutation(len(buffer_y))
            buffer_x = {k: v[order] for k, v in buffer_x.items()}
            buffer_y = buffer_y[order]
        for at in range(0, len(buffer_y), self.batch_size):
            yield self._batch(buffer_x, buffer_y, at, at + self.batch_size)

    def _batch(
        self, x: dict[str, np.ndarray], y: np.ndarray, start: int, stop: int
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        # Copies, so a batch never keeps the whole buffer alive.
        columns = {k: v[start:stop].copy() for k, v in x.items()}
        if self.column_shape == "column":
            columns = {k: v.reshape(-1, 1) for k, v in columns.items()}
        return columns, y[start:stop].copy()


def _concat(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype == object or b.dtype == object:
        a = a if a.dtype == object else np.full(len(a), None, dtype=object)
        b = b if b.dtype == object else np.full(len(b), None, dtype=object)
    return np.concatenate([a, b])
