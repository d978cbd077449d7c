"""keras.utils long tail: pad_sequences, split_dataset, get_file, plot_model, and the Keras 2
spellings old programs import."""

from __future__ import annotations

import hashlib
import http.server
import io
import re
import socket
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

import multilayer as keras
from multilayer.errors import DataError, DatasetNotFoundError
from multilayer.layers import Dense, Dropout, Input

# -- pad_sequences ---------------------------------------------------------------------------
SEQUENCES = [[1], [2, 3], [4, 5, 6]]


def test_pad_sequences_defaults_pad_and_truncate_at_the_start():
    padded = keras.utils.pad_sequences(SEQUENCES)
    assert padded.dtype == np.int32
    np.testing.assert_array_equal(padded, [[0, 0, 1], [0, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(
        keras.utils.pad_sequences(SEQUENCES, maxlen=2), [[0, 1], [2, 3], [5, 6]]
    )


def test_pad_sequences_options():
    np.testing.assert_array_equal(
        keras.utils.pad_sequences(SEQUENCES, padding="post"), [[1, 0, 0], [2, 3, 0], [4, 5, 6]]
    )
    np.testing.assert_array_equal(
        keras.utils.pad_sequences(SEQUENCES, maxlen=2, truncating="post"), [[0, 1], [2, 3], [4, 5]]
    )
    np.testing.assert_array_equal(
        keras.utils.pad_sequences(SEQUENCES, value=-1), [[-1, -1, 1], [-1, 2, 3], [4, 5, 6]]
    )
    floats = keras.utils.pad_sequences([[0.5], []], maxlen=2, dtype="float32", value=0.25)
    np.testing.assert_array_equal(floats, np.array([[0.25, 0.5], [0.25, 0.25]], np.float32))
    assert keras.utils.pad_sequences(SEQUENCES, maxlen=0).shape == (3, 0)
    vectors = keras.utils.pad_sequences([np.ones((1, 2)), np.ones((2, 2))], dtype="float32")
    assert vectors.shape == (2, 2, 2) and vectors[0, 0].tolist() == [0, 0]
    words = keras.utils.pad_sequences([["a"], ["b", "c"]], dtype=object, value="<pad>")
    assert words.tolist() == [["<pad>", "a"], ["b", "c"]]


def test_pad_sequences_is_also_keras2_preprocessing_sequence():
    from multilayer.preprocessing.sequence import pad_sequences

    assert pad_sequences is keras.utils.pad_sequences


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"padding": "middle"}, 'Padding type "middle" not understood: expected "pre" or "post"'),
        ({"truncating": "x"}, 'Truncating type "x" not understood: expected "pre" or "post"'),
        ({"maxlen": -1}, "pad_sequences: maxlen must be a non-negative integer, got -1"),
        ({"value": "x"}, "`dtype` int32 is not compatible with `value`'s type"),
    ],
)
def test_pad_sequences_errors(kwargs, message):
    with pytest.raises(ValueError) as error:
        keras.utils.pad_sequences(SEQUENCES, **kwargs)
    assert str(error.value).startswith(message)


def test_pad_sequences_refuses_what_is_not_a_list_of_sequences():
    with pytest.raises(ValueError, match=r"found a int at position 1: 5"):
        keras.utils.pad_sequences([[1], 5])
    with pytest.raises(ValueError, match="no sequences and no maxlen"):
        keras.utils.pad_sequences([])
    with pytest.raises(
        ValueError,
        match=r"Shape of sample \(3,\) of sequence at position 1 is different from expected shape \(2,\)",
    ):
        keras.utils.pad_sequences([np.ones((1, 2)), np.ones((1, 3))])


# -- split_dataset ---------------------------------------------------------------------------
def test_split_dataset_of_one_array():
    data = np.arange(1000 * 4).reshape(1000, 4)
    left, right = keras.utils.split_dataset(data, left_size=0.8)
    assert len(left) == 800 and len(right) == 200
    np.testing.assert_array_equal(np.concatenate([left, right]), data)


def test_split_dataset_of_features_and_labels_keeps_pairs_together():
    x, y = np.arange(50, dtype=np.float32).reshape(10, 5), np.arange(10)
    (x_train, y_train), (x_test, y_test) = keras.utils.split_dataset(
        (x, y), right_size=3, shuffle=True, seed=1
    )
    assert x_train.shape == (7, 5) and x_test.shape == (3, 5)
    for features, label in zip(
        np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test]), strict=True
    ):
        assert features[0] == 5 * label
    assert sorted(np.concatenate([y_train, y_test])) == list(range(10))
    assert not np.array_equal(np.concatenate([y_train, y_test]), np.arange(10))
    again = keras.utils.split_dataset((x, y), right_size=3, shuffle=True, seed=1)
    np.testing.assert_array_equal(again[1][1], y_test)


