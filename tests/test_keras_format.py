"""Model files by extension, and Keras 3 files both ways.

Without Keras: the fixtures in tests/fixtures/keras (made by real Keras 3 with
tests/fixtures/make_keras_fixtures.py) load with Keras' predictions; multilayer's own .keras
and .weights.* files round-trip exactly; unsupported layers and arguments are refused by
name; hostile archives are refused with ModelFileError and bounded memory. With Keras
installed, files also go through real Keras both ways.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import struct
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from multilayer import activations as activation_module
from multilayer.engine.layers import Activation, Dense, Dropout, Flatten, Input, Rescaling
from multilayer.errors import ModelFileError
from multilayer.models import keras_format
from multilayer.models.saving import load_model, load_weights, save_model, save_weights
from multilayer.models.sequential import Sequential

h5py = pytest.importorskip("h5py")  # in the [keras] extra, which [test] includes

FIXTURES = Path(__file__).parent / "fixtures" / "keras"
SUPPORTED = [
    "mlp",
    "activations",
    "float64",
    "functional",
    "branching",
    "merges",
    "input_shape_argument",
    "mnist_shaped",
]


def fixture(name: str) -> tuple[Path, np.ndarray, np.ndarray]:
    data = np.load(FIXTURES / f"{name}.npz", allow_pickle=False)
    return FIXTURES / f"{name}.keras", data["x"], data["y"]


def every_layer_model(seed: int = 0) -> Sequential:
    """Every layer type and every activation multilayer can write to a .keras file."""
    layers = [Input(shape=(2, 3)), Rescaling(0.5, offset=0.25), Flatten()]
    for name in ["linear", "relu", "leaky_relu", "elu", "gelu", "sigmoid", "tanh", "softplus"]:
        layers.append(Dense(4, activation=name, name=f"d_{name}"))
    layers += [
        Dense(3, use_bias=False, kernel_regularizer="l2", kernel_initializer="he_normal"),
        Dropout(0.3, seed=5),
        Activation("tanh"),
        Dense(3, activation="softmax", bias_regularizer={"class_name": "L1", "config": {}}),
    ]
    model = Sequential(layers, name="every_layer", seed=seed)
    model.build()
    return model


# -- Keras' files, read without Keras ---------------------------------------------------------
@pytest.mark.parametrize("name", SUPPORTED)
def test_keras_files_predict_as_keras_did(name):
    path, x, y = fixture(name)
    model = load_model(path)
    assert np.allclose(model.predict(x), y, rtol=1e-5, atol=1e-6)


def test_the_app_serves_a_keras_trained_model():
    """A .keras file from Keras, served by the draw-a-digit app with Keras' answers."""
    pytest.importorskip("httpx", reason="the TestClient needs httpx")
    from fastapi.testclient import TestClient

    from multilayer.app.server import create_app

    path, x, y = fixture("mnist_shaped")
    with TestClient(create_app(path), base_url="http://localhost") as client:
        assert client.get("/model").json()["input_shape"] == [28, 28]
        for image, expected in zip(x, y, strict=True):
            response = client.post("/predict", json={"pixels": image.ravel().tolist()})
            assert response.status_code == 200, response.text
            assert np.allclose(response.json()["probabilities"], expected, atol=1e-6)


def test_keras_mlp_structure_and_compile_config_are_translated():
    path, x, y = fixture("mlp")
    model = load_model(path)
    assert [type(layer).__name__ for layer in model.layers] == [
        "InputLayer",
        "Rescaling",
        "Dense",
        "Dropout",
        "Dense",
    ]
    rescaling, hidden, dropout = model.layers[1:4]
    assert (rescaling.scale, rescaling.offset) == (pytest.approx(1 / 255), -0.5)
    assert hidden.name == "hidden" and hidden.units == 8 and hidden.activation.name == "relu"
    assert dropout.rate == 0.25
    assert model.name == "mlp" and model.input_shape == (6,)
    assert type(model.optimizer).__name__ == "Adam"
    assert model.optimizer.get_config()["learning_rate"] == pytest.approx(1e-3)
    assert type(model.loss).__name__ == "CategoricalCrossentropy"
    history = model.fit(x, np.eye(3)[[0, 1, 2, 0, 1, 2, 0]], epochs=2, verbose=0)
    assert sorted(history.history) == ["accuracy", "loss"] and len(history.history["loss"]) == 2


