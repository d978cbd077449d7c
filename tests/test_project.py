"""Project hygiene: one version, the license, the changelog, pre-commit, and mypy on src/."""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

import multilayer
from multilayer.cli.main import main

ROOT = Path(__file__).resolve().parents[1]


def test_version_is_written_in_one_place():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"]
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "multilayer._version.__version__"
    }
    written = re.findall(
        r'^__version__ = "([^"]+)"$', (ROOT / "src/multilayer/_version.py").read_text(), re.M
    )
    assert written == [multilayer.__version__]
    assert importlib.metadata.version("multilayer") == multilayer.__version__


def test_mlp_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"mlp (multilayer) {multilayer.__version__}\n"


def test_mlp_version_is_listed_in_the_help(capsys):
    assert main(["--help"]) == 0
    assert "--version" in capsys.readouterr().out


def test_license_is_the_apache_2_text():
    text = (ROOT / "LICENSE").read_bytes()
    # the MD5 of https://www.apache.org/licenses/LICENSE-2.0.txt
    assert hashlib.md5(text).hexdigest() == "3b83ef96387f14655fc854ddc3c6bd57"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["license"] == "Apache-2.0"  # an SPDX expression (PEP 639)
    assert pyproject["project"]["license-files"] == ["LICENSE"]


def test_changelog_follows_keep_a_changelog():
    text = (ROOT / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## \[([^\]]+)\]", text, re.M)
    assert headings[0] == "Unreleased"
    assert multilayer.__version__ in headings
    sections = set(re.findall(r"^### (\w+)", text, re.M))
    assert sections <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def test_pre_commit_runs_ruff_and_mypy():
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert hooks["ruff-check"]["entry"].startswith("ruff check")
    assert hooks["ruff-format"]["entry"] == "ruff format"
    assert hooks["mypy"]["entry"] == "mypy" and hooks["mypy"]["pass_filenames"] is False
    if shutil.which("pre-commit"):
        result = subprocess.run(
            ["pre-commit", "validate-config", ".pre-commit-config.yaml"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_mypy():
    lines = [line.split("#")[0].strip() for line in (ROOT / ".ci/run").read_text().splitlines()]
    assert "mypy" in lines


def test_mypy_finds_no_error_in_src():
    pytest.importorskip("mypy")
    result = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Success: no issues found")


def test_the_multithreaded_optimizer_step_is_gone():
    from multilayer.engine import config, optimizers

    assert not hasattr(config, "set_num_threads")
    assert not hasattr(optimizers.Optimizer, "_chunks")
