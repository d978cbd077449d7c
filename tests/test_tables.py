"""Tables (multilayer.data.tables): CSV and Parquet read by pyarrow in batches, pandas and polars
DataFrames, task inference, exact errors for bad input, and DataFrames through fit/predict."""

from __future__ import annotations

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pd = pytest.importorskip("pandas")
import multilayer as keras  # noqa: E402
from multilayer.data.tables import (  # noqa: E402
    Column,
    TableError,
    check_columns,
    from_frame,
    iter_batches,
    read_table,
)
from multilayer.layers import Concatenate, Dense  # noqa: E402
from multilayer.models import Model, Sequential  # noqa: E402


def write(tmp_path, text: str, name: str = "data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


# -- reading --------------------------------------------------------------------------------------
def test_csv_columns_kinds_missing_and_values(tmp_path):
    path = write(tmp_path, "x,flag,city,y\n1.5,true,Oslo,3\n,false,,4\n2,true,Rome,5\n")
    table = read_table(path)
    assert table.rows == 3
    assert table.columns == (
        Column("x", "numeric", 1),
        Column("flag", "boolean", 0),
        Column("city", "categorical", 1),
        Column("y", "numeric", 0),
    )
    np.testing.assert_array_equal(table.column("x"), [1.5, np.nan, 2.0])
    np.testing.assert_array_equal(table.column("flag"), [1.0, 0.0, 1.0])
    assert table.column("city").tolist() == ["Oslo", None, "Rome"]


def test_csv_is_read_in_batches_and_joined_exactly(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.normal(size=(30_000, 2))
    path = tmp_path / "big.csv"
    pd.DataFrame(values, columns=["a", "b"]).to_csv(path, index=False)
    batches = list(iter_batches(path))
    assert len(batches) > 1  # 1 MB CSV blocks
    assert sum(b.rows for b in batches) == 30_000
    np.testing.assert_array_equal(read_table(path).to_numpy(), values)


def test_parquet_round_trip_in_batches(tmp_path):
    frame = pd.DataFrame(
        {"a": np.arange(10.0), "b": [True, False] * 5, "c": list("abcdeabcde"), "n": range(10)}
    )
    path = tmp_path / "t.parquet"
    frame.to_parquet(path)
    assert [b.rows for b in iter_batches(path, batch_rows=4)] == [4, 4, 2]
    table = read_table(path, batch_rows=4)
    assert [c.kind for c in table.columns] == ["numeric", "boolean", "categorical", "numeric"]
    assert table.column("c").tolist() == list("abcdeabcde")
    np.testing.assert_array_equal(table.column("n"), np.arange(10.0))


def test_parquet_and_dataframe_give_the_same_table(tmp_path):
    frame = pd.DataFrame({"a": [1.0, None, 3.0], "c": ["x", None, "y"], "b": [True, False, True]})
    frame.to_parquet(tmp_path / "t.parquet")
    from_file = read_table(tmp_path / "t.parquet")
    in_memory = from_frame(frame)
    assert from_file.columns == in_memory.columns
    for name in ("a", "b"):
        np.testing.assert_array_equal(from_file.column(name), in_memory.column(name))
    assert from_file.column("c").tolist() == in_memory.column("c").tolist() == ["x", None, "y"]


def test_polars_frame():
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame({"a": [1, None, 3], "b": [True, False, None], "c": ["x", "y", None]})
    table = from_frame(frame)
    assert table.columns == (
        Column("a", "numeric", 1),
        Column("b", "boolean", 1),
        Column("c", "categorical", 1),
    )
    np.testing.assert_array_equal(table.column("a"), [1.0, np.nan, 3.0])


# -- bad input ------------------------------------------------------------------------------------
def test_empty_file(tmp_path):
    path = write(tmp_path, "")
    with pytest.raises(TableError) as error:
        read_table(path)
    assert str(error.value) == f"{path} is empty (no header, no rows)"


def test_header_without_rows(tmp_path):
    path = write(tmp_path, "a,b\n")
    with pytest.raises(TableError) as error:
        read_table(path)
    assert str(error.value) == f"{path} has a header but no rows"


def test_ragged_row_names_the_line(tmp_path):
    path = write(tmp_path, "a,b,c\n1,2,3\n4,5\n6,7,8\n")
    with pytest.raises(TableError) as error:
        read_table(path)
    assert str(error.value) == (f"{path}, line 3: expected 3 values (the header's columns), got 2")


def test_non_numeric_value_in_numeric_column_names_column_and_line(tmp_path):
    # past pyarrow's first 1 MB block, where it has already chosen int64 for the column
    rows = "".join(f"{i},{i}\n" for i in range(200_000))
    path = write(tmp_path, "a,b\n" + rows + "7,oops\n")
    with pytest.raises(TableError) as error:
        read_table(path)
    assert str(error.value) == (
        f"{path}, line 200002: column 'b' holds numbers (int64) in the rows before, "
        "but has the non-numeric value 'oops'"
    )


def test_mostly_numeric_text_column_names_the_bad_value_and_line(tmp_path):
    # within pyarrow's first block the column is read as text; 19 of 20 values are numbers.
    # The quoted note on the first row spans two lines, so data row 6 is on line 8.
    rows = [f"note {i},{i}" for i in range(20)]
    rows[0] = '"two\nlines",0'
    rows[5] = "note 5,oops"  # ("n/a", "NA", "" and the like are missing values)
    path = write(tmp_path, "note,b\n" + "\n".join(rows) + "\n")
    with pytest.raises(TableError) as error:
        read_table(path)
    assert str(error.value) == (
        f"{path}, line 8: column 'b' holds numbers in 19 of 20 rows, but has the non-numeric "
        "value 'oops'"
    )
    frame = pd.DataFrame({"b": [str(i) for i in range(19)] + ["?"]})
    with pytest.raises(TableError) as error:
        from_frame(frame)
    assert str(error.value) == (
        "the DataFrame, data row 20: column 'b' holds numbers in 19 of 20 rows, but has the "
        "non-numeric value '?'"
    )
    names = from_frame(pd.DataFrame({"city": ["Oslo", "Rome", "1"]}))
    assert names.columns == (Column("city", "categorical", 0),)  # mostly text: a category


def test_all_missing_column(tmp_path):
    path = write(tmp_path, "a,b\n1,\n2,\n")
    with pytest.raises(TableError) as error:
        read_table(path)
    assert (
        str(error.value)
        == f"{path}: the columns ['b'] have no values in any of the 2 rows; remove them"
    )


def test_not_parquet_and_unknown_suffix(tmp_path):
    path = write(tmp_path, "a,b\n1,2\n", "fake.parquet")
    with pytest.raises(TableError, match=r"fake.parquet: not a readable Parquet file \("):
        read_table(path)
    with pytest.raises(TableError) as error:
        read_table(write(tmp_path, "a\n1\n", "t.xlsx"))
    assert str(error.value).endswith(
        "t.xlsx: unknown table format '.xlsx'; expected .csv, .tsv or .parquet"
    )


def test_missing_target_lists_columns_and_suggests(tmp_path):
    table = read_table(write(tmp_path, "age,price\n1,2\n3,4\n"))
    with pytest.raises(TableError) as error:
        table.target("prices")
    assert str(error.value) == (
        f"target column 'prices' is not in {table.source}; the columns are ['age', 'price']; "
        "did you mean 'price'?"
    )
    with pytest.raises(TableError) as error:
        table.target("zzz")
    assert str(error.value).endswith("the columns are ['age', 'price']")


def test_target_with_one_class():
    table = from_frame(pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": ["a", "a", "a"]}))
    with pytest.raises(TableError) as error:
        table.target("y")
    assert str(error.value) == (
        "target column 'y' of the DataFrame has one class ('a') in all 3 rows: there is nothing to learn"
    )


def test_mismatched_columns_between_train_and_predict(tmp_path):
    train = read_table(write(tmp_path, "a,b,c\n1,2,3\n", "train.csv"))
    rows = read_table(write(tmp_path, "a,c,d\n1,3,4\n", "rows.csv"))
    with pytest.raises(TableError) as error:
        rows.select(train.column_names)
    assert str(error.value) == (
        f"{rows.source} does not have the columns training used: missing ['b'], unexpected ['d']"
    )
    reordered = read_table(write(tmp_path, "c,a,b\n3,1,2\n", "r2.csv"))
    np.testing.assert_array_equal(reordered.select(train.column_names).to_numpy(), [[1, 2, 3]])
    check_columns(["a"], ["a"])


# -- tasks ----------------------------------------------------------------------------------------
def test_task_inference_and_override():
    frame = pd.DataFrame(
        {
            "price": [1.5, 2.25, 3.0, 4.0],
            "spam": [True, False, True, True],
            "digit": [0, 3, 7, 3],
            "kind": ["cat", "dog", "cat", "cat"],
            "color": ["r", "g", "b", "r"],
            "l1": [0, 1, 1, 0],
            "l2": [1, 1, 0, 0],
        }
    )
    table = from_frame(frame)
    regression = table.target("price")
    assert regression.task == "regression"
    np.testing.assert_array_equal(regression.y, [1.5, 2.25, 3.0, 4.0])
    spam = table.target("spam")
    assert (spam.task, spam.y.tolist(), spam.classes) == ("binary", [1, 0, 1, 1], (0.0, 1.0))
    digit = table.target("digit")
    assert (digit.task, digit.y.tolist(), digit.classes) == ("multiclass", [0, 1, 2, 1], (0, 3, 7))
    kind = table.target("kind")
    assert (kind.task, kind.y.tolist(), kind.classes) == ("binary", [0, 1, 0, 0], ("cat", "dog"))
    assert table.target("color").task == "multiclass"
    labels = table.target(["l1", "l2"])
    assert labels.task == "multilabel"
    np.testing.assert_array_equal(labels.y, [[0, 1], [1, 1], [1, 0], [0, 0]])
    assert table.target("digit", task="regression").task == "regression"
    with pytest.raises(TableError) as error:
        table.target("color", task="binary")
    assert str(error.value) == (
        "task 'binary' needs two classes; target column 'color' of the DataFrame has 3: ['b', 'g', 'r']"
    )
    with pytest.raises(TableError) as error:
        table.target("price", task="ranking")
    assert str(error.value) == (
        "task must be one of ['regression', 'binary', 'multiclass', 'multilabel'], got 'ranking'"
    )


# -- DataFrames through fit / predict -------------------------------------------------------------
def test_fit_and_predict_take_a_dataframe_like_its_array():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(64, 3)), columns=["a", "b", "c"])
    y = pd.Series((frame["a"] > 0).astype(int))

    def model():
        m = Sequential([keras.Input(shape=(3,)), Dense(2, activation="softmax")])
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return m

    keras.utils.set_random_seed(3)
    from_frame_model = model()
    from_frame_model.fit(frame, y, epochs=2, batch_size=16, verbose=0, shuffle=False)
    keras.utils.set_random_seed(3)
    from_array_model = model()
    from_array_model.fit(
        frame.to_numpy(), y.to_numpy(), epochs=2, batch_size=16, verbose=0, shuffle=False
    )
    np.testing.assert_array_equal(
        from_frame_model.predict(frame, verbose=0),
        from_array_model.predict(frame.to_numpy(), verbose=0),
    )


def test_dataframe_columns_go_to_named_inputs():
    a = keras.Input(shape=(1,), name="a")
    b = keras.Input(shape=(1,), name="b")
    out = Dense(1)(Concatenate()([a, b]))
    model = Model([a, b], out)
    model.compile(optimizer="sgd", loss="mse")
    frame = pd.DataFrame({"b": [1.0, 2.0], "a": [3.0, 4.0]})
    expected = model.predict(
        {"a": np.array([[3.0], [4.0]]), "b": np.array([[1.0], [2.0]])}, verbose=0
    )
    np.testing.assert_array_equal(model.predict(frame, verbose=0), expected)
    with pytest.raises(ValueError, match=r"missing \['b'\], unexpected \['c'\]"):
        model.predict(pd.DataFrame({"a": [1.0], "c": [2.0]}), verbose=0)


def test_dataframe_with_text_column_is_refused_by_name():
    model = Sequential([keras.Input(shape=(2,)), Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(TableError) as error:
        model.predict(pd.DataFrame({"a": [1.0], "city": ["Oslo"]}), verbose=0)
    assert str(error.value) == (
        "the DataFrame: the columns ['city'] are categorical (text); encode them (StringLookup, "
        "one-hot) or drop them before using the table as numbers"
    )


def test_breast_cancer_dataframe_trains_to_95_percent():
    datasets = pytest.importorskip("sklearn.datasets")
    data = datasets.load_breast_cancer(as_frame=True)
    frame = data.frame
    table = from_frame(frame)
    target = table.target("target")
    assert target.task == "binary"
    features = frame.drop(columns=["target"])
    mean, std = features.mean(), features.std()
    scaled = (features - mean) / std
    rng = np.random.default_rng(0)
    order = rng.permutation(len(frame))
    train, test = order[:450], order[450:]
    keras.utils.set_random_seed(0)
    model = Sequential(
        [keras.Input(shape=(30,)), Dense(16, activation="relu"), Dense(1, activation="sigmoid")]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(scaled.iloc[train], frame["target"].iloc[train], epochs=30, batch_size=32, verbose=0)
    results = model.evaluate(
        scaled.iloc[test], frame["target"].iloc[test], verbose=0, return_dict=True
    )
    assert results["accuracy"] >= 0.95
