"""fit/evaluate/predict arguments of Keras 3 (issue 10 item 3): sample and class weights
(exact values, gradients against finite differences), steps_per_epoch, validation_steps,
validation_freq, validation_batch_size, 3-tuple validation_data, named (dict) inputs,
PyDataset and generators."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import multilayer as keras
from helpers.gradients import central_differences
from multilayer.callbacks import BackupAndRestore, Callback, LambdaCallback
from multilayer.layers import Dense
from multilayer.models import Model, Sequential
from multilayer.optimizers import SGD
from multilayer.utils import PyDataset, Sequence


def _data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    return x, (x[:, 0] + x[:, 1] > 0).astype("int64") + (x[:, 2] > 0.5)


def _model(dtype="float32", optimizer="adam", metrics=("accuracy",)):
    model = Sequential(
        [keras.Input(shape=(4,)), Dense(6, activation="tanh"), Dense(3, activation="softmax")],
        dtype=dtype,
        seed=1,
    )
    model.compile(
        optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=list(metrics)
    )
    return model


def _weights(model):
    return model.parameters.values.copy()


# -- weighted losses ----------------------------------------------------------------------------
def _by_hand(model, x, y, w):
    """Keras 3's "sum_over_batch_size": sum(w_i * l_i) / n, l_i = -log p_i[y_i]."""
    p = model.predict(x)
    per_sample = -np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1.0))
    return float(np.sum(w * per_sample) / len(y))


def test_weighted_loss_is_sum_over_batch_size():
    x, y = _data(50)
    w = np.random.default_rng(3).uniform(0.0, 3.0, size=50)
    model = _model(dtype="float64")
    results = model.evaluate(x, y, sample_weight=w, batch_size=7, verbose=0, return_dict=True)
    assert results["loss"] == pytest.approx(_by_hand(model, x, y, w), rel=1e-12)
    # divided by the number of samples, not by the sum of the weights
    assert results["loss"] != pytest.approx(_by_hand(model, x, y, w) * 50 / w.sum(), rel=1e-3)
    # metrics are not weighted (Keras' `metrics`, as opposed to `weighted_metrics`)
    plain = model.evaluate(x, y, verbose=0, return_dict=True)
    assert results["accuracy"] == plain["accuracy"]
    assert model.test_on_batch(x, y, sample_weight=w) == pytest.approx(
        [results["loss"], results["accuracy"]], rel=1e-12
    )


def test_weighted_gradient_matches_finite_differences():
    x, y = _data(12)
    w = np.random.default_rng(4).uniform(0.0, 2.0, size=12)
    for fused in (True, False):
        model = Sequential(
            [keras.Input(shape=(4,)), Dense(5, activation="tanh"), Dense(3, activation="softmax")],
            dtype="float64",
            seed=2,
        )
        loss = "sparse_categorical_crossentropy" if fused else keras.losses.MeanSquaredError()
        target = y if fused else np.eye(3)[y]
        model.compile(optimizer=SGD(learning_rate=1e-3), loss=loss)
        model._build_optimizer()
        xs, ys = model._check_data(x, target)
        before = _weights(model)
        model.train_step(xs, ys, w)
        analytic = model.parameters.grads.copy()
        model.parameters.values[...] = before
        values, step = model.parameters.values, 1e-6

        def objective(model=model, ys=ys):
            out = model.predict(x)
            per_sample = model.loss.per_sample(ys[0], out)
            return float(np.sum(w * per_sample) / len(x))

        numeric = central_differences(values, objective, step)
        error = np.linalg.norm(analytic - numeric) / np.linalg.norm(analytic + numeric)
        assert error < 1e-7, (fused, error)


