"""`ModelClassifier` and `ModelRegressor`: a scikit-learn estimator around any function that
builds a multilayer model, with scikeras' routed parameters."""

from __future__ import annotations

import copy
import inspect
from typing import Any

import numpy as np

from multilayer.engine import optimizers
from multilayer.models.functional import Model
from multilayer.sklearn._base import (
    MultilayerClassifierMixin,
    MultilayerEstimator,
    MultilayerRegressorMixin,
    check_model,
    seed_from,
    seeded_globals,
)

#: the prefixes of routed parameters: ``model__x`` goes to the model function, ``fit__x`` to
#: ``model.fit``, ``predict__x`` to ``model.predict``, ``optimizer__x`` to the optimizer
ROUTES = ("model", "fit", "predict", "optimizer")


class _BaseWrapper(MultilayerEstimator):
    def __init__(
        self,
        model=None,
        *,
        optimizer="adam",
        loss=None,
        metrics=None,
        batch_size=None,
        epochs=1,
        verbose=0,
        callbacks=None,
        validation_split=0.0,
        shuffle=True,
        random_state=None,
        warm_start=False,
        **kwargs,
    ):
        self.model = model
        self.optimizer = optimizer
        self.loss = loss
        self.metrics = metrics
        self.batch_size = batch_size
        self.epochs = epochs
        self.verbose = verbose
        self.callbacks = callbacks
        self.validation_split = validation_split
        self.shuffle = shuffle
        self.random_state = random_state
        self.warm_start = warm_start
        self._routed = dict(kwargs)

    # -- parameters: the signature's and any keyword given (routed or for the function) ---
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        params = super().get_params(deep=deep)
        params.update(self._routed)
        return params

    def set_params(self, **params):
        own = set(super().get_params(deep=False))
        for key, value in params.items():
            if key in own:
                setattr(self, key, value)
            else:
                self._routed[key] = value
        return self

    def _route(self, prefix: str) -> dict[str, Any]:
        start = prefix + "__"
        return {k[len(start) :]: v for k, v in self._routed.items() if k.startswith(start)}

    # -- building -------------------------------------------------------------------------
    def _meta(self, X: np.ndarray) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "n_features_in_": int(X.shape[1]),
            "n_outputs_": self._output_units(),
            "dtype": X.dtype.name,
        }
        if hasattr(self, "feature_names_in_"):
            meta["feature_names_in_"] = list(self.feature_names_in_)
        return meta

    def _call_model_function(self, meta: dict[str, Any]) -> Model:
        build = self.model
        if isinstance(build, Model):
            raise TypeError(
                "model must be a function that builds and returns a multilayer model (so that "
                "each fit, clone and grid-search candidate gets a fresh one), not a model"
            )
        if not callable(build):
            raise TypeError(
                f"model must be a function that builds a multilayer model, got {build!r}"
            )
        for key in self._routed:
            prefix = key.split("__", 1)[0] if "__" in key else None
            if prefix is not None and prefix not in ROUTES:
                raise ValueError(
                    f"unknown routed parameter {key!r}: the prefixes are "
                    f"{', '.join(p + '__' for p in ROUTES)}"
                )
        plain = {k: v for k, v in self._routed.items() if "__" not in k}
        routed = self._route("model")
        available = {
            **{k: v for k, v in super().get_params(deep=False).items() if k != "model"},
            **plain,
            **routed,
            "meta": meta,
            "compile_kwargs": {
                "optimizer": self._make_optimizer(),
                "loss": self._loss(),
                "metrics": self.metrics,
            },
        }
        signature = inspect.signature(build)
        takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
        named = {
            name: p
            for name, p in signature.parameters.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }
        missing = [
            name for name, p in named.items() if p.default is p.empty and name not in available
        ]
        if missing:
            raise ValueError(
                f"the model function needs {', '.join(map(repr, missing))}: pass "
                f"{', '.join(f'model__{m}=...' for m in missing)} to the estimator"
            )
        unknown = [k for k in routed if k not in named] if not takes_any else []
        if unknown:
            raise ValueError(
                f"the model function has no parameter {', '.join(map(repr, unknown))} "
                f"(given as {', '.join('model__' + k for k in unknown)})"
            )
        unused = [k for k in plain if k not in named] if not takes_any else []
        if unused:
            raise ValueError(
                f"unknown parameter {', '.join(map(repr, unused))}: not a parameter of "
                f"{type(self).__name__} nor of the model function (route parameters with "
                f"{', '.join(p + '__' for p in ROUTES)})"
            )
        kwargs = {name: available[name] for name in named if name in available}
        if takes_any:
            kwargs.update({**plain, **routed})
        return build(**kwargs)

    def _make_optimizer(self) -> optimizers.Optimizer:
        routed = self._route("optimizer")
        optimizer = self.optimizer
        if isinstance(optimizer, optimizers.Optimizer):
            # a fresh copy: the estimator's parameter is never trained in place
            optimizer = optimizers.get(optimizers.serialize(optimizer))
            if routed:
                optimizer = type(optimizer)(**{**optimizer.get_config(), **routed})
            return optimizer
        if isinstance(optimizer, type) and issubclass(optimizer, optimizers.Optimizer):
            return optimizer(**routed)
        made = optimizers.get(optimizer)
        return type(made)(**routed) if routed else made

    def _loss(self):
        return self.loss

    def _build_and_compile(self, X: np.ndarray, seed: int) -> Model:
        with seeded_globals(seed):
            model = self._call_model_function(self._meta(X))
            model = check_model(model, self._output_units(), "the model function")
            if model.loss is None:  # not compiled by the function
                model.compile(
                    optimizer=self._make_optimizer(),
                    loss=self._loss() if self._loss() is not None else self._default_loss(model),
                    metrics=self.metrics,
                )
        return model

    def _default_loss(self, model: Model) -> str:
        raise NotImplementedError

    def _targets_for(self, model: Model, target: np.ndarray) -> np.ndarray:
        return target

    # -- training ---------------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None, **fit_params):
        """Build the model (a new one, unless ``warm_start``) and train it for ``epochs``
        epochs; ``fit_params`` (and the routed ``fit__x`` parameters) go to ``model.fit``."""
        return self._fit(X, y, sample_weight, epochs=self.epochs, fit_params=fit_params)

    def _fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any,
        epochs: int,
        fit_params: dict[str, Any],
        classes: Any = None,
        incremental: bool = False,
    ) -> _BaseWrapper:
        first = not ((incremental or self.warm_start) and hasattr(self, "model_"))
        X, y = self._validate_Xy(X, y, reset=first)
        target = self._encode_y(y, classes=classes, reset=first)
        weights = self._fit_weights(X, y, sample_weight)
        if first:
            seed, _ = seed_from(self.random_state)
            self.model_ = self._build_and_compile(X, seed)
            self.history_: dict[str, list[float]] = {}
            self.n_iter_ = 0
        arguments = {
            "batch_size": self.batch_size,
            "epochs": epochs,
            "verbose": self.verbose,
            "callbacks": self.callbacks,
            "validation_split": self.validation_split,
            "shuffle": self.shuffle,
            **({} if incremental else self._route("fit")),
            **fit_params,
        }
        if incremental:
            arguments["epochs"] = 1
        if arguments.get("callbacks") is not None:
            # copies: fit attaches the model to its callbacks, and a parameter stays as given
            # (and pickles without the network in it)
            arguments["callbacks"] = copy.deepcopy(arguments["callbacks"])
        history = self.model_.fit(
            X, self._targets_for(self.model_, target), sample_weight=weights, **arguments
        )
        for key, values in history.history.items():
            self.history_.setdefault(key, []).extend(float(v) for v in values)
        self.n_iter_ += len(history.history.get("loss", []))
        self.loss_curve_ = list(self.history_.get("loss", []))
        return self

    def _predict_kwargs(self) -> dict[str, Any]:
        return {"verbose": 0, **self._route("predict")}


