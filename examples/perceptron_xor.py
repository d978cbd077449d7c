"""Why multi-layer perceptrons exist: a perceptron learns AND and OR but never XOR; an MLP with
one small hidden layer learns XOR perfectly.

    python examples/perceptron_xor.py            # well under a second
    MULTILAYER_FAST=1 python examples/perceptron_xor.py   # the same, fewer perceptron epochs

A perceptron draws one straight line through the plane. AND and OR can be split by a line, so
the perceptron rule converges; XOR's two classes sit on opposite corners of the square and no
line separates them, so the rule cycles forever and at best 3 of the 4 points are right.
A hidden layer bends the boundary. Two tanh units can represent XOR, but gradient descent gets
stuck from some starting points; eight units and a sigmoid output learned it from every seed
we tried.
"""

from __future__ import annotations

import os
import sys

import numpy as np

import multilayer as keras
from multilayer import Perceptron
from multilayer.layers import Dense

FAST = os.environ.get("MULTILAYER_FAST") == "1" or "--fast" in sys.argv[1:]

INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype="float32")
GATES = {
    "AND": np.array([0, 0, 0, 1]),
    "OR": np.array([0, 1, 1, 1]),
    "XOR": np.array([0, 1, 1, 0]),
}


def perceptron_on(name: str, max_epochs: int) -> Perceptron:
    perceptron = Perceptron(learning_rate=1.0, max_epochs=max_epochs, seed=0)
    perceptron.fit(INPUTS, GATES[name])
    return perceptron


def mlp_on_xor() -> keras.Sequential:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [Dense(8, activation="tanh", input_shape=(2,)), Dense(1, activation="sigmoid")]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=0.05),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(INPUTS, GATES["XOR"], epochs=300, batch_size=4, verbose=0)
    return model


def main() -> dict[str, float]:
    max_epochs = 100 if FAST else 1000
    results = {}
    print("Perceptron (Rosenblatt's learning rule)")
    for name in GATES:
        p = perceptron_on(name, max_epochs)
        score = p.score(INPUTS, GATES[name])
        results[f"perceptron_{name}"] = score
        status = (
            f"converged after {len(p.errors_per_epoch)} epochs"
            if p.converged
            else f"did NOT converge in {max_epochs} epochs"
        )
        print(
            f"  {name:>3}: {status:<32} accuracy {score:.0%}   "
            f"predictions {p.predict(INPUTS).tolist()} (targets {GATES[name].tolist()})"
        )

    model = mlp_on_xor()
    probabilities = model.predict(INPUTS)[:, 0]
    predictions = (probabilities > 0.5).astype(int)
    accuracy = float(np.mean(predictions == GATES["XOR"]))
    results["mlp_XOR"] = accuracy
    print("\nMulti-layer perceptron 2-8-1 (tanh hidden layer, sigmoid output, Adam) on XOR")
    for x, probability, prediction in zip(INPUTS, probabilities, predictions, strict=True):
        print(f"  {x.astype(int).tolist()} -> p(1) = {probability:.3f} -> {prediction}")
    print(f"  accuracy {accuracy:.0%}")
    return results


if __name__ == "__main__":
    main()
