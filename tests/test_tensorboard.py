"""callbacks.TensorBoard: the files it writes are read back with TensorBoard's own readers
(the event accumulator, the data provider behind its UI, the Graphs plugin) and every tag,
step and value is compared with what fit reported."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import multilayer as keras
from multilayer.models.callbacks import CallbackList

pytest.importorskip("tensorboardX")
pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)

# TensorBoard's text plugin imports its vendored bleach, which warns about html5lib
pytestmark = pytest.mark.filterwarnings(
    "ignore:html5lib's sanitizer is deprecated:DeprecationWarning"
)

ALL = {"scalars": 0, "histograms": 0, "tensors": 0}


def data(n=100, seed=1):
    x = np.random.default_rng(seed).normal(size=(n, 4)).astype("float32")
    y = (x.sum(axis=1) > 0).astype("int64")
    return x, y


def small_model(optimizer="adam"):
    model = keras.Sequential(
        [
            keras.Input(shape=(4,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def read(directory):
    events = EventAccumulator(str(directory), size_guidance=ALL)
    events.Reload()
    return events


def scalars(events, tag):
    return [(e.step, e.value) for e in events.Scalars(tag)]


def f32(values):
    return [float(np.float32(v)) for v in values]


def series(steps, values):
    """``[(step, value as float32), ...]``, as the event files hold scalars."""
    assert len(steps) == len(values)
    return list(zip(steps, f32(values), strict=True))


def test_epoch_scalars_equal_history_in_keras_layout(tmp_path):
    x, y = data()
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    model = small_model(keras.optimizers.SGD(learning_rate=schedule))
    board = keras.callbacks.TensorBoard(tmp_path / "logs")
    # 75 training samples in batches of 25: 3 steps an epoch
    history = model.fit(
        x, y, epochs=3, batch_size=25, validation_split=0.25, callbacks=[board], verbose=0
    )

    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["train", "validation"]
    for run in ("train", "validation"):
        files = list((tmp_path / "logs" / run).iterdir())
        assert len(files) == 1 and files[0].name.startswith("events.out.tfevents.")

    train, validation = read(tmp_path / "logs" / "train"), read(tmp_path / "logs" / "validation")
    assert sorted(train.Tags()["scalars"]) == [
        "epoch_accuracy",
        "epoch_learning_rate",
        "epoch_loss",
    ]
    assert sorted(validation.Tags()["scalars"]) == [
        "epoch_accuracy",
        "epoch_loss",
        "evaluation_accuracy_vs_iterations",
        "evaluation_loss_vs_iterations",
    ]
    steps = [0, 1, 2]
    h = history.history
    assert scalars(train, "epoch_loss") == series(steps, h["loss"])
    assert scalars(train, "epoch_accuracy") == series(steps, h["accuracy"])
    assert scalars(validation, "epoch_loss") == series(steps, h["val_loss"])
    assert scalars(validation, "epoch_accuracy") == series(steps, h["val_accuracy"])
    # the learning rate the next step uses: 0.1 * 0.5 ** (3 steps per epoch done)
    assert scalars(train, "epoch_learning_rate") == series(
        steps, [0.1 * 0.5 ** (3 * (e + 1)) for e in steps]
    )
    # Keras 3's evaluation_*_vs_iterations: validation results at step = optimizer iterations
    assert scalars(validation, "evaluation_loss_vs_iterations") == series([3, 6, 9], h["val_loss"])


def test_tensorboards_data_provider_lists_the_runs_and_tags(tmp_path):
    """What TensorBoard's web UI reads (the multiplexer's data provider)."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer

    x, y = data()
    model = small_model()
    history = model.fit(
        x,
        y,
        epochs=2,
        validation_split=0.2,
        callbacks=[keras.callbacks.TensorBoard(tmp_path, histogram_freq=1)],
        verbose=0,
    )
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(tmp_path))
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, str(tmp_path))
    ctx = context.RequestContext()
    listed = provider.list_scalars(ctx, experiment_id="", plugin_name="scalars")
    assert {run: sorted(tags) for run, tags in listed.items()} == {
        "train": ["epoch_accuracy", "epoch_learning_rate", "epoch_loss"],
        "validation": [
            "epoch_accuracy",
            "epoch_loss",
            "evaluation_accuracy_vs_iterations",
            "evaluation_loss_vs_iterations",
        ],
    }
    read_back = provider.read_scalars(
        ctx, experiment_id="", plugin_name="scalars", downsample=100, run_tag_filter=None
    )
    assert [d.value for d in read_back["validation"]["epoch_loss"]] == f32(
        history.history["val_loss"]
    )
    histograms = provider.list_tensors(ctx, experiment_id="", plugin_name="histograms")
    assert sorted(histograms["train"]) == sorted(f"{v.path}/histogram" for v in model.weights)
    assert len(model.weights) == 4
    graphs = provider.list_blob_sequences(ctx, experiment_id="", plugin_name="graph_keras_model")
    assert list(graphs["train"]) == ["keras"]
    texts = provider.list_tensors(ctx, experiment_id="", plugin_name="text")
    assert list(texts["train"]) == ["model_summary"]


