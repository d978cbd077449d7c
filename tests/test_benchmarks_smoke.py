"""The benchmark suite's smoke run: it must run end to end and write well-formed results.

Only the shape of the output is checked, never a timing: timings depend on the machine.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _number(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--output", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads((out / "smoke.json").read_text()), (out / "smoke.md").read_text()


@pytest.mark.slow
def test_smoke_run_writes_every_section(smoke):
    results, _ = smoke
    assert results["smoke"] is True
    assert results["machine"]["logical_cpus"] >= 1
    assert _number(results["import"]["median_seconds"])
    (run,) = results["epochs"]["multilayer"]
    assert [row["batch_size"] for row in run["rows"]] == [128, 256, 512]
    for row in run["rows"]:
        assert _number(row["epoch_seconds"]) and _number(row["sgemm_gflops"])
        assert row["flops_epoch"] == row["n_train"] * 2 * (
            2 * (784 * 512 + 512 * 768 + 768 * 10) + (512 * 768 + 768 * 10)
        )
    predict = results["predict"]["multilayer"]
    assert predict["images"] == 500 and _number(predict["images_per_second"])
    assert _number(predict["latency_ms"])


@pytest.mark.slow
def test_smoke_time_to_accuracy_records_a_learning_curve(smoke):
    results, _ = smoke
    (race,) = results["tta"].values()
    assert race["system"] == "multilayer" and race["recipe"] == "fast"
    (seed,) = race["seeds"]
    assert len(seed["curve"]) == 1  # the smoke run trains one epoch
    point = seed["curve"][0]
    # One epoch on 1,024 images learns something: far above chance, still below the target.
    assert 0.3 < point["test_accuracy"] < results["target"]
    assert seed["seconds_to_target"] is None
    assert _number(seed["peak_rss_mb"])


@pytest.mark.slow
def test_smoke_report_has_tables_and_targets(smoke):
    results, markdown = smoke
    names = [target["name"] for target in results["summary"]["targets"]]
    assert "import multilayer" in names and "time to 98.4% (median of seeds)" in names
    assert all(isinstance(target["met"], bool) for target in results["summary"]["targets"])
    assert "<!-- results:begin -->" in markdown and "<!-- results:end -->" in markdown
    assert "| batch | multilayer |" in markdown
    assert "SMOKE" in markdown


@pytest.mark.slow
def test_smoke_environment_variable_keeps_committed_results_untouched():
    # MULTILAYER_SMOKE=1 is how CI runs the docs' benchmark commands: smoke sizes, and the
    # results go to a temporary directory, never over benchmarks/results or docs/benchmarks.md
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MULTILAYER_SMOKE": "1"}
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--only", "import"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    written = completed.stdout.rsplit("wrote ", 1)[1].rsplit(" in ", 1)[0]
    paths = [Path(part) for part in written.split(" and ")]
    assert len(paths) == 2 and all(path.exists() for path in paths)
    assert all(ROOT not in path.resolve().parents for path in paths)
    assert json.loads(paths[0].read_text())["smoke"] is True


REVISION_METRICS = [
    f"s/epoch batch {b} ({clock})" for b in (128, 256, 512) for clock in ("cpu", "wall")
] + [
    "predict 500 images (cpu)",
    "predict 500 images (wall)",
    "predict 1 image (cpu)",
    "predict 1 image (wall)",
    "peak RSS of training",
    "import multilayer (cpu)",
    "import multilayer (wall)",
]


def _git_head() -> str | None:
    completed = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", "HEAD"], capture_output=True, text=True
    )
    return completed.stdout.strip() if completed.returncode == 0 else None


def _revisions(*args: str, output: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MULTILAYER_SMOKE", None)
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.revisions", "--smoke", "--output", str(output), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_revisions_smoke_compares_a_git_revision_with_this_checkout(tmp_path):
    commit = _git_head()
    if commit is None:
        pytest.skip("not a git checkout: there is no revision to export")
    completed = _revisions("--base", "HEAD", output=tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads((tmp_path / "revisions-smoke.json").read_text())
    assert results["smoke"] is True
    base, head = results["revisions"]["base"], results["revisions"]["head"]
    assert base["kind"] == "git" and base["commit"] == commit and base["spec"] == "HEAD"
    assert head == {
        "spec": str(ROOT),
        "kind": "directory",
        "commit": commit,
        "src_modified": head["src_modified"],
    }
    assert isinstance(head["src_modified"], bool)
    for side in ("base", "head"):
        runs = results["runs"][side]
        assert len(runs["import"]) == len(runs["train"]) == len(runs["predict"]) == 1
        (train,) = runs["train"]
        assert [row["batch_size"] for row in train["rows"]] == [128, 256, 512]
        assert [row["steps"] for row in train["rows"]] == [2, 2, 2]
        assert runs["predict"][0]["images"] == 500
    assert [row["metric"] for row in results["summary"]] == REVISION_METRICS
    for row in results["summary"]:
        for side in ("base", "head"):
            stats = row[side]
            assert _number(stats["median"]) and stats["min"] <= stats["median"] <= stats["max"]
        assert row["ratio"] == row["head"]["median"] / row["base"]["median"]
    assert "| quantity | base: median (min-max) | head: median (min-max) | head/base |" in (
        completed.stdout
    )
    assert f"| {REVISION_METRICS[0]} | " in completed.stdout


def test_revisions_refuses_an_unknown_revision_and_a_directory_without_the_package(tmp_path):
    if _git_head() is None:
        pytest.skip("not a git checkout")
    completed = _revisions("--base", "no-such-revision", output=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr == (
        f"error: no-such-revision: neither a directory nor a commit of the repository at {ROOT}\n"
    )
    completed = _revisions("--base", str(tmp_path), output=tmp_path)
    assert completed.returncode == 2
    assert (
        completed.stderr == f"error: {tmp_path}: no src/multilayer/__init__.py in this directory\n"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_benchmarks_base_option_adds_the_revisions_section_to_the_report(tmp_path):
    commit = _git_head()
    if commit is None:
        pytest.skip("not a git checkout: there is no revision to export")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MULTILAYER_SMOKE", None)
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--only", "import", "--base", "HEAD"]
        + ["--output", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads((tmp_path / "smoke.json").read_text())
    assert results["revisions"]["revisions"]["base"]["commit"] == commit
    assert [row["metric"] for row in results["revisions"]["summary"]] == REVISION_METRICS
    markdown = (tmp_path / "smoke.md").read_text()
    assert f"### This code against HEAD ({commit[:7]})" in markdown
    assert "| s/epoch batch 128 (cpu) | " in markdown
