"""TableBatches: CSV/Parquet files streamed into fit() with bounded memory, an honest shuffle
and a validation split by row-index hash."""

from __future__ import annotations

import re

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

import multilayer as keras  # noqa: E402
from multilayer.data import tables  # noqa: E402
from multilayer.data.streaming import TableBatches, row_hash, scan_table  # noqa: E402
from multilayer.data.tables import TableError  # noqa: E402


def _frame(n: int, seed: int = 0) -> dict[str, list]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = rng.normal(size=n)
    return {
        "id": list(range(n)),
        "a": [None if k % 7 == 3 else float(v) for k, v in enumerate(a)],
        "b": b.tolist(),
        "colour": [None if k % 11 == 5 else ("red", "green", "blue")[k % 3] for k in range(n)],
        "label": ["yes" if u + 0.5 * v > 0 else "no" for u, v in zip(a, b, strict=True)],
        "value": (2 * a - b).tolist(),
    }


def _write(tmp_path, n: int = 1000, fmt: str = "parquet", row_group: int = 128):
    data = _frame(n)
    table = pa.table(data)
    path = tmp_path / f"t.{fmt}"
    if fmt == "parquet":
        pq.write_table(table, path, row_group_size=row_group)
    else:
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, path)
    return path, data


def _epoch(ds: TableBatches):
    ds.on_epoch_begin()
    batches = [ds[i] for i in range(len(ds))]
    ds.on_epoch_end()
    return batches


def _ids(batches) -> list[int]:
    return [int(v) for x, _ in batches for v in x["id"]]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_unshuffled_batches_are_the_file_in_order(tmp_path, fmt):
    path, _ = _write(tmp_path, 1000, fmt)
    whole = tables.read_table(path)
    target = whole.target("label")
    ds = TableBatches(path, "label", batch_size=64, shuffle=False, read_rows=100)
    assert ds.task == "binary" and ds.classes == target.classes == ("no", "yes")
    assert len(ds) == 16 and ds.rows == 1000
    batches = _epoch(ds)
    assert [len(y) for _, y in batches] == [64] * 15 + [40]
    for name in ("id", "a", "b", "colour"):
        got = np.concatenate([x[name] for x, _ in batches])
        np.testing.assert_array_equal(got, whole.column(name))
    assert set(batches[0][0]) == {"id", "a", "b", "colour", "value"}
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]), target.y)
    assert batches[0][0]["colour"].dtype == object and batches[0][1].dtype == np.int64


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_validation_split_partitions_the_rows(tmp_path, fmt):
    path, _ = _write(tmp_path, 2000, fmt)
    common = {"validation_split": 0.25, "split_seed": 3, "batch_size": 50}
    train = TableBatches(path, "label", subset="training", seed=1, **common)
    val = TableBatches(path, "label", subset="validation", shuffle=False, **common)
    train_ids, val_ids = _ids(_epoch(train)), _ids(_epoch(val))
    assert len(train_ids) == train.rows and len(val_ids) == val.rows
    assert sorted(train_ids + val_ids) == list(range(2000))
    expected = np.flatnonzero(row_hash(np.arange(2000), 3) < 0.25).tolist()
    assert val_ids == expected  # unshuffled validation: file order
    assert 0.2 < len(val_ids) / 2000 < 0.3
    # The split is fixed by split_seed: another shuffle seed holds out the same rows.
    other = TableBatches(path, "label", subset="training", seed=9, **common)
    assert sorted(_ids(_epoch(other))) == sorted(train_ids)


def test_row_hash_share_is_close_to_the_fraction():
    held = row_hash(np.arange(200_000), 0) < 0.1
    assert abs(held.mean() - 0.1) < 0.005
    assert not np.array_equal(held, row_hash(np.arange(200_000), 1) < 0.1)


