"""The report's honest-answers sections: calibration and the "not a digit" reject option.

For a model carrying `multilayer.answers.Answers` (``mlp train`` fits them), on the test set:

* a reliability diagram (accuracy against confidence in `ECE_BINS` equal-width bins) before
  and after temperature scaling, with the expected calibration error of each;
* a strip of the test images the detector rejects (highest score first), with the class the
  network would have answered;
* a table of the accuracy per class over all test images, the share rejected, and the
  accuracy over the images it accepts.

A model without answers gets one section saying so.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from multilayer.calibration import (
    ECE_BINS,
    expected_calibration_error,
    reliability_bins,
    softmax_t,
)
from multilayer.report.html import Section
from multilayer.report.plots import _new_figure, save_png

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["answers_sections", "rejected_figure", "reliability_figure"]

#: How many rejected test images to show.
REJECTED = 16


def reliability_figure(probs_before: np.ndarray, probs_after: np.ndarray, labels) -> Figure:
    """Accuracy against mean confidence per bin, before and after calibration."""
    figure = _new_figure(9.0, 4.2)
    axes = figure.subplots(1, 2, sharey=True)
    for ax, probs, title in zip(
        axes, (probs_before, probs_after), ("before (T = 1)", "after"), strict=True
    ):
        table = reliability_bins(probs, labels)
        edges = table["edges"]
        filled = table["count"] > 0
        centres = (edges[:-1] + edges[1:]) / 2
        width = edges[1] - edges[0]
        ax.bar(
            centres[filled],
            table["accuracy"][filled],
            width=width * 0.9,
            color="#2457d6",
            label="accuracy",
        )
        ax.plot([0, 1], [0, 1], "--", color="#888", label="perfect calibration")
        ax.plot(table["confidence"][filled], table["accuracy"][filled], "o", ms=3, color="#d62728")
        ece = expected_calibration_error(probs, labels)
        ax.set_title(f"{title}: ECE {100 * ece:.2f}%")
        ax.set_xlabel("confidence (top probability)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("accuracy")
    axes[0].legend(loc="upper left", fontsize=8)
    return figure


def rejected_figure(
    images: np.ndarray, guesses: Sequence[int], scores: Sequence[float], names: Sequence[str]
) -> Figure:
    """A strip of rejected images, each titled with the network's guess and the score."""
    count = len(images)
    columns = min(count, 8)
    rows = -(-count // columns)
    figure = _new_figure(1.2 * columns, 1.45 * rows)
    grid = figure.subplots(rows, columns, squeeze=False)
    for index, ax in enumerate(grid.flat):
        ax.axis("off")
        if index < count:
            ax.imshow(images[index], cmap="gray", vmin=0, vmax=255 if images.max() > 1 else 1)
            ax.set_title(f"{names[guesses[index]]}? {scores[index]:.2f}", fontsize=8)
    return figure


def _per_class_table(rows: list[dict]) -> str:
    def percent(value) -> str:
        return "—" if value is None else f"{100 * float(value):.2f}%"

    head = (
        "<tr><th>class</th><th>accuracy (all)</th><th>rejected</th>"
        "<th>accuracy (accepted)</th></tr>"
    )
    body = "".join(
        f"<tr><td>{html.escape(row['name'])}</td><td>{percent(row['accuracy'])}</td>"
        f"<td>{percent(row['rejected'])}</td><td>{percent(row['accepted'])}</td></tr>"
        for row in rows
    )
    return f'<table class="grid">{head}{body}</table>'


def answers_sections(out: Path, model, x: np.ndarray, y: np.ndarray, names: list[str]):
    """The sections of the module docstring, their PNGs written to ``out``."""
    from multilayer.inference import answer_images

    answers = getattr(model, "answers", None)
    title = "Calibration and the reject option"
    if answers is None:
        return [
            Section(
                title,
                note="This model carries no calibrated answers (no temperature, no 'not a "
                "digit' detector): mlp train fits them on its validation split.",
            )
        ]
    pixel_max = 255.0 if x.dtype == np.uint8 or x.max() > 1 else 1.0
    result = answer_images(model, x, pixel_max)
    assert result.logits is not None  # a model with answers gives its logits
    before = softmax_t(result.logits)
    after = result.probabilities
    ece_before = expected_calibration_error(before, y)
    ece_after = expected_calibration_error(after, y)
    png = save_png(reliability_figure(before, after, y))
    (out / "reliability.png").write_bytes(png)
    sections = [
        Section(
            "Reliability diagram",
            f"Accuracy of the test images against the confidence the network gave them, in "
            f"{ECE_BINS} equal-width bins: on the dashed line, a confidence of 90% is right 90% "
            f"of the time. Temperature scaling (T = {answers.temperature:.3f}, fitted on the "
            f"validation split) brings the expected calibration error from "
            f"{100 * ece_before:.2f}% to {100 * ece_after:.2f}%.",
            png,
            "reliability.png",
        )
    ]
    if answers.reject is None:
        sections.append(Section("Rejected test images", note="This model has no detector."))
        return sections
    guesses = after.argmax(axis=1)
    correct = guesses == y
    rejected = np.flatnonzero(result.rejected)
    order = rejected[np.argsort(-result.score[rejected], kind="stable")][:REJECTED]
    strip_title = "Rejected test images"
    if order.size == 0:
        sections.append(Section(strip_title, note="The detector rejects no test image."))
    else:
        png = save_png(
            rejected_figure(x[order], guesses[order].tolist(), result.score[order].tolist(), names)
        )
        (out / "rejected.png").write_bytes(png)
        sections.append(
            Section(
                strip_title,
                f"The detector says 'not sure' for {rejected.size:,} of {len(y):,} test digits "
                f"({100 * rejected.size / len(y):.2f}%; threshold {answers.reject.threshold:.3f}, "
                f"set to reject {100 * answers.reject.validation_rejected:.2f}% of the "
                f"validation digits). The {order.size} with the highest score, each with the "
                "class the network would have answered and the score.",
                png,
                "rejected.png",
            )
        )
    kept = ~result.rejected
    rows = []
    for c, name in enumerate(names):
        of_class = y == c
        accepted = of_class & kept
        rows.append(
            {
                "name": name,
                "accuracy": correct[of_class].mean() if of_class.any() else None,
                "rejected": result.rejected[of_class].mean() if of_class.any() else None,
                "accepted": correct[accepted].mean() if accepted.any() else None,
            }
        )
    overall = correct[kept].mean() if kept.any() else float("nan")
    sections.append(
        Section(
            "Accuracy per class, with and without rejection",
            f"Accuracy over all test images of each class, the share the detector rejects, and "
            f"the accuracy over those it accepts (overall {100 * correct.mean():.2f}% → "
            f"{100 * overall:.2f}%).",
            table=_per_class_table(rows),
        )
    )
    return sections
