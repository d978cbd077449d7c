"""mlp tune: search spaces, pruning, the results, and workers sharing a study (a journal file
or a real PostgreSQL started by the test) while one of them is killed mid-trial."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("optuna")

from optuna.study import StudyDirection  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from multilayer.tuning import (  # noqa: E402
    SpaceError,
    TuneError,
    TuneSettings,
    default_space,
    load_space,
    parse_duration,
    read_settings,
    tune,
)
from multilayer.tuning.study import PruningCallback, open_backend, open_study  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
import postgres  # noqa: E402

#: Small, quick trials: one hidden layer, a fixed budget of epochs.
TINY_SPACE = {
    "units": {"choices": [32, 64]},
    "layers": {"value": 1},
    "epochs": {"value": 2},
    "batch_size": {"choices": [128, 256]},
}
#: Trials long enough (a second or two) for a test to kill a worker in the middle of one.
# A trial of several seconds, so that a worker killed 0.3 s after its trial started is
# killed mid-trial even on a quiet machine (with 4 epochs a trial could finish first).
SLOW_SPACE_TOML = """
[units]
choices = [256]
[layers]
value = 2
[epochs]
value = 12
[batch_size]
choices = [64]
"""


@pytest.fixture(scope="module")
def mnist_npz(tmp_path_factory):
    """A 4,000 / 1,000 subset of the real MNIST as an .npz dataset."""
    from multilayer.datasets import load_dataset

    data = load_dataset("mnist")
    path = tmp_path_factory.mktemp("data") / "mnist-small.npz"
    np.savez(
        path,
        x_train=data.x_train[:4000],
        y_train=data.y_train[:4000],
        x_test=data.x_test[:1000],
        y_test=data.y_test[:1000],
    )
    return str(path)


@pytest.fixture(scope="module")
def postgres_url():
    binaries = postgres.find_binaries()
    if isinstance(binaries, str):
        pytest.skip(binaries)
    user = postgres.server_user()
    if isinstance(user, str):
        pytest.skip(user)
    with postgres.throwaway_cluster(*binaries, user) as url:
        yield url


# -- the search space -------------------------------------------------------------------------------


def test_default_space_covers_the_issue_parameters():
    space = default_space("classification", epochs=4)
    for name in ("learning_rate", "layers", "units", "batch_size", "schedule", "dropout"):
        assert name in space
    assert {"weight_decay", "label_smoothing"} <= set(space)
    assert space["epochs"] == {"value": 4}
    assert space["learning_rate"]["log"] is True


def test_space_file_replaces_entries(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text("[learning_rate]\nlow = 1e-4\nhigh = 3e-3\nlog = true\n[epochs]\nvalue = 2\n")
    space = load_space(path, default_space())
    assert space["learning_rate"] == {"low": 1e-4, "high": 3e-3, "log": True}
    assert space["epochs"] == {"value": 2}
    assert space["units"] == default_space()["units"]  # untouched entries stay


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[learning_rat]\nvalue = 0.1\n", "Unknown search-space parameter 'learning_rat'"),
        ("[units]\nlow = 64\nhigh = 32\n", "[units]: low must be below high, got 64 and 32"),
        ("[units]\nlow = 1.5\nhigh = 32\n", "[units] low: expected an integer, got 1.5"),
        (
            "[weight_decay]\nlow = 0.0\nhigh = 0.1\nlog = true\n",
            "[weight_decay]: a log range must start above 0, got low = 0.0",
        ),
        ("[dropout]\nvalue = 1.0\n", "[dropout] value: 1.0 is out of range [0, 1)"),
        ("[schedule]\nlow = 1\nhigh = 2\n", "[schedule]: a text parameter takes choices or value"),
        ("[batch_size]\nchoices = []\n", "[batch_size] choices: expected a non-empty list, got []"),
        ("epochs = 3\n", "[epochs]: expected a table with low/high, choices or value, got 3"),
        ("[units]\nmin = 3\n", "[units]: expected either low and high"),
        ("[units\n", "not a valid TOML file"),
    ],
)
def test_bad_space_files_name_the_entry(tmp_path, text, message):
    path = tmp_path / "space.toml"
    path.write_text(text)
    with pytest.raises(SpaceError) as caught:
        load_space(path, default_space())
    assert str(caught.value).startswith(f"{path}: ")
    assert message.lower() in str(caught.value).lower()


def test_space_file_size_is_bounded(tmp_path):
    path = tmp_path / "space.toml"
    path.write_bytes(b"#" * (64 * 1024 + 1))
    with pytest.raises(SpaceError, match="a space file is at most 65536 bytes"):
        load_space(path, default_space())


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90.0), ("90s", 90.0), ("10m", 600.0), ("1.5h", 5400.0)]
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "ten minutes", "0s", "-3m", "inf"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_sqlite_storage_is_refused_with_the_alternative(tmp_path):
    with pytest.raises(TuneError, match="SQLite is not supported: parallel workers get"):
        TuneSettings(str(tmp_path), "mnist", default_space(), storage="sqlite:///x.db")
    with pytest.raises(TuneError, match=r"unsupported storage 'mysql://u@h/db'"):
        TuneSettings(str(tmp_path), "mnist", default_space(), storage="mysql://u:secret@h/db")


def test_saved_settings_hold_no_password(tmp_path):
    from multilayer.tuning.study import save_settings

    url = "postgresql://tuner:s3cret@db.example:5432/studies"
    settings = TuneSettings(str(tmp_path), "mnist", default_space(), storage=url)
    save_settings(settings)
    text = (tmp_path / "tune.json").read_text()
    assert "s3cret" not in text
    assert "postgresql+psycopg2://tuner@db.example:5432/studies" in text


# -- one process -------------------------------------------------------------------------------------


def test_tune_writes_runs_results_and_a_report(mnist_npz, tmp_path):
    result = tune(mnist_npz, tmp_path / "t", trials=4, space=TINY_SPACE, pruner="none", seed=3)
    assert result.counts == {"COMPLETE": 4}
    rows = (tmp_path / "t/trials.csv").read_text().splitlines()
    assert rows[0].startswith("number,state,value,retry_of,param_")
    assert [r.split(",")[1] for r in rows[1:]] == ["COMPLETE"] * 4
    runs = sorted((tmp_path / "t/trials").iterdir())
    assert [r.name for r in runs] == [f"multilayer-000{i}" for i in range(4)]
    assert all((r / "model.safetensors").is_file() and (r / "metrics.json").is_file() for r in runs)
    # the best trial's run, copied with its report; the search's report links to it
    assert (tmp_path / "t/best/report/index.html").is_file()
    page = (tmp_path / "t/report/index.html").read_text()
    assert '<a href="../best/report/index.html">' in page
    for title in ("Optimisation history", "Parameter importances", "Parallel coordinates"):
        assert f"<h2>{title}</h2><p>" in page
    assert page.count("data:image/png;base64,") == 3
    _assert_best_scores_as_recorded(tmp_path / "t", mnist_npz, result.best_number)


def test_rerunning_continues_the_study(mnist_npz, tmp_path):
    tune(mnist_npz, tmp_path / "t", trials=2, space=TINY_SPACE, pruner="none", results=False)
    result = tune(mnist_npz, tmp_path / "t", trials=3, space=TINY_SPACE, pruner="none")
    assert result.counts == {"COMPLETE": 3}  # one more, not three more
    assert tune(mnist_npz, tmp_path / "t", trials=3, space=TINY_SPACE).counts == {"COMPLETE": 3}


def test_pruning_stops_a_trial_after_the_epoch_and_keeps_its_run(mnist_npz, tmp_path):
    """The pruning callback stops fit (the run directory is written, with the epochs run)."""
    from multilayer.training import prepare_run

    class Trial:
        reported: list = []

        def report(self, value, step):
            self.reported.append((step, value))

        def should_prune(self):
            return len(self.reported) == 2

    trial = Trial()
    prepared = prepare_run(
        "fast", mnist_npz, overrides={"hidden": [16], "epochs": 5}, seed=0, output=tmp_path / "r"
    )
    callback = PruningCallback(trial, "val_accuracy")
    prepared.callbacks.append(callback)
    result = prepared.run(verbose=0, report=False)
    assert callback.pruned_after == 2
    assert [step for step, _ in trial.reported] == [0, 1]
    assert trial.reported[-1][1] == result.history.history["val_accuracy"][-1]
    assert result.metrics["epochs"] == 2 and (tmp_path / "r/model.safetensors").is_file()


@pytest.mark.parametrize("pruner", ["median", "hyperband"])
def test_pruned_trials_count_towards_the_total(mnist_npz, tmp_path, pruner):
    space = {
        **TINY_SPACE,
        "epochs": {"value": 3},
        "learning_rate": {"low": 1e-5, "high": 1e-1, "log": True},
    }
    result = tune(mnist_npz, tmp_path / "t", trials=8, space=space, pruner=pruner, seed=0)
    assert sum(result.counts.values()) == 8
    assert set(result.counts) <= {"COMPLETE", "PRUNED"}
    study = _study(tmp_path / "t")
    for trial in study.get_trials(states=(TrialState.PRUNED,)):
        assert trial.user_attrs["epochs"] == trial.user_attrs["pruned_after_epoch"] < 3


# -- workers sharing a study, one killed mid-trial -------------------------------------------------------


def _study(tune_dir: Path, storage: str | None = None):
    settings = read_settings(tune_dir, storage)
    return open_study(settings, open_backend(settings))


def _assert_best_scores_as_recorded(tune_dir: Path, dataset: str, best_number: int | None):
    import json

    from multilayer.datasets import load_dataset
    from multilayer.models import load_model
    from multilayer.training import evaluate_model

    summary = json.loads((tune_dir / "summary.json").read_text())
    assert summary["best"]["number"] == best_number
    model = load_model(tune_dir / "best/model.safetensors")
    scored = evaluate_model(model, load_dataset(dataset))
    assert scored["test_accuracy"] == summary["best"]["test_accuracy"]


def _mlp_tune(tune_dir: Path, dataset: str, space: Path, trials: int, *extra: str):
    command = [sys.executable, "-m", "multilayer.cli.main", "tune", "--dataset", dataset]
    command += ["-o", str(tune_dir), "--trials", str(trials), "--space", str(space)]
    command += ["--pruner", "none", "--heartbeat", "1", "--seed", "5", *extra]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _wait_for_running_trial(study, pid: int, process, timeout: float = 60) -> int:
    """The number of a trial RUNNING in process ``pid`` that has started training."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        for trial in study.get_trials(states=(TrialState.RUNNING,)):
            if trial.user_attrs.get("pid") == pid:
                time.sleep(0.3)  # well inside its training (a trial takes a second or more)
                return trial.number
        time.sleep(0.05)
    raise AssertionError("no trial started")


