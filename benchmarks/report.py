"""Medians, ratios and the markdown report of a benchmark run."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from benchmarks import revisions

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
LABELS = {
    "multilayer": "multilayer",
    "multilayer-1thread": "multilayer, 1 BLAS thread",
    "pytorch": "PyTorch",
    "sklearn": "scikit-learn",
    "keras": "Keras (TensorFlow)",
}


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _median_or_inf(values):
    """Median where a missing value (target not reached) counts as infinitely slow."""
    ranked = sorted(math.inf if v is None else v for v in values)
    if not ranked:
        return None
    value = statistics.median_low(ranked)
    return None if math.isinf(value) else value


def summarise(results: dict) -> dict:
    summary: dict = {}
    epochs = results.get("epochs", {})
    speed: dict = {}
    for system, runs in epochs.items():
        rows: dict = {}
        for run in runs:
            for row in run.get("rows", []):
                rows.setdefault(row["batch_size"], []).append(row)
        speed[system] = {
            batch: {
                key: _median([r.get(key) for r in rs])
                for key in ("epoch_seconds", "utilisation", "achieved_gflops", "sgemm_gflops")
            }
            for batch, rs in rows.items()
        }
        square = _median([run.get("square_sgemm_gflops") for run in runs])
        if square is not None:
            speed[system]["square_sgemm_gflops"] = square
    summary["speed"] = speed
    summary["predict"] = results.get("predict", {})
    tta = {}
    for label, plan in results.get("tta", {}).items():
        seeds = plan["seeds"]
        tta[label] = {
            "system": plan["system"],
            "seconds_to_target": _median_or_inf([s.get("seconds_to_target") for s in seeds]),
            "reached": sum(s.get("seconds_to_target") is not None for s in seeds),
            "seeds": len(seeds),
            "best_accuracy": _median([s.get("best_accuracy") for s in seeds]),
            "epochs_run": _median([len(s.get("curve", [])) for s in seeds]),
            "peak_rss_mb": _median([s.get("peak_rss_mb") for s in seeds]),
        }
    summary["tta"] = tta
    summary["targets"] = _targets(results, summary)
    return summary


def _targets(results: dict, summary: dict) -> list[dict]:
    targets = []
    ml, torch = summary["speed"].get("multilayer", {}), summary["speed"].get("pytorch", {})
    for batch in sorted(b for b in ml if isinstance(b, int)):
        if batch in torch and ml[batch]["epoch_seconds"] and torch[batch]["epoch_seconds"]:
            ratio = ml[batch]["epoch_seconds"] / torch[batch]["epoch_seconds"]
            targets.append(
                _target(
                    f"s/epoch vs PyTorch, batch {batch}", "<= 0.50x", ratio, ratio <= 0.5, "{:.2f}x"
                )
            )
    for batch in sorted(b for b in ml if isinstance(b, int)):
        value = ml[batch].get("utilisation")
        if value is not None:
            targets.append(
                _target(f"FLOP utilisation, batch {batch}", ">= 80%", value, value >= 0.8, "{:.0%}")
            )
    fast = next((v for v in summary["tta"].values() if v["system"] == "multilayer"), None)
    if fast:
        value = fast["seconds_to_target"]
        targets.append(
            _target(
                "time to 98.4% (median of seeds)",
                "<= 6 s",
                value,
                value is not None and value <= 6,
                "{:.1f} s",
            )
        )
        value = fast["peak_rss_mb"]
        targets.append(
            _target("peak RSS of a training run", "<= 300 MB", value, value <= 300, "{:.0f} MB")
        )
    if "import" in results:
        value = results["import"]["median_seconds"]
        targets.append(_target("import multilayer", "<= 0.3 s", value, value <= 0.3, "{:.3f} s"))
    predict = summary["predict"]
    if "multilayer" in predict and "pytorch" in predict:
        ratio = predict["multilayer"]["images_per_second"] / predict["pytorch"]["images_per_second"]
        targets.append(
            _target("predict throughput vs PyTorch", ">= 2x", ratio, ratio >= 2, "{:.2f}x")
        )
    return targets


def _target(name, goal, value, met, fmt):
    return {
        "name": name,
        "goal": goal,
        "value": value,
        "met": bool(met),
        "shown": "not reached" if value is None else fmt.format(value),
    }


def _fmt(value, fmt="{:.2f}"):
    return "-" if value is None else fmt.format(value)


def markdown(results: dict, summary: dict) -> str:
    m = results["machine"]
    blas = m.get("blas")
    blas_text = (
        ", ".join(
            f"{b['internal_api']} {b['version']} ({b['architecture']}, {b['num_threads']} threads)"
            for b in blas
        )
        if isinstance(blas, list)
        else str(blas)
    )
    lines = [
        f"Run of {results.get('wall_seconds', 0):.0f} s{' (SMOKE: tiny data, not a measurement)' if results.get('smoke') else ''}.",
        "",
        f"- Machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, {m.get('memory_gb', '?')} GB; {m['platform']}",
        f"- Python {m['python']}, NumPy {m['numpy']}, BLAS: {blas_text}",
        f"- Load average (1 min) at start / end: {m['load_average_at_start']:.1f} / {m.get('load_average_at_end', float('nan')):.1f}",
    ]
    versions = {}
    for section in ("epochs", "predict"):
        for system, value in results.get(section, {}).items():
            runs = value if isinstance(value, list) else [value]
            for run in runs:
                if run.get("version"):
                    versions[system] = run["version"]
    if versions:
        lines.append(
            "- Versions: " + "; ".join(f"{LABELS.get(s, s)} {v}" for s, v in versions.items())
        )
    for system, why in results.get("unavailable", {}).items():
        lines.append(f"- Skipped {LABELS.get(system, system)}: {why}")

    speed = summary["speed"]
    if speed:
        systems = list(speed)
        batches = sorted({b for s in speed.values() for b in s if isinstance(b, int)})
        lines += ["", "### Seconds per epoch (median; ratio = system / multilayer)", ""]
        lines.append("| batch | " + " | ".join(LABELS.get(s, s) for s in systems) + " |")
        lines.append("|---:|" + "---:|" * len(systems))
        for b in batches:
            base = speed.get("multilayer", {}).get(b, {}).get("epoch_seconds")
            cells = []
            for s in systems:
                value = speed[s].get(b, {}).get("epoch_seconds")
                ratio = f" ({value / base:.2f}x)" if value and base and s != "multilayer" else ""
                cells.append(_fmt(value) + ratio)
            lines.append(f"| {b} | " + " | ".join(cells) + " |")
        ml = speed.get("multilayer")
        if ml:
            lines += [
                "",
                "### FLOP utilisation of multilayer (sgemm of the same shapes, same process)",
                "",
            ]
            lines.append(
                "| batch | epoch s | sgemm GFLOP/s (same shapes) | achieved GFLOP/s | utilisation |"
            )
            lines.append("|---:|---:|---:|---:|---:|")
            for b in batches:
                r = ml.get(b, {})
                lines.append(
                    f"| {b} | {_fmt(r.get('epoch_seconds'))} | {_fmt(r.get('sgemm_gflops'), '{:.0f}')} | "
                    f"{_fmt(r.get('achieved_gflops'), '{:.0f}')} | {_fmt(r.get('utilisation'), '{:.0%}')} |"
                )
            if "square_sgemm_gflops" in ml:
                lines.append(
                    f"\nSquare 2048x2048 sgemm on this machine: {ml['square_sgemm_gflops']:.0f} GFLOP/s."
                )

    if summary["tta"]:
        lines += [
            "",
            f"### Time to {results['target']:.1%} test accuracy (training wall time, evaluation excluded)",
            "",
        ]
        lines.append(
            "| system and recipe | median s to target | seeds reaching it | median best accuracy | epochs run | peak RSS MB |"
        )
        lines.append("|---|---:|---:|---:|---:|---:|")
        for label, t in summary["tta"].items():
            lines.append(
                f"| {label} | {_fmt(t['seconds_to_target'], '{:.1f}') if t['seconds_to_target'] is not None else 'not reached'} | "
                f"{t['reached']}/{t['seeds']} | {_fmt(t['best_accuracy'], '{:.2%}')} | {_fmt(t['epochs_run'], '{:.0f}')} | "
                f"{_fmt(t['peak_rss_mb'], '{:.0f}')} |"
            )

    if summary["predict"]:
        lines += ["", "### Inference over the 10,000 test images (uint8 images in, scores out)", ""]
        lines.append("| system | images/s | ratio to multilayer | single-image latency ms |")
        lines.append("|---|---:|---:|---:|")
        base = summary["predict"].get("multilayer", {}).get("images_per_second")
        for s, p in summary["predict"].items():
            if "images_per_second" not in p:
                continue
            ratio = f"{p['images_per_second'] / base:.2f}x" if base else "-"
            lines.append(
                f"| {LABELS.get(s, s)} | {p['images_per_second']:.0f} | {ratio} | {p['latency_ms']:.3f} |"
            )

    if "import" in results:
        lines.append(
            f"\n`import multilayer`: {results['import']['median_seconds']:.3f} s (median of {len(results['import']['runs'])} fresh interpreters)."
        )

    if "revisions" in results:
        compared = results["revisions"]
        base = compared["revisions"]["base"]
        name = base["spec"] + (f" ({base['commit'][:7]})" if "commit" in base else "")
        lines += [
            "",
            f"### This code against {name} (one BLAS thread; head/base below 1: faster or smaller)",
            "",
            revisions.table(compared["summary"]),
        ]

    if summary["targets"]:
        lines += [
            "",
            "### Targets",
            "",
            "| target | goal | measured | met |",
            "|---|---|---:|:---:|",
        ]
        for t in summary["targets"]:
            lines.append(
                f"| {t['name']} | {t['goal']} | {t['shown']} | {'yes' if t['met'] else 'no'} |"
            )
    return "\n".join(lines) + "\n"


def write_into(path: Path, body: str) -> None:
    """Replace the text between the result markers of ``path`` (create the file if needed),
    leaving the hand-written parts of the document alone."""
    block = f"{BEGIN}\n{body}{END}"
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
