"""The playground page in a real headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright): the perceptron never solves XOR, one hidden layer of 4 does, two layers of 8
solve the spirals, and "as Python" shows the program.

Screenshots go to ``$MULTILAYER_SCREENSHOTS`` if set (docs/images/ holds the ones the docs
show: ``MULTILAYER_SCREENSHOTS=docs/images pytest tests/test_playground_browser.py``), else to
pytest's temporary directory.
"""

import time

import pytest

from helpers.browser import CHROMIUM, chromium, screenshot_dir, served

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} not found: apt-get install chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
uvicorn = pytest.importorskip("uvicorn", reason="pip install 'multilayer[app]'")

from multilayer.app.playground import create_playground_app  # noqa: E402

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server():
    app = create_playground_app()
    with served(app) as url:
        yield app, url


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory):
    return screenshot_dir(tmp_path_factory)


@pytest.fixture
def page(browser, server):
    app, url = server
    page = browser.new_page(viewport={"width": 1360, "height": 820})
    requests, errors = [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url + "/")
    page.wait_for_function("() => Number(document.body.dataset.frames || 0) > 0")
    yield page
    page.close()
    assert errors == []
    # Offline: nothing but this server is ever contacted.
    assert all(u.startswith(url) or u.startswith(("data:", "blob:")) for u in requests), requests
    # The closed tab freed its model.
    deadline = time.monotonic() + 10
    while app.state.pages and time.monotonic() < deadline:
        time.sleep(0.05)
    assert app.state.pages == {}


def configured(page, **expected) -> None:
    """Wait until the server sent the points for a configuration with these settings."""
    page.wait_for_function(
        """(expected) => {
            const config = JSON.parse(document.body.dataset.config || "{}");
            return Object.entries(expected).every(
                ([key, value]) => JSON.stringify(config[key]) === JSON.stringify(value))
                && document.body.dataset.step === "0";
        }""",
        arg=expected,
    )
    assert page.text_content("#message") == ""


def play_until(page, condition: str, arg, timeout_ms: int = 60_000) -> None:
    page.click("#play")
    page.wait_for_function(condition, arg=arg, timeout=timeout_ms)
    page.click("#play")  # pause
    page.wait_for_function("() => document.getElementById('play').textContent === 'Play'")


def number(page, key: str) -> float:
    return float(page.evaluate("(key) => document.body.dataset[key]", key))


def test_perceptron_cycles_on_xor_then_a_hidden_layer_solves_it(page, screenshots):
    page.select_option("#dataset", "xor")
    page.click("#remove-layer")
    configured(page, hidden=[])
    page.select_option("#activation", "step")
    configured(page, hidden=[], activation="step", dataset="xor")
    assert "Rosenblatt's perceptron" in page.text_content("#mode")
    page.select_option("#speed", "100")
    # 200 epochs of the perceptron rule (25 updates of 10 points each).
    play_until(page, "(n) => Number(document.body.dataset.step) >= n", 5000)
    assert number(page, "maxTrainAccuracy") < 1.0  # never all right, on any frame
    assert number(page, "trainAccuracy") < 0.8
    assert page.evaluate("() => document.body.dataset.network") == "2-1"
    page.screenshot(path=str(screenshots / "playground-perceptron-xor.png"), full_page=True)

    page.select_option("#activation", "tanh")
    page.click("#add-layer")
    configured(page, hidden=[4], activation="tanh")
    page.select_option("#speed", "20")
    play_until(
        page,
        "(limit) => Number(document.body.dataset.maxTestAccuracy) >= 0.95"
        " || Number(document.body.dataset.step) >= limit",
        10_000,
    )
    # Reached on a frame within the limit (the frame after the pause may differ a little).
    assert number(page, "maxTestAccuracy") >= 0.95, number(page, "step")
    assert page.evaluate("() => document.body.dataset.network") == "2-4-1"
    page.screenshot(path=str(screenshots / "playground-xor-hidden-4.png"), full_page=True)

    page.click("#as-python")
    page.wait_for_selector("#python-dialog[open]")
    code = page.text_content("#python-code")
    assert "Dense(4, activation='tanh', input_shape=(2,)" in code
    assert f"updates, batch_size = {int(number(page, 'step'))}, 10" in code
    page.screenshot(path=str(screenshots / "playground-as-python.png"))
    page.click("#python-close")


def test_two_hidden_layers_of_eight_solve_the_spirals(page, screenshots):
    page.select_option("#dataset", "spirals")
    for name in ("x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)"):
        page.check(f"[id='feature-{name}']")
    page.select_option("#optimizer", "adam")
    page.select_option("#learning-rate", "0.03")
    page.click("#add-layer")
    for layer in (0, 1):
        for _ in range(4):
            page.click(f"#units .more[data-layer='{layer}']")
    configured(page, hidden=[8, 8], dataset="spirals", optimizer="adam")
    assert page.text_content("#units").count("8 neurons") == 2
    page.select_option("#speed", "20")
    play_until(
        page,
        "(limit) => Number(document.body.dataset.maxTestAccuracy) >= 0.9"
        " || Number(document.body.dataset.step) >= limit",
        8000,
    )
    assert number(page, "maxTestAccuracy") >= 0.9, number(page, "step")
    page.check("#show-test")
    page.screenshot(path=str(screenshots / "playground-spirals.png"), full_page=True)


def test_a_bad_network_gets_a_clear_message(page):
    page.select_option("#activation", "step")  # with the default hidden layer of 4
    page.wait_for_function("() => document.body.dataset.error")
    assert page.text_content("#message").startswith(
        "the step activation has no gradient to train hidden layers with"
    )
    page.click("#remove-layer")  # now it is the perceptron: the message goes away
    configured(page, hidden=[], activation="step")
