"""The figures of a run report, drawn with matplotlib.

Each function takes plain NumPy data and returns a ``matplotlib.figure.Figure``; `save_png`
writes one to PNG bytes. Figures are built with ``Figure()`` directly rather than through
``pyplot``: no global state, no GUI backend, safe in threads and web servers (rendering is
done by the Agg canvas that ``Figure.savefig`` uses by default).

matplotlib is an optional dependency (``multilayer[plots]``), imported on first use.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "calibration_figure",
    "confusion_matrix_figure",
    "first_layer_weights_figure",
    "learning_curves_figure",
    "misclassified_figure",
    "precision_recall_figure",
    "predicted_vs_true_figure",
    "residuals_figure",
    "roc_figure",
    "save_png",
]

#: Most points drawn in a scatter plot (a random sample of the rows beyond that).
MAX_POINTS = 20_000

_MATPLOTLIB_MISSING = "Reports need matplotlib: pip install 'multilayer[plots]'"
#: History keys that are not metrics to plot per epoch.
_NOT_METRICS = {"epoch", "lr", "learning_rate"}


def _new_figure(width: float, height: float) -> Figure:
    """A fresh Figure (inches), or ImportError naming the extra that provides matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(_MATPLOTLIB_MISSING) from exc
    return Figure(figsize=(width, height), layout="constrained")


