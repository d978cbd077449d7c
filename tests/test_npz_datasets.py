"""Your own dataset as an .npz file: the hostile-file reader (`read_npz`), the checks of
`load_dataset` (any image size, K classes from the labels), and the whole command line on
images that are not 28x28: train, evaluate (on the run's own dataset), report, predict.
"""

from __future__ import annotations

import io
import json
import os
import struct
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from multilayer.cli.main import main
from multilayer.datasets import NPZ_KEYS, load_dataset, read_npz
from multilayer.errors import DataError

HEIGHT, WIDTH, CLASSES = 12, 16, 3


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def toy_arrays(n_train=60, n_test=30, shape=(HEIGHT, WIDTH), classes=CLASSES, seed=0):
    """Images whose class is which horizontal band is bright: learnable in one epoch."""
    rng = np.random.default_rng(seed)

    def split(n):
        y = np.arange(n) % classes
        x = rng.integers(0, 40, size=(n, *shape)).astype(np.uint8)
        band = shape[0] // classes
        for i, label in enumerate(y):
            x[i, label * band : (label + 1) * band] = 220
        return x, y

    (x_train, y_train), (x_test, y_test) = split(n_train), split(n_test)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def write(path: Path, compressed=False, **overrides) -> Path:
    arrays = {**toy_arrays(), **overrides}
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return path


# --- read_npz: exact round trips ---------------------------------------------------------


@pytest.mark.parametrize("compressed", [False, True])
def test_round_trip(tmp_path, compressed):
    arrays = toy_arrays()
    arrays["x_train"] = np.asfortranarray(arrays["x_train"].astype(">f4"))
    path = tmp_path / "d.npz"
    (np.savez_compressed if compressed else np.savez)(path, extra=np.arange(3), **arrays)
    got = read_npz(path, NPZ_KEYS)
    assert list(got) == list(NPZ_KEYS)
    for key in NPZ_KEYS:
        assert got[key].dtype == arrays[key].dtype
        assert np.array_equal(got[key], arrays[key])


# --- read_npz: hostile files ----------------------------------------------------------------


def test_a_npy_renamed_npz_is_named_as_such(tmp_path):
    path = tmp_path / "d.npz"
    np.save(tmp_path / "d.npy", np.zeros(3))
    (tmp_path / "d.npy").rename(path)
    with pytest.raises(DataError) as excinfo:
        read_npz(path, NPZ_KEYS)
    assert str(excinfo.value) == (
        f"{path} is a single .npy array, not an .npz archive: save the arrays "
        "x_train, y_train, x_test, y_test together with numpy.savez"
    )


def test_not_a_zip(tmp_path):
    path = tmp_path / "d.npz"
    path.write_bytes(b"hello, world")
    with pytest.raises(DataError) as excinfo:
        read_npz(path, NPZ_KEYS)
    assert str(excinfo.value) == f"{path} is not an .npz file (not a zip archive)"


def test_a_truncated_zip_is_a_data_error(tmp_path):
    path = write(tmp_path / "d.npz")
    path.write_bytes(path.read_bytes()[:-100])  # the central directory is gone
    with pytest.raises(DataError, match=r"is a damaged \.npz file \(File is not a zip file\)"):
        read_npz(path, NPZ_KEYS)


def test_a_flipped_byte_fails_the_crc(tmp_path):
    path = write(tmp_path / "d.npz")
    data = bytearray(path.read_bytes())
    data[data.index(b"x_train.npy") + 300] ^= 0xFF  # inside x_train's pixels (stored)
    path.write_bytes(bytes(data))
    with pytest.raises(
        DataError, match=r"damaged \.npz file \(Bad CRC-32 for file 'x_train\.npy'\)"
    ):
        read_npz(path, NPZ_KEYS)


def test_missing_arrays(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.zeros((2, 2, 2)), y_train=np.zeros(2))
    with pytest.raises(DataError) as excinfo:
        read_npz(path, NPZ_KEYS)
    assert str(excinfo.value) == (
        f"{path}: missing arrays ['x_test', 'y_test']; an .npz dataset needs "
        "x_train, y_train, x_test, y_test"
    )


