"""Keras' model API (issue 10 item 2): weights as variables, trainable flags honoured by
every optimizer, layers / get_layer, build((None, n)), add after build and pop, weight
files, to_json / model_from_json, and model(x).numpy()."""

import json
import os
import pickle
import re
import warnings

import numpy as np
import pytest

import multilayer as keras
from multilayer.engine import optimizers as optimizer_module
from multilayer.errors import ModelFileError
from multilayer.layers import Dense, Dropout
from multilayer.models import Model, Sequential, model_from_json
from multilayer.models.outputs import OutputArray


def _data(n=64, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype("float32")
    y = np.eye(k, dtype="float32")[rng.integers(0, k, n)]
    return x, y


def _mlp(seed=1, names=("hidden", "out")):
    return Sequential(
        [
            Dense(5, activation="relu", name=names[0], input_shape=(4,)),
            Dense(3, activation="softmax", name=names[1]),
        ],
        seed=seed,
    )


# -- weights as variables ---------------------------------------------------------------------
def test_model_weights_are_variables_with_numpy_shape_name_path():
    model = _mlp()
    weights = model.weights
    assert [w.path for w in weights] == ["hidden/kernel", "hidden/bias", "out/kernel", "out/bias"]
    assert [w.name for w in weights] == ["kernel", "bias", "kernel", "bias"]
    assert [w.shape for w in weights] == [(4, 5), (5,), (5, 3), (3,)]
    assert weights[0].dtype == "float32" and weights[0].ndim == 2 and len(weights[0]) == 4
    for variable, array in zip(weights, model.get_weights(), strict=True):
        assert np.array_equal(variable.numpy(), array)
        assert np.array_equal(np.asarray(variable), array)
    copy = weights[0].numpy()
    copy += 1  # numpy() is a copy
    assert np.array_equal(weights[0].numpy(), model.get_weights()[0])
    weights[1].assign(np.full(5, 0.5))
    assert np.array_equal(model.layers[0].get_weights()[1], np.full(5, 0.5, "float32"))
    assert repr(weights[0]) == "<Variable path=hidden/kernel, shape=(4, 5), dtype=float32>"
    with pytest.raises(
        ValueError,
        match=re.escape(
            "cannot assign a value of shape (3,) to variable 'hidden/bias' of shape (5,)"
        ),
    ):
        weights[1].assign(np.zeros(3))
    assert model.variables[0].path == "hidden/kernel"
    assert len(model.trainable_variables) == 4 and model.non_trainable_variables == []


def test_a_variable_of_an_unbuilt_model_says_to_build_it():
    model = Sequential([Dense(2, name="d")])
    assert model.weights == []  # no input shape: nothing known yet, as in Keras
    layer = Dense(2, name="lonely")
    layer.build((3,))
    (kernel, _) = layer.trainable_weights
    assert kernel.shape == (3, 2)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "variable 'lonely/kernel' has no value yet: build the model (model.build, fit or "
            "predict) to allocate its weights"
        ),
    ):
        kernel.numpy()
    assert layer.get_weights() == []


def test_layer_get_and_set_weights_with_exact_errors():
    model = _mlp()
    layer = model.get_layer("hidden")
    kernel, bias = layer.get_weights()
    assert kernel.shape == (4, 5) and bias.shape == (5,)
    layer.set_weights([np.ones((4, 5)), np.zeros(5)])
    assert np.array_equal(model.get_weights()[0], np.ones((4, 5), "float32"))
    with pytest.raises(
        ValueError,
        match=re.escape("layer 'hidden' (Dense) has 2 weights, set_weights got 1 arrays"),
    ):
        layer.set_weights([np.ones((4, 5))])
    with pytest.raises(
        ValueError,
        match=re.escape(
            "layer 'hidden': weight 'kernel' has shape (4, 5), set_weights got an array of "
            "shape (5, 4)"
        ),
    ):
        layer.set_weights([np.ones((5, 4)), np.zeros(5)])
    unbuilt = Dense(2, name="alone")
    unbuilt.build((3,))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "layer 'alone' has no weights allocated yet: build the model holding it first "
            "(model.build, fit or predict)"
        ),
    ):
        unbuilt.set_weights([np.ones((3, 2)), np.zeros(2)])