def test_shuffle_is_seeded_per_epoch_and_a_permutation(tmp_path):
    path, _ = _write(tmp_path, 1000, "parquet", row_group=100)
    ds = TableBatches(path, "label", batch_size=32, seed=5, shuffle_buffer=200, read_rows=50)
    first, second = _ids(_epoch(ds)), _ids(_epoch(ds))
    assert sorted(first) == sorted(second) == list(range(1000))
    assert first != second and first != list(range(1000))
    again = TableBatches(path, "label", batch_size=32, seed=5, shuffle_buffer=200, read_rows=50)
    assert _ids(_epoch(again)) == first and _ids(_epoch(again)) == second
    # Batches asked for out of order are those of the epoch all the same.
    again = TableBatches(path, "label", batch_size=32, seed=5, shuffle_buffer=200, read_rows=50)
    assert [int(v) for v in again[3][0]["id"]] == first[96:128]
    assert [int(v) for v in again[1][0]["id"]] == first[32:64]


def test_shuffle_moves_rows_only_within_the_buffer(tmp_path):
    """A CSV file is read front to back: the k-th row out has been read by then, so its index
    is below k + shuffle_buffer + read_rows. That is all the shuffle promises."""
    path, _ = _write(tmp_path, 3000, "csv")
    buffer, read_rows = 300, 100  # CSV chunks are by bytes: bounded by the file's blocks
    ds = TableBatches(path, "label", batch_size=20, shuffle_buffer=buffer, read_rows=read_rows)
    ids = _ids(_epoch(ds))
    assert sorted(ids) == list(range(3000))
    chunk = max(c.rows for c in tables.iter_batches(path))
    assert all(row < k + buffer + chunk + 20 for k, row in enumerate(ids))
    assert max(abs(row - k) for k, row in enumerate(ids)) > 20  # it did shuffle


def test_targets_for_each_task(tmp_path):
    path, data = _write(tmp_path, 300, "parquet")
    reg = TableBatches(path, "value", batch_size=300, shuffle=False)
    assert reg.task == "regression" and reg.classes == ()
    x, y = reg[0]
    assert y.dtype == np.float64 and np.array_equal(y, np.asarray(data["value"]))
    assert "value" not in x and "label" in x
    assert TableBatches(path, "label", task="multiclass").classes == ("no", "yes")
    ml = tmp_path / "ml.parquet"
    pq.write_table(pa.table({"f": [1.0, 2.0, 3.0], "p": [1, 0, 1], "q": [0, 0, 1]}), ml)
    labels = TableBatches(ml, ["p", "q"], batch_size=2, shuffle=False)
    assert labels.task == "multilabel" and labels.classes == ("p", "q")
    np.testing.assert_array_equal(labels[1][1], [[1.0, 1.0]])
    np.testing.assert_array_equal(labels[0][0]["f"], [1.0, 2.0])


def test_column_shape_and_selected_columns(tmp_path):
    path, data = _write(tmp_path, 100, "parquet")
    ds = TableBatches(
        path, "label", batch_size=10, shuffle=False, columns=["b", "a"], column_shape="column"
    )
    x, _ = ds[0]
    assert list(x) == ["b", "a"] and x["b"].shape == (10, 1)
    np.testing.assert_array_equal(x["b"][:, 0], data["b"][:10])


def test_errors_name_the_problem(tmp_path):
    path, _ = _write(tmp_path, 100, "csv")
    with pytest.raises(TableError, match=re.escape("target column 'labl' is not in")) as info:
        TableBatches(path, "labl")
    assert "did you mean 'label'?" in str(info.value)
    with pytest.raises(
        TableError,
        match=re.escape(
            f"target column 'colour' of {path} has 9 missing values (first on data row 6); "
            "drop those rows or fill them"
        ),
    ):
        TableBatches(path, "colour")
    one = tmp_path / "one.csv"
    one.write_text("x,y\n1,a\n2,a\n")
    with pytest.raises(
        TableError,
        match=re.escape(
            f"target column 'y' of {one} has one class ('a') in all 2 rows: there is nothing "
            "to learn"
        ),
    ):
        TableBatches(one, "y")
    with pytest.raises(ValueError, match="subset must be 'training' or 'validation', got None"):
        TableBatches(path, "label", validation_split=0.2)
    with pytest.raises(TableError, match=re.escape("column 'nope' is not in")):
        TableBatches(path, "label", columns=["a", "nope"])
    ds = TableBatches(path, "label", batch_size=40)
    with pytest.raises(IndexError, match="batch 3 out of range: an epoch has 3 batches"):
        ds[3]
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("x,y\n1,a\n2,b,3\n")
    with pytest.raises(TableError, match=re.escape(f"{ragged}, line 3: expected 2 values")):
        TableBatches(ragged, "y")
    with pytest.raises(TableError, match="has a header but no rows"):
        empty = tmp_path / "empty.parquet"
        pq.write_table(
            pa.table({"x": pa.array([], pa.float64()), "y": pa.array([], pa.string())}), empty
        )
        scan_table(empty, "y")


