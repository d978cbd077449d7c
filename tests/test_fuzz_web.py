"""Fuzz targets for the web app's HTTP routes and for the run-directory JSON files it reads.

The properties (issue 8, "make CI catch this class"):

* HTTP: whatever the method, path, ``Host``, content type and body, every route answers with
  a status below 500, and every error (4xx) carries a JSON ``{"detail": ...}`` (HEAD aside:
  it has no body). The TestClient re-raises any exception that escapes the app, so an
  unhandled error fails the test with its traceback. Memory stays bounded (resident set
  measured over the runs).
* Run JSON (config.json, metrics.json, history.json): whatever they hold, `RunDir` returns
  a JSON object (or None) or raises `DataError` naming the file; `create_app` on the run
  either starts, and then ``GET /model`` answers 200, or raises `DataError`.

Run with ``-s`` to see the outcomes per target.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="pip install 'multilayer[app]'")
pytest.importorskip("httpx", reason="the TestClient needs httpx")
Image = pytest.importorskip("PIL.Image", reason="pip install 'multilayer[images]'")

from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from multilayer.app.server import create_app  # noqa: E402
from multilayer.errors import DataError  # noqa: E402
from multilayer.runs import RunDir  # noqa: E402
from test_app import png_bytes, small_model_file  # noqa: E402
from test_fuzz import RSS_LIMIT, _mutate, _rss  # noqa: E402

FUZZ_CASES = 300  # mutation cases per target
PROPERTY = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

ROUTES = [
    "/",
    "/health",
    "/model",
    "/report",
    "/predict",
    "/docs",
    "/redoc",
    "/openapi.json",
    "/static/index.html",
    "/static/app.js",
    "/static/docs.js",
    "/static/../server.py",
    "/static/%2e%2e/server.py",
    "/swagger-ui/swagger-ui.css",
    "/swagger-ui/../../../etc/passwd",
    "/docs/oauth2-redirect",
    "/nothing",
]
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
CONTENT_TYPES = [
    None,
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    "multipart/form-data",
    "multipart/form-data; boundary=b",
    "multipart/form-data; boundary=",
    "multipart/form-data; boundary=" + "x" * 300,
    "text/plain",
    "image/png",
    "application/x-www-form-urlencoded",
    ";;;",
]
HOSTS = ["localhost", "localhost:8000", "127.0.0.1", "[::1]:1", "evil.example", "", "a" * 300]


def _multipart(data: bytes, field: str = "file", boundary: str = "b") -> bytes:
    return (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="d.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )


def _seed_bodies() -> list[bytes]:
    import numpy as np

    digit = np.zeros((28, 28), dtype=np.uint8)
    digit[6:22, 12:16] = 255
    png = png_bytes(digit)
    return [
        png,
        _multipart(png),
        json.dumps({"pixels": (digit.ravel() / 255).tolist()}).encode(),
        json.dumps({"pixels": digit.ravel().tolist(), "invert": True, "center": True}).encode(),
        b"[" * 2000,
        b"",
    ]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("fuzz-web") / "run"
    run.mkdir()
    small_model_file(run)
    RunDir(run).write_config({"dataset": "mnist", "seed": 0, "flags": {"dataset": "mnist"}})
    RunDir(run).write_metrics({"test_accuracy": 0.5, "test_loss": 1.0})
    (run / "report").mkdir()
    (run / "report" / "index.html").write_text("<!doctype html><title>report</title>")
    return run


@pytest.fixture(scope="module")
def client(run_dir):
    # Small limits so that the fuzz reaches every branch (413, 503) cheaply.
    app = create_app(run_dir, max_body_bytes=50_000, decode_slots=1, decode_queue=1)
    with TestClient(app, base_url="http://localhost") as test_client:
        yield test_client


def _check(response, method: str) -> str:
    """The property every answer must have; returns a short label for the statistics."""
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400 and method != "HEAD":
        assert response.headers["content-type"].startswith("application/json"), response.text
        assert "detail" in response.json(), response.text
    return f"{method} {response.status_code}"


OUTCOMES: Counter = Counter()


@PROPERTY
@given(
    method=st.sampled_from(METHODS),
    path=st.one_of(st.sampled_from(ROUTES), st.from_regex(r"\A/(?!/)[A-Za-z0-9._~%/-]{0,40}\Z")),
    query=st.one_of(st.just(""), st.from_regex(r"\A[A-Za-z0-9=&%._-]{0,30}\Z")),
    host=st.just("localhost") | st.sampled_from(HOSTS),  # half the requests get past the Host check
    content_type=st.sampled_from(CONTENT_TYPES),
    body=st.one_of(
        st.binary(max_size=2000),
        st.sampled_from(_seed_bodies()),
        st.recursive(
            st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=5),
            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
            max_leaves=30,
        ).map(lambda value: json.dumps(value).encode()),
    ),
)
def test_every_route_answers_any_request_without_a_server_error(
    client, method, path, query, host, content_type, body
):
    headers = {"host": host}
    if content_type is not None:
        headers["content-type"] = content_type
    url = path + ("?" + query if query else "")
    response = client.request(
        method, url, headers=headers, content=body if method not in ("GET", "HEAD") else None
    )
    OUTCOMES[_check(response, method)] += 1


def test_predict_mutation_fuzz(client):
    """Mutated valid bodies (PNG uploads, multipart framing, JSON pixels) at POST /predict."""
    rng = random.Random("fuzz-web-predict")
    seeds = _seed_bodies()
    baseline = _rss()
    outcomes: Counter = Counter()
    for case in range(FUZZ_CASES):
        seed = rng.choice(seeds)
        body = _mutate(rng, seed) if seed else b""
        kind = rng.randrange(3)
        if kind == 0:
            response = client.post("/predict", files={"file": ("d.png", body, "image/png")})
        elif kind == 1:
            response = client.post(
                "/predict",
                content=body,
                headers={"content-type": "multipart/form-data; boundary=b"},
            )
        else:
            response = client.post(
                "/predict", content=body, headers={"content-type": "application/json"}
            )
        outcomes[_check(response, "POST")] += 1
        if case % 50 == 0:
            assert _rss() - baseline < RSS_LIMIT, f"memory grew by {(_rss() - baseline) >> 20} MiB"
    assert _rss() - baseline < RSS_LIMIT
    print(f"\nfuzz POST /predict: {FUZZ_CASES} cases, {dict(outcomes)}")
    print(f"fuzz routes: {dict(OUTCOMES)}")


# --------------------------------------------------------------------------- run-directory JSON

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["/home/user/data/x.npz", "mnist", "C:\\data\\x.npz"]),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(
            st.sampled_from(
                ["dataset", "flags", "name", "source", "test_accuracy", "epoch", "loss"]
            )
            | st.text(max_size=6),
            inner,
            max_size=5,
        )
    ),
    max_leaves=25,
)
RUN_FILES = ["config.json", "metrics.json", "history.json"]


def _check_run(run_path: Path) -> str:
    """RunDir and the app on a run whose JSON files may hold anything."""
    run = RunDir(run_path)
    for name, read in (
        ("config.json", lambda: run.config),
        ("metrics.json", lambda: run.metrics),
        ("history.json", lambda: run.history),
    ):
        try:
            value = read()
        except DataError as error:
            assert str(error).startswith(str(run_path / name)), error
        else:
            assert value is None or isinstance(value, dict)
    with contextlib.suppress(DataError):
        assert isinstance(run.dataset_argument, str)
    try:
        app = create_app(run_path)
    except DataError as error:
        assert str(error).startswith(str(run_path)), error
        return "refused"
    with TestClient(app, base_url="http://localhost") as client:
        response = client.get("/model")
    assert response.status_code == 200, response.text
    assert "/home/user" not in response.text and "C:\\\\data" not in response.text
    return "served"


@pytest.fixture(scope="module")
def json_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("fuzz-run-json") / "run"
    run.mkdir()
    small_model_file(run)
    return run


@PROPERTY
@given(name=st.sampled_from(RUN_FILES), value=JSON_VALUES)
def test_run_json_of_any_shape(json_run, name, value):
    for other in RUN_FILES:
        (json_run / other).unlink(missing_ok=True)
    (json_run / name).write_text(json.dumps(value))
    OUTCOMES[f"run json {_check_run(json_run)}"] += 1


def test_run_json_mutation_fuzz(json_run):
    """Mutated bytes of real run files (as `mlp train` writes them)."""
    seeds = {
        "config.json": json.dumps(
            {
                "recipe": {"name": "fast", "hidden": [128]},
                "flags": {"dataset": "/data/digits.npz", "hidden": None},
                "seed": 1,
                "dataset": {"name": "digits.npz", "source": "/data/digits.npz"},
            },
            indent=2,
        ).encode(),
        "metrics.json": json.dumps(
            {"test_accuracy": 0.97, "test_loss": 0.1, "confusion_matrix": [[1, 0], [0, 1]]}
        ).encode(),
        "history.json": json.dumps({"epoch": [0, 1], "loss": [0.5, 0.3]}).encode(),
    }
    rng = random.Random("fuzz-run-json")
    baseline = _rss()
    outcomes: Counter = Counter()
    for _ in range(FUZZ_CASES // 3):
        for other in RUN_FILES:
            (json_run / other).write_bytes(seeds[other])
        name = rng.choice(RUN_FILES)
        (json_run / name).write_bytes(_mutate(rng, seeds[name]))
        outcomes[_check_run(json_run)] += 1
    assert _rss() - baseline < RSS_LIMIT
    print(f"\nfuzz run JSON: {FUZZ_CASES // 3} cases, {dict(outcomes)}")
