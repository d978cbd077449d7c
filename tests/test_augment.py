"""multilayer.data.augment: affine and elastic distortions, and the prefetching batches."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from multilayer.data.augment import (
    Augmentation,
    AugmentedBatches,
    affine_matrices,
    elastic_displacements,
    gaussian_kernel_matrix,
    warp,
)


def images(n=5, h=28, w=28, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w), dtype=np.uint8)


def identity(n):
    return affine_matrices(np.zeros(n), np.ones(n), np.zeros(n))


def test_identity_parameters_give_the_input_back_exactly():
    x = images()
    assert np.array_equal(Augmentation()(x, np.random.default_rng(0)), x)
    assert np.array_equal(warp(x, identity(len(x))), x)
    floats = x.astype(np.float32) / 255
    out = warp(floats, identity(len(x)))
    assert out.dtype == np.float32 and np.array_equal(out, floats)


def roll_with_zero_fill(image, dr, dc):
    out = np.zeros_like(image)
    h, w = image.shape
    out[max(dr, 0) : h + min(dr, 0), max(dc, 0) : w + min(dc, 0)] = image[
        max(-dr, 0) : h - max(dr, 0), max(-dc, 0) : w - max(dc, 0)
    ]
    return out


@pytest.mark.parametrize("dr, dc", [(3, 0), (0, -2), (-4, 5), (1, 1)])
def test_integer_translation_is_a_roll_with_zero_fill(dr, dc):
    x = images(n=2)
    out = warp(x, identity(2), translation=np.array([[dr, dc], [dr, dc]], dtype=float))
    for image, moved in zip(x, out, strict=True):
        expected = roll_with_zero_fill(image, dr, dc)
        assert np.array_equal(moved, expected)
        # and np.roll where nothing wraps around
        assert np.array_equal(moved[expected > 0], np.roll(image, (dr, dc), (0, 1))[expected > 0])


@pytest.mark.parametrize("k, degrees", [(1, 90), (2, 180), (3, 270), (3, -90)])
def test_rotations_by_quarter_turns_are_rot90(k, degrees):
    x = images(n=3)
    out = warp(x, affine_matrices(np.full(3, degrees), np.ones(3), np.zeros(3)))
    assert np.array_equal(out, np.rot90(x, k, axes=(1, 2)))


def test_a_quarter_turn_moves_a_pixel_counter_clockwise_as_displayed():
    x = np.zeros((1, 21, 21), dtype=np.float32)
    x[0, 10, 18] = 1.0  # right of the centre
    out = warp(x, affine_matrices(np.array([90.0]), np.ones(1), np.zeros(1)))
    assert out[0, 2, 10] == 1.0  # a counter-clockwise quarter turn moves it to the top


def test_scale_2_magnifies_about_the_centre():
    x = np.zeros((1, 9, 9), dtype=np.float32)
    x[0, 4, 5] = 1.0
    out = warp(x, affine_matrices(np.zeros(1), np.array([2.0]), np.zeros(1)))
    # output (4, 6) reads input (4, 5); (4, 5) reads (4, 4.5): half of it
    assert out[0, 4, 6] == 1.0 and out[0, 4, 5] == 0.5 and out[0, 4, 4] == 0.0


def test_bilinear_sampling_halfway_between_pixels_averages_them():
    x = np.zeros((1, 4, 4), dtype=np.float32)
    x[0, 1, 1], x[0, 1, 2] = 0.2, 0.6
    out = warp(x, identity(1), translation=np.array([[0.0, 0.5]]))
    assert out[0, 1, 2] == pytest.approx(0.4)


def test_output_range_and_dtype_are_preserved():
    aug = Augmentation(rotation=15, scale=(0.8, 1.2), shear=15, translation=3, alpha=34, sigma=4)
    x = images(n=16)
    out = aug(x, np.random.default_rng(1))
    assert out.dtype == np.uint8 and out.shape == x.shape
    floats = aug(x.astype(np.float32) / 255, np.random.default_rng(1))
    assert floats.dtype == np.float32 and floats.min() >= 0.0 and floats.max() <= 1.0
    assert not np.array_equal(out, x)
    # the uint8 result is the rounded float result
    assert np.abs(out.astype(np.float32) - floats * 255).max() <= 0.5 + 1e-3


def test_same_seed_same_batch_different_seed_different_batch():
    aug = Augmentation(rotation=10, scale=(0.9, 1.1), shear=10, translation=2, alpha=34, sigma=4)
    x = images(n=8)
    a = aug(x, np.random.default_rng(7))
    b = aug(x, np.random.default_rng(7))
    c = aug(x, np.random.default_rng(8))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_elastic_fields_are_smooth_and_scaled_by_alpha():
    dr, dc = elastic_displacements(np.random.default_rng(0), 64, (28, 28), alpha=34, sigma=4)
    dr2, _ = elastic_displacements(np.random.default_rng(0), 64, (28, 28), alpha=17, sigma=4)
    np.testing.assert_allclose(dr, 2 * dr2)
    # neighbouring displacements are strongly correlated (smoothed); raw noise is not
    corr = np.corrcoef(dr[:, :, :-1].ravel(), dr[:, :, 1:].ravel())[0, 1]
    assert corr > 0.9
    # the kernel is a normalised Gaussian away from the borders
    kernel = gaussian_kernel_matrix(64, 4.0)
    assert kernel[32].sum() == pytest.approx(1.0)
    assert kernel[32, 32] == kernel.max() and kernel[32, 31] == kernel[32, 33]


def test_an_elastic_distortion_alone_moves_pixels_but_keeps_mass_roughly():
    x = np.zeros((4, 28, 28), dtype=np.uint8)
    x[:, 8:20, 12:16] = 255
    out = Augmentation(alpha=34, sigma=4)(x, np.random.default_rng(0))
    assert not np.array_equal(out, x)
    ratio = out.astype(float).sum() / x.astype(float).sum()
    assert 0.6 < ratio < 1.4


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"scale": (0.0, 1.0)}, "scale must be > 0"),
        ({"scale": (1.2, 0.8)}, "scale must be a finite range"),
        ({"alpha": -1}, "alpha must be >= 0"),
        ({"sigma": 0}, "sigma must be > 0"),
        ({"shear": 90}, "shear must be within (-90, 90)"),
        ({"rotation": float("nan")}, "rotation must be a finite range"),
    ],
)
def test_bad_parameters_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Augmentation(**kwargs)


def test_bad_image_shape_is_refused():
    with pytest.raises(ValueError, match=r"expected images of shape \(n, height, width\)"):
        Augmentation()(np.zeros((28, 28)), np.random.default_rng(0))


def test_config_round_trip():
    aug = Augmentation(rotation=10, scale=(0.9, 1.1), shear=5, translation=2, alpha=30, sigma=5)
    assert Augmentation.from_config(aug.to_config()) == aug


def epoch_batches(data):
    data.on_epoch_begin()
    batches = [data[i] for i in range(len(data))]
    data.on_epoch_end()
    return batches


def test_augmented_batches_prefetched_equal_on_demand_and_cover_the_set():
    x = images(n=50)
    y = np.arange(50)
    aug = Augmentation(rotation=10, alpha=20, sigma=4)
    ahead = AugmentedBatches(x, y, 16, aug, seed=3, prefetch=2)
    demand = AugmentedBatches(x, y, 16, aug, seed=3, prefetch=0)
    assert len(ahead) == 4
    for _ in range(2):  # two epochs: reshuffled, the same either way
        a, b = epoch_batches(ahead), epoch_batches(demand)
        for (xa, ya), (xb, yb) in zip(a, b, strict=True):
            assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
        assert sorted(np.concatenate([yb for _, yb in b])) == list(range(50))
    assert ahead._thread is None  # joined at the end of each epoch


def test_augmented_batches_thread_stops_when_an_epoch_is_abandoned():
    ahead = AugmentedBatches(images(n=64), np.zeros(64), 4, None, seed=0, prefetch=1)
    before = threading.active_count()
    ahead.on_epoch_begin()
    ahead[0]
    ahead.close()
    assert threading.active_count() <= before


def test_augmented_batches_hand_producer_errors_to_the_caller():
    class Broken(Augmentation):
        def __call__(self, images, rng):
            raise RuntimeError("broken augmentation")

    data = AugmentedBatches(images(n=8), np.zeros(8), 4, Broken(), prefetch=2)
    data.on_epoch_begin()
    with pytest.raises(RuntimeError, match="broken augmentation"):
        data[0]
    data.close()


def test_fit_trains_on_augmented_batches():
    from multilayer.recipes import build_model, get_recipe

    recipe = get_recipe("fast").with_overrides(hidden=(16,), epochs=2, batch_size=32)
    model = build_model(recipe, (28, 28), 10, steps_per_epoch=4, seed=0)
    x = images(n=128)
    y = np.random.default_rng(0).integers(0, 10, 128)
    history = model.fit(AugmentedBatches(x, y, 32, Augmentation(rotation=5)), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and all(np.isfinite(history.history["loss"]))
