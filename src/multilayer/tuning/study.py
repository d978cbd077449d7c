"""The study behind ``mlp tune``: its storage, the lock, heartbeats, and one worker's loop.

Storage:

- default: a journal file, ``TUNE_DIR/journal.log`` (Optuna's `JournalStorage` with its file
  backend): an append-only log that several processes on one machine share safely, with
  no server (SQLite is not used: parallel writers get "database is locked").
- ``postgresql://user@host:port/db``: Optuna's `RDBStorage`, shared by any number of
  machines.

Exactly ``trials`` trials end COMPLETE or PRUNED, however many workers run: a worker
starts (or takes over) a trial only while holding the study's lock — ``flock`` on
``TUNE_DIR/study.lock`` for a journal, a PostgreSQL advisory lock for a database — and only
if the finished, running and waiting trials number fewer than ``trials``.

A worker killed mid-trial stops sending heartbeats; once its trial's last heartbeat is
older than the grace period (twice the interval), the next worker to look marks it FAIL
and queues a WAITING copy with the same parameters (Optuna's
`RetryHeartbeatStaleTrialCallback`), which the next free worker runs. PostgreSQL uses
Optuna's own heartbeats (`RDBStorage(heartbeat_interval=...)`); the journal, which has
none, gets the same rule from a heartbeat time kept in the trial's system attributes.

Ctrl-C ends a worker cleanly: its running trial is marked FAIL and queued again with the
same parameters, so re-running the command continues the study where it stopped.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import socket
import sys
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from multilayer.callbacks import Callback
from multilayer.errors import MultilayerError, TrainingError
from multilayer.tuning.space import recipe_values, sample, validate_space

__all__ = [
    "JOURNAL_FILE",
    "PRUNERS",
    "SETTINGS_FILE",
    "TuneError",
    "TuneInterrupted",
    "TuneSettings",
    "WorkerSummary",
    "open_study",
    "run_worker",
]

JOURNAL_FILE = "journal.log"
LOCK_FILE = "study.lock"
SETTINGS_FILE = "tune.json"
TRIALS_DIR = "trials"
PRUNERS = ("median", "hyperband", "none")
#: The system attribute holding a journal trial's last heartbeat (Unix time).
HEARTBEAT_ATTR = "multilayer:heartbeat"
#: How many times a trial whose worker died is run again before its slot goes to a new one.
MAX_RETRY = 3


class TuneError(MultilayerError, RuntimeError):
    """A search that cannot run: a bad storage URL, a study of another kind, failing trials."""


class TuneInterrupted(KeyboardInterrupt):
    """Ctrl-C: the worker stopped; its running trial was queued again."""


@dataclass
class TuneSettings:
    """Everything a worker needs, saved as ``TUNE_DIR/tune.json`` (without a password).

    Attributes:
        tune_dir: where the journal, the trials' run directories and the results go.
        dataset: what ``mlp train --dataset`` takes (a name or an ``.npz`` path).
        data, target: a table and its target column(s) instead (``mlp train --data
            --target``); trials then minimise the validation loss (any task).
        recipe: the recipe whose other fields every trial keeps.
        trials: how many trials of the study end COMPLETE or PRUNED (all workers together).
        timeout: seconds after which a worker starts no new trial (None: no limit).
        study: the study's name in the storage.
        storage: None for the journal file in ``tune_dir``, else a ``postgresql://`` URL.
        space: the search space (`multilayer.tuning.space`).
        pruner: "median", "hyperband" or "none".
        heartbeat: seconds between heartbeats; a trial is stale after twice that.
        seed: the sampler's seed (each worker adds its index); None for a random one.
    """

    tune_dir: str
    dataset: str
    space: dict
    recipe: str = "fast"
    data_dir: str | None = None
    trials: int = 20
    timeout: float | None = None
    study: str = "multilayer"
    storage: str | None = None
    pruner: str = "median"
    heartbeat: int = 10
    seed: int | None = None
    monitor: str = "val_accuracy"
    direction: str = "maximize"
    #: a table (CSV/Parquet) and its target column(s), instead of ``dataset``
    data: str | None = None
    target: list[str] | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise TuneError(f"trials must be at least 1, got {self.trials}")
        if self.timeout is not None and not self.timeout > 0:
            raise TuneError(f"timeout must be greater than 0, got {self.timeout}")
        if self.pruner not in PRUNERS:
            from multilayer.utils.naming import unknown_name_error

            raise TuneError(str(unknown_name_error("pruner", self.pruner, PRUNERS)))
        if self.heartbeat < 1:
            raise TuneError(f"heartbeat must be at least 1 second, got {self.heartbeat}")
        if not self.study or len(self.study) > 512:
            raise TuneError("the study name must be 1 to 512 characters")
        if self.storage is not None:
            self.storage = check_storage_url(self.storage)
        self.space = validate_space(self.space)
        if (self.data is None) != (self.target is None):
            raise TuneError("a table needs both data and target (--data FILE --target COLUMN)")
        if self.target is not None and (
            not self.target or not all(isinstance(t, str) and t for t in self.target)
        ):
            raise TuneError(f"target must be one or more column names, got {self.target!r}")
        if self.data is not None:
            unsupported = sorted(set(self.space) & {"weight_decay", "optimizer"})
            if unsupported:
                raise TuneError(
                    f"a table run keeps its recipe's {', '.join(unsupported)}: drop "
                    f"{', '.join(f'[{name}]' for name in unsupported)} from the space"
                )

    @property
    def path(self) -> Path:
        return Path(self.tune_dir)

    def to_json(self) -> dict:
        data = asdict(self)
        data["storage"] = None if self.storage is None else redact(self.storage)
        return data

    @classmethod
    def from_json(cls, data: dict, storage: str | None = None) -> TuneSettings:
        """Settings read back; ``storage`` replaces the saved (password-less) URL."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if storage is not None:
            known["storage"] = storage
        try:
            return cls(**known)
        except TypeError as error:
            raise TuneError(f"malformed {SETTINGS_FILE}: {error}") from None


