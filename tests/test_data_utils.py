"""to_categorical, normalize and train_validation_split."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multilayer.errors import DataError
from multilayer.utils.data_utils import normalize, to_categorical, train_validation_split

# --- to_categorical --------------------------------------------------------------------


def test_to_categorical_like_keras():
    result = to_categorical([0, 2, 1, 2])
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, [[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1]])


def test_to_categorical_shapes():
    assert to_categorical([[1], [0]], 3).shape == (2, 3)  # trailing 1 dropped
    assert to_categorical([[1, 0, 2], [0, 0, 1]], 3).shape == (2, 3, 3)
    assert to_categorical(np.array(2), 4).tolist() == [0, 0, 1, 0]
    assert to_categorical(np.zeros(0, dtype=int), 5).shape == (0, 5)


def test_to_categorical_options():
    assert to_categorical([1], num_classes=4, dtype="uint8").tolist() == [[0, 1, 0, 0]]
    assert to_categorical([1], num_classes=4).dtype == np.float32
    assert to_categorical(np.array([1.0, 0.0]), 2).tolist() == [[0, 1], [1, 0]]  # whole floats
    assert to_categorical(np.array([True, False])).tolist() == [[0, 1], [1, 0]]
    assert to_categorical(np.array([3], dtype=np.uint8), 10).argmax() == 3


@pytest.mark.parametrize(
    ("y", "num_classes", "message"),
    [
        ([0, -1, 2], None, "to_categorical: labels must be >= 0, found -1 at index 1"),
        ([0, 1.5], None, "to_categorical: labels must be whole numbers, found 1.5 at index 1"),
        ([np.nan], 3, "to_categorical: labels must be whole numbers, found nan at index 0"),
        (
            [0, 3, 1],
            3,
            "to_categorical: label 3 at index 1 is out of range: expected 0..2 for num_classes=3",
        ),
        ([], None, "to_categorical: cannot infer num_classes from empty labels"),
        (["a"], None, "to_categorical: labels must be integers, not <U1"),
        ([1], 0, "to_categorical: num_classes must be a positive integer, got 0"),
        ([1], 2.5, "to_categorical: num_classes must be a positive integer, got 2.5"),
    ],
)
def test_to_categorical_refuses_bad_labels(y, num_classes, message):
    with pytest.raises(DataError) as excinfo:
        to_categorical(y, num_classes)
    assert str(excinfo.value) == message


# --- normalize -------------------------------------------------------------------------


def test_normalize_like_keras():
    np.testing.assert_allclose(normalize([[3, 4], [0, 0], [1, 0]]), [[0.6, 0.8], [0, 0], [1, 0]])
    np.testing.assert_allclose(normalize([[3, 4]], order=1), [[3 / 7, 4 / 7]])
    np.testing.assert_allclose(normalize([[3, 4]], order=np.inf), [[0.75, 1.0]])
    np.testing.assert_allclose(normalize([[3.0], [4.0]], axis=0), [[0.6], [0.8]])


def test_normalize_dtypes_and_shapes():
    x = np.random.default_rng(0).standard_normal((4, 3, 5)).astype(np.float32)
    result = normalize(x, axis=1)
    assert result.dtype == np.float32 and result.shape == x.shape
    np.testing.assert_allclose(np.linalg.norm(result, axis=1), 1, rtol=1e-6)
    assert normalize(np.array([1, 2])).dtype == np.float64
    assert not np.shares_memory(normalize(x), x)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"order": 0}, "normalize: order must be > 0 (a norm), not 0"),
        ({"order": -2}, "normalize: order must be > 0 (a norm), not -2"),
        ({"axis": 2}, "normalize: axis 2 is out of range for 2 dimensions"),
        ({"axis": -3}, "normalize: axis -3 is out of range for 2 dimensions"),
    ],
)
def test_normalize_refuses_bad_arguments(kwargs, message):
    with pytest.raises(DataError) as excinfo:
        normalize(np.ones((2, 2)), **kwargs)
    assert str(excinfo.value) == message


# --- train_validation_split ------------------------------------------------------------


def labelled(counts: list[int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Samples whose single feature is their index, with shuffled labels of given counts."""
    y = np.repeat(np.arange(len(counts)), counts)
    np.random.default_rng(seed).shuffle(y)
    return np.arange(len(y), dtype=np.float32)[:, None], y


def test_split_sizes_follow_keras_validation_split():
    x, y = labelled([50, 30, 20])
    (x_train, y_train), (x_val, y_val) = train_validation_split(x, y, 0.2, seed=0)
    assert len(x_val) == len(y_val) == 20 and len(x_train) == len(y_train) == 80
    # Keras: split_at = int(n * (1 - fraction)); n=10, fraction=0.25 -> 3 for validation.
    (_, _), (x_val, _) = train_validation_split(*labelled([5, 5]), 0.25, seed=0)
    assert len(x_val) == 3


