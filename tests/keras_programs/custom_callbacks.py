"""The "writing your own callbacks" guide idioms: a Callback subclass overriding every hook and
reading the keys of `logs`; callbacks on fit, evaluate and predict; early stopping at minimum
loss through self.model.stop_training and get_weights/set_weights; a learning-rate schedule
callback that sets self.model.optimizer.learning_rate; LambdaCallback."""

import json

import numpy as np

import multilayer as keras

rng = np.random.default_rng(0)
x = rng.normal(size=(64, 4)).astype("float32")
y = (x @ np.array([1.0, -2.0, 0.5, 3.0], dtype="float32"))[:, None]

keras.utils.set_random_seed(0)


def get_model():
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(1)])
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.05),
        loss="mean_squared_error",
        metrics=["mean_absolute_error"],
    )
    return model


class Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.events = []

    def _rec(self, name, logs):
        self.events.append((name, sorted(logs or {})))

    def on_train_begin(self, logs=None):
        self._rec("train_begin", logs)

    def on_train_end(self, logs=None):
        self._rec("train_end", logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._rec(f"epoch_begin{epoch}", logs)

    def on_epoch_end(self, epoch, logs=None):
        self._rec(f"epoch_end{epoch}", logs)

    def on_test_begin(self, logs=None):
        self._rec("test_begin", logs)

    def on_test_end(self, logs=None):
        self._rec("test_end", logs)

    def on_predict_begin(self, logs=None):
        self._rec("predict_begin", logs)

    def on_predict_end(self, logs=None):
        self._rec("predict_end", logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._rec(f"train_batch_begin{batch}", logs)

    def on_train_batch_end(self, batch, logs=None):
        self._rec(f"train_batch_end{batch}", logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._rec(f"test_batch_begin{batch}", logs)

    def on_test_batch_end(self, batch, logs=None):
        self._rec(f"test_batch_end{batch}", logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._rec(f"predict_batch_begin{batch}", logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._rec(f"predict_batch_end{batch}", logs)


model = get_model()
rec = Recorder()
model.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=[rec])
fit_events = list(rec.events)
rec.events.clear()
model.evaluate(x, y, batch_size=32, verbose=0, callbacks=[rec])
eval_events = list(rec.events)
rec.events.clear()
model.predict(x, batch_size=32, verbose=0, callbacks=[rec])
predict_events = list(rec.events)

names = [e[0] for e in fit_events]
assert names[0] == "train_begin" and names[-1] == "train_end", names
assert names.count("train_batch_end0") == 2 and "epoch_end1" in names
end_logs = dict(fit_events)["epoch_end1"]
assert end_logs == ["loss", "mean_absolute_error"], end_logs
assert dict(fit_events)["train_batch_end1"] == ["loss", "mean_absolute_error"]
assert [e[0] for e in eval_events] == [
    "test_begin",
    "test_batch_begin0",
    "test_batch_end0",
    "test_batch_begin1",
    "test_batch_end1",
    "test_end",
]
assert dict(eval_events)["test_end"] == ["loss", "mean_absolute_error"]
assert [e[0] for e in predict_events][0] == "predict_begin"
assert dict(predict_events)["predict_batch_end0"] == ["outputs"], predict_events


class EarlyStoppingAtMinLoss(keras.callbacks.Callback):
    def __init__(self, patience=0):
        super().__init__()
        self.patience = patience
        self.best_weights = None

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = np.inf

    def on_epoch_end(self, epoch, logs=None):
        current = logs.get("loss")
        if np.less(current, self.best):
            self.best = current
            self.wait = 0
            self.best_weights = self.model.get_weights()
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stopped_epoch = epoch
                self.model.stop_training = True
                self.model.set_weights(self.best_weights)


# A learning rate far too high makes the loss rise; the callback stops and restores the best.
model = get_model()
model.optimizer.learning_rate = 1.2
stopper = EarlyStoppingAtMinLoss(patience=1)
hist = model.fit(x, y, batch_size=64, epochs=30, verbose=0, callbacks=[stopper])

assert stopper.stopped_epoch > 0 and len(hist.history["loss"]) == stopper.stopped_epoch + 1
restored = [np.array(w) for w in model.get_weights()]
assert all(np.array_equal(a, b) for a, b in zip(restored, stopper.best_weights, strict=True))


class CustomLearningRateScheduler(keras.callbacks.Callback):
    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule
        self.seen = []

    def on_epoch_begin(self, epoch, logs=None):
        lr = float(np.array(self.model.optimizer.learning_rate))
        new_lr = self.schedule(epoch, lr)
        self.model.optimizer.learning_rate = new_lr
        self.seen.append(round(float(np.array(self.model.optimizer.learning_rate)), 6))


model = get_model()
sched = CustomLearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch > 0 else lr)
ends = []
lam = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: ends.append(epoch))
model.fit(x, y, batch_size=64, epochs=3, verbose=0, callbacks=[sched, lam])
assert sched.seen == [0.05, 0.025, 0.0125], sched.seen
assert ends == [0, 1, 2]
print(
    "RESULT "
    + json.dumps(
        {"fit": fit_events, "evaluate": eval_events, "predict": predict_events, "lr": sched.seen}
    )
)