def save_png(figure: Figure, dpi: int = 110) -> bytes:
    """Render ``figure`` to PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def learning_curves_figure(history: Mapping[str, Sequence[float | None]]) -> Figure:
    """Loss and metrics per epoch, training (solid) vs validation (dashed).

    Args:
        history: ``{"epoch": [0, 1, ...], "loss": [...], "val_loss": [...], "accuracy": [...],
            ...}`` as in history.json; "epoch" (0-based) is optional. ``None`` values (a NaN
            written as strict JSON) are left as gaps.

    Returns:
        a Figure with one panel for the loss and one for the other metrics (if any).
    """
    train_keys = [
        k for k in history if not k.startswith("val_") and k not in _NOT_METRICS and history[k]
    ]
    if not train_keys:
        raise ValueError("the history has no per-epoch metrics to plot")
    panels = [["loss"]] if "loss" in train_keys else []
    others = [k for k in train_keys if k != "loss"]
    if others:
        panels.append(others)
    figure = _new_figure(5.2 * len(panels), 3.6)
    from matplotlib.ticker import MaxNLocator

    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, keys in zip(axes, panels, strict=True):
        for index, key in enumerate(keys):
            for offset, (name, style, label) in enumerate(
                ((key, "-", "training"), (f"val_{key}", "--", "validation"))
            ):
                colour = f"C{2 * index + offset}"
                values = history.get(name)
                if not values:
                    continue
                y = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
                epochs = history.get("epoch") or list(range(len(y)))
                x = np.asarray(epochs[: len(y)], dtype=np.float64) + 1  # epochs shown 1-based
                ax.plot(
                    x, y, style, color=colour, marker="o", markersize=3, label=f"{key} ({label})"
                )
        ax.set_xlabel("epoch")
        ax.set_title("loss" if keys == ["loss"] else ", ".join(keys))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return figure


def confusion_matrix_figure(matrix: np.ndarray, class_names: Sequence[str]) -> Figure:
    """The confusion matrix as a heat map with counts (rows true, columns predicted).

    Args:
        matrix: (classes, classes) integer counts.
        class_names: one label per class.
    """
    matrix = np.asarray(matrix)
    classes = len(class_names)
    figure = _new_figure(5.6, 5.0)
    ax = figure.subplots()
    # A log-like scale would hide the diagonal; instead the colour shows each row's share,
    # so errors of small classes stay visible.
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(classes):
        for j in range(classes):
            if matrix[i, j]:
                colour = "white" if shares[i, j] > 0.5 else "black"
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7, color=colour)
    ax.set_xticks(range(classes), class_names)
    ax.set_yticks(range(classes), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("confusion matrix (test set)")
    figure.colorbar(image, ax=ax, shrink=0.8, label="share of the true class")
    return figure


def _mosaic(tiles: np.ndarray, columns: int, gap: int, label_space: int = 0) -> np.ndarray:
    """Tiles (n, height, width) laid out in a grid, NaN between them (drawn as the background).

    One ``imshow`` of a mosaic renders in milliseconds; a grid of 64 matplotlib axes takes
    seconds, so the tiled figures below are single images.
    """
    n, height, width = tiles.shape
    rows = math.ceil(n / columns)
    cell_h, cell_w = height + gap + label_space, width + gap
    mosaic = np.full((rows * cell_h, columns * cell_w), np.nan)
    for index in range(n):
        top = (index // columns) * cell_h + label_space
        left = (index % columns) * cell_w
        mosaic[top : top + height, left : left + width] = tiles[index]
    return mosaic


def misclassified_figure(
    images: np.ndarray,
    true: Sequence[int] | np.ndarray,
    predicted: Sequence[int] | np.ndarray,
    confidence: Sequence[float] | np.ndarray,
    class_names: Sequence[str],
) -> Figure:
    """A grid of wrongly classified images, each labelled "true → predicted" and confidence.

    Args:
        images: (n, height, width) pixels, or (n, 784) for 28x28 images (any numeric scale;
            drawn white ink on black).
        true, predicted: (n,) class indices.
        confidence: (n,) probability the model gave to ``predicted``.
    """
    n = len(images)
    if n == 0:
        raise ValueError("no misclassified images to draw")
    tiles = np.asarray(images, dtype=np.float64)
    if tiles.ndim == 2 and tiles.shape[1] == 784:
        tiles = tiles.reshape(n, 28, 28)
    if tiles.ndim != 3:
        raise ValueError(f"expected images of shape (n, height, width), got {tiles.shape}")
    height, width = tiles.shape[1:]
    tiles = tiles / max(float(tiles.max()), 1e-12)
    columns, gap, label = min(8, n), 6, 18
    mosaic = _mosaic(tiles, columns, gap, label)
    scale = 1 / 34  # inches per mosaic pixel
    figure = _new_figure(mosaic.shape[1] * scale, mosaic.shape[0] * scale)
    figure.set_layout_engine(None)
    ax = figure.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_facecolor("white")
    ax.imshow(mosaic, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    for index in range(n):
        x = (index % columns) * (width + gap) + width / 2
        y = (index // columns) * (height + gap + label) + label / 2
        ax.text(
            x,
            y,
            f"{class_names[true[index]]}→{class_names[predicted[index]]} "
            f"{100 * confidence[index]:.0f}%",
            ha="center",
            va="center",
            fontsize=7,
            color="#b00020",
        )
    return figure


def precision_recall_figure(
    precision: Sequence[float | None], recall: Sequence[float | None], class_names: Sequence[str]
) -> Figure:
    """Per-class precision and recall as grouped bars (a missing value is left out)."""
    p = np.array([np.nan if v is None else v for v in precision], dtype=np.float64)
    r = np.array([np.nan if v is None else v for v in recall], dtype=np.float64)
    x = np.arange(len(class_names))
    figure = _new_figure(7.0, 3.4)
    ax = figure.subplots()
    ax.bar(x - 0.2, p, width=0.4, label="precision")
    ax.bar(x + 0.2, r, width=0.4, label="recall")
    finite = np.concatenate([p[np.isfinite(p)], r[np.isfinite(r)]])
    low = float(finite.min()) if finite.size else 0.0
    # Zoom in on the interesting range: on MNIST every class is above 90%.
    ax.set_ylim(max(0.0, math.floor((low - 0.02) * 20) / 20), 1.0)
    ax.set_xticks(x, class_names)
    ax.set_xlabel("class")
    ax.set_title("per-class precision and recall (test set)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return figure


def first_layer_weights_figure(
    kernel: np.ndarray, max_units: int = 64, image_shape: tuple[int, int] = (28, 28)
) -> Figure:
    """The first Dense layer's incoming weights, one image per unit.

    Args:
        kernel: (height * width, units) weight matrix of the first Dense layer.
        max_units: draw at most this many units (the first ones), in rows of 8.
        image_shape: (height, width) of the input images.

    Each image is scaled by its own largest absolute weight (red positive, blue negative), so
    the pattern each unit responds to is visible whatever its weights' magnitude.

    Raises:
        ValueError: the kernel does not have height * width rows.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    height, width = image_shape
    if kernel.ndim != 2 or kernel.shape[0] != height * width:
        raise ValueError(f"expected a ({height * width}, units) kernel, got shape {kernel.shape}")
    n = min(kernel.shape[1], max_units)
    tiles = kernel[:, :n].T.reshape(n, height, width)
    tiles = tiles / np.maximum(np.abs(tiles).max(axis=(1, 2), keepdims=True), 1e-12)
    columns = min(8, n)
    mosaic = _mosaic(tiles, columns, gap=3)
    scale = 1 / 30  # inches per mosaic pixel
    figure = _new_figure(mosaic.shape[1] * scale, mosaic.shape[0] * scale)
    figure.set_layout_engine(None)
    ax = figure.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.imshow(mosaic, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    return figure


def _sample(count: int, limit: int = MAX_POINTS) -> np.ndarray:
    """Indices of at most ``limit`` of ``count`` rows (all of them, or a fixed random sample)."""
    if count <= limit:
        return np.arange(count)
    return np.sort(np.random.default_rng(0).choice(count, size=limit, replace=False))


def predicted_vs_true_figure(y_true: np.ndarray, predicted: np.ndarray) -> Figure:
    """Predicted against true values of a regression, with the diagonal of perfect
    predictions (at most `MAX_POINTS` points, a fixed random sample beyond)."""
    y = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(predicted, dtype=np.float64).ravel()
    keep = _sample(len(y))
    figure = _new_figure(4.8, 4.4)
    ax = figure.subplots()
    ax.scatter(y[keep], p[keep], s=6, alpha=0.5, linewidths=0)
    low = float(min(y.min(), p.min()))
    high = float(max(y.max(), p.max()))
    ax.plot([low, high], [low, high], color="#b00020", linewidth=1, label="perfect")
    ax.set_xlabel("true value")
    ax.set_ylabel("predicted value")
    ax.set_title("predicted vs true (test set)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return figure


def residuals_figure(y_true: np.ndarray, predicted: np.ndarray) -> Figure:
    """Residuals (true - predicted) against the predicted value, and their histogram."""
    y = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(predicted, dtype=np.float64).ravel()
    residuals = y - p
    keep = _sample(len(y))
    figure = _new_figure(8.4, 3.6)
    left, right = figure.subplots(1, 2, width_ratios=[2, 1])
    left.scatter(p[keep], residuals[keep], s=6, alpha=0.5, linewidths=0)
    left.axhline(0.0, color="#b00020", linewidth=1)
    left.set_xlabel("predicted value")
    left.set_ylabel("residual (true - predicted)")
    left.set_title("residuals (test set)")
    left.grid(alpha=0.3)
    right.hist(residuals, bins=min(50, max(5, len(residuals) // 10)), orientation="horizontal")
    right.axhline(0.0, color="#b00020", linewidth=1)
    right.set_xlabel("rows")
    right.set_title("distribution")
    return figure


def roc_figure(curves: Sequence[tuple[str, np.ndarray, np.ndarray, float | None]]) -> Figure:
    """ROC curves: one ``(label, false positive rates, true positive rates, AUC)`` each,
    with the diagonal of a random guess."""
    figure = _new_figure(4.8, 4.4)
    ax = figure.subplots()
    for label, fpr, tpr, auc in curves:
        text = label if auc is None else f"{label} (AUC {auc:.3f})"
        ax.plot(fpr, tpr, linewidth=1.5, label=text)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="random")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curve (test set)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return figure


def calibration_figure(
    fraction_positive: np.ndarray, mean_predicted: np.ndarray, counts: np.ndarray
) -> Figure:
    """The reliability diagram: the share of positives against the mean predicted
    probability per bin (on the diagonal when calibrated), and the rows per bin."""
    figure = _new_figure(4.8, 5.4)
    top, bottom = figure.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    top.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="calibrated")
    top.plot(mean_predicted, fraction_positive, marker="o", linewidth=1.5, label="model")
    top.set_ylim(0, 1)
    top.set_ylabel("share of positive rows")
    top.set_title("calibration (test set)")
    top.grid(alpha=0.3)
    top.legend(fontsize=8, loc="upper left")
    bottom.bar(mean_predicted, counts, width=0.05)
    bottom.set_xlim(0, 1)
    bottom.set_xlabel("predicted probability")
    bottom.set_ylabel("rows")
    return figure
