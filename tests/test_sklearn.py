"""multilayer.sklearn: scikit-learn's own estimator checks, and the estimators in pipelines,
grid searches (joblib worker processes), pickles and on a real dataset."""

from __future__ import annotations

import collections
import io
import pickle
import pickletools
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.datasets import load_digits, load_iris, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.metrics import accuracy_score  # noqa: E402
from sklearn.model_selection import (  # noqa: E402
    GridSearchCV,
    cross_val_score,
    train_test_split,
)
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import (  # noqa: E402
    check_estimator,
    parametrize_with_checks,
)

from multilayer import Input, Sequential  # noqa: E402
from multilayer.errors import ModelFileError  # noqa: E402
from multilayer.layers import Dense  # noqa: E402
from multilayer.sklearn import (  # noqa: E402
    MLPClassifier,
    MLPRegressor,
    ModelClassifier,
    ModelRegressor,
)
from multilayer.sklearn._state import STATE_KEY  # noqa: E402


class BuildMLP:
    """A model function for the wrappers: one hidden layer, the head the target needs.

    (A class only for its stable repr: scikit-learn names each check after the estimator's
    repr, and pytest-xdist needs the same names in every worker; a plain function works as
    well, see test_routed_parameters_reach_their_targets.)"""

    def __call__(self, meta, hidden=16, activation="relu"):
        model = Sequential(
            [Input(shape=(meta["n_features_in_"],)), Dense(hidden, activation=activation)],
            dtype=meta["dtype"],
        )
        kind = meta["target_type_"]
        head = "sigmoid" if kind == "multilabel-indicator" else "softmax"
        model.add(Dense(meta["n_outputs_"], activation="linear" if "continuous" in kind else head))
        return model

    def __repr__(self) -> str:
        return "build_mlp"

    def __eq__(self, other) -> bool:
        return isinstance(other, BuildMLP)

    def __hash__(self) -> int:
        return 0


build_mlp = BuildMLP()


# -- scikit-learn's checks ----------------------------------------------------------------------
# Small networks and few epochs: the checks' datasets have tens to hundreds of samples.
CHECKED = [
    MLPClassifier(hidden_layer_sizes=(20,), max_iter=30, learning_rate_init=0.01, random_state=0),
    MLPRegressor(hidden_layer_sizes=(20,), max_iter=30, learning_rate_init=0.01, random_state=0),
    ModelClassifier(build_mlp, epochs=30, optimizer__learning_rate=0.01, random_state=0),
    ModelRegressor(build_mlp, epochs=30, optimizer__learning_rate=0.01, random_state=0),
]

WEIGHTS_ARE_NOT_REPEATS = (
    "minibatch training: a sample of weight 2 counts twice in its batch's gradient, whereas "
    "a repeated sample goes into another batch and adds steps to the epoch; the two are "
    "equal in expectation only, not to 1e-7"
)


def expected_failed_checks(estimator) -> dict[str, str]:
    return {"check_sample_weight_equivalence_on_dense_data": WEIGHTS_ARE_NOT_REPEATS}


#: Checks that scikit-learn skips for these estimators, and why.
EXPECTED_SKIPS = {
    "check_array_api_input": "only runs with SCIPY_ARRAY_API=1 and an array API library; "
    "the estimators take NumPy arrays (and DataFrames)",
    "check_classifiers_multilabel_output_format_decision_function": "no decision_function "
    "(predict_proba gives the probabilities)",
}

#: Checks that pass, per estimator, with scikit-learn 1.9 (the version CI installs).
EXPECTED_PASSED = {
    "MLPClassifier": 65,
    "MLPRegressor": 58,
    "ModelClassifier": 65,
    "ModelRegressor": 58,
}