# -- trainable ----------------------------------------------------------------------------------
def test_trainable_flags_split_the_weight_lists_and_the_summary_counts():
    model = _mlp()
    model.layers[0].trainable = False
    assert [w.path for w in model.trainable_weights] == ["out/kernel", "out/bias"]
    assert [w.path for w in model.non_trainable_weights] == ["hidden/kernel", "hidden/bias"]
    assert [w.trainable for w in model.weights] == [False, False, True, True]
    lines = []
    model.summary(print_fn=lines.append)
    text = lines[0]
    assert " Total params: 43 (172.00 B)" in text
    assert " Trainable params: 18 (72.00 B)" in text
    assert " Non-trainable params: 25 (100.00 B)" in text
    model.trainable = False  # a model's flag sets every layer's (Keras 3)
    assert [layer.trainable for layer in model.layers] == [False, False]
    assert model.trainable_weights == []
    model.trainable = True
    assert [layer.trainable for layer in model.layers] == [True, True]
    with pytest.raises(TypeError, match=re.escape("trainable must be True or False, got 0")):
        model.trainable = 0


def _optimizer_classes():
    found, pending = [], [optimizer_module.Optimizer]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            pending.append(sub)
            if not sub.__name__.startswith("_"):  # shared bases such as _Moments
                found.append(sub)
    return sorted(found, key=lambda cls: cls.__name__)


def _frozen_config(cls):
    kwargs = {"learning_rate": 0.05, "weight_decay": 0.1}
    if cls is optimizer_module.SGD:
        kwargs["momentum"] = 0.9
    return kwargs


@pytest.mark.parametrize("cls", _optimizer_classes(), ids=lambda cls: cls.__name__)
def test_a_frozen_layer_is_bitwise_unchanged_by_every_optimizer(cls):
    """Weight decay and momentum included: frozen parameters never reach the optimizer."""
    x, y = _data()
    model = _mlp()
    model.get_layer("hidden").trainable = False
    model.compile(optimizer=cls(**_frozen_config(cls)), loss="categorical_crossentropy")
    frozen = [w.copy() for w in model.get_layer("hidden").get_weights()]
    trained = [w.copy() for w in model.get_layer("out").get_weights()]
    model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    model.train_on_batch(x[:8], y[:8])
    for before, after in zip(frozen, model.get_layer("hidden").get_weights(), strict=True):
        assert np.array_equal(before, after)
    assert not np.array_equal(trained[0], model.get_layer("out").get_weights()[0])
    assert model.optimizer.iterations == 13


def test_frozen_layers_train_like_a_model_without_them():
    """The trainable part follows the updates of the same layer trained alone on the frozen
    layer's outputs (same optimizer, same batches, clipnorm per tensor)."""
    x, y = _data(n=48)
    model = _mlp()
    model.get_layer("hidden").trainable = False
    model.compile(
        optimizer=keras.optimizers.Adam(0.01, clipnorm=0.5), loss="categorical_crossentropy"
    )
    kernel, bias = model.get_layer("hidden").get_weights()
    features = np.maximum(x @ kernel + bias, 0).astype("float32")
    alone = Sequential([Dense(3, activation="softmax", input_shape=(5,))], seed=9)
    alone.set_weights(model.get_layer("out").get_weights())
    alone.compile(
        optimizer=keras.optimizers.Adam(0.01, clipnorm=0.5), loss="categorical_crossentropy"
    )
    model.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    alone.fit(features, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    for ours, reference in zip(
        model.get_layer("out").get_weights(), alone.get_weights(), strict=True
    ):
        np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-6)


