"""``mlp train``: train a recipe on a dataset, test it, and write a run directory.

The work is the library's (`multilayer.training`): `prepare_run` / `prepare_resume`, then
`PreparedRun.run`; for a table (``--data FILE.csv|.parquet --target COLUMN``),
`multilayer.tabular.training.prepare_table_run` then `PreparedTableRun.run`. This module
parses the flags into those calls and prints what happens.
"""

from pathlib import Path
from typing import Annotated

import typer

from multilayer.cli.common import DataDirOption, DatasetOption, check_dataset_name, percent
from multilayer.engine.optimizers import REGISTRY as OPTIMIZERS
from multilayer.errors import ImageError
from multilayer.recipes import SCHEDULES


def _check_recipe_name(value: str | None) -> str | None:
    from multilayer.recipes import get_recipe

    if value is None:
        return None
    try:
        get_recipe(value)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    return value


def _positive(value: float | None) -> float | None:
    if value is not None and not value > 0:
        raise typer.BadParameter(f"must be greater than 0, got {value}")
    return value


def _open_unit(value: float | None) -> float | None:
    if value is not None and not 0 < value < 1:
        raise typer.BadParameter(f"must be in (0, 1), got {value}")
    return value


def _below_one(value: float | None) -> float | None:
    if value is not None and not 0 <= value < 1:
        raise typer.BadParameter(f"must be in [0, 1), got {value}")
    return value


def _check_every(value: str | None) -> str | None:
    from multilayer.models.checkpoint import parse_every

    if value is not None:
        try:
            parse_every(value)
        except ValueError as error:
            raise typer.BadParameter(str(error)) from None
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


