"""multilayer.tabular.predict and ``mlp predict`` / ``mlp evaluate`` for runs trained on a table.

Most tests use a stand-in model (a ``predict`` that computes known probabilities from the raw
columns, as the table-model contract says) so that every output value is known exactly; one
saves a real multilayer model in a run directory and goes through the files and the CLI.
"""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
import pyarrow.csv as pacsv  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

import multilayer as keras  # noqa: E402
from multilayer.cli.main import main  # noqa: E402
from multilayer.data.tables import TableError, from_frame, read_table  # noqa: E402
from multilayer.runs import RunDir  # noqa: E402
from multilayer.tabular import TableSpec  # noqa: E402
from multilayer.tabular.metrics import task_metrics  # noqa: E402
from multilayer.tabular.predict import (  # noqa: E402
    evaluate_table,
    predict_table,
    target_values,
    test_metrics,
    write_predictions,
)

COLUMNS = ["x", "color"]
KINDS = {"x": "numeric", "color": "categorical"}


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


class StandIn:
    """A table model: raw columns in (numeric float with NaN, categorical object with None),
    final units out. Records the batches it was given."""

    def __init__(self, task, k=1):
        self.task, self.k, self.batches = task, k, []

    def logits(self, inputs):
        x = np.nan_to_num(np.asarray(inputs["x"], dtype=np.float64))
        red = np.array([v == "red" for v in inputs["color"]], dtype=np.float64)
        return x + red

    def predict(self, inputs):
        assert sorted(inputs) == sorted(COLUMNS)
        assert inputs["color"].dtype == object
        self.batches.append(len(inputs["x"]))
        self.seen = inputs
        z = self.logits(inputs)
        if self.task == "regression":
            return (2 * z + 1)[:, None]
        if self.task == "binary":
            return _sigmoid(z)[:, None]
        scores = np.stack([z * (j + 1) / self.k for j in range(self.k)], axis=1)
        if self.task == "multilabel":
            return _sigmoid(scores - 1)
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def spec_for(task, classes=(), target=("y",)):
    return TableSpec(
        target=list(target), task=task, classes=list(classes), columns=COLUMNS, kinds=KINDS
    )


def write_csv(path, rows, header=("x", "color", "y")):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


ROWS = [
    (0.5, "red", "yes"),
    (-1.0, "blue", "no"),
    ("", "", "no"),  # missing values
    (3.0, "green", "yes"),
    (-2.5, "red", "no"),
]


@pytest.fixture
def rows_csv(tmp_path):
    return write_csv(tmp_path / "rows.csv", ROWS)


def test_binary_predictions_in_order_with_labels_and_probabilities(rows_csv):
    spec = spec_for("binary", ["no", "yes"])
    got = predict_table(StandIn("binary"), rows_csv, spec=spec)
    assert list(got) == ["prediction", "proba_no", "proba_yes"]
    p = _sigmoid(np.array([1.5, -1.0, 0.0, 3.0, -1.5]))
    np.testing.assert_array_equal(got["proba_yes"], p)
    np.testing.assert_array_equal(got["proba_no"], 1.0 - p)
    np.testing.assert_array_equal(got["proba_no"] + got["proba_yes"], np.ones(5))
    assert got["prediction"].tolist() == ["yes", "no", "no", "yes", "no"]  # 0.5 is not > 0.5


def test_multiclass_labels_keep_their_type_and_probabilities_sum_to_one(rows_csv):
    for classes in ([10, 20, 30], [False, True, None][:2], [0.5, 1.5, 2.5]):
        k = len(classes)
        got = predict_table(
            StandIn("multiclass", k), rows_csv, spec=spec_for("multiclass", classes)
        )
        assert list(got) == ["prediction", *[f"proba_{c}" for c in classes]]
        probabilities = np.column_stack([got[f"proba_{c}"] for c in classes])
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=0, atol=1e-15)
        want = [classes[i] for i in probabilities.argmax(axis=1)]
        assert got["prediction"].tolist() == want
        assert all(type(v) is type(classes[0]) for v in got["prediction"].tolist())


def test_regression_and_multilabel_columns(rows_csv):
    got = predict_table(StandIn("regression"), rows_csv, spec=spec_for("regression"))
    assert list(got) == ["prediction"]
    np.testing.assert_array_equal(got["prediction"], [4.0, -1.0, 1.0, 7.0, -2.0])
    spec = spec_for("multilabel", ["a", "b"], target=("a", "b"))
    got = predict_table(StandIn("multilabel", 2), rows_csv, spec=spec)
    assert list(got) == ["prediction_a", "prediction_b", "proba_a", "proba_b"]
    np.testing.assert_array_equal(got["prediction_b"], (got["proba_b"] > 0.5).astype(int))


