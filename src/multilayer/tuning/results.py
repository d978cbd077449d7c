"""The results of a search, written into TUNE_DIR:

    TUNE_DIR/trials.csv          one row per trial: number, state, value, parameters,
                                 test accuracy, epochs, seconds, run directory, host
    TUNE_DIR/best/               a copy of the best trial's run directory, with its report
    TUNE_DIR/report/index.html   optimisation history, parameter importances and parallel
                                 coordinates (Optuna's matplotlib plots), linking best/'s report
    TUNE_DIR/summary.json        the best trial and the counts by state

Any process that can reach the study writes them (``mlp tune`` at its end, ``mlp report
TUNE_DIR`` again at any time). ``best/`` is copied from the best trial's run directory only
where that directory is (the machine that ran the trial); elsewhere the summary says where.
"""

from __future__ import annotations

import csv
import io
import shutil
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multilayer.runs import write_json
from multilayer.tuning.study import TuneSettings, counts
from multilayer.utils.files import atomic_write_bytes

__all__ = ["TuneResult", "trial_rows", "write_results"]

BEST_DIR = "best"
TRIALS_CSV = "trials.csv"
SUMMARY_FILE = "summary.json"
REPORT_DIR = "report"
#: trial user attributes in trials.csv, after the test metrics (``test_*``) the runs recorded
_USER_COLUMNS = ("epochs", "pruned_after_epoch", "train_seconds", "run_dir", "host", "error")


@dataclass
class TuneResult:
    """A search's outcome (`write_results`).

    Attributes:
        counts: trials by state (``{"COMPLETE": 20, "PRUNED": 7, "FAIL": 1}``).
        best_number, best_value, best_params: the best COMPLETE trial (None without one).
        best_test_accuracy: its test accuracy.
        best_dir: ``TUNE_DIR/best`` if it was written here, else None (``note`` says why).
        report: ``TUNE_DIR/report/index.html``, or None (``note`` says why).
    """

    tune_dir: Path
    counts: dict[str, int]
    best_number: int | None
    best_value: float | None
    best_params: dict | None
    best_test_accuracy: float | None
    best_dir: Path | None
    trials_csv: Path
    report: Path | None
    note: str | None = None
    #: what the objective is: "val_accuracy" (maximised) or "val_loss" (minimised, tables)
    monitor: str = "val_accuracy"


def trial_rows(study) -> list[dict]:
    """One dict per trial, in trial order (what trials.csv holds)."""
    names: list[str] = []
    tests: list[str] = []
    for trial in study.get_trials(deepcopy=False):
        names.extend(n for n in trial.params if n not in names)
        tests.extend(k for k in trial.user_attrs if k.startswith("test_") and k not in tests)
    tests.sort(key=lambda k: (k not in ("test_accuracy", "test_loss"), k))
    rows = []
    for trial in study.get_trials(deepcopy=False):
        row = {
            "number": trial.number,
            "state": trial.state.name,
            "value": trial.value,
            "retry_of": trial.system_attrs.get("failed_trial", trial.user_attrs.get("retry_of")),
        }
        row.update({f"param_{n}": trial.params.get(n) for n in names})
        row.update({k: trial.user_attrs.get(k) for k in (*tests, *_USER_COLUMNS)})
        duration = trial.duration
        row["seconds"] = None if duration is None else round(duration.total_seconds(), 3)
        rows.append(row)
    return rows


def _write_csv(path: Path, rows: list[dict]) -> Path:
    buffer = io.StringIO()
    columns = list(rows[0]) if rows else ["number", "state", "value"]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))


def _copy_best(run_dir: Path, tune_dir: Path) -> Path:
    """Copy ``run_dir`` to ``TUNE_DIR/best`` (through a temporary copy, then a rename)."""
    best = tune_dir / BEST_DIR
    staging = tune_dir / f".{BEST_DIR}.tmp"
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(run_dir, staging, ignore=shutil.ignore_patterns("checkpoints"))
    if best.exists():
        shutil.rmtree(best)
    staging.rename(best)
    return best


def _figures(study) -> list:
    """The report's sections: Optuna's matplotlib plots, each a note if it cannot be drawn."""
    import optuna
    from optuna.visualization import matplotlib as plots

    from multilayer.report.html import Section

    sections = []
    specs: list[tuple[str, str, Any]] = [
        (
            "Optimisation history",
            "The objective of every finished trial, and the best so far.",
            plots.plot_optimization_history,
        ),
        (
            "Parameter importances",
            "How much of the objective's variation each parameter explains (fANOVA).",
            plots.plot_param_importances,
        ),
        (
            "Parallel coordinates",
            "Each line a finished trial, through its parameters to its objective.",
            plots.plot_parallel_coordinate,
        ),
    ]
    for title, description, draw in specs:
        png, note = None, None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                axes = draw(study)
            figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
            buffer = io.BytesIO()
            # one axis per parameter: the parallel coordinates need the width
            figure.set_size_inches(
                *((12, 5.5) if draw is plots.plot_parallel_coordinate else (8, 4.5))
            )
            figure.tight_layout()
            figure.savefig(buffer, format="png", dpi=100)
            import matplotlib.pyplot as plt

            plt.close(figure)
            png = buffer.getvalue()
        except (
            ValueError,
            RuntimeError,
            ZeroDivisionError,
            optuna.exceptions.OptunaError,
        ) as error:
            note = f"not drawn: {error}"
        sections.append(Section(title, description, png=png, note=note))
    return sections


