"""Honest answers, stored with the model: a calibrated temperature and a "not a digit" detector.

``model.answers`` (an `Answers`, or None for a model trained without them) is saved in the
model's ``.safetensors`` file (header entry ``answers`` and tensors ``answers.*``) and
restored by ``load_model``, so every consumer of the model file (``mlp predict``,
``mlp evaluate``, the app, the report) applies the same rule through one function, `answer`:

    from multilayer.answers import answer

    result = answer(model, inputs)      # inputs as multilayer.inference.model_inputs makes them
    result.probabilities                # softmax(logits / T): calibrated probabilities
    result.rejected, result.score       # "not sure": the input is unlike the training digits

Both are fitted after training by `multilayer.answer_fitting.fit_answers` (``mlp train``
does it on the validation split; see docs/honest-answers.md):

* ``temperature``: temperature scaling (`multilayer.calibration`); it changes how sure the
  model says it is, never which class it picks.
* ``reject``: a `Detector`, a small network (one hidden ReLU layer, a sigmoid output) that
  reads what the classifier computes for an input (its last hidden layer, its three largest
  logits) and two input statistics, and scores how unlike the training digits the input is
  (0 to 1). Inputs scoring above ``threshold`` are rejected; the threshold is set on the
  validation digits so that at most a chosen share of them (1.5% by default) is rejected.

A model without ``answers`` (older files, ``.keras`` files, models built by hand) keeps
working: `answer` gives its plain softmax and rejects nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from multilayer.calibration import TEMPERATURE_BOUNDS, softmax_t
from multilayer.engine.layers import Dense

__all__ = [
    "DETECTOR_EXTRAS",
    "MAX_DETECTOR_UNITS",
    "Answer",
    "Answers",
    "Detector",
    "answer",
    "check_model",
    "detector_inputs",
    "forward",
]

#: The values the detector reads besides the classifier's last hidden layer: the three
#: largest logits (in increasing order), the share of pixels with ink (> 0.1 of the
#: brightest) and the mean pixel, both on the [0, 1] scale.
DETECTOR_EXTRAS = 5
#: The largest hidden layer a stored detector may have (a bound on what a file can declare).
MAX_DETECTOR_UNITS = 1024
_TENSORS = ("mean", "scale", "kernel", "bias", "output_kernel", "output_bias")


def check_model(model) -> None:
    """Refuse a model answers cannot be fitted to or applied on.

    Raises:
        ValueError: not a `Sequential` model whose last layer is Dense.
    """
    from multilayer.models.sequential import Sequential

    layers = list(getattr(model, "layers", []))
    if not isinstance(model, Sequential) or not layers or not isinstance(layers[-1], Dense):
        raise ValueError("calibrated answers need a Sequential model whose last layer is Dense")


def forward(model, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The last hidden layer's outputs and the logits of a `Sequential` model ending in a
    ``Dense`` layer, both float64, for ``inputs`` at the model's scale.

    Raises:
        ValueError: a model that does not end in a Dense layer (`check_model`).
    """
    check_model(model)
    layers = list(model.layers)
    last = layers[-1]
    x = inputs
    for layer in layers[:-1]:
        x = layer.forward(x, training=False)
    features = np.array(x, dtype=np.float64).reshape(len(inputs), -1)
    logits = features @ last.weights["kernel"].astype(np.float64)
    if last.use_bias:
        logits += last.weights["bias"]
    return features, logits


def detector_inputs(
    features: np.ndarray, logits: np.ndarray, inputs: np.ndarray, pixel_max: float
) -> np.ndarray:
    """What the detector reads (see `DETECTOR_EXTRAS`): ``(n, features + 5)`` float64."""
    pixels = np.asarray(inputs, dtype=np.float64).reshape(len(inputs), -1) / float(pixel_max)
    top = np.sort(logits, axis=1)[:, -3:]
    if top.shape[1] < 3:  # fewer than 3 classes: repeat the smallest
        top = np.concatenate([np.repeat(top[:, :1], 3 - top.shape[1], axis=1), top], axis=1)
    ink = (pixels > 0.1).mean(axis=1, keepdims=True)
    return np.concatenate([features, top, ink, pixels.mean(axis=1, keepdims=True)], axis=1)


def _finite_array(name: str, value, shape: tuple[int, ...]) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"Detector: {name} must have shape {shape}, got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"Detector: {name} contains NaN or infinite values")
    return array


