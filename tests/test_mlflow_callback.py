"""callbacks.MlflowCallback: what it logged is read back with MLflow's own client and compared
with fit's History, the model, and its file."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import multilayer as keras

mlflow = pytest.importorskip("mlflow")

pytestmark = [
    # MLflow's sqlite store and its migrations warn about their own dependencies
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One local MLflow store for the module (creating its database takes seconds): the
    directory holding ``mlflow.db`` (runs, metrics, parameters) and ``mlruns/`` (artifacts),
    as MLflow 3 lays out its default local store."""
    return tmp_path_factory.mktemp("mlflow")


@pytest.fixture
def in_store(store, monkeypatch):
    """Run the test from the store's directory with no tracking URI set: MLflow's default
    (``sqlite:///mlflow.db`` in the working directory) is that store."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.chdir(store)
    return f"sqlite:///{store}/mlflow.db"


def data(n=100, seed=1):
    x = np.random.default_rng(seed).normal(size=(n, 4)).astype("float32")
    y = (x.sum(axis=1) > 0).astype("int64")
    return x, y


def small_model():
    model = keras.Sequential(
        [
            keras.Input(shape=(4,)),
            keras.layers.Dense(8, activation="relu", name="hidden"),
            keras.layers.Dense(2, activation="softmax", name="probabilities"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=0.01),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def histories(client, run_id, keys):
    return {
        key: [(m.step, m.value) for m in client.get_metric_history(run_id, key)] for key in keys
    }


def test_params_metrics_and_model_artifact(in_store, tmp_path):
    x, y = data()
    model = small_model()
    callback = keras.callbacks.MlflowCallback(
        tracking_uri=in_store, experiment_name="mlp", run_name="first", tags={"team": "a"}
    )
    history = model.fit(
        x, y, epochs=3, batch_size=20, validation_split=0.2, callbacks=[callback], verbose=0
    )

    client = mlflow.MlflowClient(in_store)
    run = client.get_run(callback.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "first"
    assert client.get_experiment(run.info.experiment_id).name == "mlp"
    assert run.data.tags["team"] == "a"
    assert run.data.params == {
        "optimizer_name": "Adam",
        "optimizer_learning_rate": "0.01",
        "optimizer_beta_1": "0.9",
        "optimizer_beta_2": "0.999",
        "optimizer_epsilon": "1e-07",
        "optimizer_amsgrad": "false",
        "epochs": "3",
        "steps_per_epoch": "4",
        "initial_epoch": "0",
        "batch_size": "20",
        "layers": f"{model.layers[0].name}: InputLayer (None, 4), hidden: Dense (None, 8), "
        "probabilities: Dense (None, 2)",
        "total_params": "58",
        "trainable_params": "58",
    }
    # every metric at step = epoch, with exactly the values History holds
    keys = ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert sorted(run.data.metrics) == sorted(keys)
    assert histories(client, callback.run_id, keys) == {
        key: list(enumerate(history.history[key])) for key in keys
    }

    artifacts = sorted(a.path for a in client.list_artifacts(callback.run_id))
    assert artifacts == ["model", "model_summary.txt"]
    assert [a.path for a in client.list_artifacts(callback.run_id, "model")] == [
        "model/model.safetensors"
    ]
    from multilayer.models.summary import summary_text

    summary = client.download_artifacts(callback.run_id, "model_summary.txt", str(tmp_path))
    with open(summary) as file:
        assert file.read() == summary_text(model)
    path = client.download_artifacts(callback.run_id, "model/model.safetensors", str(tmp_path))
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_default_store_is_mlflows_local_one(in_store, store):
    x, y = data()
    callback = keras.callbacks.MlflowCallback()
    small_model().fit(x, y, epochs=2, callbacks=[callback], verbose=0)
    client = mlflow.MlflowClient(in_store)  # the sqlite database in the working directory
    run = client.get_run(callback.run_id)
    assert client.get_experiment(run.info.experiment_id).name == "Default"
    assert run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(callback.run_id, "loss")] == [0, 1]
    # ... and the artifacts in ./mlruns beside it
    run_dir = store / "mlruns" / run.info.experiment_id / callback.run_id
    assert (run_dir / "artifacts" / "model" / "model.safetensors").is_file()


def test_logs_into_the_active_run_and_leaves_it_open(in_store):
    x, y = data()
    with mlflow.start_run(run_name="outer") as outer:
        callback = keras.callbacks.MlflowCallback()
        small_model().fit(x, y, epochs=2, callbacks=[callback], verbose=0)
        assert callback.run_id == outer.info.run_id
        client = mlflow.MlflowClient(in_store)
        assert client.get_run(outer.info.run_id).info.status == "RUNNING"
    run = client.get_run(outer.info.run_id)
    assert run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "accuracy")] == [0, 1]
    assert run.data.params["epochs"] == "2"


def test_every_n_steps(in_store):
    x, y = data()
    seen = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: seen.append(logs["loss"])
    )
    callback = keras.callbacks.MlflowCallback(
        log_every_epoch=False, log_every_n_steps=3, tracking_uri=in_store
    )
    # 5 steps an epoch, 10 in all: logged after steps 3, 6 and 9 (optimizer iterations)
    small_model().fit(x, y, epochs=2, batch_size=20, callbacks=[record, callback], verbose=0)
    client = mlflow.MlflowClient(in_store)
    assert histories(client, callback.run_id, ["loss"])["loss"] == [
        (step, seen[step - 1]) for step in (3, 6, 9)
    ]


def test_a_model_fit_builds_from_its_first_batch_is_described_once_built(in_store):
    x, y = data()
    model = keras.Sequential(
        [
            keras.layers.Dense(8, activation="relu", name="first"),
            keras.layers.Dense(2, activation="softmax", name="second"),
        ]
    )
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")

    def batches():
        for start in range(0, 100, 25):
            yield x[start : start + 25], y[start : start + 25]

    assert not model.built
    callback = keras.callbacks.MlflowCallback(tracking_uri=in_store)
    history = model.fit(batches(), epochs=1, callbacks=[callback], verbose=0)
    client = mlflow.MlflowClient(in_store)
    run = client.get_run(callback.run_id)
    assert run.data.params["total_params"] == str(model.count_params()) == "58"
    assert run.data.params["layers"].endswith("first: Dense (None, 8), second: Dense (None, 2)")
    assert "batch_size" not in run.data.params  # a generator makes its own batches
    assert [a.path for a in client.list_artifacts(callback.run_id)] == [
        "model",
        "model_summary.txt",
    ]
    assert histories(client, callback.run_id, ["loss"])["loss"] == [(0, history.history["loss"][0])]


def test_keras_model_file(in_store, tmp_path):
    pytest.importorskip("h5py")
    x, y = data()
    model = small_model()
    callback = keras.callbacks.MlflowCallback(tracking_uri=in_store, model_filename="mlp.keras")
    model.fit(x, y, epochs=1, callbacks=[callback], verbose=0)
    client = mlflow.MlflowClient(in_store)
    path = client.download_artifacts(callback.run_id, "model/mlp.keras", str(tmp_path))
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize(
    ("error", "status"), [(RuntimeError, "FAILED"), (KeyboardInterrupt, "KILLED")]
)
def test_a_failed_fit_ends_the_run_so_and_logs_no_model(in_store, error, status):
    x, y = data()

    def fail(epoch, logs):
        if epoch == 1:
            raise error("stop here")

    callback = keras.callbacks.MlflowCallback(tracking_uri=in_store)
    with pytest.raises(error, match="stop here"):
        small_model().fit(
            x,
            y,
            epochs=3,
            callbacks=[callback, keras.callbacks.LambdaCallback(on_epoch_end=fail)],
            verbose=0,
        )
    client = mlflow.MlflowClient(in_store)
    run = client.get_run(callback.run_id)
    assert run.info.status == status
    assert [m.step for m in client.get_metric_history(callback.run_id, "loss")] == [0, 1]
    assert [a.path for a in client.list_artifacts(callback.run_id)] == ["model_summary.txt"]


def test_a_second_fit_into_one_run_keeps_its_parameters(in_store):
    x, y = data()
    model = small_model()
    with mlflow.start_run() as run:
        model.fit(x, y, epochs=1, callbacks=[keras.callbacks.MlflowCallback()], verbose=0)
        with pytest.warns(UserWarning, match="already has different values for epochs"):
            model.fit(
                x,
                y,
                epochs=3,
                initial_epoch=1,
                callbacks=[keras.callbacks.MlflowCallback()],
                verbose=0,
            )
    client = mlflow.MlflowClient(in_store)
    assert client.get_run(run.info.run_id).data.params["epochs"] == "1"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [0, 1, 2]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            {"log_every_n_steps": 5},
            "MlflowCallback: log_every_n_steps must be None when log_every_epoch=True, got "
            "log_every_n_steps=5",
        ),
        (
            {"log_every_epoch": False},
            "MlflowCallback: with log_every_epoch=False, log_every_n_steps must be a positive "
            "number of steps, got None",
        ),
        (
            {"log_every_epoch": False, "log_every_n_steps": 0},
            "MlflowCallback: with log_every_epoch=False, log_every_n_steps must be a positive "
            "number of steps, got 0",
        ),
        (
            {"model_filename": "model.pkl"},
            "MlflowCallback: model_filename must be a file name ending in .safetensors or "
            ".keras, got 'model.pkl'",
        ),
        (
            {"model_filename": "../model.safetensors"},
            "MlflowCallback: model_filename must be a file name ending in .safetensors or "
            ".keras, got '../model.safetensors'",
        ),
    ],
)
def test_bad_arguments(arguments, message):
    with pytest.raises(ValueError) as error:
        keras.callbacks.MlflowCallback(**arguments)
    assert str(error.value) == message


def test_without_mlflow_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(ImportError) as error:
        keras.callbacks.MlflowCallback()
    assert str(error.value) == (
        "callbacks.MlflowCallback logs with MLflow: pip install 'multilayer[mlflow]'"
    )
