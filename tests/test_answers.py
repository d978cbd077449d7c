"""Honest answers: temperature scaling, the expected calibration error, the "not a digit"
detector stored with the model, and the consumers that apply them (mlp predict, the app)."""

import json
import math
import shutil

import numpy as np
import pytest

from multilayer.answers import DETECTOR_EXTRAS, Answers, Detector, answer
from multilayer.calibration import (
    ECE_BINS,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    reliability_bins,
    softmax_t,
)
from multilayer.errors import ModelFileError
from multilayer.models.saving import load_model


# -- temperature scaling --------------------------------------------------------------------
def overconfident(n=4000, classes=10, true_t=2.5, seed=0):
    """Logits whose labels are drawn from softmax(logits / true_t): the model is too sure."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (n, classes))
    p = softmax_t(logits, true_t)
    labels = np.array([rng.choice(classes, p=row) for row in p])
    return logits, labels


def test_fitted_temperature_minimises_the_validation_nll():
    logits, labels = overconfident()
    t = fit_temperature(logits, labels)
    best = negative_log_likelihood(logits, labels, t)
    for nearby in (t * (1 - 1e-3), t * (1 + 1e-3)):
        assert best <= negative_log_likelihood(logits, labels, nearby)
    grid = np.geomspace(0.05, 20, 400)
    assert best <= min(negative_log_likelihood(logits, labels, g) for g in grid) + 1e-12
    assert 2.2 < t < 2.8  # near the temperature the labels were drawn with


def test_temperature_of_a_calibrated_model_is_near_one_and_keeps_the_argmax():
    logits, labels = overconfident(true_t=1.0, seed=1)
    t = fit_temperature(logits, labels)
    assert 0.9 < t < 1.1
    assert np.array_equal(softmax_t(logits, t).argmax(1), logits.argmax(1))


def test_bad_logits_and_labels_are_refused():
    with pytest.raises(ValueError, match=r"expected logits of shape \(n, classes >= 2\)"):
        fit_temperature(np.zeros((3,)), np.zeros(3, int))
    with pytest.raises(ValueError, match="NaN or infinite"):
        fit_temperature(np.array([[0.0, np.nan]]), np.zeros(1, int))
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.1"):
        fit_temperature(np.zeros((2, 2)), np.array([0, 2]))


# -- expected calibration error --------------------------------------------------------------
def test_ece_by_hand():
    # Three classes, 2 bins [0, 0.5] and (0.5, 1]. Top probabilities and whether right:
    # 0.9 right, 0.8 wrong, 0.5 right (the edge: first bin), 0.4 wrong.
    probs = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.5, 0.3, 0.2], [0.3, 0.3, 0.4]])
    labels = np.array([0, 0, 0, 1])
    # (0.5, 1]: accuracy 1/2, confidence 0.85; [0, 0.5]: accuracy 1/2, confidence 0.45
    by_hand = (2 * abs(0.5 - 0.85) + 2 * abs(0.5 - 0.45)) / 4
    assert expected_calibration_error(probs, labels, bins=2) == pytest.approx(by_hand, abs=1e-15)
    # one sample per bin at 15 bins: the mean |correct - confidence|
    one = np.array([[0.95, 0.05], [0.7, 0.3]])
    assert expected_calibration_error(one, np.array([0, 1])) == pytest.approx(
        ((1 - 0.95) + 0.7) / 2, abs=1e-15
    )


def test_ece_bins_match_sklearn_calibration_curve():
    from sklearn.calibration import calibration_curve

    logits, labels = overconfident(n=3000, seed=2)
    probs = softmax_t(logits)
    table = reliability_bins(probs, labels)
    assert len(table["count"]) == ECE_BINS and table["count"].sum() == 3000
    correct = (probs.argmax(1) == labels).astype(int)
    accuracy, confidence = calibration_curve(correct, probs.max(1), n_bins=ECE_BINS)
    filled = table["count"] > 0
    np.testing.assert_allclose(table["accuracy"][filled], accuracy, rtol=0, atol=1e-12)
    np.testing.assert_allclose(table["confidence"][filled], confidence, rtol=0, atol=1e-12)
    ece = np.sum(table["count"][filled] * np.abs(accuracy - confidence)) / 3000
    assert expected_calibration_error(probs, labels) == pytest.approx(ece, abs=1e-12)


def test_temperature_scaling_lowers_the_ece_of_an_overconfident_model():
    logits, labels = overconfident(seed=3)
    before = expected_calibration_error(softmax_t(logits), labels)
    after = expected_calibration_error(softmax_t(logits, fit_temperature(logits, labels)), labels)
    assert before > 0.1 and after < 0.03


# -- the stored answers -----------------------------------------------------------------------
def small_model(hidden=6, seed=0):
    from multilayer.engine.layers import Dense
    from multilayer.models.sequential import Sequential

    model = Sequential(
        [Dense(hidden, activation="relu", input_shape=(4,)), Dense(3, activation="softmax")],
        seed=seed,
    )
    model.build()
    return model


def a_detector(inputs, units=5, threshold=0.4, seed=0):
    rng = np.random.default_rng(seed)
    return Detector(
        mean=rng.normal(size=inputs),
        scale=rng.uniform(0.5, 2, inputs),
        kernel=rng.normal(size=(inputs, units)),
        bias=rng.normal(size=units),
        output_kernel=rng.normal(size=(units, 1)),
        output_bias=rng.normal(size=1),
        threshold=threshold,
        validation_rejected=0.02,
    )


def test_answers_round_trip_through_the_model_file(tmp_path):
    model = small_model()
    detector = Detector(**{k: v.astype(np.float32) for k, v in a_detector(6 + 5).tensors().items()},
                        threshold=0.4, validation_rejected=0.02)  # fmt: skip
    model.answers = Answers(0.4834533332572844, detector, {"before": 0.1, "after": 0.003})
    model.save(tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    assert loaded.answers.temperature == 0.4834533332572844  # exactly
    assert loaded.answers.ece == {"before": 0.1, "after": 0.003}
    for name, value in detector.tensors().items():
        assert np.array_equal(getattr(loaded.answers.reject, name), value)
    assert loaded.answers.reject.threshold == 0.4
    x = np.random.default_rng(1).uniform(0, 1, (20, 4)).astype(np.float32)
    a, b = answer(model, x, 1.0), answer(loaded, x, 1.0)
    assert np.array_equal(a.probabilities, b.probabilities)
    assert np.array_equal(a.rejected, b.rejected) and np.array_equal(a.score, b.score)
    np.testing.assert_allclose(a.probabilities, softmax_t(a.logits, 0.4834533332572844))


def test_a_model_without_answers_loads_and_answers_as_before(tmp_path):
    from multilayer.inference import answer_inputs

    model = small_model()
    model.save(tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    assert loaded.answers is None
    x = np.random.default_rng(1).uniform(0, 1, (5, 4)).astype(np.float32)
    result = answer_inputs(loaded, x)
    assert np.array_equal(result.probabilities, loaded.predict(x))
    assert not result.rejected.any() and np.isnan(result.score).all()
    assert result.reason(0) is None


def test_temperature_only(tmp_path):
    model = small_model()
    model.answers = Answers(2.0)
    model.save(tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    assert loaded.answers.temperature == 2.0 and loaded.answers.reject is None
    x = np.ones((2, 4), np.float32)
    result = answer(loaded, x)
    np.testing.assert_allclose(result.probabilities, softmax_t(result.logits, 2.0))
    np.testing.assert_allclose(softmax_t(result.logits), loaded.predict(x), rtol=1e-5)


def rewrite_header(path, change):
    """Rewrite the JSON header of a safetensors file with ``change(header)``."""
    data = path.read_bytes()
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    change(header)
    raw = json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data[8 + length :])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda h: h["__metadata__"].update(
                answers=h["__metadata__"]["answers"].replace(
                    '"temperature": 1.5', '"temperature": 99.0'
                )
            ),
            "invalid header entry 'answers': Answers: temperature must be a number in [0.05, 20.0], got 99.0",
        ),
        (
            lambda h: h["__metadata__"].update(answers="[1]"),
            "invalid header entry 'answers': expected {'temperature', 'reject', 'ece'}",
        ),
        (
            lambda h: h["__metadata__"].update(
                answers=h["__metadata__"]["answers"].replace('"inputs": 11', '"inputs": 12')
            ),
            "invalid header entry 'answers': the detector must read 11 values, not 12",
        ),
        (
            lambda h: h["__metadata__"].update(
                answers=h["__metadata__"]["answers"].replace('"units": 5', '"units": 4')
            ),
            "the 'answers' tensors do not match its header",
        ),
        (
            lambda h: h["__metadata__"].update(
                answers=h["__metadata__"]["answers"].replace('"threshold": 0.4', '"threshold": 7')
            ),
            "invalid header entry 'answers': Detector: threshold must be in [0, 1], got 7",
        ),
        (
            lambda h: h["__metadata__"].pop("answers"),
            "without an 'answers' entry",
        ),
    ],
)
def test_malformed_answers_are_a_model_file_error(tmp_path, change, message):
    model = small_model()
    model.answers = Answers(1.5, a_detector(11))
    path = tmp_path / "m.safetensors"
    model.save(path)
    rewrite_header(path, change)
    with pytest.raises(ModelFileError) as error:
        load_model(path)
    assert message in str(error.value)
    assert str(path) in str(error.value)


def test_detector_scores_by_hand():
    detector = a_detector(11)
    values = np.random.default_rng(5).normal(size=(7, 11))
    u = (values - detector.mean) / detector.scale
    z = np.maximum(u @ detector.kernel + detector.bias, 0) @ detector.output_kernel
    expected = 1 / (1 + np.exp(-(z[:, 0] + detector.output_bias[0])))
    np.testing.assert_allclose(detector.score(values), expected, rtol=1e-12)
    assert detector.score(np.full((1, 11), 1e300)).tolist()[0] in (0.0, 1.0)  # no overflow


def test_detector_refuses_bad_values():
    good = a_detector(11).tensors()
    with pytest.raises(ValueError, match=r"Detector: bias must have shape \(5,\), got \(4,\)"):
        Detector(**{**good, "bias": np.zeros(4)}, threshold=0.5)
    with pytest.raises(ValueError, match="Detector: scale must be positive"):
        Detector(**{**good, "scale": np.zeros(11)}, threshold=0.5)
    with pytest.raises(ValueError, match="Detector: mean contains NaN or infinite values"):
        Detector(**{**good, "mean": np.full(11, np.inf)}, threshold=0.5)


# -- non-digits --------------------------------------------------------------------------------
def test_non_digits_are_prepared_pictures_and_reproducible():
    from multilayer.nondigits import FAMILIES, non_digits

    for family in FAMILIES:
        images = non_digits(family, 3, seed=7)
        assert images.shape == (3, 28, 28) and images.dtype == np.float32
        assert images.min() >= 0 and images.max() <= 1
        assert (images.reshape(3, -1).max(axis=1) > 0).all()  # none is blank
        assert np.array_equal(images, non_digits(family, 3, seed=7))
        assert not np.array_equal(images, non_digits(family, 3, seed=8))
    with pytest.raises(ValueError, match="unknown non-digit family 'cats'"):
        non_digits("cats", 1)


# -- fitted on a real (small) model, and applied by the CLI and the app -------------------------
@pytest.fixture(scope="module")
def answered_run(trained_run, tmp_path_factory):
    """The conftest's 784-128-10 run with answers fitted (small detector settings)."""
    from multilayer.answer_fitting import fit_answers
    from multilayer.datasets import mnist
    from multilayer.training import split

    run = tmp_path_factory.mktemp("answered") / "run"
    shutil.copytree(trained_run, run)
    model = load_model(run / "model.safetensors")
    (x, y), _ = mnist.load_data()
    train, validation = split(x, y, 0.1, 0)
    model.answers = fit_answers(
        model, train, validation, seed=0, positives=3000, negatives_per_family=300, epochs=4
    )
    model.save(run / "model.safetensors")
    return run