@dataclass(frozen=True, eq=False)
class Detector:
    """The "not a digit" detector: ``score = sigmoid(relu(u @ kernel + bias) @ output_kernel
    + output_bias)`` with ``u = (detector_inputs - mean) / scale``; rejected if
    ``score > threshold``.

    Raises:
        ValueError: shapes that do not agree, non-finite values, a threshold outside [0, 1],
            a scale that is not positive, or more than `MAX_DETECTOR_UNITS` hidden units.
    """

    mean: np.ndarray  # (d,)
    scale: np.ndarray  # (d,)
    kernel: np.ndarray  # (d, h)
    bias: np.ndarray  # (h,)
    output_kernel: np.ndarray  # (h, 1)
    output_bias: np.ndarray  # (1,)
    threshold: float
    #: the share of validation digits rejected when the threshold was set
    validation_rejected: float = 0.0

    def __post_init__(self):
        kernel = np.asarray(self.kernel, dtype=np.float64)
        if kernel.ndim != 2 or not 1 <= kernel.shape[1] <= MAX_DETECTOR_UNITS:
            raise ValueError(f"Detector: kernel must be (d, 1..{MAX_DETECTOR_UNITS})")
        d, h = kernel.shape
        for name, shape in (
            ("mean", (d,)),
            ("scale", (d,)),
            ("kernel", (d, h)),
            ("bias", (h,)),
            ("output_kernel", (h, 1)),
            ("output_bias", (1,)),
        ):
            object.__setattr__(self, name, _finite_array(name, getattr(self, name), shape))
        if not (self.scale > 0).all():
            raise ValueError("Detector: scale must be positive")
        for name in ("threshold", "validation_rejected"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"Detector: {name} must be a number, got {value!r:.50}")
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"Detector: {name} must be in [0, 1], got {value!r}")
            object.__setattr__(self, name, float(value))

    @property
    def inputs(self) -> int:
        return int(self.kernel.shape[0])

    def score(self, values: np.ndarray) -> np.ndarray:
        """The score (0 = like the training digits, 1 = not a digit) of each row of
        `detector_inputs`."""
        u = (np.asarray(values, dtype=np.float64) - self.mean) / self.scale
        hidden = np.maximum(u @ self.kernel + self.bias, 0.0)
        z = (hidden @ self.output_kernel + self.output_bias)[:, 0]
        return 0.5 * (1.0 + np.tanh(0.5 * z))  # the sigmoid, without overflow

    def tensors(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in _TENSORS}


