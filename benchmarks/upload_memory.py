"""Peak server memory while clients upload crafted large pictures to POST /predict.

Starts the app with uvicorn in a subprocess on 127.0.0.1 (a small untrained model: memory does
not depend on the weights), warms it with one ordinary upload, then sends ``--concurrency``
simultaneous uploads of a crafted PNG (``--side`` x ``--side`` pixels, RGBA, transparent but
for one stroke: about 100 KB on the wire for 5000x5000) and reports the server's peak resident
set (``VmHWM`` in /proc) before and after, with the status codes the uploads got.

Usage::

    python benchmarks/upload_memory.py                    # 8 concurrent 5000x5000 uploads
    python benchmarks/upload_memory.py --side 2000 --concurrency 4

Linux only (it reads /proc/PID/status). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path

SERVER = """
import sys, uvicorn
from multilayer.app.server import create_app
config = uvicorn.Config(create_app(sys.argv[1]), host="127.0.0.1", port=0, log_level="warning")
server = uvicorn.Server(config)
import threading, time
thread = threading.Thread(target=server.run, daemon=True)
thread.start()
while not server.started:
    time.sleep(0.05)
print(server.servers[0].sockets[0].getsockname()[1], flush=True)
thread.join()
"""


def crafted_png(side: int) -> bytes:
    """A ``side`` x ``side`` RGBA PNG, transparent except for one white diagonal stroke."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    ImageDraw.Draw(image).line(
        (side // 4, side // 4, side // 2, 3 * side // 4), fill="white", width=side // 50
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def post_png(port: int, data: bytes) -> int:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    connection.request(
        "POST", "/predict", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    status = connection.getresponse().status
    connection.close()
    return status


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def measure(side: int = 5000, concurrency: int = 8) -> dict:
    from multilayer.recipes import build_model, get_recipe

    with tempfile.TemporaryDirectory(prefix="mlp-upload-memory-") as directory:
        model_path = Path(directory) / "model.safetensors"
        build_model(get_recipe("fast").with_overrides(hidden=(32,)), (28, 28), 10, 1, seed=0).save(
            model_path
        )
        server = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(model_path)], stdout=subprocess.PIPE, text=True
        )
        try:
            port = int(server.stdout.readline())
            post_png(port, crafted_png(280))  # warm up: imports, thread pool, first decode
            before = peak_rss(server.pid)
            data = crafted_png(side)
            statuses: list[int] = []
            threads = [
                threading.Thread(target=lambda: statuses.append(post_png(port, data)))
                for _ in range(concurrency)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            after = peak_rss(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
    return {
        "side": side,
        "png_bytes": len(data),
        "concurrency": concurrency,
        "statuses": sorted(statuses),
        "peak_rss_before_mb": round(before / 2**20, 1),
        "peak_rss_after_mb": round(after / 2**20, 1),
        "growth_mb": round((after - before) / 2**20, 1),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    result = measure(args.side, args.concurrency)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
