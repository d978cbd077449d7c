"""Confusion matrix, per-class precision/recall (multilayer.evaluation), the pixel-scale logic
shared by the CLI and the app (multilayer.inference), and run directories (multilayer.runs)."""

import json
import math

import numpy as np
import pytest

from multilayer.engine.layers import Dense, Flatten
from multilayer.errors import ModelFileError
from multilayer.evaluation import classification_report, confusion_matrix, precision_recall
from multilayer.inference import expects_raw_pixels, model_inputs, predict_image, top_k
from multilayer.models import Sequential
from multilayer.recipes import build_model, get_recipe
from multilayer.runs import RunDir, new_run_path, resolve_model_path, write_json

# -- evaluation ---------------------------------------------------------------------------


def test_confusion_matrix_by_hand():
    y_true = [0, 0, 1, 2, 2, 2]
    y_pred = [0, 1, 1, 2, 0, 2]
    expected = [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert confusion_matrix(y_true, y_pred, 3).tolist() == expected


def test_confusion_matrix_matches_counting_pairs():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 7, 500), rng.integers(0, 7, 500)
    expected = np.zeros((7, 7), dtype=int)
    for t, p in zip(y_true, y_pred, strict=True):
        expected[t, p] += 1
    matrix = confusion_matrix(y_true, y_pred, 7)
    assert matrix.tolist() == expected.tolist()
    assert matrix.sum() == 500


def test_precision_recall_by_hand_and_undefined_classes():
    # Class 0: 1 of 2 predictions right, 1 of 2 samples found. Class 1: predicted once,
    # right. Class 2: never occurs and never predicted -> both undefined (NaN).
    matrix = confusion_matrix([0, 0, 1], [0, 1, 1], 3)
    precision, recall = precision_recall(matrix)
    assert precision[:2].tolist() == [1.0, 0.5]
    assert recall[:2].tolist() == [0.5, 1.0]
    assert math.isnan(precision[2]) and math.isnan(recall[2])


def test_classification_report_from_probabilities():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    report = classification_report([0, 1, 1, 1], probabilities, class_names=["cat", "dog"])
    assert report["accuracy"] == 0.75
    assert report["confusion_matrix"] == [[1, 0], [1, 2]]
    cat, dog = report["per_class"]
    assert (cat["name"], cat["precision"], cat["recall"], cat["support"]) == ("cat", 0.5, 1.0, 1)
    assert (dog["precision"], dog["recall"], dog["support"]) == (1.0, 2 / 3, 3)
    json.dumps(report, allow_nan=False)  # strict JSON: no NaN anywhere


def test_classification_report_writes_none_for_undefined_precision():
    report = classification_report([0, 0], [0, 0], num_classes=2)
    assert report["per_class"][1]["precision"] is None
    assert report["per_class"][1]["recall"] is None


@pytest.mark.parametrize(
    ("y_true", "y_pred", "fragment"),
    [
        ([0, 3], [0, 1], "out of range"),
        ([0, -1], [0, 1], "out of range"),
        ([0, 1], [0], "different lengths"),
        ([0.5, 1], [0, 1], "integer"),
        ([[0, 1]], [[0, 1]], "1-D"),
    ],
)
def test_confusion_matrix_refuses_bad_labels(y_true, y_pred, fragment):
    with pytest.raises(ValueError, match=fragment):
        confusion_matrix(y_true, y_pred, 3)


# -- inference ------------------------------------------------------------------------------


def recipe_model(**changes):
    recipe = get_recipe("fast").with_overrides(hidden=(8,), **changes)
    model = build_model(recipe, (28, 28), 10, 1, seed=0)
    model.build()
    return model


