"""End to end in a real headless Chromium: draw digits on the canvas with mouse strokes and
check the network's answers and the probability chart.

Needs the Debian package ``chromium`` (/usr/bin/chromium) and Playwright for Python
(``pip install playwright``; its own browser download, ``playwright install``, is not used).
The screenshots go to ``$MULTILAYER_SCREENSHOTS`` if set, else to pytest's temporary
directory; their paths are printed.
"""

import math
from pathlib import Path

import pytest

from helpers.browser import CHROMIUM, chromium, screenshot_dir, served

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} not found: apt-get install chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
uvicorn = pytest.importorskip("uvicorn", reason="pip install 'multilayer[app]'")

from multilayer.app.server import create_app  # noqa: E402

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(trained_run):
    """The app on 127.0.0.1 at a free port, served by uvicorn in a thread."""
    with served(create_app(trained_run)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser, server):
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(server + "/")
    page.wait_for_selector("#bars .bar")
    page.wait_for_function(
        "() => !document.getElementById('model-summary').textContent.startsWith('Loading')"
    )
    yield page
    # The page must work offline: nothing but this server is ever contacted.
    assert all(url.startswith(server) or url.startswith(("data:", "blob:")) for url in requests), (
        requests
    )
    page.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory):
    return screenshot_dir(tmp_path_factory)


# Strokes in canvas-relative coordinates (0..1), drawn as a person would.
STROKES = {
    "1": [[(0.52, 0.15), (0.50, 0.85)]],
    "0": [
        [
            (
                0.5 + 0.22 * math.sin(2 * math.pi * t / 40),
                0.5 - 0.33 * math.cos(2 * math.pi * t / 40),
            )
            for t in range(41)
        ]
    ],
    "7": [[(0.25, 0.2), (0.75, 0.2), (0.42, 0.85)]],
}


def draw(page, strokes) -> None:
    """Draw polylines on the canvas with the mouse, then wait for the answer to them."""
    box = page.locator("#pad").bounding_box()

    def at(point):
        return box["x"] + point[0] * box["width"], box["y"] + point[1] * box["height"]

    with page.expect_response(lambda r: r.url.endswith("/predict") and r.request.method == "POST"):
        for stroke in strokes:
            page.mouse.move(*at(stroke[0]))
            page.mouse.down()
            for point in stroke[1:]:
                page.mouse.move(*at(point), steps=8)
            page.mouse.up()
    # Wait until the answer to the finished drawing (not to a partial stroke) is on screen.
    # Predicates are functions, not expressions: the page's CSP forbids eval of a string.
    page.wait_for_function("() => document.body.dataset.busy === '0'")
    page.wait_for_function("() => document.getElementById('top-class').textContent !== '?'")


def chart(page) -> list[float]:
    """The heights of the probability bars, as fractions of the chart."""
    return page.eval_on_selector_all(
        "#bars .bar .fill", "bars => bars.map(b => parseFloat(b.style.height) / 100)"
    )


@pytest.mark.parametrize("digit", ["1", "0", "7"])
def test_drawn_digits_are_recognised(page, digit, screenshots):
    draw(page, STROKES[digit])
    assert page.text_content("#top-class") == digit
    heights = chart(page)
    assert len(heights) == 10
    assert max(range(10), key=heights.__getitem__) == int(digit)
    assert sum(heights) == pytest.approx(1.0, abs=0.01)
    assert page.get_attribute(f'#bars .bar[data-class="{digit}"]', "class") == "bar top"
    assert page.locator("#bars .bar.top").count() == 1
    # The 28x28 image the network saw is on the page, and it has ink.
    ink = page.evaluate(
        "() => { const d = document.getElementById('seen').getContext('2d')"
        ".getImageData(0, 0, 28, 28).data; let s = 0; for (let i = 0; i < d.length; i += 4)"
        " s += d[i]; return s / 255; }"
    )
    assert ink > 20
    # One heat map per hidden layer (the model has one, of 128 units).
    assert page.locator("#activations .layer canvas").count() == 1
    assert "128 units" in page.text_content("#activations .layer .name")
    path = screenshots / f"app-drawn-{digit}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def _saliency_colours(page) -> dict:
    """Counts of red (toward) and blue (against) pixels on the saliency canvas."""
    return page.evaluate(
        "() => { const d = document.getElementById('saliency').getContext('2d')"
        ".getImageData(0, 0, 28, 28).data; let red = 0, blue = 0;"
        " for (let i = 0; i < d.length; i += 4) {"
        " if (d[i + 3] && d[i] > d[i + 2] + 20) red += 1;"
        " if (d[i + 3] && d[i + 2] > d[i] + 20) blue += 1; }"
        " return {red, blue}; }"
    )


def test_the_saliency_view_explains_the_answer(page, screenshots):
    with page.expect_response(lambda r: r.url.endswith("/predict")) as last:
        draw(page, STROKES["7"])
    maps = last.value.json()["saliency"]
    assert page.text_content("#top-class") == "7" == str(maps["top_class"])
    runner_up = maps["runner_up"]
    assert runner_up != 7
    # the top-answer map: red pixels (toward 7; blue: against), named on its button
    colours = _saliency_colours(page)
    assert colours["red"] > 5, colours
    assert page.get_attribute("#why-top", "aria-pressed") == "true"
    assert page.text_content("#why-top") == "top answer: 7"
    assert page.text_content("#why-versus") == f"7 vs runner-up {runner_up}"
    assert "toward 7" in page.text_content("#why-caption")
    page.screenshot(path=str(screenshots / "app-saliency.png"), full_page=True)
    # the toggle shows the other map, naming both classes
    page.click("#why-versus")
    assert page.get_attribute("#why-versus", "aria-pressed") == "true"
    assert page.get_attribute("#why-top", "aria-pressed") == "false"
    assert f"{runner_up}" in page.text_content("#why-caption")
    versus = _saliency_colours(page)
    assert versus["red"] > 5 and versus["blue"] > 0 and versus != colours, versus
    page.screenshot(path=str(screenshots / "app-saliency-versus.png"), full_page=True)
    # clearing empties it
    page.click("#clear")
    assert _saliency_colours(page) == {"red": 0, "blue": 0}
    assert page.text_content("#why-top") == "top answer"


