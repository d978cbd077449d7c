"""``plot_model``: a picture of a model's layers drawn with matplotlib (no Graphviz, no pydot).

A Sequential model is drawn as its stack of layers; a functional model as its graph, inputs
included, each layer placed below the layers it takes tensors from. Each layer is a box, labelled as Keras 3 labels it (class name, or ``name (Class)`` with
``show_layer_names``; optionally activation, input and output shapes, dtype, trainable), with
arrows along the data flow, top to bottom (``rankdir="TB"``) or left to right (``"LR"``). The
file format follows the extension of ``to_file``: PNG, SVG (text kept as text) or PDF.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from typing import Any

from multilayer.utils.files import atomic_write_bytes

__all__ = ["plot_model"]

FORMATS = ("png", "svg", "pdf")
_FONT = 10.0  # points
_CHAR = 0.62 * _FONT  # average width of a character of DejaVu Sans, points
_LINE = 1.5 * _FONT
_PAD = 8.0
_GAP = 28.0  # between ranks
_SIBLING_GAP = 18.0


@dataclass
class _Box:
    title: str
    lines: list[str] = field(default_factory=list)
    trainable: bool | None = None  # None: not shown
    name: str = ""  # the layer's name (the SVG id of its box)
    x: float = 0.0  # centre, points
    y: float = 0.0
    width: float = 0.0
    height: float = 0.0


def _shape_text(shape: Any) -> str:
    if shape is None:
        return "?"
    if isinstance(shape, list):  # one shape per input
        return "[" + ", ".join(_shape_text(s) for s in shape) + "]"
    return "(" + ", ".join(["None", *map(str, shape)]) + ")"


def _layer_box(
    layer: Any,
    show_shapes: bool,
    show_dtype: bool,
    show_layer_names: bool,
    show_layer_activations: bool,
    show_trainable: bool,
) -> _Box:
    class_name = getattr(layer, "config_name", type(layer).__name__)  # a nested model's kind
    box = _Box(f"{layer.name} ({class_name})" if show_layer_names else class_name)
    box.name = layer.name
    activation = getattr(layer, "activation", None)
    if show_layer_activations and activation is not None:
        box.lines.append(f"Activation: {getattr(activation, 'name', activation)}")
    if show_shapes:
        if class_name != "InputLayer":
            box.lines.append(f"Input shape: {_shape_text(layer.input_shape)}")
        box.lines.append(f"Output shape: {_shape_text(layer.output_shape)}")
    if show_dtype:
        box.lines.append(f"Output dtype: {layer.dtype.name if layer.dtype is not None else '?'}")
    if show_trainable and layer.count_params():
        box.trainable = bool(layer.trainable)
    return box


def _graph(model: Any) -> tuple[list, list[tuple[int, int]]]:
    """The layers to draw and the edges between them (indices into the list).

    As Keras 3 draws them: a Sequential model as its layers in order, without the Input box;
    a functional model as every layer, inputs included, with an arrow from the layer that
    makes each tensor to each layer called on it (a nested model is one box).
    """
    from multilayer.engine.layers import InputLayer

    if getattr(model, "config_name", None) == "Sequential":
        layers = [layer for layer in model.layers if not isinstance(layer, InputLayer)]
        return layers, [(i, i + 1) for i in range(len(layers) - 1)]
    layers = list(model.layers)
    index = {id(layer): i for i, layer in enumerate(layers)}
    edges: list[tuple[int, int]] = []
    for target, layer in enumerate(layers):
        node = getattr(layer, "inbound_node", None)
        for tensor in node.inputs if node is not None else []:
            source = index.get(id(tensor.layer))
            if source is not None and (source, target) not in edges:
                edges.append((source, target))
    return layers, edges


def _ranks(count: int, edges: list[tuple[int, int]]) -> list[int]:
    """Rank of each node: the length of the longest path reaching it (a DAG); a node nothing
    feeds (a model input) is then drawn just above the first layer that uses it, so that its
    arrow is short."""
    rank = [0] * count
    for _ in range(count):
        changed = False
        for source, target in edges:
            if rank[target] < rank[source] + 1:
                rank[target] = rank[source] + 1
                changed = True
        if not changed:
            break
    fed = {target for _, target in edges}
    for node in range(count):
        consumers = [rank[t] for s, t in edges if s == node]
        if node not in fed and consumers:
            rank[node] = min(consumers) - 1
    return rank


def plot_model(
    model: Any,
    to_file: str | os.PathLike[str] = "model.png",
    show_shapes: bool = False,
    show_dtype: bool = False,
    show_layer_names: bool = False,
    rankdir: str = "TB",
    expand_nested: bool = False,
    dpi: int = 200,
    show_layer_activations: bool = False,
    show_trainable: bool = False,
    **kwargs: Any,
) -> Any:
    """Draw the model's layers and the connections between them into ``to_file``.

    Arguments and defaults are Keras 3's. ``splines`` is accepted and ignored (edges are
    straight arrows); ``expand_nested`` is accepted and ignored (a nested model is one box).

    Returns:
        An ``IPython.display.Image`` of a PNG file when IPython is installed (inline display
        in notebooks), else None.

    Raises:
        ValueError: the extension of ``to_file`` is not .png, .svg or .pdf (a name without
            an extension is written as PNG, as Keras does), ``rankdir`` is not "TB" or "LR",
            unknown keyword arguments, or a model that is not built and cannot be.
        ImportError: matplotlib is not installed (``pip install 'multilayer[plots]'``).
    """
    kwargs.pop("splines", None)
    if kwargs.pop("layer_range", None) is not None:
        raise ValueError("Argument `layer_range` is no longer supported.")
    if kwargs:
        raise ValueError(f"plot_model: unrecognized keyword arguments: {sorted(kwargs)}")
    extension = os.path.splitext(os.fspath(to_file))[1][1:].lower() or "png"
    if extension not in FORMATS:
        raise ValueError(
            f"plot_model: cannot write {os.fspath(to_file)!r}: the format is chosen by the "
            f"extension of to_file, one of {', '.join('.' + f for f in FORMATS)}"
        )
    if rankdir not in ("TB", "LR"):
        raise ValueError(f"plot_model: rankdir must be 'TB' or 'LR', got {rankdir!r}")
    if not model.built:
        if getattr(model, "input_shape", None) is None:
            raise ValueError(
                "This model has not yet been built. Build the model first by calling "
                "`build()` or by calling the model on a batch of data."
            )
        model.build()
    try:
        from matplotlib import rc_context
        from matplotlib.figure import Figure
        from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
    except ImportError:
        raise ImportError(
            "plot_model draws with matplotlib, which is not installed: "
            "pip install 'multilayer[plots]'"
        ) from None

    layers, edges = _graph(model)
    boxes = [
        _layer_box(
            layer,
            show_shapes,
            show_dtype,
            show_layer_names,
            show_layer_activations,
            show_trainable,
        )
        for layer in layers
    ]
    for box in boxes:
        texts = [box.title, *box.lines] + (["Non-trainable"] if box.trainable is not None else [])
        box.width = max(len(t) for t in texts) * _CHAR + 2 * _PAD
        details = len(box.lines) + (box.trainable is not None)
        box.height = _LINE + _PAD / 2 + (details * _LINE + _PAD / 2 if details else 0)
    _layout(boxes, _ranks(len(boxes), edges), rankdir)
    width = max((b.x + b.width / 2 for b in boxes), default=0) + _PAD
    height = max((b.y + b.height / 2 for b in boxes), default=0) + _PAD

    with rc_context({"svg.fonttype": "none", "font.family": "DejaVu Sans"}):
        figure = Figure(figsize=(max(width, 1) / 72, max(height, 1) / 72))
        axes = figure.add_axes((0, 0, 1, 1))
        axes.set_xlim(0, max(width, 1))
        axes.set_ylim(max(height, 1), 0)  # y grows downwards, as the layout
        axes.set_axis_off()
        for box in boxes:
            _draw_box(axes, box, FancyBboxPatch)
        for source, target in edges:
            start, end = _anchor(boxes[source], boxes[target], rankdir)
            axes.add_patch(
                FancyArrowPatch(
                    start,
                    end,
                    gid=f"edge:{boxes[source].name}->{boxes[target].name}",
                    arrowstyle="-|>",
                    mutation_scale=10,
                    linewidth=1.2,
                    color="#333333",
                    shrinkA=0,
                    shrinkB=0,
                )
            )
        buffer = io.BytesIO()
        figure.savefig(buffer, format=extension, dpi=dpi)
    atomic_write_bytes(os.fspath(to_file), buffer.getvalue())
    if extension == "png":
        try:
            from IPython import display  # type: ignore[import-not-found]
        except ImportError:
            return None
        return display.Image(filename=os.fspath(to_file))
    return None


def _layout(boxes: list[_Box], ranks: list[int], rankdir: str) -> None:
    by_rank: dict[int, list[_Box]] = {}
    for box, rank in zip(boxes, ranks, strict=True):
        by_rank.setdefault(rank, []).append(box)
    vertical = rankdir == "TB"
    # Extent of each rank along the flow, and of each rank across it.
    along = {r: max((b.height if vertical else b.width) for b in bs) for r, bs in by_rank.items()}
    across = {
        r: sum((b.width if vertical else b.height) for b in bs) + _SIBLING_GAP * (len(bs) - 1)
        for r, bs in by_rank.items()
    }
    widest = max(across.values(), default=0)
    position = _PAD
    for rank in sorted(by_rank):
        cursor = _PAD + (widest - across[rank]) / 2
        for box in by_rank[rank]:
            size = box.width if vertical else box.height
            if vertical:
                box.x, box.y = cursor + size / 2, position + along[rank] / 2
            else:
                box.x, box.y = position + along[rank] / 2, cursor + size / 2
            cursor += size + _SIBLING_GAP
        position += along[rank] + _GAP


def _anchor(
    source: _Box, target: _Box, rankdir: str
) -> tuple[tuple[float, float], tuple[float, float]]:
    if rankdir == "TB":
        return (source.x, source.y + source.height / 2), (target.x, target.y - target.height / 2)
    return (source.x + source.width / 2, source.y), (target.x - target.width / 2, target.y)


def _draw_box(axes: Any, box: _Box, FancyBboxPatch: Any) -> None:  # noqa: N803 - a class passed in
    left, top = box.x - box.width / 2, box.y - box.height / 2
    axes.add_patch(
        FancyBboxPatch(
            (left, top),
            box.width,
            box.height,
            boxstyle="round,pad=0,rounding_size=3",
            facecolor="white",
            edgecolor="#222222",
            linewidth=1.0,
            gid=f"layer:{box.name}",
        )
    )
    # The title on a dark band, then one line per detail.
    axes.add_patch(
        FancyBboxPatch(
            (left, top),
            box.width,
            _LINE + _PAD / 2,
            boxstyle="round,pad=0,rounding_size=3",
            facecolor="#222222",
            edgecolor="#222222",
            linewidth=1.0,
        )
    )
    y = top + (_LINE + _PAD / 2) / 2
    axes.text(
        box.x,
        y,
        box.title,
        ha="center",
        va="center",
        color="white",
        fontsize=_FONT,
        fontweight="bold",
    )
    y += _LINE / 2 + _PAD / 2
    for line in box.lines:
        y += _LINE / 2
        axes.text(box.x, y, line, ha="center", va="center", color="black", fontsize=_FONT)
        y += _LINE / 2
    if box.trainable is not None:
        y += _LINE / 2
        axes.text(
            box.x,
            y,
            "Trainable" if box.trainable else "Non-trainable",
            ha="center",
            va="center",
            fontsize=_FONT,
            fontweight="bold",
            color="forestgreen" if box.trainable else "firebrick",
        )
