"""Training recipes: an architecture plus the way to train it, by name.

``tutorial`` is the recipe of the classic Keras tutorial (784-512-768-10, ReLU, Adam at its
defaults, batch 32, 100 epochs). ``fast`` (the default of ``mlp train``) trains the same
architecture to at least 98.4% *test* accuracy in as little time as we could measure; how it
was chosen is recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from multilayer.engine import optimizers, schedules
from multilayer.engine.layers import Dense, Flatten, Rescaling
from multilayer.models.input_scale import InputScale
from multilayer.models.sequential import Sequential


@dataclass(frozen=True)
class Recipe:
    """Everything needed to build, compile and train a model, as plain values."""

    name: str
    hidden: tuple[int, ...] = (512, 768)
    activation: str = "relu"
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    #: "constant", "exponential", "cosine" (with warm-up) or "onecycle"
    schedule: str = "constant"
    warmup_fraction: float = 0.0
    batch_size: int = 32
    epochs: int = 100
    label_smoothing: float = 0.0
    validation_split: float = 0.1
    dropout: float = 0.0
    #: decoupled weight decay of the optimizer (``p -= lr * weight_decay * p``); 0 for none
    weight_decay: float = 0.0
    #: scale pixels to MNIST's mean 0 / standard deviation 1 instead of [0, 1]
    standardize: bool = False
    kernel_initializer: str = "glorot_uniform"
    #: Adam's second-moment decay (a shorter memory suits short schedules)
    beta_2: float = 0.999
    extra: dict = field(default_factory=dict)
    #: dropout on the (rescaled) input pixels, before the first hidden layer
    input_dropout: float = 0.0
    #: max-norm constraint on the weights into each unit (Srivastava et al. 2014); None: none
    max_norm: float | None = None
    #: on-the-fly augmentation of the training images during fit
    #: (``multilayer.data.augment.Augmentation`` fields); None: none
    augment: dict | None = None
    #: FGSM adversarial training (`multilayer.models.adversarial`): how far each pixel moves,
    #: as a fraction of the pixel range (0.1: a tenth); 0 for none
    adversarial: float = 0.0

    def with_overrides(self, **changes) -> Recipe:
        """A copy with the given fields changed (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict:
        data = asdict(self)
        data["hidden"] = list(self.hidden)
        if self.augment is not None:
            data["augment"] = {
                k: list(v) if isinstance(v, tuple) else v for k, v in self.augment.items()
            }
        return data


RECIPES: dict[str, Recipe] = {
    "tutorial": Recipe(name="tutorial"),
    # 4 epochs of one-cycle (15% warm-up) at batch 512 on standardised pixels, Adam with a
    # short second-moment memory (beta_2 0.99), label smoothing 0.1: over 98.4% test accuracy
    # after the 3rd epoch and 98.55-98.6% at the end. The experiments: docs/benchmarks.md
    "fast": Recipe(
        name="fast",
        batch_size=512,
        epochs=4,
        learning_rate=4e-3,
        schedule="onecycle",
        warmup_fraction=0.15,
        label_smoothing=0.1,
        standardize=True,
        beta_2=0.99,
    ),
    # Tables (multilayer.tabular): chosen automatically for table data. From RealMLP's
    # defaults (Holzmueller et al. 2024: robust scaling + smooth clipping, one-hot for few
    # categories and embeddings for many, label smoothing 0.1, best epoch on a validation
    # split) and Gorishniy et al.'s MLP baseline (AdamW with weight decay); measured on
    # scikit-learn's bundled tables with benchmarks/tabular_defaults.py (docs/tables.md).
    # extra: weight_decay (AdamW); patience (epochs without a better val_loss before
    # stopping; the best epoch's weights are kept); one_hot_max (categorical columns with more
    # categories get an embedding); min_steps_per_epoch (a small table gets smaller batches,
    # down to 16 rows, so that an epoch is at least that many steps); max_steps (a larger
    # table trains for about that many steps: fewer epochs, at least 10) and
    # patience_fraction (patience = that fraction of the epochs, at least 5, at most
    # patience): tabular.training.budget; one_hot_values (numeric columns of 3 to that many
    # distinct whole numbers, such as an hour, also get a one-hot encoding). Chosen by
    # validation scores (benchmarks/tabular_variants.py, docs/benchmarks.md).
    "tabular": Recipe(
        name="tabular",
        hidden=(256, 256),
        activation="relu",
        optimizer="adamw",
        learning_rate=1e-3,
        schedule="cosine",
        warmup_fraction=0.05,
        batch_size=256,
        epochs=100,
        label_smoothing=0.1,
        validation_split=0.2,
        dropout=0.1,
        kernel_initializer="he_uniform",
        beta_2=0.95,
        extra={
            "weight_decay": 1e-4,
            "patience": 15,
            "one_hot_max": 16,
            "min_steps_per_epoch": 4,
            "max_steps": 1500,
            "patience_fraction": 0.3,
            "one_hot_values": 32,
        },
    ),
    # Permutation-invariant (no augmentation): a wide ReLU MLP with dropout on the inputs and
    # the hidden units and max-norm weights (Srivastava et al. 2014), FGSM adversarial
    # training (Goodfellow et al. 2015: every pixel moved by 0.2 of its range), a cosine
    # schedule. Chosen on the validation split: docs/benchmarks.md ("Recipes best and
    # augmented").
    "best": Recipe(
        name="best",
        hidden=(1024, 1024),
        batch_size=128,
        epochs=60,
        learning_rate=1e-3,
        schedule="cosine",
        warmup_fraction=0.02,
        label_smoothing=0.1,
        standardize=True,
        dropout=0.3,
        input_dropout=0.2,
        max_norm=3.5,
        kernel_initializer="he_uniform",
        adversarial=0.2,
    ),
    # On-the-fly random affine + elastic distortions (Simard et al. 2003) of every training
    # image, every epoch, prepared by a background thread while fit computes.
    "augmented": Recipe(
        name="augmented",
        hidden=(1024, 1024),
        batch_size=128,
        epochs=120,
        learning_rate=1e-3,
        schedule="cosine",
        warmup_fraction=0.02,
        label_smoothing=0.1,
        standardize=True,
        dropout=0.2,
        max_norm=3.5,
        kernel_initializer="he_uniform",
        augment={
            "rotation": 12.0,
            "scale": (0.9, 1.1),
            "shear": 10.0,
            "translation": 2.0,
            "alpha": 34.0,
            "sigma": 4.0,
        },
    ),
}
DEFAULT_RECIPE = "fast"
#: The learning-rate schedules a recipe may name (`make_schedule`).
SCHEDULES = ("constant", "exponential", "cosine", "onecycle")
#: mean and standard deviation of MNIST's training pixels scaled to [0, 1]
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def get_recipe(name: str) -> Recipe:
    from multilayer.utils.naming import unknown_name_error

    if name not in RECIPES:
        raise unknown_name_error("recipe", name, RECIPES)
    return RECIPES[name]


def make_schedule(recipe: Recipe, steps_per_epoch: int):
    """The learning rate (a float or a schedule) for ``recipe`` at ``steps_per_epoch``."""
    total = max(recipe.epochs * steps_per_epoch, 2)
    warmup = int(recipe.warmup_fraction * total)
    if recipe.schedule == "constant":
        return recipe.learning_rate
    if recipe.schedule == "exponential":
        return schedules.ExponentialDecay(
            recipe.learning_rate, decay_steps=steps_per_epoch, decay_rate=0.8
        )
    if recipe.schedule == "cosine":
        return schedules.CosineDecay(
            recipe.learning_rate / 10 if warmup else recipe.learning_rate,
            decay_steps=max(total - warmup, 1),
            warmup_target=recipe.learning_rate if warmup else None,
            warmup_steps=warmup,
        )
    if recipe.schedule == "onecycle":
        return schedules.OneCycle(
            recipe.learning_rate, total_steps=total, pct_start=max(recipe.warmup_fraction, 0.01)
        )
    raise ValueError(
        f"unknown schedule {recipe.schedule!r}: expected constant, exponential, cosine or onecycle"
    )


def pixel_statistics(images: np.ndarray, chunk: int = 4096) -> tuple[float, float]:
    """The mean and standard deviation of ``images``' pixels on the [0, 1] scale (pixels
    0..255 divided by 255), computed in float64 over chunks of ``chunk`` images, so no
    float copy of the whole dataset is made.

    Raises:
        ValueError: no images, or pixels that are all equal (no spread to divide by).
    """
    if len(images) == 0:
        raise ValueError("pixel_statistics: no images")
    total = squares = 0.0
    for start in range(0, len(images), chunk):
        block = np.asarray(images[start : start + chunk], dtype=np.float64) / 255.0
        total += float(block.sum())
        squares += float(np.square(block).sum())
    count = images.size
    mean = total / count
    std = math.sqrt(max(squares / count - mean * mean, 0.0))
    if not std > 0:
        raise ValueError("pixel_statistics: every pixel has the same value")
    return mean, std


def build_model(
    recipe: Recipe,
    input_shape: tuple[int, ...],
    classes: int,
    steps_per_epoch: int,
    seed: int | None = None,
    pixel_stats: tuple[float, float] | None = None,
) -> Sequential:
    """The compiled model of ``recipe`` for raw uint8 images of ``input_shape``.

    The model starts with Flatten and a Rescaling to [0, 1] (``Rescaling(1/255)``) or, for a
    recipe that standardises, to mean 0 and standard deviation 1, so it takes images as
    stored (``(n, 28, 28)`` uint8): no copy of the data set as floats is ever made. It
    records this in ``model.input_scale`` (saved in its file).

    Args:
        pixel_stats: ``(mean, std)`` of the training pixels on the [0, 1] scale
            (`pixel_statistics`), for a recipe that standardises; default: MNIST's.
    """
    from multilayer.engine.layers import Dropout

    if recipe.standardize:
        mean, std = pixel_stats if pixel_stats is not None else (MNIST_MEAN, MNIST_STD)
        rescaling = Rescaling(1.0 / (255 * std), offset=-mean / std)
        scale = InputScale(255.0, mean=float(mean), std=float(std))
    else:
        rescaling = Rescaling(1.0 / 255)
        scale = InputScale(255.0)
    from multilayer.engine.constraints import MaxNorm

    model = Sequential([Flatten(input_shape=input_shape), rescaling], seed=seed)
    model.input_scale = scale
    if recipe.input_dropout:
        model.add(Dropout(recipe.input_dropout))
    init = recipe.kernel_initializer

    def constraint():
        return None if recipe.max_norm is None else MaxNorm(recipe.max_norm)

    for units in recipe.hidden:
        model.add(
            Dense(
                units,
                activation=recipe.activation,
                kernel_initializer=init,
                kernel_constraint=constraint(),
            )
        )
        if recipe.dropout:
            model.add(Dropout(recipe.dropout))
    model.add(
        Dense(
            classes, activation="softmax", kernel_initializer=init, kernel_constraint=constraint()
        )
    )
    optimizer = optimizers.get(recipe.optimizer)
    learning_rate = make_schedule(recipe, steps_per_epoch)
    decay = recipe.weight_decay or None
    if isinstance(optimizer, optimizers.Adam):
        optimizer = type(optimizer)(
            learning_rate=learning_rate, beta_2=recipe.beta_2, weight_decay=decay
        )
    else:
        optimizer = type(optimizer)(learning_rate=learning_rate, weight_decay=decay)
    from multilayer.engine.losses import SparseCategoricalCrossentropy

    model.compile(
        optimizer=optimizer,
        loss=SparseCategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
        metrics=["accuracy"],
    )
    if recipe.adversarial:
        from multilayer.models.adversarial import AdversarialTraining

        # the model takes pixels as stored, 0 .. 255
        model.adversarial_training = AdversarialTraining(
            recipe.adversarial * 255.0, clip=(0.0, 255.0)
        )
    return model
