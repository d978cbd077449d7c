"""The Deep Learning with Python notebooks' MLP idioms (chapter 4): multi-hot vectorisation
of word-index sequences, `from keras import models, layers`, models.Sequential + add,
optimizer="rmsprop", a hand-split validation set passed as validation_data, reading
history.history["val_loss"] to pick the epoch count, retraining a fresh model, predict; and
the K-fold regression loop with a build_model() function, metrics=["mae"], averaged
per-epoch history["val_mae"]."""

import json

import numpy as np

import multilayer as keras
from multilayer import layers, models

rng = np.random.default_rng(0)
vocab = 1000
good, bad = rng.choice(vocab, 40, replace=False), rng.choice(vocab, 40, replace=False)


def review(label):
    words = list(rng.integers(0, vocab, size=rng.integers(20, 60)))
    words += list(rng.choice(good if label else bad, size=5))
    return words


labels = rng.integers(0, 2, size=2000)
sequences = [review(label) for label in labels]


def vectorize_sequences(sequences, dimension=vocab):
    results = np.zeros((len(sequences), dimension))
    for i, sequence in enumerate(sequences):
        for j in sequence:
            results[i, j] = 1.0
    return results


x_all = vectorize_sequences(sequences)
y_all = np.asarray(labels).astype("float32")
x_train, y_train, x_test, y_test = x_all[:1500], y_all[:1500], x_all[1500:], y_all[1500:]
x_val, partial_x_train = x_train[:500], x_train[500:]
y_val, partial_y_train = y_train[:500], y_train[500:]


def imdb_model():
    model = models.Sequential()
    model.add(layers.Dense(16, activation="relu", input_shape=(vocab,)))
    model.add(layers.Dense(16, activation="relu"))
    model.add(layers.Dense(1, activation="sigmoid"))
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    return model


keras.utils.set_random_seed(0)
model = imdb_model()
history = model.fit(
    partial_x_train,
    partial_y_train,
    epochs=6,
    batch_size=128,
    validation_data=(x_val, y_val),
    verbose=0,
)
history_dict = history.history
assert sorted(history_dict.keys()) == ["accuracy", "loss", "val_accuracy", "val_loss"]
best_epochs = int(np.argmin(history_dict["val_loss"])) + 1
model = imdb_model()
model.fit(x_train, y_train, epochs=best_epochs, batch_size=128, verbose=0)
results = model.evaluate(x_test, y_test, verbose=0)
predictions = model.predict(x_test, verbose=0)
assert predictions.shape == (500, 1) and ((predictions >= 0) & (predictions <= 1)).all()
assert results[1] > 0.85, results

# K-fold validation of a small regression model
features = rng.normal(size=(300, 13)).astype("float32")
targets = (features[:, 0] * 3 + features[:, 1] ** 2 + 20).astype("float32")
mean, std = features.mean(axis=0), features.std(axis=0)
features = (features - mean) / std


def build_model():
    model = keras.Sequential(
        [layers.Dense(32, activation="relu"), layers.Dense(32, activation="relu"), layers.Dense(1)]
    )
    model.compile(optimizer="rmsprop", loss="mse", metrics=["mae"])
    return model


k, num_epochs = 3, 15
num_val_samples = len(features) // k
all_mae_histories = []
for i in range(k):
    val_data = features[i * num_val_samples : (i + 1) * num_val_samples]
    val_targets = targets[i * num_val_samples : (i + 1) * num_val_samples]
    partial_train_data = np.concatenate(
        [features[: i * num_val_samples], features[(i + 1) * num_val_samples :]], axis=0
    )
    partial_train_targets = np.concatenate(
        [targets[: i * num_val_samples], targets[(i + 1) * num_val_samples :]], axis=0
    )
    model = build_model()
    history = model.fit(
        partial_train_data,
        partial_train_targets,
        validation_data=(val_data, val_targets),
        epochs=num_epochs,
        batch_size=16,
        verbose=0,
    )
    all_mae_histories.append(history.history["val_mae"])
average_mae_history = [np.mean([x[i] for x in all_mae_histories]) for i in range(num_epochs)]
assert average_mae_history[-1] < average_mae_history[0] / 3, average_mae_history
print(
    "RESULT "
    + json.dumps({"test_accuracy": results[1], "final_val_mae": float(average_mae_history[-1])})
)
