"""``mlp report RUN_DIR``: learning curves, confusion matrix, mistakes and weights of a run."""

from pathlib import Path
from typing import Annotated

import typer

from multilayer.cli.common import DataDirOption, console


def command(
    run_dir: Annotated[
        Path, typer.Argument(help="A run directory of mlp train, or a TUNE_DIR of mlp tune.")
    ],
    data_dir: DataDirOption = None,
    test_data: Annotated[
        Path | None,
        typer.Option(
            help="For a run trained on a table: the test rows (CSV or Parquet, with the "
            "target column) for the task's figures."
        ),
    ] = None,
) -> None:
    """Write RUN_DIR/report/: PNG figures and one self-contained HTML page."""
    from multilayer.report import TestData, write_report
    from multilayer.runs import RunDir

    if (run_dir / "tune.json").is_file():  # a search of mlp tune: its report, and best/'s
        from multilayer.tuning import read_settings, write_results

        result = write_results(read_settings(run_dir))
        if result.best_dir is not None:
            console().print(f"best run: {result.best_dir / 'report' / 'index.html'}")
        if result.note:
            console().print(f"note: {result.note}")
        console().print(f"report written to {result.report}")
        return

    run = RunDir(run_dir).require()
    if run.table_spec() is not None:
        page = write_report(run.path, test_table=test_data)
        console().print(f"report written to {page}")
        return
    if test_data is not None:
        raise typer.BadParameter(
            "--test-data is for runs trained on a table; this run's config.json has no "
            "'table' entry"
        )
    data = run.load_dataset(data_dir)
    page = write_report(run.path, test_data=TestData(data.x_test, data.y_test, data.class_names))
    console().print(f"report written to {page}")