def check_storage_url(url: str) -> str:
    """``url`` if it names PostgreSQL; a plain ``postgresql://`` gets the driver the
    ``[tune]`` extra installs (``postgresql+psycopg2://``; SQLAlchemy 2.1 would pick psycopg 3).

    Raises:
        TuneError: any other kind of URL, with what to use instead.
    """
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme == "postgresql":
        return "postgresql+psycopg2://" + url.split("://", 1)[1]
    if scheme in ("postgresql+psycopg2", "postgresql+psycopg"):
        return url
    if scheme.startswith("sqlite"):
        raise TuneError(
            "SQLite is not supported: parallel workers get 'database is locked'; leave out "
            "--storage for the journal file in TUNE_DIR (one machine), or use "
            "postgresql://user@host:port/database (several machines)"
        )
    raise TuneError(
        f"unsupported storage {redact(url)!r}: expected postgresql://user@host:port/database "
        "(or no --storage for the journal file in TUNE_DIR)"
    )


def redact(url: str) -> str:
    """``url`` without its password: ``postgresql://user@host/db``."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True).replace(":***@", "@")
    except Exception:
        return url.split("://", 1)[0] + "://..."


# -- storage, lock, heartbeats -----------------------------------------------------------------
class _FileLock:
    """``flock`` on a file beside the journal: held by one process of the machine at a time,
    released by the kernel if the process dies."""

    def __init__(self, path: Path):
        self.path = path
        self._file: Any = None

    @contextlib.contextmanager
    def held(self, key: int | None = None) -> Iterator[None]:
        if self._file is None:
            self._file = open(self.path, "a+b")  # noqa: SIM115 - kept open for the worker's life
        fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


#: The advisory-lock key under which Optuna's tables are created ("mlpt" "schm").
_SCHEMA_KEY = 0x6D6C7074_7363686D - (1 << 63)


class _AdvisoryLock:
    """A PostgreSQL session advisory lock keyed by the study's name, on a connection of its
    own: the server releases it if the worker's connection drops (a killed worker)."""

    def __init__(self, url: str, study: str):
        import sqlalchemy
        from sqlalchemy.pool import NullPool

        self._engine = sqlalchemy.create_engine(url, poolclass=NullPool)
        # a signed 64-bit key from the study's name ("mlpt" in the high half)
        self._key = (0x6D6C7074 << 32 | zlib.crc32(study.encode())) - (1 << 63)
        self._connection: Any = None

    @contextlib.contextmanager
    def held(self, key: int | None = None) -> Iterator[None]:
        import sqlalchemy

        key = self._key if key is None else key
        if self._connection is None:
            self._connection = self._engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            )
        self._connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
        try:
            yield
        finally:
            self._connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._engine.dispose()


@dataclass
class Backend:
    """The storage of a study and the rules that go with it (see the module docstring)."""

    storage: Any
    lock: Any
    beat: Callable[[int], None]
    fail_stale: Callable[[Any], None]
    kind: str

    def close(self) -> None:
        self.lock.close()


def _retry_callback():
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)


