"""Recipes build the model and optimizer their fields describe."""

from __future__ import annotations

import numpy as np

from multilayer.engine import optimizers
from multilayer.engine.layers import Rescaling
from multilayer.inference import expects_raw_pixels
from multilayer.recipes import MNIST_MEAN, MNIST_STD, build_model, get_recipe


def small(recipe_name: str, **changes):
    recipe = get_recipe(recipe_name).with_overrides(hidden=(8,), **changes)
    model = build_model(recipe, (28, 28), 10, steps_per_epoch=10, seed=0)
    model.build()
    return model


def rescaled(model, pixels):
    rescaling = next(layer for layer in model.layers if isinstance(layer, Rescaling))
    return rescaling.forward(np.asarray(pixels, dtype=np.uint8).reshape(1, -1)).ravel()


def test_standardize_maps_pixels_to_mnist_mean_0_std_1():
    model = small("fast", standardize=True)
    out = rescaled(model, [0, 255])
    np.testing.assert_allclose(
        out, [-MNIST_MEAN / MNIST_STD, (1 - MNIST_MEAN) / MNIST_STD], rtol=1e-5
    )
    assert expects_raw_pixels(model)  # the CLI and the app keep feeding it 0..255 pixels


def test_without_standardize_pixels_go_to_0_1():
    out = rescaled(small("tutorial"), [0, 255])
    np.testing.assert_allclose(out, [0.0, 1.0], rtol=1e-6)


def test_recipe_fields_reach_the_layers_and_the_optimizer():
    model = small("fast", beta_2=0.95, kernel_initializer="he_uniform")
    assert isinstance(model.optimizer, optimizers.Adam) and model.optimizer.beta_2 == 0.95
    dense = [layer for layer in model.layers if hasattr(layer, "kernel_initializer")]
    assert dense and all(type(layer.kernel_initializer).__name__ == "HeUniform" for layer in dense)
    assert small("tutorial").optimizer.beta_2 == 0.999
