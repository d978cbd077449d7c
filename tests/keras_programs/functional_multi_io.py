"""The functional API guide idioms: named keras.Input's, separate branches merged with
layers.concatenate, two named outputs, compile with loss and loss_weights dicts keyed by output
name, fit with dicts of inputs and targets, predict returning one array per output, a
model used as a layer in another model, model.inputs /
model.outputs, get_layer by name."""

import json

import numpy as np

import multilayer as keras
from multilayer import layers

rng = np.random.default_rng(0)
n, num_tags, num_departments = 512, 12, 4
title = rng.normal(size=(n, 10)).astype("float32")
body = rng.normal(size=(n, 20)).astype("float32")
tags = rng.integers(0, 2, size=(n, num_tags)).astype("float32")
priority = (title[:, :1] + tags[:, :1] > 0.5).astype("float32")
department = np.argmax(body[:, :num_departments] + tags[:, :num_departments], axis=1)
department_onehot = keras.utils.to_categorical(department, num_departments)

keras.utils.set_random_seed(0)
title_input = keras.Input(shape=(10,), name="title")
body_input = keras.Input(shape=(20,), name="body")
tags_input = keras.Input(shape=(num_tags,), name="tags")
title_features = layers.Dense(16, activation="relu")(title_input)
body_features = layers.Dense(16, activation="relu")(body_input)
x = layers.concatenate([title_features, body_features, tags_input])
priority_pred = layers.Dense(1, activation="sigmoid", name="priority")(x)
department_pred = layers.Dense(num_departments, activation="softmax", name="department")(x)
model = keras.Model(
    inputs=[title_input, body_input, tags_input], outputs=[priority_pred, department_pred]
)
assert [t.shape for t in model.inputs] == [(None, 10), (None, 20), (None, num_tags)]
assert len(model.outputs) == 2
assert model.get_layer("department").units == num_departments

model.compile(
    optimizer=keras.optimizers.RMSprop(1e-2),
    loss={
        "priority": keras.losses.BinaryCrossentropy(),
        "department": keras.losses.CategoricalCrossentropy(),
    },
    loss_weights={"priority": 1.0, "department": 0.2},
)
history = model.fit(
    {"title": title, "body": body, "tags": tags},
    {"priority": priority, "department": department_onehot},
    epochs=8,
    batch_size=32,
    verbose=0,
)
assert history.history["loss"][-1] < history.history["loss"][0]
priority_out, department_out = model.predict(
    {"title": title, "body": body, "tags": tags}, verbose=0
)
assert priority_out.shape == (n, 1) and department_out.shape == (n, num_departments)
priority_acc = float(np.mean((priority_out > 0.5) == priority))
department_acc = float(np.mean(np.argmax(department_out, axis=1) == department))
assert priority_acc > 0.85 and department_acc > 0.6, (priority_acc, department_acc)

# a list of arrays in the order of model.inputs works as well as the dict
again = model.predict([title, body, tags], verbose=0)
np.testing.assert_allclose(again[0], priority_out, rtol=1e-6)

# a model is callable like a layer: an encoder inside a bigger model
encoder_input = keras.Input(shape=(20,), name="original")
encoded = layers.Dense(4, activation="relu")(encoder_input)
encoder = keras.Model(encoder_input, encoded, name="encoder")
outer_input = keras.Input(shape=(20,))
decoded = layers.Dense(20)(encoder(outer_input))
autoencoder = keras.Model(outer_input, decoded, name="autoencoder")
autoencoder.compile(optimizer="adam", loss="mse")
autoencoder.fit(body, body, epochs=1, batch_size=64, verbose=0)
assert autoencoder.count_params() == encoder.count_params() + 4 * 20 + 20
print(
    "RESULT "
    + json.dumps(
        {
            "priority_acc": priority_acc,
            "department_acc": department_acc,
            "n_weights": len(model.weights),
        }
    )
)
