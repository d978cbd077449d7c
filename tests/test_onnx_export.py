"""ONNX export (issue 12, item 2): ``model.export("model.onnx")`` and ``mlp export``.

Every exported graph is run with onnxruntime and compared with multilayer's own predict:
the default recipe's model on the whole MNIST test set (probabilities within 1e-5 in float32,
the same predicted classes), each convertible layer on random inputs at two batch sizes
(the batch axis is dynamic), functional graphs with named inputs, merges, nested models and
several outputs. Layers with no ONNX form raise ExportError naming them (exact messages).
"""

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import multilayer as keras  # noqa: E402
from multilayer.cli.main import main  # noqa: E402
from multilayer.datasets import mnist  # noqa: E402
from multilayer.engine import layers as L  # noqa: E402
from multilayer.export.onnx import CONVERTERS, ExportError, to_onnx  # noqa: E402
from multilayer.runs import RunDir  # noqa: E402

RNG = np.random.default_rng(12)


def session(model) -> "ort.InferenceSession":
    return ort.InferenceSession(
        to_onnx(model).SerializeToString(), providers=["CPUExecutionProvider"]
    )


def run_onnx(model, feeds) -> dict[str, np.ndarray]:
    sess = session(model)
    if not isinstance(feeds, dict):
        feeds = {"input": feeds}
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds), strict=True))


# -- the default recipe on the whole MNIST test set, through the CLI ----------------------------
@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """``mlp train --epochs 1`` (the default recipe, one epoch) on the real MNIST."""
    path = tmp_path_factory.mktemp("onnx") / "run"
    code = main(["train", "--epochs", "1", "--seed", "0", "--quiet", "--output", str(path)])
    assert code == 0
    return RunDir(path)


