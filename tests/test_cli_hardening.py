"""Issue 8, items 7, 8 and 21: ``mlp report`` on something that is not a run, terminal polish
(help at 80 columns, progress bars in a terminal, plurals, ``--resume``, ``mlp info``, batch
``mlp predict``) and the training time of a resumed run.

Runs train on a small ``.npz`` so that every test takes a second or two.
"""

import io
import json
import re

import numpy as np
import pytest

from multilayer.cli.main import COMMANDS, main
from multilayer.runs import RunDir

pytest.importorskip("typer")

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
#: What Typer shows for a parameter without a metavar: Python types.
PYTHON_TYPES = re.compile(r"<(str|int|float|bool|path|int range|float range|list\[\w+\])>")


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write_npz(path, n=60):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n, 28, 28)).astype(np.uint8)
    y = np.arange(n) % 10
    np.savez(path, x_train=x, y_train=y, x_test=x[:20], y_test=y[:20])
    return path


def train(capsys, tmp_path, *flags, name="run"):
    data = tmp_path / "small.npz"
    if not data.exists():
        write_npz(data)
    output = tmp_path / name
    result = run(
        capsys,
        *("train", "--dataset", data, "--hidden", "8", "--batch-size", "16", "--seed", "1"),
        *("--no-report", "-o", output, *flags),
    )
    assert result[0] == 0, result[2]
    return output, result


# -- item 7: mlp report on something that is not a run ------------------------------------------


def test_report_refuses_a_directory_that_is_not_a_run(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    code, out, err = run(capsys, "report", tmp_path)
    assert code == 1
    assert err == (
        f"error: {tmp_path} is not a run directory: it has neither model.safetensors nor "
        "config.json (written by mlp train)\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # nothing written


def test_report_of_a_file_says_it_is_a_file(tmp_path, capsys):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"x")
    code, _, err = run(capsys, "report", path)
    assert (code, err) == (1, f"error: {path} is a file, not a run directory\n")
    code, _, err = run(capsys, "report", tmp_path / "nope")
    assert (code, err) == (1, f"error: {tmp_path / 'nope'}: no such run directory\n")


def test_write_report_checks_the_run_before_writing(tmp_path):
    pytest.importorskip("matplotlib")
    from multilayer.errors import DataError
    from multilayer.report import write_report

    with pytest.raises(DataError, match="is not a run directory"):
        write_report(tmp_path)
    assert list(tmp_path.iterdir()) == []


# -- item 8: help -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_at_80_columns_shows_whole_option_names_and_no_python_types(
    command, monkeypatch, capsys
):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    assert all(len(line) <= 80 for line in out.splitlines()), out
    assert "…" not in out
    assert not PYTHON_TYPES.findall(out), out
    from multilayer.cli.main import build_command

    for param in build_command().commands[command].params:
        for name in getattr(param, "opts", []):
            assert name in out if name.startswith("-") else name.upper() in out


def test_predict_help_names_its_arguments(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    _, out, _ = run(capsys, "predict", "--help")
    assert "Usage: mlp predict [OPTIONS] {MODEL} {IMAGES}..." in out
    assert re.search(r"^  IMAGES +PNG or JPEG", out, re.MULTILINE), out
    assert "--top INTEGER" in out


# -- item 8: progress in a terminal --------------------------------------------------------------


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_finished_epochs_stay_whole_lines_in_an_80_column_terminal(monkeypatch):
    pytest.importorskip("rich")
    from multilayer.recipes import Recipe, build_model

    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("TERM", "xterm-256color")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(64, 28, 28)).astype(np.uint8)
    y = np.arange(64) % 10
    model = build_model(Recipe(name="t", hidden=(8,)), (28, 28), 10, 4, seed=0)
    terminal = FakeTerminal()
    monkeypatch.setattr("sys.stdout", terminal)  # fit's progress writes to a "terminal"
    model.fit(x, y, batch_size=16, epochs=2, validation_split=0.25, verbose=1)
    monkeypatch.undo()
    text = " ".join(ANSI.sub("", terminal.getvalue()).split())
    history = model.history.history
    for epoch in range(2):
        logs = " - ".join(f"{k}: {history[k][epoch]:.4f}" for k in history)
        assert re.search(rf"Epoch {epoch + 1}/2 - 3/3 - [\d.]+s - \d+ms/step - {logs}", text), text
    assert "Epoc…" not in text
    assert "━" in text  # the live bar was drawn, and only the finished lines remain of it


PTY_SCRIPT = """
import numpy as np
from multilayer.recipes import Recipe, build_model
rng = np.random.default_rng(0)
x = rng.integers(0, 256, size=(64, 28, 28)).astype(np.uint8)
y = np.arange(64) % 10
model = build_model(Recipe(name="t", hidden=(8,)), (28, 28), 10, 4, seed=0)
model.fit(x, y, batch_size=16, epochs=2, validation_split=0.25, verbose=1)
for epoch in range(2):
    print("EXPECT", " - ".join(f"{k}: {v[epoch]:.4f}" for k, v in model.history.history.items()))
"""


