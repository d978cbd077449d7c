"""One measurement of one revision of multilayer, in a fresh process.

Run by `benchmarks.revisions` as ``python benchmarks/revision_worker.py '<json task>'`` with
``PYTHONPATH`` naming that revision's ``src/`` and one BLAS thread. It imports nothing from
the ``benchmarks`` package, only the public API both revisions share (``recipes``,
``datasets.mnist``, ``fit``, ``predict``), so the same script measures old and new code.
The last line printed is ``RESULT <json>``.

Tasks (the ``task`` key):

* ``train``: for each batch size, a fresh model of the Keras tutorial (784-512-768-10, Adam
  1e-3), a warm-up ``fit`` of a few steps, then one timed ``fit`` of ``steps`` steps; wall and
  CPU seconds scaled to one epoch of the 60,000 training images; peak RSS of the process;
* ``predict``: ``predict`` over the test images (median of ``repeats``) and one image at a
  time (median of ``latency_calls``), wall and CPU seconds.
"""

from __future__ import annotations

import json
import math
import resource
import statistics
import sys
import time

CLASSES = 10
EPOCH_IMAGES = 60_000


def _clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _model(batch_size: int, steps: int, input_shape: tuple[int, ...]):
    from multilayer.recipes import build_model, get_recipe

    recipe = get_recipe("tutorial").with_overrides(
        batch_size=batch_size, learning_rate=1e-3, schedule="constant", epochs=1
    )
    return build_model(recipe, input_shape, CLASSES, steps, seed=0)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def task_train(task: dict, data) -> dict:
    (x, y), _ = data
    rows = []
    for batch_size in task["batch_sizes"]:
        n = min(len(x), task["steps"] * batch_size)
        steps = math.ceil(n / batch_size)
        model = _model(batch_size, steps, x.shape[1:])
        warm = min(len(x), task["warmup_steps"] * batch_size)
        model.fit(x[:warm], y[:warm], batch_size=batch_size, epochs=1, verbose=0)
        wall0, cpu0 = _clocks()
        model.fit(x[:n], y[:n], batch_size=batch_size, epochs=1, verbose=0)
        wall1, cpu1 = _clocks()
        per_epoch = math.ceil(EPOCH_IMAGES / batch_size) / steps
        rows.append(
            {
                "batch_size": batch_size,
                "steps": steps,
                "epoch_wall_seconds": (wall1 - wall0) * per_epoch,
                "epoch_cpu_seconds": (cpu1 - cpu0) * per_epoch,
            }
        )
    return {"rows": rows, "peak_rss_mb": _peak_rss_mb()}


def task_predict(task: dict, data) -> dict:
    _, (x_test, _) = data
    model = _model(128, 1, x_test.shape[1:])
    model.predict(x_test[:64], verbose=0)  # warm-up
    walls, cpus = [], []
    for _ in range(task["repeats"]):
        wall0, cpu0 = _clocks()
        model.predict(x_test, verbose=0)
        wall1, cpu1 = _clocks()
        walls.append(wall1 - wall0)
        cpus.append(cpu1 - cpu0)
    single_wall, single_cpu = [], []
    for i in range(task["latency_calls"]):
        image = x_test[i % len(x_test) : i % len(x_test) + 1]
        wall0, cpu0 = _clocks()
        model.predict(image, verbose=0)
        wall1, cpu1 = _clocks()
        single_wall.append(wall1 - wall0)
        single_cpu.append(cpu1 - cpu0)
    return {
        "images": len(x_test),
        "predict_wall_seconds": statistics.median(walls),
        "predict_cpu_seconds": statistics.median(cpus),
        "latency_wall_ms": statistics.median(single_wall) * 1e3,
        "latency_cpu_ms": statistics.median(single_cpu) * 1e3,
    }


TASKS = {"train": task_train, "predict": task_predict}


def main(argv: list[str]) -> int:
    task = json.loads(argv[0])
    import multilayer
    from multilayer.datasets import mnist

    (x, y), (x_test, y_test) = mnist.load_data()
    n_train, n_test = task.get("n_train"), task.get("n_test")
    data = (x[:n_train], y[:n_train]), (x_test[:n_test], y_test[:n_test])
    result = TASKS[task["task"]](task, data)
    result["multilayer_file"] = multilayer.__file__
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