@pytest.mark.slow
def test_fitted_answers_calibrate_and_reject_on_the_validation_split(answered_run):
    from multilayer.datasets import mnist
    from multilayer.inference import answer_images
    from multilayer.nondigits import non_digits
    from multilayer.training import split

    model = load_model(answered_run / "model.safetensors")
    answers = model.answers
    assert answers.ece["after"] < answers.ece["before"]
    assert answers.reject.validation_rejected <= 0.02
    assert answers.reject.inputs == 128 + DETECTOR_EXTRAS
    (x, y), (x_test, y_test) = mnist.load_data()
    _, (x_val, y_val) = split(x, y, 0.1, 0)
    val = answer_images(model, x_val, 255.0)
    assert val.rejected.mean() == answers.reject.validation_rejected
    assert 0.005 < val.rejected.mean() <= 0.02
    test = answer_images(model, x_test[:2000], 255.0)
    assert test.rejected.mean() < 0.04
    noise = answer_images(model, non_digits("noise", 50, seed=12345), 1.0)
    assert noise.rejected.mean() >= 0.9
    assert math.isclose(test.threshold, answers.reject.threshold)


@pytest.mark.slow
def test_mlp_predict_says_not_sure(answered_run, tmp_path, capsys):
    from PIL import Image

    from multilayer.cli.main import main
    from multilayer.datasets import mnist

    rng = np.random.default_rng(0)
    noise = tmp_path / "noise.png"
    Image.fromarray((rng.random((112, 112)) * 255).astype(np.uint8)).save(noise)
    digit = tmp_path / "digit.npy"
    (_, _), (x_test, y_test) = mnist.load_data()
    np.save(digit, x_test[0])
    assert main(["predict", str(answered_run), str(noise), str(digit), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results[0]["rejected"] is True
    assert results[0]["reason"].startswith("unlike the digits it was trained on: score ")
    assert 0 <= results[0]["score"] <= 1 and len(results[0]["top"]) == 3
    assert results[1]["rejected"] is False and results[1]["reason"] is None
    assert results[1]["top"][0]["class"] == int(y_test[0])
    assert main(["predict", str(answered_run), str(noise), str(digit)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{noise}: not sure (unlike the digits it was trained on: score ")
    assert lines[1].startswith(f"{digit}: {y_test[0]}  (")


@pytest.mark.slow
def test_app_returns_the_not_sure_state(answered_run):
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from multilayer.app.server import create_app

    rng = np.random.default_rng(0)
    with TestClient(create_app(answered_run), base_url="http://localhost") as client:
        noise = client.post("/predict", json={"pixels": rng.random(784).tolist()})
        assert noise.status_code == 200
        body = noise.json()
        assert body["rejected"] is True and 0 <= body["score"] <= 1
        assert body["reason"].startswith("unlike the digits it was trained on")
        assert len(body["probabilities"]) == 10
        assert sum(body["probabilities"]) == pytest.approx(1, abs=1e-4)
        schema = client.get("/openapi.json").json()["components"]["schemas"]["PredictResponse"]
        assert {"rejected", "score", "reason"} <= set(schema["required"])


@pytest.mark.slow
def test_report_shows_calibration_rejections_and_per_class_accuracy(answered_run, trained_run):
    pytest.importorskip("matplotlib")
    from multilayer.report import write_report

    page = write_report(answered_run).read_text()
    report = answered_run / "report"
    for name in ("reliability.png", "rejected.png"):
        assert (report / name).read_bytes().startswith(b"\x89PNG")
    assert "Reliability diagram" in page and "expected calibration error from" in page
    assert "Rejected test images" in page
    assert "Accuracy per class, with and without rejection" in page
    assert page.count("<th>accuracy (accepted)</th>") == 1
    plain = write_report(trained_run).read_text()
    assert "This model carries no calibrated answers" in plain


@pytest.mark.slow
@pytest.mark.browser
def test_the_page_shows_not_sure_and_keeps_the_probabilities(answered_run, tmp_path):
    """In headless Chromium: an uploaded photo of noise is answered "not sure", bars kept."""
    import threading
    import time
    from pathlib import Path

    if not Path("/usr/bin/chromium").exists():
        pytest.skip("/usr/bin/chromium not found")
    sync_api = pytest.importorskip("playwright.sync_api")
    uvicorn = pytest.importorskip("uvicorn")
    from PIL import Image

    from multilayer.app.server import create_app

    noise = tmp_path / "noise.png"
    rng = np.random.default_rng(3)
    Image.fromarray((rng.random((200, 200)) * 255).astype(np.uint8)).save(noise)
    config = uvicorn.Config(create_app(answered_run), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"]
            )
            try:
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{port}/")
                page.wait_for_selector("#bars .bar")
                with page.expect_response(lambda r: r.url.endswith("/predict")):
                    page.set_input_files("#upload", str(noise))
                page.wait_for_function(
                    "() => document.getElementById('top-class').textContent !== '?'"
                )
                assert page.text_content("#top-class") == "not sure"
                assert "does not look like a digit it knows (best guess" in page.text_content(
                    "#top-prob"
                )
                assert page.get_attribute(".answer", "class") == "answer rejected"
                heights = page.eval_on_selector_all(
                    "#bars .bar .fill", "bars => bars.map(b => parseFloat(b.style.height) / 100)"
                )
                assert len(heights) == 10 and sum(heights) == pytest.approx(1.0, abs=0.01)
            finally:
                browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.slow
def test_mlp_evaluate_reports_calibration_and_rejections(answered_run, capsys):
    from multilayer.cli.main import main

    assert main(["evaluate", str(answered_run), "--json"]) == 0
    fitted = json.loads(capsys.readouterr().out)["answers"]
    model = load_model(answered_run / "model.safetensors")
    assert fitted["temperature"] == model.answers.temperature
    assert 0 <= fitted["test_ece"] < fitted["test_ece_before"]
    assert 0 < fitted["test_rejected"] < 0.04
    assert main(["evaluate", str(answered_run)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(f"calibrated (temperature {fitted['temperature']:.3f}): expected ")
