"""``mlp tune``: search a recipe's hyperparameters with Optuna (`multilayer.tuning`).

This module parses the flags into `multilayer.tuning.tune` and prints what happens.
"""

from pathlib import Path
from typing import Annotated

import typer

from multilayer.cli.common import DataDirOption, DatasetOption


def _duration(value: str | None) -> str | None:
    from multilayer.tuning import parse_duration

    if value is not None:
        try:
            parse_duration(value)
        except ValueError as error:
            raise typer.BadParameter(str(error)) from None
    return value


def _pruner(value: str) -> str:
    from multilayer.tuning import PRUNERS

    if value not in PRUNERS:
        raise typer.BadParameter(f"expected one of {', '.join(PRUNERS)}, got {value!r}")
    return value


def command(
    output: Annotated[
        Path,
        typer.Option("--output", "-o", metavar="TUNE_DIR", help="Directory of the search's files."),
    ],
    dataset: DatasetOption = "mnist",
    data: Annotated[
        Path | None,
        typer.Option(
            metavar="TABLE",
            help="A CSV or Parquet table to search on instead of --dataset (with --target).",
        ),
    ] = None,
    target: Annotated[
        list[str] | None,
        typer.Option(help="The target column of --data; repeat it for a multi-label task."),
    ] = None,
    data_dir: DataDirOption = None,
    recipe: Annotated[
        str | None,
        typer.Option(
            help="The recipe whose other settings every trial keeps (default: fast, or "
            "tabular for --data)."
        ),
    ] = None,
    trials: Annotated[
        int,
        typer.Option(
            min=1,
            help="Finished trials the study should have (all workers and runs together; "
            "re-running continues up to this number).",
        ),
    ] = 20,
    timeout: Annotated[
        str | None,
        typer.Option(
            callback=_duration, metavar="DURATION", help="Start no trial after this (90s, 10m, 2h)."
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(min=1, help="Worker processes on this machine; each gets cores/K threads."),
    ] = 1,
    study: Annotated[str, typer.Option(help="The study's name in the storage.")] = "multilayer",
    storage: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="postgresql://user@host:port/database shared by several machines "
            "(default: a journal file in TUNE_DIR).",
        ),
    ] = None,
    space: Annotated[
        Path | None,
        typer.Option(metavar="TOML", help="A TOML file changing the default search space."),
    ] = None,
    pruner: Annotated[
        str, typer.Option(callback=_pruner, help="median, hyperband or none.")
    ] = "median",
    heartbeat: Annotated[
        int,
        typer.Option(
            min=1,
            metavar="SECONDS",
            help="Heartbeat interval: a dead worker's trial is retried after twice this.",
        ),
    ] = 10,
    seed: Annotated[int | None, typer.Option(min=0, help="The sampler's seed.")] = None,
) -> None:
    """Search hyperparameters (Optuna): every trial a run directory, the best in TUNE_DIR/best."""
    from multilayer.tuning import TuneInterrupted, parse_duration, tune

    def log(line: str) -> None:
        print(line, flush=True)

    if (data is None) != (target is None or target == []):
        raise typer.BadParameter(
            "a table search needs both --data TABLE and --target COLUMN", param_hint="--data"
        )
    source = dataset if data is None else f"{data} (target {', '.join(target or [])})"
    print(
        f"Tuning recipe {recipe or ('fast' if data is None else 'tabular')!r} on {source}: "
        f"{trials} trials, {workers} worker(s), "
        f"study {study!r} in {'a journal in ' + str(output) if storage is None else 'PostgreSQL'}",
        flush=True,
    )
    try:
        result = tune(
            dataset,
            output,
            data=data,
            target=target,
            recipe=recipe,
            data_dir=data_dir,
            trials=trials,
            timeout=None if timeout is None else parse_duration(timeout),
            workers=workers,
            study=study,
            storage=storage,
            space=space,
            pruner=pruner,
            heartbeat=heartbeat,
            seed=seed,
            log=log,
        )
    except TuneInterrupted:
        print(f"interrupted: results so far in {output}; run the same command to continue")
        raise typer.Exit(130) from None
    states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(result.counts.items()))
    print(f"trials: {states}")
    if result.best_number is not None:
        accuracy = result.best_test_accuracy
        print(
            f"best: trial {result.best_number}, {result.monitor} {result.best_value:.4f}"
            + ("" if accuracy is None else f", test accuracy {100 * accuracy:.2f}%")
        )
        print(f"params: {result.best_params}")
    if result.best_dir is not None:
        print(f"best run: {result.best_dir}")
    if result.note:
        print(f"note: {result.note}")
    print(f"trials: {result.trials_csv}")
    if result.report is not None:
        print(f"report: {result.report}")
