"""Training runs as a library call: recipe -> model -> fit -> test -> run directory -> report.

    from multilayer.training import train_run

    result = train_run("fast", "mnist", seed=0, output="runs/mine")
    result.metrics["test_accuracy"], result.run.path

``mlp train`` is this module with argument parsing and printing around it: `prepare_run`
(or `prepare_resume` for ``--resume``), then `PreparedRun.run`. The two steps are apart so
that a caller can show what is about to happen before training starts.

`prepare_run` checks the recipe before any data is read, loads and checks the dataset,
holds out a stratified validation split, and builds the model, which records the pixel
values it takes in its `InputScale` (saved in its file). It writes nothing.

`PreparedRun.run` creates the run directory (empty) *before* ``fit``, so checkpoints go into
it, and removes it again if training fails while it is still empty; then it trains, tests
on the test split, writes the run's files (see `multilayer.runs`) and its report.

Every checkpoint records the settings of the run (``Checkpoint.run``), so `prepare_resume`
rebuilds the same run from a run directory alone, and the training time of each segment,
so a resumed run reports the sum of its segments.

Nothing here prints, except what ``fit`` prints itself (its progress with ``verbose``, and
how to resume after Ctrl-C).
"""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from multilayer.datasets import load_dataset
from multilayer.datasets.folder import ImageOptions
from multilayer.errors import ModelFileError, MultilayerError
from multilayer.recipes import SCHEDULES, Recipe, build_model, get_recipe
from multilayer.runs import RunDir, new_run_path

if TYPE_CHECKING:
    from multilayer.models.callbacks import History
    from multilayer.models.checkpoint import Checkpoint, CheckpointConfig
    from multilayer.models.sequential import Sequential

__all__ = [
    "CHECKPOINT_DIR",
    "DEFAULT_RUNS_ROOT",
    "SCHEDULES",
    "NothingToResumeError",
    "PreparedRun",
    "RecipeError",
    "RunResult",
    "check_recipe",
    "evaluate_model",
    "experiment_loggers",
    "prepare_resume",
    "prepare_run",
    "resume_run",
    "train_run",
]

DEFAULT_RUNS_ROOT = Path("runs")
#: Where a run directory keeps its checkpoints.
CHECKPOINT_DIR = "checkpoints"
#: The recipe fields a run may override (``overrides=`` of `prepare_run`).
OVERRIDABLE = (
    "hidden",
    "activation",
    "optimizer",
    "learning_rate",
    "schedule",
    "batch_size",
    "epochs",
    "validation_split",
    "label_smoothing",
    "adversarial",
)


