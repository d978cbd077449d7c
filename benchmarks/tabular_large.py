"""Training on a table larger than memory: peak RSS and rows per second.

``python -m benchmarks.tabular_large`` writes a Parquet table of ``--rows`` rows (default
10 million: 8 numeric columns, two with 10% missing values, a boolean, a text column with 8
values and one with 5,000, and a binary target that depends on all of them) into a temporary
directory, then runs ``mlp train --data big.parquet --target y --stream`` (for ``--epochs``,
default 1) in a child process and records its wall time and peak RSS (``wait4``'s
``ru_maxrss``: the child's own high-water mark, not this process's). The table is never
committed; the temporary directory is removed afterwards (``--keep DIR`` writes and keeps it
there instead).

The issue's goal: peak RSS under 1 GB for 10 million rows. For scale, the report also gives
what reading the whole table into memory would take (the NumPy arrays of
``multilayer.data.tables.read_table``, estimated from a sample of rows).

``--smoke`` (or ``MULTILAYER_SMOKE=1``): 2 million rows (about 390 MB as arrays: larger
than what streaming holds), 20 training steps of a 64-64 MLP, no validation split and a 5%
test split, into a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import machine_description, smoke_directory, smoke_from_environment

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- tabular-large:begin -->", "<!-- tabular-large:end -->"
NUMERIC = 8
SMALL, LARGE = 8, 5_000
CHUNK_ROWS = 500_000


def generate(path: Path, rows: int, seed: int = 0, row_group: int = 250_000) -> dict:
    """Write the table in chunks (the generator's memory stays one chunk); return its shape."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    weights = rng.normal(size=NUMERIC)
    small_effect = rng.normal(size=SMALL)
    large_effect = rng.normal(scale=0.5, size=LARGE)
    small_names = pa.array([f"s{k}" for k in range(SMALL)])
    large_names = pa.array([f"city-{k:04d}" for k in range(LARGE)])
    writer = None
    try:
        for start in range(0, rows, CHUNK_ROWS):
            n = min(CHUNK_ROWS, rows - start)
            x = rng.normal(size=(n, NUMERIC)).astype(np.float32)
            flag = rng.random(n) < 0.3
            small = rng.integers(0, SMALL, n)
            large = np.minimum(rng.zipf(1.3, n) - 1, LARGE - 1)
            logit = x @ weights * 0.7 + small_effect[small] + large_effect[large] + 0.8 * flag
            y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
            columns = {}
            for k in range(NUMERIC):
                mask = rng.random(n) < 0.1 if k < 2 else None
                columns[f"x{k}"] = pa.array(x[:, k], mask=mask)
            columns["flag"] = pa.array(flag)
            columns["colour"] = pa.DictionaryArray.from_arrays(pa.array(small), small_names)
            columns["city"] = pa.DictionaryArray.from_arrays(pa.array(large), large_names)
            columns["y"] = pa.array(y)
            table = pa.table(columns)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=row_group)
    finally:
        if writer is not None:
            writer.close()
    return {"rows": rows, "columns": NUMERIC + 4, "file_mb": path.stat().st_size / 2**20}


def in_memory_mb(path: Path, rows: int, sample: int = 20_000) -> float:
    """What ``read_table`` would hold for the whole file: the arrays of a sample of rows
    (object arrays counted with their ``str`` objects), scaled to all rows."""
    from multilayer.data import tables

    first = next(tables.iter_batches(path, sample))
    total = 0
    for name in first.column_names:
        values = first.column(name)
        total += values.nbytes
        if values.dtype == object:
            total += sum(sys.getsizeof(v) for v in values.tolist() if v is not None)
    return total / first.rows * rows / 2**20


def measure(command: list[str], env: dict[str, str]) -> dict:
    """Run ``command``; its wall time, exit code and own peak RSS (MB)."""
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return {
        "seconds": time.perf_counter() - started,
        "exit_code": child.returncode,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "output_tail": output.decode(errors="replace")[-3000:],
    }


def train_command(
    data: Path, run: Path, epochs: int, steps: int | None, extra: tuple[str, ...] = ()
) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "multilayer.cli.main",
        "train",
        "--data",
        str(data),
        "--target",
        "y",
        "--stream",
        "--epochs",
        str(epochs),
        "--seed",
        "0",
        "--output",
        str(run),
        "--quiet",
        "--no-report",
        *extra,
    ]
    if steps is not None:
        command += ["--steps-per-epoch", str(steps)]
    return command


def baseline_command() -> list[str]:
    """The same interpreter importing what training imports, and nothing else."""
    code = "import multilayer.cli.main, multilayer.tabular.streamed, pyarrow.parquet"
    return [sys.executable, "-c", code]


