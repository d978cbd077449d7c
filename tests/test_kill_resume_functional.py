"""The kill/resume guarantees of tests/test_kill_resume.py, for a functional model with two
branches (same helper script, ``--functional``): SIGKILL at any point, including in the middle
of a checkpoint write, or Ctrl-C, then resume, gives bitwise the weights and history of an
uninterrupted run."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from multilayer.models.checkpoint import list_checkpoints, read_checkpoint
from test_kill_resume import ENV, HELPER, TIMEOUT, _kill, _results, _run_until


def _start(run_dir, out, *extra) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(HELPER), str(run_dir), str(out), "--functional", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )


def _finish(run_dir, out) -> None:
    result = subprocess.run(
        [sys.executable, str(HELPER), str(run_dir), str(out), "--functional"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("DONE")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    directory = tmp_path_factory.mktemp("reference-functional")
    result = subprocess.run(
        [sys.executable, str(HELPER), str(directory / "run"), str(directory / "out"),
         "--no-checkpoint", "--functional"],
        capture_output=True, text=True, env=ENV, timeout=TIMEOUT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return _results(directory / "out")


SCENARIOS = {
    "mid-epoch": [("step", 23)],
    "twice": [("step", 47), ("step", 121)],
    "during-write-partial-bytes": [("pause", "partial:3")],
    "during-write-before-rename": [("pause", "replace:2")],
}


@pytest.mark.parametrize("points", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_functional_model_sigkill_then_resume_is_bitwise_identical(tmp_path, reference, points):
    run_dir, out = tmp_path / "run", tmp_path / "out"
    for kind, where in points:
        if kind == "step":
            process = _start(run_dir, out)
            _run_until(process, f"step {where}")
        else:
            process = _start(run_dir, out, "--pause", where)
            _run_until(process, f"PAUSED {where.split(':')[0]}")
        assert _kill(process) == -signal.SIGKILL
        for path in list_checkpoints(run_dir):
            read_checkpoint(path)
    _finish(run_dir, out)
    weights, history = _results(out)
    assert weights.tobytes() == reference[0].tobytes()
    assert history == reference[1]


def test_functional_model_sigint_then_resume_is_bitwise_identical(tmp_path, reference):
    run_dir, out = tmp_path / "run", tmp_path / "out"
    process = _start(run_dir, out)
    _run_until(process, "step 57")
    process.send_signal(signal.SIGINT)
    assert process.wait(TIMEOUT) == 130
    assert "Resume with:" in process.stderr.read()
    process.stdout.close()
    process.stderr.close()
    _finish(run_dir, out)
    weights, history = _results(out)
    assert weights.tobytes() == reference[0].tobytes()
    assert history == reference[1]