class RecipeError(MultilayerError, ValueError):
    """A recipe value names nothing known (an activation, optimizer or schedule).

    ``field`` is the recipe field at fault (e.g. ``"optimizer"``)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class NothingToResumeError(MultilayerError, FileNotFoundError):
    """A run directory without a valid checkpoint: there is nothing to resume."""


# -- the steps --------------------------------------------------------------------------------
def check_recipe(recipe: Recipe) -> Recipe:
    """``recipe``, once its activation, optimizer and schedule are known names.

    Raises:
        RecipeError: an unknown name (the message suggests the closest one).
    """
    from multilayer.engine import activations, optimizers
    from multilayer.utils.naming import unknown_name_error

    for name, resolve in (("activation", activations.get), ("optimizer", optimizers.get)):
        try:
            resolve(getattr(recipe, name))
        except ValueError as error:
            raise RecipeError(name, str(error)) from None
    if recipe.schedule not in SCHEDULES:
        unknown = unknown_name_error("schedule", recipe.schedule, SCHEDULES)
        raise RecipeError("schedule", str(unknown))
    return recipe


def split(x: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    """Stratified hold-out: ``(x_train, y_train), (x_val, y_val)`` (the latter None if 0)."""
    if fraction == 0:
        return (x, y), None
    from multilayer.utils import train_validation_split

    return train_validation_split(x, y, fraction, seed=seed)


def evaluate_model(model: Sequential, dataset) -> dict:
    """Evaluate ``model`` on ``dataset``'s test split.

    Returns:
        ``{"test_loss": float | None, "test_accuracy", "test_samples", "per_class",
        "confusion_matrix"}``; the loss is None for a model saved without its compile
        configuration.

    Raises:
        ValueError: the model's inputs or number of classes do not match the dataset.
    """
    from multilayer.calibration import expected_calibration_error, softmax_t
    from multilayer.evaluation import classification_report
    from multilayer.inference import answer_inputs, model_inputs
    from multilayer.utils import to_categorical

    if model.output_shape is None:
        raise ValueError("the model is not built: it has no output shape yet")
    outputs = int(model.output_shape[-1])
    if outputs != dataset.num_classes:
        raise ValueError(
            f"the model has {outputs} outputs but {dataset.name} has {dataset.num_classes} classes"
        )
    x = model_inputs(model, dataset.x_test, pixel_max=255)
    loss = None
    # A list of losses belongs to a model of several outputs; a Sequential has one.
    if model.loss is not None and not isinstance(model.loss, list):
        # Models trained the tutorial's way use one-hot targets, mlp train's use labels.
        targets = (
            to_categorical(dataset.y_test, outputs)
            if model.loss.target_kind == "categorical"
            else dataset.y_test
        )
        loss = model.evaluate(x, targets, verbose=0, return_dict=True)["loss"]
    answered = answer_inputs(model, x)
    probs = answered.probabilities
    report = classification_report(dataset.y_test, probs, dataset.num_classes, dataset.class_names)
    result = {
        "test_loss": loss,
        "test_accuracy": report["accuracy"],
        "test_samples": len(dataset.x_test),
        "per_class": report["per_class"],
        "confusion_matrix": report["confusion_matrix"],
    }
    answers = getattr(model, "answers", None)
    if answers is not None:  # calibrated probabilities and the reject option on the test set
        labels = np.asarray(dataset.y_test)
        kept = ~answered.rejected
        correct = probs.argmax(axis=1) == labels
        result["answers"] = {
            "temperature": answers.temperature,
            "test_ece_before": expected_calibration_error(softmax_t(answered.logits), labels),
            "test_ece": expected_calibration_error(probs, labels),
            "test_rejected": float(answered.rejected.mean()),
            "test_accuracy_accepted": float(correct[kept].mean()) if kept.any() else None,
        }
    return result


def versions() -> dict[str, str]:
    import platform

    import multilayer

    return {
        "multilayer": multilayer.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


# -- a run, prepared then run -------------------------------------------------------------------
@dataclass
class PreparedRun:
    """A run ready to train (`prepare_run`, `prepare_resume`); nothing is written yet.

    Attributes:
        recipe: the recipe with the run's overrides applied.
        dataset: the loaded dataset (``multilayer.datasets.Dataset``).
        seed: the run's seed (drawn at random if none was given).
        model: the compiled model, untrained (a resume restores its state in ``fit``).
        train, validation: ``(x, y)`` arrays; validation is None without a hold-out.
        output: the run directory to write.
        settings: what a resume needs, recorded in every checkpoint.
        resumed_from: the checkpoint a resumed run continues from, else None.
        callbacks: more callbacks for ``fit``, after the run's own (e.g. the pruning callback
            of `multilayer.tuning`).
        loggers: callbacks logging the run to TensorBoard or MLflow (after the others, so
            they see the weights EarlyStopping restores).
    """

    recipe: Recipe
    dataset: Any
    seed: int
    model: Sequential
    train: tuple[np.ndarray, np.ndarray]
    validation: tuple[np.ndarray, np.ndarray] | None
    output: Path
    settings: dict
    early_stopping: int | None = None
    checkpoint_every: str | None = None
    resumed_from: Checkpoint | None = None
    callbacks: list = field(default_factory=list)
    #: callbacks that log the run elsewhere (TensorBoard, MLflow; see `experiment_loggers`)
    loggers: list = field(default_factory=list)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.train[0]) / self.recipe.batch_size)

    @property
    def layer_sizes(self) -> list[int]:
        """Inputs, hidden units and classes: ``[784, 512, 768, 10]``."""
        inputs = math.prod(self.dataset.x_train.shape[1:])
        return [inputs, *self.recipe.hidden, self.dataset.num_classes]

    def run(
        self,
        verbose: int = 1,
        report: bool = True,
        resume_hint: str | None = None,
        answers: bool = True,
    ) -> RunResult:
        """Train, test, and write the run directory (and its report).

        Args:
            verbose: ``fit``'s verbosity (0 silent, 1 progress bar, 2 one line per epoch).
            report: also write ``report/`` (needs matplotlib; without it ``report_note``
                says why there is none).
            answers: fit the model's calibrated answers on the validation split and store
                them in it (`multilayer.answer_fitting`; metrics.json's ``answers_note``
                says why there are none).
            resume_hint: how to resume, printed by ``fit`` if Ctrl-C interrupts it.

        Raises:
            TrainingInterrupted: Ctrl-C; a checkpoint was written into the run directory.
            TrainingError: training diverged, or the checkpoint does not match this run.
            FileExistsError: a fresh run's directory exists and is not empty.
        """
        from multilayer.models.checkpoint import TrainingInterrupted

        run = RunDir(self.output)
        if self.resumed_from is None:
            run.create()
        try:
            start = time.perf_counter()
            if self.recipe.augment is not None:
                history = self._fit_augmented(verbose)
            else:
                history = self.model.fit(
                    *self.train,
                    batch_size=self.recipe.batch_size,
                    epochs=self.recipe.epochs,
                    validation_data=self.validation,
                    callbacks=self._callbacks(),
                    verbose=verbose,
                    checkpoint=self._checkpoint_config(run.path, resume_hint),
                )
            # A resumed run's training time is the sum of its segments: each checkpoint
            # records those before it, and this one is the last.
            previous = self.resumed_from.state.segments if self.resumed_from else []
            segments = [*previous, time.perf_counter() - start]
            answers_note = self._fit_answers() if answers else "not asked for"
            metrics = self._test(history, segments)
            if answers_note is not None:
                metrics["answers_note"] = answers_note
            config = self._config()
            self._write(run, config, history, metrics)
            page, note = self._report(run) if report else (None, None)
        except TrainingInterrupted:
            raise  # the run directory holds the checkpoint to resume from
        except BaseException:
            # Leave no empty run directory behind a failed or interrupted run.
            if run.path.is_dir() and not any(run.path.iterdir()):
                run.path.rmdir()
            raise
        return RunResult(run, self.model, history, config, metrics, page, note)

    # the parts of run()
    def _fit_augmented(self, verbose: int) -> History:
        """``fit`` on `AugmentedBatches`: every epoch a reshuffled, freshly distorted copy of
        the training images, prepared by a background thread. No checkpoints: the position
        inside an augmented epoch is not restored (``prepare_run`` refuses
        ``checkpoint_every`` for such a recipe)."""
        from multilayer.data.augment import Augmentation, AugmentedBatches

        assert self.recipe.augment is not None
        batches = AugmentedBatches(
            *self.train,
            batch_size=self.recipe.batch_size,
            augmentation=Augmentation.from_config(self.recipe.augment),
            seed=self.seed,
        )
        try:
            return self.model.fit(
                batches,
                epochs=self.recipe.epochs,
                validation_data=self.validation,
                callbacks=self._callbacks(),
                verbose=verbose,
            )
        finally:
            batches.close()

    def _callbacks(self) -> list:
        """EarlyStopping (best weights restored) if asked for, the extra callbacks, then the loggers. Divergence
        needs no callback: fit stops with a TrainingError and keeps the last good weights."""
        from multilayer.callbacks import EarlyStopping

        if not self.early_stopping:
            return [*self.callbacks, *self.loggers]
        monitor = "val_loss" if self.validation is not None else "loss"
        return [
            EarlyStopping(monitor=monitor, patience=self.early_stopping, restore_best_weights=True),
            *self.callbacks,
            *self.loggers,
        ]

    def _checkpoint_config(self, run_path: Path, resume_hint: str | None) -> CheckpointConfig:
        """Checkpoints go to RUN_DIR/checkpoints: every ``checkpoint_every`` (see
        ``parse_every``) if given, else only when Ctrl-C interrupts training."""
        from multilayer.models.checkpoint import CheckpointConfig, parse_every

        every = self.checkpoint_every
        count, unit = parse_every(every) if every is not None else (None, "epoch")
        return CheckpointConfig(
            run_path / CHECKPOINT_DIR,
            every=count,
            unit=unit,
            keep=2,
            resume=self.resumed_from is not None,
            run=self.settings,
            resume_hint=resume_hint or f"multilayer.training.resume_run({str(run_path)!r})",
        )

    def _fit_answers(self) -> str | None:
        """Calibrated answers (`multilayer.answer_fitting.fit_answers`) on the validation
        split, stored in the model: the temperature, and for 28x28 images the "not a digit"
        detector. Returns why there are none (no validation split, a library missing)."""
        if self.validation is None:
            return "no validation split: the model has no calibrated answers"
        from multilayer.answer_fitting import fit_answers

        reject = tuple(self.dataset.x_train.shape[1:]) == (28, 28)
        try:
            self.model.answers = fit_answers(
                self.model, self.train, self.validation, seed=self.seed, reject=reject
            )
        except ImportError as error:
            return str(error)
        return None

    def _test(self, history: History, segments: list[float]) -> dict:
        metrics = evaluate_model(self.model, self.dataset)
        train_seconds = sum(segments)
        epochs_run = len(history.epoch)
        metrics.update(
            epochs=epochs_run,
            train_seconds=train_seconds,
            train_segments=segments,
            seconds_per_epoch=train_seconds / max(epochs_run, 1),
        )
        return metrics

    def _config(self) -> dict:
        flags = self.settings["flags"]
        return {
            "recipe": self.recipe.to_dict(),
            "flags": {
                "recipe": self.settings["recipe"],
                "dataset": self.settings["dataset"],
                "early_stopping": self.early_stopping,
                **flags,
            },
            "seed": self.seed,
            "dataset": {
                **self.dataset.describe(),
                **({"image_options": self.settings["image"]} if self.settings.get("image") else {}),
                "validation_samples": 0 if self.validation is None else len(self.validation[0]),
            },
            "versions": versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }

    def _write(self, run: RunDir, config: dict, history: History, metrics: dict) -> None:
        """The model (with its training metadata) and the run's JSON/CSV files."""
        self.model.training_info = {
            "recipe": config["recipe"]["name"],
            "dataset": config["dataset"]["name"],
            "seed": config["seed"],
            "epochs": metrics["epochs"],
            "test_accuracy": metrics["test_accuracy"],
            "test_loss": metrics["test_loss"],
            "train_seconds": metrics["train_seconds"],
            "created": config["created"],
        }
        self.model.save(run.model_path)
        run.write_config(config)
        run.write_history(history.epoch, history.history)
        run.write_metrics(metrics)

    def _report(self, run: RunDir) -> tuple[Path | None, str | None]:
        """The run's report; a missing plotting library is a note, not a failed run."""
        try:
            from multilayer.report import TestData, write_report

            data = self.dataset
            test = TestData(data.x_test, data.y_test, data.class_names)
            return write_report(run.path, self.model, test), None
        except ImportError as error:
            return None, str(error)