def test_the_trainable_flags_are_read_when_compile_runs():
    """Keras: changing ``trainable`` after compile() takes effect at the next compile()."""
    x, y = _data()
    model = _mlp()
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    model.get_layer("hidden").trainable = False  # not recompiled: still trained
    before = model.get_layer("hidden").get_weights()[0].copy()
    message = (
        f"model {model.name!r}: a layer's trainable flag changed after compile(); as in Keras, "
        "the change takes effect when compile() is called again"
    )
    with pytest.warns(UserWarning, match=re.escape(message)):
        model.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(before, model.get_layer("hidden").get_weights()[0])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")  # now frozen
    before = model.get_layer("hidden").get_weights()[0].copy()
    model.fit(x, y, epochs=1, verbose=0)
    assert np.array_equal(before, model.get_layer("hidden").get_weights()[0])
    model.get_layer("hidden").trainable = True  # fine-tuning: unfreeze and recompile
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(before, model.get_layer("hidden").get_weights()[0])


def test_gan_pattern_a_model_frozen_inside_another_still_trains_on_its_own():
    """Compile D; set D.trainable = False; compile A = [G, D]: A.fit leaves D unchanged,
    D.fit still trains D (its compile saw it trainable)."""
    rng = np.random.default_rng(3)
    noise = rng.normal(size=(32, 2)).astype("float32")
    samples = rng.normal(size=(32, 3)).astype("float32")
    labels = rng.integers(0, 2, size=(32, 1)).astype("float32")
    discriminator = Sequential(
        [Dense(4, activation="relu", input_shape=(3,)), Dense(1, activation="sigmoid")], seed=1
    )
    discriminator.compile(optimizer="adam", loss="binary_crossentropy")
    discriminator.trainable = False
    generator = Sequential([Dense(3, input_shape=(2,))], seed=2)
    gan = Sequential([generator, discriminator], seed=3)
    gan.compile(optimizer="adam", loss="binary_crossentropy")
    assert [w.path for w in gan.trainable_weights] == [
        f"{generator.layers[0].name}/kernel",
        f"{generator.layers[0].name}/bias",
    ]
    d_before = [w.copy() for w in discriminator.get_weights()]
    g_before = [w.copy() for w in generator.get_weights()]
    gan.fit(noise, np.ones((32, 1), "float32"), epochs=2, verbose=0)
    for before, after in zip(d_before, discriminator.get_weights(), strict=True):
        assert np.array_equal(before, after)
    assert not np.array_equal(g_before[0], generator.get_weights()[0])
    with pytest.warns(UserWarning, match="trainable flag changed after compile"):
        discriminator.fit(samples, labels, epochs=2, verbose=0)
    assert not np.array_equal(d_before[0], discriminator.get_weights()[0])


def test_a_frozen_functional_base_inside_a_sequential_model_fine_tuning():
    x, y = _data()
    inputs = keras.Input(shape=(4,))
    base = Model(inputs, Dense(6, activation="relu", name="features")(inputs), name="base")
    model = Sequential([base, Dense(3, activation="softmax", name="head")], seed=4)
    base.trainable = False
    assert base.get_layer("features").trainable is False
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    before = base.get_weights()
    model.fit(x, y, epochs=2, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, base.get_weights(), strict=True))
    assert [w.path for w in model.non_trainable_weights] == ["features/kernel", "features/bias"]


