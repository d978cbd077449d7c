"""`write_report`: everything a run directory can show, as PNG files and one HTML page.

A report is built from a run directory (`multilayer.runs.RunDir`): history.json gives the
learning curves, config.json and metrics.json the tables, and the model, run on the test
set, gives the confusion matrix, per-class precision and recall, the most confident
mistakes, and the first layer's weights. Whatever is missing (no history, no test data, a
first layer whose inputs are not one image) leaves a note in the page instead of failing
the whole report.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from multilayer.errors import DatasetNotFoundError
from multilayer.report import plots
from multilayer.report.html import Section, per_class_table, render_page
from multilayer.runs import REPORT_DIR, REPORT_HTML, RunDir

__all__ = ["REPORT_DIR", "REPORT_HTML", "TestData", "write_report"]

log = logging.getLogger(__name__)

#: How many confidently wrong test images to show.
MISCLASSIFIED = 24
#: How many first-layer units to draw.
WEIGHT_UNITS = 64


@dataclass(frozen=True)
class TestData:
    """Test images and labels to evaluate the run's model on.

    ``x``: (n, height, width) pixels 0..255 (uint8 as stored); ``y``: (n,) integer labels;
    ``class_names``: one name per class (default: "0", "1", ...).
    """

    __test__ = False  # not a pytest test class, despite its name

    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...] | None = None


def _dataset_name(config: dict | None) -> str:
    """The dataset named in config.json (a name, or a dict with a "name"); MNIST if absent."""
    value = (config or {}).get("dataset", "mnist")
    if isinstance(value, dict):
        value = value.get("name", "mnist")
    return str(value)


def _load_test_data(run: RunDir) -> TestData | None:
    """The test split of the run's dataset (built-in, .npz or image folder, read as training
    read it), or None if unavailable."""
    try:
        data = run.load_dataset()
    except (DatasetNotFoundError, FileNotFoundError) as error:
        log.warning("report without test-set figures: %s", error)
        return None
    return TestData(data.x_test, data.y_test, data.class_names)


def _headline(metrics: dict | None, history: dict | None) -> list[tuple[str, str]]:
    cards: list[tuple[str, str]] = []
    metrics = metrics or {}
    for key, label in (("test_accuracy", "test accuracy"), ("accuracy", "test accuracy")):
        value = metrics.get(key)
        if isinstance(value, (int, float)):
            cards.append((label, f"{100 * value:.2f}%"))
            break
    for key, label in (
        ("test_roc_auc", "test ROC AUC"),
        ("test_rmse", "test RMSE"),
        ("test_r2", "test R²"),
    ):  # a table run's task metrics
        if isinstance(metrics.get(key), (int, float)):
            cards.append((label, f"{metrics[key]:.4g}"))
    if isinstance(metrics.get("test_loss"), (int, float)):
        cards.append(("test loss", f"{metrics['test_loss']:.4f}"))
    if history and history.get("epoch"):
        cards.append(("epochs", str(len(history["epoch"]))))
    for key in ("train_seconds", "training_seconds", "wall_time", "seconds"):
        if isinstance(metrics.get(key), (int, float)):
            cards.append(("training time", f"{metrics[key]:.1f} s"))
            break
    return cards


def _save(directory: Path, name: str, figure) -> bytes:
    png = plots.save_png(figure)
    (directory / name).write_bytes(png)
    return png


def write_report(
    run_dir: str | Path,
    model=None,
    test_data: TestData | None = None,
    *,
    misclassified: int = MISCLASSIFIED,
    weight_units: int = WEIGHT_UNITS,
    test_table=None,
    test_outputs: tuple[np.ndarray, np.ndarray] | None = None,
) -> Path:
    """Write ``RUN_DIR/report/``: PNG figures and a self-contained ``index.html``.

    Args:
        run_dir: a run directory written by ``mlp train`` (see `multilayer.runs`).
        model: the trained model; default: the run's ``model.safetensors``. ``mlp train``
            passes the model it has in memory.
        test_data: the test set to evaluate on; default: the test split of the dataset
            named in config.json (MNIST when it names none). Without test data the
            test-set figures are replaced by a note.
        misclassified: how many confidently wrong test images to show.
        weight_units: how many first-layer units to draw.
        test_table: for a run trained on a table (config.json has a "table" spec): the test
            rows, with the target column(s), as a CSV/Parquet path, a `Table` or a DataFrame.
            The report then shows the task's figures (`multilayer.report.tabular`) instead of
            images and weights; without it (or ``test_outputs``), a note.
        test_outputs: for a run trained on a table, instead of ``test_table``: the test
            targets and the model's outputs on them, ``(y_true, outputs)`` as
            `multilayer.tabular.metrics.task_metrics` takes them.

    Returns:
        the path of ``report/index.html``.

    Raises:
        FileNotFoundError: ``run_dir`` does not exist.
        NotADirectoryError: ``run_dir`` is a file.
        DataError: ``run_dir`` is a directory but not a run (see `RunDir.require`).
        DataError: config.json, history.json or metrics.json is not valid JSON.
        ModelFileError: the run's model file is invalid.
        ImportError: matplotlib is missing (``pip install 'multilayer[plots]'``).
    """
    run = RunDir(run_dir).require()  # before anything is written into it
    config, metrics, history = run.config, run.metrics, run.history
    if model is None and run.has_model():
        model = run.load_model(compile=False)
    out = run.report_dir
    out.mkdir(exist_ok=True)

    sections = [_curves_section(out, history)]
    spec = run.table_spec()
    if spec is not None:
        if model is None:
            sections.append(Section("Model", note=f"{run.path} has no model file."))
        elif test_table is None and test_outputs is None:
            sections.append(
                Section("Test set", note="No test table was given: no test-set figures.")
            )
        else:
            from multilayer.report.tabular import table_sections

            sections.extend(table_sections(out, model, spec, test_table, test_outputs))
    elif model is None:
        sections.append(Section("Model", note=f"{run.path} has no model file."))
    else:
        if test_data is None:
            test_data = _load_test_data(run)
        if test_data is None:
            sections.append(
                Section("Test set", note="The test data is not available: no test-set figures.")
            )
        else:
            sections.extend(_test_sections(out, model, test_data, misclassified))
            sections.extend(_answers_sections(out, model, test_data))
        shape = None if test_data is None else tuple(np.shape(test_data.x)[1:])
        sections.append(_weights_section(out, model, weight_units, shape))

    title = f"Run report: {run.path.name}"
    dataset = _dataset_name(config) if spec is None else f"a table (target {spec.target[0]})"
    page = render_page(
        title,
        f"{run.path.resolve()} · dataset: {dataset}",
        _headline(metrics, history),
        sections,
        config,
        metrics,
    )
    path = run.report_path
    path.write_text(page, encoding="utf-8")
    return path


def _curves_section(out: Path, history: dict | None) -> Section:
    title = "Learning curves"
    description = "Loss and accuracy per epoch: training (solid) and validation (dashed)."
    if not history:
        return Section(title, note="This run has no history.json.")
    try:
        figure = plots.learning_curves_figure(history)
    except ValueError as error:
        return Section(title, note=str(error))
    return Section(
        title, description, _save(out, "learning_curves.png", figure), "learning_curves.png"
    )


def _test_sections(out: Path, model, data: TestData, count: int) -> list[Section]:
    from multilayer.evaluation import classification_report
    from multilayer.inference import predict_images

    x = np.asarray(data.x)
    y = np.asarray(data.y).astype(np.intp)
    probs = predict_images(model, x, pixel_max=255.0 if x.dtype == np.uint8 or x.max() > 1 else 1.0)
    classes = probs.shape[1]
    names = list(data.class_names or [str(c) for c in range(classes)])
    result = classification_report(y, probs, num_classes=classes, class_names=names)
    matrix = np.asarray(result["confusion_matrix"])
    sections = [
        Section(
            "Confusion matrix",
            f"{len(y):,} test images, accuracy {100 * result['accuracy']:.2f}%. Rows are the "
            "true classes, columns the predictions; colour is the share of each true class.",
            _save(out, "confusion_matrix.png", plots.confusion_matrix_figure(matrix, names)),
            "confusion_matrix.png",
        )
    ]
    per_class = result["per_class"]
    sections.append(
        Section(
            "Per-class precision and recall",
            "Precision: of the images predicted as a class, the share that are. Recall: of "
            "the images of a class, the share found.",
            _save(
                out,
                "precision_recall.png",
                plots.precision_recall_figure(
                    [r["precision"] for r in per_class], [r["recall"] for r in per_class], names
                ),
            ),
            "precision_recall.png",
            table=per_class_table(per_class),
        )
    )
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != y)
    title = "Most confident mistakes"
    if wrong.size == 0:
        sections.append(Section(title, note="The model classifies every test image correctly."))
        return sections
    confidence = probs[wrong, predicted[wrong]]
    order = wrong[np.argsort(-confidence, kind="stable")][:count]
    figure = plots.misclassified_figure(
        x[order],
        y[order],
        predicted[order],
        probs[order, predicted[order]],
        names,
    )
    sections.append(
        Section(
            title,
            f"The {len(order)} test images (of {wrong.size:,} errors) the model gets wrong with "
            "the highest confidence: true → predicted class, and the probability it gave.",
            _save(out, "misclassified.png", figure),
            "misclassified.png",
        )
    )
    return sections


def _answers_sections(out: Path, model, data: TestData) -> list[Section]:
    """Calibration and the reject option (`multilayer.report.answers`)."""
    from multilayer.report.answers import answers_sections

    x = np.asarray(data.x)
    y = np.asarray(data.y).astype(np.intp)
    classes = int(model.output_shape[-1])
    names = list(data.class_names or [str(c) for c in range(classes)])
    return answers_sections(out, model, x, y, names)


def _image_shape(model, inputs: int, data_shape: tuple[int, ...] | None) -> tuple[int, int] | None:
    """The (height, width) of the images behind ``inputs`` first-layer inputs, if known."""
    candidates = [data_shape, tuple(model.input_shape)]
    if inputs == 784:
        candidates.append((28, 28))
    for shape in candidates:
        if shape is not None and len(shape) == 2 and shape[0] * shape[1] == inputs:
            return int(shape[0]), int(shape[1])
    return None


def _weights_section(
    out: Path, model, units: int, data_shape: tuple[int, ...] | None = None
) -> Section:
    from multilayer.inference import first_dense

    title = "First-layer weights"
    layer = first_dense(model)
    if layer is None:
        return Section(title, note="The model has no Dense layer.")
    kernel = layer.weights["kernel"]
    shape = _image_shape(model, kernel.shape[0], data_shape)
    if shape is None:
        return Section(
            title,
            note=f"The first Dense layer takes {kernel.shape[0]} inputs, not one image.",
        )
    shown = min(units, kernel.shape[1])
    return Section(
        title,
        f"The incoming weights of the first {shown} of {kernel.shape[1]} units of "
        f"{layer.name!r}, each drawn as a {shape[0]}x{shape[1]} image: red pixels excite "
        "the unit, blue ones inhibit it.",
        _save(
            out,
            "first_layer_weights.png",
            plots.first_layer_weights_figure(kernel, units, image_shape=shape),
        ),
        "first_layer_weights.png",
    )
