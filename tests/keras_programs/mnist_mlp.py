"""The keras.io / book "MNIST MLP" idioms: flatten + scale, to_categorical, Sequential with
Input, Dense/Dropout, summary(), compile with string names, fit(validation_split=...),
evaluate() returning [loss, accuracy], predict + argmax, history.history keys."""

import json

import numpy as np
from _data import mnist_subset

import multilayer as keras
from multilayer import layers

(x_train, y_train), (x_test, y_test) = mnist_subset()
x_train = x_train.reshape(-1, 784).astype("float32") / 255
x_test = x_test.reshape(-1, 784).astype("float32") / 255
num_classes = 10
y_train_cat = keras.utils.to_categorical(y_train, num_classes)
y_test_cat = keras.utils.to_categorical(y_test, num_classes)

keras.utils.set_random_seed(1)
model = keras.Sequential(
    [
        keras.Input(shape=(784,)),
        layers.Dense(128, activation="relu"),
        layers.Dropout(0.2),
        layers.Dense(64, activation="relu"),
        layers.Dropout(0.2),
        layers.Dense(num_classes, activation="softmax"),
    ]
)
model.summary()
model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
history = model.fit(x_train, y_train_cat, batch_size=128, epochs=4, validation_split=0.1, verbose=0)
score = model.evaluate(x_test, y_test_cat, verbose=0)
probs = model.predict(x_test[:20], verbose=0)
pred = np.argmax(probs, axis=1)

assert sorted(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"], history.history
assert len(history.history["loss"]) == 4
assert history.history["loss"][-1] < history.history["loss"][0]
assert isinstance(score, list) and len(score) == 2, score
assert score[1] > 0.88, score
assert probs.shape == (20, 10) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
assert pred.dtype.kind == "i"
assert model.count_params() == 784 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10
print(
    "RESULT "
    + json.dumps(
        {
            "accuracy": float(score[1]),
            "params": model.count_params(),
            "history_keys": sorted(history.history),
        }
    )
)