@dataclass
class RunResult:
    """A finished run (`PreparedRun.run`, `train_run`).

    Attributes:
        run: the run directory written (`multilayer.runs.RunDir`).
        model: the trained model.
        history: ``fit``'s History (of every segment of a resumed run).
        config, metrics: what config.json and metrics.json hold (``metrics["train_seconds"]``
            is the sum of ``metrics["train_segments"]``).
        report: the report's index.html, or None.
        report_note: why no report was written (matplotlib missing), or None.
    """

    run: RunDir
    model: Sequential
    history: History
    config: dict
    metrics: dict
    report: Path | None
    report_note: str | None


def prepare_run(
    recipe: str = "fast",
    dataset: str = "mnist",
    *,
    overrides: dict | None = None,
    data_dir: str | Path | None = None,
    seed: int | None = None,
    output: str | Path | None = None,
    runs_root: str | Path = DEFAULT_RUNS_ROOT,
    early_stopping: int | None = None,
    checkpoint_every: str | None = None,
    image_options: ImageOptions | None = None,
    tensorboard_dir: str | Path | None = None,
    mlflow: bool = False,
    mlflow_uri: str | None = None,
) -> PreparedRun:
    """Check, load and build everything a run needs; write nothing (see the module docstring).

    Args:
        recipe: a recipe name (``multilayer.recipes.RECIPES``).
        dataset: ``"mnist"``, ``"fashion_mnist"`` or the path of an ``.npz`` file.
        overrides: recipe fields to change (`OVERRIDABLE`; None values are ignored).
        data_dir: the data root for the built-in datasets (default ``MULTILAYER_DATA``).
        seed: the run's seed; None draws one (recorded in config.json).
        output: the run directory; default ``runs_root/<timestamp>-<recipe>``.
        early_stopping: stop after this many epochs without improvement (best weights kept).
        checkpoint_every: ``"N"`` (epochs) or ``"Ns"`` (steps) between checkpoints; None
            writes one only on Ctrl-C.
        image_options: how an image folder ``dataset`` is read (size, grayscale or RGB,
            skip or refuse bad images); recorded in config.json and the checkpoints.
        tensorboard_dir, mlflow, mlflow_uri: log the run to TensorBoard and/or MLflow (see
            `experiment_loggers`).

    Raises:
        ValueError: an unknown recipe, an override that is not a recipe field, or a bad
            ``checkpoint_every``.
        RecipeError: an unknown activation, optimizer or schedule.
        DataError, DatasetNotFoundError: the dataset cannot be read or is malformed.
        ImportError: TensorBoard or MLflow logging without the library it needs.
    """
    from multilayer.models.checkpoint import parse_every

    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(overrides) - set(OVERRIDABLE))
    if unknown:
        raise ValueError(f"cannot override {unknown}: the overridable fields are {OVERRIDABLE}")
    if "hidden" in overrides:
        overrides["hidden"] = tuple(overrides["hidden"])
    chosen = check_recipe(get_recipe(recipe).with_overrides(**overrides))
    if checkpoint_every is not None:
        parse_every(checkpoint_every)
        if chosen.augment is not None:
            raise ValueError(
                f"recipe {chosen.name!r} augments its images on the fly: it cannot be "
                "checkpointed (no checkpoint_every)"
            )
    seed = secrets.randbelow(2**31) if seed is None else seed
    data = load_dataset(dataset, data_dir, image_options=image_options)
    if chosen.augment is not None and data.x_train.ndim != 3:
        raise ValueError(
            f"recipe {chosen.name!r} augments grayscale images (n, height, width); "
            f"{dataset} has images of shape {data.x_train.shape[1:]}"
        )
    (x_train, y_train), validation = split(
        data.x_train, data.y_train, chosen.validation_split, seed
    )
    steps = math.ceil(len(x_train) / chosen.batch_size)
    # A standardising recipe uses MNIST's pixel statistics (what its results were measured
    # with), recorded in the model's InputScale; build_model(pixel_stats=pixel_statistics(x))
    # would use the dataset's own.
    model = build_model(chosen, data.x_train.shape[1:], data.num_classes, steps, seed=seed)
    settings = {
        "recipe": recipe,
        "dataset": dataset,
        "data_dir": None if data_dir is None else str(data_dir),
        "seed": seed,
        "early_stopping": early_stopping,
        "every": checkpoint_every,
        "flags": {
            name: list(v) if isinstance(v, tuple) else v
            for name in OVERRIDABLE
            for v in [overrides.get(name)]
        },
    }
    if image_options is not None:
        settings["image"] = image_options.to_config()
    output = Path(output) if output is not None else new_run_path(runs_root, chosen.name)
    loggers = experiment_loggers(
        tensorboard_dir,
        mlflow,
        mlflow_uri,
        run_name=output.name,
        tags={"recipe": recipe, "dataset": dataset, "seed": str(seed), "run_dir": str(output)},
    )
    return PreparedRun(
        recipe=chosen,
        dataset=data,
        seed=seed,
        model=model,
        train=(x_train, y_train),
        validation=validation,
        output=output,
        settings=settings,
        early_stopping=early_stopping,
        checkpoint_every=checkpoint_every,
        loggers=loggers,
    )


