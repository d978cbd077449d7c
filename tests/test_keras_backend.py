"""keras.backend, keras.config and keras.random, used the way Keras MLP programs use them."""

from __future__ import annotations

import numpy as np
import pytest

import multilayer as keras
from multilayer.layers import Dense, Dropout, Input


@pytest.fixture(autouse=True)
def _restore_settings():
    yield
    keras.config.set_floatx("float32")
    keras.config.set_epsilon(1e-7)


# -- clear_session ---------------------------------------------------------------------------
def test_clear_session_restarts_generated_layer_names():
    keras.backend.clear_session()
    names = [Dense(10).name for _ in range(3)]
    assert names == ["dense", "dense_1", "dense_2"]
    assert Dense(10).name == "dense_3"
    keras.backend.clear_session()
    assert Dense(10).name == "dense"
    assert Dropout(0.5).name == "dropout"


def test_models_built_in_a_loop_get_the_same_names_after_clear_session():
    # The hyper-parameter search idiom: one fresh model per trial.
    names = []
    for units in (8, 16, 32):
        keras.backend.clear_session()
        model = keras.Sequential(
            [Input(shape=(4,)), Dense(units, activation="relu"), Dense(1, activation="sigmoid")]
        )
        names.append([layer.name for layer in model.layers[1:]])
    assert names == [["dense", "dense_1"]] * 3


def test_get_uid_shares_the_layer_name_counters():
    keras.backend.clear_session()
    Dense(3)
    assert keras.backend.get_uid("dense") == 2
    assert Dense(3).name == "dense_2"
    assert keras.backend.get_uid("my_prefix") == 1
    assert keras.backend.get_uid("my_prefix") == 2
    keras.utils.clear_session()  # Keras exports it from utils too
    assert keras.backend.get_uid("my_prefix") == 1


def test_clear_session_keeps_floatx_and_epsilon_as_keras_does():
    keras.backend.set_floatx("float64")
    keras.backend.set_epsilon(1e-4)
    keras.backend.clear_session(free_memory=False)
    assert keras.backend.floatx() == "float64"
    assert keras.backend.epsilon() == 1e-4


# -- floatx / epsilon / image_data_format ----------------------------------------------------
def test_floatx_defaults_to_float32_and_set_floatx_changes_new_models():
    assert keras.backend.floatx() == "float32"
    assert keras.config.floatx() == "float32"
    keras.config.set_floatx("float64")
    model = keras.Sequential([Input(shape=(3,)), Dense(2)])
    assert model.predict(np.ones((4, 3))).dtype == np.float64
    assert keras.ops.convert_to_tensor([1.5]).dtype == np.float64


def test_set_floatx_refuses_types_the_engine_cannot_train_in():
    with pytest.raises(
        ValueError,
        match=r"set_floatx: dtype must be one of \('float32', 'float64'\), got 'float16'",
    ):
        keras.backend.set_floatx("float16")


def test_epsilon_is_the_clip_of_the_cross_entropy_losses():
    bce = keras.losses.BinaryCrossentropy()
    y_true, y_pred = np.array([[1.0]]), np.array([[0.0]])
    assert keras.backend.epsilon() == 1e-7
    assert bce(y_true, y_pred) == pytest.approx(-np.log(1e-7), rel=1e-6)
    keras.backend.set_epsilon(1e-3)
    assert bce(y_true, y_pred) == pytest.approx(-np.log(1e-3), rel=1e-6)


@pytest.mark.parametrize("value", [0, -1e-7, 0.5, "small", True])
def test_set_epsilon_refuses_values_that_are_not_a_fuzz_factor(value):
    with pytest.raises(ValueError, match="set_epsilon: "):
        keras.backend.set_epsilon(value)


def test_image_data_format_is_channels_last_only():
    assert keras.backend.image_data_format() == "channels_last"
    keras.backend.set_image_data_format("channels_last")
    with pytest.raises(ValueError) as error:
        keras.backend.set_image_data_format("channels_first")
    assert str(error.value) == (
        "set_image_data_format: multilayer supports only 'channels_last' (no layer of it "
        "reads channels-first images); transpose the images to (height, width, channels)"
    )
    with pytest.raises(
        ValueError, match="data_format must be 'channels_first' or 'channels_last', got 'NHWC'"
    ):
        keras.backend.set_image_data_format("NHWC")


def test_dtype_helpers_spell_dtypes_as_keras():
    assert keras.backend.standardize_dtype(None) == "float32"
    assert keras.backend.standardize_dtype(np.float64) == "float64"
    assert keras.backend.standardize_dtype(np.dtype("int64")) == "int64"
    assert keras.backend.standardize_dtype(int) == "int32"
    assert keras.backend.standardize_dtype(float) == "float32"
    assert keras.backend.is_float_dtype("float16") and not keras.backend.is_float_dtype("int8")
    assert keras.backend.is_int_dtype("uint8") and not keras.backend.is_int_dtype(bool)


