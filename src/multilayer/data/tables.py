"""Tables: CSV and Parquet files (read by pyarrow, in batches) and pandas/polars DataFrames.

``read_table(path)`` and ``from_frame(df)`` return a :class:`Table`: its columns with their
inferred kind (``numeric``, ``categorical`` or ``boolean``) and missing counts, and one NumPy
array per column (numeric and boolean columns as float64 with NaN for missing values,
categorical ones as object arrays of ``str`` with ``None`` for missing values).
``table.target(name, task=None)`` splits off the target column and chooses the task
(``regression``, ``binary``, ``multiclass`` or ``multilabel``) from its values.

Every problem is a :class:`TableError` (a ``ValueError``) that names the file, the column
and, where there is one, the line: nothing is dropped silently.

pyarrow is an optional dependency (``pip install 'multilayer[tables]'``); pandas and polars
are used only when the caller passes their DataFrames.
"""

from __future__ import annotations

import csv
import difflib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

Kind = Literal["numeric", "categorical", "boolean"]
Task = Literal["regression", "binary", "multiclass", "multilabel"]
TASKS: tuple[str, ...] = ("regression", "binary", "multiclass", "multilabel")
#: An integer-valued numeric target with at most this many distinct values is a classification.
MAX_INTEGER_CLASSES = 20
BATCH_ROWS = 65_536
_CSV_BLOCK_BYTES = 1 << 20


class TableError(ValueError):
    """A table that cannot be used as given; the message says what and where."""


@dataclass(frozen=True)
class Column:
    """One column of a table: its name, inferred kind and number of missing values."""

    name: str
    kind: Kind
    missing: int


@dataclass(frozen=True)
class Target:
    """The target of a table: the task, the values to train on and the class names.

    ``y`` is float64 for regression, the class index (int64) for binary and multi-class,
    and a 0/1 float64 matrix (one column per label) for multi-label.
    """

    names: tuple[str, ...]
    task: Task
    y: np.ndarray
    classes: tuple[Any, ...]


class Table:
    """Columns of equal length, each a NumPy array, with their kinds and missing counts."""

    def __init__(
        self,
        arrays: dict[str, np.ndarray],
        source: str = "the table",
        boolean: Iterable[str] = (),
    ) -> None:
        self.source = source
        self._arrays = dict(arrays)
        lengths = {len(a) for a in self._arrays.values()}
        if len(lengths) > 1:
            raise TableError(f"{source}: columns of different lengths {sorted(lengths)}")
        self.rows = lengths.pop() if lengths else 0
        self._boolean = frozenset(name for name in boolean if name in self._arrays)
        self.columns = tuple(
            _describe(name, a, name in self._boolean) for name, a in self._arrays.items()
        )

    def __repr__(self) -> str:
        kinds = ", ".join(f"{c.name}: {c.kind}" for c in self.columns)
        return f"Table({self.rows} rows; {kinds})"

    @property
    def column_names(self) -> list[str]:
        return list(self._arrays)

    def column(self, name: str) -> np.ndarray:
        """The values of one column (see the module docstring for their types)."""
        self._require([name], "column")
        return self._arrays[name]

    def kind(self, name: str) -> Kind:
        self._require([name], "column")
        return next(c.kind for c in self.columns if c.name == name)

    def drop(self, names: Sequence[str]) -> Table:
        """The table without the given columns."""
        self._require(names, "column")
        kept = {k: v for k, v in self._arrays.items() if k not in names}
        return Table(kept, self.source, self._boolean)

    def select(self, names: Sequence[str]) -> Table:
        """The given columns, in the given order (the columns training saw, say)."""
        check_columns(names, self.column_names, self.source)
        return Table({name: self._arrays[name] for name in names}, self.source, self._boolean)

    def to_numpy(self) -> np.ndarray:
        """All columns as one float64 matrix (rows, columns), NaN for missing values.

        Raises :class:`TableError` naming any categorical column: those need encoding first.
        """
        text = [c.name for c in self.columns if c.kind == "categorical"]
        if text:
            raise TableError(
                f"{self.source}: the columns {text} are categorical (text); "
                "encode them (StringLookup, one-hot) or drop them before using the table as numbers"
            )
        if not self._arrays:
            return np.zeros((self.rows, 0))
        return np.column_stack([self._arrays[name] for name in self._arrays]).astype(np.float64)

    def target(self, names: str | Sequence[str], task: str | None = None) -> Target:
        """The target column(s) and the task they call for (or ``task``, checked)."""
        wanted = [names] if isinstance(names, str) else list(names)
        if not wanted:
            raise TableError("give at least one target column")
        self._require(wanted, "target column")
        columns = {name: self._arrays[name] for name in wanted}
        return infer_target(columns, task, self.source, self._boolean)

    def _require(self, names: Sequence[str], what: str) -> None:
        for name in names:
            if name not in self._arrays:
                raise TableError(_missing_message(name, self.column_names, what, self.source))