def open_backend(settings: TuneSettings) -> Backend:
    """The storage, lock and heartbeat rule of ``settings`` (creating the journal's
    directory if needed).

    Raises:
        TuneError: the database cannot be reached.
    """
    import optuna

    if settings.storage is None:
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        settings.path.mkdir(parents=True, exist_ok=True)
        journal = JournalStorage(JournalFileBackend(str(settings.path / JOURNAL_FILE)))
        grace = 2 * settings.heartbeat
        retry = _retry_callback()

        def beat(trial_id: int) -> None:
            journal.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())

        def fail_stale(study) -> None:
            now = time.time()
            running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
            for trial in running:
                last = trial.system_attrs.get(HEARTBEAT_ATTR)
                if last is None and trial.datetime_start is not None:
                    last = trial.datetime_start.timestamp()
                if last is None or now - float(last) <= grace:
                    continue
                try:
                    failed = journal.set_trial_state_values(
                        trial._trial_id, state=optuna.trial.TrialState.FAIL
                    )
                except optuna.exceptions.UpdateFinishedTrialError:
                    continue
                if failed:
                    retry(study, copy.deepcopy(journal.get_trial(trial._trial_id)))

        return Backend(journal, _FileLock(settings.path / LOCK_FILE), beat, fail_stale, "journal")

    lock = None
    try:
        lock = _AdvisoryLock(settings.storage or "", settings.study)
        # Optuna creates its tables on first use; two workers doing it at once collide
        # (a unique violation in pg_type), so one at a time, under a database-wide key.
        with lock.held(_SCHEMA_KEY), warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.RDBStorage(
                settings.storage or "",
                engine_kwargs={"pool_size": 2, "max_overflow": 2, "pool_pre_ping": True},
                heartbeat_interval=settings.heartbeat,
                grace_period=2 * settings.heartbeat,
                heartbeat_stale_trial_callback=_retry_callback(),
            )
    except Exception as error:  # sqlalchemy's OperationalError, ImportError of the driver...
        if lock is not None:
            lock.close()
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise TuneError(f"cannot open {redact(settings.storage or '')}: {reason}") from None

    def fail_stale_rdb(study) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)

    return Backend(storage, lock, storage.record_heartbeat, fail_stale_rdb, "postgresql")


def make_pruner(name: str, epochs: int):
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1))
    return optuna.pruners.NopPruner()


def open_study(settings: TuneSettings, backend: Backend | None = None, worker: int = 0):
    """The study of ``settings`` (created on first use), with its sampler and pruner."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    backend = backend or open_backend(settings)
    seed = None if settings.seed is None else settings.seed + worker
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True, n_startup_trials=5)
    epochs = settings.space.get("epochs", {}).get("value", 1)
    try:
        with backend.lock.held():
            return optuna.create_study(
                storage=backend.storage,
                study_name=settings.study,
                direction="maximize" if settings.direction == "maximize" else "minimize",
                sampler=sampler,
                pruner=make_pruner(settings.pruner, epochs if isinstance(epochs, int) else 1),
                load_if_exists=True,
            )
    except ValueError as error:
        raise TuneError(f"study {settings.study!r}: {error}") from None


# -- one trial ------------------------------------------------------------------------------------
class PruningCallback(Callback):
    """Reports ``monitor`` to the Optuna ``trial`` after each epoch and stops training
    (``fit`` ends normally and the run directory is written) once the pruner says so;
    ``pruned_after`` is then the number of epochs run."""

    def __init__(self, trial, monitor: str):
        super().__init__()
        self.trial = trial
        self.monitor = monitor
        self.pruned_after: int | None = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise TuneError(
                f"the metric {self.monitor!r} is not among the epoch's logs {sorted(logs)}"
            )
        self.trial.report(float(logs[self.monitor]), epoch)
        if self.trial.should_prune():
            self.pruned_after = epoch + 1
            self.trained_model().stop_training = True


def trial_run_dir(settings: TuneSettings, number: int) -> Path:
    """``TUNE_DIR/trials/<study>-<number>``: every trial is a normal run directory."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in settings.study)[:64]
    return settings.path / TRIALS_DIR / f"{safe}-{number:04d}"


