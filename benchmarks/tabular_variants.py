"""Recipe variants of ``tabular`` scored on VALIDATION data only, on the tables of
``benchmarks.tabular``: each seed takes the benchmark's training portion (its test split is
never touched) and the run's own validation split (20% of it) selects the best epoch and
scores the variant. Used to choose the defaults in ``multilayer.recipes`` (docs/benchmarks.md).

    OPENBLAS_NUM_THREADS=1 python -m benchmarks.tabular_variants --datasets default,wage \
        --variants default,budget --seeds 2

Printed per (dataset, variant): the validation metric at the best epoch (accuracy for
classification, R^2 for regression, from the best epoch's validation loss), the epochs run
and the wall time of preparation plus ``fit``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from benchmarks import tabular as bench
from multilayer import recipes

#: Changes to the ``tabular`` recipe (fields, and ``extra`` merged into its extra).
VARIANTS: dict[str, dict] = {
    "default": {},
    "smoke": {"epochs": 2},  # checks the code (tests), not the figures
    "s1000": {"extra": {"max_steps": 1000, "patience_fraction": 0.3}},
    "s500": {"extra": {"max_steps": 500, "patience_fraction": 0.3}},
    "s1000-h2": {"hidden": (256, 256), "extra": {"max_steps": 1000, "patience_fraction": 0.3}},
    "s1000-nodrop": {"dropout": 0.0, "extra": {"max_steps": 1000, "patience_fraction": 0.3}},
    "h2": {"hidden": (256, 256)},
    "h2-p15": {"hidden": (256, 256), "extra": {"patience": 15}},
    "s2000-h2": {"hidden": (256, 256), "extra": {"max_steps": 2000, "patience_fraction": 0.3}},
    "oh32": {"extra": {"one_hot_values": 32}},
    "oh32-h2": {"hidden": (256, 256), "extra": {"one_hot_values": 32}},
    "oh32-h2-p15": {"hidden": (256, 256), "extra": {"one_hot_values": 32, "patience": 15}},
    "oh32-h2-s1500": {
        "hidden": (256, 256),
        "extra": {"one_hot_values": 32, "max_steps": 1500, "patience_fraction": 0.3},
    },
}


def _register(name: str, changes: dict) -> str:
    base = recipes.RECIPES["tabular"]
    changes = dict(changes)
    extra = {**base.extra, **changes.pop("extra", {})}
    recipes.RECIPES[f"tabular-{name}"] = replace(
        base, name=f"tabular-{name}", extra=extra, **changes
    )
    return f"tabular-{name}"


def score(dataset: str, variant: str, seed: int) -> dict:
    """The validation score of ``variant`` on ``dataset``'s training portion for ``seed``."""
    from multilayer.tabular import training

    frame, target = bench.DATASETS[dataset].load()
    task = bench._task_of(frame, target)
    train, _ = bench._split(frame, target, task, seed)  # the test part is never used
    recipe = _register(variant, VARIANTS[variant])
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        prepared = training.prepare_table_run(
            train, target, test_data=train.head(2), seed=seed, recipe=recipe,
            output=Path(folder) / "run",
        )  # fmt: skip
        result = prepared.run(verbose=0, report=False)
        seconds = time.perf_counter() - start
    history = result.history.history
    best = result.metrics["best_epoch"]
    if task == "regression":
        y_val = prepared.validation[1] if prepared.validation is not None else None
        variance = float(y_val.var()) if y_val is not None else float("nan")
        value = 1.0 - history["val_loss"][best] / variance  # MSE loss: R^2 of the validation
    else:
        value = history["val_accuracy"][best]
    return {"value": float(value), "seconds": seconds, "epochs": len(result.history.epoch)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tabular_variants")
    parser.add_argument("--datasets", default="default,wage,bikeshare")
    parser.add_argument("--variants", default="default")
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args(argv)
    for dataset in args.datasets.split(","):
        for variant in args.variants.split(","):
            runs = [score(dataset, variant, seed) for seed in range(args.seeds)]
            print(
                f"{dataset:16} {variant:14} val {statistics.fmean(r['value'] for r in runs):.4f}"
                f"  epochs {statistics.fmean(r['epochs'] for r in runs):5.1f}"
                f"  {statistics.fmean(r['seconds'] for r in runs):6.2f} s",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
