"""Shared test setup: MULTILAYER_DATA at the real MNIST copy, a throwaway user cache.

A relative MULTILAYER_DATA (the README's ``export MULTILAYER_DATA=../shared/datasets``) is
made absolute here, once, against the directory pytest was started in: tests and the
subprocesses they start run in temporary directories, where the relative path would name
another place.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from multilayer.data.paths import DATA_ENV_VAR, resolve_setting

#: /work/shared/datasets, next to the repository checkout.
SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"

if os.environ.get(DATA_ENV_VAR, "").strip():
    os.environ[DATA_ENV_VAR] = str(resolve_setting(os.environ[DATA_ENV_VAR].strip()))

# The suite never writes into the user's real cache (~/.cache/multilayer): verification
# records and downloads go to a throwaway cache, one per test process, removed at exit.
# Subprocesses inherit it through the environment.
_TEST_CACHE = tempfile.mkdtemp(prefix="multilayer-test-cache-")
os.environ["XDG_CACHE_HOME"] = _TEST_CACHE
atexit.register(shutil.rmtree, _TEST_CACHE, ignore_errors=True)


@pytest.fixture(autouse=True, scope="session")
def _multilayer_data():
    """Set MULTILAYER_DATA for the whole session unless the caller already set it."""
    if "MULTILAYER_DATA" in os.environ:
        yield
        return
    os.environ["MULTILAYER_DATA"] = str(SHARED_DATASETS)
    yield
    os.environ.pop("MULTILAYER_DATA", None)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, _multilayer_data):
    """A run directory with a small 784-128-10 model trained 1 epoch on the real MNIST.

    Written with the `multilayer.runs.RunDir` API as ``mlp train`` writes it (model,
    config.json, history, metrics.json); about 95% test accuracy, trained in a few seconds.
    Shared by the report, app, browser and schemathesis tests.
    """
    from multilayer.datasets import mnist
    from multilayer.evaluation import classification_report
    from multilayer.inference import predict_images
    from multilayer.recipes import Recipe, build_model
    from multilayer.runs import RunDir

    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    # Every value pinned here, so tuning the library's recipes never changes this model.
    recipe = Recipe(name="test", hidden=(128,), epochs=1, batch_size=128, learning_rate=1e-3)
    model = build_model(recipe, (28, 28), 10, steps_per_epoch=len(x_train) // 128, seed=0)
    history = model.fit(x_train, y_train, batch_size=128, epochs=1, validation_split=0.1, verbose=0)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    report = classification_report(y_test, predict_images(model, x_test, pixel_max=255.0))

    run = RunDir(tmp_path_factory.mktemp("runs") / "mnist-128").create()
    model.save(run.model_path)
    run.write_config({"recipe": recipe.to_dict(), "dataset": "mnist", "seed": 0})
    run.write_history(history.epoch, history.history)
    run.write_metrics({"test_loss": loss, "test_accuracy": accuracy, **report})
    return run.path
