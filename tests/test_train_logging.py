"""``mlp train --tensorboard DIR --mlflow-uri URI`` (and `multilayer.training`'s
``tensorboard_dir=``/``mlflow=``/``mlflow_uri=``): the run is logged to both, and what they
hold equals the run directory's history and model."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from multilayer.cli.main import main
from multilayer.models import load_model
from multilayer.runs import RunDir
from multilayer.training import experiment_loggers

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]


@pytest.fixture
def small_npz(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(80, 28, 28)).astype(np.uint8)
    y = np.arange(80) % 10
    path = tmp_path / "small.npz"
    np.savez(path, x_train=x, y_train=y, x_test=x[:20], y_test=y[:20])
    return str(path)


def mlp(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


TRAIN = ("train", "--hidden", "8", "--batch-size", "16", "--epochs", "2", "--seed", "3")


def test_mlp_train_logs_to_tensorboard_and_mlflow(small_npz, tmp_path, capsys, monkeypatch):
    pytest.importorskip("tensorboard")
    mlflow = pytest.importorskip("mlflow")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    output = tmp_path / "run"
    code, out, err = mlp(
        capsys,
        *TRAIN,
        *("--dataset", small_npz, "--no-report", "-o", output),
        *("--tensorboard", tmp_path / "tb", "--mlflow-uri", uri),
    )
    assert code == 0, err
    run = RunDir(output)
    history = run.history
    epochs = len(history["loss"])
    assert epochs == 2

    events = EventAccumulator(str(tmp_path / "tb" / "validation"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("epoch_loss")] == [
        (epoch, float(np.float32(v))) for epoch, v in enumerate(history["val_loss"])
    ]

    client = mlflow.MlflowClient(uri)
    [found] = client.search_runs(
        [client.get_experiment_by_name("Default").experiment_id],
        filter_string="attributes.run_name = 'run'",
    )
    assert found.info.status == "FINISHED"
    assert found.data.tags["multilayer.seed"] == "3"
    assert found.data.tags["multilayer.run_dir"] == str(output)
    assert found.data.params["batch_size"] == "16"
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        logged = client.get_metric_history(found.info.run_id, key)
        assert [(m.step, m.value) for m in logged] == list(enumerate(history[key]))
    path = client.download_artifacts(found.info.run_id, "model/model.safetensors", str(tmp_path))
    x = np.random.default_rng(1).integers(0, 256, size=(5, 28, 28)).astype(np.uint8)
    np.testing.assert_array_equal(
        load_model(path).predict(x, verbose=0), load_model(run.model_path).predict(x, verbose=0)
    )


def test_a_missing_writer_is_a_one_line_error_before_anything_is_written(
    small_npz, tmp_path, capsys, monkeypatch
):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    output = tmp_path / "run"
    code, out, err = mlp(
        capsys, *TRAIN, "--dataset", small_npz, "-o", output, "--tensorboard", tmp_path / "tb"
    )
    assert code == 1
    assert err.strip() == (
        "error: callbacks.TensorBoard writes event files with tensorboardX: "
        "pip install 'multilayer[tensorboard]'"
    )
    assert not output.exists() and not (tmp_path / "tb").exists()


def test_experiment_loggers():
    pytest.importorskip("tensorboardX")
    pytest.importorskip("mlflow")
    from multilayer.callbacks import MlflowCallback, TensorBoard

    assert experiment_loggers() == []
    board, logger = experiment_loggers(
        "tb", mlflow_uri="sqlite:///x.db", run_name="r", tags={"a": "1"}
    )
    assert isinstance(board, TensorBoard) and str(board.log_dir) == "tb"
    assert isinstance(logger, MlflowCallback)
    assert (logger.tracking_uri, logger.run_name, logger.tags) == (
        "sqlite:///x.db",
        "r",
        {"multilayer.a": "1"},
    )
    [default] = experiment_loggers(mlflow=True)
    assert isinstance(default, MlflowCallback) and default.tracking_uri is None