def _kill_one_worker_mid_trial(tmp_path, dataset, storage: str | None):
    trials = 5
    space = tmp_path / "space.toml"
    space.write_text(SLOW_SPACE_TOML)
    dirs = [tmp_path / "a", tmp_path / "b"] if storage else [tmp_path / "t"] * 2
    extra = ("--storage", storage) if storage else ()
    victim = _mlp_tune(dirs[0], dataset, space, trials, *extra)
    survivor = _mlp_tune(dirs[1], dataset, space, trials, *extra)
    try:
        while not (dirs[0] / "tune.json").is_file():
            time.sleep(0.05)
        study = _study(dirs[0], storage)
        killed = _wait_for_running_trial(study, victim.pid, victim)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        output, _ = survivor.communicate(timeout=240)
    finally:
        for process in (victim, survivor):
            if process.poll() is None:
                process.kill()
                process.wait()
    assert survivor.returncode == 0, output
    assert victim.returncode == -signal.SIGKILL
    trials_by_number = {t.number: t for t in study.get_trials()}
    states = [t.state for t in trials_by_number.values()]
    # exactly the requested number of complete trials, nothing left running or waiting
    assert states.count(TrialState.COMPLETE) == trials
    assert set(states) == {TrialState.COMPLETE, TrialState.FAIL}
    # the killed trial failed (by its stale heartbeat) and was retried with its parameters
    assert trials_by_number[killed].state == TrialState.FAIL
    retries = [t for t in trials_by_number.values() if t.system_attrs.get("failed_trial") == killed]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == trials_by_number[killed].params
    # no trial lost: every failed one has its complete retry; numbers have no gaps
    assert sorted(trials_by_number) == list(range(len(trials_by_number)))
    for trial in trials_by_number.values():
        if trial.state == TrialState.FAIL:
            assert any(
                r.system_attrs.get("failed_trial") == trial.number
                and r.state == TrialState.COMPLETE
                for r in trials_by_number.values()
            )
    best = study.best_trial
    assert f"best: trial {best.number}," in output
    _assert_best_scores_as_recorded(dirs[1], dataset, best.number)
    return output