def test_batches_give_the_same_rows_in_order(tmp_path):
    rng = np.random.default_rng(0)
    rows = [
        (float(v), c, "no")
        for v, c in zip(rng.normal(size=50), rng.choice(["red", "blue"], 50), strict=True)
    ]
    path = write_csv(tmp_path / "many.csv", rows)
    spec = spec_for("binary", ["no", "yes"])
    model = StandIn("binary")
    whole = predict_table(model, path, spec=spec)
    batched = predict_table(model, path, spec=spec, batch_rows=7)
    assert max(model.batches[1:]) <= 7  # 50 rows arrive in batches of at most 7
    for name in whole:
        np.testing.assert_array_equal(whole[name], batched[name])
    frame = read_table(path)
    np.testing.assert_array_equal(
        predict_table(model, frame, spec=spec)["proba_yes"], whole["proba_yes"]
    )


def test_digits_in_a_categorical_column_are_text_again(tmp_path):
    path = write_csv(tmp_path / "digits.csv", [(1.0, 7, "no"), (2.0, "", "no")])
    model = StandIn("binary")
    predict_table(model, path, spec=spec_for("binary", ["no", "yes"]))
    assert model.seen["color"].tolist() == ["7", None]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_written_predictions_read_back_exactly(rows_csv, tmp_path, fmt):
    spec = spec_for("multiclass", [1, 2, 3])
    model = StandIn("multiclass", 3)
    want = predict_table(model, rows_csv, spec=spec)
    out = tmp_path / f"predictions.{fmt}"
    assert write_predictions(model, rows_csv, out, spec=spec, batch_rows=2) == 5
    back = (pacsv.read_csv(out) if fmt == "csv" else pq.read_table(out)).to_pydict()
    assert list(back) == list(want)
    for name, values in want.items():
        assert back[name] == values.tolist()  # exact floats, int labels stay int
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["rows.csv", out.name])


def test_missing_column_is_named(tmp_path):
    path = write_csv(tmp_path / "bad.csv", [(1.0, "red")], header=("x", "colour"))
    with pytest.raises(TableError) as error:
        predict_table(StandIn("binary"), path, spec=spec_for("binary", ["no", "yes"]))
    assert str(error.value) == (
        f"{path} does not have the columns training used: missing ['color']; "
        "it has ['x', 'colour']; did you mean 'color' -> 'colour'?"
    )


def test_text_in_a_numeric_column_is_named(tmp_path):
    path = write_csv(tmp_path / "bad.csv", [("1.5", "red"), ("high", "red")], header=("x", "color"))
    with pytest.raises(TableError) as error:
        predict_table(StandIn("binary"), path, spec=spec_for("binary", ["no", "yes"]))
    assert str(error.value) == (
        f"column 'x' of {path} has the non-numeric value 'high' (row 2 of a batch of 2), but "
        "the model was trained on it as numeric values"
    )


def test_numbers_as_text_in_a_numeric_column_are_numbers():
    import pandas as pd

    frame = pd.DataFrame({"x": ["0.5", None, "-2.5"], "color": ["red", "blue", "red"]})
    assert from_frame(frame).kind("x") == "categorical"  # text of numbers only: no error
    model = StandIn("regression")
    got = predict_table(model, frame, spec=spec_for("regression"))
    np.testing.assert_array_equal(model.seen["x"], [0.5, np.nan, -2.5])
    np.testing.assert_array_equal(got["prediction"], [4.0, 1.0, -2.0])


def test_empty_and_header_only_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    header = tmp_path / "header.csv"
    header.write_text("x,color\n")
    spec = spec_for("binary", ["no", "yes"])
    with pytest.raises(TableError) as error:
        predict_table(StandIn("binary"), empty, spec=spec)
    assert str(error.value) == f"{empty} is empty (no header, no rows)"
    with pytest.raises(TableError) as error:
        predict_table(StandIn("binary"), header, spec=spec)
    assert str(error.value) == f"{header} has a header but no rows"


def test_unknown_output_extension_and_overwriting_the_input(rows_csv, tmp_path):
    spec = spec_for("binary", ["no", "yes"])
    with pytest.raises(ValueError) as error:
        write_predictions(StandIn("binary"), rows_csv, tmp_path / "out.xlsx", spec=spec)
    assert str(error.value) == (
        f"{tmp_path / 'out.xlsx'}: unknown output format '.xlsx'; use one of ['.csv', '.parquet']"
    )
    with pytest.raises(ValueError, match="is the input file"):
        write_predictions(StandIn("binary"), rows_csv, rows_csv, spec=spec)


