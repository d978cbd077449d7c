"""The optimizer step split across threads gives bitwise the same result as one thread."""

from __future__ import annotations

import numpy as np
import pytest

from multilayer.engine import config, optimizers

# larger than Optimizer.min_parallel_size, and not a multiple of 64, so the chunks are uneven
SIZE = 3 * 2**16 + 37

CASES = {
    "adam": lambda: optimizers.Adam(3e-3),
    "adam-amsgrad-clipnorm": lambda: optimizers.Adam(1e-3, amsgrad=True, clipnorm=0.5),
    "adamw": lambda: optimizers.AdamW(2e-3, weight_decay=0.05, global_clipnorm=2.0),
    "rmsprop": lambda: optimizers.RMSprop(1e-3),
    "rmsprop-centered-momentum": lambda: optimizers.RMSprop(1e-3, centered=True, momentum=0.9),
    "sgd": lambda: optimizers.SGD(0.1),
    "sgd-nesterov": lambda: optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    "adagrad": lambda: optimizers.Adagrad(0.01),
}


def run(make, threads: int, dtype, steps: int = 5):
    rng = np.random.default_rng(0)
    params = rng.standard_normal(SIZE).astype(dtype)
    optimizer = make()
    optimizer.build(SIZE, dtype, [slice(0, 1000), slice(1000, SIZE)])
    config.set_num_threads(threads)
    try:
        for _ in range(steps):
            grads = (rng.standard_normal(SIZE) * rng.uniform(0.01, 3)).astype(dtype)
            optimizer.apply(params, grads)
    finally:
        config.set_num_threads(None)
    return params, optimizer.state


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("threads", [2, 3])
def test_threaded_step_is_bitwise_identical(name, dtype, threads):
    one_params, one_state = run(CASES[name], 1, dtype)
    many_params, many_state = run(CASES[name], threads, dtype)
    assert np.array_equal(one_params, many_params)
    assert one_state.keys() == many_state.keys()
    for slot in one_state:
        assert np.array_equal(one_state[slot], many_state[slot]), slot


def test_chunks_cover_the_vector_once_and_small_vectors_stay_whole():
    optimizer = optimizers.Adam()
    config.set_num_threads(3)
    try:
        chunks = optimizer._chunks(SIZE)
        small = optimizer._chunks(optimizer.min_parallel_size - 1)
    finally:
        config.set_num_threads(None)
    assert len(chunks) == 3
    assert chunks[0].start == 0 and chunks[-1].stop == SIZE
    assert all(a.stop == b.start for a, b in zip(chunks[:-1], chunks[1:], strict=True))
    assert all(c.start % 64 == 0 for c in chunks)
    assert small == [slice(0, optimizer.min_parallel_size - 1)]


def test_thread_count_setting(monkeypatch):
    monkeypatch.setenv("MULTILAYER_THREADS", "3")
    assert config.num_threads() == 3
    config.set_num_threads(1)
    try:
        assert config.num_threads() == 1
    finally:
        config.set_num_threads(None)
    monkeypatch.setenv("MULTILAYER_THREADS", "many")
    with pytest.raises(ValueError, match="MULTILAYER_THREADS"):
        config.num_threads()
    with pytest.raises(ValueError):
        config.set_num_threads(0)
