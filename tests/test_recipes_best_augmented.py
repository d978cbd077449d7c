"""Issue 14, item 1: the recipes ``best`` and ``augmented`` run end to end at smoke size (a few
hundred images, 1 epoch) and write a run directory; their settings reach the model."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from multilayer.cli.main import main
from multilayer.engine.constraints import MaxNorm
from multilayer.engine.layers import Dense, Dropout
from multilayer.models import load_model
from multilayer.recipes import build_model, get_recipe
from multilayer.runs import RunDir
from multilayer.training import prepare_run, train_run


@pytest.fixture
def digits_npz(tmp_path):
    """300 training and 50 test images: a bar whose position is the class."""
    rng = np.random.default_rng(0)
    y = np.arange(350) % 10
    x = rng.integers(0, 40, size=(350, 28, 28)).astype(np.uint8)
    for i, label in enumerate(y):
        x[i, 4 + 2 * label : 6 + 2 * label, 6:22] = 255
    path = tmp_path / "digits.npz"
    np.savez(path, x_train=x[:300], y_train=y[:300], x_test=x[300:], y_test=y[300:])
    return str(path)


def weights(path):
    from safetensors.numpy import load_file

    return load_file(str(path))


@pytest.mark.parametrize("name", ["best", "augmented"])
def test_recipe_runs_end_to_end_with_mlp_train(name, digits_npz, tmp_path, capsys):
    out = tmp_path / name
    args = ["train", "--recipe", name, "--dataset", digits_npz, "--epochs", "1", "--seed", "3"]
    code = main([*args, "-q", "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    run = RunDir(out)
    assert run.has_model() and (out / "report" / "index.html").is_file()
    config = json.loads((out / "config.json").read_text())
    assert config["recipe"]["name"] == name and config["recipe"]["epochs"] == 1
    assert config["recipe"]["max_norm"] == 3.5
    assert config["dataset"]["validation_samples"] == 30  # the recipe's 10% hold-out
    metrics = run.metrics
    assert metrics["epochs"] == 1 and 0.0 <= metrics["test_accuracy"] <= 1.0
    if name == "augmented":
        assert config["recipe"]["augment"]["alpha"] == 34.0
        assert config["recipe"]["augment"]["scale"] == [0.9, 1.1]
    else:
        assert config["recipe"]["augment"] is None
    model = load_model(run.model_path)  # the saved model loads and predicts
    assert model.predict(np.zeros((2, 28, 28), np.uint8), verbose=0).shape == (2, 10)


def test_best_builds_dropout_on_inputs_and_hidden_units_and_max_norm():
    model = build_model(get_recipe("best"), (28, 28), 10, steps_per_epoch=10, seed=0)
    model.build()
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == [
        "Flatten",
        "Rescaling",
        "Dropout",
        "Dense",
        "Dropout",
        "Dense",
        "Dropout",
        "Dense",
    ]
    rates = [layer.rate for layer in model.layers if isinstance(layer, Dropout)]
    assert rates == [0.2, 0.3, 0.3]
    assert model.adversarial_training.epsilon == pytest.approx(0.2 * 255)
    dense = [layer for layer in model.layers if isinstance(layer, Dense)]
    assert [layer.units for layer in dense] == [1024, 1024, 10]
    assert all(isinstance(layer.kernel_constraint, MaxNorm) for layer in dense)
    assert all(layer.kernel_constraint.max_value == 3.5 for layer in dense)


def test_max_norm_holds_after_training(digits_npz, tmp_path):
    recipe = get_recipe("best").with_overrides(hidden=(32,), max_norm=0.5, epochs=1)
    model = build_model(recipe, (28, 28), 10, steps_per_epoch=3, seed=0)
    data = np.load(digits_npz)
    model.fit(data["x_train"], data["y_train"], batch_size=128, epochs=1, verbose=0)
    for layer in model.layers:
        if isinstance(layer, Dense):
            norms = np.linalg.norm(layer.get_weights()[0], axis=0)
            assert norms.max() <= 0.5 + 1e-5


def test_augmented_runs_are_reproducible_and_differ_from_unaugmented(digits_npz, tmp_path):
    options = {"seed": 4, "verbose": 0, "report": False, "overrides": {"epochs": 1}}
    train_run("augmented", digits_npz, output=tmp_path / "a", **options)
    train_run("augmented", digits_npz, output=tmp_path / "b", **options)
    a, b = weights(tmp_path / "a/model.safetensors"), weights(tmp_path / "b/model.safetensors")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    plain = prepare_run(
        "augmented", digits_npz, seed=4, output=tmp_path / "c", overrides={"epochs": 1}
    )
    plain.recipe = dataclasses.replace(plain.recipe, augment=None)
    plain.run(verbose=0, report=False)
    c = weights(tmp_path / "c/model.safetensors")
    assert any(not np.array_equal(a[k], c[k]) for k in a)


def test_augmented_refuses_checkpoints_and_non_grayscale_images(digits_npz, tmp_path, monkeypatch):
    with pytest.raises(
        ValueError, match="augments its images on the fly: it cannot be checkpointed"
    ):
        prepare_run("augmented", digits_npz, checkpoint_every="1", output=tmp_path / "r")
    # colour images (an image folder read as RGB): refused before anything is built
    import multilayer.training as training

    rgb = np.load(digits_npz)
    fake = type("Data", (), {"x_train": np.stack([rgb["x_train"]] * 3, -1)})()
    monkeypatch.setattr(training, "load_dataset", lambda *args, **kwargs: fake)
    with pytest.raises(ValueError, match=r"augments grayscale images \(n, height, width\)"):
        prepare_run("augmented", "folder", output=tmp_path / "r")


def test_the_recipes_adversarial_field_sets_fgsm_training_on_the_pixel_scale():
    from multilayer.models.adversarial import AdversarialTraining

    recipe = get_recipe("best").with_overrides(adversarial=0.1)
    model = build_model(recipe, (28, 28), 10, steps_per_epoch=10, seed=0)
    assert model.adversarial_training == AdversarialTraining(25.5, clip=(0.0, 255.0))
    plain = build_model(get_recipe("fast"), (28, 28), 10, steps_per_epoch=10, seed=0)
    assert plain.adversarial_training is None


def test_mlp_train_adversarial_flag_reaches_the_recipe(digits_npz, tmp_path, capsys):
    out = tmp_path / "adv"
    args = ["train", "--dataset", digits_npz, "--epochs", "1", "--seed", "0", "--no-report"]
    assert main([*args, "--adversarial", "0.05", "-q", "-o", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["recipe"]["name"] == "fast" and config["recipe"]["adversarial"] == 0.05
    capsys.readouterr()
    assert main([*args, "--adversarial", "1.5", "-q", "-o", str(tmp_path / "bad")]) == 2
    assert (
        "Invalid value for '--adversarial': must be in [0, 1), got 1.5" in capsys.readouterr().err
    )
