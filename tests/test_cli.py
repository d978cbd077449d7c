"""The ``mlp`` command line: end to end on the real MNIST, and bad input for every command.

Commands run in-process through ``multilayer.cli.main.main(argv)`` (the function behind the
``mlp`` script), with capsys capturing stdout/stderr; one test runs the real entry point
in a subprocess. Every user error must give a non-zero exit code and exactly one line on
stderr, starting with "error:", without a traceback.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from multilayer.cli.main import main
from multilayer.data.idx import write_idx
from multilayer.datasets import mnist
from multilayer.recipes import build_model, get_recipe
from multilayer.runs import RunDir


def run(capsys, *argv):
    """Run ``mlp argv...``; returns (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(result, code=None, contains=None):
    exit_code, out, err = result
    assert exit_code != 0
    if code is not None:
        assert exit_code == code
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err + out
    if contains is not None:
        assert contains.lower() in lines[0].lower(), lines[0]


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist_test():
    (_, _), (x_test, y_test) = mnist.load_data()
    return x_test, y_test


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """``mlp train --epochs 1`` once for the whole module (the real MNIST, the real recipe)."""
    path = tmp_path_factory.mktemp("cli") / "run"
    code = main(["train", "--epochs", "1", "--seed", "0", "--quiet", "--output", str(path)])
    assert code == 0
    return RunDir(path)


@pytest.fixture(scope="module")
def tiny_model_file(tmp_path_factory):
    """A small untrained model file, for error cases that need a valid model."""
    recipe = get_recipe("fast").with_overrides(hidden=(8,))
    model = build_model(recipe, (28, 28), 10, steps_per_epoch=1, seed=0)
    model.build()
    path = tmp_path_factory.mktemp("tiny") / "tiny.safetensors"
    model.save(path)
    return path


def write_npz(path, x_train=None, y_train=None, x_test=None, y_test=None):
    rng = np.random.default_rng(0)
    default_x = rng.integers(0, 256, size=(20, 28, 28)).astype(np.uint8)
    default_y = np.arange(20) % 10
    np.savez(
        path,
        x_train=default_x if x_train is None else x_train,
        y_train=default_y if y_train is None else y_train,
        x_test=default_x if x_test is None else x_test,
        y_test=default_y if y_test is None else y_test,
    )
    return path


# -- end to end on the real MNIST -----------------------------------------------------------


@pytest.mark.slow
def test_train_writes_a_complete_run_directory(trained_run, capsys):
    for path in (
        trained_run.model_path,
        trained_run.config_path,
        trained_run.history_csv_path,
        trained_run.history_json_path,
        trained_run.metrics_path,
    ):
        assert path.is_file(), path
    metrics = trained_run.metrics
    assert metrics["test_accuracy"] >= 0.95
    assert metrics["epochs"] == 1
    assert metrics["train_seconds"] > 0
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 10_000
    assert np.trace(matrix) / 10_000 == pytest.approx(metrics["test_accuracy"])
    assert [row["support"] for row in metrics["per_class"]] == matrix.sum(axis=1).tolist()

    config = trained_run.config
    assert config["seed"] == 0
    assert config["recipe"]["name"] == "fast" and config["recipe"]["epochs"] == 1
    assert config["dataset"]["name"] == "mnist"
    assert config["dataset"]["validation_samples"] == 6000
    assert set(config["versions"]) >= {"multilayer", "numpy"}

    history = trained_run.history
    assert history["epoch"] == [0]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history)
    header = trained_run.history_csv_path.read_text().splitlines()[0].split(",")
    assert header[0] == "epoch" and "val_accuracy" in header

    model = trained_run.load_model()
    assert model.training_info["test_accuracy"] == pytest.approx(metrics["test_accuracy"])


@pytest.mark.slow
def test_evaluate_reproduces_the_run_metrics(trained_run, capsys):
    code, out, err = run(capsys, "evaluate", trained_run.path, "--json")
    assert code == 0, err
    result = json.loads(out)
    expected = trained_run.metrics
    assert result["test_accuracy"] == pytest.approx(expected["test_accuracy"])
    assert result["test_loss"] == pytest.approx(expected["test_loss"], rel=1e-5)
    assert result["confusion_matrix"] == expected["confusion_matrix"]

    code, out, err = run(capsys, "evaluate", trained_run.model_path)
    assert code == 0, err
    assert "Confusion matrix" in out and "precision" in out
    assert f"{100 * expected['test_accuracy']:.2f}%" in out


