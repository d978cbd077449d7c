"""Saliency maps (multilayer.explain) against finite differences and direct logit differences."""

from __future__ import annotations

import numpy as np
import pytest

from multilayer.explain import METHODS, explain, logits, saliency
from multilayer.layers import Dense, Flatten, Input, Rescaling
from multilayer.models import Sequential

STEP = 1e-6


def small_model(*, bias: bool = True, activation: str = "tanh", raw: bool = False, seed=0):
    """A float64 28x28 -> 16 -> 12 -> 10 model (softmax head), weights from ``seed``; biases
    set to non-zero values so they matter."""
    layers = [Input((28, 28)), Flatten()]
    if raw:
        layers.append(Rescaling(1 / 255))
    layers += [
        Dense(16, activation=activation, use_bias=bias),
        Dense(12, activation=activation, use_bias=bias),
        Dense(10, activation="softmax", use_bias=bias),
    ]
    model = Sequential(layers, dtype="float64", seed=seed)
    model.build()
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, Dense) and bias:
            layer.weights["bias"][...] = rng.normal(0, 0.3, layer.units)
    return model


def image(seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (28, 28)) * (rng.uniform(size=(28, 28)) < 0.3)
    return x


def finite_differences(model, x, weights, pixel_max=1.0) -> np.ndarray:
    """Central differences of ``weights . logits`` with respect to every pixel, batched."""
    flat = x.reshape(-1)
    n = flat.size
    plus = np.repeat(flat[None], n, axis=0)
    minus = plus.copy()
    plus[np.arange(n), np.arange(n)] += STEP
    minus[np.arange(n), np.arange(n)] -= STEP
    up = logits(model, plus.reshape(n, 28, 28), pixel_max) @ weights
    down = logits(model, minus.reshape(n, 28, 28), pixel_max) @ weights
    return ((up - down) / (2 * STEP)).reshape(28, 28)


def logit_of(model, x, pixel_max=1.0):
    return logits(model, x[None], pixel_max)[0]


def test_logits_are_the_pre_softmax_outputs():
    model = small_model()
    x = image()
    z = logit_of(model, x)
    probs = model.predict(x[None], verbose=0)[0]
    np.testing.assert_allclose(np.exp(z - z.max()) / np.exp(z - z.max()).sum(), probs, rtol=1e-12)


@pytest.mark.parametrize("raw", [False, True])
def test_gradient_equals_central_finite_differences(raw):
    model = small_model(raw=raw)
    pixel_max = 255.0 if raw else 1.0
    x = image() * pixel_max
    for c in (0, 3, 9):
        weights = np.eye(10)[c]
        got = saliency(model, x, c, "gradient", pixel_max=pixel_max)
        expected = finite_differences(model, x, weights, pixel_max)
        assert got.shape == (28, 28)
        np.testing.assert_allclose(got, expected, atol=1e-6 / pixel_max, rtol=1e-6)
        assert np.abs(got).max() > 1e-3 / pixel_max  # not a map of zeros


def test_versus_gradient_equals_finite_differences_of_the_logit_difference():
    model = small_model()
    x = image(2)
    got = saliency(model, x, 4, "gradient", versus=7)
    expected = finite_differences(model, x, np.eye(10)[4] - np.eye(10)[7])
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=1e-6)
    np.testing.assert_allclose(
        got, saliency(model, x, 4, "gradient") - saliency(model, x, 7, "gradient"), atol=1e-12
    )


def test_gradient_x_input_is_the_gradient_times_the_pixels():
    model = small_model()
    x = image(3)
    np.testing.assert_allclose(
        saliency(model, x, 5, "gradient_x_input"), saliency(model, x, 5, "gradient") * x
    )


@pytest.mark.parametrize("activation", ["relu", "linear"])
def test_gradient_x_input_sums_to_the_logit_without_biases(activation):
    # Without biases a ReLU / linear network is positively homogeneous: f(x) = x . grad f(x)
    # exactly (Euler). That is the completeness that holds; with biases it does not.
    model = small_model(bias=False, activation=activation)
    x = image(4)
    z = logit_of(model, x)
    for c in range(10):
        assert saliency(model, x, c, "gradient_x_input").sum() == pytest.approx(z[c], abs=1e-10)
    total = saliency(model, x, 2, "gradient_x_input", versus=6).sum()
    assert total == pytest.approx(z[2] - z[6], abs=1e-10)


