"""TensorFlow regression tutorial idiom: call an adapted layer directly on data to look at
its output (``normalizer(first_example)``), outside any model."""

import json

import numpy as np

import multilayer as keras
from multilayer import layers

data = np.random.default_rng(0).normal(loc=5, scale=2, size=(100, 3)).astype("float32")
keras.utils.set_random_seed(0)
normalizer = layers.Normalization(axis=-1)
normalizer.adapt(data)
out = np.asarray(normalizer(data[:1]))
np.testing.assert_allclose(out, (data[:1] - data.mean(0)) / data.std(0), rtol=1e-3, atol=1e-4)
print("RESULT " + json.dumps({"shape": list(out.shape)}))
