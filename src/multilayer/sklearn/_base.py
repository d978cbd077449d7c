"""What the scikit-learn estimators share: input validation with scikit-learn's helpers,
target encoding for classifiers and regressors, prediction, and pickling (`_state`)."""

from __future__ import annotations

import contextlib
import random as _pyrandom
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from multilayer.engine import random as ml_random
from multilayer.models.functional import Model
from multilayer.sklearn import _state

_FLOATS = [np.float64, np.float32]


def seed_from(random_state) -> tuple[int, np.random.RandomState]:
    """A model seed drawn from ``random_state`` (scikit-learn's int / RandomState / None),
    and the RandomState it came from (for the validation split)."""
    rng = check_random_state(random_state)
    return int(rng.randint(np.iinfo(np.int32).max)), rng


@contextlib.contextmanager
def seeded_globals(seed: int) -> Iterator[None]:
    """Run the block with every global generator multilayer uses seeded with ``seed``
    (`multilayer.utils.set_random_seed`), and put them back as they were afterwards."""
    saved_ml = ml_random.generator_state(ml_random.global_generator())
    saved_np = np.random.get_state()  # noqa: NPY002 - set_random_seed seeds the legacy API
    saved_py = _pyrandom.getstate()
    ml_random.set_random_seed(seed)
    try:
        yield
    finally:
        ml_random.set_generator_state(ml_random.global_generator(), saved_ml)
        np.random.set_state(saved_np)  # noqa: NPY002
        _pyrandom.setstate(saved_py)