def experiment_loggers(
    tensorboard_dir: str | Path | None = None,
    mlflow: bool = False,
    mlflow_uri: str | None = None,
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
) -> list:
    """The callbacks that log a run elsewhere: ``callbacks.TensorBoard(tensorboard_dir)``
    if a directory is given, and ``callbacks.MlflowCallback`` if ``mlflow`` or ``mlflow_uri``
    (the tracking URI; None: MLflow's current one, by default the local ``./mlflow.db``), for
    a run named ``run_name`` with ``tags`` (prefixed ``multilayer.``).

    Raises:
        ImportError: the library one of them needs is not installed (nothing is written).
    """
    loggers: list = []
    if tensorboard_dir is not None:
        from multilayer.callbacks import TensorBoard

        loggers.append(TensorBoard(tensorboard_dir))
    if mlflow or mlflow_uri is not None:
        from multilayer.callbacks import MlflowCallback

        loggers.append(
            MlflowCallback(
                tracking_uri=mlflow_uri,
                run_name=run_name,
                tags={f"multilayer.{key}": value for key, value in (tags or {}).items()},
            )
        )
    return loggers


def latest_run_checkpoint(run_dir: str | Path) -> Checkpoint:
    """The newest valid checkpoint of a run directory, holding the run's settings.

    Raises:
        NothingToResumeError: none in ``run_dir/checkpoints`` (or one without settings).
    """
    from multilayer.models.checkpoint import latest_checkpoint

    directory = Path(run_dir) / CHECKPOINT_DIR
    checkpoint = latest_checkpoint(directory)
    if checkpoint is None or not checkpoint.run:
        raise NothingToResumeError(
            f"no valid checkpoint in {directory}: nothing to resume "
            "(checkpoints are written by --checkpoint-every and by Ctrl-C)"
        )
    return checkpoint