def test_object_arrays_are_refused_without_unpickling(tmp_path):
    path = tmp_path / "d.npz"
    arrays = toy_arrays()
    arrays["y_train"] = np.array([{"a": 1}] * 60, dtype=object)
    np.savez(path, **arrays)  # pickles the objects
    with pytest.raises(DataError, match=r"array 'y_train' has dtype object: expected numbers"):
        read_npz(path, NPZ_KEYS)


def npy_header(shape, descr="|u1") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buffer.getvalue()


def zip_with_member(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_a_shape_the_member_does_not_hold(tmp_path):
    members = {f"{k}.npy": npy_header((2, 2, 2)) + bytes(8) for k in NPZ_KEYS}
    members["x_train.npy"] = npy_header((1000, 28, 28)) + bytes(8)
    path = zip_with_member(tmp_path / "d.npz", members)
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as excinfo:
            read_npz(path, NPZ_KEYS)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(excinfo.value) == (
        f"{path}: array 'x_train' declares shape (1000, 28, 28) of uint8 "
        "(784000 bytes), but the archive holds 8 bytes of data for it"
    )
    assert peak < 2 * 2**20


def patch_declared_size(data: bytes, name: bytes, size: int) -> bytes:
    """Set a member's uncompressed size in its local header and central directory entry."""
    data = bytearray(data)
    local = data.index(b"PK\x03\x04" + data[4:4])  # first local header
    while data[local + 30 : local + 30 + len(name)] != name:
        local = data.index(b"PK\x03\x04", local + 4)
    data[local + 22 : local + 26] = struct.pack("<I", size)
    central = data.index(b"PK\x01\x02")
    while data[central + 46 : central + 46 + len(name)] != name:
        central = data.index(b"PK\x01\x02", central + 4)
    data[central + 24 : central + 28] = struct.pack("<I", size)
    return bytes(data)


def bomb(path: Path, sizes: dict[str, int]) -> Path:
    """An archive whose members declare ``sizes`` bytes of uint8 (headers and zip entries
    agree) while holding only a few bytes: nothing must be read or allocated."""
    members = {f"{k}.npy": npy_header((2,)) + bytes(2) for k in NPZ_KEYS}
    headers = {key: npy_header((size,)) for key, size in sizes.items()}
    for key, header in headers.items():
        members[f"{key}.npy"] = header + bytes(1000)
    zip_with_member(path, members)
    data = path.read_bytes()
    for key, size in sizes.items():
        data = patch_declared_size(data, f"{key}.npy".encode(), len(headers[key]) + size)
    path.write_bytes(data)
    return path


def refused_with_little_memory(path: Path) -> str:
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as excinfo:
            read_npz(path, NPZ_KEYS)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * 2**20
    return str(excinfo.value)


def test_a_zip_bomb_is_refused_before_decompressing(tmp_path):
    path = bomb(tmp_path / "d.npz", {"x_train": 3 * 2**30})
    assert refused_with_little_memory(path) == (
        f"{path}: array 'x_train' declares shape ({3 * 2**30},) of uint8, larger than the "
        f"{2**31} bytes allowed; refusing to read it"
    )


def test_arrays_together_are_capped(tmp_path):
    path = bomb(tmp_path / "d.npz", {"x_train": 2**30 + 2**29, "x_test": 2**30})
    assert refused_with_little_memory(path) == (
        f"{path}: the arrays declare more than {2**31} bytes together (up to 'x_test': "
        f"{2**30 + 2**29 + 2 + 2**30} bytes); refusing to read them"
    )


def test_an_empty_array_with_an_absurd_dimension(tmp_path):
    members = {f"{k}.npy": npy_header((2,)) + bytes(2) for k in NPZ_KEYS}
    members["y_train.npy"] = npy_header((0, 2**62))
    path = zip_with_member(tmp_path / "d.npz", members)
    assert refused_with_little_memory(path) == (
        f"{path}: array 'y_train' declares shape (0, {2**62}) of uint8, larger than the "
        f"{2**31} bytes allowed; refusing to read it"
    )


def test_a_real_compressed_bomb_is_capped(tmp_path):
    # 64 MB of zeros in a 64 KB archive, against a 16 MB cap: refused, nothing inflated.
    path = tmp_path / "d.npz"
    arrays = toy_arrays()
    arrays["x_train"] = np.zeros((64 * 2**20 // 192, HEIGHT, WIDTH), np.uint8)
    np.savez_compressed(path, **arrays)
    assert path.stat().st_size < 2**20
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="larger than the 16777216 bytes allowed"):
            read_npz(path, NPZ_KEYS, max_bytes=16 * 2**20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * 2**20


def test_truncated_member_data(tmp_path):
    # The zip entry says the member is complete, but its compressed stream ends early.
    path = write(tmp_path / "d.npz", compressed=True)
    data = path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("x_train.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    cut = data[: start + info.compress_size // 2] + data[start + info.compress_size :]
    path.write_bytes(cut)
    with pytest.raises(DataError, match="damaged .npz file|truncated"):
        read_npz(path, NPZ_KEYS)


# --- load_dataset: any image size, K classes -----------------------------------------------


def test_any_image_size_and_class_count(tmp_path, monkeypatch):
    path = write(tmp_path / "toy.npz")
    monkeypatch.chdir(tmp_path)
    data = load_dataset("toy.npz")
    assert data.name == "toy" and data.source == str(path)
    assert data.x_train.shape == (60, HEIGHT, WIDTH) and data.image_shape == (HEIGHT, WIDTH)
    assert data.num_classes == CLASSES and data.class_names == ("0", "1", "2")
    assert data.y_train.dtype == np.intp
    assert data.describe()["image_shape"] == [HEIGHT, WIDTH]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"y_train": np.zeros(60, np.int64), "y_test": np.zeros(30, np.int64)},
            "y_train: every label is 0: a classification needs at least 2 classes (labels 0..K-1)",
        ),
        (
            {"y_train": np.r_[np.arange(59) % 3, 10**9]},
            "y_train: the largest label is 1e+09, so the labels would name 1e+09 classes but "
            "there are only 90 samples: labels must be 0..K-1, numbered from 0",
        ),
        (
            {"y_train": np.r_[np.arange(59) % 3, -1]},
            "y_train: label -1 at index 59 is negative: labels must be 0..K-1",
        ),
        (
            {"y_train": np.r_[np.arange(59) % 3, 0.5]},
            "y_train: labels must be integers, found NaN or fractional values",
        ),
        (
            {"y_test": np.r_[np.arange(29) % 3, -2]},
            "y_test: label -2 at index 29 is negative: labels must be 0..K-1",
        ),
        (
            {"y_train": np.array(["a"] * 60)},
            "array 'y_train' has dtype <U1: expected numbers",
        ),
        (
            {"x_test": np.zeros((30, HEIGHT + 1, WIDTH), np.uint8)},
            "training images are (12, 16) but test images are (13, 16)",
        ),
        (
            {"x_train": np.zeros((60, 0, WIDTH), np.uint8)},
            "x_train: expected images of shape (n, height, width) with numeric pixels and no "
            "empty dimension",
        ),
    ],
)
def test_bad_labels_and_shapes(tmp_path, overrides, message):
    path = write(tmp_path / "bad.npz", **overrides)
    with pytest.raises(DataError) as excinfo:
        load_dataset(path)
    assert message in str(excinfo.value)
    assert str(excinfo.value).startswith(str(path))