def test_keras_activations_regularizers_and_float64_are_translated():
    model = load_model(fixture("activations")[0])
    dense = [layer for layer in model.layers if isinstance(layer, Dense)]
    assert [d.activation.name for d in dense[:8]] == [
        "linear",
        "relu",
        "leaky_relu",
        "elu",
        "gelu",
        "sigmoid",
        "tanh",
        "softplus",
    ]
    assert dense[8].use_bias is False and "bias" not in dense[8].weights
    assert dense[8].kernel_regularizer.get_config() == {"l2": pytest.approx(1e-3)}
    assert type(dense[8].kernel_initializer).__name__ == "HeNormal"
    assert dense[9].bias_regularizer.get_config() == {
        "l1": pytest.approx(1e-4),
        "l2": pytest.approx(1e-3),
    }
    assert type(model.optimizer).__name__ == "SGD"
    assert model.optimizer.get_config()["momentum"] == pytest.approx(0.9)
    assert load_model(fixture("float64")[0]).dtype == np.float64


def test_keras_save_weights_file_loads_into_the_same_architecture():
    path, x, y = fixture("mlp")
    model = load_model(path)
    twin = Sequential.from_config(model.get_config())
    twin.build()
    assert not np.allclose(twin.predict(x), y, atol=1e-3)
    load_weights(twin, FIXTURES / "mlp.weights.h5")
    assert np.allclose(twin.predict(x), y, rtol=1e-5, atol=1e-6)


def test_lambda_layer_is_refused_without_running_its_code():
    with pytest.raises(
        ModelFileError,
        match=r"layer 1 \('lambda'\) is a Keras Lambda layer: it holds Python code, and "
        r"multilayer never runs code from a file",
    ):
        load_model(fixture("lambda_layer")[0])


def test_unsupported_layer_is_refused_by_name():
    with pytest.raises(
        ModelFileError,
        match=r"layer 1 \('conv1d'\) is a Keras 'Conv1D' layer, which multilayer does not "
        r"support \(supported: InputLayer, Dense, Dropout, Flatten, Rescaling, Activation",
    ):
        load_model(fixture("unsupported")[0])


def test_unsupported_argument_is_refused_by_name():
    with pytest.raises(
        ModelFileError,
        match=r"Dense layer '\w+': kernel_constraint='MaxNorm' is not supported by multilayer",
    ):
        load_model(fixture("constrained")[0])


def test_functional_chain_reads_as_a_sequential_model():
    model = load_model(fixture("functional")[0])
    assert [type(layer).__name__ for layer in model.layers] == ["InputLayer", "Dense", "Dense"]
    assert model.input_shape == (4,)


def test_branching_keras_graphs_load_as_functional_models():
    from multilayer.models import Model

    model = load_model(fixture("merges")[0])
    assert type(model) is Model
    kinds = sorted(type(layer).__name__ for layer in model.layers)
    assert kinds == sorted(
        ["InputLayer", "Dense", "Dense", "Dropout", "Dense", "Concatenate", "Dense"]
        + ["Multiply", "Average", "Add", "Dense"]
    )
    assert model.count_params() == 135  # Keras' count (make_keras_fixtures.py)


def _graph_config(path: Path) -> dict:
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("config.json"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c["config"]["layers"][1]["inbound_nodes"].append(
                c["config"]["layers"][1]["inbound_nodes"][0]
            ),
            "layer 'dense' has 2 inbound nodes; multilayer reads layers called exactly once "
            "(no shared layers)",
        ),
        (
            lambda c: c["config"]["layers"][1]["inbound_nodes"][0]["kwargs"].update(mask=None),
            "layer 'dense' is called with arguments multilayer does not read",
        ),
        (
            lambda c: c["config"]["layers"].reverse(),
            "layer 'add' takes the output of 'input_layer', which is not an earlier layer",
        ),
        (
            lambda c: c["config"].update(output_layers=["nowhere", 0, 0]),
            "output_layers names 'nowhere', which is not a layer",
        ),
        (
            lambda c: c["config"].update(input_layers=[["dense", 0, 0]]),
            "invalid model: model 'functional': input 'dense'",
        ),
        (
            lambda c: c["config"]["layers"][3]["inbound_nodes"][0]["args"][0][1]["config"].update(
                keras_history=["dense_1", 1, 0]
            ),
            "layer 'add' takes an input that is not the output of one layer",
        ),
    ],
)
def test_hostile_functional_graphs_are_refused_by_name(tmp_path, change, message):
    path = fixture("branching")[0]
    config = _graph_config(path)
    change(config)
    with zipfile.ZipFile(path) as source:
        members = {name: source.read(name) for name in source.namelist()}
    members["config.json"] = json.dumps(config).encode()
    target = tmp_path / "hostile.keras"
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ModelFileError, match=re.escape(message)):
        load_model(target)


# -- multilayer's .keras files ----------------------------------------------------------------
def test_keras_round_trip_is_exact(tmp_path):
    model = every_layer_model()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).normal(size=(9, 2, 3)).astype(np.float32)
    save_model(model, tmp_path / "m.keras")
    restored = load_model(tmp_path / "m.keras")
    assert np.array_equal(restored.predict(x), model.predict(x))
    assert restored.get_config() == model.get_config()
    assert type(restored.optimizer).__name__ == "Adam"
    assert type(restored.loss).__name__ == "CategoricalCrossentropy"


