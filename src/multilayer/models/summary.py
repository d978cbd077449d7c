"""The text of ``model.summary()``: layers, output shapes, parameter counts and, for a graph
that is not a plain stack, the layers each one is connected to (Keras 3's columns)."""

from __future__ import annotations

import numpy as np


def _format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GB"


def _shape(shape) -> str:
    if isinstance(shape, list):
        return "[" + ", ".join(_shape(s) for s in shape) + "]"
    return f"({', '.join(['None', *(str(s) for s in shape)])})"


def summary_text(model) -> str:
    from multilayer.engine.layers import InputLayer
    from multilayer.models.sequential import Sequential

    built = model.built
    graph = not isinstance(model, Sequential)
    rows = []
    for layer in model.layers:
        if isinstance(layer, InputLayer) and not graph:
            continue  # as in Keras 3: a Sequential model's input is not a row of the table
        shape = _shape(layer.output_shape) if built and layer.output_shape is not None else "?"
        params = f"{layer.count_params():,}" if built else "0 (unbuilt)"
        kind = type(layer).__name__
        if kind == "Model":
            kind = "Functional"  # as Keras names a model built from inputs and outputs
        row = [f"{layer.name} ({kind})", shape, params]
        if graph:
            node = layer.inbound_node
            inputs = node.inputs if node is not None else []
            row.append(", ".join(f"{t.layer.name}[0][{t.index}]" for t in inputs) or "-")
        rows.append(tuple(row))
    headers = ("Layer (type)", "Output Shape", "Param #", "Connected to")[: 4 if graph else 3]
    columns = len(headers)
    widths = [
        max(len(headers[i]), *(len(row[i]) for row in rows)) + 2 if rows else len(headers[i]) + 2
        for i in range(columns)
    ]
    rule = "─" * (sum(widths) + 2)

    def line(cells):
        text = f" {cells[0]:<{widths[0]}}{cells[1]:<{widths[1]}}{cells[2]:>{widths[2]}}"
        if columns == 4:
            text += f"  {cells[3]:<{widths[3]}}"
        return text.rstrip()

    total = model.count_params() if built else 0
    itemsize = np.dtype(model.dtype).itemsize
    out = [f'Model: "{model.name}"', rule, line(headers), "═" * len(rule)]
    out += [line(row) for row in rows]
    out += [
        rule,
        f" Total params: {total:,} ({_format_bytes(total * itemsize)})",
        f" Trainable params: {total:,} ({_format_bytes(total * itemsize)})",
        " Non-trainable params: 0 (0.00 B)",
    ]
    return "\n".join(out)