def _report(study, settings: TuneSettings, rows: list[dict], summary: dict) -> Path:
    import html

    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:  # no window: draw into PNGs
        matplotlib.use("Agg")
    from multilayer.report.html import Section, render_page

    sections = _figures(study)
    best_link = settings.path / BEST_DIR / "report" / "index.html"
    link = (
        '<p><a href="../best/report/index.html">The best trial\'s run report</a></p>'
        if best_link.is_file()
        else "<p>No best run here (see summary.json).</p>"
    )
    header = ["number", "state", "value", "test_accuracy", "test_loss", "epochs", "seconds"]
    params = [k for k in (rows[0] if rows else {}) if k.startswith("param_")]
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in header + params)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape('' if row.get(k) is None else _short(row.get(k)))}</td>"
            for k in header + params
        )
        + "</tr>"
        for row in rows
    )
    table = f"{link}<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"
    sections.append(Section("Trials", "Every trial of the study (trials.csv).", table=table))
    best = summary["best"] or {}
    headline = [
        ("best " + settings.monitor, _short(best.get("value"))),
        ("its test accuracy", _short(best.get("test_accuracy"))),
        (
            "complete / pruned / failed",
            "{COMPLETE} / {PRUNED} / {FAIL}".format_map(_Zero(summary["counts"])),
        ),
    ]
    page = render_page(
        f"Search {settings.study!r}",
        f"{settings.dataset}, recipe {settings.recipe}, {settings.trials} trials, "
        f"pruner {settings.pruner}",
        headline,
        sections,
        config=settings.to_json(),
        metrics=None,
    )
    path = settings.path / REPORT_DIR / "index.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, page.encode("utf-8"))
    return path


class _Zero(dict):
    def __missing__(self, key):
        return 0


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "–" if value is None else str(value)


def write_results(settings: TuneSettings, study=None, report: bool = True) -> TuneResult:
    """trials.csv, summary.json, best/ (with its run report) and the search's report.

    ``study`` is opened from ``settings`` when not given. Without matplotlib, no report is
    written and ``note`` says so.
    """
    from multilayer.tuning.study import open_backend, open_study

    backend = None
    if study is None:
        backend = open_backend(settings)
        study = open_study(settings, backend)
    try:
        rows = trial_rows(study)
        trials_csv = _write_csv(settings.path / TRIALS_CSV, rows)
        state_counts = counts(study)
        complete = [r for r in rows if r["state"] == "COMPLETE" and r["value"] is not None]
        best_row = None
        if complete:
            pick = max if settings.direction == "maximize" else min
            best_row = pick(complete, key=lambda r: r["value"])
        best_dir, note = None, None
        if best_row is not None:
            run_dir = Path(best_row["run_dir"] or "")
            if best_row["run_dir"] and (run_dir / "model.safetensors").is_file():
                best_dir = _copy_best(run_dir, settings.path)
            else:
                note = (
                    f"the best trial ({best_row['number']}) ran on {best_row['host']}: its "
                    f"run directory {best_row['run_dir']} is there"
                )
        else:
            note = "no trial has completed yet"
        params = (
            None
            if best_row is None
            else {k[len("param_") :]: v for k, v in best_row.items() if k.startswith("param_")}
        )
        summary = {
            "study": settings.study,
            "counts": state_counts,
            "best": None
            if best_row is None
            else {
                "number": best_row["number"],
                "value": best_row["value"],
                "params": params,
                "test_accuracy": best_row.get("test_accuracy"),
                "test": {k: v for k, v in best_row.items() if k.startswith("test_")},
                "run_dir": best_row["run_dir"],
                "host": best_row["host"],
            },
            "note": note,
        }
        page = None
        if report:
            try:
                if best_dir is not None and settings.data is None:  # image runs' report
                    from multilayer.datasets import load_dataset
                    from multilayer.report import TestData, write_report

                    data = load_dataset(settings.dataset, settings.data_dir)
                    write_report(
                        best_dir, test_data=TestData(data.x_test, data.y_test, data.class_names)
                    )
                page = _report(study, settings, rows, summary)
            except ImportError as error:
                note = f"no report: {error}"
                summary["note"] = note
        write_json(settings.path / SUMMARY_FILE, summary)
    finally:
        if backend is not None:
            backend.close()
    return TuneResult(
        tune_dir=settings.path,
        counts=state_counts,
        best_number=None if best_row is None else best_row["number"],
        best_value=None if best_row is None else best_row["value"],
        best_params=params,
        best_test_accuracy=None if best_row is None else best_row.get("test_accuracy"),
        monitor=settings.monitor,
        best_dir=best_dir,
        trials_csv=trials_csv,
        report=page,
        note=note,
    )