def test_split_dataset_sizes_and_structures():
    data = np.arange(10)
    left, right = keras.utils.split_dataset(data, left_size=2, right_size=0.3)
    assert left.tolist() == [0, 1] and right.tolist() == [7, 8, 9]  # the middle is left out
    left, right = keras.utils.split_dataset({"a": data, "b": -data}, left_size=0.25)
    assert left["a"].tolist() == [0, 1] and right["b"].tolist()[0] == -2  # round(2.5) == 2
    left, right = keras.utils.split_dataset([data, data], right_size=1)
    assert isinstance(left, list) and right[0].tolist() == [9]


@pytest.mark.parametrize(
    ("dataset", "kwargs", "error", "message"),
    [
        (
            np.arange(10),
            {},
            ValueError,
            "At least one of the `left_size` or `right_size` must be specified",
        ),
        (
            np.arange(10),
            {"left_size": 1.5},
            ValueError,
            "`left_size` should be either a positive integer smaller than 10",
        ),
        (
            np.arange(10),
            {"left_size": 10},
            ValueError,
            "`left_size` should be either a positive integer smaller than 10",
        ),
        (np.arange(10), {"left_size": "half"}, TypeError, "Invalid `left_size` type"),
        (
            np.arange(10),
            {"left_size": 6, "right_size": 5},
            ValueError,
            "The sum of `left_size` and `right_size` (6 + 5 samples) is more than the 10 samples",
        ),
        (np.arange(3), {"left_size": 0.1}, ValueError, "the left part would be empty"),
        (
            (np.arange(3), np.arange(4)),
            {"left_size": 1},
            ValueError,
            "split_dataset: the arrays differ in length",
        ),
        (
            [[1, 2], [3, 4]],
            {"left_size": 1},
            TypeError,
            "split_dataset: expected NumPy arrays, got list at index 0",
        ),
        ("abc", {"left_size": 1}, TypeError, "split_dataset: `dataset` must be a NumPy array"),
    ],
)
def test_split_dataset_errors(dataset, kwargs, error, message):
    with pytest.raises(error) as raised:
        keras.utils.split_dataset(dataset, **kwargs)
    assert message in str(raised.value)


# -- get_file --------------------------------------------------------------------------------
@pytest.fixture
def served(tmp_path):
    """A local HTTP server with one file, data.csv, and its SHA-256."""
    root = tmp_path / "www"
    root.mkdir()
    content = b"x,y\n1,2\n" * 100
    (root / "data.csv").write_bytes(content)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root, hashlib.sha256(content).hexdigest()
    server.shutdown()
    server.server_close()


def test_get_file_downloads_once_into_the_cache(served, tmp_path):
    base, root, sha256 = served
    path = keras.utils.get_file(
        origin=f"{base}/data.csv", cache_dir=tmp_path / "cache", file_hash=sha256
    )
    assert path == str(tmp_path / "cache" / "datasets" / "data.csv")
    assert Path(path).read_bytes() == (root / "data.csv").read_bytes()
    (root / "data.csv").unlink()  # a second call must not need the server
    again = keras.utils.get_file("data.csv", f"{base}/data.csv", cache_dir=tmp_path / "cache")
    assert again == path
    assert [p.name for p in Path(path).parent.iterdir()] == ["data.csv"]  # no leftovers


def test_get_file_refreshes_a_cached_file_whose_hash_is_wrong(served, tmp_path, capsys):
    base, root, sha256 = served
    target = tmp_path / "c" / "sub" / "data.csv"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"stale")
    path = keras.utils.get_file(
        "data.csv",
        f"{base}/data.csv",
        file_hash=sha256,
        cache_dir=tmp_path / "c",
        cache_subdir="sub",
    )
    assert Path(path).read_bytes() == (root / "data.csv").read_bytes()
    assert "does not match" in capsys.readouterr().out


