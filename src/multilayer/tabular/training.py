"""Training on a table: file or DataFrame -> FeatureSpace + MLP -> fit -> test -> run directory.

    from multilayer.tabular.training import train_table

    result = train_table("train.csv", "price", test_split=0.2, seed=0, output="runs/price")
    result.metrics["test_rmse"], result.run.table_spec()

`prepare_table_run` reads the table, splits off the target and chooses the task
(:meth:`multilayer.data.tables.Table.target`), holds out the test rows (``test_split``, or
the separate ``test_data``) and a validation split of the training rows (stratified for a
classification), adapts a `FeatureSpace` to the training rows and builds the model of the
recipe (`build_table_model`). It writes nothing. `PreparedTableRun.run` trains with
best-epoch selection on the validation split (the weights of the epoch with the lowest
validation loss are kept), computes the task's test metrics
(`multilayer.tabular.metrics.spec_metrics`) and writes the
run directory: ``model.safetensors``, ``config.json`` (with the `TableSpec` under
``"table"``), ``history.csv``/``.json`` and ``metrics.json``.

The model follows the contract of :mod:`multilayer.tabular`: raw columns in, final units out.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from multilayer.data import tables
from multilayer.engine.layers.robust import DEFAULT_CLIP
from multilayer.recipes import Recipe, get_recipe, make_schedule
from multilayer.runs import RunDir, new_run_path
from multilayer.tabular.features import FeatureSpace, rename_clashes
from multilayer.tabular.metrics import spec_metrics
from multilayer.tabular.spec import TableSpec

if TYPE_CHECKING:
    from multilayer.models.callbacks import History
    from multilayer.models.functional import Model

__all__ = [
    "PreparedTableRun",
    "TableRunResult",
    "budget",
    "build_table_model",
    "encode_target",
    "prepare_table_run",
    "task_metrics",
    "train_table",
]

DEFAULT_RECIPE = "tabular"
#: The task's test metrics, ``test_``-prefixed: `multilayer.tabular.metrics.spec_metrics`.
task_metrics = spec_metrics
#: The recipe fields a table run may override.
OVERRIDABLE = (
    "hidden",
    "activation",
    "learning_rate",
    "schedule",
    "batch_size",
    "epochs",
    "validation_split",
    "label_smoothing",
    "dropout",
    "patience",
)


# -- data ---------------------------------------------------------------------------------------
def load_table(source: Any, what: str = "the data") -> tables.Table:
    """A `Table` from a CSV/Parquet path, a pandas/polars DataFrame or a `Table`."""
    if isinstance(source, tables.Table):
        return source
    if tables.is_frame(source):
        return tables.from_frame(source, what)
    if isinstance(source, (str, Path)):
        return tables.read_table(source)
    raise TypeError(
        f"{what} must be a CSV/Parquet path, a pandas/polars DataFrame or a Table, "
        f"got {type(source).__name__}"
    )


def _label(value: Any) -> Any:
    """A class label as a JSON scalar: whole floats as ints (1.0 -> 1)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def encode_target(table: tables.Table, spec: TableSpec) -> np.ndarray:
    """``table``'s target column(s) as training values for ``spec``: float64 for regression,
    the class index (int64) for binary and multi-class, a 0/1 matrix for multi-label.

    Raises:
        TableError: a missing target column or value, or a class training never saw.
    """
    columns = [table.column(name) for name in spec.target]  # TableError: missing, did you mean
    for name, values in zip(spec.target, columns, strict=True):
        missing = np.flatnonzero(
            np.fromiter((v is None for v in values), bool, len(values))
            if values.dtype == object
            else np.isnan(values)
        )
        if missing.size:
            raise tables.TableError(
                f"target column {name!r} of {table.source} has {missing.size} missing values "
                f"(first on data row {int(missing[0]) + 1}); drop those rows or fill them"
            )
    if spec.task == "regression":
        if columns[0].dtype == object:
            raise tables.TableError(
                f"target column {spec.target[0]!r} of {table.source} is text; regression "
                "needs numbers"
            )
        return np.asarray(columns[0], dtype=np.float64)
    if spec.task == "multilabel":
        target = table.target(spec.target, task="multilabel")
        return target.y
    index = {label: i for i, label in enumerate(spec.classes)}
    values = columns[0].tolist()
    unknown = [v for v in dict.fromkeys(values) if v not in index]
    if unknown:
        raise tables.TableError(
            f"target column {spec.target[0]!r} of {table.source} has classes training did "
            f"not see: {unknown[:10]} (training classes: {spec.classes[:20]})"
        )
    return np.fromiter((index[v] for v in values), dtype=np.int64, count=len(values))


