"""Playground update rate: how many boundary updates per second the server can produce.

Usage (from the repository root)::

    python -m benchmarks.playground                       # ~1 min on 2 cores
    python -m benchmarks.playground --smoke --output /tmp/bench   # seconds
    MULTILAYER_SMOKE=1 python -m benchmarks.playground    # the smoke run, into a temp dir

The issue's case: a 50x50 grid, 4 hidden layers of 8 tanh neurons, 500 points (250 train,
250 test; spirals, all seven features), batch size 10. One *update* is what the page gets
per frame: one training batch, then the frame (the output on the grid and the train and test
points, every neuron's output on the grid, the weights, the losses). Measured, each as the
median over ``--runs`` runs of ``--updates`` updates:

* ``library``: ``Session.step(1)`` + ``Session.frame()``;
* ``encoded``: the same plus ``encode_frame`` and ``json.dumps`` (all the server's work);
* ``http``: frames received per second by an HTTP client reading the event stream of a real
  ``mlp playground`` server (uvicorn in this process, frame cap lifted), i.e. end to end.

The target is 30 updates per second; the report gives each rate's ratio to it. Results go to
``benchmarks/results/playground.json`` (``--output`` to change; a smoke run writes
``playground-smoke.json``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

from benchmarks.machine import machine_description, smoke_directory, smoke_from_environment

ROOT = Path(__file__).resolve().parents[1]
TARGET = 30.0
CONFIG = {
    "dataset": "spirals",
    "n_points": 500,
    "hidden": [8, 8, 8, 8],
    "features": ["x1", "x2", "x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)"],
    "activation": "tanh",
    "optimizer": "adam",
    "learning_rate": 0.03,
    "batch_size": 10,
}


def _library_rate(updates: int, encoded: bool) -> float:
    from multilayer.app.playground import encode_frame
    from multilayer.playground import PlaygroundConfig, Session

    session = Session(PlaygroundConfig.from_dict(CONFIG), grid=50)
    session.step(5)  # warm the buffers
    start = time.perf_counter()
    for _ in range(updates):
        session.step(1)
        frame = session.frame()
        if encoded:
            json.dumps(encode_frame(frame, regression=False))
    return updates / (time.perf_counter() - start)


def _http_rate(updates: int) -> float:
    import httpx
    import uvicorn

    from multilayer.app.playground import create_playground_app

    app = create_playground_app(max_fps=10_000)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            session = client.post("/api/sessions", json=CONFIG).json()["id"]
            with client.stream("GET", f"/api/sessions/{session}/events") as stream:
                lines = stream.iter_lines()
                frames = 0
                client.post(f"/api/sessions/{session}/commands", json={"action": "play"})
                start = None
                for line in lines:
                    if not line.startswith("event: frame"):
                        continue
                    if start is None:  # the first frame after play starts the clock
                        start = time.perf_counter()
                        continue
                    frames += 1
                    if frames == updates:
                        break
                assert start is not None
                return frames / (time.perf_counter() - start)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few updates only")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.smoke or smoke_from_environment():  # MULTILAYER_SMOKE=1: the docs' CI run
        args.smoke = True
        args.runs, args.updates = 1, 20
        args.output = args.output or smoke_directory()
    args.output = args.output or ROOT / "benchmarks" / "results"
    rates: dict[str, list[float]] = {"library": [], "encoded": [], "http": []}
    for _ in range(args.runs):  # the three measures alternate
        rates["library"].append(_library_rate(args.updates, encoded=False))
        rates["encoded"].append(_library_rate(args.updates, encoded=True))
        rates["http"].append(_http_rate(args.updates))
    summary = {
        name: {
            "updates_per_second": round(statistics.median(values), 1),
            "ratio_to_target": round(statistics.median(values) / TARGET, 2),
            "runs": [round(v, 1) for v in values],
        }
        for name, values in rates.items()
    }
    results = {
        "smoke": args.smoke,
        "machine": machine_description(),
        "case": {**CONFIG, "grid": 50},
        "updates_per_run": args.updates,
        "target_updates_per_second": TARGET,
        "summary": summary,
    }
    args.output.mkdir(parents=True, exist_ok=True)
    name = "playground-smoke.json" if args.smoke else "playground.json"
    (args.output / name).write_text(json.dumps(results, indent=2) + "\n")
    print("| measure | updates/s (median) | × target (30/s) |")
    print("|---|---:|---:|")
    for measure, row in summary.items():
        print(f"| {measure} | {row['updates_per_second']:.1f} | {row['ratio_to_target']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
