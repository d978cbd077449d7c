"""Issue 9, item 4: training orchestration is a library call (`multilayer.training`) that
``mlp train`` only wraps, and the pixel scale a model takes is stored in its file.

Runs train on a small ``.npz`` so that each takes about a second.
"""

import json

import numpy as np
import pytest

from multilayer.errors import ModelFileError
from multilayer.inference import expects_raw_pixels, model_inputs
from multilayer.models import load_model
from multilayer.models.input_scale import InputScale
from multilayer.recipes import Recipe, build_model, get_recipe, pixel_statistics
from multilayer.runs import RunDir
from multilayer.training import (
    NothingToResumeError,
    RecipeError,
    check_recipe,
    prepare_resume,
    prepare_run,
    resume_run,
    train_run,
)

SMALL = {"hidden": [8], "batch_size": 16}


@pytest.fixture
def small_npz(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(80, 28, 28)).astype(np.uint8)
    y = np.arange(80) % 10
    path = tmp_path / "small.npz"
    np.savez(path, x_train=x, y_train=y, x_test=x[:20], y_test=y[:20])
    return str(path)


def tensors(path):
    from safetensors.numpy import load_file

    return load_file(str(path))


# -- the library call ---------------------------------------------------------------------------


def test_train_run_writes_a_run_and_returns_its_results(small_npz, tmp_path):
    result = train_run(
        "fast",
        small_npz,
        overrides={**SMALL, "epochs": 2},
        seed=5,
        output=tmp_path / "run",
        verbose=0,
        report=False,
    )
    run = RunDir(tmp_path / "run")
    assert result.run.path == run.path and run.has_model()
    assert result.metrics == run.metrics
    assert result.config["seed"] == 5 and result.config["recipe"]["hidden"] == [8]
    assert result.config["flags"]["hidden"] == [8] and result.config["flags"]["epochs"] == 2
    assert result.metrics["epochs"] == 2 and len(result.history.epoch) == 2
    assert result.metrics["train_seconds"] == sum(result.metrics["train_segments"])
    assert result.report is None and result.report_note is None
    assert load_model(run.model_path).training_info["seed"] == 5


def test_mlp_train_is_the_library_call(small_npz, tmp_path, capsys):
    """Same arguments, same seed: the CLI's model is bitwise the library's."""
    from multilayer.cli.main import main

    train_run(
        "fast",
        small_npz,
        overrides={**SMALL, "epochs": 2},
        seed=7,
        output=tmp_path / "lib",
        verbose=0,
        report=False,
    )
    code = main(
        ["train", "--dataset", small_npz, "--hidden", "8", "--batch-size", "16"]
        + ["--epochs", "2", "--seed", "7", "-q", "--no-report", "-o", str(tmp_path / "cli")]
    )
    assert code == 0, capsys.readouterr().err
    library, cli = (
        tensors(tmp_path / "lib/model.safetensors"),
        tensors(tmp_path / "cli/model.safetensors"),
    )
    assert library.keys() == cli.keys()
    assert all(library[k].tobytes() == cli[k].tobytes() for k in library)


def test_prepare_run_writes_nothing(small_npz, tmp_path):
    prepared = prepare_run("fast", small_npz, overrides=SMALL, seed=1, output=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert prepared.layer_sizes == [784, 8, 10]
    assert prepared.steps_per_epoch == -(-len(prepared.train[0]) // 16)
    assert prepared.settings == {
        "recipe": "fast",
        "dataset": small_npz,
        "data_dir": None,
        "seed": 1,
        "early_stopping": None,
        "every": None,
        "flags": {
            "hidden": [8],
            "activation": None,
            "optimizer": None,
            "learning_rate": None,
            "schedule": None,
            "batch_size": 16,
            "epochs": None,
            "validation_split": None,
            "label_smoothing": None,
            "adversarial": None,
        },
    }


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("optimizer", "adamm", "Did you mean 'adam'"),
        ("activation", "rellu", "Did you mean 'relu'"),
        ("schedule", "cosin", "Did you mean 'cosine'"),
    ],
)
def test_unknown_names_in_a_recipe_name_the_field(field, value, message):
    with pytest.raises(RecipeError, match=message) as caught:
        check_recipe(get_recipe("fast").with_overrides(**{field: value}))
    assert caught.value.field == field


def test_bad_overrides_are_refused_before_any_data_is_read(tmp_path):
    missing = str(tmp_path / "none.npz")  # never read: the checks come first
    with pytest.raises(ValueError, match=r"cannot override \['dropout'\]"):
        prepare_run("fast", missing, overrides={"dropout": 0.5})
    with pytest.raises(RecipeError):
        prepare_run("fast", missing, overrides={"optimizer": "nope"})
    with pytest.raises(ValueError, match="invalid checkpoint frequency"):
        prepare_run("fast", missing, checkpoint_every="0")


