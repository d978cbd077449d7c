"""multilayer's tabular default against scikit-learn on tables that ship inside packages.

``python -m benchmarks.tabular`` trains, on each dataset and each of 5 seeds (a held-out
test split of 20%, stratified for classification, drawn by the seed):

* ``multilayer``: the default of ``mlp train --data ... --target ...`` (recipe ``tabular``),
  through the library (``multilayer.tabular``);
* ``hgb``: scikit-learn's ``HistGradientBoostingClassifier``/``Regressor`` with its defaults
  (categorical columns as categories, missing values native);
* ``sklearn-mlp``: ``MLPClassifier``/``MLPRegressor`` with their defaults behind the usual
  pipeline (median/most-frequent imputation, standard scaling, one-hot encoding).

Every system is scored by the same scikit-learn functions on its test predictions:
accuracy (and log loss, ROC AUC for binary) for classification, R^2 (and RMSE) for
regression. Training time is the wall time of ``fit`` (preprocessing included); peak RSS is
the high-water mark of the worker process, which runs one (system, dataset) pair over all
seeds and loads pandas and scikit-learn for the data in every case.

Datasets come from scikit-learn (always) and, when installed, ``palmerpenguins``,
``vega_datasets`` and ``ISLP`` (its CSV files only: ``pip install --no-deps ISLP``); a
missing package skips its datasets with a message. Nothing is downloaded.

``--smoke`` (or ``MULTILAYER_SMOKE=1``): two small datasets, one seed, a few epochs, into a
temporary directory: checks the code, not the figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.machine import machine_description, smoke_directory, smoke_from_environment

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- tabular:begin -->", "<!-- tabular:end -->"
SYSTEMS = ("multilayer", "hgb", "sklearn-mlp")
LABELS = {
    "multilayer": "multilayer (tabular)",
    "hgb": "HistGradientBoosting",
    "sklearn-mlp": "sklearn MLP",
}
TEST_SIZE = 0.2


# -- datasets ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dataset:
    name: str
    source: str  # the package it ships in
    load: Callable[[], Any]  # () -> (pandas DataFrame, target column)
    note: str = ""


def _sklearn(name: str) -> Callable[[], Any]:
    def load():
        from sklearn import datasets

        frame = getattr(datasets, f"load_{name}")(as_frame=True).frame
        return frame, "target"

    return load


def _penguins():
    import palmerpenguins

    frame = palmerpenguins.load_penguins()
    return frame.dropna(subset=["body_mass_g"]).reset_index(drop=True), "body_mass_g"


def _cars():
    from vega_datasets import data

    frame = data.cars().dropna(subset=["Miles_per_Gallon"]).drop(columns=["Name"])
    frame["Year"] = frame["Year"].dt.year
    return frame.reset_index(drop=True), "Miles_per_Gallon"


def _seattle():
    from vega_datasets import data

    frame = data.seattle_weather()
    frame["month"] = frame.pop("date").dt.month.astype(str)
    return frame, "weather"


def _islp(name: str, target: str, drop: tuple[str, ...] = ()) -> Callable[[], Any]:
    def load():
        import pandas as pd

        spec = importlib.util.find_spec("ISLP")
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError("ISLP")
        folder = Path(next(iter(spec.submodule_search_locations))) / "data"
        frame = pd.read_csv(folder / f"{name}.csv").drop(columns=list(drop))
        return frame, target

    return load


DATASETS = {
    d.name: d
    for d in (
        Dataset("iris", "scikit-learn", _sklearn("iris")),
        Dataset("wine", "scikit-learn", _sklearn("wine")),
        Dataset("breast_cancer", "scikit-learn", _sklearn("breast_cancer")),
        Dataset("digits", "scikit-learn", _sklearn("digits")),
        Dataset("diabetes", "scikit-learn", _sklearn("diabetes")),
        Dataset("penguins", "palmerpenguins", _penguins, "body mass; text + missing values"),
        Dataset("cars", "vega_datasets", _cars, "miles per gallon; text + missing values"),
        Dataset("seattle_weather", "vega_datasets", _seattle, "weather, 5 classes"),
        Dataset("oj", "ISLP", _islp("OJ", "Purchase"), "orange juice brand"),
        Dataset("default", "ISLP", _islp("Default", "default"), "credit default, 3% positive"),
        Dataset("wage", "ISLP", _islp("Wage", "wage", ("logwage",)), "wage; 7 text columns"),
        Dataset(
            "bikeshare",
            "ISLP",
            _islp("Bikeshare", "bikers", ("casual", "registered")),
            "hourly riders",
        ),
    )
}
SMOKE_DATASETS = ("iris", "diabetes")
SOURCE_MODULES = {
    "scikit-learn": "sklearn",
    "palmerpenguins": "palmerpenguins",
    "vega_datasets": "vega_datasets",
    "ISLP": "ISLP",
}


def available(names: list[str]) -> tuple[list[str], dict[str, str]]:
    """The datasets whose package is installed, and why the others are skipped."""
    kept, skipped = [], {}
    for name in names:
        source = DATASETS[name].source
        if importlib.util.find_spec(SOURCE_MODULES[source]) is None:
            skipped[name] = f"{source} is not installed"
        else:
            kept.append(name)
    return kept, skipped


# -- one (system, dataset) over all seeds: the worker ----------------------------------------
def _task_of(frame, target: str) -> str:
    from multilayer.data import tables

    table = tables.from_frame(frame[[target]])
    return table.target(target).task


def _split(frame, target: str, task: str, seed: int):
    from sklearn.model_selection import train_test_split

    stratify = frame[target] if task != "regression" else None
    return train_test_split(frame, test_size=TEST_SIZE, random_state=seed, stratify=stratify)


def _score(task: str, y_true, predicted, proba, classes) -> dict:
    import numpy as np
    from sklearn import metrics

    if task == "regression":
        return {
            "r2": float(metrics.r2_score(y_true, predicted)),
            "rmse": float(math.sqrt(metrics.mean_squared_error(y_true, predicted))),
        }
    scores = {"accuracy": float(metrics.accuracy_score(y_true, predicted))}
    proba = np.clip(np.asarray(proba, dtype=np.float64), 1e-15, 1.0)
    proba = proba / proba.sum(axis=1, keepdims=True)
    scores["log_loss"] = float(metrics.log_loss(y_true, proba, labels=list(classes)))
    if task == "binary":
        scores["roc_auc"] = float(
            metrics.roc_auc_score(np.asarray(y_true) == classes[1], proba[:, 1])
        )
    return scores


def _fit_multilayer(train, target: str, seed: int, smoke: bool, folder: Path):
    """The default of ``mlp train --data ... --target ...``: recipe ``tabular`` through the
    library. The time counted is preparation (reading the frame, the FeatureSpace's
    statistics, building the model) plus ``fit``; the run's test pass and file writing are
    not (the test split given is a stand-in: the benchmark scores the predictions itself)."""
    from multilayer.tabular import training

    overrides = {"epochs": 2} if smoke else {}
    start = time.perf_counter()
    prepared = training.prepare_table_run(
        train,
        target,
        test_data=train.head(2),
        seed=seed,
        output=folder / f"run-{seed}",
        overrides=overrides,
    )
    prepare_seconds = time.perf_counter() - start
    result = prepared.run(verbose=0)
    return result, prepare_seconds + result.metrics["train_seconds"]


def _predict_multilayer(result, test, target: str) -> tuple[Any, Any, list]:
    """(predicted labels or values, class probabilities or None, classes) per the contract
    of multilayer.tabular: binary -> P(classes[1]), multiclass -> softmax, regression ->
    values."""
    import numpy as np

    from multilayer.data import tables

    spec = result.run.table_spec()
    table = tables.from_frame(test.drop(columns=[target]))
    outputs = np.asarray(
        result.model.predict({name: table.column(name) for name in spec.columns}, verbose=0)
    )
    if spec.task == "regression":
        return outputs.reshape(-1), None, []
    classes = list(spec.classes)
    proba = (
        outputs
        if spec.task == "multiclass"
        else np.column_stack([1 - outputs[:, 0], outputs[:, 0]])
    )
    return np.asarray(classes, dtype=object)[proba.argmax(axis=1)], proba, classes


def _sklearn_frame(frame, target: str):
    """Features for scikit-learn: text columns as pandas categories (for HGB's native
    categorical support), numbers as floats; missing values stay missing."""
    x = frame.drop(columns=[target]).copy()
    for name in x.columns:
        if x[name].dtype == object or str(x[name].dtype) in ("string", "str", "category"):
            x[name] = x[name].astype("category")
        else:
            x[name] = x[name].astype("float64")
    return x


def _fit_sklearn(system: str, train, target: str, task: str, seed: int, smoke: bool):
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    classify = task != "regression"
    x = _sklearn_frame(train, target)
    if system == "hgb":
        kind = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
        model = kind(categorical_features="from_dtype", random_state=seed)
        if smoke:
            model.set_params(max_iter=10)
    else:
        kind = MLPClassifier if classify else MLPRegressor
        prepare = ColumnTransformer(
            [
                (
                    "numbers",
                    make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                    make_column_selector(dtype_include="number"),
                ),
                (
                    "text",
                    make_pipeline(
                        SimpleImputer(strategy="most_frequent"),
                        OneHotEncoder(handle_unknown="ignore"),
                    ),
                    make_column_selector(dtype_include="category"),
                ),
            ]
        )
        model = make_pipeline(prepare, kind(random_state=seed, max_iter=20 if smoke else 200))
    model.fit(x, train[target])
    return model


def worker(task: dict) -> dict:
    """Train and score one system on one dataset for every seed; the process's peak RSS."""
    import warnings

    import numpy as np

    warnings.filterwarnings("ignore")  # MLPClassifier's ConvergenceWarning at max_iter
    frame, target = DATASETS[task["dataset"]].load()
    kind = _task_of(frame, target)
    runs = []
    for seed in task["seeds"]:
        train, test = _split(frame, target, kind, seed)
        y_true = test[target].to_numpy()
        start = time.perf_counter()
        if task["system"] == "multilayer":
            with tempfile.TemporaryDirectory() as folder:
                fitted, seconds = _fit_multilayer(train, target, seed, task["smoke"], Path(folder))
                predicted, proba, classes = _predict_multilayer(fitted, test, target)
        else:
            model = _fit_sklearn(task["system"], train, target, kind, seed, task["smoke"])
            seconds = time.perf_counter() - start
            x_test = _sklearn_frame(test, target)
            predicted = model.predict(x_test)
            classes = list(model.classes_) if kind != "regression" else []
            proba = model.predict_proba(x_test) if kind != "regression" else None
        if kind != "regression":
            predicted = np.asarray(predicted).astype(y_true.dtype)
        scores = _score(kind, y_true, predicted, proba, classes)
        runs.append({"seed": seed, "seconds": seconds, **scores})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "task": kind,
        "rows": len(frame),
        "columns": frame.shape[1] - 1,
        "runs": runs,
        "peak_rss_mb": peak,
    }


