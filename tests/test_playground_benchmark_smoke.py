"""The playground benchmark's smoke run (benchmarks/playground.py) runs end to end and writes
well-formed results. Only the shape of the output is checked, never a timing."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")

ROOT = Path(__file__).resolve().parents[1]


def test_playground_benchmark_smoke_run(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.playground", "--smoke", "--output", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads((tmp_path / "playground-smoke.json").read_text())
    assert results["smoke"] is True
    assert results["case"]["hidden"] == [8, 8, 8, 8] and results["case"]["grid"] == 50
    assert list(results["summary"]) == ["library", "encoded", "http"]
    for row in results["summary"].values():
        assert math.isfinite(row["updates_per_second"]) and row["updates_per_second"] > 0
    assert "| http |" in completed.stdout