def test_class_weight_is_sample_weight_of_each_class():
    x, y = _data(64)
    class_weight = {0: 0.5, 1: 2.0}  # class 2 not listed: weight 1
    by_class, by_sample = _model(), _model()
    h1 = by_class.fit(x, y, batch_size=16, epochs=2, class_weight=class_weight, verbose=0)
    w = np.array([class_weight.get(int(label), 1.0) for label in y])
    h2 = by_sample.fit(x, y, batch_size=16, epochs=2, sample_weight=w, verbose=0)
    assert _weights(by_class).tobytes() == _weights(by_sample).tobytes()
    assert h1.history == h2.history
    unweighted = _model()
    unweighted.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert _weights(unweighted).tobytes() != _weights(by_class).tobytes()
    # one-hot targets: the class is the argmax, as in Keras
    onehot = Sequential(
        [keras.Input(shape=(4,)), Dense(6, activation="tanh"), Dense(3, activation="softmax")],
        seed=1,
    )
    onehot.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    onehot.fit(x, np.eye(3)[y], batch_size=16, epochs=2, class_weight=class_weight, verbose=0)
    np.testing.assert_allclose(_weights(onehot), _weights(by_class), rtol=1e-5, atol=1e-6)


def test_weight_arguments_refused_with_their_messages():
    x, y = _data(20)
    model = _model()
    with pytest.raises(ValueError, match=r"^give class_weight or sample_weight, not both$"):
        model.fit(x, y, class_weight={0: 1.0}, sample_weight=np.ones(20), verbose=0)
    with pytest.raises(
        ValueError,
        match=r"^sample_weight must have one weight per sample, shape \(20,\); got shape \(19,\)$",
    ):
        model.fit(x, y, sample_weight=np.ones(19), verbose=0)
    with pytest.raises(ValueError, match="sample_weight contains NaN or infinite values"):
        model.evaluate(x, y, sample_weight=np.full(20, np.nan), verbose=0)
    with pytest.raises(
        ValueError, match=r"^class_weight keys must be class indices \(ints\), got 'a'$"
    ):
        model.fit(x, y, class_weight={"a": 1.0}, verbose=0)
    with pytest.raises(ValueError, match=r"^class_weight\[0\] must be a finite number, got nan$"):
        model.fit(x, y, class_weight={0: float("nan")}, verbose=0)


def test_validation_data_with_sample_weights_and_split():
    x, y = _data(80)
    w = np.random.default_rng(5).uniform(0.5, 2.0, size=80)
    model = _model()
    history = model.fit(
        x[:60], y[:60], epochs=1, validation_data=(x[60:], y[60:], w[60:]), verbose=0
    )
    expected = model.evaluate(x[60:], y[60:], sample_weight=w[60:], verbose=0, return_dict=True)
    assert history.history["val_loss"] == [expected["loss"]]
    # validation_split splits the weights with the samples
    split = _model()
    history = split.fit(x, y, epochs=1, sample_weight=w, validation_split=0.25, verbose=0)
    expected = split.evaluate(x[60:], y[60:], sample_weight=w[60:], verbose=0, return_dict=True)
    assert history.history["val_loss"] == [expected["loss"]]
    with pytest.raises(ValueError, match=r"^validation_data must be a tuple \(x_val, y_val\) or"):
        model.fit(x, y, validation_data=(x,), verbose=0)