def missing_column_error(name: str, available: list[str], what: str, source: str) -> TableError:
    """The error for a column ``name`` that is not among ``available`` (with a "did you mean")."""
    return TableError(_missing_message(name, available, what, source))


def _missing_message(name: str, available: list[str], what: str, source: str) -> str:
    message = f"{what} {name!r} is not in {source}; the columns are {available}"
    close = difflib.get_close_matches(name, available, n=1, cutoff=0.6)
    if not close:
        lowered = {a.lower(): a for a in available}
        close = [lowered[name.lower()]] if name.lower() in lowered else []
    return message + (f"; did you mean {close[0]!r}?" if close else "")


def _describe(name: str, array: np.ndarray, boolean: bool) -> Column:
    if array.dtype == object:
        return Column(name, "categorical", sum(1 for v in array if v is None))
    return Column(name, "boolean" if boolean else "numeric", int(np.isnan(array).sum()))


def check_columns(expected: Sequence[str], got: Sequence[str], source: str = "the table") -> None:
    """Raise :class:`TableError` naming the columns missing from ``got`` and the extra ones."""
    missing = [name for name in expected if name not in got]
    unexpected = [name for name in got if name not in expected]
    if missing or unexpected:
        raise TableError(
            f"{source} does not have the columns training used: "
            f"missing {missing}, unexpected {unexpected}"
        )


# -- task -------------------------------------------------------------------------------------
def infer_target(
    columns: dict[str, np.ndarray],
    task: str | None,
    source: str,
    boolean: frozenset[str] = frozenset(),
) -> Target:
    """The task for the target column(s), their training values and class names."""
    if task is not None and task not in TASKS:
        raise TableError(f"task must be one of {list(TASKS)}, got {task!r}")
    names = tuple(columns)
    for name, values in columns.items():
        missing = _missing_rows(values)
        if missing.size:
            raise TableError(
                f"target column {name!r} of {source} has {missing.size} missing values "
                f"(first on data row {int(missing[0]) + 1}); drop those rows or fill them"
            )
    if len(columns) > 1 or task == "multilabel":
        return _multilabel(columns, task, source)
    name, values = next(iter(columns.items()))
    if values.dtype == object:
        classes = tuple(sorted(set(values.tolist())))
        chosen = task or ("binary" if len(classes) == 2 else "multiclass")
        if chosen == "regression":
            raise TableError(
                f"target column {name!r} of {source} is text; regression needs numbers"
            )
    else:
        distinct = np.unique(values)
        integral = bool(np.all(distinct == np.round(distinct)))
        classes = tuple(v.item() for v in distinct)
        if task is not None:
            chosen = task
        elif name in boolean or (integral and len(distinct) == 2):
            chosen = "binary"
        elif integral and len(distinct) <= MAX_INTEGER_CLASSES:
            chosen = "multiclass"
        else:
            chosen = "regression"
        if chosen == "regression":
            return Target(names, "regression", np.asarray(values, dtype=np.float64), ())
    if len(classes) < 2:
        raise TableError(
            f"target column {name!r} of {source} has one class ({classes[0]!r}) "
            f"in all {len(values)} rows: there is nothing to learn"
        )
    if chosen == "binary" and len(classes) != 2:
        raise TableError(
            f"task 'binary' needs two classes; target column {name!r} of {source} has "
            f"{len(classes)}: {list(classes)[:10]}"
        )
    index = {c: i for i, c in enumerate(classes)}
    y = np.fromiter((index[v] for v in values.tolist()), dtype=np.int64, count=len(values))
    return Target(names, chosen, y, classes)  # type: ignore[arg-type]