def run_trial(trial, settings: TuneSettings) -> tuple[float, bool]:
    """Train one trial's run; returns ``(value, pruned)`` and records the run in the trial's
    user attributes (``run_dir``, ``test_accuracy``, ``epochs``...)."""
    from multilayer.recipes import get_recipe

    values = sample(trial, settings.space)
    fields = recipe_values(values, get_recipe(settings.recipe).hidden)
    output = trial_run_dir(settings, trial.number)
    trial.set_user_attr("run_dir", str(output.resolve()))
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid())
    seed = (settings.seed or 0) * 100_003 + trial.number
    if settings.data is not None:
        return _run_table_trial(trial, settings, fields, seed, output)
    from multilayer.recipes import build_model
    from multilayer.training import OVERRIDABLE, prepare_run

    prepared = prepare_run(
        settings.recipe,
        settings.dataset,
        overrides={k: v for k, v in fields.items() if k in OVERRIDABLE},
        data_dir=settings.data_dir,
        seed=seed,
        output=output,
    )
    extra = {k: v for k, v in fields.items() if k not in OVERRIDABLE}
    if extra:  # dropout and weight decay: recipe fields that `mlp train` has no flag for
        prepared.recipe = prepared.recipe.with_overrides(**extra)
        prepared.model = build_model(
            prepared.recipe,
            prepared.dataset.x_train.shape[1:],
            prepared.dataset.num_classes,
            prepared.steps_per_epoch,
            seed=prepared.seed,
        )
    monitor = settings.monitor if prepared.validation is not None else "accuracy"
    pruning = PruningCallback(trial, monitor)
    prepared.callbacks.append(pruning)
    result = prepared.run(
        verbose=0, report=False, resume_hint="re-run the same mlp tune command: it continues"
    )
    history = result.history.history
    value = float(history[monitor][-1])
    _record(trial, result.metrics)
    if pruning.pruned_after is not None:
        trial.set_user_attr("pruned_after_epoch", pruning.pruned_after)
    return value, pruning.pruned_after is not None


# -- one worker ----------------------------------------------------------------------------------
@dataclass
class WorkerSummary:
    """What one worker did: trials it finished by state, and why it stopped."""

    complete: int = 0
    pruned: int = 0
    failed: int = 0
    stopped: str = ""


class _Heartbeat:
    """Calls ``beat(trial_id)`` every ``interval`` seconds in a thread until stopped."""

    def __init__(self, beat: Callable[[int], None], trial_id: int, interval: float):
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, args=(beat, trial_id, interval), daemon=True
        )
        self._thread.start()

    def _loop(self, beat, trial_id, interval) -> None:
        while not self._stop.wait(interval):
            with contextlib.suppress(Exception):  # a missed beat is retried next time
                beat(trial_id)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _run_table_trial(
    trial, settings: TuneSettings, fields: dict, seed: int, output: Path
) -> tuple[float, bool]:
    """A table trial (`multilayer.tabular.training`): the objective is the lowest validation
    loss, that of the weights the run keeps (its best epoch)."""
    from multilayer.tabular.training import prepare_table_run

    prepared = prepare_table_run(
        settings.data,
        settings.target or [],
        recipe=settings.recipe,
        overrides=fields,
        seed=seed,
        output=output,
    )
    if prepared.validation is None:
        raise TuneError("a table search needs a validation split (the recipe's is 0)")
    pruning = PruningCallback(trial, "val_loss")
    prepared.callbacks.append(pruning)
    result = prepared.run(verbose=0)
    value = float(min(result.history.history["val_loss"]))
    _record(trial, result.metrics)
    if pruning.pruned_after is not None:
        trial.set_user_attr("pruned_after_epoch", pruning.pruned_after)
    return value, pruning.pruned_after is not None


def _record(trial, metrics: dict) -> None:
    """The run's scalar test metrics, epochs and seconds as the trial's user attributes."""
    for key, value in metrics.items():
        scalar = isinstance(value, (int, float)) and not isinstance(value, bool)
        if (key.startswith("test_") and (scalar or value is None)) or key in (
            "epochs",
            "train_seconds",
            "task",
        ):
            trial.set_user_attr(key, value)


def counts(study) -> dict[str, int]:
    """The study's trials by state name (``{"COMPLETE": 3, "RUNNING": 1, ...}``)."""
    result: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        result[trial.state.name] = result.get(trial.state.name, 0) + 1
    return result


