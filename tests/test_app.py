"""The web app's JSON API and page, through FastAPI's TestClient, with a model trained on MNIST."""

import io
import json
import re
import shutil
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