def test_clear_resets_the_page(page):
    draw(page, STROKES["1"])
    page.click("#clear")
    assert page.text_content("#top-class") == "?"
    assert chart(page) == [0.0] * 10
    blank = page.evaluate(
        "() => document.getElementById('pad').getContext('2d').getImageData(0, 0, 280, 280)"
        ".data.every((v, i) => i % 4 === 3 || v === 0)"
    )
    assert blank


def test_file_upload(page, tmp_path):
    import numpy as np
    from PIL import Image

    from multilayer.datasets import mnist

    _, (x_test, y_test) = mnist.load_data()
    # A dark-on-light scan of a test digit, bigger than 28x28, as people upload them.
    index = next(i for i in range(100) if y_test[i] == 3)
    path = tmp_path / "three.png"
    Image.fromarray(255 - np.asarray(x_test[index])).resize((200, 200)).save(path)
    with page.expect_response(lambda r: r.url.endswith("/predict")):
        page.set_input_files("#upload", str(path))
    page.wait_for_function("() => document.getElementById('top-class').textContent !== '?'")
    assert page.text_content("#top-class") == "3"


def test_a_run_directory_links_its_report(page, server, trained_run):
    # The report link shows only when the run has a report: write a stand-in page if needed.
    report = Path(trained_run) / "report" / "index.html"
    if not report.exists():
        report.parent.mkdir(exist_ok=True)
        report.write_text("<!doctype html><title>report</title><h1>Run report</h1>")
    page.reload()
    page.wait_for_selector("#report-link:not([hidden])")
    assert page.get_attribute("#report-link", "href") == "/report"
    assert "test accuracy" in page.text_content("#model-summary")


def test_touch_strokes_draw_too(page):
    """Fingers and pens arrive as pointer events with pointerType "touch" / "pen"."""
    box = page.locator("#pad").bounding_box()
    with page.expect_response(lambda r: r.url.endswith("/predict")):
        page.evaluate(
            """([x, y, w, h]) => {
                const pad = document.getElementById('pad');
                const fire = (type, fy) => pad.dispatchEvent(new PointerEvent(type, {
                    pointerId: 7, pointerType: 'touch', isPrimary: true, bubbles: true,
                    clientX: x + 0.5 * w, clientY: y + fy * h}));
                fire('pointerdown', 0.15);
                for (let i = 1; i <= 20; i++) fire('pointermove', 0.15 + 0.7 * i / 20);
                fire('pointerup', 0.85);
            }""",
            [box["x"], box["y"], box["width"], box["height"]],
        )
    page.wait_for_function("() => document.getElementById('top-class').textContent !== '?'")
    assert page.text_content("#top-class") == "1"


def test_an_upload_error_clears_the_previous_answer(page, tmp_path):
    """Issue 8.6: after a refused upload the page kept showing the previous digit's answer and
    28x28 image, as if they belonged to the refused file."""
    draw(page, STROKES["1"])
    assert page.text_content("#top-class") == "1"
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    with page.expect_response(lambda r: r.url.endswith("/predict")) as answer:
        page.set_input_files("#upload", str(bad))
    assert answer.value.status == 422
    page.wait_for_function("() => document.getElementById('status').classList.contains('error')")
    assert "broken.png" in page.text_content("#status")
    assert page.text_content("#top-class") == "?"
    assert chart(page) == [0.0] * 10
    seen_ink = page.evaluate(
        "() => document.getElementById('seen').getContext('2d').getImageData(0, 0, 28, 28)"
        ".data.reduce((a, b) => a + b, 0)"
    )
    assert seen_ink == 0
    assert page.locator("#activations .layer").count() == 0


def test_api_docs_render_offline_under_their_csp(browser, server):
    """Issue 8.5: /docs loaded Swagger UI from a CDN, blank offline. Now it renders from the
    installed package, nothing else is contacted, and its CSP blocks nothing it needs."""
    page = browser.new_page()
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.add_init_script(
        "window.violations = []; document.addEventListener('securitypolicyviolation',"
        " e => window.violations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    page.goto(server + "/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = page.eval_on_selector_all(
        ".opblock-summary-path", "nodes => nodes.map(n => n.dataset.path)"
    )
    assert {"/predict", "/model", "/report", "/health"} <= set(paths)
    # Try the API from the page, as a reader of the docs would.
    page.click("#operations-default-health_health_get .opblock-summary")
    page.click("text=Try it out")
    page.click("text=Execute")
    page.wait_for_selector(".live-responses-table .response-col_status")
    page.wait_for_selector(".live-responses-table .response-col_description .microlight")
    assert '"ok"' in page.text_content(
        ".live-responses-table .response-col_description .microlight"
    )
    violations = page.evaluate("() => window.violations")
    assert all(url.startswith(server) or url.startswith("data:") for url in requests), requests
    assert violations == []
    page.close()