def test_scan_agrees_with_the_whole_table(tmp_path):
    path, _ = _write(tmp_path, 500, "parquet")
    scan = scan_table(path, "label", read_rows=64)
    whole = tables.read_table(path)
    assert scan.rows == 500 and scan.columns == tuple(whole.column_names)
    assert scan.kinds == {c.name: c.kind for c in whole.columns}
    assert (scan.task, scan.classes) == ("binary", whole.target("label").classes)
    assert scan_table(path, "label", task="multiclass").task == "multiclass"


def test_fit_trains_on_a_stream_with_streamed_validation(tmp_path):
    path, _ = _write(tmp_path, 3000, "parquet", row_group=500)
    common = {"validation_split": 0.2, "batch_size": 64, "columns": ["a", "b"]}
    train = TableBatches(path, "label", subset="training", column_shape="column", **common)
    val = TableBatches(path, "label", subset="validation", column_shape="column", **common)
    a = keras.Input(shape=(1,), name="a")
    b = keras.Input(shape=(1,), name="b")
    merged = keras.layers.Concatenate()([a, b])
    hidden = keras.layers.Dense(16, activation="relu")(merged)
    out = keras.layers.Dense(2, activation="softmax")(hidden)
    model = keras.Model([a, b], out)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    # Column "a" has missing values: NaN in a batch is refused by fit, by name.
    with pytest.raises(ValueError, match="NaN"):
        model.fit(train, epochs=1, verbose=0)
    clean = tmp_path / "clean.parquet"
    table = pq.read_table(path)
    filled = pa.array(np.nan_to_num(table["a"].to_numpy(zero_copy_only=False)))
    pq.write_table(table.set_column(1, "a", filled), clean, row_group_size=500)
    train = TableBatches(clean, "label", subset="training", column_shape="column", **common)
    val = TableBatches(clean, "label", subset="validation", column_shape="column", **common)
    history = model.fit(train, validation_data=val, epochs=4, verbose=0)
    assert history.history["val_accuracy"][-1] > 0.85
    assert train._epoch == 4


def test_a_text_column_of_numbers_only_stays_categorical():
    """Numbers written as text in every row (codes, months) are a text column, not an error:
    this raised StopIteration from the mostly-numeric check."""
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"month": ["1", "2", "12", None], "y": [0.0, 1.0, 0.0, 1.0]})
    table = tables.from_frame(frame)
    assert table.kind("month") == "categorical"
    assert table.column("month").tolist() == ["1", "2", "12", None]


def test_numeric_classes_are_encoded_as_read_table_does(tmp_path):
    path = tmp_path / "n.csv"
    rng = np.random.default_rng(0)
    y = rng.choice([3, 7, 11], 500)
    path.write_text("x,y\n" + "".join(f"{k},{v}\n" for k, v in enumerate(y)))
    ds = TableBatches(path, "y", batch_size=500, shuffle=False)
    assert ds.classes == (3.0, 7.0, 11.0) and ds.task == "multiclass"
    np.testing.assert_array_equal(ds[0][1], tables.read_table(path).target("y").y)
    # Classes given in another order index as given; a value outside them is named.
    given = TableBatches(path, "y", batch_size=500, shuffle=False, classes=[11, 3, 7])
    np.testing.assert_array_equal(given[0][1], [[1, 2, 0][[3, 7, 11].index(v)] for v in y])
    short = TableBatches(path, "y", batch_size=500, shuffle=False, classes=[3, 7])
    first = int(np.flatnonzero(y == 11)[0])
    with pytest.raises(
        TableError,
        match=re.escape(
            f"target column 'y' of {path}, data row {first + 1}: 11.0 is not one of the "
            "classes [3, 7]"
        ),
    ):
        short[0]
