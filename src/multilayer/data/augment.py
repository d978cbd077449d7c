"""Image augmentation for training, in NumPy, vectorised over the batch.

Two distortions, combined into one resampling of each image:

- a random **affine** map (rotation, scale, shear, translation) about the image centre;
- an **elastic** distortion (Simard, Steinkraus and Platt 2003): a random displacement field
  drawn uniformly in [-1, 1] per pixel and axis, smoothed by a Gaussian of standard deviation
  ``sigma`` pixels and multiplied by ``alpha``.

Every output pixel is *inverse-mapped*: its source coordinates are computed and the input is
sampled there bilinearly; a source outside the image reads ``fill`` (0: MNIST's background).
No Python loop runs per image. The same ``Augmentation`` and seed give the same batch.

    from multilayer.data.augment import Augmentation

    aug = Augmentation(rotation=10, scale=(0.9, 1.1), shear=10, translation=2, alpha=34, sigma=4)
    batch = aug(images, rng=np.random.default_rng(0))   # (n, 28, 28) uint8 in, uint8 out

`AugmentedBatches` feeds ``fit`` a freshly augmented, reshuffled copy of the training set
every epoch, prepared by a background thread while the training thread multiplies matrices.
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
from dataclasses import asdict, dataclass

import numpy as np

from multilayer.models.data_adapters import PyDataset

__all__ = [
    "Augmentation",
    "AugmentedBatches",
    "affine_matrices",
    "elastic_displacements",
    "gaussian_kernel_matrix",
    "sample_bilinear",
    "warp",
]


def sample_bilinear(
    images: np.ndarray, rows: np.ndarray, cols: np.ndarray, fill: float = 0.0
) -> np.ndarray:
    """``images`` ``(n, h, w)`` sampled at the float coordinates ``rows``, ``cols`` (each
    ``(n, h, w)``), bilinearly; a neighbour outside the image counts as ``fill``. Returns
    float32 ``(n, h, w)``. Integer coordinates return the pixels themselves exactly."""
    n, h, w = images.shape
    # A border of 2 pixels of ``fill`` around each image: coordinates clipped into it read
    # ``fill``, and every neighbour of a clipped coordinate is inside the padded image.
    pad = 2
    padded = np.full((n, h + 2 * pad, w + 2 * pad), fill, dtype=np.float32)
    padded[:, pad:-pad, pad:-pad] = images
    rows = np.clip(rows, -1.5, h + 0.5).astype(np.float32, copy=False)
    cols = np.clip(cols, -1.5, w + 0.5).astype(np.float32, copy=False)
    r0 = np.floor(rows)
    c0 = np.floor(cols)
    fr = rows - r0
    fc = cols - c0
    stride = w + 2 * pad
    base = (np.arange(n, dtype=np.int64) * padded[0].size)[:, None, None]
    i00 = base + (r0.astype(np.int64) + pad) * stride + (c0.astype(np.int64) + pad)
    flat = padded.reshape(-1)
    top = flat[i00] * (1 - fc) + flat[i00 + 1] * fc
    bottom = flat[i00 + stride] * (1 - fc) + flat[i00 + stride + 1] * fc
    return top * (1 - fr) + bottom * fr


def affine_matrices(rotation: np.ndarray, scale: np.ndarray, shear: np.ndarray) -> np.ndarray:
    """The ``(n, 2, 2)`` *inverse* linear maps (output -> source, in (row, column)
    coordinates) of the forward transforms rotate(``rotation``) @ shear(``shear``) @
    scale(``scale``); angles in degrees, counter-clockwise as displayed (so 90 degrees is
    ``np.rot90``), shear along the columns."""
    theta = np.deg2rad(np.asarray(rotation, dtype=np.float64))
    phi = np.deg2rad(np.asarray(shear, dtype=np.float64))
    s = np.asarray(scale, dtype=np.float64)
    # Forward map of centred (row, col): rows point down, so a counter-clockwise turn as
    # displayed maps (r, c) to (r cos - c sin, r sin + c cos) with these signs.
    cos, sin = np.cos(theta), np.sin(theta)
    rot = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    ones, zeros = np.ones_like(phi), np.zeros_like(phi)
    shr = np.stack([np.stack([ones, zeros], -1), np.stack([np.tan(phi), ones], -1)], -2)
    forward = rot @ shr * s[:, None, None]
    return np.linalg.inv(forward)


def gaussian_kernel_matrix(size: int, sigma: float) -> np.ndarray:
    """The ``(size, size)`` matrix ``K`` with ``K @ v`` = ``v`` convolved with a Gaussian of
    standard deviation ``sigma`` (truncated at 4 sigma, zero outside), so a field is smoothed
    along both axes by ``K @ field @ K.T`` for a whole batch at once."""
    index = np.arange(size)
    distance = index[:, None] - index[None, :]
    kernel = np.exp(-0.5 * (distance / sigma) ** 2)
    kernel[np.abs(distance) > 4 * sigma] = 0
    radius = int(4 * sigma)
    offsets = np.arange(-radius, radius + 1)
    total = np.exp(-0.5 * (offsets / sigma) ** 2).sum()  # the full kernel's mass
    return kernel / total


def elastic_displacements(
    rng: np.random.Generator, n: int, shape: tuple[int, int], alpha: float, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Simard et al.'s displacement fields ``(d_rows, d_cols)``, each ``(n, h, w)`` float32:
    uniform in [-1, 1], smoothed by a Gaussian of ``sigma`` pixels (zero beyond the border),
    times ``alpha``."""
    h, w = shape
    kr, kc = gaussian_kernel_matrix(h, sigma), gaussian_kernel_matrix(w, sigma)
    fields = rng.uniform(-1.0, 1.0, size=(2 * n, h, w)).astype(np.float32)
    kr32, kc32 = (alpha * kr).astype(np.float32), kc.astype(np.float32)
    # Along the columns: one matrix product for the whole batch; then along the rows.
    along_cols = (fields.reshape(-1, w) @ kc32.T).reshape(2 * n, h, w)
    smooth = (kr32 @ along_cols.transpose(1, 0, 2).reshape(h, -1)).reshape(h, 2 * n, w)
    smooth = smooth.transpose(1, 0, 2)
    return smooth[:n], smooth[n:]