def test_resume_run_continues_bitwise_identically(small_npz, tmp_path):
    from multilayer.models.checkpoint import list_checkpoints

    options = {"overrides": {**SMALL, "epochs": 3}, "seed": 2, "checkpoint_every": "1"}
    whole = train_run("fast", small_npz, output=tmp_path / "a", verbose=0, report=False, **options)
    train_run("fast", small_npz, output=tmp_path / "b", verbose=0, report=False, **options)
    newest, previous = list_checkpoints(tmp_path / "b/checkpoints")
    newest.unlink()  # as if killed during the last epoch
    (tmp_path / "b/model.safetensors").unlink()
    prepared = prepare_resume(tmp_path / "b")
    assert prepared.resumed_from.path == previous
    resumed = prepared.run(verbose=0, report=False)
    a, b = tensors(tmp_path / "a/model.safetensors"), tensors(tmp_path / "b/model.safetensors")
    assert all(a[k].tobytes() == b[k].tobytes() for k in a)
    assert resumed.history.history == whole.history.history
    assert len(resumed.metrics["train_segments"]) == 2


def test_resume_needs_a_checkpoint_with_valid_settings(small_npz, tmp_path):
    with pytest.raises(NothingToResumeError, match="nothing to resume"):
        resume_run(tmp_path)
    train_run(
        "fast",
        small_npz,
        overrides={**SMALL, "epochs": 1},
        seed=2,
        checkpoint_every="1",
        output=tmp_path / "run",
        verbose=0,
        report=False,
    )
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    from multilayer.models.checkpoint import list_checkpoints

    (path,) = list_checkpoints(tmp_path / "run/checkpoints")
    with safe_open(str(path), framework="numpy") as handle:
        metadata = dict(handle.metadata())
    for settings, bad in [
        ({**json.loads(metadata["run"]), "seed": "7"}, "['seed']"),
        ({**json.loads(metadata["run"]), "flags": {"dropout": 1}}, "['flags']"),
    ]:
        save_file(
            load_file(str(path)), str(path), metadata={**metadata, "run": json.dumps(settings)}
        )
        with pytest.raises(ModelFileError, match=rf"malformed run settings \{bad}"):
            prepare_resume(tmp_path / "run")


# -- the pixel scale is stored in the model file -------------------------------------------------


def test_build_model_records_its_input_scale():
    plain = build_model(Recipe(name="t", hidden=(4,)), (28, 28), 10, 1, seed=0)
    assert plain.input_scale == InputScale(255.0)
    standard = build_model(
        Recipe(name="t", hidden=(4,), standardize=True), (28, 28), 10, 1, pixel_stats=(0.3, 0.4)
    )
    assert standard.input_scale == InputScale(255.0, mean=0.3, std=0.4)
    (rescaling,) = [layer for layer in standard.layers if type(layer).__name__ == "Rescaling"]
    assert rescaling.scale == pytest.approx(1 / (255 * 0.4))
    assert rescaling.offset == pytest.approx(-0.3 / 0.4)


def test_a_model_standardised_with_its_own_statistics_gets_raw_pixels(tmp_path):
    """Fashion-MNIST-like statistics: the Rescaling matches no recipe constant, so guessing
    from the layers fed such a model [0, 1] floats; the recorded scale feeds it 0..255."""
    recipe = Recipe(name="t", hidden=(4,), standardize=True)
    model = build_model(recipe, (28, 28), 10, 1, seed=0, pixel_stats=(0.286, 0.353))
    model.save(tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    assert loaded.input_scale == InputScale(255.0, mean=0.286, std=0.353)
    images = np.full((2, 28, 28), 200, np.uint8)
    fed = model_inputs(loaded, images, pixel_max=255)
    assert np.array_equal(fed, images) and np.shares_memory(fed, images)  # as they are
    assert np.allclose(model_inputs(loaded, images / 255.0, pixel_max=1.0), 200)
    assert expects_raw_pixels(loaded)


def test_files_without_an_input_scale_still_load_and_are_recognised(tmp_path):
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    model = build_model(get_recipe("fast").with_overrides(hidden=(4,)), (28, 28), 10, 1, seed=0)
    path = tmp_path / "old.safetensors"
    model.save(path)
    with safe_open(str(path), framework="numpy") as handle:
        metadata = dict(handle.metadata())
    assert json.loads(metadata.pop("input"))["pixel_max"] == 255.0
    save_file(load_file(str(path)), str(path), metadata=metadata)  # as earlier versions wrote
    old = load_model(path)
    assert old.input_scale is None
    assert expects_raw_pixels(old)  # the fast recipe's standardising Rescaling, recognised
    for bad in ('{"pixel_max": 0, "mean": null, "std": null}', "[255]", '{"pixel_max": 255}'):
        save_file(load_file(str(path)), str(path), metadata={**metadata, "input": bad})
        with pytest.raises(ModelFileError, match="invalid header entry 'input'"):
            load_model(path)


def test_pixel_statistics_are_exact_and_refuse_blank_data():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(1000, 8, 8)).astype(np.uint8)
    mean, std = pixel_statistics(images, chunk=7)
    scaled = images.astype(np.float64) / 255
    assert mean == pytest.approx(scaled.mean(), rel=1e-12)
    assert std == pytest.approx(scaled.std(), rel=1e-9)
    with pytest.raises(ValueError, match="same value"):
        pixel_statistics(np.zeros((3, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="no images"):
        pixel_statistics(np.zeros((0, 2, 2), np.uint8))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pixel_max": float("nan")}, "finite"),
        ({"pixel_max": -1}, "positive"),
        ({"mean": 0.1}, "both"),
        ({"mean": 0.1, "std": 0.0}, "positive"),
        ({"pixel_max": 10**400}, "finite"),
        ({"pixel_max": "255"}, "finite"),
    ],
)
def test_input_scale_values_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        InputScale(**kwargs)