def plural(count: int, word: str) -> str:
    """``1 epoch``, ``2 epochs``."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def flag(name: str) -> str:
    """``"learning_rate"`` -> ``"--learning-rate"``."""
    return "--" + name.replace("_", "-")


def resume_message(prepared) -> str:
    """Where a resumed run starts again, e.g. ``Resuming runs/x from checkpoint-000000212
    .safetensors: epoch 3/4, after step 20/106``."""
    checkpoint, epochs = prepared.resumed_from, prepared.recipe.epochs
    state = checkpoint.state
    if state.epoch >= epochs:
        where = f"training had finished ({plural(epochs, 'epoch')}); testing it again"
    elif state.step:
        where = (
            f"epoch {state.epoch + 1}/{epochs}, after step {state.step}/{prepared.steps_per_epoch}"
        )
    else:
        where = f"epoch {state.epoch + 1}/{epochs} ({plural(state.epoch, 'epoch')} done)"
    return f"Resuming {prepared.output} from {checkpoint.path.name}: {where}"


def plan_message(prepared) -> str:
    """``Training recipe 'fast': 784-512-768-10 relu, adam lr 0.004 (onecycle), ...``."""
    recipe = prepared.recipe
    layers = "-".join(str(n) for n in prepared.layer_sizes)
    n_val = 0 if prepared.validation is None else len(prepared.validation[0])
    return (
        f"Training recipe {recipe.name!r}: {layers} {recipe.activation}, "
        f"{recipe.optimizer} lr {recipe.learning_rate:g} ({recipe.schedule}), batch "
        f"{recipe.batch_size}, {plural(recipe.epochs, 'epoch')} on {prepared.dataset.name} "
        f"({len(prepared.train[0])} train / {n_val} validation), seed {prepared.seed}"
    )


def result_message(result) -> str:
    """``test accuracy 98.52% (loss 0.5519) - trained in 18.3 s (...) - run: runs/x``."""
    metrics = result.metrics
    segments = len(metrics["train_segments"])
    return (
        f"test accuracy {percent(metrics['test_accuracy'])} (loss {metrics['test_loss']:.4f}) - "
        f"trained in {metrics['train_seconds']:.1f} s ({metrics['seconds_per_epoch']:.2f} "
        f"s/epoch, {plural(metrics['epochs'], 'epoch')}"
        + (f" in {segments} segments" if segments > 1 else "")
        + f") - run: {result.run.path}"
    )


def table_plan_message(prepared) -> str:
    """``Training recipe 'tabular' on train.csv: binary target 'y' (classes [0, 1]), ...``."""
    recipe, spec = prepared.recipe, prepared.spec
    if hasattr(prepared, "sizes"):  # a streamed run (multilayer.tabular.streamed)
        n_train, n_val, n_test = prepared.sizes
    else:
        n_val = 0 if prepared.validation is None else len(prepared.validation[1])
        n_train, n_test = len(prepared.train[1]), len(prepared.test[1])
    target = ", ".join(repr(t) for t in spec.target)
    classes = f" (classes {spec.classes[:10]})" if spec.task in ("binary", "multiclass") else ""
    hidden = "-".join(str(n) for n in recipe.hidden) or "no hidden layer"
    return (
        f"Training recipe {recipe.name!r} on {prepared.source['name']}: {spec.task} target "
        f"{target}{classes} from {plural(len(spec.columns), 'column')}; {hidden} "
        f"{recipe.activation}, batch {recipe.batch_size}, up to {plural(recipe.epochs, 'epoch')} "
        f"({n_train} train / {n_val} validation / {n_test} test"
        + (", streamed from the file" if hasattr(prepared, "sizes") else "")
        + "), "
        f"seed {prepared.seed}"
    )


#: The metrics ``mlp train`` prints for a table run, per task.
_TABLE_METRICS = {
    "regression": ("test_rmse", "test_mae", "test_r2"),
    "binary": ("test_accuracy", "test_roc_auc", "test_f1", "test_log_loss"),
    "multiclass": ("test_accuracy", "test_roc_auc", "test_f1", "test_log_loss"),
    "multilabel": ("test_accuracy", "test_roc_auc", "test_f1", "test_log_loss"),
}


def table_result_message(result) -> str:
    """``test accuracy 0.9737, roc_auc 0.9964, ... - trained in 1.2 s (best epoch 40 of
    70) - run: runs/x``."""
    metrics = result.metrics
    shown = ", ".join(
        f"{key.removeprefix('test_').replace('_', ' ')} "
        + ("n/a" if metrics.get(key) is None else f"{metrics[key]:.4f}")
        for key in _TABLE_METRICS[metrics["task"]]
    )
    return (
        f"test {shown} - trained in {metrics['train_seconds']:.1f} s (best epoch "
        f"{metrics['best_epoch'] + 1} of {metrics['epochs']}) - run: {result.run.path}"
    )


def is_table_file(path: Path) -> bool:
    return path.suffix.lower() in (".csv", ".tsv", ".txt", ".parquet", ".pq")


def command(
    recipe: Annotated[
        str | None,
        typer.Option(
            callback=_check_recipe_name,
            help="Training recipe: fast (default for images), best (wide MLP with dropout, "
            "slower, more accurate), augmented (also distorts the training images on the fly), "
            "tutorial, or tabular (default for tables).",
        ),
    ] = None,
    dataset: DatasetOption = "mnist",
    data: Annotated[
        Path | None,
        typer.Option(
            help="Your own data: a CSV or Parquet table (with --target), an .npz file "
            "(x_train, y_train, x_test, y_test) or an image folder (one sub-folder per class)."
        ),
    ] = None,
    target: Annotated[
        list[str] | None,
        typer.Option(help="The target column of a --data table; repeat it for a multi-label task."),
    ] = None,
    test_data: Annotated[
        Path | None,
        typer.Option(help="A separate test table with the same columns as --data."),
    ] = None,
    test_split: Annotated[
        float | None,
        typer.Option(
            callback=_open_unit,
            help="Fraction of a --data table held out for testing (default 0.2), in (0, 1).",
        ),
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(
            help="regression, binary, multiclass or multilabel (default: from the target column)."
        ),
    ] = None,
    image_size: Annotated[
        str | None,
        typer.Option(
            metavar="HxW",
            help="Size the images of a --data folder are resized to, e.g. 32x32 (default 28x28).",
        ),
    ] = None,
    color_mode: Annotated[
        str | None,
        typer.Option(help="grayscale (default) or rgb, for the images of a --data folder."),
    ] = None,
    bad_images: Annotated[
        str | None,
        typer.Option(
            help="What to do with images of a --data folder that cannot be decoded: refuse "
            "(default: stop, naming the file) or skip (leave them out)."
        ),
    ] = None,
    data_dir: DataDirOption = None,
    hidden: Annotated[
        str | None, typer.Option(help="Hidden layer sizes, comma-separated, e.g. 512,768.")
    ] = None,
    activation: Annotated[
        str | None, typer.Option(help="Activation of the hidden layers (relu, gelu, tanh...).")
    ] = None,
    optimizer: Annotated[
        str | None, typer.Option(help="Optimizer: " + ", ".join(OPTIMIZERS.names()) + ".")
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
    adversarial: Annotated[
        float | None,
        typer.Option(
            callback=_below_one,
            metavar="EPS",
            help="FGSM adversarial training: move each pixel by EPS of its range, in [0, 1) "
            "(0 for none; recipe best: 0.1). Images only.",
        ),
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
    steps_per_epoch: Annotated[
        int | None,
        typer.Option(
            min=1, help="Stop each epoch after this many batches (a streamed --data table only)."
        ),
    ] = None,
    stream: Annotated[
        bool | None,
        typer.Option(
            "--stream/--no-stream",
            help="Read a --data table batch by batch instead of whole (bounded memory; test "
            "and validation rows by a hash of the row index). Default: stream files of 256 MB "
            "and more.",
        ),
    ] = None,
    report: Annotated[
        bool,
        typer.Option(
            "--report/--no-report",
            help="Write RUN_DIR/report/ (plots and index.html) at the end; needs matplotlib.",
        ),
    ] = True,
    tensorboard: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="Also write TensorBoard logs (DIR/train, DIR/validation); needs "
            "multilayer[tensorboard].",
        ),
    ] = None,
    mlflow: Annotated[
        bool,
        typer.Option(
            "--mlflow/--no-mlflow",
            help="Also log the run to MLflow: parameters, metrics per epoch, the model file; "
            "at MLFLOW_TRACKING_URI or MLflow's local ./mlflow.db. Needs multilayer[mlflow].",
        ),
    ] = False,
    mlflow_uri: Annotated[
        str | None,
        typer.Option(metavar="URI", help="Log to MLflow at this tracking URI (implies --mlflow)."),
    ] = None,
    answers: Annotated[
        bool,
        typer.Option(
            "--answers/--no-answers",
            help="Calibrate the model's probabilities and fit its 'not a digit' detector on "
            "the validation split, stored in the model (docs/honest-answers.md).",
        ),
    ] = True,
) -> None:
    """Train an MLP, evaluate it on the test set, and write a run directory."""
    from multilayer.models.checkpoint import TrainingInterrupted
    from multilayer.training import RecipeError, prepare_resume, prepare_run

    if data is not None and is_table_file(data):
        _train_table(
            data, target, test_data, test_split, task, recipe or "tabular",
            {
                "hidden": parse_hidden(hidden), "activation": activation,
                "learning_rate": learning_rate, "schedule": schedule,
                "batch_size": batch_size, "epochs": epochs,
                "validation_split": validation_split, "label_smoothing": label_smoothing,
            },
            {
                "--optimizer": optimizer, "--resume": resume,
                "--checkpoint-every": checkpoint_every, "--adversarial": adversarial,
            },
            early_stopping, seed, output, verbose, report, stream, steps_per_epoch,
        )  # fmt: skip
        return
    table_only: dict[str, object] = {"--target": target, "--test-data": test_data}
    table_only.update({"--test-split": test_split, "--task": task, "--stream": stream})
    table_only["--steps-per-epoch"] = steps_per_epoch
    given = [name for name, value in table_only.items() if value]
    if given:
        raise typer.BadParameter(
            f"{', '.join(given)} only apply to a table given with --data (.csv, .tsv, .parquet)"
        )
    image_options = _image_options(data, image_size, color_mode, bad_images)
    if data is not None:
        dataset = check_dataset_name(str(data)) or dataset
    recipe_name = recipe or "fast"

    overrides = {
        "hidden": parse_hidden(hidden),
        "activation": activation,
        "optimizer": optimizer,
        "learning_rate": learning_rate,
        "schedule": schedule,
        "batch_size": batch_size,
        "epochs": epochs,
        "validation_split": validation_split,
        "label_smoothing": label_smoothing,
        "adversarial": adversarial,
    }
    try:
        if resume is not None:
            explicit = {**overrides, "seed": seed, "output": output, "data_dir": data_dir}
            explicit.update(early_stopping=early_stopping, checkpoint_every=checkpoint_every)
            explicit.update(image_size=image_size, color_mode=color_mode, bad_images=bad_images)
            given = sorted(flag(name) for name, value in explicit.items() if value is not None)
            if given:
                raise typer.BadParameter(
                    f"a resumed run keeps the settings it was started with: drop "
                    f"{', '.join(given)}",
                    param_hint="--resume",
                )
            prepared = prepare_resume(
                resume, tensorboard_dir=tensorboard, mlflow=mlflow, mlflow_uri=mlflow_uri
            )
        else:
            prepared = prepare_run(
                recipe_name,
                dataset,
                overrides=overrides,
                data_dir=data_dir,
                seed=seed,
                output=output,
                early_stopping=early_stopping,
                checkpoint_every=checkpoint_every,
                image_options=image_options,
                tensorboard_dir=tensorboard,
                mlflow=mlflow,
                mlflow_uri=mlflow_uri,
            )
    except RecipeError as error:
        raise typer.BadParameter(str(error), param_hint=flag(error.field)) from None
    except ImageError as error:
        # the library names its own argument; on the command line it is --bad-images
        raise ImageError(
            str(error).replace("pass on_error='skip'", "pass --bad-images skip")
        ) from None
    except FileNotFoundError as error:
        from multilayer.training import NothingToResumeError

        if isinstance(error, NothingToResumeError):
            raise typer.BadParameter(str(error), param_hint="--resume") from None
        raise
    if verbose:
        if prepared.resumed_from is not None:
            print(resume_message(prepared), flush=True)
        print(plan_message(prepared), flush=True)
    try:
        result = prepared.run(
            verbose=1 if verbose else 0,
            report=report,
            resume_hint=f"mlp train --resume {prepared.output}",
            answers=answers,
        )
    except TrainingInterrupted:
        raise typer.Exit(130) from None  # fit has written a checkpoint and the resume command
    print(result_message(result))
    fitted = result.metrics.get("answers")
    if fitted is not None:
        print(
            f"calibrated: temperature {fitted['temperature']:.3f}, test ECE "
            f"{100 * fitted['test_ece_before']:.2f}% -> {100 * fitted['test_ece']:.2f}%; "
            f"'not sure' for {100 * fitted['test_rejected']:.2f}% of the test images"
        )
    elif answers and "answers_note" in result.metrics:
        print(f"no calibrated answers: {result.metrics['answers_note']}")
    if result.report_note is not None:
        print(f"no report written: {result.report_note}")
    if result.report is not None:
        print(f"report: {result.report}")


def _train_table(
    data: Path,
    target: list[str] | None,
    test_data: Path | None,
    test_split: float | None,
    task: str | None,
    recipe: str,
    overrides: dict,
    image_only: dict,
    early_stopping: int | None,
    seed: int | None,
    output: Path | None,
    verbose: bool,
    report: bool = True,
    stream: bool | None = None,
    steps_per_epoch: int | None = None,
) -> None:
    """``mlp train --data TABLE --target COLUMN``: `prepare_table_run` (or, for a file to
    stream, `prepare_streamed_run`), then run it."""
    from multilayer.data.tables import TASKS
    from multilayer.tabular.streamed import (
        PreparedStreamedRun,
        prepare_streamed_run,
        should_stream,
    )
    from multilayer.tabular.training import prepare_table_run

    if not target:
        raise typer.BadParameter(
            f"{data} is a table: name the column to predict with --target", param_hint="--target"
        )
    if task is not None and task not in TASKS:
        raise typer.BadParameter(
            f"must be one of {', '.join(TASKS)}, got {task!r}", param_hint="--task"
        )
    if test_data is not None and test_split is not None:
        raise typer.BadParameter(
            "give --test-data or --test-split, not both", param_hint="--test-split"
        )
    given = [name for name, value in image_only.items() if value is not None]
    if given:
        raise typer.BadParameter(
            f"{', '.join(given)} do not apply to table runs (they use AdamW, no checkpoints and no adversarial training)"
        )
    if early_stopping is not None:
        overrides = {**overrides, "patience": early_stopping}
    streaming = should_stream(data, stream)
    if steps_per_epoch is not None and not streaming:
        raise typer.BadParameter(
            "only applies to a streamed table (add --stream)", param_hint="--steps-per-epoch"
        )
    prepare = prepare_streamed_run if streaming else prepare_table_run
    prepared = prepare(
        data,
        target if len(target) > 1 else target[0],
        test_data=test_data,
        test_split=0.2 if test_split is None else test_split,
        task=task,
        recipe=recipe,
        overrides=overrides,
        seed=seed,
        output=output,
    )
    if verbose:
        print(table_plan_message(prepared), flush=True)
    if isinstance(prepared, PreparedStreamedRun):
        # A streamed run writes no report: its plots need the test rows in memory.
        result = prepared.run(verbose=1 if verbose else 0, steps_per_epoch=steps_per_epoch)
    else:
        result = prepared.run(verbose=1 if verbose else 0, report=report)
    print(table_result_message(result))
    if report and result.run.report_path.is_file():
        print(f"report: {result.run.report_path}")


def parse_image_size(value: str) -> tuple[int, int]:
    """``"32x48"`` -> ``(32, 48)`` (height, width)."""
    parts = value.lower().split("x")
    try:
        height, width = (int(part) for part in parts)
    except ValueError:
        raise typer.BadParameter(
            f"expected HEIGHTxWIDTH such as 28x28, got {value!r}", param_hint="--image-size"
        ) from None
    return height, width


def _image_options(
    data: Path | None, image_size: str | None, color_mode: str | None, bad_images: str | None
):
    """The `ImageOptions` of ``--image-size``, ``--color-mode`` and ``--bad-images`` (None
    when none is given); they need ``--data`` naming an image folder."""
    from multilayer.datasets.folder import ImageOptions

    given = {"--image-size": image_size, "--color-mode": color_mode, "--bad-images": bad_images}
    named = [flag for flag, value in given.items() if value is not None]
    if not named:
        return None
    if data is None or not data.is_dir():
        raise typer.BadParameter(
            f"{', '.join(named)} only apply to an image folder given with --data"
        )
    if bad_images not in (None, "skip", "refuse"):
        raise typer.BadParameter(
            f"must be skip or refuse, got {bad_images!r}", param_hint="--bad-images"
        )
    if color_mode not in (None, "grayscale", "rgb"):
        raise typer.BadParameter(
            f"must be grayscale or rgb, got {color_mode!r}", param_hint="--color-mode"
        )
    size = parse_image_size(image_size) if image_size is not None else (28, 28)
    try:
        return ImageOptions(
            image_size=size,
            color_mode=color_mode or "grayscale",
            on_error="skip" if bad_images == "skip" else "raise",
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