class MultilayerEstimator(BaseEstimator):
    """The shared machinery; `fit`, `partial_fit` and the model come from the subclasses."""

    # -- pickling ------------------------------------------------------------------------
    def _parameter_names(self) -> set[str]:
        return set(self.get_params(deep=False))

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        keep = self._parameter_names() | {"_sklearn_version", "_routed"}
        learned = {k: v for k, v in state.items() if k not in keep}
        state = {k: v for k, v in state.items() if k in keep}
        model = learned.pop("model_", None)
        if learned or model is not None:
            state[_state.STATE_KEY] = _state.dump_fitted(learned, model)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        fitted = state.pop(_state.STATE_KEY, None)
        if fitted is not None:
            attributes, model = _state.load_fitted(fitted)
            state.update(attributes)
            if model is not None:
                state["model_"] = model
        super().__setstate__(state)

    # -- validation ----------------------------------------------------------------------
    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")

    def _validate_X(self, X, reset: bool = False) -> np.ndarray:
        return validate_data(self, X, reset=reset, dtype=_FLOATS)

    def _validate_Xy(self, X, y, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        return validate_data(
            self, X, y, reset=reset, dtype=_FLOATS, multi_output=True, y_numeric=self._numeric_y
        )

    _numeric_y = False

    def _raw_predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = self._validate_X(X)
        outputs = self.model_.predict(X, **self._predict_kwargs())
        if isinstance(outputs, (list, dict)):
            raise ValueError("the model must have a single output to be used as an estimator")
        return np.asarray(outputs, dtype=np.float64).reshape(len(X), -1)

    def _predict_kwargs(self) -> dict[str, Any]:
        return {"verbose": 0}

    def _fit_weights(self, X, y, sample_weight) -> np.ndarray | None:
        """``sample_weight`` checked, times the weights ``class_weight`` gives (classifiers)."""
        weights = None
        if sample_weight is not None:
            weights = _check_sample_weight(sample_weight, X, dtype=np.float64)
        class_weight = getattr(self, "class_weight", None)
        if class_weight is not None:
            per_class = compute_sample_weight(class_weight, y)
            weights = per_class if weights is None else weights * per_class
        return weights


class MultilayerClassifierMixin(ClassifierMixin):
    """Classes in ``classes_``; ``y`` as labels (binary or multiclass: a softmax output,
    one unit per class) or a 2-D indicator matrix of 0/1 (multi-label: a sigmoid unit per
    label, ``classes_`` is ``[0, 1, ..., n_labels - 1]``)."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.classifier_tags.multi_label = True
        return tags

    def _encode_y(self, y, classes=None, reset: bool = True) -> np.ndarray:
        """``y`` as the network is trained on it: class indices, or a 0/1 float matrix."""
        check_classification_targets(y)
        kind = type_of_target(y, input_name="y")
        if kind == "multiclass-multioutput":
            raise ValueError(
                "multiclass-multioutput targets (several columns of labels) are not supported; "
                "give 1-D labels or a 2-D indicator matrix of 0 and 1 (multi-label)"
            )
        if reset:
            if kind == "multilabel-indicator":
                self.classes_ = np.arange(y.shape[1])
                self.multilabel_ = True
            else:
                y = column_or_1d(y, warn=True)
                found = np.unique(y) if classes is None else np.unique(np.asarray(classes))
                if len(found) < 2:
                    raise ValueError(
                        f"{type(self).__name__} needs samples of at least 2 classes in the "
                        f"data; got 1 class ({found[0]!r})"
                    )
                self.classes_ = found
                self.multilabel_ = False
        if self.multilabel_:
            if kind != "multilabel-indicator" or y.shape[1] != len(self.classes_):
                raise ValueError(
                    f"y must be an indicator matrix of {len(self.classes_)} labels, as in the "
                    "first fit"
                )
            return np.asarray(y, dtype=np.float32)
        if kind == "multilabel-indicator":
            raise ValueError(
                "y is a multi-label indicator matrix; the estimator was fitted on labels"
            )
        y = column_or_1d(y, warn=True)
        indices = np.searchsorted(self.classes_, y)
        indices = np.clip(indices, 0, len(self.classes_) - 1)
        unknown = self.classes_[indices] != y
        if np.any(unknown):
            raise ValueError(
                f"y contains labels not in classes_ {self.classes_.tolist()}: "
                f"{np.unique(y[unknown]).tolist()}"
            )
        return indices.astype(np.int64)

    @property
    def n_classes_(self) -> int:
        return len(self.classes_)

    def _output_units(self) -> int:
        return len(self.classes_)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape ``(n_samples, n_classes)`` (columns in the order of
        ``classes_``); for multi-label, each label's probability, ``(n_samples, n_labels)``."""
        outputs = self._raw_predict(X)
        if self.multilabel_:
            return outputs
        if outputs.shape[1] == 1:  # one sigmoid unit for two classes
            return np.hstack([1.0 - outputs, outputs])
        return outputs  # the softmax's, as model_.predict gives them

    def predict_log_proba(self, X) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        """Predicted labels, or for multi-label a 0/1 matrix (probability > 0.5)."""
        proba = self.predict_proba(X)
        if self.multilabel_:
            return (proba > 0.5).astype(np.int64)
        return self.classes_[np.argmax(proba, axis=1)]


class MultilayerRegressorMixin(RegressorMixin):
    """``y`` of shape ``(n,)`` or ``(n, n_outputs)``; predictions in that shape."""

    _numeric_y = True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _encode_y(self, y, classes=None, reset: bool = True) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        if reset:
            self.n_outputs_ = 1 if y.ndim == 1 else int(y.shape[1])
            self.y_ndim_ = int(y.ndim)
        width = 1 if y.ndim == 1 else int(y.shape[1])
        if width != self.n_outputs_:
            raise ValueError(
                f"y has {width} outputs; the estimator was fitted with {self.n_outputs_}"
            )
        return y.reshape(len(y), self.n_outputs_)

    def _output_units(self) -> int:
        return self.n_outputs_

    def predict(self, X) -> np.ndarray:
        """Predicted values, shape ``(n_samples,)`` or ``(n_samples, n_outputs)`` as ``y``."""
        outputs = self._raw_predict(X)
        return outputs[:, 0] if self.y_ndim_ == 1 else outputs


def warn_not_converged(name: str, max_iter: int) -> None:
    from sklearn.exceptions import ConvergenceWarning

    warnings.warn(
        f"{name}: maximum iterations ({max_iter}) reached and the optimization hasn't "
        "converged yet.",
        ConvergenceWarning,
        stacklevel=3,
    )


def check_model(model: Any, units: int, what: str) -> Model:
    """``model`` if it is a single-output multilayer model whose output has ``units`` units."""
    if not isinstance(model, Model):
        raise TypeError(f"{what} must return a multilayer Model, got {type(model).__name__}")
    model._build_if_possible()  # traced as soon as the input shape is known, as in Keras
    shapes = model.output_shapes()
    if shapes is None:
        raise ValueError(
            f"{what}: the model has no input shape; start it with Input(shape=(n_features,)) "
            "(meta['n_features_in_'])"
        )
    if shapes is not None:
        if len(shapes) != 1:
            raise ValueError(f"{what}: the model must have one output, it has {len(shapes)}")
        width = int(np.prod(shapes[0])) if shapes[0] else 1
        if width != units and not (units == 2 and width == 1):
            raise ValueError(
                f"{what}: the model's output has {width} units, but the target needs {units}"
            )
    return model