# -- steps and validation frequency -------------------------------------------------------------
class _Counter(Callback):
    def __init__(self):
        super().__init__()
        self.train, self.test, self.epochs = [], [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.train.append(0)
        self.test.append(0)

    def on_train_batch_end(self, batch, logs=None):
        self.train[-1] += 1

    def on_test_batch_end(self, batch, logs=None):
        self.test[-1] += 1

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(sorted(logs))


def test_steps_per_epoch_continues_the_pass_across_epochs():
    x, y = _data(50)  # 5 batches of 10
    counter = _Counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _model().fit(
            x, y, batch_size=10, epochs=4, steps_per_epoch=3, callbacks=[counter], verbose=0
        )
    # Keras 3: 3 batches, then the 2 left of the pass (out of data), then a new pass
    assert counter.train == [3, 2, 3, 2]
    assert sum("ran out of data" in str(w.message) for w in caught) == 2
    # the batches of one pass are the samples of one permutation: same as two plain epochs
    # of batch 10 when steps_per_epoch divides the pass
    a, b = _model(), _model()
    a.fit(x, y, batch_size=10, epochs=2, verbose=0)
    b.fit(x, y, batch_size=10, epochs=10, steps_per_epoch=1, verbose=0)
    assert _weights(a).tobytes() == _weights(b).tobytes()


def test_validation_freq_steps_and_batch_size():
    x, y = _data(60)
    counter = _Counter()
    history = _model().fit(
        x[:40], y[:40], batch_size=10, epochs=4, validation_data=(x[40:], y[40:]),
        validation_freq=2, validation_batch_size=3, callbacks=[counter], verbose=0,
    )  # fmt: skip
    assert counter.test == [0, 7, 0, 7]  # 20 samples in batches of 3
    assert counter.epochs[0] == ["accuracy", "loss"]
    assert counter.epochs[1] == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert len(history.history["val_loss"]) == 2 and len(history.history["loss"]) == 4
    counter = _Counter()
    _model().fit(
        x[:40], y[:40], batch_size=10, epochs=3, validation_data=(x[40:], y[40:]),
        validation_freq=[1, 3], validation_steps=2, validation_batch_size=4,
        callbacks=[counter], verbose=0,
    )  # fmt: skip
    assert counter.test == [2, 0, 2]
    for bad in (0, "2", [1, 0], 1.5):
        with pytest.raises(ValueError, match="validation_freq"):
            _model().fit(x, y, validation_split=0.5, validation_freq=bad, verbose=0)


def test_evaluate_steps_and_predict_steps():
    x, y = _data(30)
    model = _model(dtype="float64")
    part = model.evaluate(x, y, batch_size=10, steps=2, verbose=0, return_dict=True)
    assert part == model.evaluate(x[:20], y[:20], batch_size=10, verbose=0, return_dict=True)
    np.testing.assert_array_equal(model.predict(x, batch_size=10, steps=2), model.predict(x[:20]))


# -- named inputs ---------------------------------------------------------------------------------
def test_dict_and_list_inputs_by_name():
    x, y = _data(40)

    def make():
        a = keras.Input(shape=(3,), name="a")
        b = keras.Input(shape=(1,), name="b")
        merged = keras.layers.Concatenate()([a, b])
        out = Dense(2, activation="softmax")(Dense(4, activation="relu")(merged))
        model = Model(inputs=[a, b], outputs=out, seed=3)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return model

    by_dict, by_list = make(), make()
    y = (y > 0).astype("int64")
    by_dict.fit({"b": x[:, 3:], "a": x[:, :3]}, y, batch_size=8, epochs=2, verbose=0)
    by_list.fit([x[:, :3], x[:, 3:]], y, batch_size=8, epochs=2, verbose=0)
    assert _weights(by_dict).tobytes() == _weights(by_list).tobytes()
    np.testing.assert_array_equal(
        by_dict.predict({"a": x[:, :3], "b": x[:, 3:]}), by_list.predict([x[:, :3], x[:, 3:]])
    )
    with pytest.raises(ValueError, match=r"missing \['b'\], unexpected \['c'\]"):
        by_dict.predict({"a": x[:, :3], "c": x[:, 3:]})


# -- PyDataset and generators -------------------------------------------------------------------
class _Batches(PyDataset):
    def __init__(self, x, y, batch_size, w=None, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.w, self.batch_size = x, y, w, batch_size
        self.epochs_ended = 0

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index):
        part = slice(index * self.batch_size, (index + 1) * self.batch_size)
        if self.w is None:
            return self.x[part], self.y[part]
        return self.x[part], self.y[part], self.w[part]

    def on_epoch_end(self):
        self.epochs_ended += 1


def test_pydataset_trains_like_the_same_arrays_unshuffled():
    x, y = _data(50)
    w = np.random.default_rng(6).uniform(0.5, 2.0, size=50)
    data = _Batches(x, y, 8, w, workers=4, use_multiprocessing=True, max_queue_size=3)
    assert (data.workers, data.use_multiprocessing, data.max_queue_size) == (4, True, 3)
    assert data.num_batches == 7 and Sequence is PyDataset
    from_data, from_arrays = _model(), _model()
    h1 = from_data.fit(data, epochs=3, validation_data=_Batches(x[:20], y[:20], 6), verbose=0)
    h2 = from_arrays.fit(
        x, y, batch_size=8, epochs=3, shuffle=False, sample_weight=w,
        validation_data=(x[:20], y[:20]), validation_batch_size=6, verbose=0,
    )  # fmt: skip
    assert _weights(from_data).tobytes() == _weights(from_arrays).tobytes()
    assert h1.history == h2.history
    assert data.epochs_ended == 3
    assert from_data.evaluate(_Batches(x, y, 8), verbose=0) == from_data.evaluate(
        x, y, batch_size=8, verbose=0
    )
    np.testing.assert_array_equal(from_data.predict(_Batches(x, y, 8)), from_data.predict(x))


def test_generator_with_steps_per_epoch():
    x, y = _data(48)

    def forever():
        while True:
            for start in range(0, 48, 12):
                yield x[start : start + 12], y[start : start + 12]

    from_gen, from_arrays = _model(), _model()
    from_gen.fit(forever(), steps_per_epoch=4, epochs=3, verbose=0)
    from_arrays.fit(x, y, batch_size=12, epochs=3, shuffle=False, verbose=0)
    assert _weights(from_gen).tobytes() == _weights(from_arrays).tobytes()


def test_finite_generator_runs_out_and_training_stops():
    x, y = _data(30)
    batches = ((x[i : i + 10], y[i : i + 10]) for i in range(0, 30, 10))
    counter = _Counter()
    with pytest.warns(UserWarning, match="ran out of data"):
        history = _model().fit(batches, epochs=5, callbacks=[counter], verbose=0)
    assert counter.train == [3]  # the generator is used up: training stops after epoch 1
    assert history.epoch == [0]


def test_batched_data_refusals():
    x, y = _data(20)
    model = _model()
    gen = ((x, y) for _ in range(3))
    with pytest.raises(ValueError, match=r"^y must be None when x is a generator"):
        model.fit(gen, y, verbose=0)
    with pytest.raises(ValueError, match=r"^class_weight is not supported when x is a generator$"):
        model.fit(gen, class_weight={0: 2.0}, verbose=0)
    with pytest.raises(ValueError, match=r"^validation_split needs arrays; x is a PyDataset"):
        model.fit(_Batches(x, y, 5), validation_split=0.2, verbose=0)
    with pytest.raises(ValueError, match=r"^fit: BackupAndRestore \(or checkpoint=\) needs"):
        model.fit(_Batches(x, y, 5), callbacks=[BackupAndRestore("unused")], verbose=0)
    with pytest.raises(ValueError, match=r"^fit: batch 0 of x has no targets"):
        model.fit((x for _ in range(2)), verbose=0)
    with pytest.raises(
        ValueError,
        match=r"^batch x has samples of shape \(3,\) \(array shape \(20, 3\)\), but the model",
    ):
        model.fit(((x[:, :3], y) for _ in range(2)), verbose=0)


def test_lambda_callback_hooks_receive_logs():
    x, y = _data(20)
    seen = []
    callback = LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append(("epoch", epoch, sorted(logs))),
        on_batch_end=lambda batch, logs: seen.append(("batch", batch, sorted(logs))),
        on_test_end=lambda logs: seen.append(("test", sorted(logs))),
    )
    _model().fit(
        x, y, batch_size=10, epochs=1, validation_split=0.5, callbacks=[callback], verbose=0
    )
    assert seen == [
        ("batch", 0, ["accuracy", "loss"]),
        ("test", ["accuracy", "loss"]),
        ("epoch", 0, ["accuracy", "loss", "val_accuracy", "val_loss"]),
    ]
    with pytest.raises(TypeError, match=r"^LambdaCallback: unknown hook 'on_epoch_finish'$"):
        LambdaCallback(on_epoch_finish=print)


