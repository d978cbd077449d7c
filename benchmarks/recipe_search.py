"""The experiments behind multilayer's default recipe ``fast``.

Trains the tutorial architecture (784-512-768-10, ReLU) on all 60,000 training images with
candidate recipes and records, per seed, the test accuracy after every epoch and the
training wall time (evaluation excluded). A one-cycle or cosine schedule is only complete
at its last epoch, so what matters is the accuracy at the end and the time it took.

    python -m benchmarks.recipe_search [--seeds 2] [--output benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from benchmarks.run import ROOT, TARGET, run_worker

#: (batch size, peak learning rate, schedule, epochs, label smoothing, warm-up fraction)
CANDIDATES = [
    (512, 3e-3, "onecycle", 6, 0.1, 0.25),
    (512, 3e-3, "onecycle", 5, 0.1, 0.25),
    (1024, 4e-3, "onecycle", 6, 0.1, 0.25),
    (256, 2e-3, "onecycle", 6, 0.1, 0.25),
    (512, 3e-3, "onecycle", 6, 0.0, 0.25),
    (512, 3e-3, "cosine", 6, 0.1, 0.1),
    (512, 3e-3, "onecycle", 8, 0.1, 0.25),
    (256, 2e-3, "onecycle", 10, 0.1, 0.25),
    (512, 3e-3, "onecycle", 4, 0.1, 0.25),
    (1024, 4e-3, "onecycle", 5, 0.1, 0.25),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.recipe_search")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--pick", help="comma-separated indices into CANDIDATES (default: all)")
    args = parser.parse_args(argv)
    picked = [CANDIDATES[int(i)] for i in args.pick.split(",")] if args.pick else CANDIDATES
    rows = []
    for batch, lr, schedule, epochs, smoothing, warmup in picked:
        config = {
            "batch_size": batch,
            "learning_rate": lr,
            "schedule": schedule,
            "epochs": epochs,
            "label_smoothing": smoothing,
            "warmup_fraction": warmup,
        }
        seeds = []
        for seed in range(args.seeds):
            seeds.append(
                run_worker(
                    {
                        "task": "tta",
                        "system": "multilayer",
                        "recipe": "fast",
                        "config": config,
                        "seed": seed,
                        "target": TARGET,
                        "budget_seconds": 1e9,
                        "stop_at_target": False,
                    }
                )
            )
        row = {
            **config,
            "final_accuracy": [s["final_accuracy"] for s in seeds],
            "train_seconds": [s["curve"][-1]["train_seconds"] for s in seeds],
            "seconds_to_target": [s["seconds_to_target"] for s in seeds],
        }
        rows.append(row)
        print(
            f"{batch:5d} {lr:.0e} {schedule:9s} {epochs:2d} ep ls={smoothing:.1f}: acc "
            + " ".join(f"{a:.4f}" for a in row["final_accuracy"])
            + f"  train {statistics.median(row['train_seconds']):.1f} s",
            flush=True,
        )
    args.output.mkdir(parents=True, exist_ok=True)
    path = args.output / time.strftime("recipes-%Y%m%d-%H%M%S.json")
    path.write_text(json.dumps(rows, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
