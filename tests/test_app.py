"""The web app's JSON API and page, through FastAPI's TestClient, with a model trained on MNIST."""

import io
import json
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="pip install 'multilayer[app]'")
pytest.importorskip("httpx", reason="the TestClient needs httpx")
Image = pytest.importorskip("PIL.Image", reason="pip install 'multilayer[images]'")

from fastapi.testclient import TestClient  # noqa: E402

from multilayer.app.server import MAX_BODY_BYTES, STATIC_DIR, create_app  # noqa: E402
from multilayer.data.images import preprocess  # noqa: E402
from multilayer.datasets import mnist  # noqa: E402
from multilayer.inference import predict_image, predict_images  # noqa: E402
from multilayer.runs import RunDir  # noqa: E402


@pytest.fixture(scope="module")
def test_set():
    _, (x_test, y_test) = mnist.load_data()
    return x_test, y_test


@pytest.fixture(scope="module")
def model(trained_run):
    return RunDir(trained_run).load_model(compile=False)


@pytest.fixture(scope="module")
def client(trained_run):
    with TestClient(create_app(trained_run), base_url="http://localhost") as test_client:
        yield test_client


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def post_file(client, data: bytes, name="digit.png", content_type="image/png"):
    return client.post("/predict", files={"file": (name, data, content_type)})


# --------------------------------------------------------------------------- predictions


def test_uploaded_png_is_preprocessed_like_mlp_predict(client, model, test_set):
    x_test, y_test = test_set
    for index in range(8):
        data = png_bytes(x_test[index])
        response = post_file(client, data)
        assert response.status_code == 200, response.text
        body = response.json()
        # The same preprocessing and model as `mlp predict`, called directly.
        expected_image = preprocess(data)
        expected = predict_image(model, expected_image)
        np.testing.assert_allclose(body["probabilities"], expected, atol=1e-5)
        assert body["top_class"] == int(np.argmax(expected))
        np.testing.assert_allclose(body["image"], expected_image, atol=1e-4)


def test_uploaded_test_digits_are_mostly_recognised(client, test_set):
    x_test, y_test = test_set
    hits = sum(
        post_file(client, png_bytes(x_test[i])).json()["top_class"] == y_test[i] for i in range(40)
    )
    assert hits >= 34  # a 1-epoch model is ~95% accurate; recentring costs a little


def test_dark_ink_on_light_paper_gives_the_same_answer(client, test_set):
    x_test, _ = test_set
    for index in range(5):
        white_on_black = post_file(client, png_bytes(x_test[index])).json()
        jpeg = io.BytesIO()
        Image.fromarray(255 - x_test[index]).resize((140, 140)).save(jpeg, format="JPEG")
        black_on_white = post_file(client, jpeg.getvalue(), "scan.jpg", "image/jpeg").json()
        assert black_on_white["top_class"] == white_on_black["top_class"]


def test_response_shapes_and_activations(client, model, test_set):
    x_test, _ = test_set
    body = post_file(client, png_bytes(x_test[0])).json()
    probabilities = np.array(body["probabilities"])
    assert probabilities.shape == (10,)
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-4)
    image = np.array(body["image"])
    assert image.shape == (28, 28)
    assert image.min() >= 0 and image.max() == pytest.approx(1.0, abs=1e-3)
    dense = [layer for layer in model.layers if type(layer).__name__ == "Dense"]
    assert [a["name"] for a in body["activations"]] == [layer.name for layer in dense]
    assert [a["units"] for a in body["activations"]] == [layer.units for layer in dense]
    assert [len(a["values"]) for a in body["activations"]] == [layer.units for layer in dense]
    hidden = np.array(body["activations"][0]["values"])
    assert body["activations"][0]["activation"] == "relu" and hidden.min() >= 0
    # The last Dense layer's output is the softmax itself.
    np.testing.assert_allclose(body["activations"][-1]["values"], probabilities, atol=1e-4)


