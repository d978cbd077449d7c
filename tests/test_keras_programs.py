"""Keras MLP programs, written after the idioms of public Keras programs (keras.io examples
and guides, TensorFlow tutorials, the Deep Learning with Python notebooks), run as users run
them: each file in tests/keras_programs starts with ``import multilayer as keras`` and ends
with assertions about real behaviour, then prints ``RESULT {json}``.

Each runs in a subprocess. Where Keras 3 is installed, the same program runs again with
``import keras`` (KERAS_BACKEND=jax) as an oracle: it must pass its own assertions there
too, and the key outputs are compared. The ``xfail_*`` programs use idioms multilayer does
not support; they must fail with the exact error recorded here (and pass under Keras).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROGRAMS = Path(__file__).parent / "keras_programs"
HAS_KERAS = (
    importlib.util.find_spec("keras") is not None and importlib.util.find_spec("jax") is not None
)


def _swap_to_keras(source: str) -> str:
    lines = []
    for line in source.splitlines():
        if line == "import multilayer as keras":
            line = "import keras"
        elif line.startswith("from multilayer import "):
            line = "from keras import " + line[len("from multilayer import ") :]
        lines.append(line)
    return "\n".join(lines) + "\n"


def run_program(name: str, tmp_path: Path, keras: bool = False) -> subprocess.CompletedProcess:
    source = (PROGRAMS / f"{name}.py").read_text()
    if keras:
        source = _swap_to_keras(source)
        assert "multilayer as keras" not in source
    script = tmp_path / f"{name}{'_keras' if keras else ''}.py"
    script.write_text(source)
    out_dir = tmp_path / ("keras_out" if keras else "out")
    out_dir.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(PROGRAMS),
        "KERAS_BACKEND": "jax",
        "OPENBLAS_NUM_THREADS": "1",
        "JAX_PLATFORMS": "cpu",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    return subprocess.run(
        [sys.executable, str(script), str(out_dir)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def result_of(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, proc.stdout[-2000:]
    return json.loads(lines[0][len("RESULT ") :])


def last_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0, proc.stdout[-2000:]
    return proc.stderr.strip().splitlines()[-1]


def _mnist_present() -> bool:
    root = os.environ.get("MULTILAYER_DATA", "")
    return bool(root) and (Path(root) / "mnist").is_dir()


def _close(a: float, b: float, tol: float) -> bool:
    return abs(a - b) <= tol


# name -> comparison of the multilayer result with the Keras one (same program, same data)
def _cmp_mnist(ml: dict, k: dict) -> None:
    assert ml["params"] == k["params"] and ml["history_keys"] == k["history_keys"]
    assert _close(ml["accuracy"], k["accuracy"], 0.03)


def _cmp_callbacks(ml: dict, k: dict) -> None:
    assert ml == k  # every hook, in order, with the same logs keys; the same learning rates


def _cmp_transfer(ml: dict, k: dict) -> None:
    assert ml == k


def _cmp_save(ml: dict, k: dict) -> None:
    assert ml["layers"] == k["layers"]


def _cmp_imbalanced(ml: dict, k: dict) -> None:
    assert ml["positives"] == k["positives"]
    assert ml["recall"] >= ml["recall_unweighted"] and k["recall"] >= k["recall_unweighted"]


def _cmp_regression(ml: dict, k: dict) -> None:
    assert _close(ml["dnn_mae"], k["dnn_mae"], 0.5)
    assert _close(ml["hp_mae"], k["hp_mae"], 1.0)


def _cmp_functional(ml: dict, k: dict) -> None:
    assert ml["n_weights"] == k["n_weights"]
    assert _close(ml["priority_acc"], k["priority_acc"], 0.05)
    assert _close(ml["department_acc"], k["department_acc"], 0.08)


def _cmp_overfit(ml: dict, k: dict) -> None:
    assert ml["gap_plain"] > 0.2 and k["gap_plain"] > 0.2


def _cmp_book(ml: dict, k: dict) -> None:
    assert _close(ml["test_accuracy"], k["test_accuracy"], 0.03)
    assert _close(ml["final_val_mae"], k["final_val_mae"], 1.5)


PASSING = {
    "mnist_mlp": _cmp_mnist,
    "custom_callbacks": _cmp_callbacks,
    "transfer_learning": _cmp_transfer,
    "save_and_load": _cmp_save,
    "imbalanced_classification": _cmp_imbalanced,
    "regression_normalization": _cmp_regression,
    "functional_multi_io": _cmp_functional,
    "overfit_underfit": _cmp_overfit,
    "dlwp_book": _cmp_book,
}

#: idioms multilayer knowingly does not support: program -> the exact last line of stderr
UNSUPPORTED = {
    "xfail_shared_layer": (
        "ValueError: layer 'dense' (Dense) is already connected in a model graph; multilayer "
        "does not share a layer between several calls: create a new Dense layer"
    ),
    "xfail_model_in_two_graphs": (
        "ValueError: model 'base' is already connected in a model graph; multilayer does not "
        "share a model between several calls"
    ),
    "xfail_eager_layer_call": (
        "TypeError: layer 'normalization' (Normalization) was called on a NumPy array of shape "
        "(1, 3), but layers are called on symbolic tensors to build a model: inputs = "
        "keras.Input(shape=(3,)), then outputs = layer(inputs) and keras.Model(inputs, outputs). "
        "To compute outputs for data, use model.predict(x)."
    ),
    "xfail_sequential_layers_index": (
        "AssertionError: [<InputLayer name='input_layer' output_shape=(784,)>, <Dense "
        "name='dense' output_shape=None>, <Dense name='dense_1' output_shape=None>]"
    ),
    "xfail_loss_as_metric": (
        "TypeError: BinaryCrossentropy.__init__() got an unexpected keyword argument 'name'"
    ),
}


def test_every_program_is_listed():
    files = {p.stem for p in PROGRAMS.glob("*.py") if not p.stem.startswith("_")}
    assert files == set(PASSING) | set(UNSUPPORTED)
    for name in files:
        first = (PROGRAMS / f"{name}.py").read_text().split('"""')[2].strip().splitlines()
        assert "import multilayer as keras" in first, name


