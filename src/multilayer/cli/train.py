"""``mlp train``: train a recipe on a dataset, test it, and write a run directory.

The work is the library's (`multilayer.training`): `prepare_run` / `prepare_resume`, then
`PreparedRun.run`. This module parses the flags into those calls and prints what happens.
"""

from pathlib import Path
from typing import Annotated

import typer

from multilayer.cli.common import DataDirOption, DatasetOption, percent
from multilayer.engine.optimizers import REGISTRY as OPTIMIZERS
from multilayer.recipes import SCHEDULES


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
    }
    try:
        if resume is not None:
            explicit = {**overrides, "seed": seed, "output": output, "data_dir": data_dir}
            explicit.update(early_stopping=early_stopping, checkpoint_every=checkpoint_every)
            given = sorted(flag(name) for name, value in explicit.items() if value is not None)
            if given:
                raise typer.BadParameter(
                    f"a resumed run keeps the settings it was started with: drop "
                    f"{', '.join(given)}",
                    param_hint="--resume",
                )
            prepared = prepare_resume(resume)
        else:
            prepared = prepare_run(
                recipe,
                dataset,
                overrides=overrides,
                data_dir=data_dir,
                seed=seed,
                output=output,
                early_stopping=early_stopping,
                checkpoint_every=checkpoint_every,
            )
    except RecipeError as error:
        raise typer.BadParameter(str(error), param_hint=flag(error.field)) from None
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
