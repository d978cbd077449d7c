"""The structured-data "imbalanced classification" example idioms: normalise with training
statistics, Dense + Dropout binary classifier, metrics=[FalseNegatives, FalsePositives,
TrueNegatives, TruePositives, Precision, Recall], a class_weight dict from the class counts,
validation_data, ModelCheckpoint("name_at_epoch_{epoch}.keras")."""

import json
import os
import sys
import tempfile

import numpy as np

import multilayer as keras

tmp = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()
rng = np.random.default_rng(0)
n = 3000
features = rng.normal(size=(n, 10)).astype("float32") * rng.uniform(0.5, 20, size=10).astype(
    "float32"
)
score = features[:, 0] / 10 - features[:, 1] / 5 + rng.normal(scale=0.5, size=n)
targets = (score > 2.2).astype("uint8")[:, None]  # a few percent positives
num_val = int(n * 0.2)
train_features, val_features = features[:-num_val].copy(), features[-num_val:].copy()
train_targets, val_targets = targets[:-num_val], targets[-num_val:]

counts = np.bincount(train_targets[:, 0])
weight_for_0 = 1.0 / counts[0]
weight_for_1 = 1.0 / counts[1]
mean = np.mean(train_features, axis=0)
train_features -= mean
val_features -= mean
std = np.std(train_features, axis=0)
train_features /= std
val_features /= std


def build_model():
    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [
            keras.Input(shape=train_features.shape[1:]),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    metrics = [
        keras.metrics.FalseNegatives(name="fn"),
        keras.metrics.FalsePositives(name="fp"),
        keras.metrics.TrueNegatives(name="tn"),
        keras.metrics.TruePositives(name="tp"),
        keras.metrics.Precision(name="precision"),
        keras.metrics.Recall(name="recall"),
    ]
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy", metrics=metrics
    )
    return model


model = build_model()
callbacks = [
    keras.callbacks.ModelCheckpoint(os.path.join(tmp, "fraud_model_at_epoch_{epoch}.keras"))
]
class_weight = {0: weight_for_0, 1: weight_for_1}
hist = model.fit(
    train_features,
    train_targets,
    batch_size=256,
    epochs=5,
    verbose=0,
    callbacks=callbacks,
    validation_data=(val_features, val_targets),
    class_weight=class_weight,
)
assert sorted(os.listdir(tmp)) == [f"fraud_model_at_epoch_{i}.keras" for i in range(1, 6)]
logs = model.evaluate(val_features, val_targets, verbose=0, return_dict=True)
assert logs["tp"] + logs["fn"] == val_targets.sum()
assert logs["tp"] + logs["fp"] + logs["tn"] + logs["fn"] == num_val
assert abs(logs["recall"] - logs["tp"] / (logs["tp"] + logs["fn"])) < 1e-6
assert set(hist.history) >= {"val_fn", "val_fp", "val_tn", "val_tp", "val_precision", "val_recall"}

unweighted = build_model()
unweighted.fit(train_features, train_targets, batch_size=256, epochs=5, verbose=0)
plain = unweighted.evaluate(val_features, val_targets, verbose=0, return_dict=True)
assert logs["recall"] >= plain["recall"], (logs, plain)  # the class weights buy recall
assert logs["recall"] > 0.8, logs
print(
    "RESULT "
    + json.dumps(
        {
            "positives": int(val_targets.sum()),
            "recall": logs["recall"],
            "recall_unweighted": plain["recall"],
        }
    )
)