def test_input_scale_round_trips_in_metadata_json(tmp_path):
    from multilayer.models.input_scale import InputScale

    model = every_layer_model()
    model.input_scale = InputScale(255.0, mean=0.13, std=0.31)
    model.save(tmp_path / "m.keras")
    assert load_model(tmp_path / "m.keras").input_scale == model.input_scale
    assert load_model(fixture("mlp")[0]).input_scale is None  # Keras' files have none


def test_keras_archive_layout(tmp_path):
    model = every_layer_model()
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        assert sorted(archive.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        config = json.loads(archive.read("config.json"))
        metadata = json.loads(archive.read("metadata.json"))
        weights = archive.read("model.weights.h5")
    assert metadata["keras_version"] == keras_format.KERAS_VERSION
    assert config["class_name"] == "Sequential" and "compile_config" not in config
    assert [layer["class_name"] for layer in config["config"]["layers"]][:4] == [
        "InputLayer",
        "Rescaling",
        "Flatten",
        "Dense",
    ]
    assert config["config"]["layers"][0]["config"]["batch_shape"] == [None, 2, 3]
    with h5py.File(io.BytesIO(weights), "r") as handle:
        assert handle["layers/dense/vars"].attrs["name"] == "d_linear"
        assert handle["layers/dense_8/vars"].attrs["name"] == model.layers[11].name
        assert list(handle["layers/dense_8/vars"]) == ["0"]  # no bias
        assert np.array_equal(
            handle["layers/dense_1/vars/0"][()], model.layers[4].weights["kernel"]
        )
        assert np.array_equal(handle["layers/dense_1/vars/1"][()], model.layers[4].weights["bias"])
        assert list(handle["layers/dropout/vars"]) == []


def test_keras_group_names_follow_keras_snake_case():
    assert keras_format.snake_case("BatchNormalization") == "batch_normalization"
    assert keras_format.snake_case("ReLU") == "re_lu"
    assert keras_format.snake_case("PReLU") == "p_re_lu"
    assert keras_format.snake_case("Dense") == "dense"


def test_activation_without_a_keras_string_name_is_refused_on_save(tmp_path):
    model = Sequential([Input(shape=(3,)), Dense(2, activation=activation_module.LeakyReLU(0.1))])
    model.build()
    with pytest.raises(
        ValueError, match=r"activation 'leaky_relu' with arguments \{'negative_slope': 0.1\} has"
    ):
        model.save(tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()


# -- extensions -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("model.bin", r"cannot save .*model.bin: unknown file extension; use a name ending in "),
        ("model", r"unknown file extension"),
        ("model.h5", r"the legacy Keras 2 HDF5 model format is not supported"),
        ("model.weights.h5", r"is a weights file name: model.save\(\) writes a whole model"),
        ("model.weights.safetensors", r"use model.save_weights\(\)"),
    ],
)
def test_save_refuses_unknown_extensions(tmp_path, name, message):
    model = every_layer_model()
    with pytest.raises(ValueError, match=message):
        model.save(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("m.h5", r"legacy Keras 2 HDF5 model files are not supported"),
        ("m.weights.h5", r"is a weights file: build the model, then call model.load_weights"),
        ("m.weights.safetensors", r"is a weights file"),
    ],
)
def test_load_model_refuses_other_formats_by_name(tmp_path, name, message):
    (tmp_path / name).write_bytes(b"anything")
    with pytest.raises(ModelFileError, match=message):
        load_model(tmp_path / name)


@pytest.mark.parametrize("extension", [".weights.h5", ".weights.safetensors"])
def test_weights_round_trip_exactly(tmp_path, extension):
    model = every_layer_model(seed=0)
    path = save_weights(model, tmp_path / f"w{extension}")
    other = every_layer_model(seed=1)
    assert not all(
        np.array_equal(a, b) for a, b in zip(model.get_weights(), other.get_weights(), strict=False)
    )
    load_weights(other, path)
    for a, b in zip(model.get_weights(), other.get_weights(), strict=True):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("extension", [".weights.h5", ".weights.safetensors"])
def test_weights_of_another_architecture_are_refused_and_nothing_is_set(tmp_path, extension):
    path = save_weights(every_layer_model(), tmp_path / f"w{extension}")
    small = Sequential([Input(shape=(2, 3)), Flatten(), Dense(4)], seed=0)
    small.build()
    before = small.get_weights()
    with pytest.raises(ModelFileError, match=r"(another architecture|do not match)"):
        load_weights(small, path)
    for a, b in zip(before, small.get_weights(), strict=True):
        assert np.array_equal(a, b)


