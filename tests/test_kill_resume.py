"""Kill real training processes (SIGKILL, SIGINT) at chosen points, resume them, and check
that the final weights and history are bitwise identical to an uninterrupted run.

The run is tests/helpers/kill_resume_train.py: 4 epochs x 34 batches with dropout,
validation, Adam and a checkpoint every 10 steps (keep 2). Each scenario below is a list
of kill points; after the last one the run is resumed until it finishes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from multilayer.models.checkpoint import list_checkpoints, read_checkpoint

HELPER = Path(__file__).parent / "helpers" / "kill_resume_train.py"
#: Same thread count in every process: BLAS results are only reproducible for a fixed one.
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
TIMEOUT = 60


def _start(run_dir: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(HELPER), str(run_dir), str(out), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )


def _run_until(process: subprocess.Popen, trigger: str) -> None:
    """Read the helper's output until the line ``trigger`` appears (fail if it never does)."""
    for line in process.stdout:
        if line.strip() == trigger:
            return
    process.wait(TIMEOUT)
    pytest.fail(f"the run ended before printing {trigger!r}: {process.stderr.read()}")


def _kill(process: subprocess.Popen, sig: int = signal.SIGKILL) -> int:
    process.send_signal(sig)
    code = process.wait(TIMEOUT)
    process.stdout.close()
    process.stderr.close()
    return code


