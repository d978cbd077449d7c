"""``mlp predict MODEL IMAGE...``: the most probable classes of each image.

Images are PNG/JPEG (any size, dark-on-light or light-on-dark) or ``.npy`` arrays. For a
model of 28x28 inputs each is prepared as MNIST digits were
(`multilayer.data.images.preprocess`); for a model trained on images of another size
(your own ``.npz``), each is only resized to that size (`multilayer.data.images.resize_to`).
Either way it is fed to the model at the pixel scale it takes (`multilayer.inference`).
"""

import json
from pathlib import Path
from typing import Annotated

import typer

from multilayer.cli.common import console, load_model_arg


def _recorded_dataset(run) -> dict:
    config = run.config if run is not None else None
    dataset = config.get("dataset") if isinstance(config, dict) else None
    return dataset if isinstance(dataset, dict) else {}


def class_names(run) -> list[str] | None:
    """Class names recorded in a run directory's config.json, if any."""
    names = _recorded_dataset(run).get("classes")
    return [str(n) for n in names] if isinstance(names, list) else None


def recorded_image_shape(run) -> tuple[int, ...] | None:
    """The image shape of the run's training data, from its config.json, if recorded."""
    shape = _recorded_dataset(run).get("image_shape")
    if isinstance(shape, list) and all(type(d) is int and d > 0 for d in shape):
        return tuple(shape)
    return None


def command(
    model: Annotated[Path, typer.Argument(help="A .safetensors model file or a run directory.")],
    images: Annotated[
        list[Path], typer.Argument(help="PNG or JPEG files of any size, or .npy arrays.")
    ],
    top: Annotated[int, typer.Option(min=1, help="How many classes to show per image.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Classify images of digits with a trained model."""
    import numpy as np

    from multilayer.data.images import load_image, preprocess, resize_to
    from multilayer.inference import image_shape, predict_images, top_k

    loaded, _, run = load_model_arg(model)
    height, width = image_shape(loaded, recorded_image_shape(run))
    # Read every image first, so a bad one fails the command before anything is printed.
    if (height, width) == (28, 28):
        batch = np.stack([preprocess(path) for path in images])
    else:
        batch = np.stack([resize_to(load_image(path), height, width) for path in images])
    probs = predict_images(loaded, batch, pixel_max=1.0)
    names = class_names(run) or [str(c) for c in range(probs.shape[1])]
    results = [
        {
            "image": str(path),
            "top": [{"class": c, "name": names[c], "probability": p} for c, p in top_k(row, top)],
        }
        for path, row in zip(images, probs, strict=True)
    ]
    if as_json:
        print(json.dumps(results, indent=2))
        return
    out = console()
    for result in results:
        best = ", ".join(f"{t['name']} {100 * t['probability']:.1f}%" for t in result["top"])
        out.print(f"{result['image']}: [bold]{result['top'][0]['name']}[/bold]  ({best})")
