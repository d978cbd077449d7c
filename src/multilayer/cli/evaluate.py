"""``mlp evaluate MODEL``: test loss, accuracy, per-class precision/recall, confusion matrix;
for a run trained on a table, ``mlp evaluate RUN test.csv``: the task's metrics
(see `multilayer.cli.tabular`)."""

import json
from pathlib import Path
from typing import Annotated

import typer

from multilayer.cli.common import (
    DataDirOption,
    check_dataset_name,
    console,
    load_model_arg,
    percent,
)
from multilayer.datasets import load_dataset
from multilayer.training import evaluate_model


def print_report(results: dict, title: str) -> None:
    """Rich tables: accuracy and loss, per-class precision/recall, the confusion matrix."""
    from rich.table import Table

    out = console()
    loss = results["test_loss"]
    out.print(
        f"[bold]{title}[/bold]: test accuracy {percent(results['test_accuracy'])}"
        + ("" if loss is None else f", test loss {loss:.4f}")
        + f" on {results['test_samples']} samples"
    )
    per_class = Table(title="Per class", title_justify="left")
    for header in ("class", "precision", "recall", "support"):
        per_class.add_column(header, justify="left" if header == "class" else "right")
    for row in results["per_class"]:
        per_class.add_row(
            row["name"], percent(row["precision"]), percent(row["recall"]), str(row["support"])
        )
    out.print(per_class)
    names = [row["name"] for row in results["per_class"]]
    matrix = Table(
        title="Confusion matrix (rows: true class, columns: predicted)", title_justify="left"
    )
    matrix.add_column("true \\ pred")
    for name in names:
        matrix.add_column(name[:8], justify="right")
    for name, counts in zip(names, results["confusion_matrix"], strict=True):
        matrix.add_row(name, *(str(c) for c in counts))
    out.print(matrix)


def command(
    model: Annotated[Path, typer.Argument(help="A .safetensors model file or a run directory.")],
    table_file: Annotated[
        Path | None,
        typer.Argument(
            help="For a run trained on a table: a CSV or Parquet file with the target column."
        ),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            callback=check_dataset_name,
            help="mnist, fashion_mnist, or an .npz file with x_train, y_train, x_test, y_test "
            "(default: the dataset the run was trained on; mnist for a bare model file).",
        ),
    ] = None,
    data_dir: DataDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Evaluate a model on a dataset's test split, or a table run on a table."""
    from multilayer.cli import tabular

    spec = tabular.table_run(model)
    if spec is not None:
        tabular.evaluate(model, spec, table_file, as_json)
        return
    if table_file is not None:
        raise typer.BadParameter(
            f"a table file is for runs trained on a table; {model} was not (its config.json "
            "has no 'table' entry): use --dataset"
        )
    loaded, model_file, run = load_model_arg(model)
    if dataset is None and run is not None:
        data = run.load_dataset(data_dir)  # as training read it (image folder options too)
    else:
        data = load_dataset(dataset or "mnist", data_dir)
    results = evaluate_model(loaded, data)
    if as_json:
        from multilayer.runs import json_safe

        print(
            json.dumps(
                {"model": str(model_file), "dataset": data.name, **json_safe(results)}, indent=2
            )
        )
    else:
        print_report(results, f"{model_file} on {data.name}")
        fitted = results.get("answers")
        if fitted is not None:
            accepted = fitted["test_accuracy_accepted"]
            print(
                f"calibrated (temperature {fitted['temperature']:.3f}): expected calibration "
                f"error {100 * fitted['test_ece_before']:.2f}% -> {100 * fitted['test_ece']:.2f}%; "
                f"'not sure' for {100 * fitted['test_rejected']:.2f}% of the test images"
                + ("" if accepted is None else f", accuracy {100 * accepted:.2f}% on the others")
            )
