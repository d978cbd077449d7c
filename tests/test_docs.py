"""Every code block in the README and docs runs.

``python`` blocks run as scripts, ``bash`` blocks as shell commands, each in a fresh
temporary directory with the repository's ``src`` importable. ``text`` blocks are not code.
The README's test-suite command is not run from inside the test suite (it *is* the test
suite): instead the test checks that CI runs exactly that command.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
RUNNABLE = {"python", "bash", "sh"}


def code_blocks():
    for doc in DOCS:
        for number, match in enumerate(FENCE.finditer(doc.read_text())):
            language, code = match.group(1), match.group(2)
            if language in RUNNABLE:
                yield pytest.param(language, code, id=f"{doc.name}-{number}-{language}")


def _is_test_suite_command(code: str) -> bool:
    return code.rstrip().endswith("pytest")


def test_readme_test_command_is_what_ci_runs():
    blocks = [param.values[1] for param in code_blocks() if _is_test_suite_command(param.values[1])]
    assert len(blocks) == 1, "the README must have exactly one test-suite command"
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    # CI runs the README's command verbatim, as a line of its own: its own venv included.
    assert blocks[0].strip() in ci_lines
    # ... with the data setting exactly as the README gives it (relative), before it.
    settings = re.findall(r"`(export MULTILAYER_DATA=[^`]+)`", (ROOT / "README.md").read_text())
    assert settings == ["export MULTILAYER_DATA=../shared/datasets"]
    assert ci_lines.index(settings[0]) < ci_lines.index(blocks[0].strip())


@pytest.mark.slow
@pytest.mark.parametrize(("language", "code"), list(code_blocks()))
def test_code_block_runs(language, code, tmp_path):
    if _is_test_suite_command(code):
        pytest.skip("the test-suite command is what CI runs (checked above)")
    bin_dir = str(Path(sys.executable).parent)  # where this environment's `mlp` lives
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "PATH": bin_dir + os.pathsep + os.environ["PATH"],
        # Benchmarks and load tests shown in the docs run at their smoke sizes (seconds),
        # writing their results to a temporary directory, not over the committed ones.
        "MULTILAYER_SMOKE": "1",
    }
    # Blocks run from a scratch directory that sees the repository's files as "." for
    # relative paths such as "examples/"; files they write stay in tmp_path.
    for entry in ROOT.iterdir():
        if not entry.name.startswith(".") and entry.name not in ("runs", "build"):
            (tmp_path / entry.name).symlink_to(entry)
    if language == "python":
        command = [sys.executable, "-c", code]
    else:
        # "python3 -m venv .venv && . .venv/bin/activate && pip install" is the quickstart;
        # the test reuses the current environment instead of building a second one.
        code = code.replace("python3 -m venv .venv && . .venv/bin/activate && ", "")
        code = re.sub(r"pip install -q -e '\.\[\w+\]' && ", "", code)
        command = ["bash", "-euo", "pipefail", "-c", code]
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, (
        f"block failed:\n{code}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
