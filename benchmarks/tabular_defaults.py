"""A quick check of the ``tabular`` recipe's defaults against scikit-learn on its bundled
tables (breast_cancer, wine, diabetes, digits): held-out metric and training time, a few
seeds, one process. Not part of the benchmark suite (the 5-seed table is benchmarks' job);
used to choose the defaults in ``multilayer.recipes``.

    OPENBLAS_NUM_THREADS=1 python -m benchmarks.tabular_defaults [--seeds 3] [--variant NAME ...]

Variants are recipe changes (``VARIANTS``); each is trained on the same splits as the peers:
``HistGradientBoosting*`` and ``StandardScaler + MLP*`` (scikit-learn's MLP at its defaults,
``max_iter=500``). Classification: accuracy (and ROC AUC); regression: RMSE (and R^2).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from dataclasses import replace

import numpy as np

from multilayer import recipes
from multilayer.tabular.training import prepare_table_run, split_rows

DATASETS = ("breast_cancer", "wine", "diabetes", "digits")
VARIANTS: dict[str, dict] = {
    "default": {},
    "bs64": {"batch_size": 64},
    "bs32": {"batch_size": 32},
    "ep200": {"epochs": 200},
    "nols": {"label_smoothing": 0.0},
    "val10": {"validation_split": 0.1},
    "nodrop": {"dropout": 0.0},
    "lr1e-3": {"learning_rate": 1e-3},
    "refit": {"extra": {"refit": True}},
    "noclip": {"extra": {"clip": None}},
    "h100": {"hidden": (100,)},
    "h256x2": {"hidden": (256, 256)},
    "gelu": {"activation": "gelu"},
    "h512": {"hidden": (512,)},
    "noval": {"validation_split": 0.0},
    "sklike": {
        "validation_split": 0.0,
        "hidden": (100,),
        "dropout": 0.0,
        "label_smoothing": 0.0,
        "learning_rate": 1e-3,
        "schedule": "constant",
        "batch_size": 200,
        "epochs": 300,
        "extra": {"numeric": "normalized", "weight_decay": 0.0},
    },
    "sklike-robust": {
        "validation_split": 0.0,
        "hidden": (100,),
        "dropout": 0.0,
        "label_smoothing": 0.0,
        "learning_rate": 1e-3,
        "schedule": "constant",
        "batch_size": 200,
        "epochs": 300,
        "extra": {"weight_decay": 0.0},
    },
    "sklike-norm-deep": {"validation_split": 0.0, "extra": {"numeric": "normalized"}},
    "norm": {"extra": {"numeric": "normalized"}},
    "steps8": {"extra": {"min_steps_per_epoch": 8}},
    "steps8-norm": {"extra": {"min_steps_per_epoch": 8, "numeric": "normalized"}},
    "steps8-wd1e-3": {"extra": {"min_steps_per_epoch": 8, "weight_decay": 1e-3}},
    "steps4": {"extra": {"min_steps_per_epoch": 4}},
    "steps4-lr1e-3": {"learning_rate": 1e-3, "extra": {"min_steps_per_epoch": 4}},
    "steps4-h512x2": {"hidden": (512, 512), "extra": {"min_steps_per_epoch": 4}},
    "acc": {"extra": {"monitor": "val_accuracy"}},
    "sf1.35": {"extra": {"scale_factor": 1.349}},
    "sf2": {"extra": {"scale_factor": 2.0}},
    "sf1.35-clip5": {"extra": {"scale_factor": 1.349, "clip": 5.0}},
    "noval-nols-norm": {
        "validation_split": 0.0,
        "label_smoothing": 0.0,
        "extra": {"numeric": "normalized"},
    },
    "noval-nols": {"validation_split": 0.0, "label_smoothing": 0.0},
    "noval-nols-e200": {"validation_split": 0.0, "label_smoothing": 0.0, "epochs": 200},
    "noval-ep50": {"validation_split": 0.0, "epochs": 50},
    "noval-lr1e-3": {"validation_split": 0.0, "learning_rate": 1e-3},
    "refit-lr1e-3": {"learning_rate": 1e-3, "extra": {"refit": True}},
}


def load(name: str):
    from sklearn import datasets

    loader = getattr(datasets, f"load_{name}")
    frame = loader(as_frame=True).frame
    task = "regression" if name == "diabetes" else None
    return frame, "target", task


def peers(train, test, target: str, regression: bool, seed: int) -> dict[str, tuple[float, float]]:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = train.drop(columns=[target]).to_numpy(), train[target].to_numpy()
    xt, yt = test.drop(columns=[target]).to_numpy(), test[target].to_numpy()
    models = {
        "hgb": (HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier)(
            random_state=seed
        ),
        "sk_mlp": make_pipeline(
            StandardScaler(),
            (MLPRegressor if regression else MLPClassifier)(max_iter=500, random_state=seed),
        ),
    }
    out = {}
    for name, model in models.items():
        start = time.perf_counter()
        model.fit(x, y)
        seconds = time.perf_counter() - start
        pred = model.predict(xt)
        score = (
            float(np.sqrt(np.mean((pred - yt) ** 2))) if regression else float(np.mean(pred == yt))
        )
        out[name] = (score, seconds)
    return out


def ours(train, test, target, task, recipe: str, seed: int) -> tuple[float, float, int]:
    directory = tempfile.mkdtemp()
    try:
        prepared = prepare_table_run(
            train, target, test_data=test, task=task, recipe=recipe, seed=seed,
            output=f"{directory}/run",
        )  # fmt: skip
        start = time.perf_counter()
        result = prepared.run()
        seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    metrics = result.metrics
    score = metrics["test_rmse"] if task == "regression" else metrics["test_accuracy"]
    return score, seconds, metrics["best_epoch"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--variant", nargs="*", default=list(VARIANTS))
    parser.add_argument("--dataset", nargs="*", default=list(DATASETS))
    parser.add_argument("--no-peers", action="store_true", help="only the variants")
    args = parser.parse_args()
    base = recipes.RECIPES["tabular"]
    for name in args.variant:
        changes = dict(VARIANTS[name])
        extra = {**base.extra, **changes.pop("extra", {})}
        recipes.RECIPES[f"tabular-{name}"] = replace(
            base, name=f"tabular-{name}", extra=extra, **changes
        )
    for dataset in args.dataset:
        frame, target, task = load(dataset)
        regression = task == "regression"
        rows: dict[str, list[tuple[float, float]]] = {}
        for seed in range(args.seeds):
            labels = None if regression else frame[target].to_numpy()
            kept, held = split_rows(len(frame), 0.2, seed, labels)
            train, test = frame.iloc[kept], frame.iloc[held]
            if not args.no_peers:
                for peer, value in peers(train, test, target, regression, seed).items():
                    rows.setdefault(peer, []).append(value)
            for name in args.variant:
                score, seconds, _ = ours(train, test, target, task, f"tabular-{name}", seed)
                rows.setdefault(name, []).append((score, seconds))
        metric = "rmse" if regression else "accuracy"
        for name, values in rows.items():
            scores = np.array([v[0] for v in values])
            seconds = np.array([v[1] for v in values])
            print(
                f"{dataset:14s} {name:14s} {metric} {scores.mean():.4f} +- {scores.std():.4f}"
                f"  time {seconds.mean():6.2f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