@pytest.mark.slow
def test_journal_two_workers_one_killed(mnist_npz, tmp_path):
    _kill_one_worker_mid_trial(tmp_path, mnist_npz, None)


@pytest.mark.slow
def test_postgresql_two_workers_one_killed(mnist_npz, tmp_path, postgres_url):
    _kill_one_worker_mid_trial(tmp_path, mnist_npz, postgres_url)


@pytest.mark.slow
def test_ctrl_c_ends_a_worker_cleanly_and_rerunning_continues(mnist_npz, tmp_path):
    """SIGINT mid-trial: exit 130 with no trial left RUNNING; the interrupted trial is queued
    again with its parameters, and the same command then finishes the study."""
    space = tmp_path / "space.toml"
    space.write_text(SLOW_SPACE_TOML)
    process = _mlp_tune(tmp_path / "t", mnist_npz, space, 3)
    try:
        while not (tmp_path / "t/tune.json").is_file():
            time.sleep(0.05)
        study = _study(tmp_path / "t")
        interrupted = _wait_for_running_trial(study, process.pid, process)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, output
    assert "interrupted: results so far in" in output and "Traceback" not in output
    trials = {t.number: t for t in study.get_trials()}
    assert trials[interrupted].state == TrialState.FAIL
    waiting = [t for t in trials.values() if t.state == TrialState.WAITING]
    # an enqueued trial holds its parameters as "fixed_params" until it runs
    assert [t.system_attrs["fixed_params"] for t in waiting] == [trials[interrupted].params]
    assert not [t for t in trials.values() if t.state == TrialState.RUNNING]

    rerun = _mlp_tune(tmp_path / "t", mnist_npz, space, 3)
    output, _ = rerun.communicate(timeout=240)
    assert rerun.returncode == 0, output
    states = [t.state for t in study.get_trials()]
    assert states.count(TrialState.COMPLETE) == 3 and TrialState.WAITING not in states
    (retried,) = [t for t in study.get_trials() if t.number == waiting[0].number]
    assert retried.state == TrialState.COMPLETE
    assert retried.params == trials[interrupted].params


