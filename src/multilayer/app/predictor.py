"""Run a trained model on one 28x28 digit image and expose what happens inside it.

This module has no web dependency: the browser app (`multilayer.app.server`) uses it. Which pixel scale a model takes is decided in one place,
`multilayer.inference.model_inputs`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from multilayer.answers import answer
from multilayer.engine.layers import Dense
from multilayer.explain import DEFAULT_METHOD, Explanation, explain
from multilayer.inference import input_pixel_max, model_inputs, probabilities

if TYPE_CHECKING:
    from multilayer.models.sequential import Sequential

__all__ = ["LayerActivation", "Prediction", "Predictor"]


@dataclass(frozen=True)
class LayerActivation:
    """The output of one Dense layer for one image."""

    name: str
    activation: str
    values: np.ndarray  # (units,)


@dataclass(frozen=True)
class Prediction:
    """What the model makes of one 28x28 image."""

    probabilities: np.ndarray  # (classes,), calibrated when the model carries answers
    image: np.ndarray  # (28, 28) float32 in [0, 1]: what the network sees
    activations: list[LayerActivation]
    #: "not sure": the image is unlike the training digits (`multilayer.answers`)
    rejected: bool = False
    #: the detector's score in [0, 1], None without a detector
    score: float | None = None
    #: why the image was rejected, in words, or None
    reason: str | None = None
    #: which pixels pushed toward and against the top class (`multilayer.explain`), or None
    #: for a model that cannot be explained (not ending in a Dense layer of 2+ classes)
    explanation: Explanation | None = None

    @property
    def top_class(self) -> int:
        return int(np.argmax(self.probabilities))


class Predictor:
    """A loaded model, safe to call from several threads.

    Layers keep reusable work buffers between calls (that is what makes training fast), so two
    concurrent forward passes through the same model would overwrite each other's buffers: a
    lock serialises them. A forward pass of one image takes well under a millisecond, so the
    lock costs little next to image decoding, which runs outside it.

    Args:
        model: a built `Sequential` taking 784 inputs (e.g. from ``load_model``).
    """

    def __init__(self, model: Sequential):
        if not model.built:
            model.build()
        self.model = model
        # Fail early, at start-up, on a model that does not take 28x28 images.
        model_inputs(model, np.zeros((1, 28, 28), dtype=np.float32), pixel_max=1.0)
        self._lock = threading.Lock()
        last = model.layers[-1] if model.layers else None
        self.explainable = isinstance(last, Dense) and int(last.units) >= 2

    def _explain(self, image: np.ndarray) -> Explanation | None:
        # under the lock: the backward pass uses the layers' buffers
        if not self.explainable:
            return None
        return explain(self.model, image.astype(np.float64), DEFAULT_METHOD, pixel_max=1.0)

    def predict(self, image: np.ndarray) -> Prediction:
        """Probabilities and every Dense layer's output for one image.

        Args:
            image: array (28, 28) of floats in [0, 1], white ink on black (as returned by
                ``multilayer.data.images.preprocess``).
        """
        image = np.asarray(image, dtype=np.float32).reshape(28, 28)
        x = inputs = model_inputs(self.model, image[None], pixel_max=1.0)
        activations: list[LayerActivation] = []
        answers = getattr(self.model, "answers", None)
        with self._lock:
            for layer in self.model.layers:
                x = layer.forward(x, training=False)
                if isinstance(layer, Dense):
                    activations.append(
                        LayerActivation(
                            # str(): a hand-edited model file may name a layer 7.
                            name=str(layer.name),
                            activation=str(layer.activation.name),
                            values=np.array(x[0], dtype=np.float32),  # copy out of the buffer
                        )
                    )
            if answers is None:
                output = probabilities(self.model, np.array(x, dtype=np.float64))[0]
                return Prediction(
                    probabilities=output,
                    image=image,
                    activations=activations,
                    explanation=self._explain(image),
                )
            # the answers' own forward pass (under the same lock: it uses the layers' buffers)
            verdict = answer(self.model, inputs, input_pixel_max(self.model))
            explanation = self._explain(image)
        score = float(verdict.score[0])
        return Prediction(
            probabilities=verdict.probabilities[0],
            image=image,
            activations=activations,
            rejected=bool(verdict.rejected[0]),
            score=None if np.isnan(score) else score,
            reason=verdict.reason(0),
            explanation=explanation,
        )