def test_batch_scalars_every_n_batches(tmp_path):
    x, y = data()
    seen = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: seen.append(dict(logs))
    )
    model = small_model()
    board = keras.callbacks.TensorBoard(tmp_path, update_freq=2)
    # 100 samples in batches of 20: 5 steps an epoch, 10 in all
    model.fit(x, y, epochs=2, batch_size=20, callbacks=[record, board], verbose=0)
    train = read(tmp_path / "train")
    assert sorted(train.Tags()["scalars"]) == [
        "batch_accuracy",
        "batch_loss",
        "epoch_accuracy",
        "epoch_learning_rate",
        "epoch_loss",
    ]
    # step = batches trained so far in this fit; the value = the epoch's running mean then
    expected = [(step, float(np.float32(seen[step - 1]["loss"]))) for step in (2, 4, 6, 8, 10)]
    assert scalars(train, "batch_loss") == expected
    assert [s for s, _ in scalars(train, "batch_accuracy")] == [2, 4, 6, 8, 10]


def test_update_freq_batch_writes_every_batch_and_epoch_needs_no_batch_hooks(tmp_path):
    x, y = data()
    model = small_model()
    model.fit(
        x,
        y,
        epochs=1,
        batch_size=25,
        callbacks=[keras.callbacks.TensorBoard(tmp_path, update_freq="batch")],
        verbose=0,
    )
    assert [s for s, _ in scalars(read(tmp_path / "train"), "batch_loss")] == [1, 2, 3, 4]
    # update_freq="epoch": fit computes no per-batch logs for it
    by_epoch = keras.callbacks.TensorBoard(tmp_path / "epoch")
    assert not CallbackList([by_epoch], model).wants_train_batches
    per_batch = keras.callbacks.TensorBoard(tmp_path / "batch", update_freq="batch")
    assert CallbackList([per_batch], model).wants_train_batches


def test_weight_histograms_every_histogram_freq_epochs(tmp_path):
    x, y = data()
    model = small_model()
    model.fit(
        x,
        y,
        epochs=3,
        callbacks=[keras.callbacks.TensorBoard(tmp_path, histogram_freq=2)],
        verbose=0,
    )
    train = read(tmp_path / "train")
    tags = sorted(train.Tags()["histograms"])
    assert tags == [f"{v.path}/histogram" for v in sorted(model.weights, key=lambda v: v.path)]
    for variable in model.weights:
        events = train.Histograms(f"{variable.path}/histogram")
        assert [e.step for e in events] == [0, 2]
        last = events[-1].histogram_value  # epoch 2 is the last one: the final weights
        weights = variable.numpy().astype(np.float64)
        assert last.num == weights.size
        assert last.min == weights.min() and last.max == weights.max()
        assert last.sum == pytest.approx(weights.sum(), rel=1e-12, abs=1e-12)
        assert sum(last.bucket) == weights.size


def conceptual_graph(log_dir):
    """The graph TensorBoard's Graphs tab draws for the run "train": node -> its inputs."""
    from google.protobuf import text_format
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.compat.proto import graph_pb2
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.graph import graphs_plugin

    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(log_dir))
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, str(log_dir))
    plugin = graphs_plugin.GraphsPlugin(
        base_plugin.TBContext(logdir=str(log_dir), multiplexer=multiplexer, data_provider=provider)
    )
    body, _ = plugin.graph_impl(context.RequestContext(), "train", "keras", True, experiment="")
    graph = text_format.Parse(body, graph_pb2.GraphDef())
    return {node.name: list(node.input) for node in graph.node}


def test_graph_is_the_conceptual_graph_tensorboard_draws_and_the_summary_is_text(tmp_path):
    from multilayer.models.summary import summary_text

    inputs = keras.Input(shape=(4,))
    left = keras.layers.Dense(3, name="left")(inputs)
    # BatchNormalization has no Keras file form here: the graph does not need one
    right = keras.layers.BatchNormalization(name="norm")(
        keras.layers.Dense(3, name="right")(inputs)
    )
    outputs = keras.layers.Dense(2, activation="softmax", name="out")(
        keras.layers.Concatenate(name="both")([left, right])
    )
    model = keras.Model(inputs, outputs, name="branches")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = data()
    model.fit(x, y, epochs=1, callbacks=[keras.callbacks.TensorBoard(tmp_path)], verbose=0)

    train = read(tmp_path / "train")
    text = train.Tensors("model_summary")[0]
    assert text.step == 0
    assert text.tensor_proto.string_val[0].decode() == "\n".join(
        "    " + line for line in summary_text(model).splitlines()
    )
    assert train.SummaryMetadata("model_summary").plugin_data.plugin_name == "text"
    assert train.SummaryMetadata("keras").plugin_data.plugin_name == "graph_keras_model"

    # TensorBoard's Graphs plugin turns the "keras" tag into the graph its Graphs tab draws
    input_name = model.layers[0].name
    assert conceptual_graph(tmp_path) == {
        f"branches/{input_name}": [],
        "branches/left": [f"branches/{input_name}"],
        "branches/right": [f"branches/{input_name}"],
        "branches/norm": ["branches/right"],
        "branches/both": ["branches/left", "branches/norm"],
        "branches/out": ["branches/both"],
    }


