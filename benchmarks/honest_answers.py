"""Honest answers, measured: calibration and the reject option of a model trained by ``mlp train``.

    python -m benchmarks.honest_answers [--run RUN_DIR] [--count 1000] [--output DIR]

Without ``--run`` it trains the default recipe (``fast``, seed 0) first, as ``mlp train``
does (which fits the temperature and the detector on its validation split). Then, on the
MNIST *test* set and on generated non-digits (`multilayer.nondigits`, drawn with seeds the
detector was not trained on), it measures:

* the expected calibration error (15 equal-width bins) before and after temperature scaling;
* the share of test digits rejected, and the accuracy per class with and without rejection;
* the share of each non-digit family rejected;
* the same two figures for every candidate score, each with its threshold set on the
  validation split to reject 2% of its digits: the largest softmax probability, the energy
  (``-logsumexp`` of the logits), the largest logit, the Mahalanobis distance to the class
  means in the last hidden layer (shared covariance), a Mahalanobis distance over input
  statistics, and the trained detector. This is the measurement that chose the method.

Writes ``honest_answers.json`` and ``honest_answers.md`` (the tables of
docs/honest-answers.md) to ``--output`` (default ``benchmarks/results``). With
``MULTILAYER_SMOKE=1`` it trains a tiny model for one epoch, uses a few images per family and
writes into a temporary directory (a check that the code runs).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import smoke_directory, smoke_from_environment

ROOT = Path(__file__).resolve().parents[1]
#: Seed of the non-digits measured here (the detector learns from seeds 1000 and up).
SEED = 1


def _train(smoke: bool, workdir: Path):
    """The model of ``mlp train --seed 0`` (a tiny one for a smoke run), with its answers."""
    from multilayer.training import prepare_run

    if not smoke:
        result = prepare_run("fast", seed=0, output=workdir / "fast").run(verbose=0, report=False)
        return result.model
    from multilayer.answer_fitting import fit_answers

    prepared = prepare_run("fast", seed=0, overrides={"hidden": [32], "epochs": 1})
    prepared.model.fit(*prepared.train, batch_size=512, epochs=1, verbose=0)
    prepared.model.answers = fit_answers(
        prepared.model,
        prepared.train,
        prepared.validation,
        positives=500,
        negatives_per_family=20,
        epochs=1,
    )
    return prepared.model


def _stats(images: np.ndarray, pixel_max: float) -> np.ndarray:
    x = images.reshape(len(images), -1).astype(np.float64) / pixel_max
    ink = x > 0.1
    grid = ink.reshape(-1, *images.shape[1:])
    return np.stack(
        [
            x.sum(1),
            ink.mean(1),
            (x > 0.5).mean(1) / np.maximum(ink.mean(1), 1e-3),
            grid.any(2).sum(1),
            grid.any(1).sum(1),
        ],
        axis=1,
    )


class Scores:
    """Every candidate score for a batch of images (higher = less like a digit)."""

    def __init__(self, model, x_train, y_train):
        from multilayer.answers import forward
        from multilayer.inference import model_inputs

        self.model = model
        self.forward, self.model_inputs = forward, model_inputs
        features, _ = self._parts(x_train, 255.0)
        classes = int(y_train.max()) + 1
        self.means = np.stack([features[y_train == c].mean(0) for c in range(classes)])
        centred = features - self.means[y_train]
        cov = centred.T @ centred / len(features)
        ridge = 1e-6 * np.trace(cov) / len(cov)
        self.precision = np.linalg.pinv(cov + ridge * np.eye(len(cov)))
        stats = _stats(x_train, 255.0)
        self.stats_mean = stats.mean(0)
        self.stats_precision = np.linalg.pinv(np.cov(stats.T))

    def _parts(self, images, pixel_max):
        inputs = self.model_inputs(self.model, images, pixel_max)
        parts = [
            self.forward(self.model, inputs[s : s + 2048]) for s in range(0, len(inputs), 2048)
        ]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def __call__(self, images, pixel_max) -> dict[str, np.ndarray]:
        from multilayer.inference import answer_images

        features, logits = self._parts(images, pixel_max)
        top = logits.max(1)
        log_norm = top + np.log(np.exp(logits - top[:, None]).sum(1))
        projected = features @ self.precision
        quadratic = np.sum(projected * features, axis=1)
        cross = projected @ self.means.T
        means_term = np.sum((self.means @ self.precision) * self.means, axis=1)
        mahalanobis = (quadratic[:, None] - 2 * cross + means_term[None]).min(1)
        s = _stats(images, pixel_max) - self.stats_mean
        answered = answer_images(self.model, images, pixel_max)
        return {
            "max softmax probability": -np.exp(top - log_norm),
            "energy": -log_norm,
            "max logit": -top,
            "Mahalanobis (last hidden layer)": mahalanobis,
            "input statistics": np.einsum("ij,jk,ik->i", s, self.stats_precision, s),
            "trained detector": answered.score,
        }


def measure(model, count: int, smoke: bool) -> dict:
    from multilayer.calibration import expected_calibration_error, negative_log_likelihood
    from multilayer.datasets import mnist
    from multilayer.inference import answer_images
    from multilayer.nondigits import FAMILIES, non_digits
    from multilayer.training import split

    (x, y), (x_test, y_test) = mnist.load_data()
    (x_train, y_train), (x_val, _) = split(x, y, 0.1, 0)  # the split mlp train --seed 0 uses
    if smoke:
        x_test, y_test, x_val = x_test[:500], y_test[:500], x_val[:500]
    answers = model.answers
    test = answer_images(model, x_test, 255.0)
    correct = test.probabilities.argmax(1) == y_test
    kept = ~test.rejected
    per_class = [
        {
            "class": c,
            "accuracy": float(correct[y_test == c].mean()),
            "rejected": float(test.rejected[y_test == c].mean()),
            "accuracy_accepted": float(correct[(y_test == c) & kept].mean()),
        }
        for c in range(10)
    ]
    start = time.perf_counter()
    families = {f: non_digits(f, count, seed=SEED) for f in FAMILIES}
    generation = time.perf_counter() - start
    rejected = {f: float(answer_images(model, v, 1.0).rejected.mean()) for f, v in families.items()}

    subset = slice(0, 2000 if smoke else 20000)
    scores = Scores(model, x_train[subset], y_train[subset])
    on_val = scores(x_val, 255.0)
    on_test = scores(x_test, 255.0)
    on_families = {f: scores(v, 1.0) for f, v in families.items()}
    methods = {}
    for name, validation_scores in on_val.items():
        threshold = float(np.quantile(validation_scores, 0.98, method="higher"))
        methods[name] = {
            "test_rejected": float(np.mean(on_test[name] > threshold)),
            "families": {f: float(np.mean(on_families[f][name] > threshold)) for f in FAMILIES},
        }
    return {
        "temperature": answers.temperature,
        "test_accuracy": float(correct.mean()),
        "test_ece_before": expected_calibration_error(answer_images_plain(model, x_test), y_test),
        "test_ece_after": expected_calibration_error(test.probabilities, y_test),
        "test_nll_before": negative_log_likelihood(test.logits, y_test),
        "test_nll_after": negative_log_likelihood(test.logits, y_test, answers.temperature),
        "validation_rejected": answers.reject.validation_rejected,
        "test_rejected": float(test.rejected.mean()),
        "test_accuracy_accepted": float(correct[kept].mean()),
        "per_class": per_class,
        "families_rejected": rejected,
        "per_family": count,
        "generation_seconds": generation,
        "methods": methods,
    }


def answer_images_plain(model, images):
    """The test probabilities at temperature 1 (before calibration)."""
    from multilayer.calibration import softmax_t
    from multilayer.inference import answer_images

    return softmax_t(answer_images(model, images, 255.0).logits)


def markdown(results: dict) -> str:
    from multilayer.nondigits import FAMILIES

    pct = lambda v: f"{100 * v:.1f}%"  # noqa: E731
    lines = [
        "| | before | after |",
        "|---|---|---|",
        f"| expected calibration error (test, 15 bins) | {pct(results['test_ece_before'])} "
        f"| {pct(results['test_ece_after'])} |",
        f"| negative log-likelihood (test) | {results['test_nll_before']:.4f} "
        f"| {results['test_nll_after']:.4f} |",
        "",
        f"Temperature {results['temperature']:.3f}; test accuracy {pct(results['test_accuracy'])}.",
        "",
        "| score (threshold: 2% of validation digits) | test digits rejected | "
        + " | ".join(FAMILIES)
        + " |",
        "|---" * (2 + len(FAMILIES)) + "|",
    ]
    for name, row in results["methods"].items():
        cells = " | ".join(pct(row["families"][f]) for f in FAMILIES)
        lines.append(f"| {name} | {pct(row['test_rejected'])} | {cells} |")
    lines += [
        "",
        "| the stored detector (its own threshold) | test digits rejected | "
        + " | ".join(FAMILIES)
        + " |",
        "|---" * (2 + len(FAMILIES)) + "|",
        f"| {pct(results['validation_rejected'])} of validation digits | "
        f"{pct(results['test_rejected'])} | "
        + " | ".join(pct(results["families_rejected"][f]) for f in FAMILIES)
        + " |",
        "",
        f"Accuracy on the accepted test digits {pct(results['test_accuracy_accepted'])}.",
        "",
        "| class | accuracy | rejected | accuracy of the accepted |",
        "|---|---|---|---|",
    ]
    for row in results["per_class"]:
        lines.append(
            f"| {row['class']} | {pct(row['accuracy'])} | {pct(row['rejected'])} "
            f"| {pct(row['accuracy_accepted'])} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a run directory of mlp train (default: train)")
    parser.add_argument("--count", type=int, default=1000, help="non-digits per family")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    smoke = smoke_from_environment()
    output = args.output or (smoke_directory() if smoke else ROOT / "benchmarks" / "results")
    output.mkdir(parents=True, exist_ok=True)
    if args.run is not None:
        from multilayer.runs import RunDir

        model = RunDir(args.run).load_model(compile=False)
        run = str(args.run)
    else:  # trained in a temporary directory: the results folder holds results only
        with tempfile.TemporaryDirectory() as workdir:
            model = _train(smoke, Path(workdir))
        run = "mlp train --seed 0 (default recipe), trained by this benchmark"
    if model.answers is None or model.answers.reject is None:
        raise SystemExit(f"{run}: the model has no stored detector (train it with mlp train)")
    results = measure(model, 10 if smoke else args.count, smoke)
    results["run"] = run
    (output / "honest_answers.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (output / "honest_answers.md").write_text(table)
    print(table)
    print(f"written to {output}")


if __name__ == "__main__":
    main()