def _multilabel(columns: dict[str, np.ndarray], task: str | None, source: str) -> Target:
    if task not in (None, "multilabel"):
        raise TableError(
            f"several target columns {list(columns)} make a multilabel task, not {task!r}"
        )
    for name, values in columns.items():
        if values.dtype == object or not np.all(np.isin(values, (0.0, 1.0))):
            raise TableError(
                f"multi-label target column {name!r} of {source} must hold 0/1 or true/false"
            )
    y = np.column_stack([np.asarray(v, dtype=np.float64) for v in columns.values()])
    return Target(tuple(columns), "multilabel", y, tuple(columns))


def _missing_rows(values: np.ndarray) -> np.ndarray:
    if values.dtype == object:
        return np.flatnonzero(np.fromiter((v is None for v in values), bool, len(values)))
    return np.flatnonzero(np.isnan(values))


# -- files ------------------------------------------------------------------------------------
def _pyarrow() -> Any:
    try:
        import pyarrow
    except ImportError as error:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "reading CSV and Parquet files needs pyarrow: pip install 'multilayer[tables]'"
        ) from error
    return pyarrow


def table_format(path: Path) -> str:
    """``csv`` or ``parquet``, chosen by the file name."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise TableError(f"{path}: unknown table format {suffix!r}; expected .csv, .tsv or .parquet")


def iter_batches(
    path: str | Path,
    batch_rows: int = BATCH_ROWS,
    columns: Sequence[str] | None = None,
    row_groups: Sequence[int] | None = None,
) -> Iterator[Table]:
    """The file's rows in batches of at most ``batch_rows`` (a few MB for CSV) as column arrays.

    Memory stays bounded by one batch. Errors name the file, and the line for CSV files.
    ``columns`` reads only those columns (in the file's order; a name the file lacks is a
    :class:`TableError` naming it); ``row_groups`` reads only those row groups of a Parquet
    file, in the order given (see :func:`parquet_row_groups`).
    """
    path = Path(path)
    fmt = table_format(path)
    if not path.is_file():
        raise TableError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise TableError(f"{path} is empty (no header, no rows)")
    if fmt == "csv":
        if row_groups is not None:
            raise TableError(f"{path}: a CSV file has no row groups (Parquet files do)")
        yield from _csv_batches(path, columns)
    else:
        yield from _parquet_batches(path, batch_rows, columns, row_groups)


def parquet_row_groups(path: str | Path) -> list[int]:
    """The number of rows of each row group of a Parquet file (from its footer, no data read)."""
    pa = _pyarrow()
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(path) as handle:
            meta = handle.metadata
            return [meta.row_group(k).num_rows for k in range(meta.num_row_groups)]
    except (pa.ArrowException, OSError) as error:
        raise TableError(f"{path}: not a readable Parquet file ({error})") from None


def _check_selected(path: Path, names: Sequence[str], columns: Sequence[str] | None) -> None:
    for name in columns or ():
        if name not in names:
            raise TableError(_missing_message(name, list(names), "column", str(path)))


def _csv_batches(path: Path, columns: Sequence[str] | None = None) -> Iterator[Table]:
    pa = _pyarrow()
    import pyarrow.csv as pacsv

    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK_BYTES, use_threads=False),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(strings_can_be_null=True),
        )
        if columns is not None:
            _check_selected(path, reader.schema.names, columns)
        for batch in reader:
            if columns is not None:
                batch = batch.select([n for n in batch.schema.names if n in columns])
            yield _batch_table(batch, str(path))
    except pa.ArrowInvalid as error:
        raise _csv_error(path, str(error), delimiter) from None


_RAGGED = re.compile(r"Expected (\d+) columns, got (\d+)")
_CONVERSION = re.compile(
    r"In CSV column #(\d+): .*CSV conversion error to (\w+): invalid value '(.*)'"
)


def _csv_error(path: Path, message: str, delimiter: str) -> TableError:
    """pyarrow's parse error, with the line found by rescanning the file (stdlib csv)."""
    ragged = _RAGGED.search(message)
    conversion = _CONVERSION.search(message)
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        rows = csv.reader(handle, delimiter=delimiter)
        header = next(rows, [])
        for row in rows:
            if ragged and len(row) != len(header):
                return TableError(
                    f"{path}, line {rows.line_num}: expected {len(header)} values "
                    f"(the header's columns), got {len(row)}"
                )
            if conversion:
                k = int(conversion.group(1))
                value = conversion.group(3)
                if k < len(row) and row[k] == value:
                    return TableError(
                        f"{path}, line {rows.line_num}: column {header[k]!r} holds numbers "
                        f"({conversion.group(2)}) in the rows before, but has the non-numeric "
                        f"value {value!r}"
                    )
    if message.startswith("Empty CSV file"):
        return TableError(f"{path} is empty (no header, no rows)")
    return TableError(f"{path}: cannot read as CSV: {message}")