def test_weights_extensions_are_checked(tmp_path):
    with pytest.raises(ValueError, match=r"must end in .weights.h5 \(Keras' layout\) or "):
        save_weights(every_layer_model(), tmp_path / "w.h5")
    with pytest.raises(ValueError, match=r"must end in .weights.h5"):
        load_weights(every_layer_model(), tmp_path / "w.npz")
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        load_weights(every_layer_model(), tmp_path / "absent.weights.h5")


# -- hostile archives -------------------------------------------------------------------------
def _valid_archive(tmp_path) -> dict[str, bytes]:
    model = Sequential(
        [Input(shape=(4,)), Dense(3, activation="relu"), Dropout(0.5), Dense(2)], seed=0
    )
    model.build()
    model.save(tmp_path / "valid.keras")
    with zipfile.ZipFile(tmp_path / "valid.keras") as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _archive(path: Path, members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _refused(path: Path, match: str, limit: int = 8 * 2**20) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match=match):
            load_model(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < limit


def _h5(build) -> bytes:
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        build(handle)
    return buffer.getvalue()


def _dense_vars(handle, shapes=((4, 3), (3,), (3, 2), (2,)), dtype="float32"):
    for index, group in enumerate(["dense", "dense_1"]):
        for k in range(2):
            shape = shapes[2 * index + k]
            handle.create_dataset(f"layers/{group}/vars/{k}", data=np.zeros(shape, dtype))


def test_config_json_bomb_is_refused_before_decompressing(tmp_path):
    members = _valid_archive(tmp_path)
    members["config.json"] = b" " * (64 * 2**20)
    path = _archive(tmp_path / "bomb.keras", members, zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 2**20
    _refused(path, r"config.json declares 67108864 bytes \(at most 4194304")


@pytest.mark.parametrize("kind", ["Sequential", "Functional"])
def test_too_many_layers_are_refused_before_any_is_made(tmp_path, kind):
    members = _valid_archive(tmp_path)
    config = json.loads(members["config.json"])
    config["class_name"] = kind
    dropout = config["config"]["layers"][2]
    config["config"]["layers"] += [dropout] * 5000
    members["config.json"] = json.dumps(config).encode()
    _refused(
        _archive(tmp_path / "deep.keras", members),
        r"the model has 5004 layers \(at most 4096\)",
        limit=32 * 2**20,  # the JSON itself (2.5 MB) is parsed
    )


def test_weights_bomb_is_refused_by_ratio(tmp_path):
    members = _valid_archive(tmp_path)
    members["model.weights.h5"] = bytes(32 * 2**20)
    path = _archive(tmp_path / "bomb.keras", members, zipfile.ZIP_DEFLATED)
    _refused(path, r"model.weights.h5 expands 33554432 bytes from \d+: refused as a likely zip")


def test_weights_larger_than_the_architecture_allows_are_refused(tmp_path):
    members = _valid_archive(tmp_path)
    members["model.weights.h5"] = bytes(keras_format.H5_OVERHEAD + 2**20)
    path = _archive(tmp_path / "big.keras", members)  # stored: no ratio to catch it
    _refused(path, r"model.weights.h5 declares \d+ bytes \(at most \d+ expected for this model")


def test_lying_declared_size_is_refused(tmp_path):
    members = _valid_archive(tmp_path)
    members["config.json"] = members["config.json"] + b" " * (8 * 2**20)
    path = _archive(tmp_path / "lie.keras", members, zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    # Declare 1 kB for config.json in its local header and central directory entry.
    local = data.index(b"PK\x03\x04" + b"\x14\x00", data.index(b"config.json") - 40)
    struct.pack_into("<I", data, local + 22, 1000)
    central = data.index(b"PK\x01\x02")
    while data[central + 46 : central + 46 + 11] != b"config.json":
        central = data.index(b"PK\x01\x02", central + 4)
    struct.pack_into("<I", data, central + 24, 1000)
    path.write_bytes(bytes(data))
    _refused(path, r"(not valid JSON|not a valid .keras archive)")


@pytest.mark.parametrize("name", ["../evil.json", "/etc/evil", "a/../../b", "C:/evil", "a\\..\\b"])
def test_path_traversal_member_names_are_refused(tmp_path, name):
    members = _valid_archive(tmp_path)
    members[name] = b"{}"
    _refused(_archive(tmp_path / "t.keras", members), r"unsafe member name")


@pytest.mark.parametrize("count", [20000, 70000])  # 70000: a zip64 end record
def test_many_members_are_refused_before_the_directory_is_parsed(tmp_path, count):
    members = _valid_archive(tmp_path)
    members.update({f"assets/{i}": b"" for i in range(count)})
    path = _archive(tmp_path / "many.keras", members)
    # zipfile would hold one ZipInfo object per member (10 MB for 20000) to list them
    _refused(path, rf"{count + 3} archive members \(at most 64\)", limit=2**20)


def test_too_many_members_are_refused(tmp_path):
    members = _valid_archive(tmp_path)
    members.update({f"assets/{i}": b"" for i in range(keras_format.MAX_MEMBERS)})
    _refused(_archive(tmp_path / "many.keras", members), r"archive members \(at most 64\)")


@pytest.mark.parametrize(
    ("replace", "match"),
    [
        ({"metadata.json": b'{"keras_version": "2.15.0"}'}, r"does not name a Keras 3 version"),
        (
            {"metadata.json": b'{"keras_version": "3.0.0", "multilayer": {"input": 1}}'},
            r"metadata.json: InputScale: expected \{'pixel_max', 'mean', 'std'\}, got 1",
        ),
        (
            {"metadata.json": b'{"keras_version": "3.0.0", "multilayer": []}'},
            r"metadata.json: 'multilayer' must be \{'input': ...\}",
        ),
        ({"config.json": b"{not json"}, r"config.json is not valid JSON"),
        ({"config.json": b"[" * 100000 + b"]" * 100000}, r"config.json is not valid JSON"),
        ({"config.json": b"[]"}, r"config.json must hold a JSON object"),
        ({"config.json": b'{"a": NaN}'}, r"NaN is not a JSON number \(configs must hold finite"),
        ({"config.json": b'{"a": -Infinity}'}, r"-Infinity is not a JSON number"),
        ({"model.weights.h5": b"not hdf5" * 100}, r"not a readable HDF5 weights file"),
    ],
)
def test_malformed_members_are_refused(tmp_path, replace, match):
    members = {**_valid_archive(tmp_path), **replace}
    _refused(_archive(tmp_path / "bad.keras", members), match)


@pytest.mark.parametrize("missing", ["config.json", "metadata.json", "model.weights.h5"])
def test_missing_members_are_refused(tmp_path, missing):
    members = _valid_archive(tmp_path)
    del members[missing]
    _refused(_archive(tmp_path / "bad.keras", members), rf"no {missing}")


@pytest.mark.parametrize(
    "data", [b"", b"PK\x03\x04", b"\x89HDF\r\n\x1a\n" + bytes(100), bytes(range(256)) * 10]
)
def test_not_a_zip_is_refused(tmp_path, data):
    (tmp_path / "x.keras").write_bytes(data)
    _refused(tmp_path / "x.keras", r"is not a valid .keras archive")


def test_huge_declared_dataset_shape_is_refused_before_reading(tmp_path):
    def build(handle):
        _dense_vars(handle, shapes=((4, 3), (3,), (3, 2), (2,)))
        del handle["layers/dense/vars/0"]
        # 4 TB declared, nothing stored (HDF5 allocates chunks lazily)
        handle.create_dataset(
            "layers/dense/vars/0", shape=(10**6, 10**6), dtype="f4", chunks=(1, 1024)
        )

    members = {**_valid_archive(tmp_path), "model.weights.h5": _h5(build)}
    _refused(
        _archive(tmp_path / "huge.keras", members),
        r"has shape \(1000000, 1000000\) and dtype float32, but the architecture needs shape "
        r"\(4, 3\)",
    )


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda h: _dense_vars(h, dtype="int32"), r"dtype int32, but the architecture"),
        (
            lambda h: (_dense_vars(h), h.create_dataset("layers/dense/vars/2", data=[1.0])),
            r"holds variables \['0', '1', '2'\], but multilayer expects 2 \(kernel, bias\)",
        ),
        (
            lambda h: (_dense_vars(h), h.__delitem__("layers/dense_1")),
            r"no variables for layer 'dense_\d+' \(group 'layers/dense_1/vars'\)",
        ),
        (
            lambda h: (
                _dense_vars(h),
                h["layers/dense/vars/1"].__setitem__(Ellipsis, np.nan),
            ),
            r"contains NaN or infinite values",
        ),
        (
            lambda h: (
                _dense_vars(h),
                h.__delitem__("layers/dense/vars/1"),
                h.__setitem__("layers/dense/vars/1", h5py.SoftLink("/layers/dense_1/vars/1")),
            ),
            r"layers/dense/vars/1 is a link, not a dataset in the file",
        ),
        (
            lambda h: (
                _dense_vars(h),
                h.__delitem__("layers/dense/vars/1"),
                h.__setitem__("layers/dense/vars/1", h5py.ExternalLink("/etc/passwd", "/x")),
            ),
            r"is a link, not a dataset in the file",
        ),
        (
            lambda h: (
                _dense_vars(h),
                h.__delitem__("layers/dense/vars/1"),
                h.create_dataset(
                    "layers/dense/vars/1",
                    shape=(3,),
                    dtype="f4",
                    external=[("/etc/hostname", 0, 12)],
                ),
            ),
            r"layers/dense/vars/1 refers to data outside the file",
        ),
    ],
    ids=["int", "extra", "missing", "nan", "softlink", "externallink", "external-storage"],
)
def test_hostile_hdf5_weights_are_refused(tmp_path, build, match):
    members = {**_valid_archive(tmp_path), "model.weights.h5": _h5(build)}
    _refused(_archive(tmp_path / "bad.keras", members), match)
    # the same checks guard .weights.h5 files
    (tmp_path / "bad.weights.h5").write_bytes(members["model.weights.h5"])
    model = Sequential([Input(shape=(4,)), Dense(3, activation="relu"), Dense(2)], seed=0)
    with pytest.raises(ModelFileError, match=match):
        load_weights(model, tmp_path / "bad.weights.h5")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            lambda c: c["config"]["layers"][1]["config"].update(units=-3),
            r"Dense layer '\w+': units must be a positive integer up to 2\*\*31, got -3",
        ),
        (
            lambda c: c["config"]["layers"][1]["config"].update(surprise=1),
            r"Dense layer '\w+': unsupported arguments \['surprise'\]",
        ),
        (
            lambda c: c["config"]["layers"][1]["config"].update(activation="swish"),
            r"activation 'swish' is not supported",
        ),
        (
            lambda c: c["config"]["layers"][1]["config"].update(
                dtype={"class_name": "DTypePolicy", "config": {"name": "mixed_float16"}}
            ),
            r"dtype 'mixed_float16' is not supported",
        ),
        (
            lambda c: c["config"]["layers"][0]["config"].update(batch_shape=[None, 10**12]),
            r"InputLayer layer '\w+': input samples of shape \[1000000000000\] are too large",
        ),
        (
            lambda c: c["config"]["layers"][0]["config"].update(batch_shape=[None, 2**30]),
            r"the architecture has 3221225483 parameters, more than model.weights.h5 "
            r"\(\d+ bytes\) can hold",
        ),
        (
            lambda c: c["config"]["layers"][1]["config"].update(units=10**15),
            r"units must be a positive integer up to 2\*\*31, got 1000000000000000",
        ),
        (
            lambda c: c["config"]["layers"][2]["config"].update(rate="0.5"),
            r"Dropout layer '\w+': rate must be a finite number, got '0.5'",
        ),
        (
            lambda c: c["config"]["layers"][0]["config"].update(batch_shape=[None, -1]),
            r"the input shape must be \[null, d1, d2, ...\] with known positive sizes",
        ),
        (
            lambda c: c["config"]["layers"].insert(2, c["config"]["layers"][0]),
            r"an InputLayer can only be the first layer",
        ),
        (
            lambda c: c.update(class_name="Functional"),
            r"layer 0 has no name or the name of an earlier layer \(None\)",
        ),
        (
            lambda c: c.update(class_name="Conv"),
            r"only Keras Sequential and functional models can be read \(this file holds a "
            r"'Conv' model\)",
        ),
    ],
    ids=[
        "units",
        "unknown-key",
        "activation",
        "policy",
        "huge-input",
        "big-input",
        "huge-units",
        "rate",
        "bad-input",
        "input2",
        "functional",
        "cls",
    ],
)
def test_hostile_configs_are_refused(tmp_path, edit, match):
    members = _valid_archive(tmp_path)
    config = json.loads(members["config.json"])
    edit(config)
    members["config.json"] = json.dumps(config).encode()
    _refused(_archive(tmp_path / "bad.keras", members), match)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_fuzzed_archives_load_or_raise_model_file_error_only(tmp_path, data):
    base = (FIXTURES / "mlp.keras").read_bytes()
    mutated = bytearray(base)
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(mutated) - 1))
        mutated[position] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        mutated = mutated[: data.draw(st.integers(0, len(mutated)))]
    path = tmp_path / "fuzz.keras"
    path.write_bytes(bytes(mutated))
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with contextlib.suppress(ModelFileError):
                load_model(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 * 2**20


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(["mlp", "functional"]),
    path=st.lists(st.integers(0, 30), min_size=1, max_size=6),
    value=_JSON,
)
def test_fuzzed_configs_load_or_raise_model_file_error_only(tmp_path_factory, name, path, value):
    """Any value anywhere in a real Keras config: loaded, or refused with ModelFileError."""
    tmp = tmp_path_factory.mktemp("cfg")
    with zipfile.ZipFile(FIXTURES / f"{name}.keras") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    node = config
    for step in path[:-1]:  # walk down to some nested container
        children = list(node.values()) if isinstance(node, dict) else node
        containers = [c for c in children if isinstance(c, (dict, list)) and c]
        if not containers:
            break
        node = containers[step % len(containers)]
    if isinstance(node, dict):
        node[sorted(node)[path[-1] % len(node)]] = value
    elif isinstance(node, list):
        node[path[-1] % len(node)] = value
    members["config.json"] = json.dumps(config).encode()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.suppress(ModelFileError):
            load_model(_archive(tmp / "f.keras", members))


