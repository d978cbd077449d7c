"""Issue 11 item 2: RobustScaling and FeatureSpace: statistics against NumPy, one streaming
pass equal to a whole-table pass, unseen categories and missing values, exact save/load."""

from __future__ import annotations

import numpy as np
import pytest

from multilayer.data import tables
from multilayer.engine.layers import Dense, Embedding, Input, RobustScaling, StringLookup
from multilayer.models.functional import Model
from multilayer.models.saving import load_model
from multilayer.models.sequential import Sequential
from multilayer.utils import FeatureSpace


def frame(n: int = 200, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 12, n)
    age[rng.random(n) < 0.1] = np.nan
    city = rng.choice(["paris", "rome", "oslo"], n).astype(object)
    city[rng.random(n) < 0.05] = None
    shop = np.array([f"s{k}" for k in rng.integers(0, 40, n)], dtype=object)
    income = rng.lognormal(10, 1, n)
    return {"age": age, "city": city, "shop": shop, "income": income}


KINDS = {"age": "numeric", "city": "categorical", "shop": "categorical", "income": "numeric"}


# -- RobustScaling ------------------------------------------------------------------------------
def test_robust_statistics_are_realmlps():
    x = np.array(
        [[1.0, 5.0, 7.0], [3.0, 5.0, 7.0], [5.0, 5.0, 7.0], [8.0, 5.0, 7.0], [100.0, 9.0, 7.0]]
    )
    center, scale = RobustScaling.statistics(x)
    q25, q50, q75 = np.quantile(x[:, 0], [0.25, 0.5, 0.75])
    assert center == [q50, 5.0, 7.0]
    assert scale[0] == 1.0 / (q75 - q25)
    assert scale[1] == 2.0 / (9.0 - 5.0)  # equal quartiles: 2 / (max - min)
    assert scale[2] == 0.0  # constant


def test_robust_forward_is_the_formula_and_nan_is_the_median():
    layer = RobustScaling(
        center=[1.0, -2.0], scale=[0.5, 2.0], clip=3.0, missing_indicator=[False, True]
    )
    model = Sequential([Input(shape=(2,)), layer], dtype="float64")
    x = np.array([[3.0, np.nan], [101.0, -2.0], [-5.0, 0.5]])
    z = (np.nan_to_num(x, nan=0.0) - [1.0, -2.0]) * [0.5, 2.0]
    z[0, 1] = 0.0
    expected = z / np.sqrt(1 + (z / 3.0) ** 2)
    out = model.predict(x, verbose=0)
    assert out.shape == (3, 3)
    np.testing.assert_allclose(out[:, :2], expected, rtol=1e-12)
    assert out[:, 2].tolist() == [1.0, 0.0, 0.0]
    assert np.all(np.abs(out[:, :2]) < 3.0)


def test_robust_gradient_matches_finite_differences():
    layer = RobustScaling(center=[0.5, 1.0], scale=[1.5, 0.7], clip=2.0)
    layer.build((2,))
    layer.dtype = np.dtype("float64")
    x = np.array([[0.3, 4.0], [2.0, -1.0], [-3.0, 1.0]])
    g = np.array([[1.0, -2.0], [0.5, 0.25], [2.0, 1.0]])
    layer.forward(x)
    analytic = layer.backward(g)
    h = 1e-6
    numeric = np.zeros_like(x)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            up, down = x.copy(), x.copy()
            up[i, j] += h
            down[i, j] -= h
            numeric[i, j] = np.sum(g * (layer.forward(up) - layer.forward(down))) / (2 * h)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"center": [1.0], "scale": [1.0, 2.0]},
            "RobustScaling: center and scale must have the same length, got 1 and 2",
        ),
        ({"center": [float("nan")]}, "RobustScaling: center must hold finite numbers, got nan"),
        ({"scale": ["a"]}, "RobustScaling: scale must hold numbers, got 'a'"),
        ({"clip": 0}, "RobustScaling: clip must be a positive number or None, got 0"),
        (
            {"missing_indicator": [True, False]},
            "RobustScaling: missing_indicator has 2 flags for 1 features",
        ),
        (
            {"missing_indicator": "yes"},
            "RobustScaling: missing_indicator must be a boolean or a list of booleans",
        ),
    ],
)
def test_robust_refuses_bad_configs(kwargs, message):
    with pytest.raises(ValueError) as info:
        RobustScaling(**kwargs)
    assert str(info.value) == message