def tutorial_model():
    model = Sequential(
        [Dense(8, input_shape=(784,), activation="relu"), Dense(10, activation="softmax")], seed=0
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.build()
    return model


def test_expects_raw_pixels():
    assert expects_raw_pixels(recipe_model())
    assert not expects_raw_pixels(tutorial_model())
    assert not expects_raw_pixels(Sequential([Flatten(input_shape=(28, 28)), Dense(10)]))


def test_model_inputs_scale_and_shape():
    images = np.random.default_rng(0).random((3, 28, 28)).astype(np.float32)
    raw = model_inputs(recipe_model(), images, pixel_max=1.0)
    assert raw.shape == (3, 28, 28)
    np.testing.assert_allclose(raw, images * 255, rtol=1e-6)

    flat = model_inputs(tutorial_model(), images * 255, pixel_max=255)
    assert flat.shape == (3, 784)
    np.testing.assert_allclose(flat, images.reshape(3, 784), rtol=1e-5)

    uint8 = np.zeros((2, 28, 28), np.uint8)
    assert model_inputs(recipe_model(), uint8, pixel_max=255).dtype == np.uint8  # no copy to float


def test_model_inputs_refuses_wrong_size():
    with pytest.raises(ValueError, match=r"\(784,\)"):
        model_inputs(tutorial_model(), np.zeros((1, 20, 20)), pixel_max=1.0)


def test_both_kinds_of_model_see_the_same_image():
    """A recipe model and a tutorial-style model with the same weights agree on an image."""
    # pixels / 255 as the tutorial's model expects them (not the standardised "fast" inputs)
    raw_model, flat_model = recipe_model(standardize=False), tutorial_model()
    flat_model.set_weights(raw_model.get_weights())
    image = np.random.default_rng(1).random((28, 28)).astype(np.float32)
    probabilities = predict_image(raw_model, image)
    assert probabilities.shape == (10,)
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(probabilities, predict_image(flat_model, image), rtol=1e-4)


def test_top_k():
    assert top_k(np.array([0.1, 0.6, 0.3]), 2) == [(1, 0.6), (2, 0.3)]
    assert len(top_k(np.array([0.5, 0.5]), 5)) == 2


# -- run directories ------------------------------------------------------------------------


def test_run_dir_round_trip(tmp_path):
    run = RunDir(tmp_path / "runs" / "one").create()
    model = recipe_model()
    model.save(run.model_path)
    run.write_config({"seed": 1})
    run.write_metrics({"test_accuracy": 0.5, "undefined": float("nan")})
    run.write_history([0, 1], {"loss": [2.0, 1.0], "accuracy": [0.1, 0.2]})
    assert run.config == {"seed": 1}
    assert run.metrics == {"test_accuracy": 0.5, "undefined": None}
    assert run.history == {"epoch": [0, 1], "accuracy": [0.1, 0.2], "loss": [2.0, 1.0]}
    assert run.history_csv_path.read_text().splitlines() == [
        "epoch,accuracy,loss",
        "0,0.1,2.0",
        "1,0.2,1.0",
    ]
    path, found = resolve_model_path(run.path)
    assert path == run.model_path and found.path == run.path
    path, found = resolve_model_path(run.model_path)
    assert path == run.model_path and found.path == run.path
    np.testing.assert_array_equal(run.load_model().get_weights()[0], model.get_weights()[0])


def test_run_dir_refuses_a_non_empty_directory(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        RunDir(tmp_path).create()


def test_absent_files_read_as_none_and_missing_model_is_an_error(tmp_path):
    run = RunDir(tmp_path)
    assert run.config is None and run.metrics is None and run.history is None
    with pytest.raises(ModelFileError):
        run.load_model()
    with pytest.raises(ModelFileError, match="without model.safetensors"):
        resolve_model_path(tmp_path)
    with pytest.raises(FileNotFoundError):
        resolve_model_path(tmp_path / "nothing")


def test_new_run_path_never_reuses_a_directory(tmp_path):
    first = new_run_path(tmp_path, "fast")
    first.mkdir()
    second = new_run_path(tmp_path, "fast")
    assert second != first and second.name.startswith(first.name) and first.name.endswith("-fast")


def test_write_json_is_strict(tmp_path):
    path = write_json(
        tmp_path / "x.json", {"a": np.float32(0.5), "b": np.arange(2), "c": float("inf")}
    )
    assert json.loads(path.read_text()) == {"a": 0.5, "b": [0, 1], "c": None}
