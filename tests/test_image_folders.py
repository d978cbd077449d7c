"""Image folders: ``image_dataset_from_directory`` and ``load_dataset(folder)`` / ``mlp train
--dataset folder``, on small folders generated with Pillow."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image")

from multilayer.cli.main import main  # noqa: E402
from multilayer.datasets import load_dataset  # noqa: E402
from multilayer.errors import DataError, ImageError  # noqa: E402
from multilayer.utils import PyDataset, image_dataset_from_directory  # noqa: E402
from multilayer.utils.image_dataset_utils import load_image_file  # noqa: E402


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and modification time."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def make_folder(root: Path, per_class: int = 3) -> Path:
    """``cats`` are dark squares (PNG), ``dogs`` bright ones (JPEG); plus junk to ignore."""
    for name, value, ext in (("cats", 10, "png"), ("dogs", 240, "jpg")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (8, 6), (value, value, value)).save(root / name / f"{i}.{ext}")
    (root / "README.txt").write_text("not a class")  # a file at the top: ignored
    (root / "cats" / "notes.txt").write_text("not an image")  # other extension: ignored
    (root / "cats" / ".hidden.png").write_bytes(b"\x00")  # hidden: ignored
    nested = root / "dogs" / "more"
    nested.mkdir()
    Image.new("L", (4, 4), 200).save(nested / "deep.bmp")  # nested images count
    return root


def test_arrays_labels_and_class_order(tmp_path):
    root = make_folder(tmp_path / "pets")
    x, y = image_dataset_from_directory(
        root, batch_size=None, image_size=(6, 8), shuffle=False, verbose=False
    )
    assert x.dtype == np.float32 and x.shape == (7, 6, 8, 3)
    assert y.dtype == np.int32 and y.tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert np.all(x[:3] == 10)  # PNG is lossless
    assert np.all(np.abs(x[3:6] - 240) <= 3)  # JPEG, nearly
    assert np.all(x[6] == 200)  # the nested BMP, resized from 4x4


def test_verbose_prints_what_it_found(tmp_path, capsys):
    image_dataset_from_directory(make_folder(tmp_path / "p"), batch_size=None, image_size=(4, 4))
    assert capsys.readouterr().out == "Found 7 files belonging to 2 classes.\n"


def test_label_modes_and_color_modes(tmp_path):
    root = make_folder(tmp_path / "pets")
    common = dict(batch_size=None, image_size=(3, 3), shuffle=False, verbose=False)
    x, y = image_dataset_from_directory(root, label_mode="categorical", **common)
    assert y.dtype == np.float32 and y.tolist() == [[1, 0]] * 3 + [[0, 1]] * 4
    _, y = image_dataset_from_directory(root, label_mode="binary", **common)
    assert y.shape == (7, 1) and y[:, 0].tolist() == [0, 0, 0, 1, 1, 1, 1]
    x, y = image_dataset_from_directory(root, color_mode="grayscale", **common)
    assert x.shape == (7, 3, 3, 1)
    x = image_dataset_from_directory(root, label_mode=None, color_mode="rgba", **common)
    assert isinstance(x, np.ndarray) and x.shape == (7, 3, 3, 4) and np.all(x[..., 3] == 255)
    x, y = image_dataset_from_directory(root, class_names=["dogs", "cats"], **common)
    assert y.tolist() == [0, 0, 0, 0, 1, 1, 1]


def test_binary_needs_two_classes(tmp_path):
    root = make_folder(tmp_path / "pets")
    (root / "birds").mkdir()
    Image.new("L", (2, 2)).save(root / "birds" / "a.png")
    with pytest.raises(ValueError) as info:
        image_dataset_from_directory(root, label_mode="binary", batch_size=None, verbose=False)
    assert str(info.value) == (
        'When passing `label_mode="binary"`, there must be exactly 2 class_names. '
        "Received: class_names=['birds', 'cats', 'dogs']"
    )


def test_class_names_must_match_the_folders(tmp_path):
    root = make_folder(tmp_path / "pets")
    with pytest.raises(ValueError) as info:
        image_dataset_from_directory(root, class_names=["cats", "cows"], verbose=False)
    assert str(info.value) == (
        "The `class_names` passed did not match the names of the subdirectories of the "
        "target directory. Expected: ['cats', 'dogs'], but received: ['cats', 'cows']"
    )


def test_an_empty_class_folder_is_a_class_without_images(tmp_path):
    root = make_folder(tmp_path / "pets")
    (root / "ants").mkdir()
    x, y = image_dataset_from_directory(
        root, batch_size=None, image_size=(2, 2), shuffle=False, verbose=False,
        label_mode="categorical",
    )  # fmt: skip
    assert y.shape == (7, 3) and y[:, 0].sum() == 0 and y[:, 1].sum() == 3


def test_no_images_and_missing_folder(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.txt").write_text("x")
    with pytest.raises(ValueError) as info:
        image_dataset_from_directory(tmp_path, verbose=False)
    assert str(info.value) == (
        f"No images found in directory {tmp_path}. Allowed formats: .bmp, .gif, .jpeg, .jpg, .png"
    )
    with pytest.raises(FileNotFoundError, match="no such directory"):
        image_dataset_from_directory(tmp_path / "nowhere")


def test_bad_arguments_are_refused_with_keras_messages(tmp_path):
    root = make_folder(tmp_path / "pets")
    with pytest.raises(ValueError, match="^Only one of `crop_to_aspect_ratio`"):
        image_dataset_from_directory(root, crop_to_aspect_ratio=True, pad_to_aspect_ratio=True)
    with pytest.raises(ValueError, match="you must provide a `seed` argument"):
        image_dataset_from_directory(root, validation_split=0.2, subset="training")
    with pytest.raises(ValueError, match="^If `subset` is set"):
        image_dataset_from_directory(root, validation_split=0.2, seed=1)
    with pytest.raises(ValueError, match="^`label_mode` argument must be one of"):
        image_dataset_from_directory(root, label_mode="sparse")
    with pytest.raises(ValueError, match="^interpolation must be one of"):
        image_dataset_from_directory(root, interpolation="gaussian")
    with pytest.raises(ValueError, match="^on_error must be"):
        image_dataset_from_directory(root, on_error="ignore")


def test_validation_split_is_disjoint_and_reproducible(tmp_path):
    root = make_folder(tmp_path / "pets", per_class=5)  # 11 images
    common = dict(image_size=(2, 2), seed=3, validation_split=0.3, verbose=False)
    train, val = image_dataset_from_directory(root, subset="both", **common)
    assert isinstance(train, PyDataset) and isinstance(val, PyDataset)
    assert len(train.file_paths) == 8 and len(val.file_paths) == 3
    assert not set(train.file_paths) & set(val.file_paths)
    again = image_dataset_from_directory(root, subset="validation", **common)
    assert again.file_paths == val.file_paths
    assert train.class_names == ["cats", "dogs"]


def test_batches_decode_on_demand(tmp_path):
    root = make_folder(tmp_path / "pets")
    data = image_dataset_from_directory(
        root, batch_size=3, image_size=(2, 2), shuffle=False, verbose=False
    )
    assert len(data) == 3
    x, y = data[2]
    assert x.shape == (1, 2, 2, 3) and y.tolist() == [1]
    with pytest.raises(IndexError):
        data[3]


def test_crop_and_pad_to_aspect_ratio(tmp_path):
    path = tmp_path / "wide.png"
    image = np.zeros((2, 6), dtype=np.uint8)
    image[:, 2:4] = 255  # a white centre between black sides
    Image.fromarray(image).save(path)
    cropped = load_image_file(path, (2, 2), "grayscale", "nearest", crop_to_aspect_ratio=True)
    assert cropped[..., 0].tolist() == [[255, 255], [255, 255]]
    padded = load_image_file(path, (6, 6), "grayscale", "nearest", pad_to_aspect_ratio=True)
    assert padded[:2].max() == 0 and padded[4:].max() == 0  # black bars above and below
    assert padded[2:4, :, 0].tolist() == [image[0].tolist(), image[1].tolist()]
    stretched = load_image_file(path, (2, 2), "grayscale", "nearest")
    assert stretched.shape == (2, 2, 1) and stretched.min() == 0


def bad_folder(root: Path) -> Path:
    make_folder(root)
    (root / "cats" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    noise = np.random.default_rng(0).integers(0, 255, size=(32, 32), dtype=np.uint8)
    Image.fromarray(noise).save(root / "dogs" / "cut.png")
    data = (root / "dogs" / "cut.png").read_bytes()
    (root / "dogs" / "cut.png").write_bytes(data[: len(data) // 2])  # header intact
    return root


def test_undecodable_images_are_named_or_skipped(tmp_path, capsys):
    root = bad_folder(tmp_path / "pets")
    with pytest.raises(ImageError) as info:
        image_dataset_from_directory(root, batch_size=None, shuffle=False, verbose=False)
    assert str(info.value) == f"{root / 'cats' / 'broken.png'} is not a PNG, JPEG, BMP or GIF image"
    x, y = image_dataset_from_directory(
        root, batch_size=None, image_size=(2, 2), shuffle=False, on_error="skip"
    )
    assert len(x) == 7 and y.tolist() == [0, 0, 0, 1, 1, 1, 1]
    out = capsys.readouterr().out
    assert out == (
        "Found 9 files belonging to 2 classes.\nSkipped 2 file(s) that could not be decoded.\n"
    )
    data = image_dataset_from_directory(
        root, batch_size=4, image_size=(2, 2), shuffle=False, on_error="skip", verbose=False
    )
    sizes = [len(data[i][0]) for i in range(len(data))]
    # batches: cats 0-2 + broken.png | dogs 0-2 + cut.png | dogs/more/deep.bmp
    assert sizes == [3, 3, 1]
    assert [Path(p).name for p, _ in data.skipped] == ["broken.png", "cut.png"]
    assert data.skipped[1][1] == f"{root / 'dogs' / 'cut.png'} is a truncated or damaged PNG image"


def test_pixel_and_byte_limits_apply_per_image(tmp_path):
    root = make_folder(tmp_path / "pets")
    with pytest.raises(ImageError) as info:
        image_dataset_from_directory(root, batch_size=None, max_pixels=40, shuffle=False)
    assert str(info.value) == (
        f"{root / 'cats' / '0.png'} is too large: 8x6 pixels (the limit is 40 pixels)"
    )
    # Unshuffled, the first file read is cats/0.png (shuffled, any file could come first).
    first = root / "cats" / "0.png"
    with pytest.raises(ImageError) as info:
        image_dataset_from_directory(
            root, batch_size=None, max_bytes=10, shuffle=False, verbose=False
        )
    assert str(info.value) == (
        f"{first} is too large: {first.stat().st_size:,} bytes (the limit is 10 bytes)"
    )


def test_arrays_too_large_are_refused_before_allocating(tmp_path):
    root = make_folder(tmp_path / "pets")
    with pytest.raises(ValueError, match="pass a batch_size to read them batch by batch"):
        image_dataset_from_directory(
            root, batch_size=None, image_size=(10_000, 10_000), verbose=False
        )


def test_load_dataset_reads_a_folder_without_writing(tmp_path):
    root = make_folder(tmp_path / "pets", per_class=5)
    before = snapshot(root)
    data = load_dataset(root)
    assert snapshot(root) == before
    assert data.name == "pets" and data.class_names == ("cats", "dogs")
    assert data.source == str(root.absolute())
    assert data.x_train.dtype == np.uint8 and data.image_shape == (28, 28)
    assert len(data.x_train) + len(data.x_test) == 11
    assert sorted(data.y_test.tolist()) == [0, 1]  # 20% of each class, at least one
    again = load_dataset(root)
    assert np.array_equal(again.x_test, data.x_test)  # the split is fixed
    assert np.array_equal(again.y_train, data.y_train)


def test_load_dataset_names_the_bad_image(tmp_path):
    root = bad_folder(tmp_path / "pets")
    with pytest.raises(ImageError) as info:
        load_dataset(root)
    assert str(info.value) == (
        f"{root / 'cats' / 'broken.png'} is not a PNG, JPEG, BMP or GIF image "
        "(pass on_error='skip' to leave such files out)"
    )


def test_load_dataset_needs_two_images_per_class(tmp_path):
    root = tmp_path / "few"
    for name, count in (("a", 2), ("b", 1)):
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.new("L", (3, 3)).save(root / name / f"{i}.png")
    with pytest.raises(DataError) as info:
        load_dataset(root)
    assert str(info.value) == (
        f"{root / 'b'}: only 1 image, but each class needs at least 2 (one for training, "
        "one for testing)"
    )


def test_mlp_train_on_an_image_folder(tmp_path, capsys):
    root = tmp_path / "shapes"
    rng = np.random.default_rng(0)
    for label, name in enumerate(("horizontal", "vertical")):
        (root / name).mkdir(parents=True)
        for i in range(10):
            pixels = rng.integers(0, 30, size=(12, 12)).astype(np.uint8)
            if label == 0:
                pixels[5:7, :] = 250
            else:
                pixels[:, 5:7] = 250
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    before = snapshot(root)
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        code = main(
            [
                "train", "--dataset", "shapes", "--hidden", "8", "--epochs", "2",
                "--batch-size", "4", "--seed", "0", "--quiet", "--no-report",
                "--output", str(tmp_path / "run"),
            ]
        )  # fmt: skip
    finally:
        os.chdir(old)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert snapshot(root) == before
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["dataset"]["classes"] == ["horizontal", "vertical"]
    assert config["dataset"]["source"] == str(root)
    assert config["dataset"]["image_shape"] == [28, 28]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(metrics["confusion_matrix"]) == 2
    assert sum(map(sum, metrics["confusion_matrix"])) == 4  # 2 of each class held out
    assert config["dataset"]["image_folder"] is True
    code = main(["evaluate", str(tmp_path / "run"), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["test_samples"] == 4
    # mlp predict prepares a picture as the folder's images were (no MNIST centring)
    picture = tmp_path / "picture.png"
    Image.open(root / "vertical" / "0.png").resize((48, 48)).save(picture)
    code = main(["predict", str(tmp_path / "run"), str(picture), "--json"])
    out = capsys.readouterr().out
    assert code == 0
    assert json.loads(out)[0]["top"][0]["name"] == "vertical"


def test_prepare_image_matches_the_folder_pixels(tmp_path):
    from multilayer.datasets.folder import prepare_image

    root = make_folder(tmp_path / "pets", per_class=5)
    data = load_dataset(root)
    first = root / "cats" / "0.png"
    pixels = prepare_image(first)
    assert pixels.dtype == np.float32 and pixels.shape == (28, 28)
    assert np.array_equal(np.rint(pixels * 255).astype(np.uint8), np.full((28, 28), 10, np.uint8))
    assert 10 in np.unique(data.x_train)


def test_fit_reads_the_batches(tmp_path):
    from multilayer import layers
    from multilayer.models import Sequential

    root = make_folder(tmp_path / "pets", per_class=4)
    data = image_dataset_from_directory(
        root, batch_size=4, image_size=(4, 4), color_mode="grayscale", seed=0, verbose=False
    )
    model = Sequential([layers.Input((4, 4, 1)), layers.Rescaling(1 / 255), layers.Flatten()])
    model.add(layers.Dense(2, activation="softmax"))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(data, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and len(history.history["accuracy"]) == 2