def _finish(run_dir: Path, out: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(HELPER), str(run_dir), str(out)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("DONE")


def _results(out: Path) -> tuple[np.ndarray, dict]:
    weights = np.load(f"{out}.weights.npy", allow_pickle=False)
    history = json.loads(Path(f"{out}.history.json").read_text())
    return weights, history


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[np.ndarray, dict]:
    """The uninterrupted run, without any checkpointing."""
    directory = tmp_path_factory.mktemp("reference")
    result = subprocess.run(
        [
            sys.executable,
            str(HELPER),
            str(directory / "run"),
            str(directory / "out"),
            "--no-checkpoint",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    return _results(directory / "out")


# Each scenario: the kill points, in order, of one run. ("step", N) kills with SIGKILL
# once N optimizer steps are reported (the process keeps going while the signal is sent,
# so the exact point varies a little from run to run); ("pause", "PHASE:K") kills during
# the K-th checkpoint write of that process, at PHASE.
SCENARIOS = {
    "before-first-checkpoint": [("step", 4)],
    "mid-epoch": [("step", 23)],
    "epoch-boundary": [("step", 34)],
    "twice-then-again": [("step", 47), ("step", 75), ("step", 121)],
    "during-write-partial-bytes": [("pause", "partial:3")],
    "during-write-before-fsync": [("pause", "fsync:5")],
    "during-write-before-rename": [("pause", "replace:2"), ("pause", "replace:4")],
    "after-last-checkpoint": [("step", 135)],
}


@pytest.mark.parametrize("points", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_sigkill_then_resume_is_bitwise_identical(tmp_path, reference, points):
    run_dir, out = tmp_path / "run", tmp_path / "out"
    for kind, where in points:
        if kind == "step":
            process = _start(run_dir, out)
            _run_until(process, f"step {where}")
        else:
            process = _start(run_dir, out, "--pause", where)
            _run_until(process, f"PAUSED {where.split(':')[0]}")
        assert _kill(process) == -signal.SIGKILL
        # Whatever the moment of the kill, every checkpoint file on disk is complete.
        for path in list_checkpoints(run_dir):
            read_checkpoint(path)
    _finish(run_dir, out)
    weights, history = _results(out)
    expected_weights, expected_history = reference
    assert weights.tobytes() == expected_weights.tobytes()
    assert history == expected_history
    assert not list(run_dir.glob(".*.tmp")), "a temporary file of a killed write was left behind"


def test_resume_falls_back_when_the_newest_checkpoint_is_damaged(tmp_path, reference):
    run_dir, out = tmp_path / "run", tmp_path / "out"
    process = _start(run_dir, out)
    _run_until(process, "step 65")
    _kill(process)
    newest, older = list_checkpoints(run_dir)[:2]
    data = bytearray(newest.read_bytes())
    data[-7] ^= 0xFF  # one flipped bit pattern in the tensor data: caught by the checksum
    newest.write_bytes(bytes(data))
    _finish(run_dir, out)
    weights, history = _results(out)
    assert weights.tobytes() == reference[0].tobytes()
    assert history == reference[1]
    assert newest.with_name(newest.name + ".damaged").exists()


def test_sigint_writes_a_checkpoint_and_says_how_to_resume(tmp_path, reference):
    run_dir, out = tmp_path / "run", tmp_path / "out"
    process = _start(run_dir, out)
    _run_until(process, "step 57")
    process.send_signal(signal.SIGINT)
    code = process.wait(TIMEOUT)
    stderr = process.stderr.read()
    process.stdout.close()
    process.stderr.close()
    assert code == 130, stderr
    assert "Resume with:" in stderr
    # The checkpoint named in the message is the state at the interruption (not an older one).
    written = Path(
        stderr.split("checkpoint written to ")[1].split(".safetensors")[0] + ".safetensors"
    )
    checkpoint = read_checkpoint(written)
    assert checkpoint.optimizer_iterations >= 57
    _finish(run_dir, out)
    weights, history = _results(out)
    assert weights.tobytes() == reference[0].tobytes()
    assert history == reference[1]


# -- the command line -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory) -> Path:
    """A small .npz dataset so each ``mlp train`` takes about a second."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2400, 28, 28), dtype=np.uint8)
    y = (x[:, :4, :].mean(axis=(1, 2)) // 26).astype(np.uint8) % 10
    path = tmp_path_factory.mktemp("cli-data") / "small.npz"
    np.savez(path, x_train=x[:2000], y_train=y[:2000], x_test=x[2000:], y_test=y[2000:])
    return path


def _mlp(*args: str, **kwargs) -> subprocess.Popen:
    command = [
        sys.executable,
        "-c",
        "import sys; from multilayer.cli.main import main; sys.exit(main())",
    ]
    return subprocess.Popen([*command, *args], text=True, env=ENV, **kwargs)


def test_cli_ctrl_c_then_resume_matches_an_uninterrupted_run(tmp_path, small_dataset):
    from multilayer.models.saving import read_file

    common = ["train", "--dataset", str(small_dataset), "--epochs", "12", "--seed", "3"]
    reference = _mlp(
        *common,
        "-o",
        str(tmp_path / "reference"),
        "-q",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert reference.wait(TIMEOUT) == 0, reference.stderr.read()

    run = tmp_path / "interrupted"
    process = _mlp(
        *common,
        "-o",
        str(run),
        "--checkpoint-every",
        "5s",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _run_until_prefix(process, "Epoch 3/12")
    process.send_signal(signal.SIGINT)
    assert process.wait(TIMEOUT) == 130
    stderr = process.stderr.read()
    assert f"Resume with: mlp train --resume {run}" in stderr
    assert not (run / "model.safetensors").exists()

    resumed = _mlp(
        "train", "--resume", str(run), "-q", stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert resumed.wait(TIMEOUT) == 0, resumed.stderr.read()
    _, expected = read_file(tmp_path / "reference" / "model.safetensors")
    _, actual = read_file(run / "model.safetensors")
    assert sorted(actual) == sorted(expected)
    assert all(actual[name].tobytes() == expected[name].tobytes() for name in expected)
    assert json.loads((run / "history.json").read_text()) == json.loads(
        (tmp_path / "reference" / "history.json").read_text()
    )
    for process in (reference, resumed):
        process.stdout.close()
        process.stderr.close()


def _run_until_prefix(process: subprocess.Popen, prefix: str) -> None:
    for line in process.stdout:
        if line.startswith(prefix):
            return
    process.wait(TIMEOUT)
    pytest.fail(f"the run ended before printing {prefix!r}: {process.stderr.read()}")


def test_cli_refuses_bad_checkpoint_options(tmp_path):
    bad_every = _mlp("train", "--checkpoint-every", "0s", stderr=subprocess.PIPE)
    assert bad_every.wait(TIMEOUT) == 2
    assert "invalid checkpoint frequency" in bad_every.stderr.read()
    nothing = _mlp("train", "--resume", str(tmp_path), stderr=subprocess.PIPE)
    assert nothing.wait(TIMEOUT) == 2
    assert "nothing to resume" in nothing.stderr.read()
    for process in (bad_every, nothing):
        process.stderr.close()
