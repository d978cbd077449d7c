"""Property-based tests (Hypothesis) and a bounded mutation fuzz run over the readers of
untrusted input: the IDX reader, the .npz dataset reader, the model/checkpoint loader and
the image loader.

The property everywhere: whatever the bytes, a reader returns a result or raises its own
documented exception (DataError, ModelFileError, ImageError), never anything else, and
memory stays bounded (the process's resident set is measured around the fuzz runs, and for
the data readers the peak of Python and NumPy allocations of every single case).
Run with ``-s`` to see how many cases ran per target.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import struct
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from multilayer.data.idx import read_idx, write_idx
from multilayer.data.images import load_image
from multilayer.datasets import NPZ_KEYS, load_dataset, read_npz
from multilayer.engine.layers import Dense, Dropout, Input
from multilayer.errors import DataError, ImageError, ModelFileError
from multilayer.models.checkpoint import CheckpointConfig, read_checkpoint
from multilayer.models.saving import load_model
from multilayer.models.sequential import Sequential

FUZZ_CASES = 400  # per target, for the mutation fuzz runs
RSS_LIMIT = 200 * 2**20  # growth of the resident set allowed over a whole fuzz run
PROPERTY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _rss() -> int:
    """Current resident set size in bytes (Linux), or 0 where /proc is unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _mutate(rng: random.Random, data: bytes) -> bytes:
    """One random corruption: flipped bytes, a truncation, an insertion, or a splice."""
    data = bytearray(data)
    kind = rng.randrange(4)
    if kind == 0:
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 1:
        del data[rng.randrange(len(data)) :]
    elif kind == 2:
        at = rng.randrange(len(data))
        data[at:at] = rng.randbytes(rng.randint(1, 64))
    else:  # a little-endian integer somewhere replaced by an extreme value (header lengths)
        at = rng.randrange(max(len(data) - 8, 1))
        data[at : at + 8] = struct.pack(
            "<Q", rng.choice([0, 1, 2**31, 2**63 - 1, 2**64 - 1, len(data) * 2])
        )
    return bytes(data)


def _fuzz(
    name: str,
    seed_inputs: list[bytes],
    call,
    allowed: tuple[type[BaseException], ...],
    peak_limit: int | None = None,
) -> None:
    """``FUZZ_CASES`` mutations of the seeds through ``call``: only ``allowed`` errors, RSS
    growth below ``RSS_LIMIT``, and (if given) each case's allocation peak (tracemalloc:
    Python objects and NumPy arrays) below ``peak_limit``."""
    rng = random.Random(f"fuzz-{name}")
    baseline = _rss()
    outcomes = {"accepted": 0, "refused": 0}
    worst = 0
    for case in range(FUZZ_CASES):
        data = _mutate(rng, rng.choice(seed_inputs))
        if peak_limit is not None:
            tracemalloc.start()
        try:
            call(data)
            outcomes["accepted"] += 1
        except allowed:
            outcomes["refused"] += 1
        except Exception as error:  # pragma: no cover - this is the failure being hunted
            pytest.fail(f"{name} case {case}: {type(error).__name__} escaped: {error}")
        finally:
            if peak_limit is not None:
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                worst = max(worst, peak)
                assert peak < peak_limit, f"{name} case {case}: allocated {peak >> 20} MiB"
        if case % 50 == 0:
            assert _rss() - baseline < RSS_LIMIT, (
                f"{name}: memory grew by {(_rss() - baseline) >> 20} MiB"
            )
    grown = (_rss() - baseline) >> 20
    assert _rss() - baseline < RSS_LIMIT
    print(
        f"\nfuzz {name}: {FUZZ_CASES} cases, {outcomes}, RSS growth {grown} MiB, "
        f"peak per case {worst >> 10} KiB"
    )


# -- IDX ------------------------------------------------------------------------------------------
def _idx_bytes(array: np.ndarray, compress: bool = False) -> bytes:
    buffer = io.BytesIO()
    write_idx(buffer, array, compress=compress)
    return buffer.getvalue()


@PROPERTY
@given(st.binary(max_size=300))
def test_idx_arbitrary_bytes(data):
    with contextlib.suppress(DataError):
        read_idx(io.BytesIO(data))


@PROPERTY
@given(
    code=st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0xFF]),
    dims=st.lists(st.integers(0, 2**32 - 1), min_size=0, max_size=5),
    payload=st.binary(max_size=200),
)
def test_idx_structured_headers(code, dims, payload):
    data = bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload
    try:
        array = read_idx(io.BytesIO(data))
    except DataError:
        return
    assert array.shape == tuple(dims)  # accepted only when the header and payload agree


def test_idx_mutation_fuzz():
    seeds = [
        _idx_bytes(np.arange(60, dtype=np.uint8).reshape(3, 4, 5)),
        _idx_bytes(np.linspace(0, 1, 12).reshape(3, 4)),
        _idx_bytes(np.arange(100, dtype=np.int32), compress=True),
    ]
    _fuzz("idx", seeds, lambda data: read_idx(io.BytesIO(data)), (DataError,), 8 * 2**20)


# -- .npz datasets --------------------------------------------------------------------------------
def _npz_bytes(compressed: bool, **arrays) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def npz_files() -> list[bytes]:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(6, 5, 4), dtype=np.uint8)
    y = np.arange(6) % 3
    return [
        _npz_bytes(False, x_train=x, y_train=y, x_test=x[:3], y_test=y[:3]),
        _npz_bytes(True, x_train=x, y_train=y, x_test=x[:3], y_test=y[:3]),
        _npz_bytes(
            True,
            x_train=np.asfortranarray(x.astype(">f4")),
            y_train=y.astype(np.float64),
            x_test=x[:2].astype(np.int16),
            y_test=y[:2].astype(np.uint8),
        ),
    ]