@pytest.mark.slow
def test_default_model_parity_on_the_whole_mnist_test_set(default_run, tmp_path, capsys):
    out = tmp_path / "model.onnx"
    code = main(["export", str(default_run.path), "-o", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.splitlines() == [
        f"wrote {out}",
        "  input  input: float32 (batch, 28, 28)",
        "  output probabilities: float32 (batch, 10)",
        "  output label: int64 (batch)",
    ]
    model = default_run.load_model()
    assert model.training_info["recipe"] == "fast"
    (_, _), (x_test, y_test) = mnist.load_data()
    expected = model.predict(x_test)  # raw uint8 pixels: the model rescales them itself
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    probabilities, label = sess.run(None, {"input": x_test.astype(np.float32)})
    assert probabilities.dtype == np.float32 and probabilities.shape == (10000, 10)
    max_diff = float(np.abs(probabilities - expected).max())
    print(f"ONNX parity on MNIST test (10000 images): max |p_onnx - p_multilayer| = {max_diff:.3g}")
    assert max_diff <= 1e-5
    assert np.array_equal(label, expected.argmax(axis=1))
    assert (label == y_test).mean() > 0.95
    # the pixel scale the model takes travels with it
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(meta["multilayer.input_scale"]) == model.input_scale.to_dict()


def test_cli_export_default_path_and_json(default_run, capsys):
    """Without -o the file goes beside the model; --json describes it."""
    code = main(["export", str(default_run.path), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    info = json.loads(captured.out)
    assert info["onnx"] == str(default_run.path / "model.onnx")
    assert info["inputs"] == [{"name": "input", "type": "float32", "shape": ["batch", 28, 28]}]
    assert [o["name"] for o in info["outputs"]] == ["probabilities", "label"]
    sess = ort.InferenceSession(info["onnx"], providers=["CPUExecutionProvider"])
    (_, _), (x_test, _) = mnist.load_data()
    probabilities, label = sess.run(None, {"input": x_test[:7].astype(np.float32)})
    expected = default_run.load_model().predict(x_test[:7])
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    assert np.array_equal(label, expected.argmax(1))
    (default_run.path / "model.onnx").unlink()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["-o", "out.bin"],
            "error: cannot tell the export format of '{tmp}/out.bin': name the file *.onnx "
            "(the one format multilayer exports)",
        ),
        (["-o", "out.onnx", "--opset", "7"], "error: opset_version must be an integer from 18"),
    ],
)
def test_cli_export_errors(default_run, tmp_path, capsys, args, message):
    args = [a if not a.startswith("out") else str(tmp_path / a) for a in args]
    code = main(["export", str(default_run.path), *args])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(message.format(tmp=tmp_path)), err
    assert len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_cli_export_missing_model(tmp_path, capsys):
    code = main(["export", str(tmp_path / "nothing"), "-o", str(tmp_path / "m.onnx")])
    assert code == 1
    assert capsys.readouterr().err == f"error: {tmp_path / 'nothing'}: no such file or directory\n"


# -- every convertible layer, on random inputs ----------------------------------------------------
def floats(*shape):
    return RNG.normal(size=shape).astype(np.float32)


def ints(high, *shape, low=0):
    return RNG.integers(low, high, size=shape).astype(np.float32)


def with_nan(x):
    """``x`` with NaN (a missing value, for the layers that take raw table values) in places."""
    x = x.copy()
    x.flat[:: max(x.size // 3, 1)] = np.nan
    return x


def one_layer(layer, sample_shape):
    inputs = keras.Input(shape=sample_shape)
    return keras.Model(inputs, layer(inputs))


def adapted_normalization():
    layer = L.Normalization(axis=-1)
    layer.adapt(floats(50, 3, 4) * 3 + 1)
    return layer


def trained_batchnorm():
    """A BatchNormalization with non-trivial moving statistics, gamma and beta."""
    model = keras.Sequential([keras.Input(shape=(5,)), L.BatchNormalization(momentum=0.5)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(floats(64, 5) * 2 + 3, floats(64, 5), epochs=2, batch_size=16, verbose=0)
    return model


# (test id, model builder, input maker): each model's ONNX output must match its predict
LAYER_CASES = [
    ("Dense-relu", lambda: one_layer(L.Dense(6, activation="relu"), (4,)), lambda n: floats(n, 4)),
    (
        "Dense-nobias-tanh",
        lambda: one_layer(L.Dense(3, use_bias=False, activation="tanh"), (4,)),
        lambda n: floats(n, 4),
    ),
    (
        "Dense-sigmoid",
        lambda: one_layer(L.Dense(3, activation="sigmoid"), (4,)),
        lambda n: floats(n, 4) * 4,
    ),
    ("Dense-elu", lambda: one_layer(L.Dense(3, activation="elu"), (4,)), lambda n: floats(n, 4)),
    (
        "Dense-softplus",
        lambda: one_layer(L.Dense(3, activation="softplus"), (4,)),
        lambda n: floats(n, 4) * 30,
    ),
    ("Dense-gelu", lambda: one_layer(L.Dense(3, activation="gelu"), (4,)), lambda n: floats(n, 4)),
    (
        "Dense-gelu-tanh",
        lambda: one_layer(L.Dense(3, activation=keras.activations.GELU(approximate=True)), (4,)),
        lambda n: floats(n, 4),
    ),
    (
        "Dense-leaky",
        lambda: one_layer(L.Dense(3, activation="leaky_relu"), (4,)),
        lambda n: floats(n, 4),
    ),
    (
        "Activation-softmax",
        lambda: one_layer(L.Activation("softmax"), (5,)),
        lambda n: floats(n, 5),
    ),
    ("Activation-linear", lambda: one_layer(L.Activation("linear"), (5,)), lambda n: floats(n, 5)),
    ("Dropout", lambda: one_layer(L.Dropout(0.5), (5,)), lambda n: floats(n, 5)),
    ("GaussianNoise", lambda: one_layer(L.GaussianNoise(0.5), (5,)), lambda n: floats(n, 5)),
    ("GaussianDropout", lambda: one_layer(L.GaussianDropout(0.5), (5,)), lambda n: floats(n, 5)),
    ("AlphaDropout", lambda: one_layer(L.AlphaDropout(0.5), (5,)), lambda n: floats(n, 5)),
    (
        "ActivityRegularization",
        lambda: one_layer(L.ActivityRegularization(l1=0.1), (5,)),
        lambda n: floats(n, 5),
    ),
    ("Identity", lambda: one_layer(L.Identity(), (5,)), lambda n: floats(n, 5)),
    ("Flatten", lambda: one_layer(L.Flatten(), (2, 3, 4)), lambda n: floats(n, 2, 3, 4)),
    ("Reshape", lambda: one_layer(L.Reshape((3, -1)), (2, 6)), lambda n: floats(n, 2, 6)),
    (
        "Rescaling",
        lambda: one_layer(L.Rescaling(1 / 255, offset=-0.5), (7,)),
        lambda n: ints(256, n, 7),
    ),
    ("Softmax-last", lambda: one_layer(L.Softmax(), (3, 4)), lambda n: floats(n, 3, 4)),
    ("Softmax-axes", lambda: one_layer(L.Softmax(axis=[1, 2]), (3, 4)), lambda n: floats(n, 3, 4)),
    ("ReLU", lambda: one_layer(L.ReLU(), (6,)), lambda n: floats(n, 6)),
    (
        "ReLU-options",
        lambda: one_layer(L.ReLU(max_value=0.8, negative_slope=0.1, threshold=0.2), (6,)),
        lambda n: floats(n, 6),
    ),
    ("LeakyReLU", lambda: one_layer(L.LeakyReLU(0.2), (6,)), lambda n: floats(n, 6)),
    ("ELU", lambda: one_layer(L.ELU(0.7), (6,)), lambda n: floats(n, 6)),
    (
        "PReLU",
        lambda: one_layer(
            L.PReLU(alpha_initializer=keras.initializers.RandomUniform(0.1, 0.5), shared_axes=[1]),
            (3, 4),
        ),
        lambda n: floats(n, 3, 4),
    ),
    ("BatchNormalization", trained_batchnorm, lambda n: floats(n, 5) * 2 + 3),
    (
        "BatchNormalization-axis1",
        lambda: one_layer(
            L.BatchNormalization(
                axis=1, gamma_initializer="random_normal", beta_initializer="random_normal"
            ),
            (3, 4),
        ),
        lambda n: floats(n, 3, 4),
    ),
    (
        "LayerNormalization",
        lambda: one_layer(L.LayerNormalization(beta_initializer="random_normal"), (6,)),
        lambda n: floats(n, 6) * 5,
    ),
    (
        "LayerNormalization-axes",
        lambda: one_layer(L.LayerNormalization(axis=[1, 2], center=False), (3, 4)),
        lambda n: floats(n, 3, 4),
    ),
    (
        "Normalization-adapted",
        lambda: one_layer(adapted_normalization(), (3, 4)),
        lambda n: floats(n, 3, 4),
    ),
    (
        "Normalization-given-invert",
        lambda: one_layer(
            L.Normalization(mean=[1.0, 2.0, 3.0], variance=[4.0, 0.0, 0.25], invert=True), (3,)
        ),
        lambda n: floats(n, 3),
    ),
    ("Embedding", lambda: one_layer(L.Embedding(9, 4), (5,)), lambda n: ints(9, n, 5)),
    (
        "CategoryEncoding-multi_hot",
        lambda: one_layer(L.CategoryEncoding(6), (3,)),
        lambda n: ints(6, n, 3),
    ),
    (
        "CategoryEncoding-count",
        lambda: one_layer(L.CategoryEncoding(6, output_mode="count"), (4,)),
        lambda n: ints(6, n, 4),
    ),
    (
        "CategoryEncoding-one_hot",
        lambda: one_layer(L.CategoryEncoding(6, output_mode="one_hot"), (1,)),
        lambda n: ints(6, n, 1),
    ),
    (
        "CategoryEncoding-one_hot-2d",
        lambda: one_layer(L.CategoryEncoding(6, output_mode="one_hot"), (2,)),
        lambda n: ints(6, n, 2),
    ),
    (
        "IntegerLookup-int",
        lambda: one_layer(L.IntegerLookup(vocabulary=[12, 36, 1138, 42]), (4,)),
        lambda n: RNG.choice([12, 36, 1138, 42, 7, -3], size=(n, 4)).astype(np.float32),
    ),
    (
        "IntegerLookup-mask-oov3",
        lambda: one_layer(
            L.IntegerLookup(vocabulary=[12, 36, 42], num_oov_indices=3, mask_token=0), (4,)
        ),
        lambda n: RNG.choice([0, 12, 36, 42, 7, -5, 100], size=(n, 4)).astype(np.float32),
    ),
    (
        "IntegerLookup-multi_hot",
        lambda: one_layer(L.IntegerLookup(vocabulary=[3, 5, 8], output_mode="multi_hot"), (3,)),
        lambda n: RNG.choice([3, 5, 8, 1], size=(n, 3)).astype(np.float32),
    ),
    (
        "IntegerLookup-missing",
        lambda: one_layer(L.IntegerLookup(vocabulary=[3, 5, 8], mask_token=0), (3,)),
        lambda n: with_nan(RNG.choice([0, 3, 5, 8, 1], size=(n, 3)).astype(np.float32)),
    ),
    (
        "RobustScaling",
        lambda: one_layer(L.RobustScaling(center=[1.0, -2.0, 0.5], scale=[0.5, 2.0, 0.0]), (3,)),
        lambda n: with_nan(floats(n, 3) * 4),
    ),
    (
        "RobustScaling-indicators-noclip",
        lambda: one_layer(
            L.RobustScaling(
                center=[0.0, 1.0], scale=[1.0, 3.0], clip=None, missing_indicator=[False, True]
            ),
            (2,),
        ),
        lambda n: with_nan(np.where(floats(n, 2) > 1, np.float32(np.inf), floats(n, 2))),
    ),
    (
        "RobustScaling-all-indicators",
        lambda: one_layer(L.RobustScaling(center=2.0, scale=0.25, missing_indicator=True), (3,)),
        lambda n: with_nan(floats(n, 3) * 10),
    ),
    (
        "Discretization-int",
        lambda: one_layer(L.Discretization(bin_boundaries=[-1.0, 0.0, 0.0, 1.5]), (5,)),
        lambda n: np.concatenate([floats(n, 4), np.zeros((n, 1), np.float32)], axis=1),
    ),
    (
        "Discretization-count",
        lambda: one_layer(L.Discretization(bin_boundaries=[-0.5, 0.5], output_mode="count"), (4,)),
        lambda n: floats(n, 4),
    ),
    (
        "Discretization-one_hot",
        lambda: one_layer(L.Discretization(bin_boundaries=[0.0], output_mode="one_hot"), (1,)),
        lambda n: floats(n, 1),
    ),
]


def merge_model(layer, shapes):
    inputs = [keras.Input(shape=s, name=f"in{i}") for i, s in enumerate(shapes)]
    return keras.Model(inputs, layer(inputs))


def merge_feeds(n, shapes):
    return {f"in{i}": floats(n, *s) for i, s in enumerate(shapes)}


MERGE_CASES = [
    ("Add", L.Add(), [(4,), (4,), (4,)]),
    ("Subtract", L.Subtract(), [(4,), (4,)]),
    ("Multiply", L.Multiply(), [(2, 3), (2, 3)]),
    ("Average", L.Average(), [(4,), (4,), (4,)]),
    ("Maximum", L.Maximum(), [(4,), (4,)]),
    ("Minimum", L.Minimum(), [(4,), (4,)]),
    ("Concatenate", L.Concatenate(), [(2,), (3,)]),
    ("Concatenate-axis1", L.Concatenate(axis=1), [(2, 3), (1, 3)]),
    ("Dot", L.Dot(axes=1), [(4,), (4,)]),
    ("Dot-normalize", L.Dot(axes=1, normalize=True), [(4,), (4,)]),
    ("Dot-3d", L.Dot(axes=(2, 1)), [(2, 3), (3, 5)]),
]


def assert_parity(model, make_input):
    for n in (1, 7):  # the batch axis is dynamic
        x = make_input(n)
        expected = model.predict(x)
        got = run_onnx(model, x)
        out = got.get("output", got.get("probabilities"))
        assert out.shape == expected.shape
        np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("make_model", "make_input"), [c[1:] for c in LAYER_CASES], ids=[c[0] for c in LAYER_CASES]
)
def test_layer_parity(make_model, make_input):
    assert_parity(make_model(), make_input)


@pytest.mark.parametrize(
    ("layer", "shapes"), [c[1:] for c in MERGE_CASES], ids=[c[0] for c in MERGE_CASES]
)
def test_merge_parity(layer, shapes):
    model = merge_model(layer, shapes)
    for n in (1, 5):
        feeds = merge_feeds(n, shapes)
        expected = model.predict([feeds[f"in{i}"] for i in range(len(shapes))])
        np.testing.assert_allclose(run_onnx(model, feeds)["output"], expected, rtol=1e-6, atol=1e-6)


def test_every_converter_has_a_parity_test():
    tested = {c[0].split("-")[0] for c in LAYER_CASES + MERGE_CASES} | {"StringLookup", "OpLayer"}
    assert tested == {cls.__name__ for cls in CONVERTERS}


def test_string_lookup_takes_a_string_input():
    """StringLookup reads the model input directly: the ONNX input is a string tensor."""
    inputs = keras.Input(shape=(3,), name="colour")
    lookup = L.StringLookup(vocabulary=["red", "green", "blue"], mask_token="")
    encoding = L.CategoryEncoding(lookup.vocabulary_size(), output_mode="count")
    model = keras.Model(inputs, encoding(lookup(inputs)))
    x = np.array([["red", "blue", "pink"], ["", "green", "green"]], dtype=object)
    sess = session(model)
    assert sess.get_inputs()[0].type == "tensor(string)"
    (got,) = sess.run(None, {"input": x})
    expected = encoding.forward(lookup.forward(x))
    assert np.array_equal(got, expected)
    # [mask, OOV, red, green, blue]: row 0 is red, blue and one unknown; row 1 a mask, 2 greens
    assert got.tolist() == [[0, 1, 1, 0, 1], [1, 0, 0, 2, 0]]


def test_string_lookup_after_a_numeric_layer_is_refused():
    inputs = keras.Input(shape=(3,))
    model = keras.Model(inputs, L.StringLookup(vocabulary=["a"])(L.Identity()(inputs)))
    with pytest.raises(ExportError) as error:
        to_onnx(model)
    assert str(error.value) == (
        f"StringLookup layer {model.layers[-1].name!r} takes strings: in an ONNX export it must "
        "read a model input directly (which then becomes a string input)"
    )


def test_encodings_give_zeros_for_ids_out_of_range():
    """Documented difference: multilayer raises, the ONNX graph encodes nothing."""
    model = one_layer(L.CategoryEncoding(3, output_mode="one_hot"), (1,))
    got = run_onnx(model, np.array([[-1], [3], [1]], np.float32))["output"]
    assert got.tolist() == [[0, 0, 0], [0, 0, 0], [0, 1, 0]]
    with pytest.raises(ValueError, match="outside"):
        model.predict(np.array([[3]], np.float32))


# -- functional graphs ------------------------------------------------------------------------------
def test_functional_graph_with_named_inputs_nested_model_and_two_outputs():
    image = keras.Input(shape=(6,), name="image")
    meta = keras.Input(shape=(2,), name="meta")
    tower = keras.Sequential(
        [keras.Input(shape=(6,)), L.Dense(5, activation="relu"), L.BatchNormalization()]
    )
    x = L.Concatenate()([tower(image), L.Dense(3)(meta)])
    digit = L.Dense(4, activation="softmax", name="digit")(x)
    size = L.Dense(1, name="size")(L.Add()([L.Dense(4)(x), digit]))
    flag = L.Dense(1, activation="sigmoid", name="flag")(x)
    model = keras.Model(
        {"image": image, "meta": meta}, {"digit": digit, "size": size, "flag": flag}
    )
    feeds = {"image": floats(9, 6), "meta": floats(9, 2)}
    expected = model.predict(feeds)
    sess = session(model)
    assert [i.name for i in sess.get_inputs()] == ["image", "meta"]
    names = [o.name for o in sess.get_outputs()]
    assert names == ["digit", "digit_label", "size", "flag", "flag_label"]
    got = dict(zip(names, sess.run(None, feeds), strict=True))
    for key in ("digit", "size", "flag"):
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-6, atol=1e-6)
    assert np.array_equal(got["digit_label"], expected["digit"].argmax(1))
    assert np.array_equal(got["flag_label"], (expected["flag"][:, 0] > 0.5).astype(np.int64))


def test_a_regression_model_has_one_output_named_output():
    model = one_layer(L.Dense(2), (3,))
    assert [o.name for o in session(model).get_outputs()] == ["output"]


def test_float64_model_exports_double():
    inputs = keras.Input(shape=(3,))
    model = keras.Model(inputs, L.Dense(4, activation="softmax")(inputs), dtype="float64")
    x = RNG.normal(size=(5, 3))
    got = run_onnx(model, x)
    assert got["probabilities"].dtype == np.float64
    np.testing.assert_allclose(got["probabilities"], model.predict(x), rtol=1e-12, atol=1e-14)


# -- model.export and its errors ---------------------------------------------------------------------
def test_model_export_writes_a_checked_file(tmp_path):
    model = one_layer(L.Dense(3, activation="softmax"), (4,))
    path = model.export(tmp_path / "m.onnx")
    assert path == tmp_path / "m.onnx"
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]
    # format given explicitly, a newer opset, a verbose line
    model.export(tmp_path / "n.ONNX", format="onnx", opset_version=21)
    assert onnx.load(str(tmp_path / "n.ONNX")).opset_import[0].version == 21


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        (
            "m.keras",
            {},
            "cannot tell the export format of '{p}': name the file *.onnx (the one format multilayer exports)",
        ),
        ("m.txt", {"format": "onnx"}, "an ONNX file must be named *.onnx, got '{p}'"),
        (
            "m.onnx",
            {"format": "tf_saved_model"},
            "unknown export format 'tf_saved_model' (a Keras format multilayer does not write): the one format is 'onnx'",
        ),
        ("m.onnx", {"format": "pmml"}, "unknown export format 'pmml': the one format is 'onnx'"),
        (
            "m.onnx",
            {"input_signature": [1]},
            "input_signature is not supported: the inputs are the model's own (float, or strings for a StringLookup input), with a dynamic batch size",
        ),
        (
            "m.onnx",
            {"opset_version": 12},
            "opset_version must be an integer from 18 to {newest}, got 12",
        ),
        (
            "m.onnx",
            {"jax2tf_kwargs": {}},
            "export: unexpected arguments ['jax2tf_kwargs'] (only opset_version)",
        ),
    ],
)
def test_export_argument_errors(tmp_path, name, kwargs, message):
    model = one_layer(L.Dense(3), (4,))
    path = tmp_path / name
    with pytest.raises(ExportError) as error:
        model.export(path, **kwargs)
    assert str(error.value) == message.format(p=path, newest=onnx.defs.onnx_opset_version())
    assert list(tmp_path.iterdir()) == []