def test_classes_without_training_samples_still_count(tmp_path):
    # Labels 3..5 of 0..5 (a subset of a bigger dataset): K = 6, the outputs for 0..2 unused.
    y_train = 3 + np.arange(60) % 3
    path = write(tmp_path / "subset.npz", y_train=y_train, y_test=3 + np.arange(30) % 3)
    data = load_dataset(path)
    assert data.num_classes == 6 and data.class_names == ("0", "1", "2", "3", "4", "5")
    assert np.array_equal(data.y_train, y_train)


def test_the_test_split_can_name_a_class_the_training_split_lacks(tmp_path):
    path = write(tmp_path / "d.npz", y_test=np.r_[np.arange(29) % 3, 3])
    data = load_dataset(path)
    assert data.num_classes == 4


def test_negative_label_among_training_labels(tmp_path):
    # The class count comes from the labels, so a negative label is named as such.
    path = write(tmp_path / "bad.npz", y_train=np.r_[np.arange(59) % 3, -1])
    with pytest.raises(DataError, match=r"bad\.npz: y_train: label -1 at index 59"):
        load_dataset(path)


def test_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="Unknown dataset 'mnits'. Did you mean 'mnist'"):
        load_dataset("mnits")
    with pytest.raises(FileNotFoundError, match="nope.npz: no such file"):
        load_dataset(tmp_path / "nope.npz")


