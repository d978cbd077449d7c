"""Issue 11 items 3-5 and the table part of 4: `mlp train --data TABLE --target COL` for each
task, the task's metrics (checked against scikit-learn), the run directory with its TableSpec,
real accuracy on breast_cancer, and clear errors for bad tables."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from multilayer.cli.main import main
from multilayer.runs import RunDir
from multilayer.tabular import TableSpec
from multilayer.tabular.training import encode_target, load_table, split_rows, task_metrics

FAST = ["--epochs", "12", "--seed", "0", "--quiet"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_line(result) -> str:
    code, out, err = result
    assert code != 0, out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err + out, err
    return lines[0]


def table(n: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = rng.normal(size=n)
    b[rng.random(n) < 0.1] = np.nan  # missing values in an input column
    city = rng.choice(["paris", "rome", "oslo"], n)
    signal = 2 * a - np.nan_to_num(b) + (city == "rome")
    return pd.DataFrame(
        {
            "a": a,
            "b": b,
            "city": city,
            "price": 100 + 10 * signal + rng.normal(scale=0.5, size=n),
            "label": np.where(signal > 0, "yes", "no"),
            "grade": np.digitize(signal, [-1.0, 1.0]),  # 0, 1, 2
            "tag_a": (a > 0).astype(int),
            "tag_b": (np.nan_to_num(b) > 0).astype(int),
        }
    )


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("tables") / "train.csv"
    table().to_csv(path, index=False)
    return path


def features(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    data = load_table(frame)
    return {name: data.column(name) for name in ("a", "b", "city")}


@pytest.mark.parametrize(
    "targets, task, keys, classes",
    [
        (["price"], "regression", ["test_rmse", "test_mae", "test_r2"], []),
        (
            ["label"],
            "binary",
            ["test_accuracy", "test_log_loss", "test_roc_auc", "test_f1"],
            ["no", "yes"],
        ),
        (
            ["grade"],
            "multiclass",
            ["test_accuracy", "test_log_loss", "test_roc_auc", "test_f1"],
            [0, 1, 2],
        ),
        (
            ["tag_a", "tag_b"],
            "multilabel",
            ["test_accuracy", "test_log_loss", "test_roc_auc", "test_f1"],
            ["tag_a", "tag_b"],
        ),
    ],
)
def test_cli_trains_each_task_and_writes_the_run(
    capsys, tmp_path, csv, targets, task, keys, classes
):
    out = tmp_path / "run"
    others = [c for c in ("price", "label", "grade", "tag_a", "tag_b") if c not in targets]
    data = tmp_path / "data.csv"
    pd.read_csv(csv).drop(columns=others).to_csv(data, index=False)
    argv = ["train", "--data", data, *sum((["--target", t] for t in targets), []), "-o", out]
    code, stdout, stderr = run(capsys, *argv, *FAST)
    assert code == 0, stderr
    assert stdout.startswith("test ") and str(out) in stdout
    run_dir = RunDir(out)
    spec = run_dir.table_spec()
    assert spec == TableSpec(
        targets,
        task,
        classes,
        ["a", "b", "city"],
        {"a": "numeric", "b": "numeric", "city": "categorical"},
    )
    metrics = run_dir.metrics
    assert metrics["task"] == task and metrics["test_samples"] == 48
    assert all(isinstance(metrics[k], float) for k in keys)
    assert json.loads(run_dir.config_path.read_text())["recipe"]["name"] == "tabular"
    # the saved model takes raw columns and gives final units; its metrics are metrics.json's
    model = run_dir.load_model()
    frame = pd.read_csv(data)
    outputs = model.predict(features(frame), verbose=0)
    assert outputs.shape == (len(frame), spec.n_outputs)
    if task == "regression":
        assert abs(outputs.mean() - frame["price"].mean()) < 5  # in the target's units
    else:
        assert np.all((outputs >= 0) & (outputs <= 1))
    if task == "multiclass":
        np.testing.assert_allclose(outputs.sum(axis=1), 1.0, rtol=1e-5)


def test_cli_metrics_are_those_of_the_saved_model_on_a_separate_test_file(capsys, tmp_path):
    train, test = tmp_path / "train.parquet", tmp_path / "test.parquet"
    table(seed=1).drop(columns=["label", "grade", "tag_a", "tag_b"]).to_parquet(train)
    held = table(n=80, seed=2).drop(columns=["label", "grade", "tag_a", "tag_b"])
    held.to_parquet(test)
    out = tmp_path / "run"
    code, _, err = run(
        capsys, "train", "--data", train, "--target", "price", "--test-data", test, "-o", out, *FAST
    )
    assert code == 0, err
    run_dir = RunDir(out)
    spec = run_dir.table_spec()
    y = encode_target(load_table(held), spec)
    outputs = run_dir.load_model().predict(features(held), verbose=0)
    expected = task_metrics(spec, y, outputs)
    metrics = run_dir.metrics
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, rel=1e-6)
    assert metrics["test_samples"] == 80 and metrics["test_r2"] > 0.8


def test_breast_cancer_through_the_cli_is_accurate(capsys, tmp_path):
    from sklearn.datasets import load_breast_cancer

    path = tmp_path / "breast_cancer.csv"
    load_breast_cancer(as_frame=True).frame.to_csv(path, index=False)
    out = tmp_path / "run"
    code, _, err = run(
        capsys, "train", "--data", path, "--target", "target", "--seed", "0", "--quiet", "-o", out
    )
    assert code == 0, err
    metrics = RunDir(out).metrics
    assert metrics["test_accuracy"] >= 0.95 and metrics["test_roc_auc"] >= 0.98


# -- metrics against scikit-learn ---------------------------------------------------------------
def test_task_metrics_match_scikit_learn():
    from sklearn import metrics as sk

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.clip(y * 0.3 + rng.random(200) * 0.7, 0, 1)
    p[:10] = 0.5  # ties
    got = task_metrics(TableSpec(["y"], "binary", [0, 1], ["x"], {"x": "numeric"}), y, p[:, None])
    # 0.5 is the negative class, as in BinaryAccuracy (Keras: y_pred > threshold)
    assert got["test_accuracy"] == pytest.approx(sk.accuracy_score(y, p > 0.5))
    assert got["test_log_loss"] == pytest.approx(sk.log_loss(y, p))
    assert got["test_roc_auc"] == pytest.approx(sk.roc_auc_score(y, p))
    assert got["test_f1"] == pytest.approx(sk.f1_score(y, p > 0.5))

    y3 = rng.integers(0, 3, 300)
    logits = rng.normal(size=(300, 3)) + np.eye(3)[y3]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    spec3 = TableSpec(["y"], "multiclass", ["a", "b", "c"], ["x"], {"x": "numeric"})
    got = task_metrics(spec3, y3, probs)
    assert got["test_accuracy"] == pytest.approx(sk.accuracy_score(y3, probs.argmax(1)))
    assert got["test_log_loss"] == pytest.approx(sk.log_loss(y3, probs))
    assert got["test_roc_auc"] == pytest.approx(sk.roc_auc_score(y3, probs, multi_class="ovr"))
    assert got["test_f1"] == pytest.approx(sk.f1_score(y3, probs.argmax(1), average="macro"))

    ym = rng.integers(0, 2, (100, 2))
    pm = np.clip(ym * 0.4 + rng.random((100, 2)) * 0.6, 0.01, 0.99)
    specm = TableSpec(["p", "q"], "multilabel", ["p", "q"], ["x"], {"x": "numeric"})
    got = task_metrics(specm, ym, pm)
    assert got["test_roc_auc"] == pytest.approx(sk.roc_auc_score(ym, pm, average="macro"))
    assert got["test_f1"] == pytest.approx(sk.f1_score(ym, pm > 0.5, average="macro"))

    yr = rng.normal(size=50)
    pr = yr + rng.normal(scale=0.3, size=50)
    got = task_metrics(TableSpec(["y"], "regression", [], ["x"], {"x": "numeric"}), yr, pr[:, None])
    assert got["test_rmse"] == pytest.approx(np.sqrt(sk.mean_squared_error(yr, pr)))
    assert got["test_mae"] == pytest.approx(sk.mean_absolute_error(yr, pr))
    assert got["test_r2"] == pytest.approx(sk.r2_score(yr, pr))


def test_split_rows_is_stratified_and_seeded():
    labels = np.array([0] * 90 + [1] * 10)
    kept, held = split_rows(100, 0.2, 3, labels)
    assert sorted(np.concatenate([kept, held]).tolist()) == list(range(100))
    assert np.sum(labels[held] == 1) == 2 and np.sum(labels[held] == 0) == 18
    assert np.array_equal(split_rows(100, 0.2, 3, labels)[1], held)


# -- bad input ------------------------------------------------------------------------------------
def test_cli_errors_for_bad_tables(capsys, tmp_path, csv):
    def fails(frame: pd.DataFrame | None, *argv) -> str:
        path = tmp_path / "bad.csv"
        if frame is not None:
            frame.to_csv(path, index=False)
        return error_line(
            run(capsys, "train", "--data", path, *argv, "-o", tmp_path / "never", *FAST)
        )

    good = pd.read_csv(csv)
    bad = tmp_path / "bad.csv"
    assert fails(good, "--target", "prise") == (
        f"error: target column 'prise' is not in {bad}; the columns are {list(good.columns)}; "
        "did you mean 'price'?"
    )
    assert fails(good.assign(label="yes"), "--target", "label") == (
        f"error: target column 'label' of {bad} has one class ('yes') in all 240 rows: "
        "there is nothing to learn"
    )
    assert fails(good.assign(empty=np.nan), "--target", "price") == (
        f"error: {bad}: the columns ['empty'] have no values in any of the 240 rows; remove them"
    )
    assert fails(good[["price"]], "--target", "price") == (
        f"error: {bad} has no columns besides the target ['price']: nothing to learn from"
    )
    assert fails(good, "--target", "label", "--task", "regression") == (
        f"error: target column 'label' of {bad} is text; regression needs numbers"
    )
    assert fails(good, "--target", "price", "--task", "ranking").startswith(
        "error: Invalid value for --task: must be one of regression, binary, multiclass, multilabel"
    )
    assert (
        fails(good)
        == f"error: Invalid value for --target: {bad} is a table: name the column to predict with --target"
    )
    assert fails(good, "--target", "price", "--optimizer", "sgd") == (
        "error: Invalid value: --optimizer do not apply to table runs (they use AdamW, no checkpoints and no adversarial training)"
    )
    assert not (tmp_path / "never").exists()
    other = tmp_path / "other.csv"
    good.drop(columns=["city"]).assign(town="x").to_csv(other, index=False)
    assert fails(good, "--target", "price", "--test-data", other) == (
        f"error: {other} does not have the columns training used: missing ['city'], unexpected ['town']"
    )
    unseen = tmp_path / "unseen.csv"
    good.assign(label="maybe").to_csv(unseen, index=False)
    assert fails(good, "--target", "label", "--test-data", unseen) == (
        f"error: target column 'label' of {unseen} has classes training did not see: ['maybe'] "
        "(training classes: ['no', 'yes'])"
    )
    assert error_line(run(capsys, "train", "--target", "price", "--epochs", "1")) == (
        "error: Invalid value: --target only apply to a table given with --data (.csv, .tsv, .parquet)"
    )


def test_columns_named_like_layers_do_not_clash(tmp_path):
    from multilayer.tabular.training import train_table

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {name: rng.normal(size=60) for name in ("dense", "concatenate", "robust_scaling", "input")}
    )
    frame["y"] = 2 * frame["dense"]
    result = train_table(frame, "y", seed=0, output=tmp_path / "run", overrides={"epochs": 2})
    names = [layer.name for layer in result.model.layers]
    assert len(names) == len(set(names))
    assert set(result.model.input_names) == {"dense", "concatenate", "robust_scaling", "input"}


def test_a_table_model_predicts_a_dataframe_with_text_and_missing_values(tmp_path):
    from multilayer.tabular.training import train_table

    frame = table(n=120).drop(columns=["label", "grade", "tag_a", "tag_b"])
    result = train_table(frame, "price", seed=0, output=tmp_path / "run", overrides={"epochs": 2})
    rows = frame.drop(columns=["price"]).head(10)
    rows.loc[0, "city"] = None
    rows.loc[1, "city"] = "madrid"
    expected = result.model.predict(features(rows), verbose=0)
    assert np.array_equal(result.model.predict(rows, verbose=0), expected)
    assert np.all(np.isfinite(expected))