# -- keras.config ---------------------------------------------------------------------------
def test_backend_is_numpy_and_set_backend_says_so():
    assert keras.backend.backend() == "numpy"
    assert keras.config.backend() == "numpy"
    keras.config.set_backend("numpy")  # accepted, nothing changes
    with pytest.raises(keras.config.BackendNotAvailableError) as error:
        keras.config.set_backend("jax")
    assert str(error.value) == (
        "set_backend('jax'): multilayer has one backend, NumPy; it cannot run on 'jax'. "
        "Remove the set_backend call (or the KERAS_BACKEND setting), or use Keras itself "
        "for that backend."
    )
    assert isinstance(error.value, ValueError)


# -- keras.random ---------------------------------------------------------------------------
def test_an_integer_seed_gives_the_same_values_on_every_call():
    a = keras.random.normal((3, 4), seed=7)
    b = keras.random.normal((3, 4), seed=7)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (3, 4) and a.dtype == np.float32
    assert not np.array_equal(a, keras.random.normal((3, 4), seed=8))


def test_a_seed_generator_advances_and_repeats_when_recreated():
    gen = keras.random.SeedGenerator(seed=42)
    first, second = keras.random.uniform((5,), seed=gen), keras.random.uniform((5,), seed=gen)
    assert not np.array_equal(first, second)
    again = keras.random.SeedGenerator(seed=42)
    np.testing.assert_array_equal(keras.random.uniform((5,), seed=again), first)
    np.testing.assert_array_equal(keras.random.uniform((5,), seed=again), second)
    assert keras.random.SeedGenerator.from_config(gen.get_config()).seed == 42


def test_unseeded_draws_repeat_after_set_random_seed():
    keras.utils.set_random_seed(1234)
    run1 = [
        keras.random.normal((3,)),
        keras.random.uniform((2,)),
        keras.random.SeedGenerator().seed,
    ]
    keras.utils.set_random_seed(1234)
    run2 = [
        keras.random.normal((3,)),
        keras.random.uniform((2,)),
        keras.random.SeedGenerator().seed,
    ]
    np.testing.assert_array_equal(run1[0], run2[0])
    np.testing.assert_array_equal(run1[1], run2[1])
    assert run1[2] == run2[2]
    assert not np.array_equal(run1[0], keras.random.normal((3,)))  # the stream moves on


def test_clear_session_then_set_random_seed_repeats_a_whole_experiment():
    def experiment():
        keras.backend.clear_session()
        keras.utils.set_random_seed(0)
        noise = keras.random.normal((2, 2))
        model = keras.Sequential([Input(shape=(2,)), Dense(3)])
        return noise, model.predict(noise), model.layers[-1].name

    (n1, p1, name1), (n2, p2, name2) = experiment(), experiment()
    np.testing.assert_array_equal(n1, n2)
    np.testing.assert_array_equal(p1, p2)
    assert name1 == name2 == "dense"


def test_distribution_parameters_are_honoured():
    x = keras.random.normal((20000,), mean=3.0, stddev=0.5, seed=1)
    assert abs(x.mean() - 3.0) < 0.02 and abs(x.std() - 0.5) < 0.02
    u = keras.random.uniform((20000,), minval=-2.0, maxval=-1.0, seed=1)
    assert u.min() >= -2.0 and u.max() < -1.0 and abs(u.mean() + 1.5) < 0.01
    t = keras.random.truncated_normal((20000,), stddev=2.0, seed=1)
    assert np.abs(t).max() <= 4.0
    r = keras.random.randint((1000,), 3, 6, seed=1)
    assert r.dtype == np.int32 and set(np.unique(r)) == {3, 4, 5}
    assert keras.random.normal((2,), dtype="float64", seed=1).dtype == np.float64


def test_dropout_and_shuffle():
    x = np.ones((100, 100), dtype=np.float32)
    y = keras.random.dropout(x, 0.25, seed=3)
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_allclose(y[kept], 1 / 0.75)
    s = keras.random.shuffle(np.arange(10), seed=3)
    assert sorted(s) == list(range(10)) and not np.array_equal(s, np.arange(10))
    np.testing.assert_array_equal(s, keras.random.shuffle(np.arange(10), seed=3))


def test_random_refuses_bad_arguments_with_keras_messages():
    with pytest.raises(
        ValueError, match=r"keras.random.uniform requires a floating point dtype, got dtype=int32"
    ):
        keras.random.uniform((2,), dtype="int32")
    with pytest.raises(
        ValueError,
        match=r"seed must be an integer, a keras.random.SeedGenerator or None, got 1.5 \(of type float\)",
    ):
        keras.random.normal((2,), seed=1.5)
    with pytest.raises(
        ValueError, match=r"SeedGenerator: seed must be a non-negative integer, got -1"
    ):
        keras.random.SeedGenerator(-1)
    with pytest.raises(
        ValueError, match=r"shape must be a tuple of non-negative integers, got \(2, -1\)"
    ):
        keras.random.normal((2, -1))