def test_a_layer_frozen_with_every_parameter_trains_nothing_and_saves_its_flag(tmp_path):
    x, y = _data()
    model = _mlp()
    for layer in model.layers:
        layer.trainable = False
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    before = model.get_weights()
    model.fit(x, y, epochs=1, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    model.get_layer("out").trainable = True
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "m.safetensors"
    model.save(path)
    loaded = keras.load_model(path)
    assert [layer.trainable for layer in loaded.layers] == [False, True]
    assert loaded.optimizer.get_state()["slots"]["m"].shape == (18,)  # the head's 15 + 3
    before = loaded.get_layer("hidden").get_weights()[0].copy()
    loaded.fit(x, y, epochs=1, verbose=0)
    assert np.array_equal(before, loaded.get_layer("hidden").get_weights()[0])


# -- layers, get_layer, build ------------------------------------------------------------------
def test_get_layer_by_name_or_index_with_keras_messages():
    model = _mlp(names=("a", "b"))
    assert model.get_layer("b") is model.layers[1]
    assert model.get_layer(index=0) is model.layers[0]
    assert model.get_layer(index=-1) is model.layers[1]
    cases = [
        ({}, "Provide either a layer name or layer index at `get_layer`."),
        ({"name": "zz"}, "No such layer: zz. Existing layers are: ['a', 'b']."),
        ({"index": 5}, "Was asked to retrieve layer at index 5 but model only has 2 layers."),
        (
            {"name": "a", "index": 1},
            "Provide only a layer name or a layer index. Received: index=1, name=a.",
        ),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=re.escape(message)):
            model.get_layer(**kwargs)


def test_get_layer_messages_are_keras_own():
    os.environ.setdefault("KERAS_BACKEND", "jax")  # Keras 3 as an oracle, where installed
    pytest.importorskip("jax")
    keras3 = pytest.importorskip("keras")
    if not keras3.__version__.startswith("3"):
        pytest.skip("Keras 3 needed")
    theirs = keras3.Sequential(
        [keras3.Input((4,)), keras3.layers.Dense(3, name="a"), keras3.layers.Dense(2, name="b")]
    )
    ours = _mlp(names=("a", "b"))
    for kwargs in ({}, {"name": "zz"}, {"index": 5}, {"name": "a", "index": 1}):
        messages = []
        for model in (theirs, ours):
            with pytest.raises(ValueError) as raised:
                model.get_layer(**kwargs)
            messages.append(str(raised.value))
        assert messages[0] == messages[1]


def test_build_accepts_keras_batch_shapes():
    model = Sequential([Dense(3, name="d")], seed=0)
    model.build((None, 7))
    assert model.built and model.input_shape == (7,)
    assert model.get_layer("d").get_weights()[0].shape == (7, 3)

    class TwoInputs(Model):
        def __init__(self):
            super().__init__()
            self.merge = keras.layers.Concatenate()
            self.out = Dense(2)

        def call(self, inputs):
            return self.out(self.merge(inputs))

    sub = TwoInputs()
    sub.build([(None, 3), (None, 2)])
    assert sub.input_shapes() == [(3,), (2,)]
    assert sub.count_params() == 12
    legacy = Sequential([Dense(3)])
    legacy.build((5,))  # multilayer's sample shape, still accepted
    assert legacy.input_shape == (5,)


def test_add_after_summary_rebuilds_and_keeps_the_weights():
    x, y = _data()
    model = Sequential([Dense(5, activation="relu", name="hidden")], seed=2)
    model.build((None, 4))
    model.summary(print_fn=lambda text: None)
    hidden = model.get_weights()
    model.add(Dense(3, activation="softmax", name="out"))
    assert model.built and model.output_shape == (3,)
    assert all(np.array_equal(a, b) for a, b in zip(hidden, model.get_weights()[:2], strict=True))
    assert model.count_params() == 25 + 18
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    model.add(Dense(3, activation="softmax", name="extra"))  # after fit: optimizer rebuilt
    model.fit(x, y, epochs=1, verbose=0)
    assert model.predict(x).shape == (64, 3)
    assert model.optimizer.get_state()["slots"]["m"].shape == (25 + 18 + 12,)


def test_pop_removes_the_last_layer_and_rebuilds():
    x, _ = _data()
    model = _mlp()
    kept = model.get_layer("hidden").get_weights()
    removed = model.pop()
    assert removed.name == "out" and [layer.name for layer in model.layers] == ["hidden"]
    assert model.output_shape == (5,) and model.predict(x).shape == (64, 5)
    assert all(np.array_equal(a, b) for a, b in zip(kept, model.get_weights(), strict=True))
    model.add(Dense(2, name="new_head"))
    assert model.predict(x).shape == (64, 2)
    model.pop()
    model.pop()
    with pytest.raises(
        TypeError, match=re.escape(f"Sequential.pop: model {model.name!r} has no layers to remove")
    ):
        model.pop()


def test_add_refuses_a_layer_already_in_a_graph():
    inputs = keras.Input(shape=(3,))
    used = Dense(2, name="used")
    used(inputs)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "layer 'used' is already connected in a model graph; multilayer does not share a "
            "layer between several calls"
        ),
    ):
        Sequential([used])