def test_an_error_part_way_leaves_no_file_and_keeps_the_old_one(rows_csv, tmp_path):
    out = tmp_path / "predictions.csv"
    out.write_text("old\n")
    model = StandIn("binary")
    original = model.predict

    def failing(inputs):
        if model.batches:
            raise RuntimeError("boom")
        return original(inputs)

    model.predict = failing
    with pytest.raises(RuntimeError, match="boom"):
        write_predictions(
            model, rows_csv, out, spec=spec_for("binary", ["no", "yes"]), batch_rows=2
        )
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.csv", "rows.csv"]


def test_evaluate_equals_task_metrics(rows_csv):
    spec = spec_for("binary", ["no", "yes"])
    model = StandIn("binary")
    got = evaluate_table(model, rows_csv, spec=spec, batch_rows=2)
    y = np.array([1, 0, 0, 1, 0])
    p = _sigmoid(np.array([1.5, -1.0, 0.0, 3.0, -1.5]))
    assert got == task_metrics("binary", y, p, ["no", "yes"])
    assert got["accuracy"] == 1.0
    assert test_metrics(model, rows_csv, spec) == got  # what mlp train's test path may call


def test_evaluate_needs_the_target_and_known_classes(tmp_path):
    spec = spec_for("binary", ["no", "yes"])
    path = write_csv(tmp_path / "notarget.csv", [(1.0, "red")], header=("x", "color"))
    with pytest.raises(TableError) as error:
        evaluate_table(StandIn("binary"), path, spec=spec)
    assert str(error.value) == (
        f"target column 'y' is not in {path}; the columns are ['x', 'color']"
    )
    path = write_csv(tmp_path / "maybe.csv", [(1.0, "red", "yes"), (2.0, "red", "maybe")])
    with pytest.raises(TableError) as error:
        evaluate_table(StandIn("binary"), path, spec=spec)
    assert str(error.value) == (
        f"target column 'y' of {path}, data row 2: 'maybe' is not one of the classes the "
        "model was trained on ['no', 'yes']"
    )


def test_numeric_class_labels_match_whatever_the_file_type():
    from multilayer.data.tables import Table

    spec = spec_for("multiclass", [1, 2, 3])
    table = Table({"y": np.array([3.0, 1.0, 2.0])})
    assert target_values(table, spec).tolist() == [2, 0, 1]


# -- a real model in a run directory, through the CLI -------------------------------------------
def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def table_run(tmp_path):
    """A run directory holding a small numeric-input regression model and its TableSpec."""
    spec = TableSpec(
        target=["price"],
        task="regression",
        columns=["rooms", "area"],
        kinds={"rooms": "numeric", "area": "numeric"},
    )
    rooms = keras.Input(shape=(1,), name="rooms")
    area = keras.Input(shape=(1,), name="area")
    out = keras.layers.Dense(1)(keras.layers.Concatenate()([rooms, area]))
    model = keras.Model({"rooms": rooms, "area": area}, out)
    model.build()
    model.layers[-1].set_weights([np.array([[2.0], [0.5]]), np.array([1.0])])
    run = RunDir(tmp_path / "run").create()
    model.save(run.model_path)
    run.write_config({"table": spec.to_config()})
    data = tmp_path / "houses.csv"
    data.write_text("area,rooms,price\n100,3,58\n50,1,30\n80,2,41.5\n")
    return run, data


