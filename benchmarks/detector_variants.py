"""Variants of the "not a digit" detector, judged without the benchmark's non-digits.

    python -m benchmarks.detector_variants [--run RUN_DIR] [--count 600] [--output DIR]

Each variant of `multilayer.answer_fitting.fit_detector` (hidden units, epochs, how many
random strokes among its negatives) is fitted on the classifier of a ``mlp train`` run (by
default the default recipe, seed 0, trained first), its threshold set on the validation
digits as ``mlp train`` sets it, and measured on non-digits drawn with a *tuning* seed
(`TUNING_SEED`): neither the seed the detector learns from nor the one
``benchmarks.honest_answers`` reports, so the choice does not read the reported figures.

Writes ``detector_variants.json`` to ``--output`` (default ``benchmarks/results``). With
``MULTILAYER_SMOKE=1``: a tiny model, a few images, a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.machine import smoke_directory, smoke_from_environment

ROOT = Path(__file__).resolve().parents[1]
#: Seed of the non-digits the variants are judged on.
TUNING_SEED = 2000
#: (name, fit_detector keyword arguments, how many times the default count of strokes)
VARIANTS = [
    ("stored (128 units, 10 epochs, 2,400 per family)", {}, 1),
    ("3x as many strokes", {}, 3),
    ("20 epochs", {"epochs": 20}, 1),
    ("256 hidden units", {"units": 256}, 1),
    ("256 units and 3x strokes", {"units": 256}, 3),
]


def _negatives(per_family: int, strokes: int) -> np.ndarray:
    from multilayer.answer_fitting import TRAINING_SEED
    from multilayer.nondigits import FAMILIES, non_digits

    counts = {f: per_family * (strokes if f == "strokes" else 1) for f in FAMILIES}
    return np.concatenate([non_digits(f, counts[f], seed=TRAINING_SEED) for f in FAMILIES])


def measure(model, count: int, per_family: int, positives: int) -> list[dict]:
    """One row per variant: its validation rejections and each tuning family's."""
    from multilayer.answer_fitting import fit_detector
    from multilayer.answers import Answers
    from multilayer.datasets import load_dataset
    from multilayer.inference import answer_images
    from multilayer.nondigits import FAMILIES, non_digits
    from multilayer.training import split

    data = load_dataset("mnist")
    (x_train, _), validation = split(data.x_train, data.y_train, 0.1, 0)
    assert validation is not None
    chosen = np.sort(np.random.default_rng(0).choice(len(x_train), positives, replace=False))
    tuning = {f: non_digits(f, count, seed=TUNING_SEED) for f in FAMILIES}
    rows = []
    for name, options, strokes in VARIANTS:
        detector = fit_detector(
            model,
            x_train[chosen],
            validation[0],
            negatives=_negatives(per_family, strokes),
            seed=0,
            **options,
        )
        row = {"variant": name, "validation_rejected": detector.validation_rejected}
        model.answers = Answers(1.0, detector)
        for family, images in tuning.items():
            row[family] = float(answer_images(model, images, 1.0).rejected.mean())
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.detector_variants")
    parser.add_argument("--run", type=Path, default=None)
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    smoke = smoke_from_environment()
    if smoke:
        args.output, args.count = smoke_directory(), 5
    from multilayer.answer_fitting import NEGATIVES_PER_FAMILY, POSITIVES
    from multilayer.models import load_model
    from multilayer.training import prepare_run

    with tempfile.TemporaryDirectory() as workdir:
        if args.run is not None:
            model = load_model(args.run / "model.safetensors")
        else:  # the default recipe, seed 0, as `mlp train --seed 0` trains it
            overrides = {"hidden": [32], "epochs": 1} if smoke else {}
            prepared = prepare_run("fast", seed=0, overrides=overrides, output=Path(workdir) / "r")
            model = prepared.run(verbose=0, report=False, answers=False).model
        rows = measure(
            model,
            args.count,
            per_family=20 if smoke else NEGATIVES_PER_FAMILY,
            positives=200 if smoke else POSITIVES,
        )
    args.output.mkdir(parents=True, exist_ok=True)
    result = {"tuning_seed": TUNING_SEED, "count": args.count, "smoke": smoke, "rows": rows}
    (args.output / "detector_variants.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