def test_hashing_has_no_onnx_form(tmp_path):
    pytest.importorskip("farmhash")
    inputs = keras.Input(shape=(2,))
    model = keras.Model(
        inputs, L.Dense(2)(L.Hashing(8, name="hashed", output_mode="multi_hot")(inputs))
    )
    with pytest.raises(ExportError) as error:
        model.export(tmp_path / "m.onnx")
    assert str(error.value) == (
        "layer 'hashed' (Hashing) has no ONNX form: FarmHash Fingerprint64, the hash it "
        "computes, is not an ONNX operator"
    )
    assert list(tmp_path.iterdir()) == []


def test_op_layer_without_onnx_form():
    inputs = keras.Input(shape=(3,))
    model = keras.Model(inputs, keras.ops.clip(L.Dense(3)(inputs), -1.0, 1.0))
    with pytest.raises(ExportError) as error:
        to_onnx(model)
    layer = model.layers[-1]
    assert str(error.value) == (
        f"layer {layer.name!r} (OpLayer) has no ONNX form: keras.ops.clip with these "
        "arguments is not converted (converted: abs, absolute, add, divide, exp, log, max, "
        "maximum, mean, min, minimum, multiply, negative, power, relu, sqrt, subtract, sum, "
        "tanh, sigmoid, square, softmax, log_softmax); use layers instead"
    )


