"""`mlp playground`'s server: sessions, server-sent frames, commands, limits and errors."""

import base64
import json
import threading
import time

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("fastapi", reason="pip install 'multilayer[app]'")
uvicorn = pytest.importorskip("uvicorn")
from fastapi.testclient import TestClient  # noqa: E402

from multilayer.app.playground import (  # noqa: E402
    MAX_COMMAND_BYTES,
    create_playground_app,
    encode_frame,
)
from multilayer.playground import PlaygroundConfig, Session  # noqa: E402


@pytest.fixture
def app():
    return create_playground_app(max_pages=3, grid=10)


@pytest.fixture
def client(app):
    return TestClient(app, base_url="http://localhost")


def new_session(client, config=None) -> str:
    response = client.post("/api/sessions", json=config or {})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_page_options_and_headers(client):
    page = client.get("/")
    assert page.status_code == 200
    assert "content-security-policy" in page.headers
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    for asset in ("/static/playground.js", "/static/playground.css"):
        assert client.get(asset).status_code == 200
    # Offline: the page and its assets name no other site.
    for path in ("/", "/static/playground.js", "/static/playground.css"):
        text = client.get(path).text
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path
    options = client.get("/api/options").json()
    assert options["datasets"] == ["separable", "xor", "circles", "spirals", "blobs", "regression"]
    assert options["max_hidden_layers"] == 6 and options["max_units"] == 8
    assert PlaygroundConfig.from_dict(options["defaults"]) == PlaygroundConfig()


def test_other_host_names_are_refused(client):
    response = client.get("/api/options", headers={"host": "evil.example"})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("host 'evil.example' is not served here")


def test_the_python_program_is_served(client):
    session = new_session(client, {"dataset": "circles", "hidden": [3]})
    client.post(f"/api/sessions/{session}/commands", json={"action": "step"})
    program = client.get(f"/api/sessions/{session}/python")
    assert program.status_code == 200
    assert program.headers["content-type"].startswith("text/plain")
    assert "make_dataset(\n    'circles'" in program.text
    assert "updates, batch_size = 1, 10" in program.text


