"""Run every benchmark side by side and write JSON results and a markdown report.

Usage (from the repository root)::

    MULTILAYER_DATA=/path/to/datasets python -m benchmarks            # full run, ~15-25 min
    python -m benchmarks --smoke --output /tmp/bench                 # seconds; what CI runs
    python -m benchmarks --only epochs --systems multilayer,pytorch   # one section
    MULTILAYER_SMOKE=1 python -m benchmarks ...   # any command as a smoke run, into a temp dir

Every measurement runs in a fresh worker process (`benchmarks.worker`); systems alternate
within each repetition (the order rotates), so a slow spell of the machine hits all of them.
Reported figures are medians over repetitions (or seeds), with ratios to multilayer.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import report, revisions
from benchmarks.machine import machine_description, smoke_directory, smoke_from_environment

ROOT = Path(__file__).resolve().parents[1]
ALL_SYSTEMS = ("multilayer", "multilayer-1thread", "pytorch", "sklearn", "keras")
SECTIONS = ("import", "epochs", "predict", "tta")
TARGET = 0.984


def run_worker(task: dict, timeout: float = 1800) -> dict:
    """Run one measurement in a fresh process and return its JSON result."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if task.get("smoke"):
        # The smoke run checks the code, not the speed: one BLAS thread keeps it quick and
        # steady on a busy CI machine (two spinning OpenBLAS threads collapse under load).
        env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.worker", json.dumps(task)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    if completed.returncode != 0 or not lines:
        tail = (completed.stderr or completed.stdout)[-2000:]
        return {"error": f"worker failed (exit {completed.returncode}): {tail}"}
    return json.loads(lines[-1][len("RESULT ") :])


def rotated(items: list, shift: int) -> list:
    shift %= max(len(items), 1)
    return items[shift:] + items[:shift]


def measure_import(repeats: int) -> dict:
    """Median wall time of ``import multilayer`` in fresh interpreters."""
    code = "import time; t = time.perf_counter(); import multilayer; print(time.perf_counter() - t)"
    times = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        times.append(float(out.strip().splitlines()[-1]))
    return {"median_seconds": statistics.median(times), "runs": times}


