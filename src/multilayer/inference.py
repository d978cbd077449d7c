"""Feeding images to a trained model: the one place that knows which pixel scale a model takes.

A model records the pixel values it takes in its `InputScale` (``model.input_scale``,
saved in its file): models built by ``mlp train`` (``multilayer.recipes.build_model``)
take raw pixels in 0..255 and rescale or standardise them with their first layers. For a
model without a recorded scale (written the tutorial's way, or saved by an earlier
version) `expects_raw_pixels` recognises the leading ``Rescaling`` of those recipes, and
anything else is taken to want floats in [0, 1]. `model_inputs` converts images
accordingly, so the CLI (``mlp evaluate``, ``mlp predict``) and the web app feed every model
correctly.

`answer_images` is what every consumer asks a model: its probabilities, calibrated by the
temperature stored with it, and whether each image is rejected as unlike the training digits
("not sure"); see `multilayer.answers`. A model without stored answers gets its plain
probabilities and rejects nothing.
"""

from __future__ import annotations

import numpy as np

from multilayer.answers import Answer, answer
from multilayer.engine.activations import softmax
from multilayer.engine.layers import Dense, Flatten, InputLayer, Rescaling

__all__ = [
    "answer_images",
    "answer_inputs",
    "expects_raw_pixels",
    "image_shape",
    "first_dense",
    "input_pixel_max",
    "model_inputs",
    "predict_image",
    "predict_images",
    "probabilities",
    "top_k",
]


def input_pixel_max(model) -> float:
    """The largest pixel value ``model`` takes: its recorded ``input_scale.pixel_max``, else
    255 if `expects_raw_pixels`, else 1."""
    if model.input_scale is not None:
        return float(model.input_scale.pixel_max)
    return 255.0 if expects_raw_pixels(model) else 1.0


def expects_raw_pixels(model) -> bool:
    """True if the model rescales 0..255 pixels itself.

    Its recorded `InputScale` says so when there is one. Otherwise (models saved before the
    scale was recorded) the model's leading weightless layers (Input, Flatten, Rescaling) are
    read: a ``Rescaling(1/255)``, or the standardising ``Rescaling(1/(255 std), -mean/std)``
    that ``recipes.build_model`` wrote with MNIST's statistics, means raw pixels.
    """
    if model.input_scale is not None:
        return model.input_scale.pixel_max == 255.0
    from multilayer.recipes import MNIST_STD

    for layer in model.layers:
        if isinstance(layer, Rescaling):
            return bool(np.isclose(layer.scale, [1.0 / 255.0, 1.0 / (255.0 * MNIST_STD)]).any())
        if not isinstance(layer, (InputLayer, Flatten)):
            return False
    return False


def first_dense(model) -> Dense | None:
    """The first ``Dense`` layer of ``model`` (after any Flatten / Rescaling), or None."""
    return next((layer for layer in model.layers if isinstance(layer, Dense)), None)


def image_shape(model, recorded: tuple[int, ...] | list[int] | None = None) -> tuple[int, int]:
    """The (height, width) of the images ``model`` takes.

    Args:
        model: a built `Sequential` model.
        recorded: the image shape its training data had, if known (a run directory's
            config.json records it), for models whose input is already flat.

    Raises:
        ValueError: the model takes flat inputs that are not 784 values and no recorded
            shape matches them.
    """
    expected = tuple(int(d) for d in model.input_shape)
    size = int(np.prod(expected))
    candidates = [expected]
    if recorded is not None:
        candidates.append(tuple(int(d) for d in recorded))
    if size == 784:
        candidates.append((28, 28))
    for shape in candidates:
        if len(shape) == 2 and shape[0] * shape[1] == size:
            return shape[0], shape[1]
    raise ValueError(
        f"the model takes inputs of shape {expected}: cannot tell which image size that is"
    )


