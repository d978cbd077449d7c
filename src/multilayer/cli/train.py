"""``mlp train``: train a recipe on a dataset, test it, and write a run directory.

The steps, each its own function so that flags can hook into one of them:
`resolve_recipe` (recipe + flag overrides, validated before any data is read),
``load_dataset`` + `split` (stratified validation split), ``build_model``,
`make_callbacks`, ``model.fit``, ``evaluate_model`` (test set) and `write_run` (see
`multilayer.runs` for the layout).

For flags that act during training (checkpoints, resuming): the run directory is created
(empty) *before* ``fit``, so a callback added in `make_callbacks` may write into it; it
is removed again if training fails while it is still empty.
"""

import math
import secrets
import time
from pathlib import Path
from typing import Annotated

import typer

from multilayer.cli.common import DataDirOption, DatasetOption, percent
from multilayer.cli.evaluate import evaluate_model
from multilayer.datasets import load_dataset

SCHEDULES = ("constant", "exponential", "cosine", "onecycle")
DEFAULT_RUNS_ROOT = Path("runs")


def _check_recipe_name(value: str) -> str:
    from multilayer.recipes import get_recipe

    try:
        get_recipe(value)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    return value


def _positive(value: float | None) -> float | None:
    if value is not None and not value > 0:
        raise typer.BadParameter(f"must be greater than 0, got {value}")
    return value


def _below_one(value: float | None) -> float | None:
    if value is not None and not 0 <= value < 1:
        raise typer.BadParameter(f"must be in [0, 1), got {value}")
    return value


def parse_hidden(value: str | None) -> tuple[int, ...] | None:
    """``"512,768"`` -> ``(512, 768)``; ``""`` or ``"none"`` -> ``()`` (no hidden layer)."""
    if value is None:
        return None
    if value.strip().lower() in ("", "none"):
        return ()
    try:
        units = tuple(int(part) for part in value.split(","))
    except ValueError:
        raise typer.BadParameter(
            f"expected a comma-separated list of layer sizes such as 512,768, got {value!r}",
            param_hint="--hidden",
        ) from None
    if any(u <= 0 for u in units):
        raise typer.BadParameter(
            f"layer sizes must be positive, got {value!r}", param_hint="--hidden"
        )
    return units


def resolve_recipe(name: str, **overrides):
    """The named recipe with the given flag values applied (None = keep the recipe's).

    Raises:
        typer.BadParameter: an unknown activation, optimizer or schedule (with did-you-mean).
    """
    from multilayer.engine import activations, optimizers
    from multilayer.recipes import get_recipe
    from multilayer.utils.naming import unknown_name_error

    recipe = get_recipe(name).with_overrides(**overrides)
    checks = (
        ("--activation", activations.get, recipe.activation),
        ("--optimizer", optimizers.get, recipe.optimizer),
    )
    for flag, resolve, value in checks:
        try:
            resolve(value)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint=flag) from None
    if recipe.schedule not in SCHEDULES:
        error = unknown_name_error("schedule", recipe.schedule, SCHEDULES)
        raise typer.BadParameter(str(error), param_hint="--schedule")
    return recipe


def split(x, y, fraction: float, seed: int):
    """Stratified hold-out: ``(x_train, y_train), (x_val, y_val)`` (the latter None if 0)."""
    if fraction == 0:
        return (x, y), None
    from multilayer.utils import train_validation_split

    return train_validation_split(x, y, fraction, seed=seed)


def make_callbacks(recipe, early_stopping: int | None, has_validation: bool) -> list:
    """EarlyStopping (best weights restored) if asked for. Divergence needs no callback:
    fit stops with a TrainingError and keeps the last good weights."""
    from multilayer.callbacks import EarlyStopping

    callbacks = []
    if early_stopping:
        callbacks.append(
            EarlyStopping(
                monitor="val_loss" if has_validation else "loss",
                patience=early_stopping,
                restore_best_weights=True,
            )
        )
    return callbacks