def run_worker(
    settings: TuneSettings,
    worker: int = 0,
    log: Callable[[str], None] | None = None,
) -> WorkerSummary:
    """Run trials of the study until it has ``settings.trials`` finished ones (or the
    timeout passes); see the module docstring for the rules.

    Raises:
        TuneInterrupted: Ctrl-C (the running trial was queued again).
        TuneError: the storage cannot be used, or trials keep failing.
        DataError, DatasetNotFoundError, RecipeError: the data or recipe cannot be used.
    """
    from optuna.trial import TrialState

    say = log or (lambda line: None)
    backend = open_backend(settings)
    study = open_study(settings, backend, worker)
    summary = WorkerSummary()
    deadline = None if settings.timeout is None else time.monotonic() + settings.timeout
    poll = min(1.0, settings.heartbeat / 2)
    finished_states = (TrialState.COMPLETE, TrialState.PRUNED)
    try:
        while True:
            if deadline is not None and time.monotonic() >= deadline:
                summary.stopped = "timeout"
                break
            with backend.lock.held():
                backend.fail_stale(study)
                states = counts(study)
                done = sum(states.get(s.name, 0) for s in finished_states)
                running, waiting = states.get("RUNNING", 0), states.get("WAITING", 0)
                if done >= settings.trials:
                    summary.stopped = "done"
                    break
                errors = states.get("FAIL", 0)
                if errors >= 3 * settings.trials + 10:
                    raise TuneError(f"{errors} trials failed: see trials.csv")
                trial = None
                if waiting or done + running < settings.trials:
                    with warnings.catch_warnings():
                        # Optuna's note that heartbeats are meant for Study.optimize: this
                        # loop sends them itself (`_Heartbeat`), as optimize would
                        warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)
                        trial = study.ask()
                    backend.beat(trial._trial_id)
            if trial is None:  # the others run the last trials: wait, in case one dies
                time.sleep(poll)
                continue
            heartbeat = _Heartbeat(backend.beat, trial._trial_id, settings.heartbeat)
            try:
                value, pruned = run_trial(trial, settings)
            except (KeyboardInterrupt, TuneInterrupted):
                heartbeat.stop()
                _requeue(study, backend, trial)
                summary.stopped = "interrupted"
                raise TuneInterrupted() from None
            except TrainingError as error:  # diverged: this trial fails, the search goes on
                heartbeat.stop()
                trial.set_user_attr("error", str(error)[:500])
                study.tell(trial, state=TrialState.FAIL)
                summary.failed += 1
                say(f"trial {trial.number} failed: {error}")
                continue
            except BaseException as error:
                heartbeat.stop()
                with contextlib.suppress(Exception):
                    trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:500])
                    study.tell(trial, state=TrialState.FAIL)
                raise
            heartbeat.stop()
            if pruned:
                study.tell(trial, state=TrialState.PRUNED)
                summary.pruned += 1
                say(f"trial {trial.number} pruned: {settings.monitor} {value:.4f}")
            else:
                study.tell(trial, value)
                summary.complete += 1
                say(f"trial {trial.number} complete: {settings.monitor} {value:.4f}")
    finally:
        backend.close()
    return summary


def _requeue(study, backend: Backend, trial) -> None:
    """Ctrl-C: mark ``trial`` FAIL and queue a WAITING trial with its parameters (under the
    lock, so that no other worker counts the gap)."""
    from optuna.trial import TrialState

    with contextlib.suppress(Exception), backend.lock.held():
        trial.set_user_attr("error", "interrupted (Ctrl-C); queued again")
        study.tell(trial, state=TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})


# -- worker processes ----------------------------------------------------------------------------
def save_settings(settings: TuneSettings) -> Path:
    from multilayer.runs import write_json

    settings.path.mkdir(parents=True, exist_ok=True)
    return write_json(settings.path / SETTINGS_FILE, settings.to_json())


def read_settings(tune_dir: str | Path, storage: str | None = None) -> TuneSettings:
    """The settings saved in ``TUNE_DIR/tune.json``.

    Raises:
        FileNotFoundError: not a directory written by ``mlp tune``.
        TuneError: a malformed file.
    """
    path = Path(tune_dir) / SETTINGS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{tune_dir}: no {SETTINGS_FILE}; not a directory of mlp tune")
    if path.stat().st_size > 1 << 20:
        raise TuneError(f"{path}: too large for a settings file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise TuneError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise TuneError(f"{path}: expected a JSON object")
    if storage is None and data.get("storage"):
        storage = os.environ.get("MULTILAYER_TUNE_STORAGE") or data["storage"]
    return TuneSettings.from_json(data, storage)


def worker_main(argv: list[str] | None = None) -> int:
    """``python -m multilayer.tuning.worker TUNE_DIR INDEX``: one worker process spawned by
    `multilayer.tuning.tune` (the storage URL, with its password, comes in the environment
    as ``MULTILAYER_TUNE_STORAGE``)."""
    args = sys.argv[1:] if argv is None else argv
    settings = read_settings(args[0])
    worker = int(args[1])
    try:
        run_worker(
            settings, worker, log=lambda line: print(f"[worker {worker}] {line}", flush=True)
        )
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 1
    return 0