# -- FeatureSpace statistics ---------------------------------------------------------------------
def test_statistics_match_numpy():
    data = frame()
    space = FeatureSpace.from_kinds(KINDS).adapt(data)
    age = data["age"][~np.isnan(data["age"])]
    stats = space.statistics("age")
    assert stats["count"] == age.size and stats["missing"] == int(np.isnan(data["age"]).sum())
    assert stats["min"] == age.min() and stats["max"] == age.max()
    np.testing.assert_allclose(stats["mean"], age.mean(), rtol=1e-12)
    np.testing.assert_allclose(stats["variance"], age.var(), rtol=1e-12)
    assert [stats["q25"], stats["median"], stats["q75"]] == list(
        np.quantile(age, [0.25, 0.5, 0.75])
    )
    city = space.statistics("city")
    present = [v for v in data["city"] if v is not None]
    assert city["missing"] == len(data["city"]) - len(present)
    values, counts = np.unique(np.array(present, dtype=object), return_counts=True)
    assert city["counts"] == dict(zip(values.tolist(), counts.tolist(), strict=True))
    assert city["vocabulary"] == sorted(city["counts"], key=lambda v: (-city["counts"][v], v))


def _write_parquet(path, data):
    import pandas as pd

    pd.DataFrame(data).to_parquet(path, index=False)


def test_streaming_adapt_equals_whole_table_adapt(tmp_path):
    data = frame(n=500)
    path = tmp_path / "t.parquet"
    _write_parquet(path, data)
    # one-hot everywhere: an embedding's random initial vectors would differ
    whole = FeatureSpace.from_kinds(KINDS, one_hot_max=100).adapt(tables.read_table(path))
    batches = list(tables.iter_batches(path, batch_rows=64))
    assert len(batches) > 1
    streamed = FeatureSpace.from_kinds(KINDS, one_hot_max=100).adapt(iter(batches))
    for name in KINDS:
        assert streamed.statistics(name) == whole.statistics(name)
    # and the models they build compute the same thing
    table = tables.read_table(path)
    rows = {name: table.column(name)[:50] for name in KINDS}
    outputs = []
    for space in (whole, streamed):
        model = Model(space.get_inputs(), space.get_encoded_features())
        outputs.append(model.predict(rows, verbose=0))
    assert np.array_equal(outputs[0], outputs[1])


def test_memory_is_bounded_by_the_sample_and_the_vocabulary_cap():
    rng = np.random.default_rng(3)
    space = FeatureSpace(
        {"x": "float_robust", "c": "string_categorical"}, sample_size=1000, max_distinct=50
    )
    batches = (
        {
            "x": rng.normal(size=5000),
            "c": np.array([f"v{k}" for k in rng.zipf(1.5, 5000)], dtype=object),
        }
        for _ in range(20)
    )
    space.adapt(batches)
    stats = space._stats  # the sample and the counts themselves
    assert stats["x"].sample.size == 1000 and stats["x"].count == 100_000
    assert len(stats["c"].counts) <= 100 and stats["c"].pruned
    # a uniform sample: the median of a standard normal within a few percent
    assert abs(space.statistics("x")["median"]) < 0.1
    assert space.statistics("c")["vocabulary"][0] == "v1"  # the most frequent survives


def test_auto_encodings_one_hot_small_embedding_large_indicator_only_when_missing():
    space = FeatureSpace.from_kinds(KINDS, one_hot_max=8).adapt(frame())
    model = Model(space.get_inputs(), space.get_encoded_features())
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"RobustScaling", "StringLookup", "Embedding"} <= kinds
    lookups = [layer for layer in model.layers if isinstance(layer, StringLookup)]
    assert sorted(layer.output_mode for layer in lookups) == ["int", "one_hot"]
    embedding = next(layer for layer in model.layers if isinstance(layer, Embedding))
    assert embedding.input_dim == 41  # 40 shops + the OOV index
    widths = {
        layer.inbound_node.inputs[0].layer.name: layer.output_shape
        for layer in model.layers
        if isinstance(layer, RobustScaling)
    }
    assert widths == {"age": (2,), "income": (1,)}  # age has missing values: + indicator


# -- unseen categories, missing values, save/load ----------------------------------------------------
def _trained(seed: int = 0) -> tuple[Model, dict[str, np.ndarray]]:
    data = frame(seed=seed)
    space = FeatureSpace.from_kinds(KINDS, one_hot_max=8).adapt(data)
    model = Model(
        space.get_inputs(),
        Dense(1)(Dense(8, activation="relu")(space.get_encoded_features())),
        seed=1,
    )
    model.compile(optimizer="adam", loss="mse")
    y = np.nan_to_num(data["age"], nan=40.0) / 40 + (data["shop"] == "s3")
    model.fit(data, y, epochs=3, batch_size=32, verbose=0)
    return model, data