def _range(value: float | tuple[float, ...], name: str, centre: float = 0.0) -> tuple[float, float]:
    if isinstance(value, tuple | list):
        low, high = float(value[0]), float(value[1])
    else:
        low, high = centre - float(value), centre + float(value)
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ValueError(f"Augmentation: {name} must be a finite range low <= high, got {value!r}")
    return low, high


def warp(
    images: np.ndarray,
    matrices: np.ndarray,
    translation: np.ndarray | None = None,
    displacement: tuple[np.ndarray, np.ndarray] | None = None,
    fill: float = 0.0,
) -> np.ndarray:
    """``images`` ``(n, h, w)`` resampled: output pixel ``p`` (centred coordinates) reads the
    input at ``matrices @ (p - translation) + displacement(p)``. ``matrices`` ``(n, 2, 2)``
    (`affine_matrices`), ``translation`` ``(n, 2)`` pixels (rows, columns) of the forward
    move, ``displacement`` two ``(n, h, w)`` fields added to the source coordinates. The
    result has the input's dtype (uint8 rounded and clipped to 0..255)."""
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"warp: expected images of shape (n, height, width), got {images.shape}")
    n, h, w = images.shape
    cr, cc = (h - 1) / 2.0, (w - 1) / 2.0
    # Entries within 1e-9 of 0 or 1 are snapped: a 90-degree turn's cos(pi/2) is 6e-17, not
    # 0, and must not blend in a neighbour.
    m = np.asarray(matrices, dtype=np.float64)
    for target in (0.0, 1.0, -1.0):
        m = np.where(np.abs(m - target) < 1e-9, target, m)
    m = m.astype(np.float32)
    rr = (np.arange(h, dtype=np.float32) - cr)[None, :, None]
    ccol = (np.arange(w, dtype=np.float32) - cc)[None, None, :]
    if translation is not None:
        t = np.asarray(translation, dtype=np.float32)
        rr = rr - t[:, 0, None, None]
        ccol = ccol - t[:, 1, None, None]
    src_r = m[:, 0, 0, None, None] * rr + m[:, 0, 1, None, None] * ccol + np.float32(cr)
    src_c = m[:, 1, 0, None, None] * rr + m[:, 1, 1, None, None] * ccol + np.float32(cc)
    src_r = np.broadcast_to(src_r, (n, h, w))
    src_c = np.broadcast_to(src_c, (n, h, w))
    if displacement is not None:
        src_r = src_r + displacement[0]
        src_c = src_c + displacement[1]
    out = sample_bilinear(images, src_r, src_c, fill)
    if images.dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out.astype(images.dtype, copy=False)