def op_model(make, shapes=((4,),)):
    inputs = [keras.Input(shape=s) for s in shapes]
    out = make(*inputs)
    return keras.Model(inputs if len(inputs) > 1 else inputs[0], out)


OP_CASES = [
    ("exp", lambda t: keras.ops.exp(t)),
    ("log-of-exp", lambda t: keras.ops.log(keras.ops.add(keras.ops.exp(t), 1.0))),
    ("sqrt-abs", lambda t: keras.ops.sqrt(keras.ops.abs(t))),
    ("negative-tanh-relu", lambda t: keras.ops.negative(keras.ops.tanh(keras.ops.relu(t)))),
    ("sigmoid-square", lambda t: keras.ops.square(keras.ops.sigmoid(t))),
    ("add-number", lambda t: keras.ops.add(t, 2.5)),
    ("divide-number-by", lambda t: keras.ops.divide(1.0, keras.ops.add(keras.ops.abs(t), 1.0))),
    (
        "power-maximum-minimum",
        lambda t: keras.ops.power(keras.ops.minimum(keras.ops.maximum(t, 0.1), 3), 2),
    ),
    ("softmax", lambda t: keras.ops.softmax(t, axis=-1)),
    ("log_softmax", lambda t: keras.ops.log_softmax(t)),
    ("mean-keepdims", lambda t: keras.ops.mean(t, axis=-1, keepdims=True)),
    ("sum", lambda t: keras.ops.sum(t, axis=1, keepdims=True)),
    ("max-min", lambda t: keras.ops.add(keras.ops.max(t, axis=-1), keras.ops.min(t, axis=-1))),
]