def _parquet_batches(
    path: Path,
    batch_rows: int,
    columns: Sequence[str] | None = None,
    row_groups: Sequence[int] | None = None,
) -> Iterator[Table]:
    pa = _pyarrow()
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
        raise TableError(f"{path}: not a readable Parquet file ({error})") from None
    with handle:
        if columns is not None:
            names = handle.schema_arrow.names
            _check_selected(path, names, columns)
            columns = [n for n in names if n in columns]
        if row_groups is not None:
            count = handle.metadata.num_row_groups
            bad = [g for g in row_groups if not 0 <= g < count]
            if bad:
                raise TableError(f"{path} has {count} row groups; no row group {bad[0]}")
        groups = range(handle.metadata.num_row_groups) if row_groups is None else row_groups
        try:
            # One reader per row group: a single iter_batches over a whole file with
            # dictionary (text) columns keeps memory in pyarrow that grows with the rows read
            # (measured: 147 MB held after 3 million rows, 15 MB this way).
            for group in groups:
                for batch in handle.iter_batches(
                    batch_size=batch_rows, row_groups=[group], columns=columns, use_threads=False
                ):
                    yield _batch_table(batch, str(path))
        except (pa.ArrowException, OSError) as error:
            raise TableError(f"{path}: corrupt Parquet data ({error})") from None


def _batch_table(batch: Any, source: str) -> Table:
    pa = _pyarrow()
    import pyarrow.types as t

    arrays: dict[str, np.ndarray] = {}
    boolean: list[str] = []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        kind = column.type
        if t.is_dictionary(kind):
            column = column.cast(kind.value_type)
            kind = column.type
        if t.is_null(kind):
            arrays[name] = np.full(len(column), np.nan)
        elif t.is_boolean(kind) or t.is_integer(kind) or t.is_floating(kind) or t.is_decimal(kind):
            arrays[name] = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
            if t.is_boolean(kind):
                boolean.append(name)
        elif t.is_string(kind) or t.is_large_string(kind):
            arrays[name] = np.asarray(column.to_pylist(), dtype=object)
        else:
            raise TableError(
                f"{source}: column {name!r} has the type {kind}, which is not supported "
                "(numbers, true/false and text are)"
            )
    return Table(arrays, source, boolean)


def read_table(path: str | Path, batch_rows: int = BATCH_ROWS) -> Table:
    """A CSV or Parquet file, read in batches, as a :class:`Table`.

    Raises :class:`TableError` for an empty file, a file with a header and no rows, ragged
    rows, a numeric column with a non-numeric value, and a column with no values at all.
    """
    path = Path(path)
    batches = list(iter_batches(path, batch_rows))
    if not batches or sum(b.rows for b in batches) == 0:
        raise TableError(f"{path} has a header but no rows")
    names = batches[0].column_names
    arrays = {name: _concatenate([b.column(name) for b in batches]) for name in names}
    boolean = [n for n in names if any(b.kind(n) == "boolean" for b in batches)]
    return _checked(Table(arrays, str(path), boolean), path)


def _concatenate(chunks: list[np.ndarray]) -> np.ndarray:
    if any(c.dtype == object for c in chunks):
        # A batch where a text column had only missing values was read as all-NaN floats.
        chunks = [c if c.dtype == object else np.full(len(c), None, dtype=object) for c in chunks]
    return np.concatenate(chunks)


def _checked(table: Table, path: Path | None = None) -> Table:
    empty = [c.name for c in table.columns if c.missing == table.rows]
    if empty:
        raise TableError(
            f"{table.source}: the columns {empty} have no values in any of the "
            f"{table.rows} rows; remove them"
        )
    for column in table.columns:
        if column.kind == "categorical":
            _check_mostly_numeric(table, column.name, path)
    return table


