"""Two revisions of multilayer side by side: is the new code as fast and as lean as the old?

Usage (from the repository root, ``MULTILAYER_DATA`` naming the directory holding ``mnist/``)::

    python -m benchmarks.revisions --base 2bfe886              # head: this checkout
    python -m benchmarks.revisions --base 2bfe886 --head main  # head: another revision
    python -m benchmarks.revisions --base v0 --head /path/to/a/checkout
    MULTILAYER_SMOKE=1 python -m benchmarks.revisions --base HEAD  # seconds, into a temp dir

A revision is a git revision of this repository (its ``src/`` exported with ``git archive``
into a temporary directory) or a directory holding ``src/multilayer``. Every measurement
runs in a fresh process (`benchmarks/revision_worker.py`) with that revision's ``src/`` on
``PYTHONPATH`` and one BLAS thread, the two revisions alternating (the order swaps each
repetition) so that a slow spell of the shared machine hits both. Measured, each a median
over repetitions with its min-max spread:

* seconds per epoch of the tutorial's 784-512-768-10 network at batch 128/256/512, wall
  and CPU time, from a fixed number of steps (``--steps``) scaled to 60,000 images;
* ``predict`` over the 10,000 test images and one image at a time;
* peak RSS of the training process; ``import multilayer`` in a fresh interpreter.

Writes ``benchmarks/results/revisions-<date>.json`` and prints a table of ratios head/base
(below 1: head is faster or smaller). On a machine shared with other jobs, read the CPU
times: wall times include waiting for a core.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from benchmarks.machine import machine_description, smoke_directory, smoke_from_environment

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().with_name("revision_worker.py")
ONE_THREAD = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
}
IMPORT_CODE = (
    "import time; w, c = time.perf_counter(), time.process_time(); import multilayer; "
    "print(time.perf_counter() - w, time.process_time() - c, multilayer.__file__)"
)


class RevisionError(RuntimeError):
    """A revision that cannot be exported or does not hold ``src/multilayer``."""


def _git(*args: str) -> str:
    completed = subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise RevisionError(f"git {' '.join(args)}: {completed.stderr.strip()}")
    return completed.stdout.strip()


def materialise(spec: str, scratch: Path, name: str) -> dict:
    """The ``src`` directory of revision ``spec``: an existing directory as it is, otherwise
    the git revision's ``src/`` exported into ``scratch/name``."""
    directory = Path(spec)
    if directory.is_dir():
        src = directory.resolve() / "src"
        if not (src / "multilayer" / "__init__.py").is_file():
            raise RevisionError(f"{spec}: no src/multilayer/__init__.py in this directory")
        out = {"spec": spec, "kind": "directory", "src": str(src)}
        if directory.resolve() == ROOT:
            # this checkout: which commit, and whether src/ differs from it
            try:
                out["commit"] = _git("rev-parse", "HEAD")
                out["src_modified"] = bool(_git("status", "--porcelain", "--", "src"))
            except RevisionError:
                pass  # not a git checkout
        return out
    try:
        commit = _git("rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}")
    except RevisionError:
        raise RevisionError(
            f"{spec}: neither a directory nor a commit of the repository at {ROOT}"
        ) from None
    target = scratch / name
    target.mkdir()
    archive = target / "src.tar"
    _git("archive", "--format=tar", f"--output={archive}", commit, "src")
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    archive.unlink()
    src = target / "src"
    if not (src / "multilayer" / "__init__.py").is_file():
        raise RevisionError(f"{spec}: the revision has no src/multilayer/__init__.py")
    subject = _git("log", "-1", "--format=%s", commit)
    return {"spec": spec, "kind": "git", "commit": commit, "subject": subject, "src": str(src)}


