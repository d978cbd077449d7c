"""The test-set part of the report of a run trained on a table, adapted to its task:

- regression: predicted against true values, and the residuals;
- binary: the ROC curve and the calibration (reliability) curve;
- multi-class: the confusion matrix and per-class precision and recall (as for images);
- multi-label: one ROC curve per label (the first `MAX_LABEL_CURVES`).

Each section's figure is also written as a PNG into the report directory. A test table
without both classes (or a constant target) leaves a note instead of a figure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from multilayer.report import plots
from multilayer.report.html import Section, flatten, key_value_table, per_class_table
from multilayer.tabular.metrics import calibration_curve, roc_curve, task_metrics
from multilayer.tabular.spec import TableSpec

__all__ = ["MAX_LABEL_CURVES", "table_sections", "write_table_report"]

#: Labels of a multi-label task drawn in the ROC figure.
MAX_LABEL_CURVES = 10
#: Bins of the calibration curve.
CALIBRATION_BINS = 10


def _save(out: Path, name: str, figure: Any) -> bytes:
    png = plots.save_png(figure)
    (out / name).write_bytes(png)
    return png


def table_sections(
    out: Path,
    model: Any,
    spec: TableSpec,
    table: Any = None,
    outputs: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[Section]:
    """The sections for the model's predictions on ``table`` (a path, Table or DataFrame
    with the target column(s)), or for ``outputs``: ``(y_true, model outputs)`` as
    `task_metrics` takes them, already computed. PNG files are written into ``out``."""
    if outputs is None:
        from multilayer.tabular.predict import targets_and_outputs

        y, raw, spec = targets_and_outputs(model, table, spec=spec)
    else:
        y, raw = np.asarray(outputs[0]), np.asarray(outputs[1], dtype=np.float64)
    p = raw[:, 0] if spec.n_outputs == 1 and raw.ndim == 2 else raw
    metrics = task_metrics(spec.task, y, p, spec.classes)
    sections = [
        Section(
            "Test metrics",
            f"The {spec.task} metrics on {len(y):,} test rows (target {', '.join(spec.target)}).",
            table=key_value_table(flatten(metrics)),
        )
    ]
    if spec.task == "regression":
        sections.extend(_regression(out, y, p))
    elif spec.task == "binary":
        sections.extend(_binary(out, y, p, spec))
    elif spec.task == "multiclass":
        sections.extend(_multiclass(out, y, p, spec))
    else:
        sections.append(_multilabel(out, y, p, spec))
    return sections


def _regression(out: Path, y: np.ndarray, p: np.ndarray) -> list[Section]:
    return [
        Section(
            "Predicted vs true",
            "Each test row's prediction against its true value; on the red diagonal when exact.",
            _save(out, "predicted_vs_true.png", plots.predicted_vs_true_figure(y, p)),
            "predicted_vs_true.png",
        ),
        Section(
            "Residuals",
            "True minus predicted value against the prediction: a pattern (a slope, a funnel) "
            "is what the model misses.",
            _save(out, "residuals.png", plots.residuals_figure(y, p)),
            "residuals.png",
        ),
    ]


def _binary(out: Path, y: np.ndarray, p: np.ndarray, spec: TableSpec) -> list[Section]:
    positive = spec.classes[1]
    if np.all(y == y[0]):
        note = f"The test rows are all of class {spec.classes[int(y[0])]!r}: no ROC curve."
        return [Section("ROC curve", note=note)]
    from multilayer.tabular.metrics import roc_auc

    fpr, tpr, _ = roc_curve(y == 1, p)
    fraction, mean, counts = calibration_curve(y == 1, p, CALIBRATION_BINS)
    return [
        Section(
            "ROC curve",
            f"True against false positive rate as the threshold on the probability of "
            f"{positive!r} goes from 1 to 0.",
            _save(
                out, "roc_curve.png", plots.roc_figure([(str(positive), fpr, tpr, roc_auc(y, p))])
            ),
            "roc_curve.png",
        ),
        Section(
            "Calibration",
            f"Test rows binned by the predicted probability of {positive!r} "
            f"({CALIBRATION_BINS} equal bins): the share that are {positive!r} against the mean "
            "prediction. On the diagonal, a probability of 0.8 means right 8 times in 10.",
            _save(out, "calibration.png", plots.calibration_figure(fraction, mean, counts)),
            "calibration.png",
        ),
    ]


def _multiclass(out: Path, y: np.ndarray, p: np.ndarray, spec: TableSpec) -> list[Section]:
    from multilayer.evaluation import classification_report

    names = [str(c) for c in spec.classes]
    result = classification_report(y, p, num_classes=len(names), class_names=names)
    matrix = np.asarray(result["confusion_matrix"])
    per_class = result["per_class"]
    return [
        Section(
            "Confusion matrix",
            f"{len(y):,} test rows, accuracy {100 * result['accuracy']:.2f}%. Rows are the true "
            "classes, columns the predictions; colour is the share of each true class.",
            _save(out, "confusion_matrix.png", plots.confusion_matrix_figure(matrix, names)),
            "confusion_matrix.png",
        ),
        Section(
            "Per-class precision and recall",
            "Precision: of the rows predicted as a class, the share that are. Recall: of the "
            "rows of a class, the share found.",
            _save(
                out,
                "precision_recall.png",
                plots.precision_recall_figure(
                    [r["precision"] for r in per_class], [r["recall"] for r in per_class], names
                ),
            ),
            "precision_recall.png",
            table=per_class_table(per_class),
        ),
    ]


def _multilabel(out: Path, y: np.ndarray, p: np.ndarray, spec: TableSpec) -> Section:
    from multilayer.tabular.metrics import roc_auc

    curves = []
    for j, label in enumerate(spec.classes[:MAX_LABEL_CURVES]):
        if 0 < y[:, j].sum() < len(y):
            fpr, tpr, _ = roc_curve(y[:, j], p[:, j])
            curves.append((str(label), fpr, tpr, roc_auc(y[:, j], p[:, j])))
    title = "ROC curves"
    if not curves:
        return Section(title, note="No label has both positive and negative test rows.")
    shown = len(spec.classes[:MAX_LABEL_CURVES])
    return Section(
        title,
        f"One ROC curve per label with both positive and negative test rows (of the first "
        f"{shown} of {len(spec.classes)} labels).",
        _save(out, "roc_curve.png", plots.roc_figure(curves)),
        "roc_curve.png",
    )


def write_table_report(
    run_dir: str | Path, model: Any, y_true: np.ndarray, outputs: np.ndarray
) -> tuple[Path | None, str | None]:
    """The report of a table run that has just been trained, from its test targets and the
    model's test outputs: ``(index.html, None)``, or ``(None, why)`` when matplotlib is
    missing (a note, not a failed run)."""
    try:
        from multilayer.report.build import write_report

        return write_report(run_dir, model, test_outputs=(y_true, outputs)), None
    except ImportError as error:
        return None, str(error)