# -- weight files --------------------------------------------------------------------------------
def test_save_weights_and_load_weights_round_trip_exactly(tmp_path):
    x, y = _data()
    model = _mlp()
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "ckpt" / "model.weights.safetensors"
    path.parent.mkdir()
    model.save_weights(path)
    other = _mlp(seed=7)
    other.load_weights(path)
    assert all(
        np.array_equal(a, b) for a, b in zip(model.get_weights(), other.get_weights(), strict=True)
    )
    assert np.array_equal(model.predict(x), other.predict(x))
    with pytest.raises(FileExistsError, match=re.escape(f"{path} exists and overwrite=False")):
        model.save_weights(path, overwrite=False)


def test_weight_file_names_and_unbuilt_models_are_refused_clearly(tmp_path):
    model = _mlp()
    for name in ("w.h5", "w.safetensors", "w.keras"):
        with pytest.raises(
            ValueError,
            match=re.escape(
                f"{tmp_path / name}: a weights file name must end in .weights.h5 (Keras' "
                "layout) or .weights.safetensors"
            ),
        ):
            model.save_weights(tmp_path / name)
    # .weights.h5 (Keras' layout) is a weights file too: an exact round trip, but by_name
    # and skip_mismatch apply to .weights.safetensors only.
    pytest.importorskip("h5py")
    model.save_weights(tmp_path / "w.weights.h5")
    copy = _mlp(seed=2)
    copy.build((None, 4))
    assert not (copy.get_weights()[0] == model.get_weights()[0]).all()
    copy.load_weights(tmp_path / "w.weights.h5")
    assert all((a == b).all() for a, b in zip(model.get_weights(), copy.get_weights(), strict=True))
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"{tmp_path / 'w.weights.h5'}: by_name and skip_mismatch apply to "
            ".weights.safetensors files"
        ),
    ):
        copy.load_weights(tmp_path / "w.weights.h5", by_name=True)
    unbuilt = Sequential([Dense(2)], name="nobody")
    with pytest.raises(
        ValueError,
        match=re.escape(
            "load_weights: model 'nobody' is not built: build it first (model.build((None, n)), "
            "an Input or input_shape=), then load the weights"
        ),
    ):
        unbuilt.load_weights(tmp_path / "w.weights.safetensors")
    with pytest.raises(
        ValueError, match=re.escape("cannot save the weights of model 'nobody': it is not built")
    ):
        unbuilt.save_weights(tmp_path / "w.weights.safetensors")
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        model.load_weights(tmp_path / "missing.weights.safetensors")


def test_load_weights_mismatch_is_refused_unless_skip_mismatch(tmp_path):
    small = _mlp()
    path = tmp_path / "small.weights.safetensors"
    small.save_weights(path)
    wider = Sequential(
        [Dense(5, activation="relu", name="hidden", input_shape=(4,)), Dense(4, name="out")], seed=3
    )
    before = wider.get_weights()
    with pytest.raises(
        ModelFileError,
        match=re.escape(
            f"{path}: tensor 'layers.1.kernel' has shape (5, 3), but weight 'out/kernel' of "
            "the model has shape (5, 4) (load_weights(skip_mismatch=True) skips it)"
        ),
    ):
        wider.load_weights(path)
    assert all(np.array_equal(a, b) for a, b in zip(before, wider.get_weights(), strict=True))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wider.load_weights(path, skip_mismatch=True)
    assert "skipped weights ['out/kernel (file shape (5, 3), model shape (5, 4))', " in str(
        caught[0].message
    )
    assert np.array_equal(wider.get_weights()[0], small.get_weights()[0])
    assert np.array_equal(wider.get_weights()[2], before[2])
    deeper = Sequential(
        [
            Dense(5, activation="relu", name="hidden", input_shape=(4,)),
            Dense(3, name="out"),
            Dense(2, name="more"),
        ]
    )
    with pytest.raises(
        ModelFileError,
        match=re.escape(
            f"{path}: tensors do not match the model: missing ['layers.2.bias', "
            "'layers.2.kernel'], unexpected [] (load_weights(skip_mismatch=True) loads the "
            "others)"
        ),
    ):
        deeper.load_weights(path)