def _environment(src: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(ONE_THREAD, PYTHONPATH=src)
    return env


def _check_imported(revision: dict, path: str) -> None:
    # The revision's own code, not the editable install of this checkout, must be measured.
    if not Path(path).resolve().is_relative_to(Path(revision["src"]).resolve()):
        raise RevisionError(f"{revision['spec']}: imported multilayer from {path}")


def run_worker(revision: dict, task: dict, timeout: float = 1800) -> dict:
    completed = subprocess.run(
        [sys.executable, str(WORKER), json.dumps(task)],
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
        env=_environment(revision["src"]),
        timeout=timeout,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    if completed.returncode != 0 or not lines:
        tail = (completed.stderr or completed.stdout)[-2000:]
        raise RevisionError(
            f"{revision['spec']}: worker failed (exit {completed.returncode}):\n{tail}"
        )
    result = json.loads(lines[-1][len("RESULT ") :])
    _check_imported(revision, result.pop("multilayer_file"))
    return result


def measure_import(revision: dict) -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", IMPORT_CODE],
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
        env=_environment(revision["src"]),
        timeout=300,
    )
    if completed.returncode != 0:
        raise RevisionError(f"{revision['spec']}: import multilayer failed:\n{completed.stderr}")
    wall, cpu, path = completed.stdout.split()
    _check_imported(revision, path)
    return {"wall_seconds": float(wall), "cpu_seconds": float(cpu)}


def _stats(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def metrics(runs: dict) -> dict[str, dict]:
    """Every measured quantity of one revision: ``{name: {"unit", "values"}}``."""
    out: dict[str, dict] = {}

    def add(name: str, unit: str, values: list[float]) -> None:
        out[name] = {"unit": unit, "values": values}

    for i, row in enumerate(runs["train"][0]["rows"]):
        b = row["batch_size"]
        for clock in ("cpu", "wall"):
            key = f"epoch_{clock}_seconds"
            add(f"s/epoch batch {b} ({clock})", "s", [run["rows"][i][key] for run in runs["train"]])
    images = runs["predict"][0]["images"]
    for clock in ("cpu", "wall"):
        add(
            f"predict {images:,} images ({clock})",
            "s",
            [run[f"predict_{clock}_seconds"] for run in runs["predict"]],
        )
    for clock in ("cpu", "wall"):
        add(
            f"predict 1 image ({clock})",
            "ms",
            [run[f"latency_{clock}_ms"] for run in runs["predict"]],
        )
    add("peak RSS of training", "MB", [run["peak_rss_mb"] for run in runs["train"]])
    for clock in ("cpu", "wall"):
        add(
            f"import multilayer ({clock})", "s", [run[f"{clock}_seconds"] for run in runs["import"]]
        )
    return out


def summarise(runs: dict) -> list[dict]:
    """One row per quantity: base and head median and spread, and the ratio head/base."""
    base, head = metrics(runs["base"]), metrics(runs["head"])
    rows = []
    for name, measured in base.items():
        b, h = _stats(measured["values"]), _stats(head[name]["values"])
        rows.append(
            {
                "metric": name,
                "unit": measured["unit"],
                "base": b,
                "head": h,
                "ratio": h["median"] / b["median"] if b["median"] > 0 else None,
            }
        )
    return rows


def _number(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def table(rows: list[dict]) -> str:
    """The markdown table of `summarise`'s rows."""
    lines = [
        "| quantity | base: median (min-max) | head: median (min-max) | head/base |",
        "|---|---|---|---|",
    ]
    for row in rows:
        cells = [
            f"{_number(row[side]['median'])} ({_number(row[side]['min'])}-"
            f"{_number(row[side]['max'])}) {row['unit']}"
            for side in ("base", "head")
        ]
        ratio = "n/a" if row["ratio"] is None else f"{row['ratio']:.3f}"
        lines.append(f"| {row['metric']} | {cells[0]} | {cells[1]} | {ratio} |")
    return "\n".join(lines)


def compare(
    base: str,
    head: str = str(ROOT),
    *,
    repeats: int = 5,
    steps: int = 469,
    batch_sizes: tuple[int, ...] = (128, 256, 512),
    smoke: bool = False,
    log=print,
) -> dict:
    """Measure revisions ``base`` and ``head`` side by side; the results as one JSON-ready
    dict (``summary``: `summarise`'s rows). Raises `RevisionError` for a revision that
    cannot be exported or whose worker fails."""
    if smoke:
        repeats, steps = 1, 2
    sizes = {"n_train": 2048, "n_test": 500} if smoke else {}
    started = time.perf_counter()
    machine = machine_description()
    train = {
        "task": "train",
        "batch_sizes": list(batch_sizes),
        "steps": steps,
        "warmup_steps": 1 if smoke else 5,
        **sizes,
    }
    predict = {
        "task": "predict",
        "repeats": 1 if smoke else 5,
        "latency_calls": 5 if smoke else 200,
        **sizes,
    }
    with tempfile.TemporaryDirectory(prefix="multilayer-revisions-") as scratch:
        revisions = {
            "base": materialise(base, Path(scratch), "base"),
            "head": materialise(head, Path(scratch), "head"),
        }
        runs: dict = {side: {"import": [], "train": [], "predict": []} for side in revisions}
        for rep in range(repeats):
            order = ["base", "head"] if rep % 2 == 0 else ["head", "base"]
            for side in order:
                revision = revisions[side]
                runs[side]["import"].append(measure_import(revision))
                runs[side]["train"].append(run_worker(revision, train))
                runs[side]["predict"].append(run_worker(revision, predict))
                log(
                    f"rep {rep} {side}: "
                    + ", ".join(
                        f"{row['batch_size']}: {row['epoch_cpu_seconds']:.2f} s cpu"
                        for row in runs[side]["train"][-1]["rows"]
                    )
                )
    for revision in revisions.values():
        del revision["src"]  # a temporary directory, gone now
    return {
        "smoke": smoke,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {**machine, "load_average_at_end": os.getloadavg()[0]},
        "revisions": revisions,
        "settings": {"repeats": repeats, "train": train, "predict": predict, "blas": ONE_THREAD},
        "runs": runs,
        "summary": summarise(runs),
        "wall_seconds": time.perf_counter() - started,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.revisions", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--base", required=True, help="git revision or directory (the old code)")
    parser.add_argument("--head", default=str(ROOT), help="git revision or directory (default: .)")
    parser.add_argument("--repeats", type=int, default=5, help="repetitions per revision")
    parser.add_argument(
        "--steps",
        type=int,
        default=469,
        help="timed training steps per batch size, at most one epoch (default 469: a full "
        "epoch at every batch size)",
    )
    parser.add_argument("--batch-sizes", default="128,256,512")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repetition")
    parser.add_argument(
        "--output", type=Path, help="results directory (default benchmarks/results)"
    )
    args = parser.parse_args(argv)
    if smoke_from_environment():
        args.smoke, args.output = True, None
    if args.output is None:
        args.output = smoke_directory() if args.smoke else ROOT / "benchmarks" / "results"
    quiet = lambda *a, **k: None  # noqa: E731
    try:
        results = compare(
            args.base,
            args.head,
            repeats=args.repeats,
            steps=args.steps,
            batch_sizes=tuple(int(b) for b in args.batch_sizes.split(",")),
            smoke=args.smoke,
            log=quiet if args.smoke else (lambda *a: print(*a, flush=True)),
        )
    except RevisionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    results["command"] = "python -m benchmarks.revisions " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    args.output.mkdir(parents=True, exist_ok=True)
    name = "revisions-smoke.json" if args.smoke else time.strftime("revisions-%Y%m%d-%H%M%S.json")
    path = args.output / name
    path.write_text(json.dumps(results, indent=1))
    print(table(results["summary"]))
    print(f"wrote {path} in {results['wall_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
