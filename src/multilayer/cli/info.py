"""``mlp info MODEL``: the architecture and how the model was trained."""

import json
from pathlib import Path
from typing import Annotated

import typer

from multilayer.cli.common import console, load_model_arg, show


def describe(model, model_file: Path, run) -> dict:
    """Everything ``mlp info`` shows, as JSON-ready values."""
    from multilayer.runs import json_safe

    info = {
        "model_file": str(model_file),
        "parameters": model.count_params(),
        "input_shape": list(model.input_shape),
        "output_shape": list(model.output_shape),
        "architecture": model.get_config(),
        "compile": model.compile_config,
        "training_info": model.training_info,
        "input_scale": None if model.input_scale is None else model.input_scale.to_dict(),
    }
    if run is not None:
        info["run_dir"] = str(run.path)
        info["config"] = run.config
        metrics = run.metrics
        if metrics is not None:
            # The per-class table and confusion matrix are `mlp evaluate`'s job.
            info["metrics"] = {
                k: v for k, v in metrics.items() if k not in ("per_class", "confusion_matrix")
            }
    return json_safe(info)


def command(
    model: Annotated[Path, typer.Argument(help="A .safetensors model file or a run directory.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Show a model's architecture and training metadata."""
    loaded, model_file, run = load_model_arg(model)
    info = describe(loaded, model_file, run)
    if as_json:
        print(json.dumps(info, indent=2))
        return
    out = console()
    loaded.summary(print_fn=out.print)
    compile_config = info["compile"]
    if compile_config:
        optimizer = compile_config["optimizer"]
        loss = compile_config["loss"]
        out.print(f"Optimizer: {_config_name(optimizer)} - loss: {_config_name(loss)}")
    scale = loaded.input_scale
    if scale is not None:
        how = (
            f"standardised by the model with mean {scale.mean:.4f}, std {scale.std:.4f}"
            if scale.mean is not None
            else "rescaled by the model"
        )
        out.print(f"Input: pixels 0..{scale.pixel_max:g} ({how})")
    training = info["training_info"]
    if training:
        out.print("[bold]Training[/bold]")
        for key, value in training.items():
            out.print(f"  {key}: {show(key, value)}")
    metrics = info.get("metrics")
    if metrics:
        out.print(f"[bold]Run directory[/bold] {info['run_dir']}")
        for key, value in metrics.items():
            if training.get(key) != value:  # each value once (test metrics are in both)
                out.print(f"  {key}: {show(key, value)}")
    config = info.get("config")
    if config:
        recipe = config.get("recipe", {})
        out.print(
            "  recipe: " + ", ".join(f"{k}={v}" for k, v in recipe.items() if k not in ("extra",))
        )
        out.print(f"  versions: {config.get('versions')}")


def _config_name(config: object) -> object:
    """The class name of a ``{"class_name": ..., "config": ...}`` dict (or of the older
    ``{"name": ...}`` shape); anything else as it is."""
    if isinstance(config, dict):
        return config.get("class_name", config.get("name", config))
    return config
