"""Hostile files: loading never runs code and refuses anything malformed with the library's
own errors (ModelFileError, DataError, ImageError), before allocating what a header claims."""

from __future__ import annotations

import json
import os
import pickle
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy as st_numpy

from multilayer.data.idx import read_idx
from multilayer.data.images import load_image
from multilayer.engine.layers import Dense, Input
from multilayer.errors import DataError, ImageError, ModelFileError
from multilayer.models.checkpoint import CheckpointConfig, latest_checkpoint, read_checkpoint
from multilayer.models.saving import load_model, read_file
from multilayer.models.sequential import Sequential


class _Payload:
    """Unpickling this creates a directory: proof that code from the file ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (str(self.marker),))


@pytest.fixture
def saved(tmp_path) -> Path:
    model = Sequential(
        [Input(shape=(4,)), Dense(3, activation="relu"), Dense(2, activation="softmax")], seed=0
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(np.ones((8, 4)), np.eye(2)[[0, 1] * 4], verbose=0)
    path = tmp_path / "model.safetensors"
    model.save(path)
    return path


def _rewrite(path: Path, tensors=None, metadata=None) -> Path:
    """Rewrite a saved model with some tensors or header entries replaced."""
    old_metadata, old_tensors = read_file(path)
    out = path.with_name("tampered.safetensors")
    out.write_bytes(st_numpy.save(tensors or old_tensors, metadata=metadata or old_metadata))
    return out


def _raw_safetensors(header: dict | bytes, data: bytes = b"", length: int | None = None) -> bytes:
    body = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(body) if length is None else length) + body + data


# -- pickles never run ----------------------------------------------------------------------
@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_pickle_renamed_safetensors_is_refused_and_never_executed(tmp_path, protocol):
    control = tmp_path / "control-marker"
    pickle.loads(pickle.dumps(_Payload(control), protocol=protocol))  # noqa: S301 - the control
    assert control.is_dir(), "the payload must work, or this test proves nothing"

    marker = tmp_path / "marker"
    path = tmp_path / "model.safetensors"
    path.write_bytes(pickle.dumps(_Payload(marker), protocol=protocol))
    with pytest.raises(ModelFileError, match="not a valid .safetensors"):
        load_model(path)
    with pytest.raises(ModelFileError):
        read_checkpoint(path)
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint-000000001.safetensors").write_bytes(path.read_bytes())
    assert latest_checkpoint(run) is None
    assert not marker.exists()


# -- malformed safetensors headers ------------------------------------------------------------
TENSOR = {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
MALFORMED = {
    "header length 2**60": _raw_safetensors(TENSOR, b"\0" * 8, length=2**60),
    "header length past the end": _raw_safetensors(TENSOR, b"\0" * 8, length=10_000),
    "header not JSON": _raw_safetensors(b"{not json" + b" " * 20),
    "header a JSON list": _raw_safetensors(b"[1, 2, 3]"),
    "unknown dtype": _raw_safetensors({"w": {"dtype": "X99", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8),
    "offsets past the data": _raw_safetensors({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 800]}}, b"\0" * 8),
    "shape disagrees with offsets": _raw_safetensors({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8),
    "absurd shape": _raw_safetensors({"w": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 8]}}, b"\0" * 8),
    "negative offsets": _raw_safetensors({"w": {"dtype": "F32", "shape": [2], "data_offsets": [-8, 0]}}, b"\0" * 8),
    "empty file": b"",
    "seven bytes": b"\x07\0\0\0\0\0\0",
}  # fmt: skip


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_safetensors_headers_are_refused_cheaply(tmp_path, data):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError):
            load_model(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20  # the claimed sizes were never allocated


def test_valid_safetensors_that_is_not_a_model(tmp_path):
    path = tmp_path / "other.safetensors"
    path.write_bytes(st_numpy.save({"w": np.zeros(2, dtype=np.float32)}))
    with pytest.raises(ModelFileError, match="not a multilayer model"):
        load_model(path)


# -- tensors that disagree with the architecture ----------------------------------------------
@pytest.mark.parametrize(
    ("change", "match"),
    [
        (
            lambda t: t.update({"layers.1.kernel": np.zeros((4, 5), np.float32)}),
            r"shape \(4, 5\).*needs shape \(4, 3\)",
        ),
        (
            lambda t: t.update({"layers.1.kernel": np.zeros((4, 3), np.float64)}),
            "dtype float64.*dtype float32",
        ),
        (lambda t: t.update({"layers.1.bias": np.full(3, np.nan, np.float32)}), "NaN or infinite"),
        (lambda t: t.pop("layers.2.kernel"), r"missing \['layers.2.kernel'\]"),
        (
            lambda t: t.update({"layers.7.kernel": np.zeros(1, np.float32)}),
            r"unexpected \['layers.7.kernel'\]",
        ),
        (lambda t: t.update({"optimizer.m": np.zeros(3, np.float32)}), "optimizer state 'm'"),
    ],
)
def test_tensors_that_disagree_with_the_architecture(saved, change, match):
    _, tensors = read_file(saved)
    change(tensors)
    with pytest.raises(ModelFileError, match=match):
        load_model(_rewrite(saved, tensors=tensors))


def _with_config(saved, edit) -> Path:
    metadata, _ = read_file(saved)
    config = json.loads(metadata["model"])
    edit(config)
    return _rewrite(saved, metadata={**metadata, "model": json.dumps(config)})


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda c: c["layers"][1].update(class_name="Lambda"), "Unknown layer type 'Lambda'"),
        (lambda c: c["layers"][1].update(class_name="Dence"), "Did you mean 'Dense'"),
        (
            lambda c: c["layers"][1]["config"].update(function="os.system('touch x')"),
            "unexpected keyword argument 'function'",
        ),
        (
            lambda c: c.update(code="print(1)"),
            r"unexpected keys in the model configuration: \['code'\]",
        ),
        (lambda c: c["layers"][1].update(module="keras.layers"), "a layer config must be"),
        (lambda c: c["layers"][1]["config"].update(activation="eval"), "Unknown activation 'eval'"),
        (lambda c: c["layers"][1]["config"].update(units=-3), "units"),
        (lambda c: c.update(layers="Dense"), "invalid model configuration"),
    ],
)
def test_bad_model_configurations_are_refused(saved, edit, match):
    with pytest.raises(ModelFileError, match=match):
        load_model(_with_config(saved, edit))


@pytest.mark.parametrize(
    ("entries", "match"),
    [
        ({"format": "keras"}, "not a multilayer model"),
        ({"format_version": "99"}, "unsupported model format version '99'"),
        ({"extra": "1"}, r"unexpected header entries \['extra'\]"),
        ({"model": "{not json"}, "'model' is missing or not valid JSON"),
        ({"model": "[]"}, "must be a JSON object"),
        ({"compile": json.dumps({"optimizer": "adam"})}, "invalid compile configuration"),
        ({"optimizer_iterations": "-4"}, "negative"),
    ],
)
def test_bad_header_entries_are_refused(saved, entries, match):
    metadata, _ = read_file(saved)
    with pytest.raises(ModelFileError, match=match):
        load_model(_rewrite(saved, metadata={**metadata, **entries}))


# -- hostile checkpoints --------------------------------------------------------------------------
@pytest.fixture
def checkpoint(tmp_path) -> Path:
    model = Sequential([Input(shape=(4,)), Dense(2, activation="softmax")], seed=0)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(
        np.ones((8, 4)),
        np.eye(2)[[0, 1] * 4],
        verbose=0,
        checkpoint=CheckpointConfig(tmp_path / "run"),
    )
    return next((tmp_path / "run").iterdir())


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda s: s.update(epoch=-1), "malformed"),
        (lambda s: s.update(step="3"), "malformed"),
        (lambda s: s.pop("rng"), "malformed"),
        (lambda s: s.update(step=2), "sample order is missing"),
        (lambda s: s.update(payload="x"), "malformed"),
    ],
)
def test_tampered_checkpoint_state_is_refused(checkpoint, edit, match):
    metadata, tensors = read_file(checkpoint)
    state = json.loads(metadata["state"])
    edit(state)
    checkpoint.write_bytes(
        st_numpy.save(tensors, metadata={**metadata, "state": json.dumps(state)})
    )
    with pytest.raises(ModelFileError, match=match):
        read_checkpoint(checkpoint)


def test_checkpoint_with_a_garbage_generator_state_is_refused(checkpoint):
    metadata, tensors = read_file(checkpoint)
    state = json.loads(metadata["state"])
    state["rng"] = {"bit_generator": "MT19937", "state": {"key": [1], "pos": 0}}
    checkpoint.write_bytes(
        st_numpy.save(tensors, metadata={**metadata, "state": json.dumps(state)})
    )
    model = Sequential([Input(shape=(4,)), Dense(2, activation="softmax")], seed=0)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    with pytest.raises(ModelFileError, match="random-generator state"):
        model.fit(
            np.ones((8, 4)),
            np.eye(2)[[0, 1] * 4],
            verbose=0,
            checkpoint=CheckpointConfig(checkpoint.parent, resume=True),
        )


# -- IDX files ------------------------------------------------------------------------------------
def _idx(code: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload


IDX_CASES = {
    "wrong magic": (b"\x01\x02\x08\x01" + struct.pack(">I", 2) + b"ab", "not an IDX file"),
    "pickle": (pickle.dumps([1, 2, 3]), "not an IDX file|unknown IDX"),
    "unknown type code": (_idx(0x07, (2,), b"ab"), "unknown IDX data type code 0x07"),
    "zero dimensions": (bytes([0, 0, 8, 0]), "invalid number of IDX dimensions 0"),
    "nine dimensions": (bytes([0, 0, 8, 9]) + b"\0" * 36, "invalid number of IDX dimensions 9"),
    "payload shorter than dims": (_idx(0x08, (10, 10), b"\0" * 99), "truncated IDX payload"),
    "payload longer than dims": (_idx(0x08, (10, 10), b"\0" * 101), "trailing data"),
    "absurd dims": (_idx(0x0E, (2**32 - 1,) * 4, b"\0" * 16), "expected at most"),
    "truncated header": (bytes([0, 0, 8, 3]) + b"\0\0\0\1", "truncated IDX header"),
}


@pytest.mark.parametrize(("data", "match"), IDX_CASES.values(), ids=IDX_CASES.keys())
def test_idx_reader_refuses_malformed_files_without_allocating(tmp_path, data, match):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=match):
            read_idx(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20


# -- images -----------------------------------------------------------------------------------------
def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with a tiny (invalid) pixel stream."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


IMAGE_CASES = {
    "pickle renamed png": (pickle.dumps({"a": 1}), "not a|cannot|unsupported|recogni"),
    "text": (b"hello, I am not an image", "not a|cannot|unsupported|recogni"),
    "gigantic declared size": (_png_header_only(100_000, 100_000), "too large"),
    "wide declared size": (_png_header_only(2**31 - 1, 1), "too large"),
    "png signature only": (b"\x89PNG\r\n\x1a\n", "upload.png"),
    "truncated png": (_png_header_only(28, 28)[:40], "upload.png"),
}


@pytest.mark.parametrize(("data", "match"), IMAGE_CASES.values(), ids=IMAGE_CASES.keys())
def test_image_loader_refuses_undecodable_and_gigantic_images(data, match):
    tracemalloc.start()
    try:
        with pytest.raises(ImageError, match=match):
            load_image(data, name="upload.png")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 * 2**20


def test_image_loader_refuses_oversized_input_before_reading_it(tmp_path):
    path = tmp_path / "huge.png"
    with open(path, "wb") as handle:
        handle.truncate(50_000_000)  # sparse: 50 MB on paper, nothing on disk
    with pytest.raises(ImageError, match="too large"):
        load_image(path)