def test_get_file_discards_a_download_with_the_wrong_hash(served, tmp_path):
    base, _, _ = served
    with pytest.raises(
        DataError,
        match=r"incomplete or corrupted download of .*data.csv: its md5 hash is [0-9a-f]{32}, expected 0123",
    ):
        keras.utils.get_file(origin=f"{base}/data.csv", md5_hash="0123", cache_dir=tmp_path)
    assert list((tmp_path / "datasets").iterdir()) == []


def test_get_file_http_error(served, tmp_path):
    base, _, _ = served
    with pytest.raises(DatasetNotFoundError, match=r"HTTP error 404 \(File not found\)"):
        keras.utils.get_file(origin=f"{base}/missing.npz", cache_dir=tmp_path)
    assert list((tmp_path / "datasets").iterdir()) == []


def test_get_file_offline_error_says_where_to_put_the_file(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    origin = f"http://127.0.0.1:{port}/mnist.npz"
    with pytest.raises(DatasetNotFoundError) as error:
        keras.utils.get_file(origin=origin, cache_dir=tmp_path, file_hash="a" * 64)
    message = str(error.value)
    assert message.startswith(f"get_file: cannot download {origin}: ")
    assert message.endswith(
        f"If this machine is offline, fetch the file elsewhere and put it at "
        f"{tmp_path / 'datasets' / 'mnist.npz'}; get_file then uses it (after checking file_hash)."
    )
    assert isinstance(error.value, FileNotFoundError)


def test_get_file_uses_keras_home(served, tmp_path, monkeypatch):
    base, _, _ = served
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    assert keras.utils.get_file(origin=f"{base}/data.csv") == str(
        tmp_path / "home" / "datasets" / "data.csv"
    )


def test_get_file_argument_errors(tmp_path):
    with pytest.raises(ValueError, match='Please specify the "origin" argument'):
        keras.utils.get_file("x.csv")
    with pytest.raises(ValueError, match="Paths are not accepted as the `fname` argument"):
        keras.utils.get_file("../x.csv", "http://example.invalid/x.csv", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="Can't parse the file name from the origin provided"):
        keras.utils.get_file(origin="http://example.invalid/", cache_dir=tmp_path)
    with pytest.raises(
        ValueError, match="hash_algorithm must be 'auto', 'sha256' or 'md5', got 'sha1'"
    ):
        keras.utils.get_file(
            origin="http://example.invalid/a", hash_algorithm="sha1", cache_dir=tmp_path
        )


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_get_file_extracts_archives(served, tmp_path):
    base, root, _ = served
    (root / "flowers.tgz").write_bytes(
        _tar_gz({"flowers/a.txt": b"rose", "flowers/b.txt": b"tulip"})
    )
    folder = keras.utils.get_file(origin=f"{base}/flowers.tgz", extract=True, cache_dir=tmp_path)
    assert folder == str(tmp_path / "datasets" / "flowers.tgz")
    assert (Path(folder) / "flowers" / "a.txt").read_bytes() == b"rose"
    with zipfile.ZipFile(root / "z.zip", "w") as z:
        z.writestr("inner/c.txt", "lily")
    folder = keras.utils.get_file("z.zip", f"{base}/z.zip", extract=True, cache_dir=tmp_path)
    assert folder == str(tmp_path / "datasets" / "z_extracted")
    assert (Path(folder) / "inner" / "c.txt").read_text() == "lily"


@pytest.mark.parametrize("member", ["../evil.txt", "/tmp/evil.txt", "a/../../evil.txt"])
def test_get_file_refuses_archives_escaping_their_folder(served, tmp_path, member):
    base, root, _ = served
    with zipfile.ZipFile(root / "bad.zip", "w") as z:
        z.writestr(member, "gotcha")
    with pytest.raises(DataError, match=r"refusing .*bad.zip_archive: member .* escapes"):
        keras.utils.get_file(origin=f"{base}/bad.zip", extract=True, cache_dir=tmp_path / "c")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "c" / "evil.txt").exists()
    assert not (tmp_path / "c" / "datasets" / "bad.zip").exists()


def test_get_file_refuses_archives_declaring_too_much(served, tmp_path, monkeypatch):
    base, root, _ = served
    from multilayer.utils import file_utils

    monkeypatch.setattr(file_utils, "MAX_EXTRACTED_BYTES", 1000)
    (root / "big.tgz").write_bytes(_tar_gz({"zeros.bin": bytes(5000)}))
    with pytest.raises(
        DataError, match=r"its members declare 5000 bytes, more than the limit of 1000"
    ):
        keras.utils.get_file(origin=f"{base}/big.tgz", extract=True, cache_dir=tmp_path)