def test_saliency_maps_are_those_of_the_library(client, model, test_set):
    from multilayer.explain import DEFAULT_METHOD, explain, logits

    x_test, _ = test_set
    for index in range(3):
        pixels = x_test[index].astype(np.float64) / 255
        body = client.post("/predict", json={"pixels": pixels.ravel().tolist()}).json()
        maps = body["saliency"]
        expected = explain(model, pixels, DEFAULT_METHOD)
        z = logits(model, pixels[None])[0]
        assert maps["method"] == DEFAULT_METHOD == "gradient_x_input"
        assert maps["top_class"] == body["top_class"] == expected.top_class == int(np.argmax(z))
        assert maps["runner_up"] == expected.runner_up == int(np.argsort(-z)[1])
        for key in ("top", "versus"):
            got = np.array(maps[key])
            assert got.shape == (28, 28)
            # rounded to 5 decimals; computed in float32 by the app
            np.testing.assert_allclose(got, getattr(expected, key), atol=2e-5, rtol=1e-4)
            assert np.abs(got).max() > 0.01
            assert np.all(got[pixels == 0] == 0)  # gradient x input: no ink, no say


def test_a_model_not_ending_in_dense_gets_no_saliency(tmp_path):
    from multilayer.layers import Activation, Dense, Flatten, Input
    from multilayer.models import Sequential

    model = Sequential([Input((28, 28)), Flatten(), Dense(10), Activation("softmax")], seed=0)
    model.build()
    model.save(tmp_path / "model.safetensors")
    with small_client(tmp_path / "model.safetensors") as client:
        response = client.post("/predict", json={"pixels": [0.5] * 784})
    assert response.status_code == 200, response.text
    assert response.json()["saliency"] is None


def test_json_pixels_are_fed_as_they_are(client, model, test_set):
    x_test, _ = test_set
    for index in range(5):
        expected = predict_images(model, x_test[index : index + 1], pixel_max=255.0)[0]
        raw = client.post("/predict", json={"pixels": x_test[index].ravel().tolist()})
        unit = client.post("/predict", json={"pixels": (x_test[index].ravel() / 255).tolist()})
        inverted = client.post(
            "/predict", json={"pixels": (255 - x_test[index].ravel()).tolist(), "invert": True}
        )
        for response in (raw, unit, inverted):
            assert response.status_code == 200, response.text
            np.testing.assert_allclose(response.json()["probabilities"], expected, atol=1e-5)


def test_json_pixels_can_be_centred(client, test_set):
    x_test, _ = test_set
    original = client.post("/predict", json={"pixels": x_test[0].ravel().tolist()}).json()
    # Push the digit into a corner, shrunk: uncentred, it is a different picture.
    small = np.asarray(Image.fromarray(x_test[0]).resize((14, 14)))
    corner = np.zeros((28, 28), dtype=np.uint8)
    corner[:14, :14] = small
    centred = client.post("/predict", json={"pixels": corner.ravel().tolist(), "center": True})
    assert centred.status_code == 200, centred.text
    assert centred.json()["top_class"] == original["top_class"]
    # MNIST's geometry: the digit fits a 20x20 box, its centre of mass is at (14, 14).
    image = np.array(centred.json()["image"])
    rows, cols = np.nonzero(image)
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 <= 21
    grid = np.arange(28)
    assert image.sum(axis=1) @ grid / image.sum() == pytest.approx(14, abs=1)
    assert image.sum(axis=0) @ grid / image.sum() == pytest.approx(14, abs=1)


def test_concurrent_requests_get_their_own_answers(client, test_set):
    """Layers reuse work buffers: without the predictor's lock, parallel requests would mix."""
    x_test, _ = test_set
    payloads = [{"pixels": x_test[i].ravel().tolist()} for i in range(12)]
    sequential = [client.post("/predict", json=p).json()["probabilities"] for p in payloads]
    with ThreadPoolExecutor(max_workers=6) as pool:
        parallel = list(
            pool.map(
                lambda p: client.post("/predict", json=p).json()["probabilities"], payloads * 3
            )
        )
    assert parallel == sequential * 3


