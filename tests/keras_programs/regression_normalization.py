"""The TensorFlow "basic regression" tutorial idioms: a Normalization(axis=-1) layer adapted to
the training features (mean/variance checked), Sequential([normalizer, Dense(64, relu), ...,
Dense(1)]), loss="mean_absolute_error", Adam(0.001), validation_split, history to judge
training, evaluate returning a scalar, predict(...).flatten(), a one-feature linear model."""

import json

import numpy as np

import multilayer as keras
from multilayer import layers

rng = np.random.default_rng(0)
n = 400
displacement = rng.uniform(70, 450, size=n)
weight = rng.uniform(1600, 5100, size=n)
horsepower = 0.2 * displacement + rng.uniform(40, 80, size=n)
year = rng.integers(70, 83, size=n)
mpg = 60 - 0.05 * horsepower - 0.006 * weight + 0.4 * (year - 70) + rng.normal(scale=1.0, size=n)
features = np.stack([displacement, weight, horsepower, year], axis=1).astype("float32")
labels = mpg.astype("float32")
train_features, test_features = features[:320], features[320:]
train_labels, test_labels = labels[:320], labels[320:]

normalizer = layers.Normalization(axis=-1)
normalizer.adapt(np.array(train_features))
np.testing.assert_allclose(
    np.array(normalizer.mean).reshape(-1), train_features.mean(axis=0), rtol=1e-4
)
np.testing.assert_allclose(
    np.array(normalizer.variance).reshape(-1), train_features.var(axis=0), rtol=1e-3
)
assert np.asarray(normalizer.mean).shape == (1, 4)

hp_normalizer = layers.Normalization(input_shape=[1], axis=None)
hp_normalizer.adapt(np.array(train_features[:, 2]))
keras.utils.set_random_seed(0)
hp_model = keras.Sequential([hp_normalizer, layers.Dense(units=1)])
hp_model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.1), loss="mean_absolute_error")
hp_model.fit(train_features[:, 2], train_labels, epochs=30, verbose=0, validation_split=0.2)
hp_mae = hp_model.evaluate(test_features[:, 2], test_labels, verbose=0)
assert isinstance(hp_mae, float), type(hp_mae)


def build_and_compile_model(norm):
    model = keras.Sequential(
        [
            norm,
            layers.Dense(64, activation="relu"),
            layers.Dense(64, activation="relu"),
            layers.Dense(1),
        ]
    )
    model.compile(loss="mean_absolute_error", optimizer=keras.optimizers.Adam(0.001))
    return model


dnn_model = build_and_compile_model(normalizer)
history = dnn_model.fit(train_features, train_labels, validation_split=0.2, verbose=0, epochs=60)
dnn_mae = dnn_model.evaluate(test_features, test_labels, verbose=0)
test_predictions = dnn_model.predict(test_features, verbose=0).flatten()
assert test_predictions.shape == (80,)
assert sorted(history.history) == ["loss", "val_loss"]
assert dnn_mae < 2.5, dnn_mae  # the noise is 1.0; mpg spans about 30
assert dnn_mae < hp_mae
print("RESULT " + json.dumps({"dnn_mae": dnn_mae, "hp_mae": hp_mae}))