def run_worker(task: dict, timeout: float) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.tabular", "--worker", json.dumps(task)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout)[-1500:]
        return {"error": f"worker failed (exit {done.returncode}): {tail}"}
    return json.loads(lines[-1][len("RESULT ") :])


# -- the report -------------------------------------------------------------------------------
PRIMARY = {"regression": "r2", "binary": "accuracy", "multiclass": "accuracy"}


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(results: dict) -> list[dict]:
    rows = []
    for name, by_system in results["datasets"].items():
        row: dict = {"dataset": name, "systems": {}}
        for system, result in by_system.items():
            if "error" in result:
                row["systems"][system] = {"error": result["error"]}
                continue
            row.update(task=result["task"], rows=result["rows"], columns=result["columns"])
            metric = PRIMARY[result["task"]]
            row["metric"] = metric
            mean, std = _mean_std([r[metric] for r in result["runs"]])
            row["systems"][system] = {
                "mean": mean,
                "std": std,
                "seconds": statistics.fmean(r["seconds"] for r in result["runs"]),
                "peak_rss_mb": result["peak_rss_mb"],
            }
        rows.append(row)
    return rows


def _cell(entry: dict | None, best: float | None) -> str:
    if entry is None:
        return "-"
    if "error" in entry:
        return "failed"
    text = f"{entry['mean']:.3f} ± {entry['std']:.3f}"
    return f"**{text}**" if best is not None and entry["mean"] >= best - 1e-12 else text