def _columns(table: tables.Table, names: list[str]) -> dict[str, np.ndarray]:
    return {name: table.column(name) for name in names}


def _take(data: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {name: values[rows] for name, values in data.items()}


def split_rows(
    n: int, fraction: float, seed: int, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(kept, held_out)`` row indices: ``fraction`` of the rows held out by a seeded
    shuffle, per class when ``labels`` (class indices) are given, so every class keeps its
    share (a class of two or more rows keeps at least one row on each side)."""
    rng = np.random.default_rng(seed)
    if labels is None:
        order = rng.permutation(n)
        count = min(max(int(round(fraction * n)), 1), n - 1)
        return np.sort(order[count:]), np.sort(order[:count])
    kept, held = [], []
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        count = int(round(fraction * len(rows)))
        if len(rows) >= 2:
            count = min(max(count, 1), len(rows) - 1)
        held.append(rows[:count])
        kept.append(rows[count:])
    return np.sort(np.concatenate(kept)), np.sort(np.concatenate(held))


def budget(
    recipe: Recipe, steps_per_epoch: int, fixed_epochs: bool = False, fixed_patience: bool = False
) -> Recipe:
    """``recipe`` with its epochs and patience scaled to a table of ``steps_per_epoch``
    steps: ``extra["max_steps"]`` caps the epochs at ``ceil(max_steps / steps_per_epoch)``
    (never below ``extra["min_epochs"]``, default 10), so a large table trains for a budget
    of optimizer steps rather than a fixed number of passes (the schedule spans the epochs
    actually run), and ``extra["patience_fraction"]`` makes the patience that fraction of
    the epochs (at least 5, never above ``extra["patience"]``). Epochs or a patience given
    by the user (``fixed_epochs``, ``fixed_patience``) are kept."""
    extra = dict(recipe.extra)
    epochs = recipe.epochs
    max_steps = extra.get("max_steps")
    if max_steps and not fixed_epochs:
        floor = int(extra.get("min_epochs", 10))
        epochs = min(epochs, max(math.ceil(int(max_steps) / max(steps_per_epoch, 1)), floor))
    fraction = extra.get("patience_fraction")
    if fraction and not fixed_patience:
        limit = int(extra.get("patience", epochs))
        extra["patience"] = min(limit, max(5, math.ceil(float(fraction) * epochs)))
    if epochs == recipe.epochs and extra == recipe.extra:
        return recipe
    return recipe.with_overrides(epochs=epochs, extra=extra)


def feature_space(spec: TableSpec, recipe: Recipe, seed: int) -> FeatureSpace:
    """The (unadapted) `FeatureSpace` of ``recipe`` for ``spec``'s columns. ``recipe.extra``
    may set ``one_hot_max``, ``clip`` (the smooth-clipping bound of numeric columns) and
    ``one_hot_values`` (numeric columns with 3 to that many distinct values also get a
    one-hot encoding of their value: `FeatureSpace.float_robust`)."""
    numeric = (
        FeatureSpace.float_normalized()
        if recipe.extra.get("numeric") == "normalized"
        else FeatureSpace.float_robust(
            clip=recipe.extra.get("clip", DEFAULT_CLIP),
            scale_factor=float(recipe.extra.get("scale_factor", 1.0)),
            one_hot_values=int(recipe.extra.get("one_hot_values", 0)),
        )
    )
    return FeatureSpace.from_kinds(
        spec.kinds,
        numeric=numeric,
        one_hot_max=int(recipe.extra.get("one_hot_max", 16)),
        seed=seed,
    )


# -- the model ----------------------------------------------------------------------------------
def build_table_model(
    space: FeatureSpace,
    spec: TableSpec,
    recipe: Recipe,
    y_train: np.ndarray,
    steps_per_epoch: int,
    seed: int | None = None,
) -> Model:
    """The compiled MLP of ``recipe`` on ``space``'s encoded features, with the output,
    loss and metrics of ``spec.task``. A regression's output is de-standardised inside the
    model (a fixed Rescaling by the training targets' standard deviation and mean), so it
    predicts in the target's units."""
    from multilayer.engine import losses, optimizers
    from multilayer.engine.layers import Dense, Dropout, Rescaling
    from multilayer.engine.metrics import AUC, RootMeanSquaredError
    from multilayer.models.functional import Model

    inputs = space.get_inputs()
    x = space.get_encoded_features()
    assert not isinstance(x, dict)
    for units in recipe.hidden:
        x = Dense(
            units, activation=recipe.activation, kernel_initializer=recipe.kernel_initializer
        )(x)
        if recipe.dropout:
            x = Dropout(recipe.dropout)(x)
    metrics: list[Any]
    if spec.task == "regression":
        mean = float(np.mean(y_train))
        std = float(np.std(y_train)) or 1.0
        x = Dense(1, kernel_initializer=recipe.kernel_initializer)(x)
        output = Rescaling(std, offset=mean)(x)
        loss: Any = losses.MeanSquaredError()
        metrics = [RootMeanSquaredError(name="rmse"), "mae"]
    elif spec.task == "multiclass":
        output = Dense(len(spec.classes), activation="softmax")(x)
        loss = losses.SparseCategoricalCrossentropy(label_smoothing=recipe.label_smoothing)
        metrics = ["accuracy"]
    else:
        output = Dense(spec.n_outputs, activation="sigmoid")(x)
        loss = losses.BinaryCrossentropy(label_smoothing=recipe.label_smoothing)
        metrics = ["accuracy", AUC(name="auc")] if spec.task == "binary" else ["accuracy"]
    rename_clashes(output, set(inputs))
    model = Model(inputs, output, seed=seed)
    learning_rate = make_schedule(recipe, steps_per_epoch)
    weight_decay = float(recipe.extra.get("weight_decay", 0.0))
    optimizer = optimizers.AdamW(
        learning_rate=learning_rate, weight_decay=weight_decay, beta_2=recipe.beta_2
    )
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    return model


# -- a run --------------------------------------------------------------------------------------
def table_recipe(name: str, overrides: dict[str, Any] | None) -> tuple[Recipe, dict[str, Any]]:
    """The recipe ``name`` with ``overrides`` (fields of `OVERRIDABLE`; None values ignored;
    ``patience`` goes into the recipe's extras), and the overrides as applied.

    Raises:
        ValueError: an override that is not in `OVERRIDABLE`, or an unknown recipe.
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(overrides) - set(OVERRIDABLE))
    if unknown:
        raise ValueError(f"cannot override {unknown}: the overridable fields are {OVERRIDABLE}")
    if "hidden" in overrides:
        overrides["hidden"] = tuple(overrides["hidden"])
    patience = overrides.pop("patience", None)
    chosen = get_recipe(name).with_overrides(**overrides)
    if patience is not None:
        chosen = chosen.with_overrides(extra={**chosen.extra, "patience": int(patience)})
        overrides["patience"] = patience
    return chosen, overrides


# -- one table run: the steps in-memory and streamed runs share ---------------------------------
def best_epoch_callbacks(recipe: Recipe, spec: TableSpec, validation: bool) -> list[Any]:
    """EarlyStopping that keeps the best epoch's weights, watching ``val_loss`` (or
    ``recipe.extra["monitor"]``; a regression always watches ``val_loss``) with the recipe's
    patience; none without a validation split."""
    from multilayer.callbacks import EarlyStopping

    if not validation:
        return []
    patience = int(recipe.extra.get("patience", recipe.epochs))
    monitor = str(recipe.extra.get("monitor", "val_loss"))
    if monitor == "val_accuracy" and spec.task == "regression":
        monitor = "val_loss"
    return [EarlyStopping(monitor=monitor, patience=patience, restore_best_weights=True)]


@contextmanager
def new_run_directory(output: str | Path) -> Iterator[RunDir]:
    """The run directory, created; removed again if the run fails before writing into it."""
    run = RunDir(output)
    run.create()
    try:
        yield run
    except BaseException:
        if run.path.is_dir() and not any(run.path.iterdir()):
            run.path.rmdir()
        raise


def run_metrics(
    spec: TableSpec,
    test_loss: float,
    y: np.ndarray,
    outputs: np.ndarray,
    history: History,
    seconds: float,
    best_epoch: int,
) -> dict[str, Any]:
    """metrics.json of a table run: the task's test metrics, the epochs and the time."""
    epochs = len(history.epoch)
    return {
        "task": spec.task,
        "test_loss": float(test_loss),
        **spec_metrics(spec, y, outputs),
        "test_samples": int(len(y)),
        "epochs": epochs,
        "best_epoch": int(best_epoch),
        "train_seconds": seconds,
        "train_segments": [seconds],
        "seconds_per_epoch": seconds / max(epochs, 1),
    }


def run_config(
    recipe: Recipe,
    flags: dict[str, Any],
    seed: int,
    source: dict[str, Any],
    spec: TableSpec,
    samples: tuple[int, int, int],
) -> dict[str, Any]:
    """config.json of a table run; ``samples`` counts the (train, validation, test) rows."""
    from multilayer.training import versions

    train, validation, test = samples
    return {
        "recipe": recipe.to_dict(),
        "flags": {"recipe": recipe.name, **flags},
        "seed": seed,
        "dataset": {
            **source,
            "train_samples": int(train),
            "validation_samples": int(validation),
            "test_samples": int(test),
        },
        "table": spec.to_config(),
        "versions": versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def save_run(
    run: RunDir,
    model: Model,
    config: dict[str, Any],
    history: History,
    metrics: dict[str, Any],
) -> None:
    """Write the model (with its training record and TableSpec) and the run's JSON/CSV files."""
    model.training_info = {
        "recipe": config["recipe"]["name"],
        "dataset": config["dataset"]["name"],
        "seed": config["seed"],
        "epochs": metrics["epochs"],
        "test_loss": metrics["test_loss"],
        "train_seconds": metrics["train_seconds"],
        "created": config["created"],
        "table": config["table"],
    }
    model.save(run.model_path)
    run.write_config(config)
    run.write_history(history.epoch, history.history)
    run.write_metrics(metrics)


@dataclass
class PreparedTableRun:
    """A table run ready to train (`prepare_table_run`); nothing is written yet."""

    recipe: Recipe
    spec: TableSpec
    space: FeatureSpace
    model: Model
    train: tuple[dict[str, np.ndarray], np.ndarray]
    validation: tuple[dict[str, np.ndarray], np.ndarray] | None
    test: tuple[dict[str, np.ndarray], np.ndarray]
    seed: int
    output: Path
    source: dict[str, Any]
    flags: dict[str, Any]
    #: more callbacks for ``fit``, after the run's own (e.g. the pruning of `multilayer.tuning`)
    callbacks: list = field(default_factory=list)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.train[1]) / self.recipe.batch_size)

    def run(self, verbose: int = 0, report: bool = True) -> TableRunResult:
        """Train (best epoch on the validation split), test, write the run directory (and
        its report adapted to the task, unless ``report`` is False or matplotlib missing)."""
        with new_run_directory(self.output) as run:
            callbacks = best_epoch_callbacks(self.recipe, self.spec, self.validation is not None)
            start = time.perf_counter()
            history = self.model.fit(
                *self.train,
                batch_size=self.recipe.batch_size,
                epochs=self.recipe.epochs,
                validation_data=self.validation,
                callbacks=[*callbacks, *self.callbacks],
                verbose=verbose,
            )
            best = callbacks[0].best_epoch if callbacks else len(history.epoch) - 1
            refit = bool(self.recipe.extra.get("refit")) and self.validation is not None
            if refit:
                self._refit(best + 1)
            seconds = time.perf_counter() - start
            x, y = self.test
            loss = self.model.evaluate(x, y, verbose=0, return_dict=True)["loss"]
            outputs = self.model.predict(x, verbose=0)
            metrics = run_metrics(self.spec, loss, y, outputs, history, seconds, best)
            metrics["refit_epochs"] = best + 1 if refit else None
            samples = (
                len(self.train[1]),
                0 if self.validation is None else len(self.validation[1]),
                len(y),
            )
            config = run_config(self.recipe, self.flags, self.seed, self.source, self.spec, samples)
            save_run(run, self.model, config, history, metrics)
        if report:
            from multilayer.report.tabular import write_table_report

            write_table_report(run.path, self.model, y, outputs)
        return TableRunResult(run, self.model, history, config, metrics)

    def _refit(self, epochs: int) -> None:
        """Train a fresh model (features adapted anew) on the training and validation rows
        together for the best epoch count found on the validation split: on a small table
        the held-out fifth is worth more as training data than as a stopping rule."""
        assert self.validation is not None
        x = {
            name: np.concatenate([self.train[0][name], self.validation[0][name]])
            for name in self.train[0]
        }
        y = np.concatenate([self.train[1], self.validation[1]])
        space = feature_space(self.spec, self.recipe, self.seed).adapt(x)
        steps = math.ceil(len(y) / self.recipe.batch_size)
        model = build_table_model(space, self.spec, self.recipe, y, steps, seed=self.seed)
        model.fit(x, y, batch_size=self.recipe.batch_size, epochs=epochs, verbose=0)
        self.space, self.model = space, model


@dataclass
class TableRunResult:
    """A finished table run: its directory, model, history, config and metrics."""

    run: RunDir
    model: Model
    history: History
    config: dict[str, Any]
    metrics: dict[str, Any]


def prepare_table_run(
    data: Any,
    target: str | list[str],
    *,
    test_data: Any = None,
    test_split: float = 0.2,
    task: str | None = None,
    recipe: str = DEFAULT_RECIPE,
    overrides: dict[str, Any] | None = None,
    seed: int | None = None,
    output: str | Path | None = None,
    runs_root: str | Path = "runs",
) -> PreparedTableRun:
    """Read, split, adapt and build everything a table run needs; write nothing.

    Args:
        data: the training table: a CSV/Parquet path, a DataFrame or a `Table`.
        target: the target column, or several 0/1 columns for a multi-label task.
        test_data: a separate test table with the same columns; else ``test_split`` of
            ``data`` (stratified for a classification) is held out.
        task: ``regression``, ``binary``, ``multiclass`` or ``multilabel``; default: chosen
            from the target column (`multilayer.data.tables.Table.target`).
        recipe: a recipe name (default ``tabular``); ``overrides``: fields to change
            (`OVERRIDABLE`).

    Raises:
        TableError: the data cannot be used (named: file, column, line), e.g. a missing
            target column, a target with one class, an all-missing column, mismatched
            train/test columns, a test class training did not see.
        ValueError: a bad ``test_split``, an unknown recipe or override.
    """
    chosen, overrides = table_recipe(recipe, overrides)
    if test_data is None and not 0 < test_split < 1:
        raise ValueError(f"test_split must be in (0, 1), got {test_split!r}")
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    table = load_table(data)
    names = [target] if isinstance(target, str) else list(target)
    found = table.target(names, task)
    columns = [c.name for c in table.columns if c.name not in names]
    if not columns:
        raise tables.TableError(
            f"{table.source} has no columns besides the target {names}: nothing to learn from"
        )
    classes = [_label(c) for c in found.classes] if found.task != "regression" else []
    if found.task != "regression" and any(table.kind(n) == "boolean" for n in names[:1]):
        classes = [bool(c) for c in classes] if found.task == "binary" else classes
    spec = TableSpec(
        target=list(found.names),
        task=found.task,
        classes=list(found.names) if found.task == "multilabel" else classes,
        columns=columns,
        kinds={c.name: c.kind for c in table.columns if c.name in columns},
    )
    x_all = _columns(table, columns)
    y_all = found.y
    stratify = y_all if spec.task in ("binary", "multiclass") else None
    if test_data is not None:
        test_table = load_table(test_data, "the test data")
        tables.check_columns(table.column_names, test_table.column_names, test_table.source)
        x_test, y_test = _columns(test_table, columns), encode_target(test_table, spec)
        x_train, y_train = x_all, y_all
    else:
        kept, held = split_rows(len(y_all), test_split, seed, stratify)
        x_train, y_train = _take(x_all, kept), y_all[kept]
        x_test, y_test = _take(x_all, held), y_all[held]
    validation = None
    if chosen.validation_split:
        labels = y_train if stratify is not None else None
        kept, held = split_rows(len(y_train), chosen.validation_split, seed + 1, labels)
        validation = (_take(x_train, held), y_train[held])
        x_train, y_train = _take(x_train, kept), y_train[kept]
    min_steps = int(chosen.extra.get("min_steps_per_epoch", 1))
    if min_steps > 1:  # a small table: smaller batches, so an epoch is several steps
        batch = max(min(chosen.batch_size, math.ceil(len(y_train) / min_steps)), 16)
        chosen = chosen.with_overrides(batch_size=min(batch, chosen.batch_size))
    steps = math.ceil(len(y_train) / chosen.batch_size)
    chosen = budget(
        chosen, steps, fixed_epochs="epochs" in overrides, fixed_patience="patience" in overrides
    )
    space = feature_space(spec, chosen, seed).adapt(x_train)
    model = build_table_model(space, spec, chosen, y_train, steps, seed=seed)
    source = {
        "name": str(data) if isinstance(data, (str, Path)) else table.source,
        "rows": table.rows,
        "test_source": None if test_data is None else str(test_data),
        "test_split": None if test_data is not None else test_split,
    }
    output = Path(output) if output is not None else new_run_path(runs_root, chosen.name)
    flags = {
        "data": source["name"],
        "target": names,
        "task": task,
        "test_data": source["test_source"],
        "test_split": source["test_split"],
        **{k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
    }
    return PreparedTableRun(
        recipe=chosen,
        spec=spec,
        space=space,
        model=model,
        train=(x_train, y_train),
        validation=validation,
        test=(x_test, y_test),
        seed=seed,
        output=output,
        source=source,
        flags=flags,
    )


def train_table(data: Any, target: str | list[str], **options: Any) -> TableRunResult:
    """`prepare_table_run` then `PreparedTableRun.run` (``verbose`` goes to ``run``)."""
    verbose = options.pop("verbose", 0)
    return prepare_table_run(data, target, **options).run(verbose=verbose)