def _loss_name(loss: Any) -> str:
    if isinstance(loss, str):
        return loss.lower().replace("_", "")
    if isinstance(loss, dict):
        return str(loss.get("class_name", "")).lower().replace("_", "")
    return type(loss).__name__.lower()


class ModelClassifier(MultilayerClassifierMixin, _BaseWrapper):
    """A scikit-learn classifier around ``model``, a function that builds a multilayer
    model (called at each fit, as scikeras' ``KerasClassifier`` calls its model function).

    The function gets, by the names of its arguments: any ``model__x=...`` given to the
    estimator (as ``x``), any other keyword given to the estimator, the estimator's own
    parameters (``optimizer``, ``loss``, ...), ``meta`` (``n_features_in_``, ``classes_``,
    ``n_classes_``, ``n_outputs_``: the output units needed, ``target_type_``) and
    ``compile_kwargs``. It returns a model with one output: ``n_classes_`` softmax units (or
    one sigmoid unit for two classes; ``n_outputs_`` sigmoid units for a multi-label ``y``).
    If it does not compile the model, the estimator compiles it with ``optimizer``
    (``optimizer__x`` routed to it), ``loss`` (default: sparse categorical cross-entropy;
    binary cross-entropy for one sigmoid unit or multi-label) and ``metrics``.

    ``fit__x`` goes to ``model.fit`` (``fit__validation_data``...), ``predict__x`` to
    ``model.predict``. Labels reach the network as class indices (one-hot for a categorical
    cross-entropy loss).

    Attributes:
        classes_, n_features_in_, feature_names_in_, model_, history_ (each logged value
        per epoch), loss_curve_, n_iter_ (epochs trained), multilabel_.
    """

    def __init__(
        self,
        model=None,
        *,
        optimizer="adam",
        loss=None,
        metrics=None,
        batch_size=None,
        epochs=1,
        verbose=0,
        callbacks=None,
        validation_split=0.0,
        shuffle=True,
        class_weight=None,
        random_state=None,
        warm_start=False,
        **kwargs,
    ):
        super().__init__(
            model=model,
            optimizer=optimizer,
            loss=loss,
            metrics=metrics,
            batch_size=batch_size,
            epochs=epochs,
            verbose=verbose,
            callbacks=callbacks,
            validation_split=validation_split,
            shuffle=shuffle,
            random_state=random_state,
            warm_start=warm_start,
            **kwargs,
        )
        self.class_weight = class_weight

    def _meta(self, X: np.ndarray) -> dict[str, Any]:
        meta = super()._meta(X)
        meta["classes_"] = self.classes_
        meta["n_classes_"] = len(self.classes_)
        meta["target_type_"] = (
            "multilabel-indicator"
            if self.multilabel_
            else "binary"
            if len(self.classes_) == 2
            else "multiclass"
        )
        return meta

    def _default_loss(self, model: Model) -> str:
        shapes = model.output_shapes()
        if self.multilabel_ or (shapes is not None and shapes[0][-1:] == (1,)):
            return "binary_crossentropy"
        return "sparse_categorical_crossentropy"

    def _targets_for(self, model: Model, target: np.ndarray) -> np.ndarray:
        if self.multilabel_:
            return target
        config = model.compile_config or {}
        name = _loss_name(config.get("loss"))
        if "categorical" in name and "sparse" not in name:
            return np.eye(len(self.classes_), dtype=np.float32)[target]
        shapes = model.output_shapes()
        if shapes is not None and shapes[0][-1:] == (1,):
            return target.astype(np.float32).reshape(-1, 1)
        return target

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over ``(X, y)``; the first call builds the model and needs ``classes``
        (every label), except for a multi-label indicator ``y``."""
        from multilayer.sklearn._mlp import type_of_y

        if (
            not hasattr(self, "model_")
            and classes is None
            and type_of_y(y) != "multilabel-indicator"
        ):
            raise ValueError("classes must be passed on the first call to partial_fit")
        return self._fit(
            X, y, sample_weight, epochs=1, fit_params={}, classes=classes, incremental=True
        )


class ModelRegressor(MultilayerRegressorMixin, _BaseWrapper):
    """A scikit-learn regressor around ``model``, a function that builds a multilayer model:
    as `ModelClassifier` (without ``class_weight``), for a model with ``n_outputs_`` output
    units (``meta["n_outputs_"]``); the default loss is the mean squared error.

    Attributes:
        n_outputs_, n_features_in_, feature_names_in_, model_, history_, loss_curve_, n_iter_.
    """

    def _meta(self, X: np.ndarray) -> dict[str, Any]:
        meta = super()._meta(X)
        meta["target_type_"] = "continuous" if self.n_outputs_ == 1 else "continuous-multioutput"
        return meta

    def _default_loss(self, model: Model) -> str:
        return "mean_squared_error"

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``(X, y)``; the first call builds the model."""
        return self._fit(X, y, sample_weight, epochs=1, fit_params={}, incremental=True)