def model_inputs(model, images: np.ndarray, pixel_max: float) -> np.ndarray:
    """``images`` converted to the scale and shape ``model`` takes.

    Args:
        model: a built `Sequential` model.
        images: shape (n, height, width) (or any (n, ...) with the same number of values
            per sample as the model's input), pixel values in ``0 .. pixel_max``.
        pixel_max: 255 for uint8 images as stored in MNIST, 1 for images in [0, 1] (as
            `multilayer.data.images.preprocess` returns).

    Returns:
        an array of shape (n, *model.input_shape), pixel values in
        ``0 .. input_pixel_max(model)``. Data is passed through without a copy when the
        model takes it as it is.

    Raises:
        ValueError: the images do not have as many values as the model's input.
    """
    images = np.asarray(images)
    expected = tuple(model.input_shape)
    if int(np.prod(images.shape[1:])) != int(np.prod(expected)):
        raise ValueError(
            f"the model expects inputs of shape {expected}, but the images have shape "
            f"{tuple(images.shape[1:])}"
        )
    target_max = input_pixel_max(model)
    if target_max != pixel_max:
        images = images.astype(np.float32) * np.float32(target_max / pixel_max)
    return images.reshape(len(images), *expected)


def probabilities(model, outputs: np.ndarray) -> np.ndarray:
    """Class probabilities from the model's outputs: unchanged if the last layer is a
    softmax, otherwise the outputs are taken as logits and a softmax is applied."""
    activation = getattr(getattr(model.layers[-1], "activation", None), "name", None)
    return outputs if activation == "softmax" else softmax(outputs)


def answer_inputs(model, inputs: np.ndarray, batch_size: int = 1024) -> Answer:
    """`answer_images` for inputs already at the model's scale (`model_inputs`), in batches
    of ``batch_size`` (bounded memory)."""
    if getattr(model, "answers", None) is None:
        probs = probabilities(model, model.predict(inputs, verbose=0))
        n = len(probs)
        return Answer(np.asarray(probs), np.zeros(n, bool), np.full(n, np.nan), None)
    parts = [
        answer(model, inputs[start : start + batch_size], input_pixel_max(model))
        for start in range(0, len(inputs), batch_size)
    ]
    if not parts:
        classes = int(model.output_shape[-1])
        return Answer(np.zeros((0, classes)), np.zeros(0, bool), np.zeros(0), None)
    return Answer(
        np.concatenate([p.probabilities for p in parts]),
        np.concatenate([p.rejected for p in parts]),
        np.concatenate([p.score for p in parts]),
        parts[0].threshold,
        np.concatenate([p.logits for p in parts if p.logits is not None]),
    )


def answer_images(model, images: np.ndarray, pixel_max: float = 1.0) -> Answer:
    """Calibrated probabilities and "not sure" verdicts for a batch of images (see the
    module docstring and `multilayer.answers.Answer`).

    Args:
        images: shape (n, height, width), values in ``0 .. pixel_max`` (default [0, 1]).
    """
    return answer_inputs(model, model_inputs(model, images, pixel_max))


def predict_images(model, images: np.ndarray, pixel_max: float = 1.0) -> np.ndarray:
    """Class probabilities for a batch of images, calibrated by the model's stored
    temperature if it has one (`answer_images`).

    Args:
        images: shape (n, height, width), values in ``0 .. pixel_max`` (default [0, 1]).

    Returns:
        float array of shape (n, num_classes), each row summing to 1.
    """
    return answer_images(model, images, pixel_max).probabilities


def predict_image(model, image: np.ndarray) -> np.ndarray:
    """Class probabilities for one (28, 28) image in [0, 1] (as `preprocess` returns).

    Returns:
        float array of shape (num_classes,).
    """
    image = np.asarray(image)
    return predict_images(model, image[np.newaxis], pixel_max=1.0)[0]


def top_k(probs: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The ``k`` most probable classes of one probability vector, most probable first."""
    probs = np.asarray(probs)
    k = max(1, min(int(k), probs.shape[-1]))
    order = np.argsort(-probs, kind="stable")[:k]
    return [(int(c), float(probs[c])) for c in order]