# -- through real Keras -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def keras():
    import os

    os.environ.setdefault("KERAS_BACKEND", "jax")
    return pytest.importorskip("keras", exc_type=ImportError)  # absent, or without a backend


def test_multilayer_keras_file_loads_in_keras_with_the_same_predictions(tmp_path, keras):
    model = every_layer_model()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).normal(size=(9, 2, 3)).astype(np.float32)
    model.save(tmp_path / "m.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "optimizer has 0 variables": none are written
        theirs = keras.saving.load_model(tmp_path / "m.keras")
    assert np.allclose(theirs.predict(x, verbose=0), model.predict(x), rtol=1e-5, atol=1e-6)
    assert type(theirs.optimizer).__name__ == "Adam"
    assert [layer.name for layer in theirs.layers] == [layer.name for layer in model.layers[1:]]
    # and back: Keras saves it again, multilayer reads Keras' file
    theirs.save(tmp_path / "back.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the compile config translates back without a warning
        again = load_model(tmp_path / "back.keras")
    assert np.allclose(again.predict(x), model.predict(x), rtol=1e-5, atol=1e-6)
    assert type(again.loss).__name__ == "CategoricalCrossentropy"
    assert again.optimizer.get_config() == pytest.approx(model.optimizer.get_config())


def test_multilayer_weights_h5_loads_in_keras(tmp_path, keras):
    model = every_layer_model()
    save_weights(model, tmp_path / "w.weights.h5")
    model.save(tmp_path / "m.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    for weight in theirs.weights:
        weight.assign(np.zeros(weight.shape))
    theirs.load_weights(tmp_path / "w.weights.h5")
    x = np.random.default_rng(1).normal(size=(5, 2, 3)).astype(np.float32)
    assert np.allclose(theirs.predict(x, verbose=0), model.predict(x), rtol=1e-5, atol=1e-6)


def test_keras_compile_config_with_unsupported_options_loads_uncompiled_with_a_warning(
    tmp_path, keras
):
    theirs = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    theirs.compile(
        optimizer=keras.optimizers.Adam(weight_decay=0.1),
        loss=keras.losses.MeanSquaredError(reduction="sum"),
    )
    theirs.save(tmp_path / "k.keras")
    with pytest.warns(UserWarning, match=r"the model is loaded but not compiled"):
        model = load_model(tmp_path / "k.keras")
    assert model.loss is None
    x = np.ones((2, 3), dtype=np.float32)
    assert np.allclose(model.predict(x), theirs.predict(x, verbose=0), atol=1e-6)


def test_fresh_keras_model_loads_in_multilayer(tmp_path, keras):
    layers = keras.layers
    theirs = keras.Sequential(
        [
            keras.Input((5,)),
            layers.Rescaling(2.0),
            layers.Dense(7, activation="gelu"),
            layers.Dropout(0.1),
            layers.Dense(6, activation="elu", use_bias=False),
            layers.Activation("sigmoid"),
            layers.Dense(2, activation="softmax"),
        ]
    )
    theirs.compile(optimizer=keras.optimizers.RMSprop(0.01), loss="sparse_categorical_crossentropy")
    theirs.save(tmp_path / "k.keras")
    x = np.random.default_rng(2).normal(size=(11, 5)).astype(np.float32)
    model = load_model(tmp_path / "k.keras")
    assert np.allclose(model.predict(x), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert model.optimizer.get_config()["learning_rate"] == pytest.approx(0.01)


# -- the command line -------------------------------------------------------------------------
def test_mlp_predict_and_info_read_keras_files(tmp_path, capsys):
    from multilayer.cli.main import main

    path, x, y = fixture("mnist_shaped")
    np.save(tmp_path / "digit.npy", x[0].astype(np.uint8))
    assert main(["predict", str(path), str(tmp_path / "digit.npy"), "--json"]) == 0
    # (mlp predict prepares images like photographs, so its answer on noise is not Keras')
    top = json.loads(capsys.readouterr().out)[0]["top"][0]
    assert top["class"] in range(10) and 0.0 < top["probability"] <= 1.0
    assert main(["info", str(path)]) == 0
    assert "Dense" in capsys.readouterr().out


def test_mlp_refuses_a_keras_lambda_file_in_one_line(capsys):
    assert main_exit(["info", str(fixture("lambda_layer")[0])]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Lambda layer" in err[0]


def main_exit(argv: list[str]) -> int:
    from multilayer.cli.main import main

    return main(argv)


# -- functional and nested models (h9-core) by extension ---------------------------------------
def branching_model():
    from multilayer.layers import Concatenate
    from multilayer.models import Model

    inputs = Input(shape=(4,))
    left = Dense(3, activation="relu", name="left")(inputs)
    right = Dense(2, activation="tanh", name="right")(inputs)
    out = Dense(2, activation="softmax", name="out")(Concatenate()([left, right]))
    return Model(inputs, out, name="branchy", seed=0)


def test_functional_and_nested_models_round_trip_through_safetensors_by_extension(tmp_path):
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    model = branching_model()
    nested = Sequential([Input(shape=(4,)), branching_model(), Dense(3)])
    for name, original in [("f", model), ("n", nested)]:
        original.save(tmp_path / f"{name}.safetensors")
        restored = load_model(tmp_path / f"{name}.safetensors")
        assert np.array_equal(restored.predict(x), original.predict(x))
        save_weights(original, tmp_path / f"{name}.weights.safetensors")
        fresh = load_model(tmp_path / f"{name}.safetensors")
        fresh.set_weights([np.zeros_like(w) for w in fresh.get_weights()])
        load_weights(fresh, tmp_path / f"{name}.weights.safetensors")
        assert np.array_equal(fresh.predict(x), original.predict(x))


def test_functional_model_round_trips_through_keras_files_exactly(tmp_path):
    model = branching_model()
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    x = np.random.default_rng(2).normal(size=(6, 4)).astype(np.float32)
    model.save(tmp_path / "m.keras")
    restored = load_model(tmp_path / "m.keras")
    assert np.array_equal(restored.predict(x), model.predict(x))
    assert restored.get_config() == model.get_config()
    save_weights(model, tmp_path / "m.weights.h5")
    restored.set_weights([np.zeros_like(w) for w in restored.get_weights()])
    load_weights(restored, tmp_path / "m.weights.h5")
    assert np.array_equal(restored.predict(x), model.predict(x))


def test_nested_model_to_keras_layout_is_refused_clearly(tmp_path):
    model = Sequential([Input(shape=(4,)), branching_model(), Dense(3)])
    message = (
        "layer 'branchy' (Model) has no Keras equivalent known to multilayer, so the model "
        "cannot be written as a Keras file"
    )
    for path, call in [
        ("m.keras", lambda p: model.save(p)),
        ("m.weights.h5", lambda p: save_weights(model, p)),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            call(tmp_path / path)
        assert not (tmp_path / path).exists()


def test_multilayer_functional_model_loads_in_keras_with_the_same_predictions(tmp_path, keras):
    from multilayer.layers import Add, Average, Concatenate, Multiply
    from multilayer.models import Model

    a, b = Input(shape=(3,), name="a"), Input(shape=(5,), name="b")
    left = Dense(4, activation="relu", name="left")(a)
    right = Dense(4, activation="tanh", name="right")(Dropout(0.2)(b))
    both = Dense(4, name="both")(Concatenate()([left, right, a]))
    mixed = Average()([Multiply()([left, right]), both, Add()([left, both])])
    first = Dense(2, activation="softmax", name="first")(mixed)
    second = Dense(1, name="second")(Concatenate()([mixed, right]))
    model = Model([a, b], [first, second], seed=4)
    rng = np.random.default_rng(3)
    x = [rng.normal(size=(7, 3)).astype(np.float32), rng.normal(size=(7, 5)).astype(np.float32)]
    model.save(tmp_path / "m.keras")
    save_weights(model, tmp_path / "m.weights.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = keras.saving.load_model(tmp_path / "m.keras")
    ours = model.predict(x)
    for mine, keras_output in zip(ours, theirs.predict(x, verbose=0), strict=True):
        assert np.allclose(keras_output, mine, rtol=1e-5, atol=1e-6)
    assert [layer.name for layer in theirs.layers] == [
        layer.name for layer in keras_format.keras_layer_order(model)
    ]
    for weight in theirs.weights:
        weight.assign(np.zeros(weight.shape))
    theirs.load_weights(tmp_path / "m.weights.h5")
    for mine, keras_output in zip(ours, theirs.predict(x, verbose=0), strict=True):
        assert np.allclose(keras_output, mine, rtol=1e-5, atol=1e-6)
    # and back: Keras saves it, multilayer reads Keras' functional file
    theirs.save(tmp_path / "back.keras")
    again = load_model(tmp_path / "back.keras")
    for mine, back in zip(ours, again.predict(x), strict=True):
        assert np.allclose(back, mine, rtol=1e-5, atol=1e-6)


def test_dense_constraints_are_refused_rather_than_dropped(tmp_path):
    """Writing a Dense with a kernel constraint used to put null in the Keras config."""
    import multilayer as keras

    model = keras.Sequential(
        [
            keras.Input(shape=(3,)),
            keras.layers.Dense(2, kernel_constraint=keras.constraints.MaxNorm(2.0), name="d"),
        ]
    )
    with pytest.raises(
        ValueError,
        match=re.escape(
            "layer 'd': kernel_constraint has no .keras translation in multilayer yet, so the "
            "model cannot be written as a Keras file without losing it; save it to .safetensors "
            "instead"
        ),
    ):
        model.save(tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()
    model.save(tmp_path / "m.safetensors")
    assert keras.models.load_model(tmp_path / "m.safetensors").layers[-1].kernel_constraint