#: A text column whose values are numbers in at least this share of the rows is taken for a
#: numeric column with bad values (a typo, "n/a", "?") and refused, naming the first one.
NUMERIC_SHARE = 0.9


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _check_mostly_numeric(table: Table, name: str, path: Path | None) -> None:
    values = table.column(name).tolist()
    distinct = {v for v in values if v is not None}
    bad = {v for v in distinct if not _is_number(v)}
    if not bad or len(bad) == len(distinct):  # all numbers written as text, or all text
        return
    present = sum(1 for v in values if v is not None)
    wrong = sum(1 for v in values if v is not None and v in bad)
    if wrong > (1 - NUMERIC_SHARE) * present:
        return
    row = next(i for i, v in enumerate(values) if v is not None and v in bad)
    where = f"data row {row + 1}"
    if path is not None and table_format(path) == "csv":
        where = f"line {_csv_line(path, row)}"
    raise TableError(
        f"{table.source}, {where}: column {name!r} holds numbers in {present - wrong} of "
        f"{present} rows, but has the non-numeric value {values[row]!r}"
    )


def _csv_line(path: Path, row: int) -> int:
    """The physical line of data row ``row`` (0-based) of a CSV file (stdlib csv, streaming)."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        rows = csv.reader(handle, delimiter=delimiter)
        for index, _ in enumerate(rows):
            if index == row + 1:  # the header is row 0
                return rows.line_num
    return row + 2


# -- DataFrames -------------------------------------------------------------------------------
def is_frame(value: object) -> bool:
    """Whether ``value`` is a pandas or polars DataFrame (without importing either)."""
    module = type(value).__module__.split(".")[0]
    return module in ("pandas", "polars") and type(value).__name__ == "DataFrame"


def from_frame(frame: Any, source: str = "the DataFrame", check: bool = True) -> Table:
    """A pandas or polars DataFrame as a :class:`Table` (no pyarrow needed).

    ``check=False`` skips the checks meant for training data (a column with no values, a
    numeric column with a few text values): rows to predict may be few and incomplete."""
    if not is_frame(frame):
        raise TableError(f"expected a pandas or polars DataFrame, got {type(frame).__name__}")
    pandas = type(frame).__module__.split(".")[0] == "pandas"
    arrays: dict[str, np.ndarray] = {}
    boolean: list[str] = []
    for name in frame.columns:
        key = str(name)
        if key in arrays:
            raise TableError(f"{source} has the column name {key!r} twice")
        values, is_boolean = (_pandas_column if pandas else _polars_column)(frame[name])
        arrays[key] = values
        if is_boolean:
            boolean.append(key)
    if not arrays or len(frame) == 0:
        raise TableError(f"{source} is empty ({len(frame)} rows, {len(arrays)} columns)")
    table = Table(arrays, source, boolean)
    return _checked(table) if check else table


def _pandas_column(column: Any) -> tuple[np.ndarray, bool]:
    from pandas.api import types

    if types.is_bool_dtype(column.dtype) or types.is_numeric_dtype(column.dtype):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        return values, bool(types.is_bool_dtype(column.dtype))
    present = column.notna().to_numpy()
    raw = column.to_numpy(dtype=object)
    return np.asarray(
        [str(v) if p else None for v, p in zip(raw, present, strict=True)], dtype=object
    ), False


def _polars_column(column: Any) -> tuple[np.ndarray, bool]:
    import polars as pl

    if column.dtype == pl.Boolean or column.dtype.is_numeric():
        values = column.cast(pl.Float64).fill_null(float("nan")).to_numpy()
        return np.asarray(values, dtype=np.float64), column.dtype == pl.Boolean
    return np.asarray(
        [None if v is None else str(v) for v in column.to_list()], dtype=object
    ), False


def frame_inputs(
    frame: Any, input_names: Sequence[str] | None
) -> np.ndarray | dict[str, np.ndarray]:
    """What ``fit``/``predict`` take from a DataFrame: for a model with several named
    inputs (or one input named as the frame's only column), ``{column name: raw values
    (rows, 1)}``: numbers as float64 with NaN for missing values, text as ``str`` objects with
    None (the trainer matches them to the inputs by name, and lets text and missing values
    through only to layers that take them, such as a table model's); otherwise all columns,
    in order, as one float matrix (rows, columns), categorical (text) columns refused by
    name."""
    table = from_frame(frame)
    names = table.column_names
    if input_names is not None and (len(input_names) > 1 or list(input_names) == names):
        return {name: table.column(name).reshape(-1, 1) for name in names}
    return table.to_numpy()