def test_with_biases_gradient_x_input_sums_to_the_logit_minus_the_local_intercept():
    model = small_model(activation="relu")
    x = image(5)
    c = int(np.argmax(logit_of(model, x)))
    g = saliency(model, x, c, "gradient")
    # Locally f is linear: a small scaling of x stays in the same linear region.
    z1, z2 = logit_of(model, x)[c], logit_of(model, 0.999 * x)[c]
    assert z1 - z2 == pytest.approx(0.001 * (g * x).sum(), rel=1e-9)
    intercept = z1 - (g * x).sum()
    assert abs(intercept) > 1e-3  # the biases do matter here, so the sum is not the logit


def test_occlusion_equals_the_direct_difference_of_logits():
    model = small_model()
    x = image(6)
    occlusion = saliency(model, x, 1, "occlusion")
    versus = saliency(model, x, 1, "occlusion", versus=8)
    z = logit_of(model, x)
    for i, j in [(0, 0), (14, 14), *zip(*np.nonzero(x)[:2], strict=True)][:40]:
        hidden = x.copy()
        hidden[i, j] = 0.0
        zh = logit_of(model, hidden)
        assert occlusion[i, j] == pytest.approx(z[1] - zh[1], abs=1e-12)
        assert versus[i, j] == pytest.approx((z[1] - z[8]) - (zh[1] - zh[8]), abs=1e-12)
    # hiding a blank pixel changes nothing (up to BLAS rounding between batch rows)
    assert np.abs(occlusion[x == 0]).max() < 1e-12


def test_signs_a_pixel_that_raises_the_logit_is_positive():
    model = small_model()
    x = image(7)
    c = 3
    z = logit_of(model, x)[c]
    for method in METHODS:
        s = saliency(model, x, c, method)
        ink = np.argwhere(x > 0.2)
        most, least = ink[np.argmax(s[x > 0.2])], ink[np.argmin(s[x > 0.2])]
        assert s[tuple(most)] > 0 > s[tuple(least)], method
        # removing the most positive pixel lowers the logit; the most negative raises it
        for pixel, sign in ((most, 1), (least, -1)):
            hidden = x.copy()
            hidden[tuple(pixel)] = 0.0
            assert sign * (z - logit_of(model, hidden)[c]) > 0, method
    # the gradient's sign says which way a little more ink moves the logit, ink or not
    g = saliency(model, x, c, "gradient")
    i, j = np.unravel_index(np.argmax(np.where(x == 0, g, -np.inf)), x.shape)
    more = x.copy()
    more[i, j] = 1e-3
    assert logit_of(model, more)[c] > z


def test_explain_names_the_top_class_and_runner_up():
    model = small_model()
    x = image(8)
    z = logit_of(model, x)
    order = np.argsort(-z)
    result = explain(model, x, "occlusion")
    assert (result.top_class, result.runner_up) == (order[0], order[1])
    assert result.method == "occlusion"
    np.testing.assert_array_equal(result.top, saliency(model, x, order[0], "occlusion"))
    np.testing.assert_array_equal(
        result.versus, saliency(model, x, order[0], "occlusion", versus=order[1])
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"class_index": 10}, "class_index must be an integer in 0..9, got 10"),
        ({"class_index": -1}, "class_index must be an integer in 0..9, got -1"),
        ({"class_index": 2.0}, "class_index must be an integer in 0..9, got 2.0"),
        ({"class_index": True}, "class_index must be an integer in 0..9, got True"),
        ({"class_index": 1, "versus": 11}, "versus must be an integer in 0..9, got 11"),
        ({"class_index": 1, "versus": 1}, "versus must differ from class_index, both are 1"),
        (
            {"class_index": 1, "method": "lime"},
            "unknown saliency method 'lime': use one of gradient, gradient_x_input, occlusion",
        ),
    ],
)
def test_bad_arguments_get_exact_errors(kwargs, message):
    with pytest.raises(ValueError) as error:
        saliency(small_model(), image(), **kwargs)
    assert str(error.value) == message


def test_bad_image_and_model_get_errors():
    with pytest.raises(ValueError, match=r"expects inputs of shape \(28, 28\)"):
        saliency(small_model(), np.zeros((27, 28)), 0)
    no_dense_head = Sequential([Input((4,)), Dense(3), Rescaling(2.0)])
    no_dense_head.build()
    with pytest.raises(ValueError, match="Sequential model whose last layer is Dense"):
        saliency(no_dense_head, np.zeros(4), 0)