def test_malformed_pydataset_and_batches_are_refused():
    x, y = _data(20)

    class BadLength(_Batches):
        def __len__(self):
            return -1

    with pytest.raises(ValueError, match=r"^len\(x\) must be a non-negative int, got -1$"):
        _model().fit(BadLength(x, y, 5), verbose=0)
    four = ((x, y, np.ones(20), np.ones(20)) for _ in range(2))
    with pytest.raises(
        ValueError,
        match=r"^a batch must be x, \(x,\), \(x, y\) or \(x, y, sample_weight\); got a tuple of 4$",
    ):
        _model().fit(four, verbose=0)
    with pytest.raises(ValueError, match=r"^batch sample_weight must have one weight per sample"):
        _model().fit(((x, y, np.ones(3)) for _ in range(2)), verbose=0)


@pytest.mark.skipif(
    importlib.util.find_spec("keras") is None or importlib.util.find_spec("jax") is None,
    reason="Keras 3 with JAX is not installed (the oracle)",
)
@pytest.mark.parametrize("onehot", [False, True])
def test_weighted_loss_and_step_match_keras(tmp_path, onehot):
    x, y = _data(30)
    w = np.random.default_rng(7).uniform(0.0, 3.0, size=30)
    model = _model(optimizer=SGD(learning_rate=0.1), metrics=())
    model.compile(
        optimizer=SGD(learning_rate=0.1),
        loss="categorical_crossentropy" if onehot else "sparse_categorical_crossentropy",
    )
    target = np.eye(3)[y] if onehot else y
    weights = model.get_weights()
    np.savez(tmp_path / "data.npz", x=x, y=y, w=w, onehot=onehot,
             **{f"w{i}": v for i, v in enumerate(weights)})  # fmt: skip
    script = Path(__file__).parent / "helpers" / "keras_weighted_loss.py"
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "data.npz")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    oracle = json.loads(result.stdout)
    evaluated = model.evaluate(x, target, sample_weight=w, batch_size=7, verbose=0)
    assert evaluated == pytest.approx(oracle["evaluate"], rel=1e-5)
    assert model.train_on_batch(x, target, sample_weight=w) == pytest.approx(
        oracle["train"], rel=1e-5
    )
    for ours, theirs in zip(model.get_weights(), oracle["weights"], strict=True):
        np.testing.assert_allclose(ours, np.array(theirs), rtol=1e-4, atol=1e-6)


