"""The ONNX inference benchmark's smoke run (benchmarks/onnx_inference.py): it runs end to end
and writes well-formed results. Only the shape of the output is checked, never a timing."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_onnx_benchmark_smoke_run(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.onnx_inference", "--smoke", "--output", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads((tmp_path / "onnx-smoke.json").read_text())
    assert results["smoke"] is True and results["n_test"] == 500
    summary = results["summary"]
    assert list(summary) == ["multilayer", "onnxruntime", "pytorch"]
    for system in ("multilayer", "onnxruntime"):
        row = summary[system]
        assert math.isfinite(row["images_per_second"]) and row["images_per_second"] > 0
        assert math.isfinite(row["latency_ms"]) and row["latency_ms"] > 0
    assert summary["multilayer"]["max_abs_diff_vs_multilayer"] == 0
    assert summary["onnxruntime"]["max_abs_diff_vs_multilayer"] <= 1e-5
    # PyTorch is an optional peer: measured when installed, else reported as not run
    torch_row = summary["pytorch"]
    assert "images_per_second" in torch_row or "torch" in torch_row["missing"]
    table = (tmp_path / "onnx-smoke.md").read_text()
    assert "| ONNX Runtime |" in table and "| multilayer | " in table