def test_the_cli_no_longer_holds_dataset_loading():
    import multilayer.cli.common as common

    assert not hasattr(common, "load_dataset") and not hasattr(common, "Dataset")


# --- the command line, end to end, on 12x16 images with 3 classes ---------------------------


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    write(root / "toy.npz")
    old = os.getcwd()
    os.chdir(root)  # a relative --dataset, as a user types it
    try:
        code = main(
            [
                "train", "--dataset", "toy.npz", "--hidden", "16", "--epochs", "3",
                "--batch-size", "10", "--seed", "0", "--quiet", "--output", str(root / "run"),
            ]
        )  # fmt: skip
    finally:
        os.chdir(old)
    assert code == 0
    return root


def test_train_writes_a_complete_run(toy_run):
    run = toy_run / "run"
    config = json.loads((run / "config.json").read_text())
    assert config["dataset"]["image_shape"] == [HEIGHT, WIDTH]
    assert config["dataset"]["classes"] == ["0", "1", "2"]
    assert config["dataset"]["source"] == str(toy_run / "toy.npz")
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(metrics["confusion_matrix"]) == CLASSES
    assert (run / "report" / "index.html").is_file()
    assert (run / "report" / "first_layer_weights.png").is_file()


def test_evaluate_a_run_uses_its_own_dataset(toy_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # elsewhere: the run records an absolute path
    code, out, err = run(capsys, "evaluate", toy_run / "run", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["dataset"] == "toy" and result["test_samples"] == 30
    assert len(result["confusion_matrix"]) == CLASSES
    metrics = json.loads((toy_run / "run" / "metrics.json").read_text())
    assert result["test_accuracy"] == metrics["test_accuracy"]


def test_evaluate_a_run_on_another_dataset_says_why_not(toy_run, capsys):
    code, _, err = run(capsys, "evaluate", toy_run / "run", "--dataset", "mnist")
    assert code == 1
    assert err.strip() == "error: the model has 3 outputs but mnist has 10 classes"


def test_report_of_a_run(toy_run, capsys):
    page = toy_run / "run" / "report" / "index.html"
    page.unlink()
    code, out, err = run(capsys, "report", toy_run / "run")
    assert code == 0, err
    html = page.read_text()
    assert "each drawn as a 12x16 image" in html
    assert "Most confident mistakes" in html


def test_predict_resizes_to_the_models_image_size(toy_run, tmp_path, capsys):
    pytest.importorskip("PIL")
    from PIL import Image

    arrays = toy_arrays(n_train=3, n_test=3, seed=1)
    paths = []
    for i, image in enumerate(arrays["x_test"]):
        exact = tmp_path / f"{i}.npy"
        np.save(exact, image)
        bigger = tmp_path / f"{i}.png"  # twice the size: resized to 12x16
        Image.fromarray(image).resize((2 * WIDTH, 2 * HEIGHT), Image.NEAREST).save(bigger)
        paths += [exact, bigger]
    code, out, err = run(capsys, "predict", toy_run / "run", *paths, "--json")
    assert code == 0, err
    results = json.loads(out)
    assert [r["image"] for r in results] == [str(p) for p in paths]
    predicted = [r["top"][0]["class"] for r in results]
    assert predicted == [0, 0, 1, 1, 2, 2]
