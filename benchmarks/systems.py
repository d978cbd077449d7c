"""One adapter per system under test: multilayer, PyTorch, scikit-learn, Keras (TensorFlow).

Every adapter trains the same network, 784-512-768-10 with ReLU and a softmax output, on
MNIST, and exposes the same four operations:

* ``train_epoch()``        one pass over the training set at the configured batch size;
* ``accuracy(x, y)``       test accuracy of the current weights;
* ``predict(x)``           class scores for a batch of images (the inference benchmark);
* ``prepare(batch_size, recipe, seed)`` builds a fresh model.

Data reach an adapter as MNIST stores them (``uint8`` images ``(n, 28, 28)``, integer
labels); each adapter converts them the way its library's own tutorials do, once, outside
the timed region. Peers are imported lazily: a missing one raises `SystemUnavailable`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

HIDDEN = (512, 768)
CLASSES = 10


class SystemUnavailable(RuntimeError):
    """The peer library is not installed (or fails to import)."""


@dataclass(frozen=True)
class TrainConfig:
    """How to train: the knobs shared by every system's recipe."""

    batch_size: int = 128
    learning_rate: float = 1e-3
    #: "constant" or "onecycle" (multilayer's recipes also know "cosine")
    schedule: str = "constant"
    epochs: int = 1
    label_smoothing: float = 0.0
    warmup_fraction: float = 0.0
    #: inputs to mean 0 / std 1 (MNIST's statistics) instead of [0, 1]
    standardize: bool = False
    beta_2: float = 0.999
    kernel_initializer: str = "glorot_uniform"