@dataclass(frozen=True, eq=False)
class Answers:
    """What a model needs to answer honestly (see the module docstring).

    Attributes:
        temperature: divides the logits before the softmax (1 = unchanged).
        reject: the "not a digit" detector, or None (nothing is rejected).
        ece: the expected calibration error on the validation split ``{"before": ...,
            "after": ...}`` when fitted, for display.

    Raises:
        ValueError: a temperature that is not a finite number within `TEMPERATURE_BOUNDS`.
    """

    temperature: float = 1.0
    reject: Detector | None = None
    ece: dict[str, float] | None = None

    def __post_init__(self):
        t = self.temperature
        low, high = TEMPERATURE_BOUNDS
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not low <= t <= high:
            raise ValueError(
                f"Answers: temperature must be a number in [{low}, {high}], got {t!r:.50}"
            )
        object.__setattr__(self, "temperature", float(t))
        if self.ece is not None:
            ok = isinstance(self.ece, dict) and set(self.ece) == {"before", "after"}
            if not ok or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1
                for v in self.ece.values()
            ):
                raise ValueError(
                    f"Answers: ece must be {{'before', 'after'}} in [0, 1], got {self.ece!r:.100}"
                )

    # -- the model file ------------------------------------------------------------------------
    def header(self) -> dict:
        """The JSON header entry ``answers`` (the detector's arrays are tensors)."""
        reject = None
        if self.reject is not None:
            reject = {
                "method": "detector",
                "inputs": self.reject.inputs,
                "units": int(self.reject.kernel.shape[1]),
                "threshold": self.reject.threshold,
                "validation_rejected": self.reject.validation_rejected,
            }
        return {"temperature": self.temperature, "reject": reject, "ece": self.ece}

    def tensors(self) -> dict[str, np.ndarray]:
        """The tensors saved beside the weights: ``answers.<name>`` (float32)."""
        if self.reject is None:
            return {}
        return {f"answers.{k}": v.astype(np.float32) for k, v in self.reject.tensors().items()}

    @staticmethod
    def declared_shapes(header: object, features: int) -> dict[str, tuple[int, ...]]:
        """The tensors a header entry ``answers`` declares, checked before any is read.

        Args:
            header: the parsed JSON entry.
            features: the width of the model's last hidden layer.

        Raises:
            ValueError: a malformed entry, or a detector that does not read ``features + 5``
                values.
        """
        if not isinstance(header, dict) or set(header) != {"temperature", "reject", "ece"}:
            raise ValueError("expected {'temperature', 'reject', 'ece'}")
        reject = header["reject"]
        if reject is None:
            return {}
        keys = {"method", "inputs", "units", "threshold", "validation_rejected"}
        if not isinstance(reject, dict) or set(reject) != keys or reject["method"] != "detector":
            raise ValueError(
                f"'reject' must be {{'method': 'detector', ...}} with keys {sorted(keys)}"
            )
        d, h = reject["inputs"], reject["units"]
        if type(d) is not int or d != features + DETECTOR_EXTRAS:
            raise ValueError(
                f"the detector must read {features + DETECTOR_EXTRAS} values, not {d!r:.20}"
            )
        if type(h) is not int or not 1 <= h <= MAX_DETECTOR_UNITS:
            raise ValueError(f"the detector's units must be 1..{MAX_DETECTOR_UNITS}, not {h!r:.20}")
        shapes = {"mean": (d,), "scale": (d,), "kernel": (d, h), "bias": (h,)}
        shapes.update(output_kernel=(h, 1), output_bias=(1,))
        return {f"answers.{name}": shape for name, shape in shapes.items()}

    @classmethod
    def from_file(cls, header: dict, tensors: dict[str, np.ndarray]) -> Answers:
        """`Answers` from its header entry and its ``answers.*`` tensors (shapes already
        checked by `declared_shapes`).

        Raises:
            ValueError: invalid values.
        """
        reject = header["reject"]
        detector = None
        if reject is not None:
            arrays = {name: tensors[f"answers.{name}"] for name in _TENSORS}
            detector = Detector(
                **arrays,
                threshold=reject["threshold"],
                validation_rejected=reject["validation_rejected"],
            )
        return cls(header["temperature"], detector, header["ece"])


@dataclass(frozen=True)
class Answer:
    """What a model answers for a batch (`answer`).

    Attributes:
        probabilities: (n, classes), calibrated (softmax of the logits over the temperature).
        rejected: (n,) bool: the input is unlike the training digits ("not sure").
        score: (n,) the detector's score in [0, 1] (NaN without a detector).
        threshold: the detector's threshold, or None.
        logits: (n, classes) before the temperature, or None for a model without answers.
    """

    probabilities: np.ndarray
    rejected: np.ndarray
    score: np.ndarray
    threshold: float | None
    logits: np.ndarray | None = None

    def reason(self, index: int) -> str | None:
        """Why input ``index`` is rejected, in words, or None if it is not."""
        if not self.rejected[index]:
            return None
        return (
            f"unlike the digits it was trained on: score {self.score[index]:.3f} "
            f"> {self.threshold:.3f}"
        )


def answer(model, inputs: np.ndarray, pixel_max: float | None = None) -> Answer:
    """The calibrated probabilities and "not sure" verdicts of a model with ``answers``.

    `multilayer.inference.answer_images` is the entry point for images and for any model
    (one without ``answers`` gets its plain probabilities there).

    Args:
        model: a built `Sequential` whose ``model.answers`` is set.
        inputs: at the model's scale and shape (`multilayer.inference.model_inputs`).
        pixel_max: the largest pixel value of ``inputs`` (default: the model's recorded
            ``input_scale.pixel_max``, else 1).

    Raises:
        ValueError: the model has no ``answers``, or its last layer is not Dense.
    """
    answers: Answers | None = getattr(model, "answers", None)
    if answers is None:
        raise ValueError("the model has no calibrated answers (model.answers is None)")
    n = len(inputs)
    features, logits = forward(model, inputs)
    probs = softmax_t(logits, answers.temperature)
    detector = answers.reject
    if detector is None:
        return Answer(probs, np.zeros(n, bool), np.full(n, math.nan), None, logits)
    if pixel_max is None:
        scale = getattr(model, "input_scale", None)
        pixel_max = float(scale.pixel_max) if scale is not None else 1.0
    score = detector.score(detector_inputs(features, logits, inputs, pixel_max))
    return Answer(probs, score > detector.threshold, score, detector.threshold, logits)