@dataclass(frozen=True)
class Augmentation:
    """Random affine and elastic distortions of a batch of images ``(n, h, w)``.

    Each range is drawn uniformly per image: ``rotation`` and ``shear`` in degrees (a number
    ``d`` means [-d, d]), ``scale`` a factor range, ``translation`` pixels along each axis.
    ``alpha`` (0: no elastic distortion) and ``sigma`` are Simard et al.'s. ``fill`` is the
    value read outside the image.
    """

    rotation: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    shear: float = 0.0
    translation: float = 0.0
    alpha: float = 0.0
    sigma: float = 4.0
    fill: float = 0.0

    def __post_init__(self) -> None:
        _range(self.rotation, "rotation")
        _range(self.shear, "shear")
        _range(self.translation, "translation")
        low, _ = _range(tuple(self.scale), "scale")
        if low <= 0:
            raise ValueError(f"Augmentation: scale must be > 0, got {self.scale!r}")
        if not (math.isfinite(self.alpha) and self.alpha >= 0):
            raise ValueError(f"Augmentation: alpha must be >= 0, got {self.alpha!r}")
        if not (math.isfinite(self.sigma) and self.sigma > 0):
            raise ValueError(f"Augmentation: sigma must be > 0, got {self.sigma!r}")
        if abs(self.shear) >= 90:
            raise ValueError(f"Augmentation: shear must be within (-90, 90), got {self.shear!r}")

    def to_config(self) -> dict:
        data = asdict(self)
        data["scale"] = list(self.scale)
        return data

    @classmethod
    def from_config(cls, config: dict) -> Augmentation:
        config = dict(config)
        if "scale" in config:
            config["scale"] = tuple(config["scale"])
        return cls(**config)

    def __call__(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A distorted copy of ``images`` (same shape and dtype), drawn from ``rng``."""
        images = np.asarray(images)
        if images.ndim != 3:
            raise ValueError(
                f"Augmentation: expected images of shape (n, height, width), got {images.shape}"
            )
        n, h, w = images.shape

        def draw(value: float | tuple[float, ...], name: str, size: tuple[int, ...]) -> np.ndarray:
            low, high = _range(value, name)
            return rng.uniform(low, high, size=size)

        rotation = draw(self.rotation, "rotation", (n,))
        scale = draw(tuple(self.scale), "scale", (n,))
        shear = draw(self.shear, "shear", (n,))
        translation = draw(self.translation, "translation", (n, 2))
        displacement = (
            elastic_displacements(rng, n, (h, w), self.alpha, self.sigma) if self.alpha else None
        )
        matrices = affine_matrices(rotation, scale, shear)
        return warp(images, matrices, translation, displacement, self.fill)


class AugmentedBatches(PyDataset):
    """The training set as ``fit`` batches, reshuffled and freshly augmented every epoch.

    Batch ``i`` of epoch ``e`` depends only on ``(seed, e, i)``, so a run is reproducible
    whether batches are prepared ahead or on demand. With ``prefetch > 0`` a background
    thread prepares the batches of the epoch in order into a queue of at most ``prefetch``
    batches while the training thread computes (NumPy releases the GIL in its loops); with
    0 each batch is made when asked for.

    Args:
        x: images ``(n, h, w)`` (uint8 as stored), y: labels ``(n,)``.
        augmentation: the distortions; None trains on the images as they are (reshuffled).
        workers: prefetch threads (0 or 1).
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        augmentation: Augmentation | None,
        seed: int = 0,
        prefetch: int = 4,
    ):
        super().__init__(workers=1 if prefetch else 0, max_queue_size=max(prefetch, 1))
        if len(x) != len(y):
            raise ValueError(f"AugmentedBatches: {len(x)} images but {len(y)} labels")
        if len(x) == 0:
            raise ValueError("AugmentedBatches: no images")
        if batch_size < 1:
            raise ValueError(f"AugmentedBatches: batch_size must be >= 1, got {batch_size}")
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.augmentation = augmentation
        self.seed = int(seed)
        self.prefetch = int(prefetch)
        self.epoch = -1
        self._order: np.ndarray | None = None
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._next = 0

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def _permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.x))

    def make_batch(
        self, epoch: int, index: int, order: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Batch ``index`` of ``epoch`` (``order`` is that epoch's permutation)."""
        rows = order[index * self.batch_size : (index + 1) * self.batch_size]
        images = self.x[rows]
        if self.augmentation is not None:
            images = self.augmentation(images, np.random.default_rng([self.seed, epoch, index]))
        return images, self.y[rows]

    def on_epoch_begin(self) -> None:
        self.close()
        self.epoch += 1
        self._order = self._permutation(self.epoch)
        self._next = 0
        if self.prefetch:
            self._stop = threading.Event()
            self._queue = queue.Queue(maxsize=self.prefetch)
            self._thread = threading.Thread(
                target=self._produce,
                args=(self.epoch, self._order, self._queue, self._stop),
                name="multilayer-augment",
                daemon=True,
            )
            self._thread.start()

    def _produce(
        self, epoch: int, order: np.ndarray, out: queue.Queue, stop: threading.Event
    ) -> None:
        for index in range(len(self)):
            item: tuple[str, object]
            try:
                item = ("ok", self.make_batch(epoch, index, order))
            except BaseException as error:  # handed to the training thread
                item = ("error", error)
            while not stop.is_set():
                try:
                    out.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if stop.is_set() or item[0] == "error":
                return

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if self._order is None:  # used without fit: epoch 0
            self.epoch = max(self.epoch, 0)
            self._order = self._permutation(self.epoch)
        if self._queue is not None and index != self._next:
            self.close()  # asked out of order: make batches on demand from now on
        if self._queue is not None:
            self._next += 1
            kind, value = self._queue.get()
            if kind == "error":
                raise value
            return value
        return self.make_batch(self.epoch, index, self._order)

    def on_epoch_end(self) -> None:
        self.close()

    def close(self) -> None:
        """Stop and join the prefetch thread, if one runs."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        self._thread = None
        self._queue = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