_SETTINGS: dict[str, type | tuple[type, ...]] = {
    "recipe": str,
    "dataset": str,
    "data_dir": (str, type(None)),
    "seed": int,
    "early_stopping": (int, type(None)),
    "every": (str, type(None)),
    "flags": dict,
}
#: Settings a checkpoint written before they existed may lack.
_OPTIONAL_SETTINGS: dict[str, type | tuple[type, ...]] = {"image": (dict, type(None))}


def prepare_resume(
    run_dir: str | Path,
    *,
    tensorboard_dir: str | Path | None = None,
    mlflow: bool = False,
    mlflow_uri: str | None = None,
) -> PreparedRun:
    """The run of ``run_dir`` rebuilt from the settings in its newest valid checkpoint,
    ready to continue from it (`PreparedRun.run`); ``resumed_from`` is that checkpoint.
    The logging arguments are `prepare_run`'s: they change no result, so a resumed run may
    log elsewhere than its first segment did.

    The result of the resumed run is bitwise identical to an uninterrupted one (same
    machine, library versions and thread count; see docs/reliability.md).

    Raises:
        NothingToResumeError: no valid checkpoint.
        ModelFileError: the checkpoint's settings are malformed.
        DataError, DatasetNotFoundError: the run's dataset can no longer be read.
    """
    checkpoint = latest_run_checkpoint(run_dir)
    settings = checkpoint.run
    bad = [key for key, kind in _SETTINGS.items() if not isinstance(settings.get(key), kind)]
    bad += [k for k, kind in _OPTIONAL_SETTINGS.items() if not isinstance(settings.get(k), kind)]
    bad += [key for key in ("seed", "early_stopping") if isinstance(settings.get(key), bool)]
    if isinstance(settings.get("flags"), dict) and not set(settings["flags"]) <= set(OVERRIDABLE):
        bad.append("flags")
    if bad:
        raise ModelFileError(f"{checkpoint.path}: malformed run settings {sorted(set(bad))}")
    image = settings.get("image")
    try:
        image_options = None if image is None else ImageOptions.from_config(image)
    except ValueError as error:
        raise ModelFileError(f"{checkpoint.path}: malformed run settings ({error})") from None
    try:
        prepared = prepare_run(
            settings["recipe"],
            settings["dataset"],
            overrides=settings["flags"],
            data_dir=settings["data_dir"],
            seed=settings["seed"],
            output=run_dir,
            early_stopping=settings["early_stopping"],
            checkpoint_every=settings["every"],
            image_options=image_options,
            tensorboard_dir=tensorboard_dir,
            mlflow=mlflow,
            mlflow_uri=mlflow_uri,
        )
    except (TypeError, RecipeError) as error:
        raise ModelFileError(f"{checkpoint.path}: malformed run settings ({error})") from None
    prepared.resumed_from = checkpoint
    return prepared


def train_run(recipe: str = "fast", dataset: str = "mnist", **options) -> RunResult:
    """`prepare_run` then `PreparedRun.run`: one call from a recipe to a run directory.

    Args:
        options: `prepare_run`'s keyword arguments, and ``verbose`` / ``report`` /
            ``answers`` of `PreparedRun.run`.
    """
    run_options = {k: options.pop(k) for k in ("verbose", "report", "answers") if k in options}
    return prepare_run(recipe, dataset, **options).run(**run_options)


def resume_run(run_dir: str | Path, verbose: int = 1, report: bool = True) -> RunResult:
    """`prepare_resume` then `PreparedRun.run`: continue an interrupted run (or test and
    write a finished one again)."""
    return prepare_resume(run_dir).run(verbose=verbose, report=report)