@pytest.mark.parametrize("make", [c[1] for c in OP_CASES], ids=[c[0] for c in OP_CASES])
def test_op_layer_parity(make):
    assert_parity(op_model(make), lambda n: floats(n, 4) * 2)


def test_op_layer_on_two_tensors():
    model = op_model(lambda a, b: keras.ops.multiply(keras.ops.subtract(a, b), b), ((3,), (3,)))
    a, b = floats(5, 3), floats(5, 3)
    names = model.input_names
    got = run_onnx(model, {names[0]: a, names[1]: b})["output"]
    np.testing.assert_allclose(got, model.predict([a, b]), rtol=1e-6, atol=1e-6)


def test_a_layer_subclass_is_not_converted_as_its_parent():
    class Doubled(L.Dense):
        def forward(self, x, training=False):
            return 2 * super().forward(x, training)

    model = one_layer(Doubled(2, name="doubled"), (3,))
    with pytest.raises(ExportError) as error:
        to_onnx(model)
    assert str(error.value).startswith(
        "layer 'doubled' (Doubled) has no ONNX form: no converter is registered for its class "
        "(layers that convert: Activation, ActivityRegularization, Add, AlphaDropout,"
    )


def test_unbuilt_model_is_refused():
    model = keras.Sequential([L.Dense(3)])
    with pytest.raises(
        ExportError, match=r"^model '.*' is not built, so its input shape is unknown"
    ):
        to_onnx(model)


