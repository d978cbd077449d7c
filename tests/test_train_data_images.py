"""Issue 11 item 4: `mlp train --data FOLDER` with --image-size, --color-mode and
--bad-images, and `--data x.npz`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from multilayer.cli.main import main
from multilayer.datasets import load_dataset
from multilayer.datasets.folder import ImageOptions
from multilayer.runs import RunDir

Image = pytest.importorskip("PIL.Image")


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def folder(root: Path, broken: bool = False) -> Path:
    for name, color in (("red", (250, 10, 10)), ("blue", (10, 10, 250))):
        (root / name).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (10, 8), color).save(root / name / f"{i}.png")
    if broken:
        (root / "red" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    return root


def test_rgb_folder_at_a_chosen_size_trains_and_records_its_options(capsys, tmp_path):
    root = folder(tmp_path / "colors")
    out = tmp_path / "run"
    code, _, err = run(
        capsys, "train", "--data", root, "--image-size", "6x5", "--color-mode", "rgb",
        "--epochs", "1", "--seed", "0", "--quiet", "--no-report", "-o", out,
    )  # fmt: skip
    assert code == 0, err
    config = RunDir(out).config
    assert config["dataset"]["image_shape"] == [6, 5, 3]
    assert config["dataset"]["image_options"] == {
        "image_size": [6, 5], "color_mode": "rgb", "on_error": "raise",
    }  # fmt: skip
    model = RunDir(out).load_model()
    assert model.input_shape == (6, 5, 3)


def test_evaluate_and_report_read_the_folder_as_training_did(capsys, tmp_path):
    # Not at the default 28x28 grayscale: evaluate and report must use the recorded options.
    root = folder(tmp_path / "colors")
    out = tmp_path / "run"
    code, _, err = run(
        capsys, "train", "--data", root, "--image-size", "6x5", "--color-mode", "rgb",
        "--epochs", "1", "--seed", "0", "--quiet", "--no-report", "-o", out,
    )  # fmt: skip
    assert code == 0, err
    data = RunDir(out).load_dataset()
    assert data.x_test.shape[1:] == (6, 5, 3)
    code, printed, err = run(capsys, "evaluate", out, "--json")
    assert code == 0, err
    metrics = RunDir(out).metrics
    assert metrics is not None
    assert json.loads(printed)["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    code, printed, err = run(capsys, "report", out)
    assert code == 0, err
    assert (out / "report" / "index.html").is_file()


def test_bad_images_are_refused_by_name_or_skipped(capsys, tmp_path):
    root = folder(tmp_path / "colors", broken=True)
    code, out, err = run(
        capsys, "train", "--data", root, "--epochs", "1", "--quiet", "-o", tmp_path / "a"
    )
    assert code == 1 and "Traceback" not in err
    assert err.strip() == (
        f"error: {root / 'red' / 'broken.png'} is not a PNG, JPEG, BMP or GIF image "
        "(pass --bad-images skip to leave such files out)"
    )
    assert not (tmp_path / "a").exists()
    code, _, err = run(
        capsys, "train", "--data", root, "--bad-images", "skip", "--epochs", "1", "--quiet",
        "--no-report", "-o", tmp_path / "b",
    )  # fmt: skip
    assert code == 0, err
    assert (
        RunDir(tmp_path / "b").config["dataset"]["train_samples"]
        + RunDir(tmp_path / "b").config["dataset"]["test_samples"]
        == 8
    )


def test_image_option_errors(capsys, tmp_path):
    root = folder(tmp_path / "colors")

    def error(*argv) -> str:
        code, _, err = run(capsys, "train", *argv, "--epochs", "1", "--quiet")
        assert code == 2, err
        return err.strip()

    assert error("--data", root, "--image-size", "big") == (
        "error: Invalid value for --image-size: expected HEIGHTxWIDTH such as 28x28, got 'big'"
    )
    assert error("--data", root, "--color-mode", "cmyk") == (
        "error: Invalid value for --color-mode: must be grayscale or rgb, got 'cmyk'"
    )
    assert error("--data", root, "--bad-images", "ignore") == (
        "error: Invalid value for --bad-images: must be skip or refuse, got 'ignore'"
    )
    assert error("--data", root, "--image-size", "0x5") == (
        "error: Invalid value: image_size must be (height, width) with sides 1..1024, got (0, 5)"
    )
    assert error("--image-size", "8x8") == (
        "error: Invalid value: --image-size only apply to an image folder given with --data"
    )


def test_npz_through_data(capsys, tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "tiny.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 255, (40, 4, 4), dtype=np.uint8),
        y_train=np.arange(40) % 2,
        x_test=rng.integers(0, 255, (10, 4, 4), dtype=np.uint8),
        y_test=np.arange(10) % 2,
    )
    out = tmp_path / "run"
    code, _, err = run(
        capsys, "train", "--data", path, "--epochs", "1", "--quiet", "--no-report", "-o", out
    )
    assert code == 0, err
    assert RunDir(out).config["dataset"]["image_shape"] == [4, 4]


def test_image_options_round_trip_and_refuse_non_folders(tmp_path):
    options = ImageOptions((32, 16), "rgb", "skip")
    assert ImageOptions.from_config(options.to_config()) == options
    with pytest.raises(ValueError, match="image options must be"):
        ImageOptions.from_config({"image_size": [1, 1]})
    with pytest.raises(ValueError) as info:
        load_dataset("mnist", image_options=options)
    assert str(info.value) == (
        "mnist is not an image folder: image options (size, color mode, bad images) only "
        "apply to image folders"
    )