def test_sample_weights_per_output():
    x, y = _data(40)
    w = np.random.default_rng(8).uniform(0.0, 2.0, size=40)

    def make():
        inputs = keras.Input(shape=(4,))
        hidden = Dense(5, activation="tanh")(inputs)
        first = Dense(3, activation="softmax", name="first")(hidden)
        second = Dense(1, name="second")(hidden)
        model = Model(inputs, [first, second], seed=4)
        model.compile(optimizer="adam", loss=["sparse_categorical_crossentropy", "mse"])
        return model

    model = make()
    targets = [y, x[:, :1]]
    results = model.evaluate(x, targets, sample_weight=[w, None], verbose=0, return_dict=True)
    first, second = model.predict(x)
    ce = -np.log(first[np.arange(40), y])
    mse = (second[:, 0] - x[:, 0]) ** 2
    assert results["first_loss"] == pytest.approx(np.sum(w * ce) / 40, rel=1e-5)
    assert results["second_loss"] == pytest.approx(np.mean(mse), rel=1e-5)
    by_dict = model.evaluate(
        x, targets, sample_weight={"second": None, "first": w}, verbose=0, return_dict=True
    )
    assert by_dict == results
    a, b = make(), make()
    a.fit(x, targets, sample_weight=[w, w], batch_size=8, epochs=2, verbose=0)
    b.fit(x, targets, sample_weight=w, batch_size=8, epochs=2, verbose=0)
    assert _weights(a).tobytes() == _weights(b).tobytes()
