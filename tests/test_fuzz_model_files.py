"""Structured fuzz targets for model files and checkpoints (issue 8, "make CI catch this
class"): every header field and the saved sample order replaced by arbitrary values, with
the checksum recomputed so the checks behind it are reached. Loading, rebuilding and
resuming may only succeed or raise the documented errors (ModelFileError; TrainingError
when a valid checkpoint belongs to another run), and memory stays bounded (tracemalloc).

The byte-level mutation fuzz of the same readers is in test_fuzz.py."""

from __future__ import annotations

import contextlib
import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy as st_numpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from multilayer.engine.layers import Dense, Dropout, Input
from multilayer.errors import ModelFileError, TrainingError
from multilayer.models.checkpoint import (
    _STATE_KEYS,
    CheckpointConfig,
    _digest,
    model_from_checkpoint,
    read_checkpoint,
)
from multilayer.models.saving import load_model, read_file
from multilayer.models.sequential import Sequential

PEAK_LIMIT = 8 * 2**20  # bytes Python may allocate while refusing or loading one fuzzed file
FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
X = np.random.default_rng(0).normal(size=(10, 5)).astype("float32")
Y = np.arange(10) % 3

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.sampled_from([0, 1, 2, 3, 9, 10, 2**31, 2**40, 2**63, -1])
    | st.floats()
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=16,
)


