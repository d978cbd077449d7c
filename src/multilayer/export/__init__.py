"""Exporting models to other runtimes: ONNX (`multilayer.export.onnx`, the ``onnx`` extra).

``model.export("model.onnx")`` and ``mlp export RUN -o model.onnx`` call `export_model`.
"""

from __future__ import annotations

from multilayer.export.onnx import (
    DEFAULT_OPSET,
    ExportError,
    converter_for,
    export_model,
    supported_layers,
    to_onnx,
)

__all__ = [
    "DEFAULT_OPSET",
    "ExportError",
    "converter_for",
    "export_model",
    "supported_layers",
    "to_onnx",
]