def run(
    rows: int, epochs: int, steps: int | None, folder: Path, extra: tuple[str, ...] = ()
) -> dict:
    env = dict(os.environ)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    data = folder / "big.parquet"
    # The table is written by a child process: a forked child's ru_maxrss starts from its
    # parent's size before exec, so this process must stay small for the measure to be the
    # training's own.
    made = subprocess.run(
        [sys.executable, "-m", "benchmarks.tabular_large", "--generate", str(data),
         "--rows", str(rows)],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if made.returncode != 0:
        raise RuntimeError(f"generating the table failed: {made.stderr[-2000:]}")
    shape = json.loads(made.stdout.splitlines()[-1])
    baseline = measure(baseline_command(), env)
    training = measure(train_command(data, folder / "run", epochs, steps, extra), env)
    run_dir = folder / "run"
    metrics = _json(run_dir / "metrics.json")
    config = _json(run_dir / "config.json")
    trained = None
    if metrics and config and steps is None:
        trained = config["dataset"]["train_samples"] * metrics["epochs"] / metrics["train_seconds"]
    return {
        "table": shape,
        "epochs": epochs,
        "steps_per_epoch": steps,
        "extra_arguments": list(extra),
        "baseline": baseline,
        "training": training,
        "rows_per_second": rows / training["seconds"] if training["exit_code"] == 0 else None,
        "training_rows_per_second": trained,
        "metrics": metrics,
        "dataset": config["dataset"] if config else None,
    }


def _json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _generate(path: Path, rows: int) -> dict:
    started = time.perf_counter()
    shape = generate(path, rows)
    shape["generate_seconds"] = time.perf_counter() - started
    shape["in_memory_mb"] = in_memory_mb(path, rows)
    return shape


def markdown(result: dict) -> str:
    table, training = result["table"], result["training"]
    machine = result["machine"]
    ok = training["exit_code"] == 0
    lines = [
        f"{table['rows']:,} rows × {table['columns']} columns, Parquet {table['file_mb']:.0f} MB "
        f"(about {table['in_memory_mb']:.0f} MB as the arrays of `read_table`); "
        f"`mlp train --data big.parquet --target y --stream "
        f"{' '.join(result['extra_arguments'])}`, {result['epochs']} epoch(s)"
        + (f" of {result['steps_per_epoch']} steps" if result["steps_per_epoch"] else "")
        + f"; {machine['cpu']}, load average at start / end "
        f"{machine['load_average_at_start']:.1f} / {result['load_average_at_end']:.1f}.",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| exit code | {training['exit_code']} |",
        f"| peak RSS of the training process | {training['peak_rss_mb']:.0f} MB |",
        f"| peak RSS of the interpreter with the same imports only | "
        f"{result['baseline']['peak_rss_mb']:.0f} MB |",
        f"| wall time (scan, statistics, training, test metrics) | {training['seconds']:.0f} s |",
    ]
    if "cpu_seconds" in training:
        lines.append(f"| CPU time of the training process | {training['cpu_seconds']:.0f} s |")
    if result["rows_per_second"]:
        lines.append(
            f"| rows of the file per second of wall time | {result['rows_per_second']:,.0f} |"
        )
    if result.get("training_rows_per_second"):
        lines.append(
            "| training rows per second of fit (train rows × epochs / fit time) | "
            f"{result['training_rows_per_second']:,.0f} |"
        )
    goal = training["peak_rss_mb"] < 1024 and ok
    lines.append(f"| goal: peak RSS under 1 GB | {'met' if goal else 'not met'} |")
    if result.get("metrics"):
        shown = {
            k.removeprefix("test_"): v
            for k, v in result["metrics"].items()
            if k.startswith("test_")
            and k not in ("test_samples", "test_loss")
            and isinstance(v, float)
        }
        if shown:
            lines.append(
                "| test metrics | " + ", ".join(f"{k} {v:.3f}" for k, v in shown.items()) + " |"
            )
    return "\n".join(lines) + "\n"


def write_into(path: Path, body: str) -> None:
    block = f"{BEGIN}\n{body}{END}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tabular_large", description=__doc__)
    parser.add_argument("--rows", type=int, help="rows of the table (default 10 million)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--steps", type=int, help="training steps per epoch (default: all)")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--output", type=Path, help="directory for the JSON and markdown")
    parser.add_argument("--keep", type=Path, help="write the table and run here and keep them")
    parser.add_argument("--generate", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.generate:
        print(json.dumps(_generate(args.generate, args.rows or 10_000_000)))
        return 0
    smoke = args.smoke or smoke_from_environment()
    rows, steps = (2_000_000, 20) if smoke else (10_000_000, args.steps)
    rows = args.rows or rows
    extra = ("--hidden", "64,64", "--validation-split", "0", "--test-split", "0.05")
    extra = extra if smoke else ()
    output = args.output or (smoke_directory() if smoke else RESULTS)
    output.mkdir(parents=True, exist_ok=True)
    machine = machine_description()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = run(rows, args.epochs, steps, args.keep, extra)
    else:
        folder = Path(tempfile.mkdtemp(prefix="multilayer-large-table-"))
        try:
            result = run(rows, args.epochs, steps, folder, extra)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    result.update(smoke=smoke, machine=machine, load_average_at_end=os.getloadavg()[0])
    stem = "tabular-large-smoke" if smoke else "tabular-large-latest"
    (output / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    body = markdown(result)
    (output / f"{stem}.md").write_text(body)
    if not smoke and args.output is None:
        write_into(DOC, body)
    print(body)
    if result["training"]["exit_code"] != 0:
        print(result["training"]["output_tail"], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