def _model() -> Sequential:
    model = Sequential(
        [Input(shape=(5,)), Dense(4, activation="relu"), Dropout(0.1), Dense(3, "softmax")],
        seed=0,
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> dict[str, bytes]:
    directory = tmp_path_factory.mktemp("fuzz-structured")
    model = _model()
    model.fit(
        X,
        Y,
        batch_size=4,
        verbose=0,
        checkpoint=CheckpointConfig(directory / "run", every=1, unit="step", keep=5),
    )
    model.save(directory / "model.safetensors")
    return {
        "model": (directory / "model.safetensors").read_bytes(),
        "mid-epoch checkpoint": (
            directory / "run" / "checkpoint-000000001.safetensors"
        ).read_bytes(),
    }


def _bounded(call, allowed=(ModelFileError,)) -> None:
    """Run ``call``: it may succeed or raise ``allowed``; Python allocations stay bounded."""
    tracemalloc.start()
    try:
        with contextlib.suppress(*allowed):
            call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < PEAK_LIMIT, f"peak {peak >> 20} MiB"


def _write(path: Path, tensors: dict, metadata: dict, rehash: bool = False) -> Path:
    if rehash:
        metadata = {**metadata, "sha256": _digest(tensors)}
    path.write_bytes(st_numpy.save(tensors, metadata=metadata))
    return path


def _resume(path: Path) -> None:
    """Read, rebuild and resume training from a (fuzzed) checkpoint."""
    checkpoint = read_checkpoint(path)
    model_from_checkpoint(checkpoint)
    _model().fit(
        X,
        Y,
        batch_size=4,
        epochs=2,
        verbose=0,
        checkpoint=CheckpointConfig(path.parent, every=None, resume=True),
    )


# -- checkpoints -------------------------------------------------------------------------------------
@FUZZ
@given(key=st.sampled_from(sorted(_STATE_KEYS)), value=JSON)
def test_checkpoint_state_fields(originals, tmp_path, key, value):
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    original = tmp_path / "o.safetensors"
    original.write_bytes(originals["mid-epoch checkpoint"])
    metadata, tensors = read_file(original)
    state = json.loads(metadata["state"])
    state[key] = value
    for old in run.iterdir():
        old.unlink()
    path = _write(
        run / "checkpoint-000000001.safetensors",
        tensors,
        {**metadata, "state": json.dumps(state)},
        rehash=True,
    )
    _bounded(lambda: _resume(path), (ModelFileError, TrainingError))


@FUZZ
@given(
    entry=st.sampled_from(["model", "compile", "run", "run_id", "format_version"]),
    value=JSON,
)
def test_checkpoint_header_entries(originals, tmp_path, entry, value):
    original = tmp_path / "o.safetensors"
    original.write_bytes(originals["mid-epoch checkpoint"])
    metadata, tensors = read_file(original)
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    for old in run.iterdir():
        old.unlink()
    text = value if isinstance(value, str) and entry == "run_id" else json.dumps(value)
    path = _write(
        run / "checkpoint-000000001.safetensors", tensors, {**metadata, entry: text}, rehash=True
    )
    _bounded(lambda: _resume(path), (ModelFileError, TrainingError))


@FUZZ
@given(
    order=st.lists(st.integers(-(2**63), 2**63 - 1), min_size=0, max_size=14)
    | st.lists(st.sampled_from(list(range(10))), min_size=10, max_size=10),
    dtype=st.sampled_from(["int64", "int32", "uint8", "float32"]),
)
def test_checkpoint_sample_order(originals, tmp_path, order, dtype):
    original = tmp_path / "o.safetensors"
    original.write_bytes(originals["mid-epoch checkpoint"])
    metadata, tensors = read_file(original)
    tensors["fit.order"] = np.array(order, dtype=np.int64).astype(dtype)
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    for old in run.iterdir():
        old.unlink()
    path = _write(run / "checkpoint-000000001.safetensors", tensors, metadata, rehash=True)
    _bounded(lambda: _resume(path), (ModelFileError, TrainingError))


# -- model files ---------------------------------------------------------------------------------------
SIZES = st.integers(-3, 2**64) | st.sampled_from([0, 1, 4, 5, 300_000, 2**31, 2**40, 2**62])


@FUZZ
@given(units=SIZES, shape=st.lists(SIZES, min_size=0, max_size=3), layer=st.integers(0, 3))
def test_model_declared_sizes(originals, tmp_path, units, shape, layer):
    original = tmp_path / "o.safetensors"
    original.write_bytes(originals["model"])
    metadata, tensors = read_file(original)
    config = json.loads(metadata["model"])
    config["layers"][0]["config"]["shape"] = shape
    if config["layers"][layer]["class_name"] == "Dense":
        config["layers"][layer]["config"]["units"] = units
    path = _write(
        tmp_path / "fuzzed.safetensors", tensors, {**metadata, "model": json.dumps(config)}
    )
    _bounded(lambda: load_model(path))


@FUZZ
@given(name=st.sampled_from(["layers.1.kernel", "layers.3.bias", "optimizer.m", "extra"]),
       shape=st.lists(st.integers(0, 6), max_size=3),
       dtype=st.sampled_from(["float32", "float64", "int32", "float16"]))  # fmt: skip
def test_model_tensor_shapes(originals, tmp_path, name, shape, dtype):
    original = tmp_path / "o.safetensors"
    original.write_bytes(originals["model"])
    metadata, tensors = read_file(original)
    tensors[name] = np.zeros(shape, dtype=dtype)
    path = _write(tmp_path / "fuzzed.safetensors", tensors, metadata)
    _bounded(lambda: load_model(path))


@FUZZ
@given(value=JSON)
def test_checkpoint_segment_times(originals, tmp_path, value):
    """The optional ``segments`` state field (training time per segment of a run)."""
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    original = tmp_path / "o.safetensors"
    original.write_bytes(originals["mid-epoch checkpoint"])
    metadata, tensors = read_file(original)
    state = {**json.loads(metadata["state"]), "segments": value}
    for old in run.iterdir():
        old.unlink()
    path = _write(
        run / "checkpoint-000000001.safetensors",
        tensors,
        {**metadata, "state": json.dumps(state)},
        rehash=True,
    )
    _bounded(lambda: _resume(path), (ModelFileError, TrainingError))


@FUZZ
@given(
    value=JSON
    | st.fixed_dictionaries({"pixel_max": JSON, "mean": JSON, "std": JSON})
    | st.just({"pixel_max": 255, "mean": 0.5, "std": 0.25})
)
def test_model_input_scale_entry(originals, tmp_path, value):
    """The model header's ``input`` entry (the pixel values the model takes)."""
    original = tmp_path / "o.safetensors"
    original.write_bytes(originals["model"])
    metadata, tensors = read_file(original)
    path = _write(
        tmp_path / "fuzzed.safetensors", tensors, {**metadata, "input": json.dumps(value)}
    )
    _bounded(lambda: load_model(path))