# -- plot_model ------------------------------------------------------------------------------
def _mlp():
    keras.backend.clear_session()
    return keras.Sequential(
        [
            Input(shape=(784,)),
            Dense(64, activation="relu"),
            Dropout(0.2),
            Dense(10, activation="softmax"),
        ]
    )


def test_plot_model_png(tmp_path):
    from PIL import Image

    keras.utils.plot_model(_mlp(), to_file=tmp_path / "model.png", show_shapes=True, dpi=100)
    data = (tmp_path / "model.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(tmp_path / "model.png") as image:
        width, height = image.size
    assert height > width  # three boxes stacked top to bottom
    keras.utils.plot_model(_mlp(), to_file=tmp_path / "wide.png", rankdir="LR", dpi=100)
    with Image.open(tmp_path / "wide.png") as image:
        assert image.size[0] > image.size[1]


def test_plot_model_svg_shows_what_was_asked(tmp_path):
    model = _mlp()
    keras.utils.plot_model(model, to_file=tmp_path / "plain.svg")
    plain = (tmp_path / "plain.svg").read_text()
    assert plain.count(">Dense<") == 2 and ">Dropout<" in plain and "dense_1 (Dense)" not in plain
    assert "InputLayer" not in plain  # Keras 3 draws a Sequential model without its Input
    keras.utils.plot_model(
        model,
        to_file=tmp_path / "full.svg",
        show_shapes=True,
        show_layer_names=True,
        show_layer_activations=True,
        show_dtype=True,
        show_trainable=True,
    )
    full = (tmp_path / "full.svg").read_text()
    for text in (
        "dense (Dense)",
        "dense_1 (Dense)",
        "dropout (Dropout)",
        "Activation: relu",
        "Activation: softmax",
        "Input shape: (None, 784)",
        "Output shape: (None, 64)",
        "Output shape: (None, 10)",
        "Output dtype: float32",
        "Trainable",
    ):
        assert text in full, text
    assert full.count("Trainable") == 2  # Dropout has no weights: no trainable badge


def test_plot_model_writes_png_when_there_is_no_extension(tmp_path):
    keras.utils.plot_model(_mlp(), to_file=tmp_path / "model", dpi=50)
    assert (tmp_path / "model").read_bytes()[:4] == b"\x89PNG"


def test_plot_model_errors(tmp_path):
    with pytest.raises(ValueError) as error:
        keras.utils.plot_model(_mlp(), to_file=tmp_path / "model.gif")
    assert str(error.value) == (
        f"plot_model: cannot write {str(tmp_path / 'model.gif')!r}: the format is chosen by "
        "the extension of to_file, one of .png, .svg, .pdf"
    )
    unbuilt = keras.Sequential([Dense(3)])
    with pytest.raises(
        ValueError, match=r"This model has not yet been built. Build the model first"
    ):
        keras.utils.plot_model(unbuilt, to_file=tmp_path / "m.png")
    with pytest.raises(ValueError, match=r"rankdir must be 'TB' or 'LR', got 'BT'"):
        keras.utils.plot_model(_mlp(), to_file=tmp_path / "m.png", rankdir="BT")
    with pytest.raises(ValueError, match=r"unrecognized keyword arguments: \['colour'\]"):
        keras.utils.plot_model(_mlp(), to_file=tmp_path / "m.png", colour="red")
    assert not list(tmp_path.iterdir())


# -- Keras 2 spellings -----------------------------------------------------------------------
def test_keras2_np_utils_and_layers_core():
    from multilayer.layers.core import Activation, Flatten
    from multilayer.layers.core import Dense as CoreDense
    from multilayer.layers.core import Dropout as CoreDropout

    from multilayer.utils import np_utils
    from multilayer.utils.np_utils import to_categorical

    assert CoreDense is Dense and CoreDropout is Dropout
    assert Activation is keras.layers.Activation and Flatten is keras.layers.Flatten
    assert keras.layers.core.Dense is Dense
    assert np_utils.to_categorical is keras.utils.to_categorical is to_categorical
    np.testing.assert_array_equal(to_categorical([0, 2], 3), [[1, 0, 0], [0, 0, 1]])


def test_keras2_legacy_optimizer_with_lr_and_decay_trains_saves_and_loads(tmp_path):
    from multilayer.optimizers.legacy import SGD

    optimizer = SGD(lr=0.1, decay=0.01, momentum=0.9, nesterov=True)
    assert isinstance(optimizer, keras.optimizers.SGD)
    # Keras 2's time-based decay: lr / (1 + decay * iterations)
    assert [optimizer.learning_rate_at(t) for t in (0, 1, 100)] == pytest.approx(
        [0.1, 0.1 / 1.01, 0.05]
    )
    model = keras.Sequential([Input(shape=(3,)), Dense(2, activation="softmax")])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    x, y = keras.random.normal((32, 3), seed=0), np.arange(32) % 2
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert optimizer.iterations == 8
    assert optimizer.learning_rate == pytest.approx(0.1 / 1.08)
    model.save(tmp_path / "m.safetensors")
    loaded = keras.models.load_model(tmp_path / "m.safetensors")
    assert loaded.optimizer.learning_rate_at(100) == pytest.approx(0.05)
    np.testing.assert_allclose(loaded.predict(x), model.predict(x), rtol=1e-6)


def test_keras2_legacy_optimizer_arguments():
    from multilayer.optimizers.legacy import Adam, RMSprop

    assert Adam(lr=0.01).learning_rate == 0.01
    assert Adam().learning_rate == 0.001 and RMSprop(0.005).learning_rate == 0.005
    assert keras.optimizers.legacy.Adagrad is not None
    with pytest.raises(ValueError, match="Adam: give learning_rate or its old name lr, not both"):
        Adam(0.1, lr=0.2)
    with pytest.raises(ValueError, match=r"RMSprop: decay must be a number >= 0, got -1"):
        RMSprop(decay=-1)


def test_inverse_time_decay_against_its_equation():
    from multilayer.optimizers.schedules import InverseTimeDecay

    smooth = InverseTimeDecay(0.5, decay_steps=10, decay_rate=2.0)
    assert [smooth(t) for t in (0, 5, 10, 25)] == pytest.approx([0.5, 0.25, 0.5 / 3, 0.5 / 6])
    stairs = InverseTimeDecay(0.5, decay_steps=10, decay_rate=2.0, staircase=True)
    assert [stairs(t) for t in (0, 9, 10, 25)] == pytest.approx([0.5, 0.5, 0.5 / 3, 0.5 / 5])
    with pytest.raises(
        ValueError, match="InverseTimeDecay: decay_steps must be a positive integer, got 0"
    ):
        InverseTimeDecay(0.1, 0, 1.0)


def test_split_dataset_shuffle_follows_set_random_seed():
    data = np.arange(20)
    keras.utils.set_random_seed(3)
    first = keras.utils.split_dataset(data, left_size=0.5, shuffle=True)
    keras.utils.set_random_seed(3)
    second = keras.utils.split_dataset(data, left_size=0.5, shuffle=True)
    np.testing.assert_array_equal(first[0], second[0])
    assert not np.array_equal(first[0], np.arange(10))


def test_plot_model_of_a_functional_graph(tmp_path):
    from PIL import Image

    from multilayer import layers, ops

    keras.backend.clear_session()
    wide, deep = keras.Input(shape=(3,), name="wide"), keras.Input(shape=(2,), name="deep")
    hidden = Dense(4, name="hidden")(Dense(8, activation="relu", name="encoder")(deep))
    merged = layers.concatenate([wide, hidden], name="merge")
    model = keras.Model([wide, deep], ops.softmax(Dense(2, name="logits")(merged)))
    keras.utils.plot_model(
        model, to_file=tmp_path / "graph.svg", show_shapes=True, show_layer_names=True
    )
    svg = (tmp_path / "graph.svg").read_text()
    edges = set(re.findall(r'id="edge:([^"]+)"', svg.replace("&gt;", ">")))
    assert edges == {
        "deep->encoder",
        "encoder->hidden",
        "wide->merge",
        "hidden->merge",
        "merge->logits",
        "logits->softmax",
    }
    assert re.findall(r'id="layer:([^"]+)"', svg) == [
        "wide",
        "deep",
        "encoder",
        "hidden",
        "merge",
        "logits",
        "softmax",
    ]
    for text in ("wide (InputLayer)", "Input shape: [(None, 3), (None, 4)]", "softmax (OpLayer)"):
        assert text in svg, text
    keras.utils.plot_model(model, to_file=tmp_path / "graph.png", dpi=72)
    with Image.open(tmp_path / "graph.png") as image:
        width, height = image.size
    assert height > width > 0
