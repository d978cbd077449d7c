"""Benchmarks of ``mlp tune`` (`multilayer.tuning`): throughput of workers sharing a study, and
what a search finds on MNIST.

1. ``throughput``: trials completed per 10 minutes with 1 and 2 worker processes, on the
   journal file and on PostgreSQL (a throwaway cluster started for the run, as the tests do).
   Every trial costs the same (a fixed 784-256-256-10 model, 2 epochs on 10,000 MNIST
   images, only the learning rate searched, no pruning); each configuration runs for
   ``--window`` seconds (no trial starts after it) and the count is scaled to 10 minutes:
   ``complete / wall seconds * 600``, the wall time including the last trials' tail.
2. ``search``: a ``--search`` long search (default space, median pruning, 2 workers, full
   MNIST) against the default recipe ``fast`` trained once with the same seed rules; the
   best trial's test accuracy (chosen on validation accuracy), and the epochs pruning saved:
   ``sum(budget - epochs run)`` over pruned trials, in full trials' worth.

Usage::

    python -m benchmarks.tune                        # ~ 6 min of throughput + a 20 min search
    python -m benchmarks.tune --window 60 --search 10m --only throughput
    MULTILAYER_SMOKE=1 python -m benchmarks.tune     # seconds, into a temporary directory

Results: ``benchmarks/results/tune.json`` (or ``--output``); the tables in docs/tuning.md and
docs/benchmarks.md are copied from its printout. The machine is shared: the load average
at the start and end of each measurement is recorded beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import machine_description, smoke_directory, smoke_from_environment

RESULTS = Path(__file__).resolve().parent / "results"
HELPERS = Path(__file__).resolve().parents[1] / "tests" / "helpers"

#: Every throughput trial costs the same: only the learning rate varies.
FIXED_SPACE = {
    "layers": {"value": 2},
    "units": {"value": 256},
    "batch_size": {"value": 128},
    "schedule": {"value": "constant"},
    "dropout": {"value": 0.0},
    "weight_decay": {"value": 1e-5},
    "label_smoothing": {"value": 0.0},
    "epochs": {"value": 2},
    "learning_rate": {"low": 3e-4, "high": 3e-3, "log": True},
}


def subset(directory: Path, train: int, test: int) -> str:
    from multilayer.datasets import load_dataset

    data = load_dataset("mnist")
    path = directory / f"mnist-{train}.npz"
    np.savez(
        path,
        x_train=data.x_train[:train],
        y_train=data.y_train[:train],
        x_test=data.x_test[:test],
        y_test=data.y_test[:test],
    )
    return str(path)


def throughput(work: Path, window: float, dataset: str, storage: str | None, workers: int) -> dict:
    from multilayer.tuning import tune

    load_start = os.getloadavg()[0]
    start = time.perf_counter()
    result = tune(
        dataset,
        work / f"{'pg' if storage else 'journal'}-{workers}",
        trials=100_000,
        timeout=window,
        workers=workers,
        study=f"throughput-{workers}-{time.time_ns()}",
        storage=storage,
        space=FIXED_SPACE,
        pruner="none",
        seed=0,
        results=False,
    )
    del result
    wall = time.perf_counter() - start
    from multilayer.tuning import read_settings
    from multilayer.tuning.study import counts, open_backend, open_study

    settings = read_settings(work / f"{'pg' if storage else 'journal'}-{workers}", storage)
    backend = open_backend(settings)
    state = counts(open_study(settings, backend))
    backend.close()
    complete = state.get("COMPLETE", 0)
    return {
        "storage": "postgresql" if storage else "journal",
        "workers": workers,
        "window_s": window,
        "wall_s": round(wall, 1),
        "complete": complete,
        "trials_per_10_min": round(complete / wall * 600, 1),
        "states": state,
        "load_average": [round(load_start, 2), round(os.getloadavg()[0], 2)],
    }


def search(work: Path, seconds: float, smoke: bool) -> dict:
    from multilayer.training import train_run
    from multilayer.tuning import tune

    dataset = subset(work, 2000, 500) if smoke else "mnist"
    load_start = os.getloadavg()[0]
    space = {"epochs": {"value": 1}, "units": {"choices": [32]}} if smoke else None
    start = time.perf_counter()
    result = tune(
        dataset,
        work / "search",
        timeout=seconds,
        trials=10_000,
        workers=1 if smoke else 2,
        space=space,
        seed=0,
    )
    wall = time.perf_counter() - start
    from multilayer.tuning import read_settings
    from multilayer.tuning.study import open_backend, open_study

    settings = read_settings(work / "search")
    backend = open_backend(settings)
    study = open_study(settings, backend)
    budget = settings.space["epochs"]["value"]
    pruned = [t for t in study.get_trials() if t.state.name == "PRUNED"]
    saved_epochs = sum(budget - int(t.user_attrs.get("epochs", budget)) for t in pruned)
    backend.close()
    baseline = train_run(
        "fast",
        dataset,
        seed=0,
        output=work / "default",
        verbose=0,
        report=False,
        **({"overrides": {"epochs": 1, "hidden": [32]}} if smoke else {}),
    )
    return {
        "search_s": seconds,
        "wall_s": round(wall, 1),
        "counts": result.counts,
        "best_trial": result.best_number,
        "best_val_accuracy": result.best_value,
        "best_test_accuracy": result.best_test_accuracy,
        "best_params": result.best_params,
        "default_recipe_test_accuracy": baseline.metrics["test_accuracy"],
        "default_recipe_seconds": round(baseline.metrics["train_seconds"], 1),
        "epoch_budget": budget,
        "pruned_trials": len(pruned),
        "epochs_saved_by_pruning": saved_epochs,
        "full_trials_saved": round(saved_epochs / budget, 1),
        "load_average": [round(load_start, 2), round(os.getloadavg()[0], 2)],
    }


def main(argv: list[str] | None = None) -> int:
    from multilayer.tuning import parse_duration

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", type=float, default=90.0, help="seconds per throughput run")
    parser.add_argument("--search", default="20m", help="length of the MNIST search")
    parser.add_argument("--only", choices=["throughput", "search"], default=None)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    smoke = smoke_from_environment()
    window, seconds = (2.0, 4.0) if smoke else (args.window, parse_duration(args.search))
    output = args.output or (smoke_directory() if smoke else RESULTS)
    report: dict = {"machine": machine_description(), "throughput": [], "search": None}
    with tempfile.TemporaryDirectory(prefix="multilayer-tune-bench-") as scratch:
        work = Path(scratch)
        if args.only in (None, "throughput"):
            dataset = subset(work, 2000 if smoke else 10_000, 500 if smoke else 2000)
            sys.path.insert(0, str(HELPERS))
            import postgres  # tests/helpers/postgres.py: the throwaway cluster of the tests

            binaries, user = postgres.find_binaries(), postgres.server_user()
            counts = (1,) if smoke else (1, 2)  # the smoke run checks the code, quickly
            for workers in counts:
                row = throughput(work, window, dataset, None, workers)
                report["throughput"].append(row)
                print(json.dumps(row), flush=True)
            if isinstance(binaries, str) or isinstance(user, str):
                print(f"PostgreSQL skipped: {binaries if isinstance(binaries, str) else user}")
            else:
                with postgres.throwaway_cluster(*binaries, user) as url:
                    for workers in counts:
                        row = throughput(work, window, dataset, url, workers)
                        report["throughput"].append(row)
                        print(json.dumps(row), flush=True)
        if args.only in (None, "search"):
            report["search"] = search(work, seconds, smoke)
            print(json.dumps(report["search"]), flush=True)
    report["machine"]["load_average_at_end"] = os.getloadavg()[0]
    output.mkdir(parents=True, exist_ok=True)
    name = "tune.json" if args.only is None else f"tune-{args.only}.json"
    (output / name).write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {output / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
