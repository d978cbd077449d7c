"""The TensorFlow "overfit and underfit" tutorial idioms: an InverseTimeDecay schedule given
to Adam, Dense(1) logits with BinaryCrossentropy(from_logits=True) as loss and as a named
metric next to "accuracy", EarlyStopping(monitor="val_binary_crossentropy", patience=...),
kernel_regularizer=regularizers.l2(...), Dropout, validation_data, comparing histories of a
plain, an L2-regularised and a dropout model, model.losses (the regularisation term)."""

import json

import numpy as np

import multilayer as keras
from multilayer import layers, regularizers

rng = np.random.default_rng(0)
n_features = 28
x = rng.normal(size=(1200, n_features)).astype("float32")
w = rng.normal(size=(n_features,))
y = ((x @ w + rng.normal(scale=3.0, size=1200)) > 0).astype("float32")[:, None]
x_train, y_train, x_val, y_val = x[:200], y[:200], x[200:], y[200:]  # few samples: overfits

STEPS_PER_EPOCH = 200 // 50
lr_schedule = keras.optimizers.schedules.InverseTimeDecay(
    0.001, decay_steps=STEPS_PER_EPOCH * 10, decay_rate=1, staircase=False
)
assert abs(float(lr_schedule(STEPS_PER_EPOCH * 10)) - 0.0005) < 1e-9


def compile_and_fit(model, max_epochs=40):
    model.compile(
        optimizer=keras.optimizers.Adam(lr_schedule),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[
            keras.metrics.BinaryCrossentropy(from_logits=True, name="binary_crossentropy"),
            "accuracy",
        ],
    )
    stop = keras.callbacks.EarlyStopping(monitor="val_binary_crossentropy", patience=20)
    return model.fit(
        x_train,
        y_train,
        batch_size=50,
        epochs=max_epochs,
        validation_data=(x_val, y_val),
        callbacks=[stop],
        verbose=0,
    )


keras.utils.set_random_seed(0)
plain = keras.Sequential(
    [
        keras.Input(shape=(n_features,)),
        layers.Dense(256, activation="elu"),
        layers.Dense(256, activation="elu"),
        layers.Dense(1),
    ]
)
plain_hist = compile_and_fit(plain)
l2_model = keras.Sequential(
    [
        keras.Input(shape=(n_features,)),
        layers.Dense(256, activation="elu", kernel_regularizer=regularizers.l2(0.001)),
        layers.Dense(256, activation="elu", kernel_regularizer=regularizers.l2(0.001)),
        layers.Dense(1),
    ]
)
l2_hist = compile_and_fit(l2_model)
dropout_model = keras.Sequential(
    [
        keras.Input(shape=(n_features,)),
        layers.Dense(256, activation="elu"),
        layers.Dropout(0.5),
        layers.Dense(256, activation="elu"),
        layers.Dropout(0.5),
        layers.Dense(1),
    ]
)
dropout_hist = compile_and_fit(dropout_model)

assert sorted(plain_hist.history) == [
    "accuracy",
    "binary_crossentropy",
    "loss",
    "val_accuracy",
    "val_binary_crossentropy",
    "val_loss",
], sorted(plain_hist.history)
# without regularisation, loss == the crossentropy metric; with L2 the loss adds the penalty
np.testing.assert_allclose(
    plain_hist.history["val_loss"], plain_hist.history["val_binary_crossentropy"], rtol=1e-4
)
assert all(
    lo > ce
    for lo, ce in zip(l2_hist.history["loss"], l2_hist.history["binary_crossentropy"], strict=True)
)
assert len(l2_model.losses) == 2
penalty = sum(float(np.asarray(p)) for p in l2_model.losses)
kernels = [np.asarray(l2_model.layers[i].kernel) for i in (-3, -2)]
np.testing.assert_allclose(penalty, 0.001 * sum(float(np.sum(k**2)) for k in kernels), rtol=1e-4)
# the plain model overfits: training crossentropy far below validation crossentropy
gap_plain = (
    plain_hist.history["val_binary_crossentropy"][-1]
    - plain_hist.history["binary_crossentropy"][-1]
)
gap_dropout = (
    dropout_hist.history["val_binary_crossentropy"][-1]
    - dropout_hist.history["binary_crossentropy"][-1]
)
assert gap_plain > 0.2 and gap_dropout < gap_plain, (gap_plain, gap_dropout)
print(
    "RESULT "
    + json.dumps(
        {
            "epochs": len(plain_hist.history["loss"]),
            "gap_plain": gap_plain,
            "gap_dropout": gap_dropout,
        }
    )
)
