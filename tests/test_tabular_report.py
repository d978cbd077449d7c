"""The report of a run trained on a table: figures adapted to the task (multilayer.report.tabular)."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("pyarrow")

from multilayer.report import write_report  # noqa: E402
from multilayer.runs import RunDir  # noqa: E402
from multilayer.tabular.metrics import task_metrics  # noqa: E402
from test_tabular_predict import StandIn, run_cli, spec_for, table_run, write_csv  # noqa: E402, F401

PNG = b"\x89PNG\r\n\x1a\n"


def make_run(tmp_path, spec):
    run = RunDir(tmp_path / "run").create()
    run.write_config({"table": spec.to_config()})
    run.write_metrics({"test": {"samples": 40}})
    return run


def rows(n=40, seed=0, labels=("no", "yes")):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    color = rng.choice(["red", "blue"], size=n)
    y = [
        labels[int(v + (c == "red") + rng.normal(scale=0.7) > 0.5)]
        for v, c in zip(x, color, strict=True)
    ]
    return [(float(a), c, t) for a, c, t in zip(x, color, y, strict=True)]


def assert_figures(run, names):
    page = run.report_path.read_text()
    for name in names:
        assert (run.report_dir / name).read_bytes().startswith(PNG), name
        assert f'<div class="files">{name}</div>' in page, name
    return page


@pytest.mark.parametrize(
    ("task", "classes", "target", "k", "figures"),
    [
        ("regression", [], ("y",), 1, ["predicted_vs_true.png", "residuals.png"]),
        ("binary", ["no", "yes"], ("y",), 1, ["roc_curve.png", "calibration.png"]),
        (
            "multiclass",
            ["no", "yes", "maybe"],
            ("y",),
            3,
            ["confusion_matrix.png", "precision_recall.png"],
        ),
    ],
)
def test_report_figures_follow_the_task(tmp_path, task, classes, target, k, figures):
    spec = spec_for(task, classes, target)
    data = (
        rows(labels=("no", "yes"))
        if task != "regression"
        else [(a, c, a * 2) for a, c, _ in rows()]
    )
    path = write_csv(tmp_path / "test.csv", data)
    run = make_run(tmp_path, spec)
    write_report(run.path, model=StandIn(task, k), test_table=path)
    page = assert_figures(run, figures)
    assert "<h2>Test metrics</h2>" in page
    assert "first_layer_weights.png" not in page and "misclassified.png" not in page
    assert "dataset: a table (target y)" in page


def test_multilabel_report_draws_one_roc_curve_per_label(tmp_path):
    spec = spec_for("multilabel", ["a", "b"], ("a", "b"))
    data = [(float(v), c, int(v > 0), int(c == "red")) for v, c, _ in rows()]
    path = write_csv(tmp_path / "test.csv", data, header=("x", "color", "a", "b"))
    run = make_run(tmp_path, spec)
    write_report(run.path, model=StandIn("multilabel", 2), test_table=path)
    page = assert_figures(run, ["roc_curve.png"])
    assert "of the first 2 of 2 labels" in page


def test_report_metrics_section_equals_task_metrics(tmp_path):
    spec = spec_for("binary", ["no", "yes"])
    path = write_csv(tmp_path / "test.csv", rows())
    run = make_run(tmp_path, spec)
    model = StandIn("binary")
    write_report(run.path, model=model, test_table=path)
    data = rows()
    y = np.array([t == "yes" for _, _, t in data], dtype=int)
    p = 1 / (1 + np.exp(-np.array([a + (c == "red") for a, c, _ in data])))
    expected = task_metrics("binary", y, p, ["no", "yes"])
    page = run.report_path.read_text()
    assert f"<tr><th>roc_auc</th><td>{expected['roc_auc']:.6g}</td></tr>" in page
    assert f"<tr><th>log_loss</th><td>{expected['log_loss']:.6g}</td></tr>" in page


def test_one_class_test_rows_and_no_test_table_leave_notes(tmp_path):
    spec = spec_for("binary", ["no", "yes"])
    path = write_csv(tmp_path / "test.csv", [(1.0, "red", "yes"), (2.0, "blue", "yes")])
    run = make_run(tmp_path, spec)
    write_report(run.path, model=StandIn("binary"), test_table=path)
    page = run.report_path.read_text()
    assert "The test rows are all of class &#x27;yes&#x27;: no ROC curve." in page
    assert not (run.report_dir / "roc_curve.png").exists()
    write_report(run.path, model=StandIn("binary"))
    assert "No test table was given: no test-set figures." in run.report_path.read_text()


def test_cli_report_of_a_table_run(table_run, capsys):  # noqa: F811 (the imported fixture)
    run, data = table_run
    code, out, err = run_cli(capsys, "report", run.path, "--test-data", data)
    assert (code, err) == (0, "")
    assert out.strip() == f"report written to {run.report_path}"
    assert_figures(run, ["predicted_vs_true.png", "residuals.png"])


def test_trained_table_run_metrics_report_and_predictions_agree(tmp_path, capsys):
    """train_table (h11-tabular's train path) with a separate test file: metrics.json holds
    spec_metrics of the test rows, which `mlp evaluate` reproduces from the saved model; the
    report has the binary figures; `mlp predict` writes one row per test row."""
    from multilayer.tabular.predict import evaluate_table
    from multilayer.tabular.training import train_table

    train = write_csv(tmp_path / "train.csv", rows(160, seed=1))
    test = write_csv(tmp_path / "test.csv", rows(40, seed=2))
    result = train_table(
        train, "y", test_data=test, seed=0, output=tmp_path / "run", overrides={"epochs": 2}
    )
    run = result.run
    evaluated = evaluate_table(run.path, test)
    metrics = run.metrics
    assert metrics["test_samples"] == evaluated["samples"] == 40
    for key in ("accuracy", "log_loss", "roc_auc", "f1"):
        assert metrics[f"test_{key}"] == pytest.approx(evaluated[key], rel=1e-9), key
    page = assert_figures(run, ["roc_curve.png", "calibration.png"])
    assert "test ROC AUC" in page

    code, out, err = run_cli(capsys, "evaluate", run.path, test, "--json")
    assert (code, err) == (0, "")
    import json

    assert json.loads(out)["roc_auc"] == evaluated["roc_auc"]
    predictions = tmp_path / "predictions.csv"
    code, out, err = run_cli(capsys, "predict", run.path, test, "-o", predictions)
    assert (code, err) == (0, "")
    import pyarrow.csv as pacsv

    back = pacsv.read_csv(predictions).to_pydict()
    assert list(back) == ["prediction", "proba_no", "proba_yes"]
    assert len(back["prediction"]) == 40
    assert set(back["prediction"]) <= {"no", "yes"}
    np.testing.assert_allclose(np.add(back["proba_no"], back["proba_yes"]), 1.0, rtol=0, atol=1e-15)


def test_cli_train_predict_evaluate_end_to_end(tmp_path, capsys):
    """mlp train --data/--target (binary) writes the report; mlp evaluate prints the
    metrics.json values; mlp predict writes one labelled row per input row; --no-report."""
    import json

    import pyarrow.csv as pacsv

    train = write_csv(tmp_path / "train.csv", rows(150, seed=3, labels=("low", "mid")))
    test = write_csv(tmp_path / "test.csv", rows(30, seed=4, labels=("low", "mid")))
    out = tmp_path / "run"
    fast = ["--epochs", "2", "--seed", "0", "--quiet"]
    code, stdout, err = run_cli(
        capsys, "train", "--data", train, "--target", "y", "--test-data", test, "-o", out, *fast
    )
    assert code == 0, err
    run = RunDir(out)
    assert f"report: {run.report_path}" in stdout
    assert_figures(run, ["roc_curve.png", "calibration.png"])

    code, stdout, err = run_cli(capsys, "evaluate", out, test, "--json")
    assert code == 0, err
    printed = json.loads(stdout)
    for key in ("accuracy", "log_loss", "roc_auc", "f1"):
        assert printed[key] == pytest.approx(run.metrics[f"test_{key}"], rel=1e-9), key

    code, _, err = run_cli(capsys, "predict", out, test, "-o", tmp_path / "p.csv")
    assert code == 0, err
    back = pacsv.read_csv(tmp_path / "p.csv").to_pydict()
    assert run.table_spec().classes == ["low", "mid"]
    assert list(back) == ["prediction", "proba_low", "proba_mid"]
    assert set(back["prediction"]) <= {"low", "mid"}
    assert len(back["prediction"]) == 30

    other = tmp_path / "run2"
    code, stdout, err = run_cli(
        capsys, "train", "--data", train, "--target", "y", "-o", other, "--no-report", *fast
    )
    assert code == 0, err
    assert not RunDir(other).report_dir.exists() and "report:" not in stdout
