"""Smoke runs of the tabular benchmarks, so they do not rot: the side-by-side harness
(benchmarks/tabular.py) on two small datasets, and the large-table benchmark
(benchmarks/tabular_large.py), whose peak RSS must not grow with the file. Memory is
asserted, never time."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("pyarrow")

ROOT = Path(__file__).resolve().parents[1]


def _run(*argv: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    env.pop("MULTILAYER_SMOKE", None)
    return subprocess.run(
        [sys.executable, "-m", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_tabular_harness_smoke(tmp_path):
    docs = (ROOT / "docs" / "benchmarks.md").read_text()
    done = _run("benchmarks.tabular", "--smoke", "--output", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "tabular-smoke.json").read_text())
    assert results["smoke"] is True and results["seeds"] == [0]
    assert set(results["datasets"]) == {"iris", "diabetes"}
    for name, task, metric in (
        ("iris", "multiclass", "accuracy"),
        ("diabetes", "regression", "r2"),
    ):
        for system in ("multilayer", "hgb", "sklearn-mlp"):
            result = results["datasets"][name][system]
            assert "error" not in result, result.get("error")
            assert result["task"] == task and len(result["runs"]) == 1
            run = result["runs"][0]
            assert math.isfinite(run[metric]) and run["seconds"] > 0
            assert result["peak_rss_mb"] > 0
    iris = results["datasets"]["iris"]
    assert all(r["runs"][0]["accuracy"] > 0.5 for r in iris.values())
    markdown = (tmp_path / "tabular-smoke.md").read_text()
    assert "| iris | multiclass | 150 × 4 | accuracy |" in markdown
    assert "| better than sklearn's MLP on every dataset |" in markdown
    assert (ROOT / "docs" / "benchmarks.md").read_text() == docs  # a smoke run writes no docs


def test_tabular_harness_refuses_unknown_names(tmp_path):
    done = _run("benchmarks.tabular", "--datasets", "iris,titanic", "--output", str(tmp_path))
    assert done.returncode == 2 and "unknown: ['titanic']" in done.stderr


@pytest.mark.slow
def test_large_table_peak_rss_does_not_grow_with_the_file(tmp_path):
    """Two smoke runs, 0.5 and 2 million rows (20 steps each): the file's arrays grow by
    about 290 MB, the training process's peak RSS must grow by far less."""
    results = []
    for rows in (500_000, 2_000_000):
        out = tmp_path / str(rows)
        done = _run(
            "benchmarks.tabular_large", "--smoke", "--rows", str(rows), "--output", str(out)
        )
        assert done.returncode == 0, done.stderr[-3000:]
        results.append(json.loads((out / "tabular-large-smoke.json").read_text()))
    small, large = results
    for result in results:
        assert result["training"]["exit_code"] == 0
        assert result["training"]["peak_rss_mb"] < 1024
        assert result["metrics"]["streamed"] is True
    assert large["table"]["rows"] == 2_000_000
    arrays_growth = large["table"]["in_memory_mb"] - small["table"]["in_memory_mb"]
    rss_growth = large["training"]["peak_rss_mb"] - small["training"]["peak_rss_mb"]
    assert arrays_growth > 250
    assert rss_growth < 0.25 * arrays_growth, (rss_growth, arrays_growth)
    # Nor is the whole file ever held: the run stays below its arrays on top of the imports.
    baseline = large["baseline"]["peak_rss_mb"]
    assert large["training"]["peak_rss_mb"] - baseline < large["table"]["in_memory_mb"]


def test_tabular_variants_scores_on_validation_data_only():
    done = _run("benchmarks.tabular_variants", "--datasets", "iris,diabetes", "--variants",
                "smoke", "--seeds", "1")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert [line.split()[:3] for line in lines] == [
        ["iris", "smoke", "val"],
        ["diabetes", "smoke", "val"],
    ]
    assert all(line.split()[5] == "2.0" for line in lines)  # epochs: the variant's 2
    accuracy = float(lines[0].split()[3])
    assert 0.0 <= accuracy <= 1.0
