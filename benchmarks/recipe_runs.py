"""Full runs of the recipes ``best`` and ``augmented`` (issue 14): ``mlp train``'s path
(`multilayer.training.train_run`, 10% of the training set held out for validation) on MNIST,
one fresh process per seed, recording per epoch the validation accuracy, and at the end the
test accuracy, the training wall time and the peak RSS.

    python -m benchmarks.recipe_runs best --seeds 0,1,2
    python -m benchmarks.recipe_runs augmented --seeds 0 --set epochs=30 --subset 20000

``--set FIELD=VALUE`` (JSON values) runs a variant of the recipe for a pilot; ``--subset N``
trains on the first N training images (the validation split is taken from them). Settings are
chosen on ``val_accuracy``; the test accuracy is recorded but is only reported for the final
choice (docs/benchmarks.md). Each run writes its run directory and a JSON line to
``--output`` (default ``runs/recipe-runs``, outside version control).

``MULTILAYER_SMOKE=1``: one epoch on 600 images, written to a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.machine import smoke_directory, smoke_from_environment

ROOT = Path(__file__).resolve().parents[1]


def worker(spec: dict) -> dict:
    """One run in this process (called in a fresh interpreter by `main`)."""
    import dataclasses

    import numpy as np

    from multilayer import recipes
    from multilayer.datasets import load_dataset
    from multilayer.training import train_run

    base = recipes.get_recipe(spec["recipe"])
    changes = dict(spec.get("set", {}))
    if "hidden" in changes:
        changes["hidden"] = tuple(changes["hidden"])
    variant = dataclasses.replace(base, name=base.name, **changes)
    recipes.RECIPES[base.name] = variant  # this process only: the pilot's variant
    dataset = "mnist"
    subset = spec.get("subset")
    if subset:
        data = load_dataset("mnist")
        path = Path(spec["output"]) / f"mnist-{subset}.npz"
        if not path.exists():
            np.savez(
                path,
                x_train=data.x_train[:subset],
                y_train=data.y_train[:subset],
                x_test=data.x_test,
                y_test=data.y_test,
            )
        dataset = str(path)
    started = time.perf_counter()
    result = train_run(
        base.name,
        dataset,
        seed=spec["seed"],
        output=Path(spec["output"]) / spec["name"],
        verbose=2,
        report=False,
    )
    wall = time.perf_counter() - started
    history = result.history.history
    return {
        "recipe": spec["recipe"],
        "set": spec.get("set", {}),
        "subset": subset,
        "seed": spec["seed"],
        "val_accuracy": history.get("val_accuracy", []),
        "final_val_accuracy": (history.get("val_accuracy") or [None])[-1],
        "test_accuracy": result.metrics["test_accuracy"],
        "train_seconds": result.metrics["train_seconds"],
        # the whole run as `mlp train` does it: data, training, test, calibrated answers
        "run_seconds": wall,
        "epochs": result.metrics["epochs"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "load_average_at_end": os.getloadavg()[0],
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.recipe_runs")
    parser.add_argument("recipe", choices=["best", "augmented", "fast"])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--subset", type=int, default=None)
    parser.add_argument("--output", type=Path, default=ROOT / "runs" / "recipe-runs")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        spec = json.loads(args.worker)
        Path(spec["result"]).write_text(json.dumps(worker(spec)))
        return 0
    changes = {}
    for item in args.set:
        key, _, value = item.partition("=")
        changes[key] = json.loads(value)
    seeds = [int(s) for s in args.seeds.split(",")]
    if smoke_from_environment():
        changes, seeds, args.subset = {**changes, "epochs": 1}, seeds[:1], 600
        args.output = smoke_directory()
    args.output.mkdir(parents=True, exist_ok=True)
    tag = "-".join(f"{k}{json.dumps(v, separators=(',', ':'))}" for k, v in changes.items())
    for seed in seeds:
        name = f"{args.recipe}{'-' + tag if tag else ''}{f'-n{args.subset}' if args.subset else ''}"
        name = "".join(c if c.isalnum() or c in "-_.," else "_" for c in name) + f"-s{seed}"
        spec = {
            "recipe": args.recipe,
            "set": changes,
            "subset": args.subset,
            "seed": seed,
            "output": str(args.output),
            "name": name + time.strftime("-%H%M%S"),
        }
        spec["result"] = str(args.output / f"{spec['name']}.json")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        process = subprocess.run(
            [sys.executable, "-m", "benchmarks.recipe_runs", args.recipe, "--worker"]
            + [json.dumps(spec)],
            cwd=ROOT,
            env=env,
        )
        if process.returncode != 0:
            return process.returncode
        result = json.loads(Path(spec["result"]).read_text())
        with open(args.output / "results.jsonl", "a") as out:
            out.write(json.dumps(result) + "\n")
        print(
            f"{name}: val {result['final_val_accuracy']:.4f} test {result['test_accuracy']:.4f} "
            f"train {result['train_seconds']:.0f} s (whole run {result['run_seconds']:.0f} s), "
            f"peak RSS {result['peak_rss_mb']:.0f} MB",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