def test_cli_predict_and_evaluate_a_table_run(table_run, tmp_path, capsys):
    run, data = table_run
    out = tmp_path / "predictions.parquet"
    code, stdout, stderr = run_cli(capsys, "predict", run.path, data, "-o", out)
    assert (code, stderr) == (0, "")
    assert stdout.strip() == f"wrote 3 predictions to {out}"
    assert pq.read_table(out).to_pydict() == {"prediction": [57.0, 28.0, 45.0]}

    code, stdout, stderr = run_cli(capsys, "evaluate", run.path, data, "--json")
    assert (code, stderr) == (0, "")
    printed = json.loads(stdout)
    expected = task_metrics("regression", [58, 30, 41.5], [57.0, 28.0, 45.0])
    assert printed == {"run": str(run.path), "data": str(data), "task": "regression", **expected}
    code, stdout, _ = run_cli(capsys, "evaluate", run.path, data)
    assert code == 0 and "rmse" in stdout and f"{expected['rmse']:.4f}" in stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["predict", "{run}", "{data}", "-o", "{tmp}/p.json"], "unknown output format '.json'"),
        (["predict", "{run}", "{data}"], "give the file to write the predictions to"),
        (["predict", "{run}", "{data}", "--json", "-o", "{tmp}/p.csv"], "--json is for images"),
        (["predict", "{run}", "{data}", "{data}", "-o", "{tmp}/p.csv"], "one CSV or Parquet file"),
        (["predict", "{run}", "{tmp}/none.csv", "-o", "{tmp}/p.csv"], "none.csv: no such file"),
        (["evaluate", "{run}"], "give the table to evaluate on, with the target column 'price'"),
        (["evaluate", "{run}", "{tmp}/rows.csv"], "target column 'price' is not in"),
    ],
)
def test_cli_errors_are_one_line(table_run, tmp_path, capsys, argv, message):
    run, data = table_run
    (tmp_path / "rows.csv").write_text("area,rooms\n1,2\n")
    argv = [a.format(run=run.path, data=data, tmp=tmp_path) for a in argv]
    code, stdout, stderr = run_cli(capsys, *argv)
    assert code != 0
    assert len(stderr.strip().splitlines()) == 1 and stderr.startswith("error: ")
    assert message in stderr
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "p.json").exists()


def test_cli_table_options_on_an_image_model_are_refused(tmp_path, capsys):
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(2)])
    path = tmp_path / "m.safetensors"
    model.save(path)
    rows = Path(tmp_path / "rows.csv")
    rows.write_text("a\n1\n")
    code, _, stderr = run_cli(capsys, "predict", path, rows, "-o", tmp_path / "p.csv")
    assert code == 2 and "-o/--output is for runs trained on a table" in stderr
    code, _, stderr = run_cli(capsys, "evaluate", path, rows)
    assert code == 2 and "a table file is for runs trained on a table" in stderr


def test_a_bare_table_model_file_carries_its_spec(table_run, tmp_path, capsys):
    """A model file outside its run directory: the spec comes from its training_info."""
    from multilayer.models import load_model
    from multilayer.tabular.predict import model_table_spec

    run, data = table_run
    model = load_model(run.model_path)
    assert model_table_spec(model) is None  # this one was saved without it
    model.training_info = {"table": run.table_spec().to_config()}
    bare = tmp_path / "houses.safetensors"
    model.save(bare)
    assert model_table_spec(load_model(bare)) == run.table_spec()
    code, _, err = run_cli(capsys, "predict", bare, data, "-o", tmp_path / "p.csv")
    assert (code, err) == (0, "")
    assert pacsv.read_csv(tmp_path / "p.csv").to_pydict() == {"prediction": [57.0, 28.0, 45.0]}
    assert predict_table(model, data)["prediction"].tolist() == [57.0, 28.0, 45.0]


def test_one_incomplete_row_of_a_dataframe_is_predicted():
    import pandas as pd

    frame = pd.DataFrame({"x": [np.nan], "color": [None]})
    model = StandIn("binary")
    got = predict_table(model, frame, spec=spec_for("binary", ["no", "yes"]))
    assert got["proba_yes"].tolist() == [0.5] and got["prediction"].tolist() == ["no"]
    assert model.seen["color"].tolist() == [None]


def test_a_file_is_read_as_it_is_predicted(tmp_path):
    """predict_batches yields the first batch before reading the rest of a larger file."""
    from multilayer.tabular.predict import predict_batches

    n = 120_000  # about 2.5 MB of CSV: several of pyarrow's 1 MB blocks
    rng = np.random.default_rng(0)
    table = pa.table({"x": rng.normal(size=n), "color": rng.choice(["red", "blue"], n)})
    path = tmp_path / "big.csv"
    pacsv.write_csv(table, path)
    model = StandIn("binary")
    batches = predict_batches(model, path, spec=spec_for("binary", ["no", "yes"]), batch_rows=5000)
    first = next(batches)
    assert len(first["prediction"]) == 5000 and model.batches == [5000]
    assert 5000 + sum(len(b["prediction"]) for b in batches) == n
    assert max(model.batches) == 5000


def test_parquet_input_gives_the_csv_predictions(rows_csv, tmp_path):
    spec = spec_for("binary", ["no", "yes"])
    parquet = tmp_path / "rows.parquet"
    pq.write_table(pacsv.read_csv(rows_csv), parquet)
    from_csv = predict_table(StandIn("binary"), rows_csv, spec=spec)
    from_parquet = predict_table(StandIn("binary"), parquet, spec=spec)
    for name in from_csv:
        assert from_csv[name].tolist() == from_parquet[name].tolist()
