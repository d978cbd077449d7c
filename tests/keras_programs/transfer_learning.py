"""The transfer-learning / fine-tuning guide idioms: a trained base model, base.trainable = False,
a new functional model calling base(inputs, training=False), compile + fit of the head only
(base weights unchanged), trainable_weights / non_trainable_weights counts, then unfreezing,
recompiling with a very low learning rate and fine-tuning (base weights change)."""

import json

import numpy as np

import multilayer as keras
from multilayer import layers

rng = np.random.default_rng(0)
x = rng.normal(size=(256, 8)).astype("float32")
# "pretrained" features: the base model is trained on its own (a projection of the inputs)
target = np.maximum(x @ rng.normal(size=(8, 8)).astype("float32"), 0)
y_new = (target[:, :1] > np.median(target[:, 0])).astype("float32")  # the new task

keras.utils.set_random_seed(0)
base_model = keras.Sequential(
    [
        keras.Input(shape=(8,)),
        layers.Dense(16, activation="relu"),
        layers.BatchNormalization(),
        layers.Dense(8, activation="relu"),
    ],
    name="base",
)
base_model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
base_model.fit(x, target, epochs=20, batch_size=32, verbose=0)

base_model.trainable = False
assert len(base_model.trainable_weights) == 0
assert len(base_model.non_trainable_weights) == 8  # 2 Dense (kernel, bias) + BN (4)

inputs = keras.Input(shape=(8,))
h = base_model(inputs, training=False)
outputs = layers.Dense(1)(h)
model = keras.Model(inputs, outputs)
assert len(model.trainable_weights) == 2
model.compile(
    optimizer=keras.optimizers.Adam(1e-2),
    loss=keras.losses.BinaryCrossentropy(from_logits=True),
    metrics=[keras.metrics.BinaryAccuracy()],
)
frozen_before = [np.array(w) for w in base_model.get_weights()]
model.fit(x, y_new, epochs=10, batch_size=32, verbose=0)
frozen_after = [np.array(w) for w in base_model.get_weights()]
assert all(np.array_equal(a, b) for a, b in zip(frozen_before, frozen_after, strict=True)), (
    "frozen base moved"
)

base_model.trainable = True
assert len(model.trainable_weights) == 2 + 6  # BN moving statistics stay non-trainable
model.compile(
    optimizer=keras.optimizers.Adam(1e-5),
    loss=keras.losses.BinaryCrossentropy(from_logits=True),
    metrics=[keras.metrics.BinaryAccuracy()],
)
model.fit(x, y_new, epochs=1, batch_size=32, verbose=0)
tuned = [np.array(w) for w in base_model.get_weights()]
moved = [not np.array_equal(a, b) for a, b in zip(frozen_after, tuned, strict=True)]
assert moved[0] and moved[1], moved  # the first Dense's kernel and bias were fine-tuned
loss, acc = model.evaluate(x, y_new, verbose=0)
assert acc > 0.7, acc
print(
    "RESULT "
    + json.dumps(
        {
            "n_trainable_frozen": 2,
            "n_trainable_unfrozen": len(model.trainable_weights),
            "n_nontrainable_base": len(base_model.non_trainable_weights),
        }
    )
)
