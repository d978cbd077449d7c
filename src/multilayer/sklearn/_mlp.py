"""`MLPClassifier` and `MLPRegressor`: scikit-learn's MLP parameters on a multilayer network."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted

from multilayer.engine import optimizers, regularizers
from multilayer.engine.layers import Dense, Input
from multilayer.models.callbacks import Callback
from multilayer.models.sequential import Sequential
from multilayer.sklearn._base import (
    MultilayerClassifierMixin,
    MultilayerEstimator,
    MultilayerRegressorMixin,
    seed_from,
    warn_not_converged,
)

#: scikit-learn's activation names and multilayer's for them
ACTIVATIONS = {"identity": "linear", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}


class _Convergence(Callback):
    """scikit-learn's stopping rule, applied at the end of each epoch of ``model.fit``."""

    def __init__(self, estimator: _BaseMLP, validation: tuple | None) -> None:
        super().__init__()
        self.estimator = estimator
        self.validation = validation
        self.best_weights: list[np.ndarray] | None = None

    def on_epoch_end(self, epoch, logs=None):
        est = self.estimator
        loss = float((logs or {})["loss"])
        est.loss_curve_.append(loss)
        est.n_iter_ += 1
        est.t_ += est._n_train
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {loss:.8f}")
        if self.validation is not None:
            score = est._validation_score(*self.validation)
            est.validation_scores_.append(score)
            if est.verbose:
                print(f"Validation score: {score:f}")
            if score < est.best_validation_score_ + est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                self.best_weights = [w.copy() for w in self.model.get_weights()]
        else:
            best = np.inf if est.best_loss_ is None else est.best_loss_
            if loss > best - est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            est.best_loss_ = min(best, loss)
        if est._no_improvement_count > est.n_iter_no_change:
            est._converged = True
            self.model.stop_training = True


