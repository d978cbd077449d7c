"""Hyperparameter search (``mlp tune``) on Optuna: one process, several, or several machines.

    from multilayer.tuning import tune

    result = tune("mnist", "tune/mnist", trials=20, workers=2)
    result.best_value, result.best_params, result.best_dir

Every trial is a normal run directory (``TUNE_DIR/trials/<study>-<number>``) trained by
`multilayer.training` with the trial's recipe fields; pruning stops bad trials after an
epoch; the study lives in a journal file in TUNE_DIR or in PostgreSQL (``storage=``).
How workers share a study, and what happens when one dies: `multilayer.tuning.study`.
Results (trials.csv, best/, the report): `multilayer.tuning.results`. Needs the
``[tune]`` extra (Optuna, psycopg2, matplotlib).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from multilayer.tuning.results import TuneResult, write_results
from multilayer.tuning.space import SpaceError, default_space, load_space, validate_space
from multilayer.tuning.study import (
    PRUNERS,
    TuneError,
    TuneInterrupted,
    TuneSettings,
    read_settings,
    run_worker,
    save_settings,
)

__all__ = [
    "PRUNERS",
    "SpaceError",
    "TuneError",
    "TuneInterrupted",
    "TuneResult",
    "TuneSettings",
    "default_space",
    "load_space",
    "parse_duration",
    "read_settings",
    "run_worker",
    "tune",
    "write_results",
]

TUNE_EXTRA_HINT = "mlp tune needs Optuna: pip install 'multilayer[tune]'"
_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def parse_duration(text: str) -> float:
    """``"90"``, ``"90s"``, ``"10m"``, ``"1.5h"`` -> seconds.

    Raises:
        ValueError: anything else, or a duration that is not positive.
    """
    units = {"s": 1, "m": 60, "h": 3600}
    value = text.strip().lower()
    scale = units.get(value[-1:]) if value else None
    number = value[:-1] if scale is not None else value
    try:
        seconds = float(number) * (scale or 1)
    except ValueError:
        raise ValueError(f"expected a duration such as 90s, 10m or 2h, got {text!r}") from None
    if not 0 < seconds < float("inf"):
        raise ValueError(f"a duration must be greater than 0, got {text!r}")
    return seconds


def worker_threads(workers: int) -> int:
    """BLAS threads per worker: the cores this process may use, shared out (at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        cores = os.cpu_count() or 1
    return max(1, cores // workers)


def _check_optuna() -> None:
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise ImportError(TUNE_EXTRA_HINT) from None


#: Epochs of a table trial by default (the `tabular` recipe's 100, with patience 30, are
#: for one final run; a search wants many shorter ones).
TABLE_EPOCHS = 30


def tune(
    dataset: str | None,
    output: str | Path,
    *,
    data: str | Path | None = None,
    target: str | list[str] | None = None,
    recipe: str | None = None,
    data_dir: str | Path | None = None,
    trials: int = 20,
    timeout: float | None = None,
    workers: int = 1,
    study: str = "multilayer",
    storage: str | None = None,
    space: dict | str | Path | None = None,
    pruner: str = "median",
    heartbeat: int = 10,
    seed: int | None = None,
    log=None,
    results: bool = True,
) -> TuneResult:
    """Search the hyperparameters of ``recipe`` on ``dataset``; write TUNE_DIR (``output``).

    Args:
        dataset: what `multilayer.training.prepare_run` takes: ``"mnist"``, an ``.npz`` path...
        data, target: a CSV/Parquet table and its target column(s) instead of ``dataset``
            (`multilayer.tabular.training`); trials minimise the validation loss.
        recipe: the recipe trials start from (default ``fast``, ``tabular`` for a table).
        trials: finished (COMPLETE or PRUNED) trials the study should have, all workers and
            all runs of the command together: re-running continues up to this number.
        timeout: seconds after which no worker starts a new trial.
        workers: worker processes on this machine (1: this process). Each gets
            ``cores // workers`` BLAS threads.
        study, storage: the study's name, and None for the journal file in TUNE_DIR or a
            ``postgresql://`` URL shared by several machines.
        space: the search space: a dict, the path of a TOML file changing the default one
            (`multilayer.tuning.space`), or None for the default.
        pruner: ``"median"``, ``"hyperband"`` or ``"none"``.
        heartbeat: seconds between heartbeats; a dead worker's trial is retried after 2x.
        seed: the sampler's seed (trials' model seeds derive from it and their number).
        log: called with one line per finished trial.
        results: write trials.csv, best/ and the report at the end.

    Raises:
        TuneInterrupted: Ctrl-C (the results so far are written first).
        TuneError, SpaceError: bad settings, an unreachable database, a failed worker.
    """
    _check_optuna()
    from multilayer.recipes import get_recipe

    if workers < 1:
        raise TuneError(f"workers must be at least 1, got {workers}")
    if data is not None:
        recipe = recipe or "tabular"
        targets = [target] if isinstance(target, str) else list(target or [])
        defaults = default_space("table", epochs=min(get_recipe(recipe).epochs, TABLE_EPOCHS))
    else:
        if dataset is None:
            raise TuneError("give a dataset, or a table with data and target")
        recipe = recipe or "fast"
        targets = None
        defaults = default_space("classification", epochs=get_recipe(recipe).epochs)
    if space is None:
        chosen = defaults
    elif isinstance(space, dict):
        chosen = {**defaults, **validate_space(space)}
    else:
        chosen = load_space(space, defaults)
    table = None if data is None else str(Path(data).resolve())
    settings = TuneSettings(
        tune_dir=str(Path(output)),
        dataset=table or str(dataset),
        data=table,
        target=targets,
        monitor="val_accuracy" if table is None else "val_loss",
        direction="maximize" if table is None else "minimize",
        space=chosen,
        recipe=recipe,
        data_dir=None if data_dir is None else str(data_dir),
        trials=trials,
        timeout=timeout,
        study=study,
        storage=storage,
        pruner=pruner,
        heartbeat=heartbeat,
        seed=seed,
    )
    save_settings(settings)
    interrupted = False
    try:
        if workers == 1:
            run_worker(settings, 0, log=log)
        else:
            _run_processes(settings, workers)
    except KeyboardInterrupt:
        interrupted = True
    result = write_results(settings) if results else None
    if interrupted:
        raise TuneInterrupted()
    if result is None:
        from multilayer.tuning.results import TuneResult as _Result

        return _Result(settings.path, {}, None, None, None, None, None, settings.path, None)
    return result


def _run_processes(settings: TuneSettings, workers: int) -> None:
    """``workers`` processes of `multilayer.tuning.worker`, each with its share of the cores;
    Ctrl-C reaches them (same process group) and they end their trials cleanly."""
    threads = str(worker_threads(workers))
    env = {**os.environ, **dict.fromkeys(_THREAD_VARIABLES, threads)}
    if settings.storage is not None:
        env["MULTILAYER_TUNE_STORAGE"] = settings.storage
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    command = [sys.executable, "-m", "multilayer.tuning.worker", str(settings.path.resolve())]
    # stdout and stderr are the terminal's: a worker prints its trials and its own error
    # line (a pipe left unread could fill up and stall a worker the others wait for)
    processes = [subprocess.Popen([*command, str(index)], env=env) for index in range(workers)]
    try:
        errors = []
        for index, process in enumerate(processes):
            process.wait()
            if process.returncode == 130:
                raise KeyboardInterrupt
            if process.returncode != 0:
                errors.append(f"worker {index} exited with status {process.returncode}")
        if errors:
            raise TuneError("; ".join(errors) + " (its error is printed above)")
    except KeyboardInterrupt:
        # Ctrl-C in a terminal reached the workers too (one process group): give them a
        # moment to queue their trials again before a second SIGINT could cut that short;
        # a SIGINT sent to this process alone is passed on after it.
        grace = time.monotonic() + 10
        while time.monotonic() < grace and any(p.poll() is None for p in processes):
            time.sleep(0.1)
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 60
        for process in processes:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        raise