def tta_plans(systems: list[str], smoke: bool, budget: float) -> list[dict]:
    """The recipes of the time-to-accuracy race: each system's idiomatic one, plus
    multilayer's default recipe and PyTorch running that same recipe."""
    from multilayer.recipes import get_recipe

    fast = get_recipe("fast")
    fast_config = {
        "batch_size": fast.batch_size,
        "learning_rate": fast.learning_rate,
        "schedule": fast.schedule,
        "epochs": fast.epochs,
        "label_smoothing": fast.label_smoothing,
        "warmup_fraction": fast.warmup_fraction,
        "standardize": fast.standardize,
        "beta_2": fast.beta_2,
        "kernel_initializer": fast.kernel_initializer,
    }
    idiomatic = {"schedule": "constant", "learning_rate": 1e-3}
    plans = [
        ("multilayer", "fast", "multilayer, recipe fast", fast_config),
        (
            "pytorch",
            "tutorial",
            "PyTorch, Adam 1e-3, batch 128",
            {**idiomatic, "batch_size": 128, "epochs": 15},
        ),
        ("pytorch", "fast", "PyTorch, multilayer's fast recipe", fast_config),
        (
            "sklearn",
            "tutorial",
            "scikit-learn, Adam 1e-3, batch 200",
            {**idiomatic, "batch_size": 200, "epochs": 15},
        ),
        (
            "keras",
            "tutorial",
            "Keras, the tutorial's recipe (batch 32)",
            {**idiomatic, "batch_size": 32, "epochs": 20},
        ),
    ]
    out = []
    for system, recipe, label, config in plans:
        if system not in systems:
            continue
        if smoke:
            # one epoch of 1,024 images: small batches, so it takes a few steps
            config = {**config, "epochs": 1, "batch_size": min(config["batch_size"], 128)}
        out.append(
            {"system": system, "recipe": recipe, "label": label, "config": config, "budget": budget}
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--smoke", action="store_true", help="tiny data, one repetition: seconds")
    parser.add_argument("--systems", help=f"comma-separated subset of {','.join(ALL_SYSTEMS)}")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--repeats", type=int, default=3, help="repetitions of speed runs")
    parser.add_argument("--seeds", type=int, default=5, help="seeds of the time-to-accuracy race")
    parser.add_argument("--budget", type=float, default=30.0, help="training seconds per peer seed")
    parser.add_argument("--batch-sizes", default="128,256,512")
    parser.add_argument(
        "--output", type=Path, help="results directory (default benchmarks/results)"
    )
    parser.add_argument("--markdown", type=Path, help="report path (default docs/benchmarks.md)")
    parser.add_argument(
        "--merge", type=Path, help="a previous results JSON whose other sections are kept"
    )
    parser.add_argument(
        "--base",
        help="also compare this checkout with an older revision of multilayer (a git revision "
        "or a directory): the section of `python -m benchmarks.revisions`",
    )
    parser.add_argument("--render", type=Path, help="only rewrite the report from a results JSON")
    args = parser.parse_args(argv)
    if smoke_from_environment():
        # never overwrite the committed results or docs/benchmarks.md from a smoke run
        args.smoke, args.output, args.markdown = True, smoke_directory(), None
    if args.output is None:
        args.output = smoke_directory() if args.smoke else ROOT / "benchmarks" / "results"
    if args.render:
        results = json.loads(args.render.read_text())
        results["summary"] = report.summarise(results)
        md_path = args.markdown or (
            args.output / "smoke.md" if args.smoke else ROOT / "docs" / "benchmarks.md"
        )
        report.write_into(md_path, report.markdown(results, results["summary"]))
        print(f"wrote {md_path}")
        return 0

    systems = (args.systems or ("multilayer" if args.smoke else ",".join(ALL_SYSTEMS))).split(",")
    sections = (args.only or ",".join(SECTIONS)).split(",")
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    repeats, seeds = (1, 1) if args.smoke else (args.repeats, args.seeds)
    sizes = {"n_train": 1024, "n_test": 500, "smoke": True} if args.smoke else {}
    started = time.perf_counter()
    results: dict = {"smoke": args.smoke, "machine": machine_description(), "target": TARGET}
    log = print if not args.smoke else (lambda *a, **k: None)

    if "import" in sections:
        results["import"] = measure_import(3 if args.smoke else 7)
        log(f"import multilayer: {results['import']['median_seconds']:.3f} s")

    if args.base:
        try:
            results["revisions"] = revisions.compare(
                args.base,
                repeats=max(repeats, 1),
                batch_sizes=tuple(batch_sizes),
                smoke=args.smoke,
                log=log,
            )
        except revisions.RevisionError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        log(revisions.table(results["revisions"]["summary"]))

    unavailable: dict[str, str] = {}

    def call(task: dict) -> dict | None:
        if task["system"] in unavailable:
            return None
        result = run_worker({**task, **sizes})
        if "unavailable" in result:
            unavailable[task["system"]] = result["unavailable"]
            print(f"skipping {task['system']}: {result['unavailable']}", file=sys.stderr)
            return None
        return result

    if "epochs" in sections:
        runs: dict[str, list] = {s: [] for s in systems}
        for rep in range(repeats):
            for system in rotated(systems, rep):
                result = call({"task": "epochs", "system": system, "batch_sizes": batch_sizes})
                if result is not None:
                    runs[system].append(result)
                    log(
                        f"epochs rep {rep} {system}: "
                        + ", ".join(
                            f"{r['batch_size']}: {r['epoch_seconds']:.2f}s"
                            for r in result.get("rows", [])
                        )
                        + (f" ERROR {result['error'][-300:]}" if "error" in result else "")
                    )
        results["epochs"] = {s: r for s, r in runs.items() if r}

    if "predict" in sections:
        results["predict"] = {}
        for system in systems:
            result = call(
                {
                    "task": "predict",
                    "system": system,
                    "repeats": 3 if args.smoke else 7,
                    "latency_calls": 20 if args.smoke else 200,
                }
            )
            if result is not None:
                results["predict"][system] = result
                log(f"predict {system}: {result.get('images_per_second', 0):.0f} img/s")

    if "tta" in sections:
        plans = tta_plans(systems, args.smoke, args.budget)
        results["tta"] = {plan["label"]: {**plan, "seeds": []} for plan in plans}
        for seed in range(seeds):
            for plan in rotated(plans, seed):
                result = call(
                    {
                        "task": "tta",
                        "system": plan["system"],
                        "recipe": plan["recipe"],
                        "config": plan["config"],
                        "seed": seed,
                        "target": TARGET,
                        # multilayer's recipe runs to its end: its time is the point
                        "budget_seconds": 1e9 if plan["system"] == "multilayer" else plan["budget"],
                    }
                )
                if result is not None:
                    results["tta"][plan["label"]]["seeds"].append(result)
                    log(
                        f"tta seed {seed} {plan['label']}: {result.get('seconds_to_target')} "
                        f"best {result.get('best_accuracy')}"
                    )
        results["tta"] = {k: v for k, v in results["tta"].items() if v["seeds"]}

    if args.merge:
        previous = json.loads(args.merge.read_text())
        for section in SECTIONS:
            if section not in sections and section in previous:
                results[section] = previous[section]
            elif section in ("epochs", "predict", "tta") and section in previous:
                # systems (or races) not rerun this time keep their earlier results
                results[section] = {**previous[section], **results.get(section, {})}
        if "revisions" not in results and "revisions" in previous:
            results["revisions"] = previous["revisions"]
        unavailable = {**previous.get("unavailable", {}), **unavailable}
        results["wall_seconds_merged"] = previous.get("wall_seconds")
    results["unavailable"] = unavailable
    results["machine"]["load_average_at_end"] = os.getloadavg()[0]
    results["wall_seconds"] = time.perf_counter() - started
    summary = report.summarise(results)
    results["summary"] = summary

    args.output.mkdir(parents=True, exist_ok=True)
    name = "smoke.json" if args.smoke else time.strftime("results-%Y%m%d-%H%M%S.json")
    json_path = args.output / name
    json_path.write_text(json.dumps(results, indent=1))
    if not args.smoke:
        (args.output / "latest.json").write_text(json.dumps(results, indent=1))
    markdown = report.markdown(results, summary)
    md_path = args.markdown or (
        args.output / "smoke.md" if args.smoke else ROOT / "docs" / "benchmarks.md"
    )
    report.write_into(md_path, markdown)
    print(f"wrote {json_path} and {md_path} in {results['wall_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
