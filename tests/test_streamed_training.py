"""train_streamed: the table run on a file read batch by batch (never whole)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from multilayer.data import tables  # noqa: E402
from multilayer.data.streaming import row_hash  # noqa: E402
from multilayer.tabular.streamed import prepare_streamed_run, train_streamed  # noqa: E402
from multilayer.tabular.training import train_table  # noqa: E402

FAST = {"epochs": 10, "hidden": [32, 32]}


def _table(n: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], n)
    shift = np.select([colour == "red", colour == "green"], [1.0, -1.0], 0.0)
    return {
        "a": [None if k % 9 == 4 else float(v) for k, v in enumerate(a)],
        "b": b.tolist(),
        "colour": [None if k % 13 == 6 else str(c) for k, c in enumerate(colour)],
        "label": ["up" if v > 0 else "down" for v in 2 * a + b + shift],
        "value": (3 * a - b + shift + 10).tolist(),
    }


@pytest.fixture(scope="module")
def parquet(tmp_path_factory):
    path = tmp_path_factory.mktemp("streamed") / "t.parquet"
    pq.write_table(pa.table(_table(4000)), path, row_group_size=700)
    return path


def test_streamed_run_writes_the_usual_run_directory(parquet, tmp_path):
    result = train_streamed(
        parquet,
        "label",
        seed=3,
        output=tmp_path / "run",
        overrides=FAST,
        read_rows=500,
    )
    spec = result.run.table_spec()
    assert spec is not None and spec.task == "binary" and spec.classes == ["down", "up"]
    assert spec.columns == ["a", "b", "colour", "value"]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["streamed"] is True and metrics["epochs"] == 10
    assert metrics["test_accuracy"] > 0.85
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    sizes = config["dataset"]
    assert sizes["train_samples"] + sizes["validation_samples"] + sizes["test_samples"] == 4000
    # The test rows are those whose row hash is below test_split (seeded by the run's seed).
    expected_test = int((row_hash(np.arange(4000), 3) < 0.2).sum())
    assert sizes["test_samples"] == metrics["test_samples"] == expected_test
    assert config["flags"]["stream"] is True


def test_streamed_run_matches_the_in_memory_run(parquet, tmp_path):
    streamed = train_streamed(parquet, "value", seed=0, output=tmp_path / "s", overrides=FAST)
    whole = train_table(parquet, "value", seed=0, output=tmp_path / "w", overrides=FAST)
    assert streamed.metrics["test_r2"] > 0.85 and whole.metrics["test_r2"] > 0.85
    assert abs(streamed.metrics["test_r2"] - whole.metrics["test_r2"]) < 0.05


def test_regression_target_scale_is_the_streamed_mean_and_std(parquet, tmp_path):
    prepared = prepare_streamed_run(
        parquet, "value", seed=1, output=tmp_path / "r", overrides=FAST, read_rows=300
    )
    ys = np.concatenate([y for _, y in prepared.train.__iter__()])
    assert len(ys) == prepared.train.rows
    from multilayer.engine.layers import Rescaling

    [layer] = [la for la in prepared.model.layers if isinstance(la, Rescaling)]
    np.testing.assert_allclose(layer.scale, ys.std(), rtol=1e-10)
    np.testing.assert_allclose(layer.offset, ys.mean(), rtol=1e-10)
    # The FeatureSpace saw the training rows only.
    assert prepared.space.rows == prepared.train.rows


def test_training_validation_and_test_rows_are_disjoint(parquet, tmp_path):
    prepared = prepare_streamed_run(parquet, "label", seed=2, output=tmp_path / "p", overrides=FAST)
    assert prepared.validation is not None
    counts = [prepared.train.rows, prepared.validation.rows, prepared.test.rows]
    assert sum(counts) == 4000
    ranges = [prepared.test.hash_range, prepared.validation.hash_range, prepared.train.hash_range]
    assert ranges == [(0.0, 0.2), (0.2, 0.2 + 0.8 * 0.2), (0.2 + 0.8 * 0.2, 1.0)]


def test_separate_test_file_and_its_errors(parquet, tmp_path):
    data = _table(600, seed=5)
    test = tmp_path / "test.csv"
    import pyarrow.csv as pacsv

    pacsv.write_csv(pa.table(data), test)
    result = train_streamed(
        parquet, "label", test_data=test, seed=0, output=tmp_path / "t", overrides=FAST
    )
    assert result.metrics["test_samples"] == 600
    other = tmp_path / "other.csv"
    pacsv.write_csv(pa.table({k: v for k, v in data.items() if k != "colour"}), other)
    with pytest.raises(
        tables.TableError,
        match=re.escape(
            f"{other} does not have the columns training used: missing ['colour'], unexpected []"
        ),
    ):
        prepare_streamed_run(parquet, "label", test_data=other, seed=0, overrides=FAST)


def test_bad_input_is_named(parquet, tmp_path):
    with pytest.raises(tables.TableError, match="did you mean 'label'"):
        prepare_streamed_run(parquet, "Label", seed=0)
    with pytest.raises(ValueError, match=re.escape("test_split must be in (0, 1), got 1.5")):
        prepare_streamed_run(parquet, "label", test_split=1.5)
    with pytest.raises(ValueError, match="cannot override \\['colour'\\]"):
        prepare_streamed_run(parquet, "label", overrides={"colour": 1})
    empty = tmp_path / "empty.csv"
    empty.write_text("a,b,y\n1,,p\n2,,q\n3,,p\n")
    with pytest.raises(
        tables.TableError,
        match=re.escape(f"{empty}: the columns ['b'] have no values in any of the 3 rows; remove"),
    ):
        prepare_streamed_run(empty, "y", seed=0)
    few = tmp_path / "few.csv"
    few.write_text("a,y\n1,p\n2,q\n3,p\n")
    with pytest.raises(
        tables.TableError,
        match=re.escape(
            f"{few}: no rows fall in the row-hash range (0.0, 0.3) (the file has 3); "
            "use a larger split"
        ),
    ):
        prepare_streamed_run(few, "y", seed=0, test_split=0.3)


# -- mlp train --stream -------------------------------------------------------------------------
def _cli(capsys, *argv):
    from multilayer.cli.main import main

    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_streams_a_table(capsys, parquet, tmp_path):
    out = tmp_path / "run"
    argv = ["train", "--data", parquet, "--target", "label", "--stream", "--epochs", "2"]
    code, stdout, stderr = _cli(capsys, *argv, "--seed", "0", "-o", out, "--no-report")
    assert code == 0, stderr
    assert "streamed from the file" in stdout and "test accuracy" in stdout
    config = json.loads((out / "config.json").read_text())
    assert config["flags"]["stream"] is True and config["dataset"]["streamed"] is True
    assert json.loads((out / "metrics.json").read_text())["streamed"] is True


def test_cli_streams_large_files_by_itself(capsys, parquet, tmp_path, monkeypatch):
    from multilayer.tabular import streamed

    monkeypatch.setattr(streamed, "STREAM_BYTES", parquet.stat().st_size)
    out = tmp_path / "auto"
    argv = ["train", "--data", parquet, "--target", "label", "--epochs", "1", "--quiet"]
    assert _cli(capsys, *argv, "--seed", "0", "-o", out, "--no-report")[0] == 0
    assert json.loads((out / "config.json").read_text())["flags"]["stream"] is True
    out = tmp_path / "whole"
    argv += ["--no-stream"]
    assert _cli(capsys, *argv, "--seed", "0", "-o", out, "--no-report")[0] == 0
    assert "stream" not in json.loads((out / "config.json").read_text())["flags"]
    assert streamed.should_stream(str(parquet)) and not streamed.should_stream(parquet, False)
    with pytest.raises(ValueError, match="streaming needs a CSV or Parquet file, not a dict"):
        streamed.should_stream({}, True)


def test_cli_errors_are_the_same_streamed_or_not(capsys, tmp_path):
    import pandas as pd

    good = pd.DataFrame(_table(200))
    bad = tmp_path / "bad.csv"
    cases = [
        (good, ["--target", "lable"]),
        (good.assign(label="yes"), ["--target", "label"]),
        (good.assign(empty=np.nan), ["--target", "label"]),
        (good[["label"]], ["--target", "label"]),
        (good, ["--target", "label", "--task", "regression"]),
        (good, ["--target", "value", "--test-split", "1.5"]),
    ]
    for frame, argv in cases:
        frame.to_csv(bad, index=False)
        lines = []
        for mode in ("--stream", "--no-stream"):
            code, _, err = _cli(capsys, "train", "--data", bad, *argv, mode, "-o", tmp_path / "x")
            assert code != 0 and err.startswith("error: ") and "Traceback" not in err
            lines.append(err.strip())
        assert lines[0] == lines[1], argv
    code, _, err = _cli(capsys, "train", "--stream", "--epochs", "1")
    assert code != 0 and "--stream only apply to a table given with --data" in err
