"""Issue 11, item 2: Embedding and the Keras preprocessing layers IntegerLookup, StringLookup,
CategoryEncoding and Discretization: Keras' documented outputs, adapt, unseen values to the
out-of-vocabulary bucket, the exact Embedding gradient, fit/predict and an exact save/load
round trip, and hostile configurations refused before anything is allocated."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy as st_numpy

from multilayer.engine.layers import (
    CategoryEncoding,
    Dense,
    Discretization,
    Embedding,
    Flatten,
    Hashing,
    Input,
    IntegerLookup,
    StringLookup,
)
from multilayer.errors import ModelFileError
from multilayer.models import file_checks
from multilayer.models.saving import load_model, read_file
from multilayer.models.sequential import Sequential


def _built(layer, shape):
    layer.build_for(shape)
    return layer


# -- Keras' documented examples (keras.io/api/layers/preprocessing_layers) ----------------------
def test_integer_lookup_known_vocabulary():
    layer = _built(IntegerLookup(vocabulary=[12, 36, 1138, 42]), (3,))
    out = layer.forward(np.array([[12, 1138, 42], [42, 1000, 36]]))
    assert out.dtype == np.int64
    assert out.tolist() == [[1, 3, 4], [4, 0, 2]]
    assert layer.get_vocabulary() == [-1, 12, 36, 1138, 42]
    assert layer.vocabulary_size() == 5


def test_integer_lookup_several_oov_buckets_use_floormod():
    layer = _built(IntegerLookup(vocabulary=[12, 36, 1138, 42], num_oov_indices=2), (3,))
    out = layer.forward(np.array([[12, 1138, 42], [37, 1000, 36]]))
    assert out.tolist() == [[2, 4, 5], [1, 0, 3]]


def test_integer_lookup_mask_token_is_index_zero():
    layer = _built(IntegerLookup(vocabulary=[12, 36], mask_token=0), (3,))
    assert layer.forward(np.array([[12, 0, 99]])).tolist() == [[2, 0, 1]]
    assert layer.get_vocabulary() == [0, -1, 12, 36]


def test_integer_lookup_adapt_sorts_by_count_then_token_descending():
    layer = IntegerLookup()
    layer.adapt(np.array([[12, 1138, 42], [42, 1000, 36]]))
    assert layer.get_vocabulary() == [-1, 42, 1138, 1000, 36, 12]


def test_integer_lookup_adapt_respects_max_tokens():
    layer = IntegerLookup(max_tokens=3)
    layer.adapt(np.array([5, 5, 5, 7, 7, 9]))
    assert layer.get_vocabulary() == [-1, 5, 7]


def test_string_lookup_known_vocabulary_and_adapt():
    layer = _built(StringLookup(vocabulary=["a", "b", "c", "d"]), (3,))
    data = np.array([["a", "c", "d"], ["d", "z", "b"]])
    assert layer.forward(data).tolist() == [[1, 3, 4], [4, 0, 2]]
    adapted = StringLookup()
    adapted.adapt(data)
    assert adapted.get_vocabulary() == ["[UNK]", "d", "z", "c", "b", "a"]
    as_objects = _built(StringLookup(vocabulary=["a", "b"]), (2,))
    assert as_objects.forward(np.array([["b", b"a"]], dtype=object)).tolist() == [[2, 1]]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("multi_hot", [[0, 1, 0, 1, 1], [1, 0, 1, 0, 1]]),
        ("count", [[0, 1, 0, 1, 2], [2, 0, 1, 0, 1]]),
    ],
)
def test_string_lookup_multi_hot_and_count(mode, expected):
    layer = _built(StringLookup(vocabulary=["a", "b", "c", "d"], output_mode=mode), (4,))
    out = layer.forward(np.array([["a", "c", "d", "d"], ["d", "z", "b", "z"]]))
    assert layer.output_shape == (5,)
    assert out.tolist() == expected


def test_string_lookup_one_hot():
    layer = _built(StringLookup(vocabulary=["a", "b", "c", "d"], output_mode="one_hot"), (1,))
    out = layer.forward(np.array([["a"], ["b"], ["c"], ["d"], ["z"]]))
    assert layer.output_shape == (5,)
    assert out.tolist() == np.eye(5)[[1, 2, 3, 4, 0]].tolist()


@pytest.mark.parametrize(
    ("mode", "shape", "data", "expected"),
    [
        ("one_hot", (), [3, 2, 0, 1], np.eye(4)[[3, 2, 0, 1]].tolist()),
        (
            "multi_hot",
            (2,),
            [[0, 1], [0, 0], [1, 2], [3, 1]],
            [[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 1, 0], [0, 1, 0, 1]],
        ),
        (
            "count",
            (2,),
            [[0, 1], [0, 0], [1, 2], [3, 1]],
            [[1, 1, 0, 0], [2, 0, 0, 0], [0, 1, 1, 0], [0, 1, 0, 1]],
        ),
    ],
)
def test_category_encoding(mode, shape, data, expected):
    layer = _built(CategoryEncoding(num_tokens=4, output_mode=mode), shape)
    assert layer.forward(np.array(data, dtype=np.float32)).tolist() == expected


def test_category_encoding_one_hot_of_several_columns_adds_an_axis():
    layer = _built(CategoryEncoding(num_tokens=3, output_mode="one_hot"), (2,))
    assert layer.output_shape == (2, 3)
    assert layer.forward(np.array([[0, 2]])).tolist() == [[[1, 0, 0], [0, 0, 1]]]


def test_category_encoding_out_of_range_is_a_clear_error():
    layer = _built(CategoryEncoding(num_tokens=4, name="enc"), (2,))
    with pytest.raises(ValueError) as info:
        layer.forward(np.array([[0, 4]]))
    assert str(info.value) == "CategoryEncoding layer 'enc': value 4 is outside [0, 4) (depth 4)"
    with pytest.raises(ValueError) as info:
        layer.forward(np.array([[0, 1.5]]))
    assert str(info.value) == (
        "CategoryEncoding layer 'enc': expects integer indices, got non-integer values"
    )


def test_discretization_boundaries_and_adapt():
    data = np.array([[-1.5, 1.0, 3.4, 0.5], [0.0, 3.0, 1.3, 0.0]])
    layer = _built(Discretization(bin_boundaries=[0.0, 1.0, 2.0]), (4,))
    assert layer.forward(data).tolist() == [[0, 2, 3, 1], [1, 3, 2, 1]]
    adapted = Discretization(num_bins=4)
    adapted.adapt(data)
    _built(adapted, (4,))
    assert adapted.forward(data).tolist() == [[0, 2, 3, 2], [1, 3, 3, 1]]  # Keras' docs
    hot = _built(Discretization(bin_boundaries=[0.0, 1.0], output_mode="one_hot"), (1,))
    assert hot.forward(np.array([[-1.0], [0.5], [7.0]])).tolist() == np.eye(3).tolist()


def test_hashing_matches_keras_documented_buckets():
    pytest.importorskip("farmhash")
    layer = _built(Hashing(num_bins=3), (1,))
    letters = np.array([["A"], ["B"], ["C"], ["D"], ["E"]])
    assert layer.forward(letters).tolist() == [[1], [0], [1], [1], [2]]
    # tf.strings.to_hash_bucket_fast(["Hello", "TensorFlow", "2.x"], 3) in TensorFlow's docs
    assert layer.hash(np.array(["Hello", "TensorFlow", "2.x"])).tolist() == [0, 2, 2]
    masked = Hashing(num_bins=3, mask_value="")
    assert masked.hash(np.array([["A"], ["B"], [""], ["C"], ["D"]])).tolist() == [
        [1],
        [1],
        [0],
        [2],
        [2],
    ]
    # integers hash as their decimal text; whole-number floats (a model's input) as integers
    assert np.array_equal(
        layer.hash(np.array([[1], [2], [3]])), layer.hash(np.array(["1", "2", "3"]))[:, None]
    )
    assert np.array_equal(layer.hash(np.array([[7.0]])), layer.hash(np.array([[7]])))
    hot = _built(Hashing(num_bins=3, output_mode="one_hot"), (1,))
    assert hot.forward(letters).tolist() == np.eye(3)[[1, 0, 1, 1, 2]].tolist()


def test_hashing_in_a_model_round_trips(tmp_path):
    pytest.importorskip("farmhash")
    x = np.arange(40, dtype=np.float32).reshape(20, 2)
    model = Sequential([Input(shape=(2,)), Hashing(16, output_mode="multi_hot"), Dense(1)], seed=0)
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, x[:, :1] % 3, epochs=1, verbose=0)
    path = tmp_path / "hashing.safetensors"
    model.save(path)
    assert np.array_equal(load_model(path).predict(x, verbose=0), model.predict(x, verbose=0))


def test_keras_outputs_match_when_keras_is_installed():
    keras = pytest.importorskip("keras")
    data = np.array([[12, 1138, 42], [37, 1000, 36]])
    theirs = keras.layers.IntegerLookup(vocabulary=[12, 36, 1138, 42], num_oov_indices=2)(data)
    ours = _built(IntegerLookup(vocabulary=[12, 36, 1138, 42], num_oov_indices=2), (3,))
    assert np.array_equal(np.asarray(theirs), ours.forward(data))
    values = np.array([[-1.5, 1.0, 3.4, 0.5]])
    theirs = keras.layers.Discretization(bin_boundaries=[0.0, 1.0, 2.0])(values)
    ours_d = _built(Discretization(bin_boundaries=[0.0, 1.0, 2.0]), (4,))
    assert np.array_equal(np.asarray(theirs), ours_d.forward(values))


# -- bad arguments: exact messages -------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: Embedding(10, 4, mask_zero=True),
            ValueError,
            "Embedding: mask_zero=True is not supported (multilayer has no masks); reserve "
            "index 0 yourself or leave mask_zero=False",
        ),
        (
            lambda: Embedding(0, 4),
            ValueError,
            "Embedding: input_dim must be a positive integer, got 0",
        ),
        (
            lambda: IntegerLookup(output_mode="tf_idf"),
            ValueError,
            "IntegerLookup: output_mode='tf_idf' is not supported; use one of "
            "['int', 'one_hot', 'multi_hot', 'count']",
        ),
        (
            lambda: IntegerLookup(vocabulary=[1, 2, 1]),
            ValueError,
            "IntegerLookup: the vocabulary has repeated tokens",
        ),
        (
            lambda: IntegerLookup(vocabulary=[1, -1]),
            ValueError,
            "IntegerLookup: the vocabulary contains the oov_token -1",
        ),
        (
            lambda: StringLookup(num_oov_indices=2),
            ValueError,
            "StringLookup: num_oov_indices > 1 is not supported (Keras hashes unseen strings "
            "into the buckets with FarmHash, which multilayer does not reproduce)",
        ),
        (
            lambda: StringLookup(vocabulary=["a", 3]),
            ValueError,
            "StringLookup: vocabulary must hold strings, got 3",
        ),
        (
            lambda: IntegerLookup(max_tokens=2**40),
            ValueError,
            f"IntegerLookup: max_tokens={2**40} is more than the limit of 1000000",
        ),
        (
            lambda: CategoryEncoding(num_tokens=2**40),
            ValueError,
            f"CategoryEncoding: num_tokens={2**40} is more than the limit of 1000000",
        ),
        (
            lambda: CategoryEncoding(num_tokens=3, sparse=True),
            ValueError,
            "CategoryEncoding: sparse=True is not supported (outputs are dense arrays)",
        ),
        (
            lambda: Hashing(3, salt=133),
            ValueError,
            "Hashing: salt is not supported (Keras then hashes with SipHash, which multilayer "
            "does not reproduce); leave salt=None",
        ),
        (
            lambda: Hashing(2**40),
            ValueError,
            f"Hashing: num_bins={2**40} is more than the limit of 1000000",
        ),
        (
            lambda: Discretization(),
            ValueError,
            "Discretization: give exactly one of bin_boundaries and num_bins",
        ),
        (
            lambda: Discretization(bin_boundaries=[1.0, 0.0]),
            ValueError,
            "Discretization: bin_boundaries must be finite and non-decreasing",
        ),
    ],
)
def test_bad_arguments(make, error, message):
    with pytest.raises(error) as info:
        make()
    assert str(info.value) == message


def test_string_lookup_without_oov_names_the_unknown_token():
    layer = _built(StringLookup(vocabulary=["a"], num_oov_indices=0, name="s"), (1,))
    with pytest.raises(ValueError) as info:
        layer.forward(np.array([["b"]]))
    assert (
        str(info.value)
        == "StringLookup layer 's': 'b' is not in the vocabulary and num_oov_indices=0"
    )


# -- Embedding: exact backward -----------------------------------------------------------------
def test_embedding_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    layer = _built(Embedding(5, 3), (4,))
    table = rng.normal(size=(5, 3))
    grad = np.zeros_like(table)
    layer.bind_parameter("embeddings", table, grad)
    x = np.array([[0, 2, 2, 4], [2, 1, 0, 0]], dtype=np.float64)  # repeats accumulate
    upstream = rng.normal(size=(2, 4, 3))

    def loss() -> float:
        return float(np.sum(layer.forward(x) * upstream))

    loss()
    dx = layer.backward(upstream.copy())
    assert dx is not None and dx.shape == (2, 4) and not np.any(dx)
    numeric = np.zeros_like(table)
    for index in np.ndindex(table.shape):
        saved = table[index]
        table[index] = saved + 1e-6
        plus = loss()
        table[index] = saved - 1e-6
        minus = loss()
        table[index] = saved
        numeric[index] = (plus - minus) / 2e-6
    np.testing.assert_allclose(grad, numeric, rtol=1e-7, atol=1e-8)
    assert not np.any(grad[3])  # index 3 is never looked up


def test_embedding_out_of_range_index_is_a_clear_error():
    layer = _built(Embedding(5, 2, name="emb"), (2,))
    layer.bind_parameter("embeddings", np.zeros((5, 2)), np.zeros((5, 2)))
    with pytest.raises(ValueError) as info:
        layer.forward(np.array([[1, 5]]))
    assert str(info.value) == (
        "Embedding layer 'emb': index 5 is outside [0, 5) (input_dim=5); put a lookup layer "
        "with an out-of-vocabulary bucket before it"
    )


# -- in a model: fit, predict (unseen values), save/load exact ----------------------------------
def _model(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 20, size=(120, 3)).astype(np.float32)
    y = (x.sum(axis=1) > 30).astype(np.float32)
    lookup = IntegerLookup(num_oov_indices=2)
    lookup.adapt(x[:60])
    model = Sequential(
        [
            Input(shape=(3,)),
            lookup,
            Embedding(lookup.vocabulary_size(), 4),
            Flatten(),
            Dense(1, activation="sigmoid"),
        ],
        seed=seed,
    )
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model, x, y


def test_lookup_and_embedding_train_predict_and_round_trip(tmp_path):
    model, x, y = _model()
    before = model.get_weights()[0].copy()
    model.fit(x, y, epochs=3, verbose=0)
    assert not np.array_equal(model.get_weights()[0], before)  # the table learned
    unseen = x + 1000  # every value out of the vocabulary: OOV buckets, never a crash
    predictions = model.predict(unseen, verbose=0)
    assert predictions.shape == (120, 1) and np.all(np.isfinite(predictions))
    path = tmp_path / "model.safetensors"
    model.save(path)
    loaded = load_model(path)
    assert loaded.layers[1].get_vocabulary() == model.layers[1].get_vocabulary()
    for data in (x, unseen):
        assert np.array_equal(loaded.predict(data, verbose=0), model.predict(data, verbose=0))


def test_encoding_layers_in_a_model_round_trip(tmp_path):
    disc = Discretization(num_bins=3, output_mode="one_hot")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 1)).astype(np.float32)
    disc.adapt(x)
    model = Sequential([Input(shape=(1,)), disc, Dense(2, activation="softmax")], seed=1)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(x, (x[:, 0] > 0).astype(np.int64), epochs=1, verbose=0)
    path = tmp_path / "disc.safetensors"
    model.save(path)
    loaded = load_model(path)
    assert loaded.layers[1].bin_boundaries == disc.bin_boundaries
    assert np.array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_string_inputs_train_and_predict_through_a_lookup_first_layer():
    lookup = StringLookup(vocabulary=["a", "b"], output_mode="one_hot")
    model = Sequential([Input(shape=(1,)), lookup, Dense(1)], seed=0)
    model.compile(optimizer="sgd", loss="mse")
    x = np.array([["a"], ["b"], ["a"], ["b"]])
    model.fit(x, np.array([0.0, 1.0, 0.0, 1.0]), epochs=2, verbose=0)
    # object arrays with unseen values and None: the out-of-vocabulary bucket, like "zzz"
    rows = np.array([["a"], ["zzz"], [None]], dtype=object)
    out = model.predict(rows, verbose=0)
    assert out[1, 0] == out[2, 0] == model.predict(np.array([["[UNK]"]]), verbose=0)[0, 0]
    assert out[0, 0] == model.predict(np.array([["a"]]), verbose=0)[0, 0]
    assert np.isfinite(model.evaluate(x, np.zeros(4), verbose=0))


def test_text_still_refused_where_a_numeric_layer_reads_it():
    model = Sequential([Input(shape=(1,)), Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(TypeError) as info:
        model.fit(np.array([["a"], ["b"]]), np.zeros(2), verbose=0)
    assert str(info.value) == "x must hold numbers, got an array of dtype <U1"
    with pytest.raises(TypeError) as info:
        model.predict(np.array([["a"]], dtype=object), verbose=0)
    assert str(info.value) == "x must hold numbers, got an array of dtype object"


def test_dict_of_raw_columns_into_a_functional_model(tmp_path):
    from multilayer.engine.layers import Concatenate
    from multilayer.models.functional import Model

    city = Input(shape=(1,), name="city")
    rooms = Input(shape=(1,), name="rooms")
    size = Input(shape=(1,), name="size")
    encoded = Concatenate()(
        [
            StringLookup(vocabulary=["paris", "rome"], output_mode="one_hot")(city),
            IntegerLookup(vocabulary=[1, 2, 3], output_mode="one_hot")(rooms),
            size,
        ]
    )
    model = Model([city, rooms, size], Dense(1)(encoded))
    model.compile(optimizer="adam", loss="mse")
    data = {
        "city": np.array(["paris", "rome", None, "oslo"], dtype=object),
        "rooms": np.array([1.0, np.nan, 3.0, 7.0]),
        "size": np.array([10.0, 20.0, 30.0, 40.0]),
    }
    model.fit(data, np.arange(4.0), epochs=2, verbose=0)
    before = model.predict(data, verbose=0)
    assert before.shape == (4, 1) and np.all(np.isfinite(before))
    # NaN is refused where it reaches a numeric layer, by input name
    with pytest.raises(ValueError, match=r"^x\[2\] contains NaN or infinite values in 1 row"):
        model.predict(data | {"size": np.array([1.0, 2.0, np.nan, 4.0])}, verbose=0)
    path = tmp_path / "m.safetensors"
    model.save(path)
    assert np.array_equal(load_model(path).predict(data, verbose=0), before)


def test_missing_values_go_to_the_oov_index():
    lookup = IntegerLookup(vocabulary=[5, 6])
    assert lookup.lookup(np.array([5.0, np.nan, 6.0, 9.0])).tolist() == [1, 0, 2, 0]
    strict = StringLookup(vocabulary=["a"], num_oov_indices=0)
    with pytest.raises(ValueError) as info:
        strict.lookup(np.array(["a", None], dtype=object))
    assert str(info.value) == (
        f"StringLookup layer {strict.name!r}: a missing value (None or NaN) and num_oov_indices=0"
    )


# -- hostile model files -----------------------------------------------------------------------
def _edited(path: Path, edit) -> Path:
    metadata, tensors = read_file(path)
    config = json.loads(metadata["model"])
    edit(config)
    metadata["model"] = json.dumps(config)
    out = path.with_name("edited.safetensors")
    out.write_bytes(st_numpy.save(tensors, metadata=metadata))
    return out


def _peak(call) -> int:
    tracemalloc.start()
    try:
        call()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize(
    ("layer", "change", "message"),
    [
        (
            2,
            {"input_dim": 2**40},
            f"the architecture declares more than {file_checks.MAX_PARAMETERS} parameters",
        ),
        (1, {"max_tokens": 2**40}, f"IntegerLookup: max_tokens={2**40} is more than the limit"),
        (1, {"vocabulary": [1, 1]}, "IntegerLookup: the vocabulary has repeated tokens"),
        (1, {"vocabulary": ["x"]}, "IntegerLookup: vocabulary must hold integers, got 'x'"),
    ],
)
def test_hostile_configs_are_refused_before_allocating(tmp_path, layer, change, message):
    model, x, y = _model()
    path = tmp_path / "model.safetensors"
    model.save(path)

    def edit(config):
        config["layers"][layer]["config"].update(change)

    bad = _edited(path, edit)

    def load():
        with pytest.raises(ModelFileError) as info:
            load_model(bad)
        assert message in info.value.args[0]
        assert info.value.args[0].startswith(f"{bad}: invalid model configuration: ")

    assert _peak(load) < 2**20