def test_a_model_built_by_its_first_batch_gets_its_graph_after_the_first_epoch(tmp_path):
    model = keras.Sequential(
        [keras.layers.Dense(8, name="first"), keras.layers.Dense(2, name="second")], name="lazy"
    )
    model.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    x, y = data()

    def batches():
        for start in range(0, 100, 25):
            yield x[start : start + 25], y[start : start + 25]

    assert not model.built
    model.fit(batches(), epochs=1, callbacks=[keras.callbacks.TensorBoard(tmp_path)], verbose=0)
    graph = conceptual_graph(tmp_path)
    [input_node] = [name for name, inputs in graph.items() if not inputs]
    assert graph == {input_node: [], "lazy/first": [input_node], "lazy/second": ["lazy/first"]}
    assert read(tmp_path / "train").Tensors("model_summary")[0].step == 0


def test_write_graph_false_writes_no_model(tmp_path):
    x, y = data()
    model = small_model()
    board = keras.callbacks.TensorBoard(tmp_path, write_graph=False)
    model.fit(x, y, epochs=1, callbacks=[board], verbose=0)
    assert read(tmp_path / "train").Tags()["tensors"] == []


def test_steps_per_second_is_written_when_asked(tmp_path):
    x, y = data()
    model = small_model()
    board = keras.callbacks.TensorBoard(tmp_path, write_steps_per_second=True, update_freq=2)
    model.fit(x, y, epochs=2, batch_size=25, callbacks=[board], verbose=0)
    train = read(tmp_path / "train")
    epoch_rates = scalars(train, "epoch_steps_per_second")
    assert [s for s, _ in epoch_rates] == [0, 1] and all(v > 0 for _, v in epoch_rates)
    assert [s for s, _ in scalars(train, "batch_steps_per_second")] == [2, 4, 6, 8]


def test_a_second_fit_writes_new_event_files(tmp_path):
    x, y = data()
    model = small_model()
    board = keras.callbacks.TensorBoard(tmp_path)
    model.fit(x, y, epochs=1, callbacks=[board], verbose=0)
    model.fit(x, y, epochs=2, initial_epoch=1, callbacks=[board], verbose=0)
    train = read(tmp_path / "train")  # the accumulator reads every event file of the run
    assert [s for s, _ in scalars(train, "epoch_loss")] == [0, 1]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            {"update_freq": 0},
            "TensorBoard: update_freq must be 'epoch', 'batch' or a positive number of "
            "batches, got 0",
        ),
        (
            {"update_freq": "step"},
            "TensorBoard: update_freq must be 'epoch', 'batch' or a positive number of "
            "batches, got 'step'",
        ),
        ({"histogram_freq": -1}, "TensorBoard: histogram_freq must be >= 0, got -1"),
        (
            {"histogram_freq": 1.5},
            "TensorBoard: histogram_freq must be a whole number of epochs, got 1.5",
        ),
        (
            {"write_images": True, "embeddings_freq": 1},
            "TensorBoard: write_images, embeddings_freq need TensorFlow's profiler, image or "
            "embedding projector support, which multilayer does not have; leave them at their "
            "defaults",
        ),
        (
            {"profile_batch": (10, 20)},
            "TensorBoard: profile_batch need TensorFlow's profiler, image or embedding "
            "projector support, which multilayer does not have; leave them at their defaults",
        ),
    ],
)
def test_bad_arguments(tmp_path, arguments, message):
    with pytest.raises(ValueError) as error:
        keras.callbacks.TensorBoard(tmp_path, **arguments)
    assert str(error.value) == message


def test_without_tensorboardx_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError) as error:
        keras.callbacks.TensorBoard(tmp_path)
    assert str(error.value) == (
        "callbacks.TensorBoard writes event files with tensorboardX: "
        "pip install 'multilayer[tensorboard]'"
    )


def test_importing_multilayer_imports_neither_writer_nor_mlflow():
    """Nor the two callbacks' modules: keras.callbacks.TensorBoard imports them on first use."""
    names = (
        "tensorboardX",
        "tensorboard",
        "mlflow",
        "multilayer.models.tensorboard",
        "multilayer.models.mlflow_logging",
    )
    code = (
        "import sys, multilayer, multilayer.callbacks; "
        f"print(sorted(m for m in {names!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_the_callbacks_are_in_keras_callbacks():
    from multilayer.models.mlflow_logging import MlflowCallback
    from multilayer.models.tensorboard import TensorBoard

    assert keras.callbacks.TensorBoard is TensorBoard
    assert keras.callbacks.MlflowCallback is MlflowCallback
    assert {"TensorBoard", "MlflowCallback", "EarlyStopping"} <= set(dir(keras.callbacks))
    with pytest.raises(AttributeError, match="has no attribute 'RemoteMonitor'"):
        keras.callbacks.RemoteMonitor  # noqa: B018