@parametrize_with_checks(CHECKED, expected_failed_checks=expected_failed_checks, xfail_strict=True)
def test_sklearn_check(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


@pytest.mark.parametrize("estimator", CHECKED, ids=lambda e: type(e).__name__)
def test_check_counts(estimator):
    """How many of scikit-learn's checks ran, passed, failed as expected and were skipped:
    a skipped check is listed here with its reason, never counted as passed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(
            estimator, on_fail=None, expected_failed_checks=expected_failed_checks(estimator)
        )
    status = collections.Counter(r["status"] for r in results)
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    assert failed == []
    assert {r["check_name"] for r in results if r["status"] == "xfail"} == set(
        expected_failed_checks(estimator)
    )
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    assert skipped <= set(EXPECTED_SKIPS)
    assert "check_array_api_input" in skipped
    assert status["passed"] + status["xfail"] + status["skipped"] == len(results)
    name = type(estimator).__name__
    if sklearn.__version__.startswith("1.9."):
        assert status["passed"] == EXPECTED_PASSED[name], status
    else:
        assert status["passed"] >= 50, status


# -- data -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


# -- accuracy on a real dataset ---------------------------------------------------------------
def test_mlp_classifier_digits_accuracy(digits):
    X_train, X_test, y_train, y_test = digits
    clf = quiet(MLPClassifier(max_iter=60, random_state=0).fit, X_train, y_train)
    accuracy = clf.score(X_test, y_test)
    assert accuracy >= 0.95, accuracy
    assert clf.n_iter_ == len(clf.loss_curve_) <= 60
    assert clf.loss_curve_[-1] < clf.loss_curve_[0] / 10
    assert clf.classes_.tolist() == list(range(10))
    assert clf.n_features_in_ == 64
    assert [c.shape for c in clf.coefs_] == [(64, 100), (100, 10)]
    assert [b.shape for b in clf.intercepts_] == [(100,), (10,)]
    assert clf.n_layers_ == 3 and clf.out_activation_ == "softmax"
    np.testing.assert_array_equal(clf.coefs_[1], clf.model_.get_weights()[2])
    assert clf.predict_proba(X_test).shape == (len(X_test), 10)
    np.testing.assert_allclose(clf.predict_proba(X_test).sum(axis=1), 1.0, atol=1e-12)


def test_model_classifier_digits_accuracy(digits):
    X_train, X_test, y_train, y_test = digits
    clf = ModelClassifier(build_mlp, model__hidden=64, epochs=40, batch_size=64, random_state=0)
    clf.fit(X_train, y_train)
    assert clf.score(X_test, y_test) >= 0.95
    assert clf.model_.layers[-2].units == 64
    assert clf.n_iter_ == 40 and len(clf.history_["loss"]) == 40


# -- scikit-learn's conventions ---------------------------------------------------------------
def test_init_stores_parameters_unchanged():
    sizes = [10, 5]
    clf = MLPClassifier(hidden_layer_sizes=sizes, class_weight="balanced")
    assert clf.hidden_layer_sizes is sizes
    assert clf.get_params()["class_weight"] == "balanced"
    assert not [k for k in vars(clf) if k.endswith("_")]
    with pytest.raises(NotFittedError):
        clf.predict(np.zeros((1, 2)))


def test_random_state_gives_identical_results(iris):
    X, y = iris
    fits = [quiet(MLPClassifier((8,), max_iter=20, random_state=3).fit, X, y) for _ in range(2)]
    assert fits[0].loss_curve_ == fits[1].loss_curve_
    np.testing.assert_array_equal(fits[0].predict_proba(X), fits[1].predict_proba(X))
    other = quiet(MLPClassifier((8,), max_iter=20, random_state=4).fit, X, y)
    assert other.loss_curve_ != fits[0].loss_curve_
    wrapped = [ModelClassifier(build_mlp, epochs=3, random_state=7).fit(X, y) for _ in range(2)]
    np.testing.assert_array_equal(wrapped[0].predict_proba(X), wrapped[1].predict_proba(X))


def test_random_state_leaves_global_generators_alone(iris):
    X, y = iris
    np.random.seed(5)  # noqa: NPY002
    expected = np.random.rand()  # noqa: NPY002
    np.random.seed(5)  # noqa: NPY002
    ModelClassifier(build_mlp, epochs=1, random_state=0).fit(X, y)
    assert np.random.rand() == expected  # noqa: NPY002


def test_clone_keeps_parameters_and_drops_the_fit(iris):
    X, y = iris
    clf = ModelClassifier(build_mlp, epochs=2, model__hidden=5, fit__shuffle=False).fit(X, y)
    copy = clone(clf)
    assert copy.get_params() == clf.get_params()
    assert copy.get_params()["model__hidden"] == 5
    assert not hasattr(copy, "model_")
    copy.set_params(model__hidden=7, epochs=1)
    assert copy.fit(X, y).model_.layers[-2].units == 7


def test_class_weight_is_sample_weight_per_class(iris):
    X, y = iris
    weights = {0: 3.0, 1: 0.5, 2: 1.0}
    by_class = quiet(
        MLPClassifier((8,), max_iter=5, random_state=0, class_weight=weights).fit, X, y
    )
    by_sample = quiet(
        MLPClassifier((8,), max_iter=5, random_state=0).fit,
        X,
        y,
        sample_weight=np.array([weights[label] for label in y]),
    )
    assert by_class.loss_curve_ == by_sample.loss_curve_
    np.testing.assert_array_equal(by_class.predict_proba(X), by_sample.predict_proba(X))
    unweighted = quiet(MLPClassifier((8,), max_iter=5, random_state=0).fit, X, y)
    assert unweighted.loss_curve_ != by_class.loss_curve_


def test_string_labels_and_partial_fit(iris):
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = MLPClassifier((8,), random_state=0)
    with pytest.raises(
        ValueError, match="^classes must be passed on the first call to partial_fit$"
    ):
        clf.partial_fit(X, names)
    for _ in range(3):
        clf.partial_fit(X, names, classes=names)
    assert clf.n_iter_ == 3 and len(clf.loss_curve_) == 3
    assert clf.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    assert set(clf.predict(X)) <= set(clf.classes_)
    with pytest.raises(ValueError, match=r"y contains labels not in classes_ .*\['rose'\]"):
        clf.partial_fit(X[:2], np.array(["setosa", "rose"]))
    with pytest.raises(ValueError, match="X has 3 features, but MLPClassifier is expecting 4"):
        clf.partial_fit(X[:, :3], names)


def test_one_class_is_refused():
    with pytest.raises(
        ValueError,
        match=r"^MLPClassifier needs samples of at least 2 classes in the data; got 1 class \(np.int64\(1\)\)$|got 1 class \(1\)$",
    ):
        MLPClassifier().fit(np.zeros((4, 2)), np.ones(4, dtype=int))


def test_early_stopping_keeps_the_best_weights(iris):
    X, y = iris
    clf = MLPClassifier(
        (16,),
        max_iter=300,
        early_stopping=True,
        n_iter_no_change=3,
        validation_fraction=0.2,
        learning_rate_init=0.01,
        random_state=0,
    ).fit(X, y)
    assert clf.n_iter_ < 300
    assert len(clf.validation_scores_) == clf.n_iter_ == len(clf.loss_curve_)
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    # the same split as fit's: its generator draws the network's seed first
    rng = np.random.RandomState(0)
    rng.randint(np.iinfo(np.int32).max)
    _, X_val, _, y_val = train_test_split(X, y, random_state=rng, test_size=0.2, stratify=y)
    assert accuracy_score(y_val, clf.predict(X_val)) == clf.best_validation_score_


def test_stops_when_the_loss_stops_improving(iris):
    X, y = iris
    clf = MLPClassifier((8,), max_iter=500, tol=0.5, n_iter_no_change=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf.fit(X, y)
    # the first epoch sets the best loss; no later one improves it by 0.5: the count of
    # epochs without improvement passes n_iter_no_change after n_iter_no_change + 1 of them
    assert clf.n_iter_ == 4
    with pytest.warns(ConvergenceWarning, match=r"maximum iterations \(2\) reached"):
        MLPClassifier((8,), max_iter=2, random_state=0).fit(X, y)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"hidden_layer_sizes": (4, 0)},
            "hidden_layer_sizes must be positive integers, got (4, 0)",
        ),
        ({"max_iter": 0}, "max_iter must be a positive integer, got 0"),
        ({"alpha": -1.0}, "alpha must be >= 0.0, got -1.0"),
        ({"learning_rate_init": 0.0}, "learning_rate_init must be > 0.0, got 0.0"),
        ({"validation_fraction": 1.0}, "validation_fraction must be in (0.0, 1.0), got 1.0"),
        (
            {"solver": "lbfgs"},
            "solver must be the name of a multilayer optimizer ('adam', 'sgd', 'adamw', "
            "'rmsprop', ...); got 'lbfgs' (lbfgs is not supported)",
        ),
    ],
)
def test_invalid_parameters(iris, params, message):
    X, y = iris
    with pytest.raises(ValueError) as error:
        MLPClassifier(**params).fit(X, y)
    assert str(error.value) == message


def test_solvers_and_activations(iris):
    X, y = iris
    for solver in ("sgd", "adamw", "rmsprop"):
        clf = quiet(
            MLPClassifier((8,), activation="tanh", solver=solver, max_iter=3, random_state=0).fit,
            X,
            y,
        )
        assert type(clf.model_.optimizer).__name__.lower() == solver
    clf = quiet(MLPClassifier((8,), activation="logistic", max_iter=1).fit, X, y)
    assert clf.model_.layers[-2].get_config()["activation"] == {
        "class_name": "Sigmoid",
        "config": {},
    }


def test_multilabel_and_multioutput():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    Y = np.stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0, X[:, 3] > 0.5], axis=1).astype(int)
    clf = quiet(
        MLPClassifier((32,), max_iter=100, learning_rate_init=0.01, random_state=0).fit, X, Y
    )
    assert clf.multilabel_ and clf.classes_.tolist() == [0, 1, 2]
    assert clf.predict(X).shape == (300, 3) and set(np.unique(clf.predict(X))) <= {0, 1}
    assert clf.score(X, Y) > 0.8  # subset accuracy
    targets = np.stack([X @ [1.0, 2.0, 0.0, -1.0], X[:, 0] - X[:, 3]], axis=1)
    reg = quiet(
        MLPRegressor((32,), max_iter=200, learning_rate_init=0.01, random_state=0).fit, X, targets
    )
    assert reg.n_outputs_ == 2 and reg.predict(X).shape == (300, 2)
    assert reg.score(X, targets) > 0.95


def test_warm_start_and_wrapper_partial_fit(iris):
    X, y = iris
    clf = MLPClassifier((8,), max_iter=3, warm_start=True, random_state=0)
    quiet(clf.fit, X, y)
    first = clf.model_
    quiet(clf.fit, X, y)
    assert clf.model_ is first and clf.n_iter_ == 6 and len(clf.loss_curve_) == 6
    cold = quiet(clf.set_params(warm_start=False).fit, X, y)
    assert cold.model_ is not first and cold.n_iter_ == 3
    reg = ModelRegressor(build_mlp, epochs=5, random_state=0)
    targets = X[:, :2] @ [1.0, -1.0]
    for _ in range(3):
        reg.partial_fit(X, targets)
    assert reg.n_iter_ == 3 and len(reg.history_["loss"]) == 3 and reg.n_outputs_ == 1
    assert reg.history_["loss"][-1] < reg.history_["loss"][0]
    assert reg.predict(X).shape == (150,)
    with pytest.raises(ValueError, match="^y has 2 outputs; the estimator was fitted with 1$"):
        reg.partial_fit(X, np.stack([targets, targets], axis=1))


# -- pickling ---------------------------------------------------------------------------------
def _globals_in(data: bytes) -> set[str]:
    """The module.name of every global a pickle would import."""
    found, strings = set(), []
    for opcode, arg, _ in pickletools.genops(io.BytesIO(data)):
        if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        elif opcode.name == "STACK_GLOBAL":
            found.add(".".join(strings[-2:]))
        elif opcode.name == "GLOBAL":
            found.add(arg.replace(" ", "."))
    return found


@pytest.mark.parametrize(
    "make",
    [
        lambda: MLPClassifier((8,), max_iter=5, random_state=0),
        lambda: MLPRegressor((8,), max_iter=5, random_state=0),
        lambda: ModelClassifier(build_mlp, epochs=3, random_state=0),
    ],
    ids=["MLPClassifier", "MLPRegressor", "ModelClassifier"],
)
def test_pickle_round_trip_is_exact(iris, make):
    X, y = iris
    estimator = quiet(make().fit, X, y)
    data = pickle.dumps(estimator)
    # the network travels as safetensors bytes, the rest as JSON: no array of ours is pickled
    assert not any(name.startswith("numpy") for name in _globals_in(data)), _globals_in(data)
    assert b"multilayer.model" in data  # the safetensors header's format entry
    copy = pickle.loads(data)
    method = "predict_proba" if hasattr(estimator, "predict_proba") else "predict"
    np.testing.assert_array_equal(getattr(copy, method)(X), getattr(estimator, method)(X))
    assert copy.get_params() == estimator.get_params()
    assert copy.loss_curve_ == estimator.loss_curve_
    # training continues identically: optimizer state and random generator came along
    quiet(estimator.partial_fit, X, y)
    quiet(copy.partial_fit, X, y)
    np.testing.assert_array_equal(getattr(copy, method)(X), getattr(estimator, method)(X))


def test_pickle_of_an_unfitted_estimator(iris):
    clf = pickle.loads(pickle.dumps(MLPClassifier((3,))))
    assert clf.get_params() == MLPClassifier((3,)).get_params()
    assert not hasattr(clf, "model_")


def test_unpickling_checks_the_model_bytes(iris):
    X, y = iris
    clf = quiet(MLPClassifier((8,), max_iter=2, random_state=0).fit, X, y)
    state = clf.__getstate__()
    state[STATE_KEY]["model"] = state[STATE_KEY]["model"][:-16]  # truncated file
    with pytest.raises(ModelFileError, match="not a valid .safetensors model file"):
        MLPClassifier().__setstate__(state)


def test_unpickling_refuses_another_state(iris):
    X, y = iris
    clf = quiet(MLPClassifier((8,), max_iter=2, random_state=0).fit, X, y)
    state = clf.__getstate__()
    for text, message in [
        ("{", "^a pickled multilayer estimator state that is not JSON"),
        (
            '{"format": "other/9"}',
            "^a pickled multilayer estimator of format 'other/9'; this version reads multilayer.sklearn/1$",
        ),
        (
            '{"format": "multilayer.sklearn/1", "attributes": {"a": {"__ndarray__": {}}}}',
            "^a pickled multilayer estimator with invalid attributes",
        ),
    ]:
        bad = {**state, STATE_KEY: {**state[STATE_KEY], "json": text}}
        with pytest.raises(ValueError, match=message):
            MLPClassifier().__setstate__(bad)


def test_joblib_round_trip(tmp_path, iris):
    joblib = pytest.importorskip("joblib")
    X, y = iris
    clf = quiet(MLPClassifier((8,), max_iter=5, random_state=0).fit, X, y)
    joblib.dump(clf, tmp_path / "clf.joblib")
    np.testing.assert_array_equal(
        joblib.load(tmp_path / "clf.joblib").predict_proba(X), clf.predict_proba(X)
    )


# -- in scikit-learn's tools ------------------------------------------------------------------
@pytest.fixture
def loky_workers():
    """Stop the worker processes joblib starts (it keeps them for reuse) after the test."""
    yield
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)


def test_grid_search_in_two_processes(iris, loky_workers):
    X, y = iris
    search = GridSearchCV(
        ModelClassifier(build_mlp, epochs=20, optimizer__learning_rate=0.01, random_state=0),
        {"model__hidden": [2, 16], "model__activation": ["relu", "tanh"]},
        cv=3,
        n_jobs=2,
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_score_ > 0.8
    assert search.best_estimator_.model_.layers[-2].units == search.best_params_["model__hidden"]
    mlp = GridSearchCV(
        MLPClassifier(max_iter=30, learning_rate_init=0.01, random_state=0),
        {"hidden_layer_sizes": [(4,), (16,)]},
        cv=3,
        n_jobs=2,
    )
    quiet(mlp.fit, X, y)
    assert mlp.best_score_ > 0.8


def test_cross_val_score(iris):
    X, y = iris
    scores = quiet(
        cross_val_score,
        MLPClassifier((16,), max_iter=50, learning_rate_init=0.01, random_state=0),
        X,
        y,
        cv=3,
    )
    assert scores.shape == (3,) and scores.min() > 0.8


def test_pipeline_with_a_dataframe_and_set_output():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    n = 240
    frame = pd.DataFrame(
        {
            "size": rng.normal(size=n),
            "weight": rng.normal(size=n) * 10,
            "colour": rng.choice(["red", "green", "blue"], size=n),
        }
    )
    y = np.where((frame["size"] > 0) ^ (frame["colour"] == "red"), "yes", "no")
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), ["size", "weight"]),
            ("cat", OneHotEncoder(sparse_output=False), ["colour"]),
        ]
    ).set_output(transform="pandas")
    pipe = make_pipeline(
        pre, MLPClassifier((16,), max_iter=150, learning_rate_init=0.01, random_state=0)
    )
    quiet(pipe.fit, frame, y)
    clf = pipe[-1]
    assert clf.feature_names_in_.tolist() == [
        "num__size",
        "num__weight",
        "cat__colour_blue",
        "cat__colour_green",
        "cat__colour_red",
    ]
    assert pipe.score(frame, y) > 0.9
    assert pipe.predict(frame.iloc[:3]).dtype.kind == "U"
    # a DataFrame with other columns is refused by name
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(frame[["size", "weight"]].rename(columns={"size": "x"}).assign(a=0, b=0, c=0))
    regressor = make_pipeline(
        StandardScaler().set_output(transform="pandas"),
        ModelRegressor(build_mlp, epochs=5, random_state=0),
    ).fit(frame[["size", "weight"]], frame["size"] * 2)
    assert regressor[-1].feature_names_in_.tolist() == ["size", "weight"]
    assert regressor.predict(frame[["size", "weight"]]).shape == (n,)


# -- the wrapper's routing --------------------------------------------------------------------
def test_routed_parameters_reach_their_targets(iris):
    X, y = iris
    seen = {}

    def build(meta, hidden, compile_kwargs, colour="none"):
        seen.update(meta=meta, hidden=hidden, colour=colour, compile_kwargs=compile_kwargs)
        return build_mlp(meta, hidden)

    clf = ModelClassifier(
        build,
        epochs=2,
        model__hidden=3,
        colour="blue",
        optimizer="sgd",
        optimizer__learning_rate=0.05,
        fit__validation_split=0.2,
        predict__batch_size=7,
    ).fit(X, y)
    assert seen["hidden"] == 3 and seen["colour"] == "blue"
    assert seen["meta"]["n_features_in_"] == 4 and seen["meta"]["n_classes_"] == 3
    assert seen["meta"]["target_type_"] == "multiclass"
    assert clf.model_.optimizer.learning_rate == pytest.approx(0.05)
    assert type(clf.model_.optimizer).__name__ == "SGD"
    assert sorted(clf.history_) == ["loss", "val_loss"]
    assert clf.model_.compile_config["loss"]["class_name"] == "SparseCategoricalCrossentropy"


def test_a_functional_model_for_several_targets():
    import multilayer

    X, Y = make_regression(n_samples=200, n_features=5, n_targets=3, noise=0.1, random_state=0)
    Y = Y / Y.std(axis=0)

    def functional(meta, width=32):
        inputs = multilayer.Input(shape=(meta["n_features_in_"],))
        hidden = Dense(width, activation="tanh")(inputs)
        return multilayer.Model(inputs, Dense(meta["n_outputs_"])(hidden))

    reg = ModelRegressor(functional, epochs=60, optimizer__learning_rate=0.01, random_state=0)
    reg.fit(X, Y)
    assert reg.n_outputs_ == 3 and reg.predict(X).shape == (200, 3)
    assert reg.score(X, Y) > 0.95
    assert reg.model_.compile_config["loss"]["class_name"] == "MeanSquaredError"


def test_callbacks_are_copied_not_attached(iris):
    from multilayer.callbacks import EarlyStopping

    X, y = iris
    stop = EarlyStopping(monitor="loss", patience=0, min_delta=10.0)
    clf = ModelClassifier(build_mlp, epochs=50, callbacks=[stop], random_state=0).fit(X, y)
    assert clf.n_iter_ == 2  # the copy stopped training: no epoch improved the loss by 10
    assert stop.model is None and clf.callbacks[0] is stop
    assert b"multilayer.model" in pickle.dumps(clf)


def test_wrapper_errors(iris):
    X, y = iris
    with pytest.raises(
        ValueError,
        match=r"^the model function needs 'hidden': pass model__hidden=\.\.\. to the estimator$",
    ):
        ModelClassifier(lambda meta, hidden: build_mlp(meta, hidden)).fit(X, y)
    with pytest.raises(
        ValueError, match=r"^the model function has no parameter 'units' \(given as model__units\)$"
    ):
        ModelClassifier(build_mlp, model__units=3).fit(X, y)
    with pytest.raises(
        ValueError,
        match=r"^unknown parameter 'epoch': not a parameter of ModelClassifier nor of the model function",
    ):
        ModelClassifier(build_mlp, epoch=3).fit(X, y)
    with pytest.raises(ValueError, match=r"^unknown routed parameter 'compile__x'"):
        ModelClassifier(build_mlp, compile__x=3).fit(X, y)
    with pytest.raises(TypeError, match="not a model"):
        ModelClassifier(
            build_mlp(
                {
                    "n_features_in_": 4,
                    "n_outputs_": 3,
                    "target_type_": "multiclass",
                    "dtype": "float64",
                }
            )
        ).fit(X, y)
    with pytest.raises(
        ValueError,
        match=r"^the model function: the model's output has 5 units, but the target needs 3$",
    ):
        ModelClassifier(lambda meta: Sequential([Input(shape=(4,)), Dense(5)])).fit(X, y)


def test_binary_with_one_sigmoid_unit_and_one_hot_loss(iris):
    X, y = iris
    binary = (y == 0).astype(int)

    def one_unit(meta):
        return Sequential([Input(shape=(4,)), Dense(1, activation="sigmoid")])

    clf = ModelClassifier(one_unit, epochs=30, optimizer__learning_rate=0.05, random_state=0).fit(
        X, binary
    )
    assert clf.model_.compile_config["loss"]["class_name"] == "BinaryCrossentropy"
    assert clf.predict_proba(X).shape == (150, 2) and clf.score(X, binary) > 0.95
    onehot = ModelClassifier(
        build_mlp,
        loss="categorical_crossentropy",
        epochs=30,
        optimizer__learning_rate=0.01,
        random_state=0,
    ).fit(X, y)
    assert onehot.model_.compile_config["loss"]["class_name"] == "CategoricalCrossentropy"
    assert onehot.score(X, y) > 0.9
