"""skl2onnx converts scikit-learn pipelines holding multilayer's estimators (issue 12, item 2's
"if it fits"): after ``multilayer.export.sklearn_onnx.register()``, the pipeline's ONNX graph
run by onnxruntime gives ``predict``'s labels and ``predict_proba``'s probabilities."""

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
skl2onnx = pytest.importorskip("skl2onnx")
ort = pytest.importorskip("onnxruntime")

from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.datasets import load_diabetes, load_iris  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from multilayer.engine.layers import Dense, Input  # noqa: E402
from multilayer.export.onnx import ExportError  # noqa: E402
from multilayer.export.sklearn_onnx import register  # noqa: E402
from multilayer.models.sequential import Sequential  # noqa: E402
from multilayer.sklearn import (  # noqa: E402
    MLPClassifier,
    MLPRegressor,
    ModelClassifier,
    ModelRegressor,
)

register()
X, Y = load_iris(return_X_y=True)
NAMES = np.array(["setosa", "versicolor", "virginica"])[Y]


def fitted(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning of the short fits
        return make_pipeline(StandardScaler(), estimator).fit(X, y)


def run(pipe, X, **options):
    onx = skl2onnx.to_onnx(pipe, X[:1].astype(np.float32), target_opset=18, **options)
    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"X": X.astype(np.float32)})


def build(meta, hidden=8):
    model = Sequential(
        [Input(shape=(meta["n_features_in_"],)), Dense(hidden, activation="tanh")],
        dtype=meta["dtype"],
    )
    continuous = "continuous" in meta["target_type_"]
    model.add(Dense(meta["n_outputs_"], activation="linear" if continuous else "softmax"))
    return model


@pytest.mark.parametrize(
    ("estimator", "target"),
    [
        (MLPClassifier(hidden_layer_sizes=(16,), max_iter=40, random_state=0), Y),
        (MLPClassifier(hidden_layer_sizes=(16,), max_iter=40, random_state=0), NAMES),
        # two classes: one sigmoid unit, probabilities [1 - p, p] as predict_proba gives them
        (MLPClassifier(hidden_layer_sizes=(8, 8), max_iter=40, random_state=0), Y > 0),
        (ModelClassifier(build, epochs=20, random_state=0), NAMES),
    ],
    ids=["int-labels", "string-labels", "binary", "model-function"],
)
def test_classifier_pipeline(estimator, target):
    pipe = fitted(estimator, X, target)
    label, probabilities = run(pipe, X, options={"zipmap": False})
    assert np.abs(probabilities - pipe.predict_proba(X)).max() <= 1e-5
    assert np.array_equal(label, pipe.predict(X))
    # zipmap (skl2onnx's default): one {class: probability} dict per sample
    label, maps = run(pipe, X[:3])
    assert list(maps[0]) == list(pipe.classes_)


@pytest.mark.parametrize(
    "estimator",
    [
        MLPRegressor(hidden_layer_sizes=(16,), max_iter=30, random_state=0),
        ModelRegressor(build, epochs=10, random_state=0),
    ],
    ids=["mlp", "model-function"],
)
def test_regressor_pipeline(estimator):
    x, y = load_diabetes(return_X_y=True)
    pipe = fitted(estimator, x, np.column_stack([y, -y]) / 100)
    (out,) = run(pipe, x)
    assert out.shape == (len(x), 2)
    np.testing.assert_allclose(out, pipe.predict(x), rtol=1e-5, atol=1e-5)


def test_column_transformer_pipeline():
    columns = ColumnTransformer(
        [("scaled", StandardScaler(), [0, 1]), ("raw", "passthrough", [2, 3])]
    )
    pipe = make_pipeline(columns, MLPClassifier(max_iter=20, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(X, Y)
    label, probabilities = run(pipe, X, options={"zipmap": False})
    assert np.array_equal(label, pipe.predict(X))
    assert np.abs(probabilities - pipe.predict_proba(X)).max() <= 1e-5


def test_multilabel_and_old_opsets_are_refused():
    multilabel = fitted(
        MLPClassifier(max_iter=5, random_state=0), X, np.column_stack([Y > 0, Y > 1]).astype(int)
    )
    with pytest.raises(ExportError) as error:
        run(multilabel, X)
    assert str(error.value) == (
        "MLPClassifier fitted on a multi-label indicator matrix cannot be converted: "
        "skl2onnx's classifier outputs are one label per sample"
    )
    pipe = fitted(MLPClassifier(max_iter=5, random_state=0), X, Y)
    with pytest.raises(ExportError) as error:
        skl2onnx.to_onnx(pipe, X[:1].astype(np.float32), target_opset=15)
    assert str(error.value) == (
        "a multilayer estimator needs target_opset >= 18 in skl2onnx, got 15"
    )
