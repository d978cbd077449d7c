"""``mlp predict`` and ``mlp evaluate`` for a run trained on a table (the library does the work:
`multilayer.tabular.predict`); the commands call these when the run's config.json records a
table (``RunDir.table_spec()``)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from multilayer.cli.common import console
from multilayer.runs import RunDir, resolve_model_path
from multilayer.tabular.spec import TableSpec


def table_run(model: Path) -> tuple[RunDir, TableSpec] | None:
    """The run directory and its spec if ``model`` names a run trained on a table, else None."""
    _, run = resolve_model_path(model)
    spec = run.table_spec() if run is not None else None
    return None if spec is None or run is None else (run, spec)


def predict(run: RunDir, files: list[Path], output: Path | None) -> None:
    """Write the predictions for one CSV/Parquet file to ``output``."""
    from multilayer.tabular.predict import output_format, write_predictions

    if len(files) != 1:
        raise typer.BadParameter(
            f"a run trained on a table predicts one CSV or Parquet file at a time, got {len(files)}"
        )
    if output is None:
        raise typer.BadParameter(
            "give the file to write the predictions to: -o predictions.csv (or .parquet)"
        )
    output_format(output)  # an unknown extension is refused before any work
    rows = write_predictions(run, files[0], output)
    console().print(f"wrote {rows:,} predictions to {output}")


def evaluate(run: RunDir, spec: TableSpec, data: Path | None, as_json: bool) -> None:
    """Print the task's metrics of the run's model on the table ``data``."""
    from multilayer.tabular.predict import evaluate_table

    if data is None:
        raise typer.BadParameter(
            f"give the table to evaluate on, with the target column {spec.target[0]!r}: "
            f"mlp evaluate {run.path} test.csv"
        )
    results = evaluate_table(run, data)
    if as_json:
        print(json.dumps({"run": str(run.path), "data": str(data), "task": spec.task, **results}))
        return
    from rich.table import Table

    table = Table(title=f"{run.path} on {data} ({spec.task})", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in results.items():
        shown = (
            "–" if value is None else (f"{value:.4f}" if isinstance(value, float) else str(value))
        )
        table.add_row(name, shown)
    console().print(table)