@pytest.mark.slow
def test_predict_classifies_rendered_test_digits(trained_run, mnist_test, tmp_path, capsys):
    from PIL import Image

    x_test, y_test = mnist_test
    paths = []
    for index in range(20):
        # Dark ink on light paper, 4x larger than MNIST: what a user would photograph.
        image = Image.fromarray(255 - x_test[index]).resize((112, 112), Image.Resampling.BICUBIC)
        paths.append(tmp_path / f"digit{index}.png")
        image.save(paths[-1])
    code, out, err = run(capsys, "predict", trained_run.path, *paths, "--json", "--top", "3")
    assert code == 0, err
    results = json.loads(out)
    assert [r["image"] for r in results] == [str(p) for p in paths]
    for result in results:
        probabilities = [t["probability"] for t in result["top"]]
        assert len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True)
    predicted = np.array([r["top"][0]["class"] for r in results])
    assert np.mean(predicted == y_test[:20]) >= 0.85

    code, out, err = run(capsys, "predict", trained_run.path, paths[0])
    assert code == 0 and out.startswith(str(paths[0]))


@pytest.mark.slow
def test_predict_accepts_npy(trained_run, mnist_test, tmp_path, capsys):
    x_test, y_test = mnist_test
    path = tmp_path / "digit.npy"
    np.save(path, x_test[0])
    code, out, err = run(capsys, "predict", trained_run.model_path, path, "--json")
    assert code == 0, err
    assert json.loads(out)[0]["top"][0]["class"] == int(y_test[0])


@pytest.mark.slow
def test_info_shows_architecture_and_training(trained_run, capsys):
    code, out, err = run(capsys, "info", trained_run.path)
    assert code == 0, err
    assert "Dense" in out and "803,594" in out and "test_accuracy" in out
    code, out, err = run(capsys, "info", trained_run.model_path, "--json")
    info = json.loads(out)
    assert info["parameters"] == 784 * 512 + 512 + 512 * 768 + 768 + 768 * 10 + 10
    assert info["training_info"]["recipe"] == "fast"
    assert info["metrics"]["test_accuracy"] == trained_run.metrics["test_accuracy"]


def test_train_on_a_small_npz(tmp_path, capsys):
    """The whole train path on a tiny dataset, also with early stopping and no validation."""
    data = write_npz(tmp_path / "small.npz")
    output = tmp_path / "run"
    code, out, err = run(
        capsys,
        *("train", "--dataset", data, "--hidden", "16", "--epochs", "3", "--batch-size", "8"),
        *("--early-stopping", "1", "--validation-split", "0", "--seed", "3", "-o", output),
    )
    assert code == 0, err
    assert str(output) in out.splitlines()[-1] and "test accuracy" in out
    run_dir = RunDir(output)
    assert run_dir.config["dataset"]["validation_samples"] == 0
    assert run_dir.config["recipe"]["hidden"] == [16]
    assert 1 <= run_dir.metrics["epochs"] <= 3


# -- bad input: one line on stderr, non-zero exit, no traceback -----------------------------


@pytest.mark.parametrize("command", ["evaluate", "info", "predict"])
def test_missing_model_file(command, tmp_path, capsys):
    extra = [tmp_path / "x.png"] if command == "predict" else []
    result = run(capsys, command, tmp_path / "missing.safetensors", *extra)
    assert_one_line_error(result, code=1, contains="missing.safetensors")


def test_directory_without_model(tmp_path, capsys):
    assert_one_line_error(run(capsys, "info", tmp_path), code=1, contains="without model")


@pytest.mark.parametrize("command", ["evaluate", "info"])
@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_model_file(command, damage, tiny_model_file, tmp_path, capsys):
    path = tmp_path / "bad.safetensors"
    if damage == "garbage":
        path.write_bytes(b"this is not a model file at all")
    else:
        data = tiny_model_file.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    result = run(capsys, command, path)
    assert_one_line_error(result, code=1, contains="not a valid .safetensors")


def test_predict_unreadable_image(tiny_model_file, tmp_path, capsys):
    image = tmp_path / "photo.png"
    image.write_text("not an image")
    result = run(capsys, "predict", tiny_model_file, image)
    assert_one_line_error(result, code=1, contains="photo.png")


def test_predict_missing_image(tiny_model_file, tmp_path, capsys):
    result = run(capsys, "predict", tiny_model_file, tmp_path / "nothere.png")
    assert_one_line_error(result, code=1, contains="nothere.png")


def test_predict_npy_of_wrong_shape(tiny_model_file, tmp_path, capsys):
    path = tmp_path / "cube.npy"
    np.save(path, np.zeros((3, 28, 28)))
    result = run(capsys, "predict", tiny_model_file, path)
    assert_one_line_error(result, code=1, contains="shape")


def test_predict_npy_with_nan(tiny_model_file, tmp_path, capsys):
    path = tmp_path / "nan.npy"
    image = np.zeros((28, 28))
    image[3, 4] = np.nan
    np.save(path, image)
    assert_one_line_error(run(capsys, "predict", tiny_model_file, path), code=1, contains="NaN")