def _needs_data(name: str) -> None:
    if name == "mnist_mlp" and not _mnist_present():
        pytest.skip("real MNIST not available (MULTILAYER_DATA)")


@pytest.mark.parametrize("name", sorted(PASSING))
def test_program_runs_on_multilayer(name, tmp_path):
    _needs_data(name)
    result_of(run_program(name, tmp_path))


class ProgramFailed(Exception):
    """The program failed with exactly its recorded error."""


@pytest.mark.xfail(strict=True, raises=ProgramFailed, reason="idiom not supported (UNSUPPORTED)")
@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_unsupported_idiom(name, tmp_path):
    """Each of these is a known gap: the program must fail with exactly the recorded error
    (xfail). Another error fails the test; success makes it XPASS, which strict turns into a
    failure, so the program then moves to PASSING."""
    proc = run_program(name, tmp_path)
    if proc.returncode == 0:
        return
    assert last_error_line(proc) == UNSUPPORTED[name]
    raise ProgramFailed(UNSUPPORTED[name])


@pytest.mark.skipif(not HAS_KERAS, reason="Keras 3 and JAX are not installed")
@pytest.mark.parametrize("name", sorted(PASSING) + sorted(UNSUPPORTED))
def test_program_agrees_with_keras(name, tmp_path):
    _needs_data(name)
    keras_result = result_of(run_program(name, tmp_path, keras=True))
    if name in UNSUPPORTED:
        return  # the idiom is real Keras: the program passes its own assertions there
    PASSING[name](result_of(run_program(name, tmp_path)), keras_result)