def flops_per_sample(hidden=HIDDEN, inputs: int = 784, classes: int = CLASSES) -> int:
    """Multiply-adds x 2 of one training sample: forward, weight gradients, and input
    gradients of every layer but the first (nobody needs dL/dx of the data)."""
    sizes = [inputs, *hidden, classes]
    products = [a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    return 2 * (2 * sum(products) + sum(products[1:]))


class Multilayer:
    name = "multilayer"

    def __init__(self, blas_threads: int | None = None):
        import multilayer  # noqa: F401 - fail early if the package is broken

        self.blas_threads = blas_threads
        if blas_threads is not None:
            from threadpoolctl import threadpool_limits

            self._limits = threadpool_limits(blas_threads)  # held for the process' lifetime
        self.label = "multilayer" if blas_threads is None else f"multilayer ({blas_threads} thr)"

    def version(self) -> str:
        import multilayer

        return multilayer.__version__

    def load(self, x, y, x_test, y_test):
        # Kept as uint8: the model starts with Flatten + Rescaling(1/255).
        self.x, self.y, self.x_test, self.y_test = x, y, x_test, y_test

    def prepare(self, config: TrainConfig, seed: int, recipe_name: str = "tutorial"):
        from multilayer.recipes import build_model, get_recipe

        recipe = get_recipe(recipe_name).with_overrides(
            batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            schedule=config.schedule,
            epochs=config.epochs,
            label_smoothing=config.label_smoothing,
            warmup_fraction=config.warmup_fraction,
            standardize=config.standardize,
            beta_2=config.beta_2,
            kernel_initializer=config.kernel_initializer,
        )
        steps = math.ceil(len(self.x) / config.batch_size)
        self.model = build_model(recipe, self.x.shape[1:], CLASSES, steps, seed=seed)
        self.batch_size = config.batch_size
        self.epoch = 0

    def train_epoch(self):
        self.model.fit(
            self.x,
            self.y,
            batch_size=self.batch_size,
            epochs=self.epoch + 1,
            initial_epoch=self.epoch,
            verbose=0,
        )
        self.epoch += 1

    def accuracy(self, x, y) -> float:
        return float(np.mean(self.predict(x).argmax(axis=1) == y))

    def predict(self, x):
        return self.model.predict(x)


class Torch:
    name = "pytorch"
    label = "PyTorch"

    def __init__(self):
        try:
            import torch
        except ImportError as error:
            raise SystemUnavailable(
                f"PyTorch is not installed ({error}); pip install torch==2.13.0"
            ) from None
        self.torch = torch

    def version(self) -> str:
        return self.torch.__version__

    def load(self, x, y, x_test, y_test):
        t = self.torch
        # torchvision's ToTensor: float32 in [0, 1].
        self.x = t.from_numpy(x.reshape(len(x), -1).astype(np.float32) / 255)
        self.y = t.from_numpy(y.astype(np.int64))
        self.x_test_t = t.from_numpy(x_test.reshape(len(x_test), -1).astype(np.float32) / 255)

    def prepare(self, config: TrainConfig, seed: int, recipe_name: str = "tutorial"):
        t = self.torch
        t.manual_seed(seed)
        self.generator = t.Generator().manual_seed(seed)
        self.model = t.nn.Sequential(
            t.nn.Linear(784, HIDDEN[0]),
            t.nn.ReLU(),
            t.nn.Linear(HIDDEN[0], HIDDEN[1]),
            t.nn.ReLU(),
            t.nn.Linear(HIDDEN[1], CLASSES),
        )
        self.optimizer = t.optim.Adam(
            self.model.parameters(), lr=config.learning_rate, betas=(0.9, config.beta_2)
        )
        # torchvision's Normalize((0.1307,), (0.3081,)), applied once to the whole set
        self.shift, self.scale = (0.1307, 0.3081) if config.standardize else (0.0, 1.0)
        self._normalized_source, self.x_train = self.x, self._normalize(self.x)
        steps = math.ceil(len(self.x) / config.batch_size)
        self.scheduler = None
        if config.schedule == "onecycle":
            self.scheduler = t.optim.lr_scheduler.OneCycleLR(
                self.optimizer,
                max_lr=config.learning_rate,
                total_steps=max(config.epochs * steps, 2),
                pct_start=max(config.warmup_fraction, 0.01),
            )
        self.loss = t.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        self.batch_size = config.batch_size

    def train_epoch(self):
        t = self.torch
        if self._normalized_source is not self.x:  # the data set changed (see task_epochs)
            self._normalized_source, self.x_train = self.x, self._normalize(self.x)
        self.model.train()
        order = t.randperm(len(self.x), generator=self.generator)
        for start in range(0, len(self.x), self.batch_size):
            index = order[start : start + self.batch_size]
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss(self.model(self.x_train[index]), self.y[index])
            loss.backward()
            self.optimizer.step()
            if self.scheduler is not None:
                self.scheduler.step()

    def accuracy(self, x, y) -> float:
        return float(
            np.mean(self.predict_tensor(self._normalize(self.x_test_t)).argmax(axis=1) == y)
        )

    def _normalize(self, x):
        return (x - self.shift) / self.scale if self.scale != 1.0 else x

    def predict_tensor(self, x):
        self.model.eval()
        with self.torch.inference_mode():
            return self.model(x).numpy()

    def predict(self, x):
        # The idiomatic conversion is part of inference: uint8 images in, scores out.
        x = self.torch.from_numpy(x.reshape(len(x), -1).astype(np.float32) / 255)
        return self.predict_tensor(self._normalize(x))


class Sklearn:
    name = "sklearn"
    label = "scikit-learn"

    def __init__(self):
        try:
            import sklearn
            from sklearn.neural_network import MLPClassifier
        except ImportError as error:
            raise SystemUnavailable(
                f"scikit-learn is not installed ({error}); pip install scikit-learn"
            ) from None
        self.sklearn, self.MLPClassifier = sklearn, MLPClassifier

    def version(self) -> str:
        return self.sklearn.__version__

    def load(self, x, y, x_test, y_test):
        self.x = x.reshape(len(x), -1).astype(np.float32) / 255
        self.y = y
        self.x_test_f = x_test.reshape(len(x_test), -1).astype(np.float32) / 255

    def prepare(self, config: TrainConfig, seed: int, recipe_name: str = "tutorial"):
        if config.schedule != "constant" or config.label_smoothing:
            raise SystemUnavailable("scikit-learn's MLPClassifier has no one-cycle schedule")
        self.model = self.MLPClassifier(
            hidden_layer_sizes=HIDDEN,
            batch_size=config.batch_size,
            learning_rate_init=config.learning_rate,
            random_state=seed,
        )

    def train_epoch(self):
        # partial_fit is one shuffled pass over the data with MLPClassifier's Adam.
        self.model.partial_fit(self.x, self.y, classes=np.arange(CLASSES))

    def accuracy(self, x, y) -> float:
        return float(np.mean(self.model.predict(self.x_test_f) == y))

    def predict(self, x):
        return self.model.predict_proba(x.reshape(len(x), -1).astype(np.float32) / 255)


class Keras:
    name = "keras"
    label = "Keras (TensorFlow)"

    def __init__(self):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        try:
            import keras
            import tensorflow as tf
        except ImportError as error:
            raise SystemUnavailable(
                f"Keras / TensorFlow is not installed ({error}); pip install tensorflow-cpu"
            ) from None
        self.keras, self.tf = keras, tf

    def version(self) -> str:
        return f"keras {self.keras.__version__}, tensorflow {self.tf.__version__}"

    def load(self, x, y, x_test, y_test):
        # The Keras tutorial: flatten, float32 / 255.
        self.x = x.reshape(len(x), -1).astype(np.float32) / 255
        self.y = y.astype(np.int64)
        self.x_test_f = x_test.reshape(len(x_test), -1).astype(np.float32) / 255

    def prepare(self, config: TrainConfig, seed: int, recipe_name: str = "tutorial"):
        keras = self.keras
        keras.utils.set_random_seed(seed)
        steps = math.ceil(len(self.x) / config.batch_size)
        lr = config.learning_rate
        if config.schedule == "onecycle":
            total = max(config.epochs * steps, 2)
            warmup = max(int(config.warmup_fraction * total), 1)
            lr = keras.optimizers.schedules.CosineDecay(
                lr / 25, total - warmup, alpha=1e-4, warmup_target=lr, warmup_steps=warmup
            )
        self.model = keras.Sequential(
            [
                keras.Input(shape=(784,)),
                keras.layers.Dense(HIDDEN[0], activation="relu"),
                keras.layers.Dense(HIDDEN[1], activation="relu"),
                keras.layers.Dense(CLASSES, activation="softmax"),
            ]
        )
        self.model.compile(
            optimizer=keras.optimizers.Adam(lr),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        if config.label_smoothing:
            raise SystemUnavailable("label smoothing needs one-hot targets in Keras")
        self.batch_size = config.batch_size

    def train_epoch(self):
        self.model.fit(self.x, self.y, batch_size=self.batch_size, epochs=1, verbose=0)

    def accuracy(self, x, y) -> float:
        scores = self.model.predict(self.x_test_f, batch_size=1024, verbose=0)
        return float(np.mean(scores.argmax(axis=1) == y))

    def predict(self, x):
        # Keras' predict at its default batch size (32), as a user calls it.
        return self.model.predict(x.reshape(len(x), -1).astype(np.float32) / 255, verbose=0)


SYSTEMS = {
    "multilayer": Multilayer,
    "multilayer-1thread": lambda: Multilayer(blas_threads=1),
    "pytorch": Torch,
    "sklearn": Sklearn,
    "keras": Keras,
}


def make(name: str):
    """The adapter called ``name``; raises `SystemUnavailable` for a missing peer."""
    if name not in SYSTEMS:
        raise SystemUnavailable(f"unknown system {name!r}; known: {', '.join(SYSTEMS)}")
    return SYSTEMS[name]()