def test_load_weights_by_name_matches_layer_names(tmp_path):
    source = _mlp(names=("encoder", "classifier"))
    path = tmp_path / "named.weights.safetensors"
    source.save_weights(path)
    target = Sequential(
        [
            Dense(5, activation="relu", name="encoder", input_shape=(4,)),
            Dense(7, activation="relu", name="new_block"),
            Dense(3, name="other_head"),
        ],
        seed=5,
    )
    before = target.get_weights()
    target.load_weights(path, by_name=True)
    after = target.get_weights()
    assert np.array_equal(after[0], source.get_weights()[0])
    assert np.array_equal(after[1], source.get_weights()[1])
    assert all(np.array_equal(a, b) for a, b in zip(before[2:], after[2:], strict=True))


def test_by_name_needs_a_file_that_records_layer_names(tmp_path):
    safetensors = pytest.importorskip("safetensors.numpy")
    model = _mlp()
    path = tmp_path / "bare.weights.safetensors"
    path.write_bytes(
        safetensors.save(
            dict(model.named_weights()),
            metadata={"format": "multilayer.weights", "format_version": "1"},
        )
    )
    model.load_weights(path)  # by position: fine
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"{path}: load_weights(by_name=True) needs the layer names, which this file does "
            "not record; load it without by_name"
        ),
    ):
        model.load_weights(path, by_name=True)
    poisoned = dict(model.named_weights())
    poisoned["layers.0.bias"] = np.full(5, np.nan, "float32")
    path.write_bytes(
        safetensors.save(poisoned, metadata={"format": "multilayer.weights", "format_version": "1"})
    )
    with pytest.raises(
        ModelFileError,
        match=re.escape(f"{path}: tensor 'layers.0.bias' contains NaN or infinite values"),
    ):
        model.load_weights(path)


# -- to_json / model_from_json ---------------------------------------------------------------------
def test_to_json_is_keras_shaped_and_model_from_json_rebuilds_the_architecture():
    x, _ = _data()
    model = _mlp()
    data = json.loads(model.to_json())
    assert data["class_name"] == "Sequential" and data["registered_name"] is None
    assert data["module"] == "multilayer.models"
    assert [layer["class_name"] for layer in data["config"]["layers"]] == ["Dense", "Dense"]
    assert model.to_json(indent=2).startswith('{\n  "module"')
    clone = model_from_json(model.to_json())
    assert isinstance(clone, Sequential)
    assert [layer.name for layer in clone.layers] == ["hidden", "out"]
    clone.set_weights(model.get_weights())
    assert np.array_equal(clone.predict(x), model.predict(x))

    inputs = keras.Input(shape=(4,), name="x")
    hidden = Dense(6, activation="relu", name="h")(inputs)
    functional = Model(inputs, [Dense(2, name="a")(hidden), Dense(1, name="b")(hidden)])
    copy = keras.models.model_from_json(functional.to_json())
    assert type(copy) is Model and copy.output_names == ["a", "b"]
    copy.set_weights(functional.get_weights())
    for ours, theirs in zip(copy.predict(x), functional.predict(x), strict=True):
        assert np.array_equal(ours, theirs)


