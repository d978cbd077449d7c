"""The text of ``model.summary()``: layers, output shapes and parameter counts, like Keras."""

from __future__ import annotations

import numpy as np


def _format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GB"


def summary_text(model) -> str:
    built = model.built
    rows = []
    from multilayer.engine.layers import InputLayer

    for layer in model.layers:
        if isinstance(layer, InputLayer):
            continue  # as in Keras 3: the input is not a row of the table
        shape = f"(None, {', '.join(str(s) for s in layer.output_shape)})" if built else "?"
        params = f"{layer.count_params():,}" if built else "0 (unbuilt)"
        rows.append((f"{layer.name} ({type(layer).__name__})", shape, params))
    headers = ("Layer (type)", "Output Shape", "Param #")
    widths = (
        [max(len(headers[i]), *(len(row[i]) for row in rows)) + 2 for i in range(3)]
        if rows
        else [14, 14, 9]
    )
    rule = "─" * (sum(widths) + 2)

    def line(cells):
        return f" {cells[0]:<{widths[0]}}{cells[1]:<{widths[1]}}{cells[2]:>{widths[2]}}"

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
