"""Regenerate docs/images/app.png: the draw-a-digit app serving a model of the DEFAULT recipe.

    mlp train --seed 0 -o /tmp/default-run          # the default recipe, as the README says
    python docs/images/make_app_screenshot.py /tmp/default-run

Starts ``mlp serve RUN`` on a free local port, draws a 3 with the mouse in a headless
Chromium (/usr/bin/chromium, driven by Playwright as tests/test_browser.py does), and saves
a full-page screenshot. Look at the picture before committing it.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

OUTPUT = Path(__file__).resolve().parent / "app.png"
CHROMIUM = "/usr/bin/chromium"
#: A "3" in canvas-relative coordinates (0..1).
THREE = [(0.28, 0.22), (0.50, 0.14), (0.70, 0.25), (0.63, 0.45), (0.42, 0.50), (0.62, 0.58),
         (0.72, 0.75), (0.55, 0.88), (0.28, 0.82)]  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main(run_dir: str, output: Path = OUTPUT) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    mlp = Path(sys.executable).with_name("mlp")
    server = subprocess.Popen([str(mlp), "serve", run_dir, "--port", str(port)])
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/", timeout=2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("mlp serve did not start") from None
                time.sleep(0.2)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(url + "/")
            page.wait_for_selector("#bars .bar")
            page.wait_for_function(
                "() => !document.getElementById('model-summary').textContent.startsWith('Loading')"
            )
            box = page.locator("#pad").bounding_box()

            def at(point):
                return box["x"] + point[0] * box["width"], box["y"] + point[1] * box["height"]

            with page.expect_response(lambda r: r.url.endswith("/predict")):
                page.mouse.move(*at(THREE[0]))
                page.mouse.down()
                for point in THREE[1:]:
                    page.mouse.move(*at(point), steps=8)
                page.mouse.up()
            page.wait_for_function("() => document.body.dataset.busy === '0'")
            page.wait_for_function("() => document.getElementById('top-class').textContent !== '?'")
            page.screenshot(path=str(output), full_page=True)
            print(f"{output}: the model answers {page.text_content('#top-class')}")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