@pytest.mark.parametrize(
    "text, message",
    [
        ("{", "model_from_json: not valid JSON (Expecting property name enclosed in double quotes"),
        (
            '{"class_name": "Dense", "config": {}}',
            "model_from_json: expected a JSON object with class_name 'Sequential' or 'Functional' and a 'config' (what model.to_json() writes)",
        ),
        (
            '{"class_name": "Sequential", "config": {}, "extra": 1}',
            "model_from_json: unexpected keys ['extra']",
        ),
        (
            '{"module": "keras", "class_name": "Sequential", "config": {}}',
            "model_from_json: a configuration written by module 'keras'; this reads multilayer's model.to_json() (Keras' files: load_model('model.keras'))",
        ),
        (
            '{"class_name": "Sequential", "config": {"layers": 3}}',
            "'layers' must be a list of layer configurations",
        ),
    ],
)
def test_model_from_json_refuses_other_json_with_exact_messages(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        model_from_json(text)


# -- model(x) ------------------------------------------------------------------------------------
def test_model_call_on_arrays_returns_an_ndarray_with_numpy():
    x, _ = _data()
    model = _mlp()
    out = model(x)
    assert isinstance(out, np.ndarray) and isinstance(out, OutputArray)
    assert type(out.numpy()) is np.ndarray
    assert np.array_equal(out.numpy(), model.predict(x))
    assert np.array_equal(model(x, training=False), model.predict(x))
    assert repr(out) == repr(model.predict(x))  # prints as an ndarray
    assert str(out) == str(model.predict(x))
    assert type(out * 2) is np.ndarray and type(out + out) is np.ndarray
    assert type(np.exp(out)) is np.ndarray and type(out == out) is np.ndarray
    assert type(out.sum()) is np.float32
    assert float(out[0, 0]) == float(model.predict(x)[0, 0])
    assert out[0].numpy().shape == (3,)  # views keep numpy(), as tensor slices do
    assert type(pickle.loads(pickle.dumps(out))) is np.ndarray
    assert type(model.predict(x)) is np.ndarray  # predict is unchanged


def test_model_call_on_several_outputs_wraps_each():
    x, _ = _data()
    inputs = keras.Input(shape=(4,))
    hidden = Dense(4)(inputs)
    listed = Model(inputs, [Dense(2)(hidden), Dense(1)(hidden)])
    first, second = listed(x)
    assert first.numpy().shape == (64, 2) and second.numpy().shape == (64, 1)
    inputs = keras.Input(shape=(4,))
    named = Model(inputs, {"p": Dense(2)(inputs), "q": Dropout(0.5)(Dense(1)(inputs))})
    result = named(x)
    assert set(result) == {"p", "q"} and result["q"].numpy().shape == (64, 1)


class _CrashAt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("crash")


def test_backup_and_restore_with_a_frozen_layer_resumes_bitwise(tmp_path):
    """The optimizer state covers the trainable weights only; a resumed run with the same
    frozen layer continues exactly where the interrupted one was."""
    x, y = _data(n=96)

    def make(seed=1):
        model = _mlp(seed=seed)
        model.get_layer("hidden").trainable = False
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        return model

    reference = make()
    expected = reference.fit(x, y, batch_size=16, epochs=4, verbose=0)
    backup = tmp_path / "backup"
    with pytest.raises(RuntimeError, match="crash"):
        make().fit(x, y, batch_size=16, epochs=4, verbose=0,
                   callbacks=[keras.callbacks.BackupAndRestore(backup), _CrashAt(2)])  # fmt: skip
    resumed = make(seed=42)
    history = resumed.fit(x, y, batch_size=16, epochs=4, verbose=0,
                          callbacks=[keras.callbacks.BackupAndRestore(backup)])  # fmt: skip
    assert history.history == expected.history
    for ours, theirs in zip(resumed.get_weights(), reference.get_weights(), strict=True):
        assert ours.tobytes() == theirs.tobytes()


def test_feature_extraction_from_layer_outputs_keras_idiom():
    """keras.Model(model.inputs, [layer.output for layer in model.layers]) and
    keras.Model(model.input, model.get_layer(name).output) share the trained layers."""
    x, y = _data()
    model = Sequential(
        [keras.Input(shape=(4,)), Dense(5, activation="relu", name="hidden"), Dense(3, name="out")],
        seed=0,
    )
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=1, verbose=0)
    assert model.input.shape == (None, 4) and model.output.shape == (None, 3)
    extractor = keras.Model(inputs=model.inputs, outputs=[layer.output for layer in model.layers])
    inputs, hidden, out = extractor.predict(x)
    assert np.array_equal(inputs, x) and np.array_equal(out, model.predict(x))
    features = keras.Model(model.input, model.get_layer("hidden").output)
    assert np.array_equal(features.predict(x), hidden)
    assert model.get_layer("out").input is model.get_layer("hidden").output
    with pytest.raises(
        AttributeError,
        match=re.escape(
            "layer 'lonely' has never been called and thus has no defined output (call it on "
            "a tensor, or build the model holding it first)"
        ),
    ):
        _ = Dense(2, name="lonely").output
    with pytest.raises(
        AttributeError,
        match=re.escape(
            "model 'later' has no defined output yet: build it first (an Input, input_shape=, "
            "or model.build((None, n)))"
        ),
    ):
        _ = Sequential([Dense(2)], name="later").output


