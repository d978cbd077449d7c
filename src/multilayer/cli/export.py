"""``mlp export MODEL -o model.onnx``: the model as an ONNX file (for onnxruntime and others)."""

import json
from pathlib import Path
from typing import Annotated

import typer

from multilayer.cli.common import console, load_model_arg


def command(
    model: Annotated[Path, typer.Argument(help="A .safetensors model file or a run directory.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="The ONNX file to write, named *.onnx (default: beside the model file, "
            "model.onnx).",
        ),
    ] = None,
    opset: Annotated[
        int | None, typer.Option(help="The ONNX opset (default 18, the oldest supported).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Export a model to ONNX, with a dynamic batch size (probabilities and label outputs for
    a classifier)."""
    from multilayer.export.onnx import default_path, export_model, signature

    loaded, model_file, _ = load_model_arg(model)
    path = export_model(
        loaded, output if output is not None else default_path(model_file), opset_version=opset
    )
    info = signature(path)
    if as_json:
        print(json.dumps({"model": str(model_file), "onnx": str(path), **info}, indent=2))
        return
    out = console()
    out.print(f"wrote {path}")
    for kind in ("inputs", "outputs"):
        for value in info[kind]:
            shape = ", ".join(str(d) for d in value["shape"])
            out.print(f"  {kind[:-1]:6} {value['name']}: {value['type']} ({shape})")
