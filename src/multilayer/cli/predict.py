"""``mlp predict MODEL IMAGE...``: the most probable classes of each image; for a run trained
on a table, ``mlp predict RUN rows.csv -o predictions.csv`` (see `multilayer.cli.tabular`).

An image that cannot be read does not hide the results for the others: they are printed,
then one error line names every image that failed (exit code 1). With ``--json`` such an
image gets ``{"image": ..., "error": ...}`` instead of ``{"image": ..., "top": [...]}``.

Images are PNG/JPEG (any size, dark-on-light or light-on-dark) or ``.npy`` arrays. For a
model of 28x28 inputs each is prepared as MNIST digits were
(`multilayer.data.images.preprocess`); for a model trained on images of another size
(your own ``.npz``), each is only resized to that size (`multilayer.data.images.resize_to`);
for a run trained on an image folder, each is prepared as the folder's images were
(`multilayer.datasets.folder.prepare_image`).
Either way it is fed to the model at the pixel scale it takes (`multilayer.inference`).

A model trained by ``mlp train`` carries calibrated answers (`multilayer.answers`): the
probabilities shown are calibrated, and an image unlike the training digits is shown as
``not sure (...)``, its probabilities still listed. With ``--json`` each result has
``"rejected"`` (true/false), ``"score"`` (the detector's score in [0, 1], null without a
detector) and ``"reason"`` (why it was rejected, or null).
"""

import json
import math
from pathlib import Path
from typing import Annotated, Any

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
        list[Path],
        typer.Argument(
            help="PNG or JPEG files of any size, or .npy arrays; for a run trained on a "
            "table, one CSV or Parquet file."
        ),
    ],
    top: Annotated[int, typer.Option(min=1, help="How many classes to show per image.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="For a run trained on a table: the file to write the predictions to "
            "(.csv or .parquet), one row per input row.",
        ),
    ] = None,
) -> None:
    """Classify images of digits with a trained model, or predict the rows of a table."""
    import numpy as np

    from multilayer.cli import tabular

    if tabular.table_run(model) is not None:
        if as_json:
            raise typer.BadParameter(
                "--json is for images; a run trained on a table writes its predictions to "
                "-o FILE (.csv or .parquet)"
            )
        tabular.predict(model, images, output)
        return
    if output is not None:
        raise typer.BadParameter(
            f"-o/--output is for runs trained on a table; {model} was not (its config.json "
            "has no 'table' entry)"
        )

    from multilayer.cli.errors import describe
    from multilayer.data.images import load_image, preprocess, resize_to
    from multilayer.errors import MultilayerError
    from multilayer.inference import answer_images, image_shape, top_k

    loaded, _, run = load_model_arg(model)
    height, width = image_shape(loaded, recorded_image_shape(run))

    folder = _recorded_dataset(run).get("image_folder") is True

    def prepare(path: Path) -> np.ndarray:
        if folder:  # trained on an image folder: prepared as its images were
            from multilayer.datasets.folder import prepare_image

            return prepare_image(path, (height, width))
        if (height, width) == (28, 28):
            return preprocess(path)
        return resize_to(load_image(path), height, width)

    # Every image is read before anything is printed; one that cannot be read is reported at
    # the end (exit code 1) and does not hide the results for the others.
    prepared, failed = [], {}
    for path in images:
        try:
            prepared.append(prepare(path))
        except (MultilayerError, OSError, ValueError) as error:
            if len(images) == 1:
                raise
            failed[path] = describe(error)
    good = [path for path in images if path not in failed]
    answered = answer_images(loaded, np.stack(prepared), pixel_max=1.0) if prepared else None
    names = class_names(run) or [str(c) for c in range(int(loaded.output_shape[-1]))]
    found: dict[Path, dict[str, Any]] = {}
    for index, path in enumerate(good):
        assert answered is not None
        row = answered.probabilities[index]
        score = float(answered.score[index])
        found[path] = {
            "top": [{"class": c, "name": names[c], "probability": p} for c, p in top_k(row, top)],
            "rejected": bool(answered.rejected[index]),
            "score": None if math.isnan(score) else score,
            "reason": answered.reason(index),
        }
    results: list[dict[str, Any]] = [
        {"image": str(path), **found[path]}
        if path in found
        else {"image": str(path), "error": failed[path]}
        for path in images
    ]
    if as_json:
        print(json.dumps(results, indent=2))
    else:
        from rich.markup import escape

        out = console()
        for result in results:
            if "top" in result:
                top_classes = result["top"]
                best = ", ".join(f"{t['name']} {100 * t['probability']:.1f}%" for t in top_classes)
                verdict = (
                    f"not sure ({escape(result['reason'])})"
                    if result["rejected"]
                    else f"[bold]{escape(top_classes[0]['name'])}[/bold]"
                )
                out.print(f"{escape(result['image'])}: {verdict}  ({escape(best)})")
    if failed:
        raise MultilayerError(
            f"{len(failed)} of {len(images)} images could not be read: "
            + "; ".join(failed.values())
        )
