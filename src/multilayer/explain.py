"""Which pixels made the answer: saliency maps over a model's input image.

A saliency map gives every pixel of an image a signed number: positive where the pixel's
ink pushed the chosen class's *logit* (the last Dense layer's output before its softmax) up,
negative where it pushed it down. Three methods:

* ``"gradient"``: the partial derivative of the logit with respect to each pixel, by
  backpropagation through the model's own layers (``Layer.backward``). It says what a little
  more ink would do, also where there is none.
* ``"gradient_x_input"``: the gradient times the pixel's value: zero where there is no ink.
  For a network that is piecewise linear (ReLU / linear activations) and has no biases, the
  map sums exactly to the logit (``logit(x) = sum(x * grad(x))``); with biases, to the logit
  minus the logit of the locally linear function at a blank image.
* ``"occlusion"``: the logit minus the logit with that one pixel set to 0 (background), all
  784 occluded images in one batch. Exact, not a linearisation.

``saliency(model, image, c)`` is the map for class ``c``; with ``versus=r`` it is the map of the
*difference* ``logit[c] - logit[r]``: which pixels made the model prefer ``c`` over ``r``.
`explain` gives both for the top class and the runner-up. The default method,
`DEFAULT_METHOD`, was chosen by measurement (``python -m benchmarks.saliency``;
docs/saliency.md).

Layers keep work buffers between calls: do not call these functions on a model that another
thread is running (the app holds its predictor's lock). Dense layers are differentiated here
from their weights; other layers (Rescaling, normalisation ...) by their own ``backward``,
which also overwrites their parameter-gradient buffers (only training reads them).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Literal

import numpy as np

from multilayer.answers import check_model
from multilayer.engine.layers import Dense
from multilayer.inference import input_pixel_max, model_inputs

__all__ = ["DEFAULT_METHOD", "METHODS", "Explanation", "explain", "logits", "saliency"]

Method = Literal["gradient", "gradient_x_input", "occlusion"]
METHODS: tuple[str, ...] = ("gradient", "gradient_x_input", "occlusion")
#: Occluded images run through the model at once (memory: this many images).
OCCLUSION_BATCH = 256
#: Chosen by the deletion measurement in docs/saliency.md.
DEFAULT_METHOD: Method = "gradient_x_input"


@dataclass(frozen=True)
class Explanation:
    """The saliency of one image for its top class and against its runner-up."""

    method: str
    top_class: int
    runner_up: int
    #: (height, width): saliency of ``logit[top_class]``
    top: np.ndarray
    #: (height, width): saliency of ``logit[top_class] - logit[runner_up]``
    versus: np.ndarray


def _layers(model) -> list:
    check_model(model)  # a Sequential model ending in Dense: its pre-softmax output is there
    if not model.built:
        model.build()
    return list(model.layers)


def _forward_features(layers: list, inputs: np.ndarray) -> np.ndarray:
    x = inputs
    for layer in layers[:-1]:
        x = layer.forward(x, training=False)
    return x


def _logits_of(layers: list, features: np.ndarray) -> np.ndarray:
    last = layers[-1]
    flat = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    z = flat @ np.asarray(last.weights["kernel"], dtype=np.float64)
    if last.use_bias:
        z += last.weights["bias"]
    return z


def logits(model, images: np.ndarray, pixel_max: float = 1.0) -> np.ndarray:
    """The logits (last Dense layer before its activation), float64, of shape (n, classes),
    for ``images`` of shape (n, height, width) with values in ``0 .. pixel_max``."""
    layers = _layers(model)
    inputs = model_inputs(model, np.asarray(images), pixel_max)
    return _logits_of(layers, _forward_features(layers, inputs))


def _check_class(value: object, classes: int, what: str) -> int:
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, numbers.Integral)
        or not 0 <= int(value) < classes
    ):
        raise ValueError(f"{what} must be an integer in 0..{classes - 1}, got {value!r}")
    return int(value)


def saliency(
    model,
    image: np.ndarray,
    class_index: int,
    method: Method = DEFAULT_METHOD,
    *,
    versus: int | None = None,
    pixel_max: float = 1.0,
) -> np.ndarray:
    """The signed saliency map of one image for one class (see the module docstring).

    Args:
        model: a built `Sequential` model whose last layer is Dense.
        image: one image, shape (height, width) as the model takes, values in
            ``0 .. pixel_max``.
        class_index: the class whose logit is explained.
        method: "gradient", "gradient_x_input" or "occlusion".
        versus: another class: explain ``logit[class_index] - logit[versus]`` instead.
        pixel_max: the image's scale (1 for [0, 1], 255 for raw pixels).

    Returns:
        float64 array of the image's shape; for the gradient methods, derivatives with
        respect to the image *as given* (at ``pixel_max`` scale).

    Raises:
        ValueError: an unknown method, a class index that is not an integer in
            ``0..classes-1``, an image of the wrong size, or a model not ending in Dense.
    """
    layers = _layers(model)
    classes = int(layers[-1].units)
    c = _check_class(class_index, classes, "class_index")
    weights = np.zeros((1, classes))
    weights[0, c] = 1.0
    if versus is not None:
        r = _check_class(versus, classes, "versus")
        if r == c:
            raise ValueError(f"versus must differ from class_index, both are {c}")
        weights[0, r] = -1.0
    return _maps(model, layers, np.asarray(image), weights, method, pixel_max)[0]


def _maps(
    model, layers: list, image: np.ndarray, weights: np.ndarray, method: str, pixel_max: float
) -> np.ndarray:
    """The maps of ``weights[k] . logits`` for every row k of ``weights``: (k, *image.shape)."""
    if method not in METHODS:
        raise ValueError(f"unknown saliency method {method!r}: use one of {', '.join(METHODS)}")
    inputs = model_inputs(model, image[np.newaxis], pixel_max)
    if method == "occlusion":
        return _occlusion(layers, model, image, weights, pixel_max)
    gradient = _gradient(layers, inputs, weights).reshape(len(weights), *image.shape)
    # d/d(image) = d/d(inputs) * (inputs per image unit)
    gradient = gradient * (input_pixel_max(model) / float(pixel_max))
    if method == "gradient":
        return gradient
    return gradient * np.asarray(image, dtype=np.float64)


def _gradient(layers: list, inputs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """d(weights[k] . logits)/d(inputs) for one input and every row k of ``weights``.

    Dense layers are run and differentiated here from their public weights and activation
    (only the input gradient: the layer's own ``backward`` also computes the parameter
    gradients, which would cost 20 times more); any other layer by its own ``forward`` and
    ``backward``.
    """
    hidden = layers[:-1]
    tape: list[tuple[np.ndarray, np.ndarray] | None] = []
    x = np.repeat(inputs, len(weights), axis=0)  # one row per map
    for layer in hidden:
        if isinstance(layer, Dense):
            kernel = layer.weights["kernel"]
            z = np.asarray(x, dtype=kernel.dtype) @ kernel
            if layer.use_bias:
                z += layer.weights["bias"]
            x = layer.activation.forward(z, np.empty_like(z))
            tape.append((z, x))
        else:
            x = layer.forward(x, training=False)
            tape.append(None)
    last = layers[-1]
    kernel = np.asarray(last.weights["kernel"], dtype=np.float64)
    grad = (weights @ kernel.T).astype(np.asarray(last.weights["kernel"]).dtype)
    if hidden:
        grad = grad.reshape(np.shape(x))
    for layer, saved in zip(reversed(hidden), reversed(tape), strict=True):
        if saved is None:
            grad = layer.backward(grad, True)
        else:
            z, y = saved
            grad = layer.activation.backward(grad, z, y) @ layer.weights["kernel"].T
    return np.array(grad, dtype=np.float64)


def _occlusion(
    layers: list, model, image: np.ndarray, weights: np.ndarray, pixel_max: float
) -> np.ndarray:
    """``weights . logits`` of the image minus that of the image with each pixel set to 0,
    the occluded images in batches of `OCCLUSION_BATCH` (bounded memory for large images)."""
    dtype = np.asarray(layers[-1].weights["kernel"]).dtype
    flat = np.asarray(image, dtype=dtype).reshape(-1)

    def scores(batch: np.ndarray) -> np.ndarray:
        inputs = model_inputs(model, batch.reshape(len(batch), *image.shape), pixel_max)
        return _logits_of(layers, _forward_features(layers, inputs)) @ weights.T

    base = scores(flat[np.newaxis])[0]
    result = np.empty((flat.size, len(weights)))
    for start in range(0, flat.size, OCCLUSION_BATCH):
        index = np.arange(start, min(start + OCCLUSION_BATCH, flat.size))
        batch = np.repeat(flat[np.newaxis], len(index), axis=0)
        batch[np.arange(len(index)), index] = 0.0
        result[index] = base - scores(batch)
    return result.T.reshape(len(weights), *image.shape)


def explain(
    model, image: np.ndarray, method: Method = DEFAULT_METHOD, *, pixel_max: float = 1.0
) -> Explanation:
    """Saliency maps for the top class of ``image`` and for top versus runner-up (the two
    largest logits)."""
    z = logits(model, np.asarray(image)[np.newaxis], pixel_max)[0]
    if z.size < 2:
        raise ValueError("explaining top versus runner-up needs a model with 2 classes or more")
    order = np.argsort(-z, kind="stable")
    top, runner_up = int(order[0]), int(order[1])
    weights = np.zeros((2, z.size))
    weights[:, top] = 1.0
    weights[1, runner_up] = -1.0
    maps = _maps(model, _layers(model), np.asarray(image), weights, method, pixel_max)
    return Explanation(
        method=method, top_class=top, runner_up=runner_up, top=maps[0], versus=maps[1]
    )