def markdown(results: dict) -> str:
    rows = summarise(results)
    systems = results["systems"]
    machine = results["machine"]
    lines = [
        f"Run of {results['seconds']:.0f} s on {machine['cpu']}, {machine['logical_cpus']} "
        f"logical CPUs; load average at start / end: {machine['load_average_at_start']:.1f} / "
        f"{results['load_average_at_end']:.1f}; seeds {results['seeds']}; "
        f"test split {TEST_SIZE:.0%}.",
        "",
        "Metric on the held-out split, mean ± std over the seeds (accuracy for classification, "
        "R² for regression; higher is better, the best in bold):",
        "",
        "| dataset | task | rows × columns | metric | "
        + " | ".join(LABELS[s] for s in systems)
        + " |",
        "|---|---|---:|---|" + "---:|" * len(systems),
    ]
    for row in rows:
        means = [e["mean"] for e in row["systems"].values() if "mean" in e]
        best = max(means) if means else None
        cells = [_cell(row["systems"].get(s), best) for s in systems]
        shape = f"{row.get('rows', '?')} × {row.get('columns', '?')}"
        lines.append(
            f"| {row['dataset']} | {row.get('task', '?')} | {shape} | {row.get('metric', '?')} | "
            + " | ".join(cells)
            + " |"
        )
    lines += [
        "",
        "Training time (s, mean over seeds) and peak RSS of the worker process (MB):",
        "",
        "| dataset | " + " | ".join(f"{LABELS[s]} s | MB" for s in systems) + " |",
        "|---|" + "---:|---:|" * len(systems),
    ]
    for row in rows:
        cells = []
        for s in systems:
            entry = row["systems"].get(s, {})
            if "seconds" in entry:
                cells.append(f"{entry['seconds']:.2f} | {entry['peak_rss_mb']:.0f}")
            else:
                cells.append("- | -")
        lines.append(f"| {row['dataset']} | " + " | ".join(cells) + " |")
    lines += ["", *_goals(rows, systems)]
    if results["skipped"]:
        lines += ["", "Skipped: " + "; ".join(f"{k} ({v})" for k, v in results["skipped"].items())]
    return "\n".join(lines) + "\n"


