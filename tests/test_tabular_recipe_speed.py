"""The tabular recipe's speed and accuracy changes: a one-hot encoding of few-valued numeric
columns (FeatureSpace.float_robust(one_hot_values=...)), the StringLookup fast path (the same
indices as the general path), and epochs/patience scaled to the table (training.budget)."""

from __future__ import annotations

import numpy as np
import pytest

from multilayer.engine.layers import Concatenate, Discretization, RobustScaling, StringLookup
from multilayer.models.functional import Model
from multilayer.models.saving import load_model
from multilayer.recipes import get_recipe
from multilayer.tabular import training
from multilayer.utils import FeatureSpace


def _hours(n: int = 300, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    hour = rng.integers(0, 24, n).astype(np.float64)
    hour[:5] = np.nan
    return {
        "hour": hour,
        "flag": rng.integers(0, 2, n).astype(np.float64),  # two values: no one-hot
        "temp": rng.normal(15, 5, n),  # many values: no one-hot
    }


def test_few_valued_numeric_columns_get_a_one_hot_of_their_value():
    kinds = {"hour": "numeric", "flag": "numeric", "temp": "numeric"}
    numeric = FeatureSpace.float_robust(one_hot_values=32)
    space = FeatureSpace.from_kinds(kinds, numeric=numeric).adapt(_hours())
    model = Model(space.get_inputs(), space.get_encoded_features())
    discretizations = [layer for layer in model.layers if isinstance(layer, Discretization)]
    assert len(discretizations) == 1
    # halfway between the hours 0..23, on the (unclipped) robust scale the layer reads
    stats = space.statistics("hour")
    scale = 1 / (stats["q75"] - stats["q25"])
    expected = [(k + 0.5 - stats["median"]) * scale for k in range(23)]
    assert discretizations[0].bin_boundaries == pytest.approx(expected, rel=1e-12)
    # hour: scaled value + missing indicator + 24 one-hot columns; flag and temp: 1 each
    assert space.encoded_size() == 2 + 24 + 1 + 1
    hours = np.array([0.0, 7.0, 23.0, 99.0, np.nan, 6.9])
    rows = {"hour": hours, "flag": np.zeros(6), "temp": np.zeros(6)}
    out = model.predict(rows, verbose=0)
    one_hot = out[:, 2:26]
    assert one_hot.sum(axis=1).tolist() == [1.0] * 6
    median = int(stats["median"])
    # above the range: the last; missing: the median's (the indicator, column 1, says so)
    assert one_hot.argmax(axis=1).tolist() == [0, 7, 23, 23, median, 7]
    assert out[:, 1].tolist() == [0, 0, 0, 0, 1, 0]
    # off by default: the same columns give only the robust scaling
    plain = FeatureSpace.from_kinds(kinds).adapt(_hours())
    assert plain.encoded_size() == 2 + 1 + 1


def test_distinct_values_are_tracked_in_one_pass_and_dropped_beyond_the_bound():
    data = _hours(600)
    whole = FeatureSpace({"hour": FeatureSpace.float_robust(one_hot_values=32)}).adapt(data)
    batches = [{"hour": data["hour"][i : i + 50]} for i in range(0, 600, 50)]
    streamed = FeatureSpace({"hour": FeatureSpace.float_robust(one_hot_values=32)})
    streamed.adapt(batches)
    assert whole.encoded_size() == streamed.encoded_size() == 26
    tenths = {"x": np.arange(100, dtype=np.float64) % 20 / 10}  # 20 values, not whole
    space = FeatureSpace({"x": FeatureSpace.float_robust(one_hot_values=32)}).adapt(tenths)
    assert space.encoded_size() == 1
    many = {"x": np.arange(100, dtype=np.float64) % 65}  # 65 values: more than DISTINCT_MAX
    space = FeatureSpace({"x": FeatureSpace.float_robust(one_hot_values=64)}).adapt(many)
    assert space.encoded_size() == 1


def test_no_one_hot_of_values_when_many_columns_qualify():
    rng = np.random.default_rng(0)
    pixels = {f"p{k}": rng.integers(0, 17, 200).astype(np.float64) for k in range(9)}
    numeric = FeatureSpace.float_robust(one_hot_values=32)
    nine = FeatureSpace({k: numeric for k in pixels}).adapt(pixels)
    assert nine.encoded_size() == 9  # 9 > ONE_HOT_VALUES_COLUMNS: small counts, not codes
    eight = FeatureSpace({k: numeric for k in list(pixels)[:8]}).adapt(pixels)
    assert eight.encoded_size() == 8 * (1 + 17)


def test_a_model_with_the_one_hot_round_trips_exactly(tmp_path):
    kinds = {"hour": "numeric", "flag": "numeric", "temp": "numeric"}
    numeric = FeatureSpace.float_robust(one_hot_values=32)
    space = FeatureSpace.from_kinds(kinds, numeric=numeric).adapt(_hours())
    model = Model(space.get_inputs(), space.get_encoded_features())
    assert any(isinstance(layer, Concatenate) for layer in model.layers)
    assert any(isinstance(layer, RobustScaling) for layer in model.layers)
    model.save(tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    rows = _hours(40, seed=3)
    assert np.array_equal(loaded.predict(rows, verbose=0), model.predict(rows, verbose=0))


def test_string_lookup_fast_path_gives_the_general_paths_indices():
    layer = StringLookup(vocabulary=["a", "b", "c"])
    known = np.array(["c", "a", "b", "a"], dtype=object)
    assert layer.lookup(known).tolist() == [3, 1, 2, 1]
    assert layer.lookup(known.astype(str)).tolist() == [3, 1, 2, 1]  # the general path
    mixed = np.array(["c", None, "zzz", b"a", np.str_("b")], dtype=object)
    assert layer.lookup(mixed).tolist() == [3, 0, 0, 1, 2]  # falls back: same answer
    with pytest.raises(TypeError, match="expects strings"):  # as the general path
        layer.lookup(np.array(["a", 3], dtype=object))
    masked = StringLookup(vocabulary=["a", "b"], mask_token="")
    assert masked.lookup(np.array(["b", "", "a"], dtype=object)).tolist() == [3, 0, 2]


def test_budget_scales_epochs_and_patience_to_the_table():
    recipe = get_recipe("tabular").with_overrides(
        epochs=100, extra={"patience": 30, "max_steps": 1500, "patience_fraction": 0.3}
    )
    small = training.budget(recipe, steps_per_epoch=4)  # 400 steps: within the budget
    assert (small.epochs, small.extra["patience"]) == (100, 30)
    large = training.budget(recipe, steps_per_epoch=50)  # 30 epochs of 50 steps
    assert (large.epochs, large.extra["patience"]) == (30, 9)
    huge = training.budget(recipe, steps_per_epoch=10_000)  # at least min_epochs (10)
    assert (huge.epochs, huge.extra["patience"]) == (10, 5)
    kept = training.budget(recipe, steps_per_epoch=50, fixed_epochs=True, fixed_patience=True)
    assert (kept.epochs, kept.extra["patience"]) == (100, 30)
    plain = get_recipe("tabular").with_overrides(extra={"patience": 30})
    assert training.budget(plain, steps_per_epoch=10_000) is plain


def test_the_one_hot_of_few_values_exports_to_onnx_and_agrees():
    ort = pytest.importorskip("onnxruntime")
    from multilayer.engine.layers import Dense
    from multilayer.export.onnx import to_onnx

    kinds = {"hour": "numeric", "flag": "numeric", "temp": "numeric"}
    numeric = FeatureSpace.float_robust(one_hot_values=32)
    space = FeatureSpace.from_kinds(kinds, numeric=numeric).adapt(_hours())
    model = Model(space.get_inputs(), Dense(2, activation="softmax")(space.get_encoded_features()))
    rows = _hours(50, seed=4)  # NaN hours in the first 5 rows
    expected = model.predict({k: v.reshape(-1, 1) for k, v in rows.items()}, verbose=0)
    session = ort.InferenceSession(
        to_onnx(model).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    feeds = {k: v.reshape(-1, 1).astype(np.float32) for k, v in rows.items()}
    probabilities = session.run(None, feeds)[0]
    np.testing.assert_allclose(probabilities, expected, rtol=1e-5, atol=1e-6)
