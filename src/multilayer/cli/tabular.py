"""``mlp predict`` and ``mlp evaluate`` for a run trained on a table (the library does the work:
`multilayer.tabular.predict`); the commands call these when the run's config.json records a
table (``RunDir.table_spec()``), or, for a bare model file, its ``training_info`` does."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from multilayer.cli.common import console
from multilayer.runs import resolve_model_path
from multilayer.tabular.spec import TableSpec


def table_run(model: Path) -> TableSpec | None:
    """The spec if ``model`` names a run directory or model file trained on a table, else
    None (a bare model file is loaded to read its ``training_info``)."""
    from multilayer.tabular.predict import load_model_file, model_table_spec

    model_file, run = resolve_model_path(model)
    if run is not None:  # a run directory: its config.json says
        return run.table_spec()
    return model_table_spec(load_model_file(model_file))


def predict(run: Path, files: list[Path], output: Path | None) -> None:
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


def evaluate(run: Path, spec: TableSpec, data: Path | None, as_json: bool) -> None:
    """Print the task's metrics of the run's model on the table ``data``."""
    from multilayer.tabular.predict import evaluate_table

    if data is None:
        raise typer.BadParameter(
            f"give the table to evaluate on, with the target column {spec.target[0]!r}: "
            f"mlp evaluate {run} test.csv"
        )
    results = evaluate_table(run, data)
    if as_json:
        print(json.dumps({"run": str(run), "data": str(data), "task": spec.task, **results}))
        return
    from rich.table import Table

    table = Table(title=f"{run} on {data} ({spec.task})", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in results.items():
        shown = (
            "–" if value is None else (f"{value:.4f}" if isinstance(value, float) else str(value))
        )
        table.add_row(name, shown)
    console().print(table)