def test_progress_in_a_real_80_column_pty(tmp_path):
    """The same in a real pseudo-terminal of 80 columns, as a user's terminal is."""
    pytest.importorskip("rich")
    pty, fcntl, termios, struct = (
        pytest.importorskip(m) for m in ("pty", "fcntl", "termios", "struct")
    )
    import os
    import subprocess
    import sys

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    process = subprocess.Popen(
        [sys.executable, "-c", PTY_SCRIPT],
        stdout=slave,
        stderr=slave,
        env={**env, "TERM": "xterm-256color"},
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert process.wait(timeout=120) == 0, b"".join(chunks).decode(errors="replace")
    text = ANSI.sub("", b"".join(chunks).decode())
    expected = [line.split("EXPECT ", 1)[1] for line in text.splitlines() if "EXPECT " in line]
    flat = " ".join(text.split())
    for epoch, logs in enumerate(expected):
        assert re.search(rf"Epoch {epoch + 1}/2 - 3/3 - [\d.]+s - \d+ms/step - {logs}", flat), flat
    assert len(expected) == 2 and "Epoc…" not in flat


# -- item 8: plurals, --resume, info, predict ----------------------------------------------------


def test_one_epoch_is_singular(tmp_path, capsys):
    _, (_, out, _) = train(capsys, tmp_path, "--epochs", "1")
    assert ", 1 epoch on small (" in out
    assert "s/epoch, 1 epoch) - run:" in out
    assert "1 epochs" not in out


def test_info_prints_the_test_metrics_once(tmp_path, capsys):
    output, _ = train(capsys, tmp_path, "--epochs", "1")
    code, out, err = run(capsys, "info", output)
    assert code == 0, err
    assert out.count("test_accuracy:") == 1 and out.count("test_loss:") == 1, out
    assert "test_samples: 20" in out  # what only metrics.json holds is still shown


def test_predict_batch_with_a_missing_file_prints_the_good_ones(tmp_path, capsys):
    output, _ = train(capsys, tmp_path, "--epochs", "1")
    good = [tmp_path / "a.npy", tmp_path / "b.npy"]
    digit = np.zeros((28, 28))
    digit[6:22, 12:16] = 1.0  # a "1"
    for path in good:
        np.save(path, digit)
    missing = tmp_path / "missing.png"
    code, out, err = run(capsys, "predict", output, good[0], missing, good[1])
    assert code == 1
    assert [line.split(":")[0] for line in out.splitlines()] == [str(p) for p in good]
    assert err == f"error: 1 of 3 images could not be read: {missing}: No such file or directory\n"
    code, out, err = run(capsys, "predict", output, good[0], missing, "--json")
    results = json.loads(out)
    assert code == 1 and [r["image"] for r in results] == [str(good[0]), str(missing)]
    assert len(results[0]["top"]) == 3
    assert results[1] == {"image": str(missing), "error": f"{missing}: No such file or directory"}


# -- item 8 (--resume says so) and item 21 (training time of a resumed run) ------------------------


def test_resume_of_a_finished_run_says_so_and_adds_the_segments(tmp_path, capsys):
    from multilayer.models.checkpoint import latest_checkpoint

    output, (_, first_out, _) = train(capsys, tmp_path, "--epochs", "2", "--checkpoint-every", "1")
    first = RunDir(output).metrics
    checkpoint = latest_checkpoint(output / "checkpoints")
    (recorded,) = checkpoint.state.segments  # the first segment, up to the last checkpoint
    assert 0 < recorded <= first["train_seconds"]
    assert first["train_segments"] == [first["train_seconds"]]

    code, out, err = run(capsys, "train", "--resume", output)
    assert code == 0, err
    assert out.splitlines()[0] == (
        f"Resuming {output} from {checkpoint.path.name}: training had finished (2 epochs); "
        "testing it again"
    )
    metrics = RunDir(output).metrics
    assert metrics["train_segments"][0] == recorded
    assert len(metrics["train_segments"]) == 2
    assert metrics["train_seconds"] == pytest.approx(sum(metrics["train_segments"]), abs=0)
    assert metrics["train_seconds"] >= recorded
    assert metrics["seconds_per_epoch"] == pytest.approx(metrics["train_seconds"] / 2)
    assert "2 epochs in 2 segments) - run:" in out


def test_resume_in_the_middle_names_the_checkpoint_and_epoch(tmp_path, capsys):
    from multilayer.models.checkpoint import list_checkpoints, read_checkpoint

    output, _ = train(capsys, tmp_path, "--epochs", "3", "--checkpoint-every", "1")
    newest, previous = list_checkpoints(output / "checkpoints")
    newest.unlink()  # as if the run had been killed during its last epoch
    earlier = read_checkpoint(previous).state.segments
    code, out, err = run(capsys, "train", "--resume", output)
    assert code == 0, err
    assert out.splitlines()[0] == (
        f"Resuming {output} from {previous.name}: epoch 3/3 (2 epochs done)"
    )
    segments = RunDir(output).metrics["train_segments"]
    assert segments[:1] == earlier and len(segments) == 2


def test_checkpoints_without_segments_still_read(tmp_path, capsys):
    """Files written before per-segment times existed: no "segments" in the state."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    from multilayer.models.checkpoint import list_checkpoints, read_checkpoint

    output, _ = train(capsys, tmp_path, "--epochs", "1", "--checkpoint-every", "1")
    (path,) = list_checkpoints(output / "checkpoints")
    with safe_open(str(path), framework="numpy") as handle:
        metadata = dict(handle.metadata())
    state = json.loads(metadata["state"])
    del state["segments"]
    metadata["state"] = json.dumps(state)
    save_file(load_file(str(path)), str(path), metadata=metadata)
    assert read_checkpoint(path).state.segments == []
    state["segments"] = [-1.0]
    metadata["state"] = json.dumps(state)
    save_file(load_file(str(path)), str(path), metadata=metadata)
    from multilayer.errors import ModelFileError

    with pytest.raises(ModelFileError, match="expected a duration in seconds, got -1.0"):
        read_checkpoint(path)