# -- the command line ---------------------------------------------------------------------------------


def _cli(capsys, *argv):
    from multilayer.cli.main import main

    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (
            ["--storage", "sqlite:///study.db"],
            1,
            "error: SQLite is not supported: parallel workers get 'database is locked'",
        ),
        (
            ["--storage", "postgresql://nobody:pw@127.0.0.1:1/none"],
            1,
            "error: cannot open postgresql+psycopg2://nobody@127.0.0.1:1/none: ",
        ),
        (["--pruner", "mediane"], 2, "expected one of median, hyperband, none, got 'mediane'"),
        (["--timeout", "ten"], 2, "expected a duration such as 90s, 10m or 2h, got 'ten'"),
        (
            ["--trials", "0"],
            2,
            "Invalid value for '--trials': Input should be greater than or equal to 1",
        ),
    ],
)
def test_cli_errors_are_one_line(capsys, tmp_path, argv, code, message):
    result = _cli(capsys, "tune", "--dataset", "mnist", "-o", tmp_path / "t", *argv)
    exit_code, out, err = result
    assert exit_code == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0]
    assert "Traceback" not in out + err


def test_cli_space_error_names_the_file(capsys, tmp_path):
    space = tmp_path / "space.toml"
    space.write_text("[units]\nlow = 64\nhigh = 32\n")
    _, _, err = _cli(capsys, "tune", "--space", space, "-o", tmp_path / "t")
    assert err.strip() == f"error: {space}: [units]: low must be below high, got 64 and 32"