@pytest.mark.parametrize(
    "body, status, message",
    [
        (b"{", 400, "the body is not valid JSON"),
        (b"[" * 10_000, 400, "the body is not valid JSON: nested too deeply"),
        (b'{"action": NaN}', 400, "the body is not valid JSON: NaN is not a number JSON allows"),
        (b"[1]", 422, "a command is a JSON object with an 'action'"),
        (b'{"action": "fly"}', 422, "unknown action 'fly': send one of play, pause, step"),
        (b'{"action": "play", "x": 1}', 422, "unexpected field 'x' for 'play'"),
        (
            b'{"action": "speed", "updates": 0}',
            422,
            "updates must be an integer from 1 to 100, got 0",
        ),
        (b'{"action": "speed", "updates": "5"}', 422, "updates must be an integer from 1 to 100"),
        (
            b'{"action": "config", "config": {"hidden": [4, 4, 4, 4, 4, 4, 4]}}',
            422,
            "at most 6 hidden layers, got 7",
        ),
        (
            b'{"action": "config", "config": {"hidden": [50]}}',
            422,
            "neurons in a hidden layer must be between 1 and 8, got 50",
        ),
        (b'{"action": "config", "config": "big"}', 422, "the configuration must be a JSON object"),
        (b'{"action": "config"}', 422, "the configuration must be a JSON object, got NoneType"),
        (
            b'{"action": "config", "config": {"activation": "step", "hidden": [2]}}',
            422,
            "the step activation has no gradient",
        ),
        (
            b'{"action": "config", "config": {"learning_rate": 1e999}}',
            422,
            "learning_rate must be between",
        ),
    ],
)
def test_bad_commands_get_a_clear_error(client, body, status, message):
    session = new_session(client)
    response = client.post(
        f"/api/sessions/{session}/commands",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == status, response.text
    assert str(response.json()["detail"]).startswith(message), response.json()


def test_oversized_commands_unknown_sessions_and_bad_configs(client):
    session = new_session(client)
    big = client.post(
        f"/api/sessions/{session}/commands",
        content=b" " * (MAX_COMMAND_BYTES + 1),
        headers={"content-type": "application/json"},
    )
    assert big.status_code == 413
    for method, path in (
        ("POST", "/api/sessions/nope/commands"),
        ("GET", "/api/sessions/nope/events"),
        ("GET", "/api/sessions/nope/python"),
    ):
        response = client.request(method, path, json={"action": "play"})
        assert response.status_code == 404
        assert response.json()["detail"].startswith("no such playground session")
    bad = client.post("/api/sessions", json={"dataset": "moons"})
    assert bad.status_code == 422
    assert bad.json()["detail"].startswith("unknown dataset 'moons'")


def test_open_pages_are_bounded_and_unconnected_sessions_expire(app, client):
    for _ in range(3):
        new_session(client)
    refused = client.post("/api/sessions", json={})
    assert refused.status_code == 503
    assert refused.json()["detail"] == (
        "too many open playground pages (3): close one (or wait 30 s) and reload"
    )
    short = create_playground_app(max_pages=1, grid=10, connect_timeout=0.0)
    with TestClient(short, base_url="http://localhost") as other:
        new_session(other)
        new_session(other)  # the first never opened its stream: dropped
        assert len(short.state.pages) == 1


def test_encode_frame_round_trips_the_maps():
    session = Session(PlaygroundConfig(hidden=(2,)), grid=8)
    session.step(3)
    frame = session.frame()
    encoded = json.loads(json.dumps(encode_frame(frame, regression=False)))
    assert encoded["step"] == 3 and encoded["grid"] == 8
    codes = np.frombuffer(base64.b64decode(encoded["boundary"]["data"]), dtype=np.uint8)
    np.testing.assert_allclose(codes / 255, frame.boundary.ravel(), atol=1 / 255)
    neuron = encoded["neurons"][1][0]
    values = np.frombuffer(base64.b64decode(neuron["data"]), dtype=np.uint8)
    decoded = (values / 127.5 - 1) * neuron["scale"]
    np.testing.assert_allclose(decoded, frame.neurons[1][0].ravel(), atol=neuron["scale"] / 127)
    assert (
        encoded["weights"][0]["kernel"] == np.round(frame.weights[0][0].astype(float), 4).tolist()
    )


# --------------------------------------------------------------- streaming, on a real server


@pytest.fixture
def live():
    app = create_playground_app(max_pages=2, grid=10, max_fps=200)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield app, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def events(response):
    """(event, data) pairs from a server-sent event stream."""
    name = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            yield name, json.loads(line[6:])


def test_frames_stream_while_playing_and_a_closed_page_frees_its_model(live):
    app, url = live
    with httpx.Client(base_url=url, timeout=20) as client:
        session = new_session(client, {"dataset": "xor", "hidden": [4]})
        assert list(app.state.pages) == [session]
        with client.stream("GET", f"/api/sessions/{session}/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            received = events(stream)
            name, data = next(received)
            assert name == "data" and len(data["train"]) == 250 and len(data["test"]) == 250
            name, frame = next(received)
            assert name == "frame" and frame["step"] == 0
            # A second stream for the same session is refused.
            second = client.get(f"/api/sessions/{session}/events")
            assert second.status_code == 409
            client.post(f"/api/sessions/{session}/commands", json={"action": "speed", "updates": 7})
            client.post(f"/api/sessions/{session}/commands", json={"action": "play"})
            steps = [next(received)[1]["step"] for _ in range(5)]
            assert steps == sorted(steps) and steps[-1] - steps[0] == 28  # 7 updates a frame
            answer = client.post(f"/api/sessions/{session}/commands", json={"action": "pause"})
            assert answer.json()["playing"] is False
            # A new configuration sends the new points, then its first frame.
            client.post(
                f"/api/sessions/{session}/commands",
                json={
                    "action": "config",
                    "config": {"dataset": "circles", "hidden": [], "activation": "step"},
                },
            )
            data = next(data for name, data in received if name == "data")
            assert data["config"]["activation"] == "step"
            name, frame = next(received)
            assert frame["step"] == 0 and [len(layer) for layer in frame["neurons"]] == [2, 1]
        deadline = time.monotonic() + 10
        while app.state.pages and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.state.pages == {}
        gone = client.post(f"/api/sessions/{session}/commands", json={"action": "play"})
        assert gone.status_code == 404


def test_mlp_playground_serves_and_stops_on_ctrl_c_with_pages_open(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "multilayer.cli.main", "playground", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("playground on http://127.0.0.1:"), line
        url = line.split()[2].rstrip("/")
        with httpx.Client(base_url=url, timeout=20) as client:
            deadline = time.monotonic() + 30
            while True:  # the socket is bound before the message, listening just after
                try:
                    assert client.get("/").status_code == 200
                    break
                except httpx.ConnectError:
                    assert time.monotonic() < deadline, "the server did not start"
                    time.sleep(0.1)
            session = new_session(client)
            with client.stream("GET", f"/api/sessions/{session}/events") as stream:
                received = events(stream)
                assert next(received)[0] == "data"
                process.send_signal(signal.SIGINT)  # Ctrl-C with the page still open
                assert process.wait(timeout=15) == 130  # mlp's exit code for Ctrl-C
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stderr = process.stderr.read()
    assert "Traceback" not in stderr and "ERROR" not in stderr, stderr


_COMMAND_WORDS = ["action", "config", "updates", "play", "pause", "step", "reset", "speed"]
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False)
    | st.sampled_from(_COMMAND_WORDS + ["xor", "tanh", "step", "x1"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(_COMMAND_WORDS + ["hidden", "dataset"]), children, max_size=4
        )
    ),
    max_leaves=10,
)
_bodies = st.one_of(
    _json_values.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=300),
)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD"]),
    route=st.sampled_from(
        [
            "/",
            "/health",
            "/api/options",
            "/api/sessions",
            "/api/sessions/{id}/commands",
            "/api/sessions/{id}/python",
            "/api/sessions/nope/events",
            "/api/sessions/{id}/nothing",
            "/static/playground.js",
            "/static/../playground.py",
        ]
    ),
    content_type=st.sampled_from(["application/json", "text/plain", "multipart/form-data", ""]),
    body=_bodies,
)
def test_fuzzed_requests_never_get_a_500(fuzz_client, method, route, content_type, body):
    client, session = fuzz_client
    headers = {"content-type": content_type} if content_type else {}
    response = client.request(method, route.replace("{id}", session), content=body, headers=headers)
    if response.status_code == 503:  # the page limit, the one deliberate 5xx
        assert response.json()["detail"].startswith("too many open playground pages (3)")
    else:
        assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code >= 400 and method != "HEAD":
        assert "detail" in response.json()


@pytest.fixture(scope="module")
def fuzz_client():
    """A client and one real session (its stream never opened) shared by the examples."""
    app = create_playground_app(max_pages=3, grid=10, connect_timeout=3600)
    with TestClient(app, base_url="http://localhost") as client:
        yield client, new_session(client)