def test_update_trainable_sees_the_optimizer_vector_only():
    """What optimizer-state code (e.g. a moving-average finalisation) writes back lands on
    the trainable parameters only."""
    model = _mlp()
    model.get_layer("hidden").trainable = False
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    frozen = model.get_layer("hidden").get_weights()
    seen = []

    def zero(vector):
        seen.append(vector.size)
        vector[...] = 0

    model._update_trainable(zero)
    assert seen == [18]
    assert all(
        np.array_equal(a, b)
        for a, b in zip(frozen, model.get_layer("hidden").get_weights(), strict=True)
    )
    assert all(not w.any() for w in model.get_layer("out").get_weights())


def test_model_call_with_training_true_runs_dropout_like_keras():
    """Monte Carlo dropout: model(x, training=True) drops units; model(x) does not."""
    x = np.ones((200, 4), "float32")
    inputs = keras.Input(shape=(4,))
    model = Model(inputs, Dropout(0.5)(inputs), seed=0)
    assert np.array_equal(model(x).numpy(), x)
    assert np.array_equal(model(x, training=False).numpy(), x)
    sampled = model(x, training=True)
    assert isinstance(sampled, OutputArray)
    assert set(np.unique(sampled.numpy())) == {0.0, 2.0}  # kept units scaled by 1/(1-rate)
    assert not np.array_equal(sampled.numpy(), model(x, training=True).numpy())
    with pytest.raises(
        TypeError,
        match=re.escape(f"model {model.name!r} got unexpected call arguments ['mask']"),
    ):
        model(x, mask=None)


def test_weight_lists_and_trainable_propagation_match_keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    pytest.importorskip("jax")
    keras3 = pytest.importorskip("keras")
    if not keras3.__version__.startswith("3"):
        pytest.skip("Keras 3 needed")

    def describe(library, base_layers, top):
        inputs = library.Input(shape=(4,))
        hidden = base_layers[1](base_layers[0](inputs))
        base = library.Model(inputs, hidden)
        model = library.Sequential([base, top])
        base.trainable = False
        frozen = [layer.trainable for layer in base.layers]
        base.trainable = True
        base.layers[1].trainable = False
        return {
            "propagated": frozen,
            "weights": [tuple(w.shape) for w in model.weights],
            "trainable": [tuple(w.shape) for w in model.trainable_weights],
            "non_trainable": [tuple(w.shape) for w in model.non_trainable_weights],
            "names": [w.name for w in model.weights],
            "numpy": [w.numpy().shape for w in model.weights],
        }

    ours = describe(keras, [Dense(5), Dense(6)], Dense(2))
    L = keras3.layers
    theirs = describe(keras3, [L.Dense(5), L.Dense(6)], L.Dense(2))
    assert ours == theirs


def test_use_ema_with_a_frozen_layer_finalizes_only_the_trainable_weights():
    """Merge of item 2 (frozen layers) with item 6 (use_ema): at the end of fit the moving
    average replaces the trainable weights; the frozen layer stays bitwise unchanged."""
    import multilayer as keras

    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 5)).astype("float32")
    y = rng.normal(size=(64, 1)).astype("float32")
    model = keras.Sequential(
        [keras.Input(shape=(5,)), keras.layers.Dense(4, name="base"), keras.layers.Dense(1)]
    )
    model.get_layer("base").trainable = False
    model.compile(optimizer=keras.optimizers.Adam(0.01, use_ema=True), loss="mse")
    model.build((None, 5))
    frozen = [w.copy() for w in model.get_layer("base").get_weights()]
    model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    after = model.get_layer("base").get_weights()
    assert all((a == b).all() for a, b in zip(frozen, after, strict=True))
    assert np.isfinite(model.predict(x, verbose=0)).all()