HOSTILE_ROWS = {
    "age": np.array([np.nan, 30.0, 1e9, -1e9]),
    "city": np.array(["madrid", None, "paris", ""], dtype=object),
    "shop": np.array(["never-seen", "s1", None, "s39"], dtype=object),
    "income": np.array([np.nan, 1.0, 2.0, 3.0]),  # no missing value in training
}


def test_unseen_categories_and_nan_never_crash_and_go_to_the_oov_bucket():
    model, _ = _trained()
    out = model.predict(HOSTILE_ROWS, verbose=0)
    assert out.shape == (4, 1) and np.all(np.isfinite(out))
    same = {k: v.copy() for k, v in HOSTILE_ROWS.items()}
    same["city"] = np.array(["[UNK]", "[UNK]", "paris", "[UNK]"], dtype=object)
    same["shop"] = np.array(["[UNK]", "s1", "[UNK]", "s39"], dtype=object)
    assert np.array_equal(model.predict(same, verbose=0), out)


def test_save_load_round_trip_is_exact_on_unseen_categories_and_nans(tmp_path):
    model, data = _trained()
    path = tmp_path / "model.safetensors"
    model.save(path)
    loaded = load_model(path)
    for rows in (HOSTILE_ROWS, data):
        assert np.array_equal(loaded.predict(rows, verbose=0), model.predict(rows, verbose=0))


def test_adapt_errors_are_named():
    with pytest.raises(tables.TableError) as info:
        FeatureSpace.from_kinds({"age": "numeric"}).adapt({"agee": np.ones(3)})
    assert (
        str(info.value)
        == "column 'age' is not in the data; the columns are ['agee']; did you mean 'agee'?"
    )
    with pytest.raises(tables.TableError) as info:
        FeatureSpace.from_kinds({"age": "numeric"}).adapt({"age": np.full(3, np.nan)})
    assert (
        str(info.value)
        == "FeatureSpace.adapt: column 'age' has no values in any of the 3 rows; remove it"
    )
    with pytest.raises(tables.TableError) as info:
        FeatureSpace.from_kinds({"age": "numeric"}).adapt({"age": np.array(["a"], dtype=object)})
    assert str(info.value) == "FeatureSpace: column 'age' (float_robust) must hold numbers"
    with pytest.raises(
        RuntimeError, match=r"^FeatureSpace: call adapt\(\) with the training data first$"
    ):
        FeatureSpace.from_kinds({"age": "numeric"}).get_inputs()
    with pytest.raises(ValueError) as info:
        FeatureSpace({"a": "text"})
    assert str(info.value).startswith("FeatureSpace: unknown feature type 'text'; expected one of")


def test_keras_file_round_trip_is_exact_on_unseen_categories_and_nans(tmp_path):
    model, data = _trained()
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = load_model(path)
    for rows in (HOSTILE_ROWS, data):
        assert np.array_equal(loaded.predict(rows, verbose=0), model.predict(rows, verbose=0))


def _rewrite_keras(path, edit):
    import json
    import zipfile

    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    edit(config)
    members["config.json"] = json.dumps(config).encode()
    out = path.with_name("edited.keras")
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out


@pytest.mark.parametrize(
    "class_name, key, value, message",
    [
        ("RobustScaling", "center", ["x"], "RobustScaling: center must hold numbers, got 'x'"),
        ("RobustScaling", "clip", -1, "clip must be a positive number or None, got -1"),
        ("RobustScaling", "sneaky", 1, "unsupported arguments ['sneaky']"),
        ("StringLookup", "vocabulary", "abc", "vocabulary must be a list written in the file"),
        ("StringLookup", "vocabulary", [1, 2], "StringLookup: vocabulary must hold strings, got 1"),
        ("StringLookup", "invert", True, "invert=True is not supported by multilayer"),
        ("Embedding", "input_dim", 2**40, "input_dim must be a positive integer up to 2**31"),
        ("Embedding", "mask_zero", True, "mask_zero=True is not supported by multilayer"),
    ],
)
def test_hostile_keras_configs_of_table_layers_are_refused(
    tmp_path, class_name, key, value, message
):
    from multilayer.errors import ModelFileError

    model, _ = _trained()
    path = tmp_path / "model.keras"
    model.save(path)

    def edit(config):
        layer = next(e for e in config["config"]["layers"] if e["class_name"] == class_name)
        layer["config"][key] = value

    with pytest.raises(ModelFileError) as info:
        load_model(_rewrite_keras(path, edit))
    assert message in str(info.value)