# --------------------------------------------------------------------------- bad requests


def _pixels(value, n=784):
    return {"pixels": [value] * n}


@pytest.mark.parametrize(
    ("kwargs", "status", "message"),
    [
        ({"json": _pixels(0.5, 783)}, 422, "784"),
        ({"json": _pixels(0.5, 785)}, 422, "784"),
        ({"json": _pixels(256)}, 422, "less than or equal to 255"),
        ({"json": _pixels(-1)}, 422, "greater than or equal to 0"),
        ({"json": _pixels("1")}, 422, "valid number"),
        ({"json": _pixels(None)}, 422, "valid number"),
        ({"json": {"pixels": [[0.5] * 28] * 28}}, 422, "valid number"),
        ({"json": {}}, 422, "Field required"),
        ({"json": [0.5] * 784}, 422, "dictionary"),
        ({"json": {**_pixels(0.0), "center": True}}, 422, "blank"),
        (
            {"content": b'{"pixels": [NaN]}', "headers": {"content-type": "application/json"}},
            400,
            "NaN",
        ),
        (
            {"content": b'{"pixels": [', "headers": {"content-type": "application/json"}},
            400,
            "not valid JSON",
        ),
        (
            {"content": b"\xff\xfe", "headers": {"content-type": "application/json"}},
            400,
            "not valid JSON",
        ),
        (
            {"content": b"0.5,0.5", "headers": {"content-type": "text/csv"}},
            415,
            "unsupported content type",
        ),
        ({"content": b"x"}, 415, "(none)"),
        ({"files": {"file": ("d.png", b"not an image", "image/png")}}, 422, "not a PNG or JPEG"),
        ({"files": {"file": ("d.png", b"", "image/png")}}, 422, "empty"),
        (
            {"files": {"file": ("d.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "image/png")}},
            422,
            "d.png",
        ),
        ({"files": {"image": ("d.png", b"x", "image/png")}}, 422, "'file' field"),
        (
            {"data": {"file": "just text"}, "files": {"other": ("o", b"", "text/plain")}},
            422,
            "'file' field",
        ),
        (
            {"content": b"--x\r\n", "headers": {"content-type": "multipart/form-data"}},
            400,
            "boundary",
        ),
        (
            {"content": b"junk", "headers": {"content-type": "multipart/form-data; boundary=b"}},
            400,
            "multipart",
        ),
    ],
)
def test_bad_requests_get_a_4xx_with_a_json_detail(client, kwargs, status, message):
    response = client.post("/predict", **kwargs)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert message in (detail if isinstance(detail, str) else json.dumps(detail))


def test_a_blank_drawing_is_refused(client):
    response = post_file(client, png_bytes(np.zeros((280, 280))))
    assert response.status_code == 422
    assert "blank" in response.json()["detail"]


def test_bodies_over_the_size_limit_are_refused(client):
    big = b"\0" * (MAX_BODY_BYTES + 1)
    response = post_file(client, big)
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]


def test_chunked_bodies_over_the_size_limit_are_refused(client):
    def chunks():  # a generator body is sent chunked, without a Content-Length
        for _ in range(20):
            yield b"1" * 100_000

    response = client.post(
        "/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]


def test_an_image_with_too_many_pixels_is_refused(client):
    buffer = io.BytesIO()
    Image.new("L", (6000, 6000)).save(buffer, format="PNG")  # 36 Mpx compresses to ~40 kB
    assert len(buffer.getvalue()) < MAX_BODY_BYTES
    response = post_file(client, buffer.getvalue())
    assert response.status_code == 422
    assert "too large" in response.json()["detail"]


# --------------------------------------------------------------------------- model, report, page


def test_model_endpoint_describes_the_run(client, model, trained_run):
    info = client.get("/model").json()
    metrics = json.loads((Path(trained_run) / "metrics.json").read_text())
    assert info["params"] == model.count_params()
    assert [layer["type"] for layer in info["layers"]] == ["Flatten", "Rescaling", "Dense", "Dense"]
    assert [layer["units"] for layer in info["layers"][2:]] == [128, 10]
    assert info["classes"] == 10 and info["input_shape"] == [28, 28]
    assert info["metrics"]["test_accuracy"] == metrics["test_accuracy"]
    assert info["config"]["dataset"] == "mnist"


def test_report_is_served_once_written(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("report"))
    with TestClient(create_app(run), base_url="http://localhost") as client:
        assert client.get("/model").json()["report_url"] is None
        missing = client.get("/report")
        assert missing.status_code == 404 and "mlp report" in missing.json()["detail"]
        (run / "report").mkdir()
        (run / "report" / "index.html").write_text("<html>the report</html>")
        assert client.get("/model").json()["report_url"] == "/report"
        page = client.get("/report")
        assert page.status_code == 200 and "the report" in page.text
        assert page.headers["content-type"].startswith("text/html")


def test_a_bare_model_file_has_no_run_information(trained_run, tmp_path):
    model_file = shutil.copy(
        Path(trained_run) / "model.safetensors", tmp_path / "digits.safetensors"
    )
    with TestClient(create_app(model_file), base_url="http://localhost") as client:
        info = client.get("/model").json()
        assert info["metrics"] is None and info["config"] is None and info["report_url"] is None
        assert client.get("/report").status_code == 404


def test_bad_model_sources_fail_at_start_up(tmp_path):
    from multilayer.errors import ModelFileError

    with pytest.raises(FileNotFoundError):
        create_app(tmp_path / "missing.safetensors")
    with pytest.raises(ModelFileError):
        create_app(tmp_path)  # a directory without model.safetensors
    (tmp_path / "model.safetensors").write_bytes(b"not a model")
    with pytest.raises(ModelFileError):
        create_app(tmp_path / "model.safetensors")


def test_page_and_assets_load_nothing_from_elsewhere(client):
    page = client.get("/")
    assert page.status_code == 200
    assert '<canvas id="pad"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name in ("index.html", "app.js", "style.css"):
        text = (STATIC_DIR / name).read_text()
        assert not re.search(r"(src|href)=\"(https?:)?//", text), name
        assert 'fetch("http' not in text and "import(" not in text, name
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200


def test_openapi_documents_both_request_bodies(client):
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert set(body) == {"multipart/form-data", "application/json"}
    assert body["application/json"]["schema"]["properties"]["pixels"]["minItems"] == 784
    assert {"/model", "/predict", "/report", "/health"} <= set(schema["paths"])


def test_serve_command_fails_before_serving_on_a_missing_model(tmp_path):
    from multilayer.cli.serve import command

    with pytest.raises(FileNotFoundError):
        command(tmp_path / "nothing.safetensors", host="127.0.0.1", port=0)


def test_load_test_smoke(tmp_path):
    """A seconds-long run of benchmarks/load_test.py, so the benchmark cannot rot."""
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "load_test.py"
    spec = importlib.util.spec_from_file_location("load_test", script)
    load_test = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(load_test)
    output = tmp_path / "load.json"
    result = load_test.main(
        [
            "--requests",
            "40",
            "--concurrency",
            "4",
            "--warmup",
            "4",
            "--mode",
            "pixels",
            "--output",
            str(output),
        ]
    )
    assert result["errors"] == 0, result["first_errors"]
    assert result["requests"] == 40
    latency = result["latency_ms"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    assert json.loads(output.read_text())["requests_per_second"] == result["requests_per_second"]


# --------------------------------------------------------------------------- hardening (issue 8)


def small_model_file(directory: Path, name: str = "model.safetensors") -> Path:
    """An untrained 784-32-10 model: the API's behaviour does not depend on the weights."""
    from multilayer.recipes import build_model, get_recipe

    model = build_model(get_recipe("fast").with_overrides(hidden=(32,)), (28, 28), 10, 1, seed=0)
    model.build()
    path = directory / name
    model.save(path)
    return path


def small_client(source, **kwargs) -> TestClient:
    return TestClient(create_app(source, **kwargs), base_url="http://localhost")


def test_docs_work_offline_from_the_installed_swagger_ui(client):
    """Issue 8.5: /docs loaded Swagger UI from a CDN and was blank offline."""
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text)
    assets = re.findall(r"(?:src|href)=\"(/[^\"]+)\"", page.text)
    assert "/swagger-ui/swagger-ui-bundle.js" in assets and "/swagger-ui/swagger-ui.css" in assets
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert "cdn.jsdelivr" not in response.text
    # The page's own policy: Swagger UI needs no relaxation (tests/test_browser.py checks it).
    assert (
        page.headers["content-security-policy"]
        == client.get("/").headers["content-security-policy"]
    )
    assert "unsafe" not in page.headers["content-security-policy"]
    assert client.get("/redoc").status_code == 404  # ReDoc would load from a CDN: not served


def test_deeply_nested_json_is_a_400(client):
    """Issue 8.9: '[' x 50,000 raised RecursionError -> 500."""
    for body in (b"[" * 50_000, b'{"pixels": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"):
        response = client.post(
            "/predict", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400, response.text
        assert response.json()["detail"] == "the body is not valid JSON: nested too deeply"


def _huge_transparent_png(side: int) -> bytes:
    from PIL import ImageDraw

    image = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    ImageDraw.Draw(image).line(
        (side // 4, side // 4, side // 2, 3 * side // 4), fill="white", width=9
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def test_web_uploads_have_a_lower_pixel_limit_than_the_cli(client):
    """Issue 8.11: a ~100 KB 5000x5000 PNG was decoded (~620 MB); the web cap is 2048x2048."""
    from multilayer.app.server import MAX_IMAGE_PIXELS

    data = _huge_transparent_png(2100)
    assert 2100 * 2100 <= 25_000_000  # the CLI would decode it
    response = post_file(client, data, "big.png")
    assert response.status_code == 422
    assert response.json()["detail"] == (
        f"big.png is too large: 2100x2100 pixels (the limit is {MAX_IMAGE_PIXELS:,} pixels)"
    )
    assert MAX_IMAGE_PIXELS == 2048 * 2048


def test_concurrent_decodes_are_bounded_and_excess_gets_503(tmp_path, monkeypatch):
    """Issue 8.11: concurrent uploads each decoded at once (8 -> 4.7 GB). Now `decode_slots`
    decode at a time, `decode_queue` more wait, and the rest are told to come back."""
    import threading

    import multilayer.app.server as server

    started, release = threading.Semaphore(0), threading.Event()
    running, peak = [0], [0]
    lock = threading.Lock()

    def slow_preprocess(data, **kwargs):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        started.release()
        release.wait(30)
        with lock:
            running[0] -= 1
        return np.zeros((28, 28), dtype=np.float32)

    monkeypatch.setattr(server, "preprocess", slow_preprocess)
    png = png_bytes(np.full((28, 28), 255))
    with small_client(small_model_file(tmp_path), decode_slots=2, decode_queue=1) as client:
        with ThreadPoolExecutor(max_workers=3) as pool:
            futures = [pool.submit(post_file, client, png) for _ in range(3)]
            for _ in range(2):
                assert started.acquire(timeout=30)  # two decoding, the third queued
            gate = client.app.state.decoder
            deadline = time.monotonic() + 30
            while gate.admitted < 3 and time.monotonic() < deadline:
                time.sleep(0.01)  # the third request may still be on its way to the queue
            assert gate.admitted == 3
            busy = post_file(client, png)  # the fourth: over slots + queue
            assert busy.status_code == 503
            assert busy.headers["retry-after"] == "1"
            assert busy.json()["detail"].startswith("the server is busy: 3 pictures")
            release.set()
            assert [f.result().status_code for f in futures] == [200, 200, 200]
        assert peak[0] == 2
        assert post_file(client, png).status_code == 200  # the count went back down


def test_crafted_uploads_do_not_amplify_server_memory():
    """Issue 8.11, measured as an attacker would: 8 concurrent ~115 KB uploads of a 5000x5000
    PNG grew a real server's peak RSS by ~3.9 GB; refused from the header now, they cost
    nothing, and 8 concurrent uploads at the pixel limit stay within two decodes' worth."""
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "upload_memory.py"
    spec = importlib.util.spec_from_file_location("upload_memory", script)
    upload_memory = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(upload_memory)
    refused = upload_memory.measure(side=5000, concurrency=8)
    assert refused["statuses"] == [422] * 8
    assert refused["growth_mb"] < 50, refused
    at_limit = upload_memory.measure(side=2048, concurrency=8)
    assert at_limit["statuses"] == [200] * 8
    assert at_limit["growth_mb"] < 400, at_limit


def _run_dir(tmp_path: Path, **files: str) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    small_model_file(run)
    for name, text in files.items():
        (run / name).write_text(text)
    return run


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("config.json", "[1, 2]", "config.json must hold a JSON object, not an array"),
        ("metrics.json", "0.97", "metrics.json must hold a JSON object, not a number"),
        ("metrics.json", "null", "metrics.json must hold a JSON object, not null"),
        ("config.json", "{not json", "config.json is not valid JSON"),
        ("metrics.json", '{"test_accuracy": NaN}', "NaN is not a number strict JSON allows"),
        ("config.json", "[" * 100_000, "config.json is not valid JSON (nested too deeply)"),
    ],
)
def test_bad_run_files_fail_at_start_up_naming_the_file(tmp_path, name, text, message):
    """Issue 8.16: config.json a list or metrics.json a number answered 500 on /model, and a
    server file that is not JSON was blamed on the client (400). Now the server refuses to
    start, naming the file (mlp serve prints it as one error line)."""
    from multilayer.errors import DataError

    run = _run_dir(tmp_path, **{name: text})
    with pytest.raises(DataError) as error:
        create_app(run)
    assert str(error.value).startswith(str(run / name))
    assert message in str(error.value)


def test_run_files_are_read_with_a_size_cap(tmp_path, monkeypatch):
    import multilayer.runs as runs
    from multilayer.errors import DataError

    run = _run_dir(tmp_path, **{"config.json": '{"a": "' + "x" * 200 + '"}'})
    monkeypatch.setattr(runs, "MAX_JSON_BYTES", 100)
    with pytest.raises(DataError, match=r"config.json is too large for a run file: 209 bytes"):
        _ = runs.RunDir(run).config


def test_run_history_and_dataset_of_the_wrong_type(tmp_path):
    from multilayer.errors import DataError

    run = RunDir(_run_dir(tmp_path, **{"history.json": '{"epoch": [0], "loss": 3}'}))
    with pytest.raises(
        DataError, match="'loss' must be an array of per-epoch values, not a number"
    ):
        _ = run.history
    for config, expected in [
        ('{"flags": [1], "dataset": {"name": 7}}', "mnist"),
        ('{"flags": {"dataset": "x.npz"}}', "x.npz"),
        ('{"dataset": {"name": "fashion_mnist"}}', "fashion_mnist"),
        ('{"dataset": ["mnist"]}', "mnist"),
    ]:
        run.config_path.write_text(config)
        assert run.dataset_argument == expected


def test_model_endpoint_exposes_no_server_paths(tmp_path):
    """Issue 8.19: /model showed where the data and runs live on the server."""
    config = {
        "dataset": {"name": "digits.npz", "source": str(tmp_path / "secret" / "digits.npz")},
        "flags": {"dataset": "/home/someone/data/digits.npz", "data_dir": "C:\\Users\\me\\d"},
        "seed": 3,
    }
    run = _run_dir(tmp_path, **{"config.json": json.dumps(config)})
    with small_client(run) as client:
        info = client.get("/model").json()
    assert info["config"] == {
        "dataset": {"name": "digits.npz", "source": "digits.npz"},
        "flags": {"dataset": "digits.npz", "data_dir": "d"},
        "seed": 3,
    }
    assert str(tmp_path) not in json.dumps(info) and "someone" not in json.dumps(info)


def _rewrite_header(path: Path, change) -> None:
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(path), "np") as handle:
        metadata = handle.metadata()
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    change(metadata)
    save_file(tensors, str(path), metadata=metadata)


def test_odd_but_loadable_model_headers_never_give_a_500(tmp_path):
    """Issue 8.13 (the app's side): numeric layer names or a list as the training header made
    every request answer 500 (response validation). The model file is the models helper's;
    whatever load_model accepts, the app answers every route without a server error."""
    from multilayer.errors import ModelFileError

    def numeric_names(metadata):
        model = json.loads(metadata["model"])
        for index, layer in enumerate(model["layers"]):
            layer["config"]["name"] = index
        metadata["model"] = json.dumps(model)
        metadata["training"] = json.dumps([1, 2, {"x": 3}])

    path = small_model_file(tmp_path)
    _rewrite_header(path, numeric_names)
    try:
        app = create_app(path)
    except ModelFileError:
        return  # refused at load: equally fine for the app
    with TestClient(app, base_url="http://localhost") as client:
        info = client.get("/model")
        assert info.status_code == 200, info.text
        assert info.json()["training"] is None
        assert all(isinstance(layer["name"], str) for layer in info.json()["layers"])
        answer = client.post("/predict", json={"pixels": [0.5] * 784})
        assert answer.status_code == 200, answer.text
        assert all(isinstance(a["name"], str) for a in answer.json()["activations"])


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("localhost", 200),
        ("localhost:8000", 200),
        ("127.0.0.1:8000", 200),
        ("[::1]:8000", 200),
        ("LOCALHOST", 200),
        ("evil.example", 400),
        ("evil.example:8000", 400),
        ("localhost.evil.example", 400),
        ("", 400),
    ],
)
def test_only_the_bound_host_names_are_answered(client, host, status):
    """Issue 8.19: any Host was accepted, so a DNS-rebinding page could read /model."""
    response = client.get("/model", headers={"host": host})
    assert response.status_code == status, response.text
    if status == 400:
        assert response.json()["detail"].startswith(f"host {host!r} is not served here")


def test_allowed_hosts_follow_the_bind_address():
    from multilayer.app.server import LOCAL_HOSTS, allowed_hosts_for, is_public

    assert allowed_hosts_for("127.0.0.1") == LOCAL_HOSTS == ("localhost", "127.0.0.1", "::1")
    assert allowed_hosts_for("localhost") == LOCAL_HOSTS
    assert allowed_hosts_for("::1") == LOCAL_HOSTS
    assert allowed_hosts_for("127.0.0.2") == (*LOCAL_HOSTS, "127.0.0.2")
    assert allowed_hosts_for("192.168.1.5") == ("192.168.1.5",)
    assert allowed_hosts_for("0.0.0.0") == ("*",) and allowed_hosts_for("::") == ("*",)
    assert allowed_hosts_for("digits.lan") == ("digits.lan",)
    assert [is_public(h) for h in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "10.0.0.1")] == [
        False,
        False,
        False,
        True,
        True,
    ]


def test_any_host_when_asked(tmp_path):
    with small_client(small_model_file(tmp_path), allowed_hosts=("*",)) as client:
        assert client.get("/health", headers={"host": "anything.example"}).status_code == 200


def test_every_page_has_the_csp_and_head_is_answered(client):
    """Issue 8.19: /static/index.html lacked the CSP that / has; HEAD / answered 405."""
    for path in ("/", "/static/index.html", "/static/app.js", "/model", "/openapi.json"):
        response = client.get(path)
        assert response.status_code == 200, path
        policy = response.headers["content-security-policy"]
        assert policy.startswith("default-src 'self';") and "unsafe-inline" not in policy, path
        assert response.headers["x-content-type-options"] == "nosniff"
    head = client.head("/")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in head.headers["content-security-policy"]


@pytest.fixture
def live_server(tmp_path):
    """The app served by `make_server` (as `mlp serve` serves it) with a 0.5 s request timeout."""
    import socket
    import threading
    import time

    from multilayer.app.server import bind_socket, make_server

    app = create_app(small_model_file(tmp_path))
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = make_server(app, "127.0.0.1", port, log_level="warning", request_timeout=0.5)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)

    def connect() -> socket.socket:
        return socket.create_connection(("127.0.0.1", port), timeout=10)

    yield connect
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def _closed_by_server(connection) -> bool:
    """True once the server closes the connection (recv returns b'' or resets)."""
    try:
        while True:
            data = connection.recv(65536)
            if not data:
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_stalled_clients_are_dropped(live_server):
    """Issue 8.19: 200 half-sent requests stayed open for ever (slowloris)."""
    stalled = [live_server() for _ in range(20)]
    for connection in stalled:
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
    half_body = live_server()
    half_body.sendall(
        b"POST /predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b'Content-Length: 1000\r\n\r\n{"pixels": ['
    )
    silent = live_server()  # connects and never sends a byte
    for connection in [*stalled, half_body, silent]:
        assert _closed_by_server(connection)  # after 0.5 s, well before the 10 s socket timeout
        connection.close()