def test_export_does_not_need_the_data_dir(tmp_path, monkeypatch):
    """Export reads nothing but the model: it works with no dataset around."""
    monkeypatch.setenv("MULTILAYER_DATA", str(tmp_path / "none"))
    model = one_layer(L.Dense(3, activation="softmax"), (4,))
    assert Path(model.export(tmp_path / "m.onnx")).is_file()


def test_subclassed_and_nested_models():
    class TwoLayers(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden, self.out = L.Dense(8, activation="relu"), L.Dense(3, activation="softmax")

        def call(self, x):
            return self.out(self.hidden(x))

    subclassed = TwoLayers()
    subclassed.build((None, 5))
    inner = keras.Sequential([L.Dense(4, activation="tanh", input_shape=(5,)), L.Dense(4)])
    nested = keras.Sequential([inner, L.Dense(1, activation="sigmoid")])
    nested.build((None, 5))
    x = floats(6, 5)
    for model in (subclassed, nested):
        got = run_onnx(model, x)
        np.testing.assert_allclose(got["probabilities"], model.predict(x), rtol=1e-6, atol=1e-6)
    assert np.array_equal(got["label"], (nested.predict(x)[:, 0] > 0.5).astype(np.int64))


def test_feature_space_table_model():
    """A table model from FeatureSpace (robust scaling with NaN, one-hot and embedded string
    columns, an integer lookup): string columns become string inputs, named as the columns.
    A missing string is given to the ONNX graph as the lookup's OOV token."""
    from multilayer.utils import FeatureSpace

    rng = np.random.default_rng(0)
    n = 120
    age = rng.normal(40, 10, n)
    age[::17] = np.nan
    city = rng.choice(np.array(["paris", "lyon", "nice", None], dtype=object), n)
    zone = rng.choice(np.array([f"z{i}" for i in range(40)], dtype=object), n)
    level = rng.integers(0, 5, n).astype(np.float64)
    data = {"age": age, "city": city, "zone": zone, "level": level}
    space = FeatureSpace(
        {
            "age": "float_robust",
            "city": "string_categorical",
            "zone": "string_categorical",
            "level": "integer_categorical",
        }
    )
    space.adapt(data)
    hidden = L.Dense(8, activation="relu")(space.get_encoded_features())
    model = keras.Model(space.get_inputs(), L.Dense(3, activation="softmax")(hidden))
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"RobustScaling", "StringLookup", "Embedding", "IntegerLookup"} <= kinds
    expected = model.predict({k: v.reshape(-1, 1) for k, v in data.items()})
    sess = session(model)
    assert [(i.name, i.type) for i in sess.get_inputs()] == [
        ("age", "tensor(float)"),
        ("city", "tensor(string)"),
        ("zone", "tensor(string)"),
        ("level", "tensor(float)"),
    ]
    feeds = {
        "age": age.reshape(-1, 1).astype(np.float32),
        "city": np.array(["[UNK]" if c is None else c for c in city], dtype=object).reshape(-1, 1),
        "zone": zone.reshape(-1, 1),
        "level": level.reshape(-1, 1).astype(np.float32),
    }
    probabilities, label = sess.run(None, feeds)
    np.testing.assert_allclose(probabilities, expected, rtol=1e-6, atol=1e-6)
    assert np.array_equal(label, expected.argmax(1))


def test_cli_export_names_the_layer_with_no_onnx_form(tmp_path, capsys):
    inputs = keras.Input(shape=(3,))
    model = keras.Model(inputs, keras.ops.clip(L.Dense(3)(inputs), 0.0, 1.0))
    model.save(tmp_path / "ops.safetensors")
    name = model.layers[-1].name
    code = main(["export", str(tmp_path / "ops.safetensors"), "-o", str(tmp_path / "ops.onnx")])
    captured = capsys.readouterr()
    assert code == 1 and captured.out == ""
    assert captured.err.startswith(
        f"error: layer {name!r} (OpLayer) has no ONNX form: keras.ops.clip with these arguments "
        "is not converted (converted: abs,"
    )
    assert len(captured.err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ops.safetensors"]


def test_cli_export_into_a_missing_directory(tmp_path, capsys):
    model = one_layer(L.Dense(3, activation="softmax"), (4,))
    model.save(tmp_path / "m.safetensors")
    out = tmp_path / "nowhere" / "m.onnx"
    code = main(["export", str(tmp_path / "m.safetensors"), "-o", str(out)])
    assert code == 1
    assert capsys.readouterr().err == (
        f"error: {tmp_path / 'nowhere'}: no such directory to write m.onnx into\n"
    )
