"""A bounded load test of the web app's POST /predict, on the loopback interface only.

It starts ``uvicorn`` in a subprocess on 127.0.0.1 at a free port, sends a fixed number of requests from a fixed
number of concurrent clients (asyncio + httpx, one connection each), and reports requests per
second, latency percentiles and the error count. The result is written as JSON under
``benchmarks/results/`` and printed as a markdown table row.

Usage::

    MULTILAYER_DATA=../shared/datasets python benchmarks/load_test.py            # 2,000 x 16
    python benchmarks/load_test.py --requests 200 --concurrency 4 --mode pixels  # smaller
    MULTILAYER_SMOKE=1 python benchmarks/load_test.py   # 20 requests, result in a temp dir

The served model is the tutorial's architecture (784-512-768-10) with its initial weights,
unless ``--model`` names a trained one: latency does not depend on the weights' values.
Each request carries a real MNIST test digit drawn on a 280x280 canvas (``--mode png``, what
the browser page sends: decoding and MNIST preprocessing included) or its 784 pixel values
as JSON (``--mode pixels``). The clients run on the same 2 cores as the server, so the
figures are a lower bound of what the server alone can do.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def make_model(directory: Path) -> Path:
    """The tutorial's 784-512-768-10 model, untrained, saved to ``directory``."""
    from multilayer.layers import Dense, Flatten, Rescaling
    from multilayer.models import Sequential

    model = Sequential(
        [
            Flatten(input_shape=(28, 28)),
            Rescaling(1 / 255),
            Dense(512, activation="relu"),
            Dense(768, activation="relu"),
            Dense(10, activation="softmax"),
        ],
        seed=0,
    )
    model.build()
    path = directory / "model.safetensors"
    model.save(path)
    return path


def payloads(mode: str, count: int) -> list[dict]:
    """httpx request arguments: real test digits, as PNG uploads or JSON pixels."""
    from multilayer.datasets import mnist

    _, (x_test, _) = mnist.load_data()
    requests = []
    for image in x_test[:count]:
        if mode == "png":
            from PIL import Image

            buffer = io.BytesIO()
            # Like the page's canvas: 280x280, white strokes on black.
            Image.fromarray(image).resize((280, 280)).save(buffer, format="PNG")
            requests.append({"files": {"file": ("drawing.png", buffer.getvalue(), "image/png")}})
        else:
            requests.append({"json": {"pixels": image.ravel().tolist()}})
    return requests


#: Runs in the server process: uvicorn on a free loopback port, announced on stdout. (Handing
#: over a pre-bound socket with uvicorn's ``fd=`` would avoid choosing the port in the child,
#: but uvicorn takes such sockets for Unix sockets and asyncio then leaves Nagle's algorithm
#: on: every keep-alive response stalls 40 ms on the client's delayed ACK.)
_SERVER = """
import sys, threading, time
import uvicorn
from multilayer.app.server import create_app

server = uvicorn.Server(
    uvicorn.Config(create_app(sys.argv[1]), host="127.0.0.1", port=0, log_level="warning")
)

def announce():
    while not server.started:
        time.sleep(0.01)
    print(server.servers[0].sockets[0].getsockname()[1], flush=True)

threading.Thread(target=announce, daemon=True).start()
server.run()
"""


def start_server(model: Path) -> tuple[subprocess.Popen, str]:
    """uvicorn serving ``model`` in a subprocess on 127.0.0.1; returns it and its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(model)], stdout=subprocess.PIPE, text=True
    )
    line = process.stdout.readline()  # blocks until the server listens (or exits)
    if not line.strip().isdigit():
        process.kill()
        raise RuntimeError(f"the server did not start (exit code {process.wait()})")
    return process, f"http://127.0.0.1:{int(line)}"


async def wait_ready(base: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base) as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with code {process.returncode}")
            try:
                if (await client.get("/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            await asyncio.sleep(0.1)


async def run_load(base: str, requests: list[dict], total: int, concurrency: int) -> dict:
    """Send ``total`` requests from ``concurrency`` clients; latencies in seconds."""
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(total))

    async def client_loop() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30.0) as client:
            for index in counter:  # shared iterator: the clients take turns
                started = time.perf_counter()
                try:
                    response = await client.post("/predict", **requests[index % len(requests)])
                    if response.status_code != 200:
                        errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
                except httpx.HTTPError as error:
                    errors.append(f"{type(error).__name__}: {error}")
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client_loop() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {
        "requests": total,
        "concurrency": concurrency,
        "wall_seconds": round(wall, 3),
        "requests_per_second": round(total / wall, 1),
        "latency_ms": {
            "mean": round(float(ms.mean()), 2),
            "p50": round(float(np.percentile(ms, 50)), 2),
            "p90": round(float(np.percentile(ms, 90)), 2),
            "p99": round(float(np.percentile(ms, 99)), 2),
            "max": round(float(ms.max()), 2),
        },
        "errors": len(errors),
        "first_errors": errors[:5],
    }


def markdown(result: dict) -> str:
    latency = result["latency_ms"]
    return (
        "| mode | requests | clients | req/s | p50 ms | p99 ms | errors |\n"
        "|---|---:|---:|---:|---:|---:|---:|\n"
        f"| {result['mode']} | {result['requests']:,} | {result['concurrency']} | "
        f"{result['requests_per_second']:.0f} | {latency['p50']:.1f} | {latency['p99']:.1f} | "
        f"{result['errors']} |"
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=50, help="untimed requests sent first")
    parser.add_argument("--mode", choices=("png", "pixels"), default="png")
    parser.add_argument("--model", type=Path, help="model file or run directory to serve")
    parser.add_argument("--output", type=Path, help="JSON result file (default: results/)")
    args = parser.parse_args(argv)
    if os.environ.get("MULTILAYER_SMOKE", "").strip() not in ("", "0"):
        # a check that the code runs (CI runs the docs' commands this way): seconds, and
        # never over the committed results
        args.requests, args.concurrency = min(args.requests, 20), min(args.concurrency, 2)
        args.warmup = min(args.warmup, 2)
        args.output = (
            Path(tempfile.mkdtemp(prefix="mlp-load-smoke-")) / f"load_test_{args.mode}.json"
        )
    if args.requests < 1 or args.concurrency < 1 or args.warmup < 0:
        parser.error("--requests and --concurrency must be positive, --warmup non-negative")

    # Other work on the machine slows both sides down: record how busy it was.
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    with tempfile.TemporaryDirectory(prefix="mlp-load-") as scratch:
        model = args.model or make_model(Path(scratch))
        requests = payloads(args.mode, min(args.requests, 500))
        process, base = start_server(model)
        try:
            asyncio.run(wait_ready(base, process))
            if args.warmup:
                asyncio.run(run_load(base, requests, args.warmup, args.concurrency))
            result = asyncio.run(run_load(base, requests, args.requests, args.concurrency))
        finally:
            process.terminate()
            process.wait(timeout=30)

    result = {
        "benchmark": "load_test",
        "mode": args.mode,
        "model": str(args.model)
        if args.model
        else "784-512-768-10 (untrained tutorial architecture)",
        **result,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_1_5_15_min_before": load_before,
        },
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    output = args.output or RESULTS / f"load_test_{args.mode}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    print(f"\nwritten to {output}")
    return result


if __name__ == "__main__":
    main()
