"""Regression tests for the idioms the Keras programs (tests/keras_programs) found missing:
Normalization.mean/variance, rank-1 data for a one-feature model, layer/model ``losses``,
weight attributes such as ``dense.kernel``."""

import numpy as np
import pytest

import multilayer as keras
from multilayer import layers, regularizers


def test_normalization_mean_and_variance_attributes_after_adapt():
    data = np.array([[1.0, 10.0], [3.0, 30.0], [5.0, 20.0]], dtype="float32")
    norm = layers.Normalization(axis=-1)
    with pytest.raises(AttributeError, match="has no mean yet: call adapt"):
        norm.mean  # noqa: B018
    norm.adapt(data)
    assert norm.mean.shape == (1, 2) and norm.variance.shape == (1, 2)
    np.testing.assert_allclose(norm.mean.numpy(), [[3.0, 20.0]])
    np.testing.assert_allclose(norm.variance.numpy(), [[8 / 3, 200 / 3]], rtol=1e-6)
    model = keras.Sequential([keras.Input(shape=(2,)), norm])
    model.build((None, 2))
    np.testing.assert_allclose(np.asarray(norm.mean), [[3.0, 20.0]])  # read from the model
    fixed = layers.Normalization(mean=[1.0, 2.0], variance=[4.0, 9.0])
    keras.Sequential([keras.Input(shape=(2,)), fixed]).build((None, 2))
    np.testing.assert_allclose(np.asarray(fixed.variance).reshape(-1), [4.0, 9.0])


def test_normalization_adapts_to_a_rank_1_column_and_fit_accepts_it():
    column = np.array([1.0, 2.0, 3.0, 4.0], dtype="float32")
    norm = layers.Normalization(input_shape=[1], axis=None)
    norm.adapt(column)
    assert float(np.asarray(norm.mean).reshape(())) == pytest.approx(2.5)
    assert float(np.asarray(norm.variance).reshape(())) == pytest.approx(1.25)
    model = keras.Sequential([norm, layers.Dense(1)])
    model.compile(loss="mae", optimizer="sgd")
    model.fit(column, 2 * column, epochs=1, verbose=0)
    np.testing.assert_array_equal(
        model.predict(column, verbose=0), model.predict(column[:, None], verbose=0)
    )


def test_rank_1_data_is_refused_for_a_model_with_several_features():
    model = keras.Sequential([keras.Input(shape=(2,)), layers.Dense(1)])
    with pytest.raises(ValueError, match=r"x has samples of shape \(\) \(array shape \(4,\)\)"):
        model.predict(np.zeros(4, dtype="float32"), verbose=0)


def test_layer_and_model_losses_are_the_regularization_penalties():
    model = keras.Sequential(
        [
            keras.Input(shape=(3,)),
            layers.Dense(
                4, kernel_regularizer=regularizers.l2(0.01), bias_regularizer=regularizers.l1(0.1)
            ),
            layers.Dense(1),
        ]
    )
    model.build((None, 3))
    dense = model.get_layer(model.layers[1].name)
    kernel, bias = dense.get_weights()
    bias[:] = [1.0, -2.0, 0.0, 0.5]
    dense.set_weights([kernel, bias])
    losses = dense.losses
    assert len(losses) == 2
    assert float(losses[0]) == pytest.approx(
        0.01 * float(np.sum(kernel.astype(np.float64) ** 2)), rel=1e-5
    )
    assert float(losses[1]) == pytest.approx(0.1 * 3.5, rel=1e-6)
    assert len(model.losses) == 2 and model.layers[-1].losses == []
    assert sum(float(v) for v in model.losses) == pytest.approx(
        model.regularization_loss(), rel=1e-5
    )


def test_weight_attributes_name_the_layer_variables():
    model = keras.Sequential(
        [keras.Input(shape=(3,)), layers.Dense(2), layers.BatchNormalization()]
    )
    model.build((None, 3))
    dense, bn = model.layers[-2], model.layers[-1]
    assert dense.kernel.shape == (3, 2) and dense.kernel.path == f"{dense.name}/kernel"
    np.testing.assert_array_equal(np.asarray(dense.bias), dense.get_weights()[1])
    assert bn.moving_mean.trainable is False and bn.gamma.trainable is True
    dense.kernel.assign(np.ones((3, 2)))
    np.testing.assert_array_equal(dense.get_weights()[0], np.ones((3, 2)))
    with pytest.raises(AttributeError, match="'Dense' object has no attribute 'kernal'"):
        dense.kernal  # noqa: B018
    unbuilt = layers.Dense(2)
    with pytest.raises(AttributeError, match="has no attribute 'kernel'"):
        unbuilt.kernel  # noqa: B018
