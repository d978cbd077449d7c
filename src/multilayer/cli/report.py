"""``mlp report RUN_DIR``: learning curves, confusion matrix, mistakes and weights of a run."""

from pathlib import Path
from typing import Annotated

import typer

from multilayer.cli.common import DataDirOption, console
from multilayer.datasets import load_dataset


def command(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by mlp train.")],
    data_dir: DataDirOption = None,
) -> None:
    """Write RUN_DIR/report/: PNG figures and one self-contained HTML page."""
    from multilayer.report import TestData, write_report
    from multilayer.runs import RunDir

    run = RunDir(run_dir).require()
    data = load_dataset(run.dataset_argument, data_dir)
    page = write_report(run.path, test_data=TestData(data.x_test, data.y_test, data.class_names))
    console().print(f"report written to {page}")