def _load_npz_bytes(directory: Path, data: bytes):
    path = directory / "fuzzed.npz"
    path.write_bytes(data)
    return load_dataset(path)


def test_npz_dataset_mutation_fuzz(npz_files, tmp_path):
    # load_dataset reads with read_npz and checks the arrays: DataError only, and every case
    # allocates little (the seeds are a few hundred bytes of arrays; a header may claim GBs).
    _fuzz(
        "npz dataset",
        npz_files,
        lambda data: _load_npz_bytes(tmp_path, data),
        (DataError,),
        peak_limit=8 * 2**20,
    )


@PROPERTY
@given(data=st.binary(max_size=400), zip_magic=st.booleans())
def test_npz_arbitrary_bytes(tmp_path, data, zip_magic):
    path = tmp_path / "arbitrary.npz"
    path.write_bytes((b"PK\x03\x04" if zip_magic else b"") + data)
    with contextlib.suppress(DataError):
        read_npz(path, NPZ_KEYS)


@PROPERTY
@given(
    descr=st.sampled_from(["|u1", "<i8", ">f4", "<f8", "|b1", "|O", "<U3", "<c8", "V8", "<M8[s]"]),
    shape=st.lists(st.integers(0, 2**40), min_size=0, max_size=4),
    fortran=st.booleans(),
    payload=st.binary(max_size=64),
)
def test_npz_structured_npy_headers(tmp_path, descr, shape, fortran, payload):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": descr, "fortran_order": fortran, "shape": tuple(shape)}
    )
    member = header.getvalue() + payload
    path = tmp_path / "structured.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for key in NPZ_KEYS:
            archive.writestr(f"{key}.npy", member)
    tracemalloc.start()
    try:
        arrays = read_npz(path, NPZ_KEYS)
    except DataError:
        return
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 2**20
    # Accepted only when the header, the dtype and the payload agree.
    for array in arrays.values():
        assert array.shape == tuple(shape) and array.dtype == np.dtype(descr)
        assert array.nbytes == len(payload) and array.dtype.kind in "biuf"


# -- model files and checkpoints ------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> list[bytes]:
    directory = tmp_path_factory.mktemp("fuzz-models")
    model = Sequential(
        [
            Input(shape=(5,)),
            Dense(4, activation="relu"),
            Dropout(0.1),
            Dense(3, activation="softmax"),
        ],
        seed=0,
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(
        np.ones((9, 5)),
        np.array([0, 1, 2] * 3),
        batch_size=4,
        verbose=0,
        checkpoint=CheckpointConfig(directory / "run", every=2, unit="step"),
    )
    model.save(directory / "model.safetensors")
    checkpoint = sorted((directory / "run").iterdir())[0]
    return [(directory / "model.safetensors").read_bytes(), checkpoint.read_bytes()]


def _load_bytes(directory: Path, data: bytes, reader=load_model):
    path = directory / "fuzzed.safetensors"
    path.write_bytes(data)
    return reader(path)


def test_model_loader_mutation_fuzz(model_files, tmp_path):
    _fuzz(
        "model loader", model_files[:1], lambda data: _load_bytes(tmp_path, data), (ModelFileError,)
    )


def test_checkpoint_reader_mutation_fuzz(model_files, tmp_path):
    _fuzz(
        "checkpoint reader",
        model_files[1:],
        lambda data: _load_bytes(tmp_path, data, read_checkpoint),
        (ModelFileError,),
    )


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@PROPERTY
@given(entry=st.sampled_from(["model", "compile", "training", "optimizer_iterations"]), value=JSON)
def test_model_loader_arbitrary_header_json(model_files, tmp_path, entry, value):
    import safetensors.numpy as st_numpy

    from multilayer.models.saving import read_file

    original = tmp_path / "original.safetensors"
    original.write_bytes(model_files[0])
    metadata, tensors = read_file(original)
    metadata[entry] = json.dumps(value)
    with contextlib.suppress(ModelFileError):
        _load_bytes(tmp_path, st_numpy.save(tensors, metadata=metadata))


@PROPERTY
@given(
    layer=st.dictionaries(st.sampled_from(["class_name", "config", "name", "x"]), JSON, max_size=3)
)
def test_model_loader_arbitrary_layer_configs(model_files, tmp_path, layer):
    import safetensors.numpy as st_numpy

    from multilayer.models.saving import read_file

    original = tmp_path / "original.safetensors"
    original.write_bytes(model_files[0])
    metadata, tensors = read_file(original)
    config = json.loads(metadata["model"])
    config["layers"][1] = layer
    metadata["model"] = json.dumps(config)
    with contextlib.suppress(ModelFileError):
        _load_bytes(tmp_path, st_numpy.save(tensors, metadata=metadata))


# -- images -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def image_files() -> list[bytes]:
    from PIL import Image

    digit = np.zeros((28, 28), dtype=np.uint8)
    digit[6:22, 12:16] = 255
    encoded = []
    for fmt in ("PNG", "JPEG", "GIF", "BMP", "WEBP", "PPM"):
        buffer = io.BytesIO()
        Image.fromarray(digit).save(buffer, format=fmt)
        encoded.append(buffer.getvalue())
    buffer = io.BytesIO()
    np.save(buffer, digit.astype(np.float32) / 255, allow_pickle=False)
    encoded.append(buffer.getvalue())
    return encoded


@PROPERTY
@given(st.binary(max_size=400))
def test_image_loader_arbitrary_bytes(data):
    with contextlib.suppress(ImageError):
        load_image(data)


def test_image_loader_mutation_fuzz(image_files):
    _fuzz("image loader", image_files, load_image, (ImageError,))