class _BaseMLP(MultilayerEstimator):
    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate_init=0.001,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change

    # -- parameters ----------------------------------------------------------------------
    def _check_parameters(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral):
            sizes = (sizes,)
        try:
            sizes = tuple(sizes)
        except TypeError:
            raise ValueError(
                f"hidden_layer_sizes must be an int or a sequence of ints, got {sizes!r}"
            ) from None
        if not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and int(s) > 0
            for s in sizes
        ):
            raise ValueError(f"hidden_layer_sizes must be positive integers, got {sizes!r}")

        def positive_int(name: str) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

        def number(name: str, low: float, high: float | None = None, open_low: bool = False):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not np.isfinite(float(value))
            ):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
            value = float(value)
            if value < low or (open_low and value == low) or (high is not None and value >= high):
                bound = (
                    f"in ({low}, {high})"
                    if high is not None
                    else f"> {low}"
                    if open_low
                    else f">= {low}"
                )
                raise ValueError(f"{name} must be {bound}, got {value!r}")

        positive_int("max_iter")
        positive_int("n_iter_no_change")
        if self.batch_size != "auto":
            positive_int("batch_size")
        number("alpha", 0.0)
        number("tol", 0.0)
        number("learning_rate_init", 0.0, open_low=True)
        number("validation_fraction", 0.0, 1.0, open_low=True)
        number("beta_1", 0.0, 1.0)
        number("beta_2", 0.0, 1.0)
        number("epsilon", 0.0, open_low=True)
        number("momentum", 0.0)
        if not isinstance(self.activation, str):
            raise ValueError(f"activation must be a name, got {self.activation!r}")
        if not isinstance(self.solver, str) or self.solver == "lbfgs":
            raise ValueError(
                f"solver must be the name of a multilayer optimizer ('adam', 'sgd', 'adamw', "
                f"'rmsprop', ...); got {self.solver!r} (lbfgs is not supported)"
            )
        return sizes

    def _optimizer(self) -> optimizers.Optimizer:
        name = self.solver.lower()
        lr = float(self.learning_rate_init)
        if name == "adam":
            return optimizers.Adam(lr, beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        if name == "sgd":
            return optimizers.SGD(
                lr, momentum=self.momentum, nesterov=bool(self.nesterovs_momentum)
            )
        optimizer = optimizers.get(name)
        return type(optimizer)(learning_rate=lr)

    def _batch_size(self, n: int) -> int:
        return min(200, n) if self.batch_size == "auto" else min(int(self.batch_size), n)

    def _build(
        self, n_features: int, sizes: tuple[int, ...], seed: int, batch: int, dtype: str
    ) -> Sequential:
        activation = ACTIVATIONS.get(self.activation, self.activation)
        # scikit-learn adds 0.5 * alpha * ||W||^2 / batch_size to each batch's loss
        penalty = regularizers.L2(self.alpha / (2.0 * batch)) if self.alpha else None
        model = Sequential(seed=seed, dtype=dtype)
        model.add(Input(shape=(n_features,)))
        for units in sizes:
            model.add(Dense(int(units), activation=activation, kernel_regularizer=penalty))
        output, loss = self._head()
        model.add(Dense(self._output_units(), activation=output, kernel_regularizer=penalty))
        model.compile(optimizer=self._optimizer(), loss=loss)
        return model

    def _head(self) -> tuple[str, str]:
        raise NotImplementedError

    def _validation_score(self, X, y) -> float:
        raise NotImplementedError

    # -- scikit-learn's names for the network's parts (read from model_) -----------------------
    def _dense_weights(self) -> list[list[np.ndarray]]:
        check_is_fitted(self)
        return [layer.get_weights() for layer in self.model_.layers if isinstance(layer, Dense)]

    @property
    def coefs_(self) -> list[np.ndarray]:
        """The weight matrix of each layer (copies of ``model_``'s kernels), as scikit-learn's."""
        return [weights[0] for weights in self._dense_weights()]

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """The bias vector of each layer (copies of ``model_``'s biases)."""
        return [weights[1] for weights in self._dense_weights()]

    @property
    def n_layers_(self) -> int:
        """Layers counted as scikit-learn does: input, hidden layers and output."""
        return len(self._dense_weights()) + 1

    @property
    def out_activation_(self) -> str:
        """The output layer's activation by scikit-learn's name."""
        check_is_fitted(self)
        return {"softmax": "softmax", "sigmoid": "logistic", "linear": "identity"}[self._head()[0]]

    # -- training ------------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None):
        """Train for up to ``max_iter`` epochs (scikit-learn's stopping rule: see the
        class docstring).

        Args:
            X: array-like or DataFrame, shape ``(n_samples, n_features)``.
            y: labels / indicator matrix (classifier) or values (regressor).
            sample_weight: one weight per sample (multiplies ``class_weight``'s).
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def _fit(self, X, y, sample_weight, incremental: bool, classes=None):
        sizes = self._check_parameters()
        first = not ((incremental or self.warm_start) and hasattr(self, "model_"))
        X, y = self._validate_Xy(X, y, reset=first)
        target = self._encode_y(y, classes=classes, reset=first)
        weights = self._fit_weights(X, y, sample_weight)
        seed, rng = seed_from(self.random_state)
        if first:
            batch = self._batch_size(len(X))
            # float32 data trains a float32 network, anything else float64 (as scikit-learn's)
            dtype = "float32" if X.dtype == np.float32 else "float64"
            self.model_ = self._build(X.shape[1], sizes, seed, batch, dtype)
            self.loss_curve_: list[float] = []
            self.n_iter_ = 0
            self.t_ = 0
            self.best_loss_: float | None = np.inf
            self.validation_scores_: list[float] | None = None
            self.best_validation_score_: float | None = None
        validation = None
        early = self.early_stopping and not incremental
        if early:
            stratify = self._stratify(target)
            parts = train_test_split(
                X,
                target,
                *([] if weights is None else [weights]),
                random_state=rng,
                test_size=self.validation_fraction,
                stratify=stratify,
            )
            X, X_val, target, y_val = parts[:4]
            weights = parts[4] if weights is not None else None
            if len(X_val) < 2:
                raise ValueError(
                    f"validation_fraction={self.validation_fraction} leaves {len(X_val)} "
                    "validation sample; early stopping needs at least 2"
                )
            validation = (X_val, y_val)
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        self._no_improvement_count = 0
        self._converged = False
        self._n_train = len(X)
        epochs = 1 if incremental else int(self.max_iter)
        stopper = _Convergence(self, validation)
        self.model_.fit(
            X,
            target,
            batch_size=self._batch_size(len(X)),
            epochs=epochs,
            verbose=0,
            shuffle=bool(self.shuffle),
            sample_weight=weights,
            callbacks=[stopper],
        )
        if early and stopper.best_weights is not None:
            self.model_.set_weights(stopper.best_weights)
        if not incremental and not self._converged:
            warn_not_converged(type(self).__name__, self.max_iter)
        del self._no_improvement_count, self._converged, self._n_train
        return self

    def _partial_fit(self, X, y, sample_weight, classes=None):
        # as scikit-learn's, partial_fit trains without early stopping
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def _stratify(self, target: np.ndarray) -> np.ndarray | None:
        return None


class MLPClassifier(MultilayerClassifierMixin, _BaseMLP):
    """A multi-layer perceptron classifier with scikit-learn's `MLPClassifier` parameters,
    trained by multilayer (float32, minibatches, Keras' optimizers).

    The network: ``Dense`` layers of ``hidden_layer_sizes`` units with ``activation``
    (scikit-learn's names ``identity``/``logistic``/``tanh``/``relu``, or any multilayer
    activation such as ``gelu``), then a softmax layer with one unit per class (sigmoid units
    for a multi-label indicator ``y``), trained with cross-entropy by ``solver`` (``"adam"``
    with ``beta_1``/``beta_2``/``epsilon``, ``"sgd"`` with ``momentum``/
    ``nesterovs_momentum``, or another multilayer optimizer's name) at
    ``learning_rate_init``. ``alpha`` is scikit-learn's L2 penalty:
    ``0.5 * alpha * ||W||² / batch_size`` is added to each batch's loss.

    Training stops, as scikit-learn's does, after ``max_iter`` epochs or once the training
    loss (with ``early_stopping``: the accuracy on the held-out ``validation_fraction``) has
    not improved by ``tol`` for ``n_iter_no_change`` consecutive epochs; with early stopping
    the best weights are kept.

    ``class_weight``: ``None``, ``"balanced"`` or ``{label: weight}``; it multiplies
    ``sample_weight``. ``random_state`` (an int) gives identical results on every fit.

    Attributes:
        classes_, n_features_in_, feature_names_in_ (DataFrame input), loss_curve_ (the
        training loss of each epoch, including the penalty), n_iter_, t_ (samples seen),
        best_loss_, validation_scores_, best_validation_score_, multilabel_, model_ (the
        fitted `multilayer.Sequential`).
    """

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate_init=0.001,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        class_weight=None,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate_init=learning_rate_init,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
        )
        self.class_weight = class_weight

    def _head(self) -> tuple[str, str]:
        if self.multilabel_:
            return "sigmoid", "binary_crossentropy"
        return "softmax", "sparse_categorical_crossentropy"

    def _stratify(self, target: np.ndarray) -> np.ndarray | None:
        return None if self.multilabel_ else target

    def _validation_score(self, X, y) -> float:
        # accuracy (multi-label: of whole rows), as accuracy_score computes it
        proba = np.asarray(self.model_.predict(X, verbose=0))
        if self.multilabel_:
            return float(np.mean(np.all((proba > 0.5) == (y > 0.5), axis=1)))
        return float(np.mean(np.argmax(proba, axis=1) == y))

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over ``(X, y)``; the first call needs ``classes`` (all the labels),
        except for a multi-label indicator ``y``. Early stopping does not apply."""
        if (
            not hasattr(self, "model_")
            and classes is None
            and type_of_y(y) != "multilabel-indicator"
        ):
            raise ValueError("classes must be passed on the first call to partial_fit")
        if hasattr(self, "model_") and classes is not None:
            check_is_fitted(self)
            if not np.array_equal(np.unique(np.asarray(classes)), self.classes_):
                raise ValueError(
                    f"classes={np.asarray(classes).tolist()} is not the same as on the first "
                    f"call to partial_fit ({self.classes_.tolist()})"
                )
        return self._partial_fit(X, y, sample_weight, classes=classes)


def type_of_y(y) -> str:
    from sklearn.utils.multiclass import type_of_target

    return type_of_target(y, input_name="y")


class MLPRegressor(MultilayerRegressorMixin, _BaseMLP):
    """A multi-layer perceptron regressor with scikit-learn's `MLPRegressor` parameters,
    trained by multilayer: as `MLPClassifier` (the same parameters, except
    ``class_weight``), with a linear output layer of one unit per target column and the mean
    squared error as the loss (scikit-learn's loss_curve_ shows half of it). Early stopping
    scores the held-out data with R².

    Attributes:
        n_outputs_, n_features_in_, feature_names_in_, loss_curve_, n_iter_, t_,
        best_loss_, validation_scores_, best_validation_score_, model_.
    """

    def _head(self) -> tuple[str, str]:
        return "linear", "mean_squared_error"

    def _validation_score(self, X, y) -> float:
        return float(r2_score(y, np.asarray(self.model_.predict(X, verbose=0))))

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``(X, y)`` (building the network on the first call)."""
        return self._partial_fit(X, y, sample_weight)
