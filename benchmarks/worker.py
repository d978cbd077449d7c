"""One measurement in a fresh process: ``python -m benchmarks.worker '<json task>'``.

Each measurement runs in its own process so that systems never share thread pools, caches
of compiled graphs or memory high-water marks, and so that peak RSS is the measurement's
own. The last line printed is ``RESULT <json>``.

Tasks (the ``task`` key of the JSON argument):

* ``epochs``: seconds per training epoch at each of ``batch_sizes`` (after a short warm-up
  on a subset, which also compiles Keras' graph); multilayer also times the same epoch's
  matrix products alone (the sgemm roofline of this process, same shapes, same moment);
* ``tta``: train a recipe epoch by epoch, recording training wall time (evaluation paused)
  and test accuracy until ``target`` is reached or the budget is spent; also peak RSS;
* ``predict``: throughput over the test set and single-image latency.
"""

from __future__ import annotations

import json
import math
import resource
import statistics
import sys
import time

import numpy as np

from benchmarks import systems
from benchmarks.data import load_mnist


def _sgemm_epoch_seconds(batch_size: int, n_train: int, repeats: int = 20) -> dict:
    """Time exactly the matrix products of one training step at ``batch_size`` (with
    ``out=``, as the engine calls them), and scale to one epoch."""
    rng = np.random.default_rng(0)
    sizes = [784, *systems.HIDDEN, systems.CLASSES]
    f32 = np.float32
    acts = [rng.random((batch_size, s), dtype=f32) for s in sizes]
    kernels = [rng.random((a, b), dtype=f32) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    grads = [np.empty_like(k) for k in kernels]

    def step():
        for i, k in enumerate(kernels):
            np.matmul(acts[i], k, out=acts[i + 1])
        for i in range(len(kernels) - 1, -1, -1):
            np.matmul(acts[i].T, acts[i + 1], out=grads[i])
            if i > 0:
                np.matmul(acts[i + 1], kernels[i].T, out=acts[i])

    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    step_seconds = statistics.median(times)
    flops = systems.flops_per_sample() * batch_size
    return {
        "sgemm_gflops": flops / step_seconds / 1e9,
        "sgemm_epoch_seconds": step_seconds * math.ceil(n_train / batch_size),
    }


def _square_sgemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    out = np.empty_like(a)
    np.matmul(a, a, out=out)
    best = min(_timed(lambda: np.matmul(a, a, out=out)) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def task_epochs(system, task, data) -> dict:
    (x, y), (x_test, y_test) = data
    results = []
    for batch_size in task["batch_sizes"]:
        config = systems.TrainConfig(batch_size=batch_size)
        warmup = min(len(x), max(4 * batch_size, 2048))
        system.load(x[:warmup], y[:warmup], x_test, y_test)
        system.prepare(config, seed=0)
        system.train_epoch()
        system.load(x, y, x_test, y_test)
        seconds = _timed(system.train_epoch)
        row = {"batch_size": batch_size, "epoch_seconds": seconds, "n_train": len(x)}
        if task["system"].startswith("multilayer"):
            row.update(_sgemm_epoch_seconds(batch_size, len(x), 3 if task.get("smoke") else 20))
            row["flops_epoch"] = systems.flops_per_sample() * len(x)
            row["achieved_gflops"] = row["flops_epoch"] / seconds / 1e9
            row["utilisation"] = row["sgemm_epoch_seconds"] / seconds
        results.append(row)
    out = {"rows": results}
    if task["system"].startswith("multilayer"):
        out["square_sgemm_gflops"] = _square_sgemm_gflops(256 if task.get("smoke") else 2048)
    return out


def task_tta(system, task, data) -> dict:
    (x, y), (x_test, y_test) = data
    config = systems.TrainConfig(**task["config"])
    system.load(x, y, x_test, y_test)
    system.prepare(config, seed=task["seed"], recipe_name=task.get("recipe", "tutorial"))
    elapsed, curve, reached = 0.0, [], None
    for epoch in range(1, config.epochs + 1):
        elapsed += _timed(system.train_epoch)
        accuracy = system.accuracy(x_test, y_test)
        curve.append({"epoch": epoch, "train_seconds": elapsed, "test_accuracy": accuracy})
        if reached is None and accuracy >= task["target"]:
            reached = elapsed
            if task.get("stop_at_target", True):
                break
        if elapsed > task["budget_seconds"]:
            break
    return {
        "seconds_to_target": reached,
        "best_accuracy": max(point["test_accuracy"] for point in curve),
        "final_accuracy": curve[-1]["test_accuracy"],
        "curve": curve,
        "peak_rss_mb": _peak_rss_mb(),
    }


def task_predict(system, task, data) -> dict:
    (x, y), (x_test, y_test) = data
    system.load(x[:1024], y[:1024], x_test, y_test)
    system.prepare(systems.TrainConfig(), seed=0)
    system.train_epoch()  # a fitted model (scikit-learn insists); the speed is the same
    system.predict(x_test[:64])  # warm-up (and Keras' tracing)
    full = [_timed(lambda: system.predict(x_test)) for _ in range(task["repeats"])]
    single = []
    for i in range(task["latency_calls"]):
        image = x_test[i % len(x_test) : i % len(x_test) + 1]
        single.append(_timed(lambda image=image: system.predict(image)))
    seconds = statistics.median(full)
    return {
        "images": len(x_test),
        "predict_seconds": seconds,
        "images_per_second": len(x_test) / seconds,
        "latency_ms": statistics.median(single) * 1e3,
    }


TASKS = {"epochs": task_epochs, "tta": task_tta, "predict": task_predict}


def main(argv: list[str]) -> int:
    task = json.loads(argv[0])
    try:
        system = systems.make(task["system"])
    except systems.SystemUnavailable as error:
        print("RESULT " + json.dumps({"unavailable": str(error)}))
        return 0
    data = load_mnist(task.get("n_train"), task.get("n_test"))
    result = TASKS[task["task"]](system, task, data)
    result["version"] = system.version()
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
