"""The save-and-load guide idioms: model.save("x.keras") + keras.models.load_model with equal
predictions; get_config / from_config; to_json / model_from_json; get_weights / set_weights to
copy weights between models of the same architecture; save_weights("x.weights.h5") /
load_weights; ModelCheckpoint with a filepath template (creating its folder)."""

import json
import os
import sys
import tempfile

import numpy as np

import multilayer as keras
from multilayer import layers

tmp = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()
rng = np.random.default_rng(0)
x = rng.normal(size=(128, 6)).astype("float32")
y = rng.integers(0, 3, size=(128,))


def get_model():
    inputs = keras.Input(shape=(6,), name="features")
    h = layers.Dense(16, activation="relu", name="hidden")(inputs)
    outputs = layers.Dense(3, activation="softmax", name="probs")(h)
    model = keras.Model(inputs, outputs, name="clf")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


keras.utils.set_random_seed(0)
model = get_model()
ckpt = keras.callbacks.ModelCheckpoint(os.path.join(tmp, "ckpt", "model-{epoch:02d}.keras"))
model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[ckpt])
assert sorted(os.listdir(os.path.join(tmp, "ckpt"))) == ["model-01.keras", "model-02.keras"]
expected = model.predict(x, verbose=0)

path = os.path.join(tmp, "my_model.keras")
model.save(path)
reloaded = keras.models.load_model(path)
np.testing.assert_allclose(reloaded.predict(x, verbose=0), expected, rtol=1e-6, atol=1e-6)
reloaded.fit(x, y, epochs=1, batch_size=32, verbose=0)  # the optimizer state came along

last = keras.models.load_model(os.path.join(tmp, "ckpt", "model-02.keras"))
np.testing.assert_allclose(last.predict(x, verbose=0), expected, rtol=1e-6, atol=1e-6)

config = model.get_config()
clone = keras.Model.from_config(config)
assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
clone.set_weights(model.get_weights())
np.testing.assert_allclose(clone.predict(x, verbose=0), expected, rtol=1e-6, atol=1e-6)

json_config = model.to_json()
from_json = keras.models.model_from_json(json_config)
wpath = os.path.join(tmp, "clf.weights.h5")
model.save_weights(wpath)
from_json.load_weights(wpath)
np.testing.assert_allclose(from_json.predict(x, verbose=0), expected, rtol=1e-6, atol=1e-6)

seq = keras.Sequential([keras.Input(shape=(6,)), layers.Dense(4)])
seq_clone = keras.Sequential.from_config(seq.get_config())
assert seq_clone.count_params() == 6 * 4 + 4
print(
    "RESULT "
    + json.dumps(
        {
            "layers": [layer.name for layer in model.layers],
            "pred0": [round(float(v), 4) for v in expected[0]],
        }
    )
)