def test_a_prompt_client_is_not_dropped(live_server):
    import http.client
    import time

    connection = http.client.HTTPConnection("localhost")
    connection.sock = live_server()
    for _ in range(3):  # keep-alive: several requests on one connection, paused under 0.5 s
        connection.request("GET", "/health")
        response = connection.getresponse()
        assert response.status == 200 and response.read() == b'{"status":"ok"}'
        time.sleep(0.2)
    connection.close()


def _mlp(argv, capsys):
    from multilayer.cli.main import main

    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_serve_on_a_port_in_use_prints_one_error_line(tmp_path, capsys):
    """Issue 8.18: "serving on ..." then uvicorn's multi-line log and exit code 3."""
    import socket

    model = small_model_file(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = _mlp(["serve", str(model), "--port", str(port)], capsys)
    assert code == 1
    assert out == ""
    assert err == (
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use (another server "
        "is using it: stop it or choose --port)\n"
    )


def test_serve_announces_the_real_port_and_warns_on_public_hosts(tmp_path, capsys, monkeypatch):
    import multilayer.app.server as server

    served = {}

    def fake_serve(app, host, port, *, sock, **kwargs):
        served.update(host=host, port=port, bound=sock.getsockname()[1], app=app)
        sock.close()

    monkeypatch.setattr(server, "serve", fake_serve)
    model = small_model_file(tmp_path)
    code, out, err = _mlp(["serve", str(model), "--port", "0"], capsys)
    assert code == 0 and err == ""
    assert served["port"] == served["bound"] != 0
    assert out == f"serving {model} on http://127.0.0.1:{served['port']}/  (Ctrl-C to stop)\n"

    code, out, err = _mlp(
        ["serve", str(model), "--host", "0.0.0.0", "--port", "0", "--allow-host", "x.lan"],
        capsys,
    )
    assert code == 0
    assert err == (
        "warning: listening on 0.0.0.0: the API has no authentication; anyone who can reach "
        "this address can use it\n"
    )
    assert f"http://0.0.0.0:{served['port']}/" in out
    with TestClient(served["app"], base_url="http://anything.example") as client:
        assert client.get("/health").status_code == 200  # 0.0.0.0: names cannot be known


def test_serve_answers_only_its_host_names_by_default(tmp_path, capsys, monkeypatch):
    import multilayer.app.server as server

    served = {}
    monkeypatch.setattr(
        server,
        "serve",
        lambda app, host, port, *, sock, **kw: (served.update(app=app), sock.close()),
    )
    model = small_model_file(tmp_path)
    _mlp(["serve", str(model), "--port", "0", "--allow-host", "digits.lan"], capsys)
    with TestClient(served["app"], base_url="http://digits.lan") as client:
        assert client.get("/health").status_code == 200
        assert client.get("/health", headers={"host": "localhost:8000"}).status_code == 200
        assert client.get("/health", headers={"host": "rebind.example"}).status_code == 400
