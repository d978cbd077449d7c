"""scikit-learn estimators on multilayer networks (``pip install 'multilayer[sklearn]'``).

* `MLPClassifier` / `MLPRegressor`: scikit-learn's MLP parameters (``hidden_layer_sizes``,
  ``alpha``, ``early_stopping``, ...) on a multilayer network;
* `ModelClassifier` / `ModelRegressor`: any function that builds a multilayer model, with
  routed parameters (``model__units=64``, ``fit__callbacks=[...]``), as scikeras does for Keras.

They follow scikit-learn's conventions, pass its ``check_estimator`` checks (the few known
exceptions are listed in the tests with their reasons), and work in pipelines, grid searches
and with ``clone``. Pickling one (what joblib does in ``GridSearchCV(n_jobs=2)``) stores the
network as the bytes of a ``.safetensors`` model file and the other learned attributes as
JSON; see docs/interop.md.
"""

try:
    import sklearn  # noqa: F401
except ImportError:  # pragma: no cover - the extra is installed in CI
    raise ImportError(
        "multilayer.sklearn needs scikit-learn: pip install 'multilayer[sklearn]'"
    ) from None

from multilayer.sklearn._mlp import MLPClassifier, MLPRegressor
from multilayer.sklearn._wrappers import ModelClassifier, ModelRegressor

__all__ = ["MLPClassifier", "MLPRegressor", "ModelClassifier", "ModelRegressor"]
