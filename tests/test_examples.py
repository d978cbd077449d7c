"""Every example in examples/ runs as a script and shows what it claims (fast mode, as in CI)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, timeout: float = 120) -> str:
    # MULTILAYER_TUTORIAL_EPOCHS: keras_tutorial.py trains the published 100 epochs otherwise.
    env = {**os.environ, "MULTILAYER_FAST": "1", "MULTILAYER_TUTORIAL_EPOCHS": "1"}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=EXAMPLES.parent,
    )
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_perceptron_xor_example():
    out = run_example("perceptron_xor.py")
    assert re.search(r"AND: converged after \d+ epochs\s+accuracy 100%", out)
    assert re.search(r"OR: converged after \d+ epochs\s+accuracy 100%", out)
    assert re.search(r"XOR: did NOT converge in \d+ epochs\s+accuracy (0|25|50|75)%", out)
    mlp = out.split("Multi-layer perceptron", 1)[1]
    assert "accuracy 100%" in mlp


def test_regression_example():
    out = run_example("regression.py")
    match = re.search(r"test MSE  MLP: ([\d.]+)\s+best straight line: ([\d.]+)", out)
    assert match, out
    mlp, line = float(match[1]), float(match[2])
    assert mlp < 0.1 < line  # the MLP fits the sine, a line cannot


@pytest.mark.slow
@pytest.mark.skipif(
    not (EXAMPLES / "keras_tutorial.py").exists(),
    reason="examples/keras_tutorial.py not written yet",
)
def test_keras_tutorial_example():
    """One epoch of the tutorial's program on the real MNIST (MULTILAYER_DATA from conftest)."""
    out = run_example("keras_tutorial.py", timeout=600)
    match = re.search(r"Test accuracy: ([\d.]+)", out)
    assert match, out
    print(f"examples/keras_tutorial.py, 1 epoch: test accuracy {float(match[1]):.4f}")
    assert float(match[1]) >= 0.95