def test_split_is_a_stratified_partition_keeping_order():
    x, y = labelled([500, 300, 150, 50])
    (x_train, y_train), (x_val, y_val) = train_validation_split(x, y, 0.1, seed=1)
    train_ids, val_ids = x_train[:, 0].astype(int), x_val[:, 0].astype(int)
    assert sorted(np.concatenate([train_ids, val_ids]).tolist()) == list(range(1000))
    assert np.all(np.diff(train_ids) > 0) and np.all(np.diff(val_ids) > 0)  # original order
    np.testing.assert_array_equal(y_train, y[train_ids])
    assert np.bincount(y_val).tolist() == [50, 30, 15, 5]  # exactly proportional


def test_split_is_deterministic_for_a_seed():
    x, y = labelled([40, 40, 20])
    first = train_validation_split(x, y, 0.3, seed=42)
    again = train_validation_split(x, y, 0.3, seed=42)
    other = train_validation_split(x, y, 0.3, seed=43)
    np.testing.assert_array_equal(first[1][0], again[1][0])
    assert not np.array_equal(first[1][0], other[1][0])
    rng_split = train_validation_split(x, y, 0.3, seed=np.random.default_rng(42))
    np.testing.assert_array_equal(rng_split[1][0], first[1][0])


def test_split_accepts_one_hot_and_column_labels():
    x, y = labelled([60, 30, 10])
    (_, y_train), (_, y_val) = train_validation_split(x, to_categorical(y), 0.2, seed=0)
    assert y_val.shape == (20, 3) and y_train.shape == (80, 3)
    assert y_val.sum(axis=0).tolist() == [12, 6, 2]
    (_, y_train), (_, y_val) = train_validation_split(x, y[:, None], 0.2, seed=0)
    assert y_val.shape == (20, 1) and np.bincount(y_val[:, 0]).tolist() == [12, 6, 2]


def test_split_without_stratification_accepts_any_targets():
    x = np.arange(100.0)
    y = np.linspace(0, 1, 100)  # regression targets
    (x_train, y_train), (x_val, y_val) = train_validation_split(x, y, 0.25, seed=0, stratify=False)
    assert len(x_val) == 25 and set(x_train).isdisjoint(x_val)
    np.testing.assert_allclose(y_val, x_val / 99)


@pytest.mark.parametrize(
    ("x", "y", "fraction", "message"),
    [
        (
            np.zeros((4, 2)),
            np.zeros(3),
            0.5,
            "train_validation_split: x has 4 samples but y has 3: expected one label per sample",
        ),
        (
            np.zeros((4, 2)),
            np.zeros(4),
            0.0,
            "train_validation_split: validation_fraction must be in (0, 1), not 0.0",
        ),
        (
            np.zeros((4, 2)),
            np.zeros(4),
            1,
            "train_validation_split: validation_fraction must be in (0, 1), not 1",
        ),
        (
            np.zeros((1, 2)),
            np.zeros(1),
            0.5,
            "train_validation_split: need at least 2 samples to split, got 1",
        ),
        (
            np.zeros((2, 2)),
            np.array([0.5, 1.0]),
            0.5,
            "train_validation_split (pass stratify=False): labels must be whole numbers, "
            "found 0.5 at index 0",
        ),
        (
            np.zeros((2, 2)),
            np.zeros((2, 2, 2)),
            0.5,
            "train_validation_split: cannot stratify by labels of shape (2, 2, 2): expected "
            "(n,), (n, 1) or one-hot (n, num_classes); pass stratify=False",
        ),
    ],
)
def test_split_refuses_bad_input(x, y, fraction, message):
    with pytest.raises(DataError) as excinfo:
        train_validation_split(x, y, fraction)
    assert str(excinfo.value) == message


@settings(max_examples=100, deadline=None)
@given(
    counts=st.lists(st.integers(1, 40), min_size=1, max_size=6),
    fraction=st.floats(0.01, 0.99),
    seed=st.integers(0, 2**32 - 1),
)
def test_split_properties(counts, fraction, seed):
    x, y = labelled(counts, seed)
    n = len(y)
    if n < 2:
        return
    (x_train, y_train), (x_val, y_val) = train_validation_split(x, y, fraction, seed=seed)
    expected_val = min(max(n - int(n * (1 - fraction)), 1), n - 1)
    assert len(x_val) == expected_val and len(x_train) == n - expected_val
    ids = np.concatenate([x_train[:, 0], x_val[:, 0]]).astype(int)
    assert sorted(ids.tolist()) == list(range(n))
    # Each class within one sample of its exact proportional share.
    share = np.array(counts) * expected_val / n
    assert np.all(np.abs(np.bincount(y_val, minlength=len(counts)) - share) < 1)
