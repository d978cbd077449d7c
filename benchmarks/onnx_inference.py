"""Inference with the exported ONNX model: ONNX Runtime beside multilayer's predict and PyTorch.

Usage (from the repository root)::

    MULTILAYER_DATA=/path/to/datasets python -m benchmarks.onnx_inference   # ~2 min on 2 cores
    python -m benchmarks.onnx_inference --smoke --output /tmp/bench        # seconds
    MULTILAYER_SMOKE=1 python -m benchmarks.onnx_inference   # the smoke run, into a temp dir

All three run the same model with the same weights: the default recipe's (``fast``:
784-512-768-10, its standardising Rescaling first), built with seed 0 (inference speed does
not depend on the values of the weights). multilayer runs ``model.predict`` on the uint8
images; ONNX Runtime runs the graph ``model.export`` wrote, on the images cast to float32
(the cast is timed); PyTorch runs ``nn.Sequential`` with the same weights copied in, under
``inference_mode``, on the images cast to float32 (timed too). Every library uses its
default threads. The outputs of the other two are checked against multilayer's on the test
images (largest absolute difference of probabilities, reported).

Measured: images per second over the 10,000 test images in one call (median of ``--runs``
calls) and the latency of a one-image call (median of ``--latency-calls``). Every system runs
in a fresh worker process per repetition, the systems alternating (the order rotates), and
the report gives medians over repetitions with ratios to multilayer. Results:
``benchmarks/results/onnx.json`` and the section between the ``onnx`` markers of
``docs/benchmarks.md`` (a smoke run writes to a temporary directory only).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import machine_description, smoke_directory, smoke_from_environment

ROOT = Path(__file__).resolve().parents[1]
SYSTEMS = ("multilayer", "onnxruntime", "pytorch")
LABELS = {"multilayer": "multilayer", "onnxruntime": "ONNX Runtime", "pytorch": "PyTorch"}
BEGIN, END = "<!-- onnx:begin -->", "<!-- onnx:end -->"


# -- the worker: one system, one process ------------------------------------------------------
def _model():
    from multilayer.recipes import build_model, get_recipe

    model = build_model(get_recipe("fast"), (28, 28), 10, steps_per_epoch=1, seed=0)
    model.get_weights()  # allocates the weights (seed 0: the same in every worker)
    return model


def _predictor(system: str, model, workdir: Path):
    """``(predict(uint8 images) -> probabilities, version)`` for ``system``."""
    if system == "multilayer":
        import multilayer

        return model.predict, multilayer.__version__
    if system == "onnxruntime":
        import onnxruntime as ort

        path = model.export(workdir / "model.onnx")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

        def run_onnx(x):
            return session.run(["probabilities"], {"input": x.astype(np.float32)})[0]

        return run_onnx, ort.__version__
    if system == "pytorch":
        import torch

        dense = [layer for layer in model.layers if type(layer).__name__ == "Dense"]
        rescaling = next(layer for layer in model.layers if type(layer).__name__ == "Rescaling")
        modules: list = []
        for i, layer in enumerate(dense):
            linear = torch.nn.Linear(*layer.weights["kernel"].shape)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(layer.weights["kernel"].T.copy()))
                linear.bias.copy_(torch.from_numpy(layer.weights["bias"]))
            modules += [linear, torch.nn.ReLU() if i < len(dense) - 1 else torch.nn.Softmax(-1)]
        net = torch.nn.Sequential(*modules).eval()
        scale, offset = float(rescaling.scale), float(rescaling.offset)

        def run_torch(x):
            with torch.inference_mode():
                t = torch.from_numpy(x.reshape(len(x), -1).astype(np.float32))
                return net(t * scale + offset).numpy()

        return run_torch, torch.__version__
    raise ValueError(f"unknown system {system!r}: one of {SYSTEMS}")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def worker(task: dict) -> dict:
    from benchmarks.data import load_mnist

    (_, _), (x_test, _) = load_mnist(1, task["n_test"])
    model = _model()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            predict, version = _predictor(task["system"], model, Path(tmp))
        except ImportError as error:
            return {"unavailable": str(error)}
        outputs = predict(x_test)
        diff = float(np.abs(outputs - model.predict(x_test)).max())
        full = [_timed(lambda: predict(x_test)) for _ in range(task["runs"])]
        single = []
        for i in range(task["latency_calls"]):
            image = x_test[i % len(x_test) : i % len(x_test) + 1]
            single.append(_timed(lambda image=image: predict(image)))
    seconds = statistics.median(full)
    return {
        "version": version,
        "images": len(x_test),
        "images_per_second": len(x_test) / seconds,
        "latency_ms": statistics.median(single) * 1e3,
        "max_abs_diff_vs_multilayer": diff,
    }


def run_worker(task: dict) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.onnx_inference", "--worker", json.dumps(task)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=1800,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    if completed.returncode != 0 or not lines:
        tail = (completed.stderr or completed.stdout)[-2000:]
        return {"error": f"worker failed (exit {completed.returncode}): {tail}"}
    return json.loads(lines[-1][len("RESULT ") :])


# -- the report -----------------------------------------------------------------------------------
def summarise(runs: dict[str, list[dict]]) -> dict[str, dict]:
    summary = {}
    for system, results in runs.items():
        good = [r for r in results if "images_per_second" in r]
        if not good:
            first = results[0] if results else {}
            reason = first.get("unavailable") or first.get("error", "no result")
            summary[system] = {"missing": reason.strip().splitlines()[-1][:200]}
            continue
        summary[system] = {
            "version": good[0]["version"],
            "images_per_second": statistics.median(r["images_per_second"] for r in good),
            "latency_ms": statistics.median(r["latency_ms"] for r in good),
            "max_abs_diff_vs_multilayer": max(r["max_abs_diff_vs_multilayer"] for r in good),
            "repetitions": len(good),
        }
    return summary


def markdown(results: dict) -> str:
    summary, machine = results["summary"], results["machine"]
    base = summary.get("multilayer", {})
    lines = [
        f"Run of {results['seconds']:.0f} s: {results['repetitions']} repetitions, "
        f"{results['n_test']} test images, {results['runs']} full-set calls and "
        f"{results['latency_calls']} one-image calls per repetition.",
        "",
        f"- Machine: {machine['cpu']}, {machine['logical_cpus']} logical CPUs; "
        f"Python {machine['python']}, NumPy {machine['numpy']}",
        f"- Load average (1 min) at start / end: {machine['load_average_at_start']:.1f} / "
        f"{results['load_average_at_end']:.1f}",
        "- Versions: "
        + "; ".join(f"{LABELS[s]} {v['version']}" for s, v in summary.items() if "version" in v),
        "",
        "| system | images/s | ratio to multilayer | single-image latency ms | latency ratio "
        "| max abs diff of probabilities vs multilayer |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for system, row in summary.items():
        if "version" not in row:
            lines.append(f"| {LABELS[system]} | not run: {row.get('missing')} | | | | |")
            continue
        throughput = row["images_per_second"] / base["images_per_second"] if base else float("nan")
        latency = row["latency_ms"] / base["latency_ms"] if base else float("nan")
        lines.append(
            f"| {LABELS[system]} | {row['images_per_second']:.0f} | {throughput:.2f}x "
            f"| {row['latency_ms']:.3f} | {latency:.2f}x "
            f"| {row['max_abs_diff_vs_multilayer']:.2g} |"
        )
    return "\n".join(lines) + "\n"


def write_into(path: Path, body: str) -> None:
    """Replace the text between the ``onnx`` markers of ``path``, leaving the rest alone."""
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{path} has no {BEGIN} ... {END} markers")
    head, rest = text.split(BEGIN, 1)
    path.write_text(head + f"{BEGIN}\n{body}{END}" + rest.split(END, 1)[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.onnx_inference")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--smoke", action="store_true", help="seconds-long sizes")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--runs", type=int, default=7, help="full-set calls per repetition")
    parser.add_argument("--latency-calls", type=int, default=500)
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--output", type=Path, help="directory of the JSON and markdown")
    args = parser.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(worker(json.loads(args.worker))))
        return 0
    smoke = args.smoke or smoke_from_environment()
    if smoke:
        args.repetitions, args.runs, args.latency_calls = 1, 2, 20
        args.output = args.output or smoke_directory()
    n_test = 500 if smoke else 10_000
    systems = [s for s in args.systems.split(",") if s]
    unknown = sorted(set(systems) - set(SYSTEMS))
    if unknown:
        parser.error(f"unknown systems {unknown}: choose from {list(SYSTEMS)}")
    start = time.perf_counter()
    machine = machine_description()
    runs: dict[str, list[dict]] = {s: [] for s in systems}
    for repetition in range(args.repetitions):
        shift = repetition % len(systems)
        for system in systems[shift:] + systems[:shift]:
            task = {
                "system": system,
                "n_test": n_test,
                "runs": args.runs,
                "latency_calls": args.latency_calls,
            }
            result = run_worker(task)
            print(f"{system}: {result}", file=sys.stderr)
            runs[system].append(result)
    results = {
        "smoke": smoke,
        "machine": machine,
        "repetitions": args.repetitions,
        "runs": args.runs,
        "latency_calls": args.latency_calls,
        "n_test": n_test,
        "raw": runs,
        "summary": summarise(runs),
    }
    results["seconds"] = time.perf_counter() - start
    results["load_average_at_end"] = os.getloadavg()[0]
    body = markdown(results)
    print(body)
    out = args.output or ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / ("onnx-smoke.json" if smoke else "onnx.json")).write_text(json.dumps(results, indent=1))
    (out / ("onnx-smoke.md" if smoke else "onnx.md")).write_text(body)
    if not smoke and args.output is None:
        write_into(ROOT / "docs" / "benchmarks.md", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
