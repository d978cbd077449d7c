"""Which saliency method to show: deletion curves on MNIST test digits.

    python -m benchmarks.saliency [--count 300] [--output DIR]

Trains the test suite's small model (784-128-10, one epoch, seed 0: about 95% accuracy), then
for ``--count`` MNIST test digits and each method of `multilayer.explain` (and a random order
as the floor) ranks the pixels by their saliency for the top class, most positive first, and
sets the first k of them to 0 (k = 0, 5, ..., 100). A method that finds the pixels the answer
rests on makes the top logit fall fastest. Measured per method:

* ``logit_auc``: the mean over k of the top logit, relative to the unchanged image (lower is
  better; 1.0 means deleting changed nothing on average);
* ``flipped_at_20``: the share of digits whose answer changed after deleting 20 pixels ranked
  by the *versus runner-up* map (higher is better);
* ``ms_per_image``: the time of the two maps (top and versus), for scale only.

Writes ``saliency.json`` to ``--output`` (default ``benchmarks/results``). With
``MULTILAYER_SMOKE=1``: 10 digits, a tiny model, a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import machine_description, smoke_directory, smoke_from_environment

ROOT = Path(__file__).resolve().parents[1]
STEPS = list(range(0, 101, 5))


def _model(smoke: bool):
    from multilayer.datasets import mnist
    from multilayer.recipes import Recipe, build_model

    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    if smoke:
        x_train, y_train = x_train[:2000], y_train[:2000]
    hidden = (16,) if smoke else (128,)
    recipe = Recipe(name="saliency", hidden=hidden, epochs=1, batch_size=128, learning_rate=1e-3)
    model = build_model(recipe, (28, 28), 10, steps_per_epoch=len(x_train) // 128, seed=0)
    model.fit(x_train, y_train, batch_size=128, epochs=1, verbose=0)
    return model, x_test, y_test


def _deleted(image: np.ndarray, order: np.ndarray) -> np.ndarray:
    """The image with its first k ranked pixels set to 0, for every k in STEPS."""
    batch = np.repeat(image.reshape(1, -1), len(STEPS), axis=0)
    for row, k in enumerate(STEPS):
        batch[row, order[:k]] = 0.0
    return batch.reshape(len(STEPS), *image.shape)


def measure(model, images: np.ndarray, seed: int = 0) -> dict:
    from multilayer.explain import METHODS, explain, logits

    rng = np.random.default_rng(seed)
    results = {}
    for method in (*METHODS, "random"):
        curves, flips, seconds = [], [], 0.0
        for image in images:
            z = logits(model, image[None])[0]
            top = int(np.argmax(z))
            if method == "random":
                top_map = versus_map = rng.normal(size=image.shape)
            else:
                start = time.perf_counter()
                result = explain(model, image, method)  # type: ignore[arg-type]
                seconds += time.perf_counter() - start
                top_map, versus_map = result.top, result.versus
            order = np.argsort(-top_map.reshape(-1), kind="stable")
            curve = logits(model, _deleted(image, order))[:, top]
            curves.append(curve / max(abs(curve[0]), 1e-9))
            order = np.argsort(-versus_map.reshape(-1), kind="stable")
            after = logits(model, _deleted(image, order)[STEPS.index(20)][None])[0]
            flips.append(int(np.argmax(after)) != top)
        mean_curve = np.mean(curves, axis=0)
        results[method] = {
            "logit_auc": round(float(mean_curve.mean()), 4),
            "flipped_at_20": round(float(np.mean(flips)), 4),
            "ms_per_image": None if method == "random" else round(1000 * seconds / len(images), 2),
            "curve": [round(float(v), 4) for v in mean_curve],
        }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    smoke = smoke_from_environment()
    output = smoke_directory() if smoke else args.output
    count = 10 if smoke else args.count
    model, x_test, _ = _model(smoke)
    images = x_test[:count].astype(np.float64) / 255.0
    results = {
        "count": count,
        "steps": STEPS,
        "methods": measure(model, images),
        "machine": machine_description(),
    }
    output.mkdir(parents=True, exist_ok=True)
    (output / "saliency.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'method':<18} {'logit AUC':>10} {'flipped@20':>11} {'ms/image':>9}")
    for method, row in results["methods"].items():
        ms = "" if row["ms_per_image"] is None else f"{row['ms_per_image']:.2f}"
        print(f"{method:<18} {row['logit_auc']:>10.3f} {row['flipped_at_20']:>11.1%} {ms:>9}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