def test_unknown_optimizer_suggests_the_closest_name(capsys):
    result = run(capsys, "train", "--optimizer", "adamm")
    assert_one_line_error(result, code=2, contains="did you mean 'adam'")


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--activation", "rleu"], "did you mean 'relu'"),
        (["--schedule", "cosin"], "did you mean 'cosine'"),
        (["--recipe", "fastest"], "recipe"),
        (["--dataset", "mnits"], "did you mean 'mnist'"),
        (["--hidden", "512,abc"], "--hidden"),
        (["--hidden", "0"], "--hidden"),
        (["--epochs", "0"], "--epochs"),
        (["--batch-size", "many"], "--batch-size"),
        (["--learning-rate", "-0.1"], "--learning-rate"),
        (["--validation-split", "1.5"], "--validation-split"),
        (["--label-smoothing", "1"], "--label-smoothing"),
        (["--no-such-flag"], "no-such-flag"),
    ],
)
def test_bad_flag_values_are_usage_errors(flags, fragment, capsys):
    assert_one_line_error(run(capsys, "train", *flags), code=2, contains=fragment)


def test_missing_argument_is_a_usage_error(capsys):
    assert_one_line_error(run(capsys, "predict"), code=2, contains="missing argument")


@pytest.mark.parametrize(
    ("arrays", "fragment"),
    [
        ({"y_train": np.zeros(20, np.int64), "y_test": np.zeros(20)}, "at least 2 classes"),
        ({"y_train": np.full(20, 10**6)}, "numbered from 0"),
        ({"y_test": np.r_[np.arange(19) % 10, -1]}, "is negative"),
        ({"x_train": np.full((20, 28, 28), np.nan)}, "NaN"),
        ({"x_train": np.zeros((20, 784), np.uint8)}, "shape"),
        ({"y_train": np.zeros(19, np.int64)}, "labels"),
        ({"x_test": np.full((20, 28, 28), 300.0)}, "0..255"),
    ],
)
def test_bad_dataset_is_refused_before_training(arrays, fragment, tmp_path, capsys):
    data = write_npz(tmp_path / "bad.npz", **arrays)
    result = run(capsys, "train", "--dataset", data, "-o", tmp_path / "run", "--quiet")
    assert_one_line_error(result, code=1, contains=fragment)
    assert not (tmp_path / "run").exists()


def test_evaluate_refuses_nan_test_data(tiny_model_file, tmp_path, capsys):
    x = np.zeros((20, 28, 28))
    x[5, 1, 1] = np.nan
    data = write_npz(tmp_path / "nan.npz", x_test=x)
    result = run(capsys, "evaluate", tiny_model_file, "--dataset", data)
    assert_one_line_error(result, code=1, contains="NaN")


def test_damaged_idx_files_in_data_dir(tmp_path, capsys):
    """--data-dir with crafted IDX files: labels out of range, which the checksum refuses."""
    directory = tmp_path / "mnist"
    directory.mkdir()
    images = np.zeros((10, 28, 28), np.uint8)
    write_idx(directory / "train-images-idx3-ubyte.gz", images)
    write_idx(directory / "train-labels-idx1-ubyte.gz", np.full(10, 42, np.uint8))
    write_idx(directory / "t10k-images-idx3-ubyte.gz", images)
    write_idx(directory / "t10k-labels-idx1-ubyte.gz", np.zeros(10, np.uint8))
    result = run(capsys, "train", "--data-dir", tmp_path, "--quiet", "-o", tmp_path / "run")
    assert_one_line_error(result, code=1, contains="train-images-idx3-ubyte.gz")


def test_output_directory_that_is_not_empty(tmp_path, capsys):
    data = write_npz(tmp_path / "small.npz")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    result = run(capsys, "train", "--dataset", data, "-o", tmp_path / "taken", "--quiet")
    assert_one_line_error(result, code=1, contains="not empty")
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"


def test_unexpected_errors_get_one_line_and_a_debug_hint(monkeypatch, tmp_path, capsys):
    import multilayer.cli.info as info

    def broken(*args, **kwargs):
        raise RuntimeError("something odd")

    monkeypatch.setattr(info, "load_model_arg", broken)
    result = run(capsys, "info", tmp_path)
    assert_one_line_error(result, code=1, contains="MLP_DEBUG=1")
    assert "something odd" in result[2]


def test_entry_point_in_a_subprocess(tmp_path):
    """The real process: exit code 1, one line on stderr, no traceback."""
    script = Path(sys.executable).with_name("mlp")  # the installed console script
    command = [str(script)] if script.exists() else [sys.executable, "-m", "multilayer.cli.main"]
    process = subprocess.run(
        [*command, "evaluate", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_one_line_error((process.returncode, process.stdout, process.stderr), code=1)


def test_no_arguments_prints_help(capsys):
    code, out, _ = run(capsys)
    assert code == 0 and "train" in out and "predict" in out
