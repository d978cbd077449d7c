"""Model files: save -> load gives the same model; anything else is refused with ModelFileError."""

from __future__ import annotations

import json
import pickle
import re

import numpy as np
import pytest

safetensors_numpy = pytest.importorskip("safetensors.numpy")

from multilayer.errors import ModelFileError  # noqa: E402
from multilayer.layers import Dense, Dropout, Flatten, Rescaling  # noqa: E402
from multilayer.models import Sequential, load_model  # noqa: E402
from multilayer.optimizers import RMSprop  # noqa: E402
from multilayer.regularizers import L2  # noqa: E402


def images(n: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 4, 4)).astype(np.uint8), rng.integers(0, 3, size=n)


def trained_model() -> Sequential:
    model = Sequential(
        [
            Flatten(input_shape=(4, 4)),
            Rescaling(1 / 255),
            Dense(8, activation="gelu", kernel_regularizer=L2(1e-3)),
            Dropout(0.2, seed=1),
            Dense(3, activation="softmax"),
        ],
        seed=0,
    )
    model.compile(
        optimizer=RMSprop(learning_rate=0.01, momentum=0.5, centered=True),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    x, y = images()
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    return model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = trained_model()
    path = tmp_path_factory.mktemp("models") / "m.safetensors"
    model.save(path)
    return model, path


def test_reloaded_model_predicts_identically(saved):
    model, path = saved
    restored = load_model(path)
    x, _ = images(25, seed=5)
    assert np.array_equal(restored.predict(x), model.predict(x))
    for a, b in zip(model.get_weights(), restored.get_weights(), strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def test_reloaded_model_has_the_same_config_and_compile_config(saved):
    model, path = saved
    restored = load_model(path)
    assert restored.get_config() == model.get_config()
    assert restored.compile_config == model.compile_config
    assert restored.loss.name == "sparse_categorical_crossentropy"
    assert [m.name for m in restored.metrics] == ["accuracy"]
    assert type(restored.optimizer) is RMSprop
    assert restored.optimizer.get_config() == model.optimizer.get_config()


def test_reloaded_optimizer_state_continues_training_identically(saved):
    model, path = saved
    restored = load_model(path)
    assert restored.optimizer.iterations == model.optimizer.iterations == 10
    assert set(restored.optimizer.state) == {"v", "mean_g", "momentum"}
    for slot, value in model.optimizer.state.items():
        assert np.array_equal(restored.optimizer.state[slot], value)
    # one more identical step on each: same result only if the optimizer state was restored
    x, y = images(8, seed=9)
    twin = load_model(path)
    for m in (restored, twin):
        m.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    fresh = load_model(path, compile=False)
    fresh.compile(
        optimizer=RMSprop(learning_rate=0.01, momentum=0.5, centered=True),
        loss="sparse_categorical_crossentropy",
    )
    fresh.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    assert np.array_equal(restored.parameters.values, twin.parameters.values)
    assert not np.array_equal(restored.parameters.values, fresh.parameters.values)


def test_load_without_compile(saved):
    _, path = saved
    restored = load_model(path, compile=False)
    assert restored.loss is None and restored.optimizer is None


def test_tutorial_model_round_trip(tmp_path):
    model = Sequential(
        [
            Dense(512, input_shape=(784,), activation="relu"),
            Dense(768, activation="relu"),
            Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.save(tmp_path / "tutorial.safetensors")
    restored = load_model(tmp_path / "tutorial.safetensors")
    x = np.random.default_rng(0).uniform(size=(16, 784)).astype(np.float32)
    assert np.array_equal(restored.predict(x), model.predict(x))
    assert restored.count_params() == model.count_params()


def test_the_file_is_plain_safetensors_with_json_metadata(saved):
    _, path = saved
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as handle:
        metadata = handle.metadata()
        keys = set(handle.keys())
    assert metadata["format"] == "multilayer.model"
    assert json.loads(metadata["model"])["layers"][2]["class_name"] == "Dense"
    assert {"layers.2.kernel", "layers.2.bias", "layers.4.kernel", "layers.4.bias"} <= keys
    assert path.read_bytes()[:8] != pickle.dumps(0)[:8]


def test_save_refuses_an_unbuilt_model(tmp_path):
    with pytest.raises(ValueError, match="cannot save a model that is not built yet"):
        Sequential([Dense(3)]).save(tmp_path / "x.safetensors")


# -- refused files -------------------------------------------------------------------------------


def write(tmp_path, data: bytes):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("keep", [0.5, 0.99, 0.01], ids=["half", "tail-cut", "header-cut"])
def test_truncated_file_is_refused(saved, tmp_path, keep):
    _, path = saved
    data = path.read_bytes()
    bad = write(tmp_path, data[: int(len(data) * keep)])
    with pytest.raises(
        ModelFileError, match=r"bad\.safetensors is not a valid \.safetensors model file"
    ):
        load_model(bad)


def test_random_bytes_are_refused(tmp_path):
    bad = write(tmp_path, np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelFileError, match="is not a valid .safetensors model file"):
        load_model(bad)


def test_pickle_renamed_safetensors_is_refused_without_unpickling(tmp_path):
    class Boom:
        def __reduce__(self):  # would run if the file were ever unpickled
            return (pytest.fail, ("the file was unpickled",))

    bad = write(tmp_path, pickle.dumps({"weights": np.zeros(3), "boom": Boom()}))
    with pytest.raises(ModelFileError, match="is not a valid .safetensors model file"):
        load_model(bad)


def test_empty_file_and_directory_are_refused(tmp_path):
    with pytest.raises(ModelFileError, match="is not a valid .safetensors model file"):
        load_model(write(tmp_path, b""))
    with pytest.raises(ModelFileError, match="is a directory, not a model file"):
        load_model(tmp_path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="model file not found"):
        load_model(tmp_path / "nope.safetensors")


def rewrite(saved_path, tmp_path, tensors=None, metadata=None):
    """A copy of the saved model with tensors and/or metadata edited."""
    from safetensors import safe_open

    with safe_open(str(saved_path), framework="numpy") as handle:
        original_metadata = handle.metadata()
        original = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 - not iterable
    path = tmp_path / "edited.safetensors"
    safetensors_numpy.save_file(
        tensors(original) if tensors else original,
        str(path),
        metadata=metadata(original_metadata) if metadata else original_metadata,
    )
    return path


def test_tensor_of_the_wrong_shape_is_refused(saved, tmp_path):
    def transpose(t):
        return {**t, "layers.2.kernel": np.ascontiguousarray(t["layers.2.kernel"].T)}

    path = rewrite(saved[1], tmp_path, tensors=transpose)
    with pytest.raises(
        ModelFileError,
        match=r"tensor 'layers\.2\.kernel' has shape \(8, 16\) and dtype float32, but the architecture needs shape \(16, 8\)",
    ):
        load_model(path)


def test_tensor_of_the_wrong_dtype_is_refused(saved, tmp_path):
    def to_float64(t):
        return {**t, "layers.4.bias": t["layers.4.bias"].astype(np.float64)}

    with pytest.raises(ModelFileError, match="dtype float64, but the architecture needs"):
        load_model(rewrite(saved[1], tmp_path, tensors=to_float64))


def test_missing_tensor_is_refused(saved, tmp_path):
    def drop(t):
        return {k: v for k, v in t.items() if k != "layers.4.bias"}

    with pytest.raises(
        ModelFileError,
        match=re.escape("tensors do not match the architecture: missing ['layers.4.bias']"),
    ):
        load_model(rewrite(saved[1], tmp_path, tensors=drop))


def test_unexpected_tensor_is_refused(saved, tmp_path):
    def extra(t):
        return {**t, "layers.9.kernel": np.zeros((2, 2), np.float32)}

    with pytest.raises(ModelFileError, match=re.escape("unexpected ['layers.9.kernel']")):
        load_model(rewrite(saved[1], tmp_path, tensors=extra))


def test_unknown_layer_type_is_refused(saved, tmp_path):
    def rename(metadata):
        return {**metadata, "model": metadata["model"].replace('"Dense"', '"Dens"')}

    with pytest.raises(
        ModelFileError,
        match=r"invalid model configuration: Unknown layer type 'Dens'\. Did you mean 'Dense'\?",
    ):
        load_model(rewrite(saved[1], tmp_path, metadata=rename))


def test_metadata_with_invalid_json_is_refused(saved, tmp_path):
    def corrupt(metadata):
        return {**metadata, "model": metadata["model"][:-5]}

    with pytest.raises(ModelFileError, match="header entry 'model' is missing or not valid JSON"):
        load_model(rewrite(saved[1], tmp_path, metadata=corrupt))


def test_safetensors_file_that_is_not_a_multilayer_model_is_refused(saved, tmp_path):
    path = tmp_path / "foreign.safetensors"
    safetensors_numpy.save_file({"weight": np.zeros((2, 2), np.float32)}, str(path))
    with pytest.raises(ModelFileError, match="is a safetensors file but not a multilayer model"):
        load_model(path)


def test_nan_weights_are_refused(saved, tmp_path):
    def poison(t):
        kernel = t["layers.2.kernel"].copy()
        kernel[0, 0] = np.nan
        return {**t, "layers.2.kernel": kernel}

    with pytest.raises(
        ModelFileError, match="tensor 'layers.2.kernel' contains NaN or infinite values"
    ):
        load_model(rewrite(saved[1], tmp_path, tensors=poison))


def test_optimizer_state_of_the_wrong_shape_is_refused(saved, tmp_path):
    def shrink(t):
        return {**t, "optimizer.v": t["optimizer.v"][:-1].copy()}

    with pytest.raises(
        ModelFileError, match="optimizer state 'v' is missing or has the wrong shape"
    ):
        load_model(rewrite(saved[1], tmp_path, tensors=shrink))