def versions() -> dict:
    import platform

    import numpy

    import multilayer

    return {
        "multilayer": multilayer.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


def write_run(run, model, config: dict, history, metrics: dict) -> None:
    """Write the model and the JSON/CSV files of a finished run into ``run`` (a RunDir)."""
    model.training_info = {
        "recipe": config["recipe"]["name"],
        "dataset": config["dataset"]["name"],
        "seed": config["seed"],
        "epochs": metrics["epochs"],
        "test_accuracy": metrics["test_accuracy"],
        "test_loss": metrics["test_loss"],
        "train_seconds": metrics["train_seconds"],
        "created": config["created"],
    }
    model.save(run.model_path)
    run.write_config(config)
    run.write_history(history.epoch, history.history)
    run.write_metrics(metrics)


def _check_every(value: str | None) -> str | None:
    from multilayer.models.checkpoint import parse_every

    if value is not None:
        try:
            parse_every(value)
        except ValueError as error:
            raise typer.BadParameter(str(error)) from None
    return value


CHECKPOINT_DIR = "checkpoints"


def resume_settings(run_dir: Path, explicit: dict) -> dict:
    """The settings recorded by the run being resumed (its newest valid checkpoint).

    Raises:
        typer.BadParameter: no valid checkpoint in ``run_dir/checkpoints``, or training
            options given on the command line (a resumed run keeps its own).
    """
    from multilayer.models.checkpoint import latest_checkpoint

    given = sorted(
        f"--{name.replace('_', '-')}" for name, value in explicit.items() if value is not None
    )
    if given:
        raise typer.BadParameter(
            f"a resumed run keeps the settings it was started with: drop {', '.join(given)}",
            param_hint="--resume",
        )
    checkpoint = latest_checkpoint(run_dir / CHECKPOINT_DIR)
    if checkpoint is None or not checkpoint.run:
        raise typer.BadParameter(
            f"no valid checkpoint in {run_dir / CHECKPOINT_DIR}: nothing to resume "
            "(checkpoints are written by --checkpoint-every and by Ctrl-C)",
            param_hint="--resume",
        )
    return checkpoint.run


def command(
    recipe: Annotated[
        str,
        typer.Option(
            callback=_check_recipe_name, help="Training recipe: fast (default) or tutorial."
        ),
    ] = "fast",
    dataset: DatasetOption = "mnist",
    data_dir: DataDirOption = None,
    hidden: Annotated[
        str | None, typer.Option(help="Hidden layer sizes, comma-separated, e.g. 512,768.")
    ] = None,
    activation: Annotated[
        str | None, typer.Option(help="Activation of the hidden layers (relu, gelu, tanh...).")
    ] = None,
    optimizer: Annotated[
        str | None, typer.Option(help="adam, adamw, sgd, rmsprop or adagrad.")
    ] = None,
    learning_rate: Annotated[
        float | None, typer.Option(callback=_positive, help="Peak learning rate.")
    ] = None,
    schedule: Annotated[
        str | None, typer.Option(help="Learning-rate schedule: " + ", ".join(SCHEDULES) + ".")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Samples per step.")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Number of epochs.")] = None,
    validation_split: Annotated[
        float | None,
        typer.Option(
            callback=_below_one, help="Fraction held out for validation, in [0, 1) (0 for none)."
        ),
    ] = None,
    label_smoothing: Annotated[
        float | None, typer.Option(callback=_below_one, help="Label smoothing, in [0, 1).")
    ] = None,
    early_stopping: Annotated[
        int | None,
        typer.Option(
            min=1,
            metavar="PATIENCE",
            help="Stop after PATIENCE epochs without improvement of val_loss (best weights kept).",
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(min=0, help="Random seed (default: a random one, recorded).")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Run directory (default: runs/<timestamp>-<recipe>)."),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose/--quiet", "-v/-q", help="Show per-epoch progress.")
    ] = True,
    checkpoint_every: Annotated[
        str | None,
        typer.Option(
            metavar="N|Ns",
            callback=_check_every,
            help="Write a crash-safe checkpoint into RUN_DIR/checkpoints every N epochs, or "
            "every N steps with Ns (e.g. 500s). Ctrl-C always writes one.",
        ),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            metavar="RUN_DIR",
            help="Continue an interrupted run from its newest valid checkpoint, with the "
            "settings it was started with; the result is bitwise identical to an "
            "uninterrupted run.",
        ),
    ] = None,
    report: Annotated[
        bool,
        typer.Option(
            "--report/--no-report",
            help="Write RUN_DIR/report/ (plots and index.html) at the end; needs matplotlib.",
        ),
    ] = True,
) -> None:
    """Train an MLP, evaluate it on the test set, and write a run directory."""
    from multilayer.models.checkpoint import TrainingInterrupted
    from multilayer.recipes import build_model
    from multilayer.runs import RunDir, new_run_path

    flags = {
        "hidden": parse_hidden(hidden),
        "activation": activation,
        "optimizer": optimizer,
        "learning_rate": learning_rate,
        "schedule": schedule,
        "batch_size": batch_size,
        "epochs": epochs,
        "validation_split": validation_split,
        "label_smoothing": label_smoothing,
    }
    if resume is not None:
        explicit = {**flags, "seed": seed, "output": output, "early_stopping": early_stopping}
        explicit.update(data_dir=data_dir, checkpoint_every=checkpoint_every)
        settings = resume_settings(resume, explicit)
        recipe, dataset, seed = settings["recipe"], settings["dataset"], settings["seed"]
        early_stopping, checkpoint_every = settings["early_stopping"], settings["every"]
        data_dir = Path(settings["data_dir"]) if settings["data_dir"] else None
        flags = dict(settings["flags"])
        flags["hidden"] = tuple(flags["hidden"]) if flags["hidden"] is not None else None
        output = resume
    chosen = resolve_recipe(recipe, **flags)
    seed = secrets.randbelow(2**31) if seed is None else seed
    data = load_dataset(dataset, data_dir)
    (x_train, y_train), validation = split(
        data.x_train, data.y_train, chosen.validation_split, seed
    )
    steps = math.ceil(len(x_train) / chosen.batch_size)
    model = build_model(chosen, data.x_train.shape[1:], data.num_classes, steps, seed=seed)
    callbacks = make_callbacks(chosen, early_stopping, validation is not None)

    run = RunDir(output if output is not None else new_run_path(DEFAULT_RUNS_ROOT, chosen.name))
    if resume is None:
        run.create()
    checkpoint = _checkpoint_config(
        run.path,
        checkpoint_every,
        resume is not None,
        {
            "recipe": recipe,
            "dataset": dataset,
            "data_dir": None if data_dir is None else str(data_dir),
            "seed": seed,
            "early_stopping": early_stopping,
            "every": checkpoint_every,
            "flags": {k: (list(v) if isinstance(v, tuple) else v) for k, v in flags.items()},
        },
    )
    if verbose:
        layers = "-".join(str(n) for n in (math.prod(data.x_train.shape[1:]), *chosen.hidden))
        n_val = 0 if validation is None else len(validation[0])
        print(
            f"Training recipe {chosen.name!r}: {layers}-{data.num_classes} {chosen.activation}, "
            f"{chosen.optimizer} lr {chosen.learning_rate:g} ({chosen.schedule}), batch "
            f"{chosen.batch_size}, {chosen.epochs} epochs on {data.name} ({len(x_train)} train / "
            f"{n_val} validation), seed {seed}",
            flush=True,
        )
    try:
        start = time.perf_counter()
        history = model.fit(
            x_train,
            y_train,
            batch_size=chosen.batch_size,
            epochs=chosen.epochs,
            validation_data=validation,
            callbacks=callbacks,
            verbose=1 if verbose else 0,
            checkpoint=checkpoint,
        )
        train_seconds = time.perf_counter() - start
        epochs_run = len(history.epoch)
        metrics = evaluate_model(model, data)
        metrics.update(
            epochs=epochs_run,
            train_seconds=train_seconds,
            seconds_per_epoch=train_seconds / epochs_run,
        )
        config = {
            "recipe": chosen.to_dict(),
            "flags": {
                "recipe": recipe,
                "dataset": dataset,
                "early_stopping": early_stopping,
                **{k: (list(v) if isinstance(v, tuple) else v) for k, v in flags.items()},
            },
            "seed": seed,
            "dataset": {
                **data.describe(),
                "validation_samples": 0 if validation is None else len(validation[0]),
            },
            "versions": versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        write_run(run, model, config, history, metrics)
        page = _write_report(run.path, model, data) if report else None
    except TrainingInterrupted:
        raise typer.Exit(130) from None  # fit has written a checkpoint and the resume command
    except BaseException:
        # Leave no empty run directory behind a failed or interrupted run.
        if run.path.is_dir() and not any(run.path.iterdir()):
            run.path.rmdir()
        raise
    print(
        f"test accuracy {percent(metrics['test_accuracy'])} (loss {metrics['test_loss']:.4f}) - "
        f"trained in {train_seconds:.1f} s ({metrics['seconds_per_epoch']:.2f} s/epoch, "
        f"{epochs_run} epochs) - run: {run.path}"
    )
    if page is not None:
        print(f"report: {page}")


def _write_report(run_path: Path, model, data) -> Path | None:
    """The run's report; a missing plotting library is a note, not a failed training run."""
    try:
        from multilayer.report import TestData, write_report

        return write_report(run_path, model, TestData(data.x_test, data.y_test, data.class_names))
    except ImportError as error:
        print(f"no report written: {error}")
        return None


def _checkpoint_config(run_path: Path, every: str | None, resume: bool, settings: dict):
    """Checkpoints go to RUN_DIR/checkpoints: every ``every`` (see `parse_every`) if given,
    else only when Ctrl-C interrupts training. ``settings`` let ``--resume`` rebuild the run."""
    from multilayer.models.checkpoint import CheckpointConfig, parse_every

    count, unit = parse_every(every) if every is not None else (None, "epoch")
    return CheckpointConfig(
        run_path / CHECKPOINT_DIR,
        every=count,
        unit=unit,
        keep=2,
        resume=resume,
        run=settings,
        resume_hint=f"mlp train --resume {run_path}",
    )
