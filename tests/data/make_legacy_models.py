"""How tests/data/legacy_v1_*.safetensors were made (kept for the record; do not rerun).

They were written by multilayer 0.1.0 before the one-registry change, when configs had four
shapes: bare names ("relu"), flat dicts ({"name": "leaky_relu", "negative_slope": 0.1}),
{"name": ..., "config": {...}} for optimizers and {"class_name": ..., "config": {...}} for
layers and schedules. tests/test_registry.py checks that they still load and predict the same.
"""

from __future__ import annotations

import numpy as np

import multilayer as keras
from multilayer import initializers, layers, losses, optimizers, regularizers


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 6)).astype("float32")
    y = rng.integers(0, 3, size=32)
    model = keras.Sequential(
        [
            layers.Input(shape=(6,)),
            layers.Dense(
                5,
                activation=keras.activations.LeakyReLU(0.1),
                kernel_initializer=initializers.RandomNormal(0.0, 0.3),
                kernel_regularizer=regularizers.L1L2(l1=1e-4, l2=1e-3),
                bias_regularizer="l2",
            ),
            layers.Dropout(0.1, seed=3),
            layers.Dense(4, activation="tanh", kernel_initializer="he_normal"),
            layers.Activation("relu"),
            layers.Dense(3, activation="softmax"),
        ],
        seed=7,
    )
    schedule = optimizers.schedules.ExponentialDecay(0.01, decay_steps=10, decay_rate=0.9)
    model.compile(
        optimizer=optimizers.Adam(learning_rate=schedule, amsgrad=True),
        loss=losses.SparseCategoricalCrossentropy(label_smoothing=0.1),
        metrics=["accuracy"],
    )
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    model.save("tests/data/legacy_v1_adam_schedule.safetensors")
    np.save("tests/data/legacy_v1_inputs.npy", x)
    np.save("tests/data/legacy_v1_predictions.npy", model.predict(x, verbose=0))

    plain = keras.Sequential([layers.Input(shape=(6,)), layers.Dense(1)], seed=1)
    plain.compile(optimizer=optimizers.SGD(0.05, momentum=0.9), loss="mse")
    plain.fit(x, x[:, :1], epochs=1, batch_size=8, verbose=0)
    plain.save("tests/data/legacy_v1_sgd_mse.safetensors")


if __name__ == "__main__":
    main()