def _goals(rows: list[dict], systems: list[str]) -> list[str]:
    """The issue's goals, counted honestly over the datasets every system finished."""
    if not {"multilayer", "hgb", "sklearn-mlp"} <= set(systems):
        return []
    done = [
        r
        for r in rows
        if all("mean" in r["systems"].get(s, {}) for s in ("multilayer", "hgb", "sklearn-mlp"))
    ]
    if not done:
        return []
    ml = {r["dataset"]: r["systems"]["multilayer"] for r in done}
    beats_mlp = [
        r["dataset"] for r in done if ml[r["dataset"]]["mean"] > r["systems"]["sklearn-mlp"]["mean"]
    ]
    ties_hgb = [
        r["dataset"] for r in done if ml[r["dataset"]]["mean"] >= r["systems"]["hgb"]["mean"]
    ]
    ratios = [ml[r["dataset"]]["seconds"] / r["systems"]["hgb"]["seconds"] for r in done]
    return [
        "| goal | result |",
        "|---|---|",
        f"| better than sklearn's MLP on every dataset | {len(beats_mlp)} of {len(done)}"
        + (
            f" (not: {', '.join(sorted(set(ml) - set(beats_mlp)))})"
            if len(beats_mlp) < len(done)
            else ""
        )
        + " |",
        f"| at least as good as gradient boosting on half | {len(ties_hgb)} of {len(done)}"
        + (f" ({', '.join(ties_hgb)})" if ties_hgb else "")
        + " |",
        f"| training time within 10× of gradient boosting's | median ratio "
        f"{statistics.median(ratios):.1f}×, worst {max(ratios):.1f}× |",
    ]


def write_into(path: Path, body: str) -> None:
    """Replace the text between the tabular markers of ``path``, leaving the rest alone."""
    block = f"{BEGIN}\n{body}{END}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


# -- the command ------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tabular", description=__doc__)
    parser.add_argument("--datasets", help="comma-separated (default: all installed)")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--output", type=Path, help="directory for the JSON and markdown")
    parser.add_argument("--timeout", type=float, default=1800, help="per worker, seconds")
    parser.add_argument(
        "--render", type=Path, help="write the report of this results JSON into the docs, no run"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(worker(json.loads(args.worker))), flush=True)
        return 0
    if args.render:
        body = markdown(json.loads(args.render.read_text()))
        write_into(DOC, body)
        print(body)
        return 0
    smoke = args.smoke or smoke_from_environment()
    names = (
        args.datasets.split(",") if args.datasets else list(SMOKE_DATASETS if smoke else DATASETS)
    )
    unknown = [n for n in names if n not in DATASETS]
    systems = args.systems.split(",")
    unknown += [s for s in systems if s not in SYSTEMS]
    if unknown:
        parser.error(f"unknown: {unknown}; datasets {list(DATASETS)}, systems {list(SYSTEMS)}")
    names, skipped = available(names)
    seeds = list(range(1 if smoke else args.seeds))
    output = args.output or (smoke_directory() if smoke else RESULTS)
    output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict = {
        "smoke": smoke,
        "machine": machine_description(),
        "systems": systems,
        "seeds": seeds,
        "skipped": skipped,
        "datasets": {},
    }
    for reason in skipped.items():
        print("skipped {}: {}".format(*reason), file=sys.stderr)
    for name in names:
        results["datasets"][name] = {}
        for system in systems:
            task = {"dataset": name, "system": system, "seeds": seeds, "smoke": smoke}
            result = run_worker(task, args.timeout)
            results["datasets"][name][system] = result
            shown = result.get("error", "")[:300] or ", ".join(
                f"{k}={statistics.fmean(r[k] for r in result['runs']):.3f}"
                for k in result["runs"][0]
                if k != "seed"
            )
            print(f"{name:16} {system:12} {shown}", file=sys.stderr, flush=True)
    results["seconds"] = time.perf_counter() - started
    results["load_average_at_end"] = os.getloadavg()[0]
    stem = "tabular-smoke" if smoke else "tabular-latest"
    (output / f"{stem}.json").write_text(json.dumps(results, indent=1) + "\n")
    body = markdown(results)
    (output / f"{stem}.md").write_text(body)
    if not smoke and args.output is None:
        write_into(DOC, body)
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