def test_cli_tune_then_report(capsys, mnist_npz, tmp_path):
    space = tmp_path / "space.toml"
    space.write_text("[units]\nchoices = [16]\n[layers]\nvalue = 1\n[epochs]\nvalue = 1\n")
    code, out, err = _cli(
        capsys,
        "tune",
        "--dataset",
        mnist_npz,
        "--space",
        space,
        "--trials",
        "2",
        "-o",
        tmp_path / "t",
    )
    assert code == 0, err
    assert "trials: 2 complete" in out
    assert f"best run: {tmp_path / 't' / 'best'}" in out
    assert f"report: {tmp_path / 't' / 'report' / 'index.html'}" in out
    (tmp_path / "t/report/index.html").unlink()
    code, out, err = _cli(capsys, "report", tmp_path / "t")
    assert code == 0, err
    assert f"report written to {tmp_path / 't' / 'report' / 'index.html'}" in out
    assert (tmp_path / "t/report/index.html").is_file()


# -- tables (mlp train --data --target) ----------------------------------------------------------------


@pytest.fixture
def table_csv(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = (x[:, 0] - 0.5 * x[:, 1] + rng.normal(scale=0.3, size=400) > 0).astype(int)
    lines = ["a,b,c,colour,label"] + [
        f"{x[i, 0]:.4f},{x[i, 1]:.4f},{x[i, 2]:.4f},{('red', 'blue')[i % 2]},{y[i]}"
        for i in range(400)
    ]
    path = tmp_path / "table.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_tune_on_a_table_minimises_the_validation_loss(table_csv, tmp_path):
    import json

    space = {"units": {"choices": [8, 16]}, "epochs": {"value": 3}}
    result = tune(None, tmp_path / "t", data=table_csv, target="label", trials=3, space=space)
    assert result.counts == {"COMPLETE": 3} and result.monitor == "val_loss"
    study = _study(tmp_path / "t")
    assert study.direction == StudyDirection.MINIMIZE
    assert result.best_value == min(t.value for t in study.trials)
    best = study.best_trial
    # the objective is the lowest val_loss of the run, whose weights the run keeps
    history = json.loads((tmp_path / "t/best/history.json").read_text())
    assert best.value == min(history["val_loss"])
    metrics = json.loads((tmp_path / "t/best/metrics.json").read_text())
    assert metrics["test_loss"] == best.user_attrs["test_loss"]
    assert metrics["test_roc_auc"] == best.user_attrs["test_roc_auc"]
    header = (tmp_path / "t/trials.csv").read_text().splitlines()[0]
    assert "test_accuracy,test_loss," in header and "test_roc_auc" in header


def test_table_search_refuses_weight_decay_and_half_a_table(table_csv, tmp_path, capsys):
    with pytest.raises(TuneError, match=r"a table run keeps its recipe's weight_decay: drop"):
        tune(
            None,
            tmp_path / "t",
            data=table_csv,
            target="label",
            space={"weight_decay": {"value": 0.1}},
        )
    _, _, err = _cli(capsys, "tune", "--data", table_csv, "-o", tmp_path / "t")
    assert "a table search needs both --data TABLE and --target COLUMN" in err


def test_diverging_trials_fail_and_the_search_stops_after_too_many(monkeypatch, tmp_path):
    """A trial whose training diverges is FAIL with the reason; its slot goes to a new trial;
    after 3 x trials + 10 failures the search stops with an error, nothing left RUNNING."""
    from multilayer.errors import TrainingError
    from multilayer.tuning import study as study_module

    def diverge(trial, settings):
        raise TrainingError("loss became NaN at epoch 1")

    monkeypatch.setattr(study_module, "run_trial", diverge)
    with pytest.raises(TuneError, match=r"^13 trials failed: see trials.csv$"):
        tune("mnist", tmp_path / "t", trials=1, space=TINY_SPACE, results=False)
    trials = _study(tmp_path / "t").get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL] * 13
    assert {t.user_attrs["error"] for t in trials} == {"loss became NaN at epoch 1"}
