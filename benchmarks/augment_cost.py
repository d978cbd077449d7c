"""What on-the-fly augmentation costs an epoch (issue 14: at most 1.3x an unaugmented one).

Trains the ``augmented`` recipe's model (784-1024-1024-10, batch 128) for one epoch on the
same images four ways, side by side in one process, alternating, and reports the median
seconds per epoch and the ratio to plain arrays:

- ``arrays``: ``fit`` on the uint8 arrays, no augmentation (the path of an unaugmented recipe);
- ``batches, no augmentation``: `AugmentedBatches` without distortions (the PyDataset path);
- ``augmented, in the training thread``: distortions made when each batch is asked for;
- ``augmented, background producer``: distortions made ahead by a thread (the recipe's way).

Also the time to distort the epoch's images alone, in the same process.

    python -m benchmarks.augment_cost [--images 12800] [--repeats 3]

``MULTILAYER_SMOKE=1``: 512 images, 1 repeat, written to a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from benchmarks.machine import machine_description, smoke_directory, smoke_from_environment

ROOT = Path(__file__).resolve().parents[1]
WAYS = (
    "arrays",
    "batches, no augmentation",
    "augmented, in the training thread",
    "augmented, background producer",
)


def epoch_seconds(way: str, x, y, recipe, seed: int) -> float:
    from multilayer.data.augment import Augmentation, AugmentedBatches
    from multilayer.recipes import build_model

    steps = -(-len(x) // recipe.batch_size)
    model = build_model(recipe, x.shape[1:], 10, steps, seed=seed)
    augmentation = Augmentation.from_config(recipe.augment)
    if way == "arrays":
        start = time.perf_counter()
        model.fit(x, y, batch_size=recipe.batch_size, epochs=1, verbose=0)
        return time.perf_counter() - start
    batches = AugmentedBatches(
        x,
        y,
        recipe.batch_size,
        None if way == "batches, no augmentation" else augmentation,
        seed=seed,
        prefetch=4 if way == "augmented, background producer" else 0,
    )
    start = time.perf_counter()
    model.fit(batches, epochs=1, verbose=0)
    elapsed = time.perf_counter() - start
    batches.close()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    import numpy as np

    from multilayer.data.augment import Augmentation
    from multilayer.datasets import load_dataset
    from multilayer.recipes import get_recipe

    parser = argparse.ArgumentParser(prog="python -m benchmarks.augment_cost")
    parser.add_argument("--images", type=int, default=12800)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    if smoke_from_environment():
        args.images, args.repeats, args.output = 512, 1, smoke_directory()
    data = load_dataset("mnist")
    x, y = data.x_train[: args.images], data.y_train[: args.images]
    recipe = get_recipe("augmented")
    times: dict[str, list[float]] = {way: [] for way in WAYS}
    distort: list[float] = []
    augmentation = Augmentation.from_config(recipe.augment or {})
    for repeat in range(args.repeats):
        for way in WAYS:
            times[way].append(epoch_seconds(way, x, y, recipe, seed=repeat))
        start = time.perf_counter()
        for i in range(0, len(x), recipe.batch_size):
            augmentation(x[i : i + recipe.batch_size], np.random.default_rng([repeat, i]))
        distort.append(time.perf_counter() - start)
    base = statistics.median(times["arrays"])
    rows = [
        {
            "way": way,
            "median_epoch_seconds": statistics.median(times[way]),
            "ratio": statistics.median(times[way]) / base,
            "seconds": times[way],
        }
        for way in WAYS
    ]
    machine = machine_description()
    machine["load_average_at_end"] = os.getloadavg()[0]
    result = {
        "images": args.images,
        "repeats": args.repeats,
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "machine": machine,
        "rows": rows,
        "distort_only_seconds": statistics.median(distort),
    }
    print(
        f"{args.images} images, batch {recipe.batch_size}, median of {args.repeats}; "
        f"BLAS threads {result['blas_threads']}; load {machine['load_average_at_start']:.1f} "
        f"-> {machine['load_average_at_end']:.1f}\n"
    )
    print("| way | s per epoch | ratio to arrays |\n|---|---:|---:|")
    for row in rows:
        print(f"| {row['way']} | {row['median_epoch_seconds']:.2f} | {row['ratio']:.2f}x |")
    print(f"\ndistorting the epoch's images alone: {result['distort_only_seconds']:.2f} s")
    args.output.mkdir(parents=True, exist_ok=True)
    path = args.output / time.strftime("augment-cost-%Y%m%d-%H%M%S.json")
    path.write_text(json.dumps(result, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
