"""Pictures that are not digits, made offline, to measure a model's reject option.

Each family is drawn as a picture a user might send (a canvas of ``CANVAS`` x ``CANVAS``
pixels, dark ink on white paper, as the draw-a-digit app and a photo are) and then prepared
exactly as ``mlp predict`` and the app prepare a picture
(`multilayer.data.images.to_mnist`: crop to the ink, scale to 20x20, centre by centre of
mass). So what is measured is what the network sees when someone sends such a picture.

    from multilayer.nondigits import FAMILIES, non_digits

    images = non_digits("letters", 50, seed=0)  # (50, 28, 28) float32 in [0, 1]

Families (`FAMILIES`):

* ``noise``: uniform and Gaussian pixel noise over the whole canvas;
* ``strokes``: 3 to 6 random straight and curved strokes (a scribble);
* ``letters``: a letter A-Z or a-z (not one that looks like a digit: no ``O``, ``o``, ``I``,
  ``l``, ``Z``, ``S``, ``B``, ``g``, ``q``), rendered from a DejaVu or Liberation font when
  installed, else Pillow's default font;
* ``photos``: random crops of the photographs scikit-learn ships
  (``sklearn.datasets.load_sample_images``), in grey;
* ``sparse``: blank-but-not-empty canvases: one to five dots, a border, or one horizontal
  line.

Needs Pillow (``multilayer[images]``); ``photos`` also needs scikit-learn.
"""

from __future__ import annotations

import glob
from collections.abc import Callable

import numpy as np

__all__ = ["CANVAS", "FAMILIES", "non_digits"]

#: The side of the canvas each picture is drawn on, in pixels (the app's canvas is 280).
CANVAS = 140
#: Letters that do not read as a digit (O/o=0, I/l=1, Z=2, S=5, B=8, g/q=9 are left out).
LETTERS = "ACDEFGHJKLMNPQRTUVWXYabcdefhijkmnprstuvwxyz"
_FONT_PATTERNS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans*.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif*.ttf",
    "/usr/share/fonts/truetype/liberation/Liberation*.ttf",
)


def _pillow():
    from multilayer.data.images import _pillow

    return _pillow()


def _prepare(gray: np.ndarray) -> np.ndarray:
    """A picture as ``mlp predict`` and the app prepare it (dark ink on white paper)."""
    from multilayer.data.images import to_mnist

    return to_mnist(np.clip(gray, 0.0, 1.0).astype(np.float32))


def _noise(rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.5:
        return rng.random((CANVAS, CANVAS))
    return 0.5 + rng.normal(0.0, rng.uniform(0.1, 0.3), (CANVAS, CANVAS))


def _canvas():
    Image = _pillow()
    from PIL import ImageDraw

    image = Image.new("L", (CANVAS, CANVAS), 255)
    return image, ImageDraw.Draw(image)


def _gray(image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32) / 255.0


def _strokes(rng: np.random.Generator) -> np.ndarray:
    image, draw = _canvas()
    for _ in range(int(rng.integers(3, 7))):
        width = int(rng.integers(6, 14))
        if rng.random() < 0.5:
            points = [tuple(p) for p in rng.uniform(10, CANVAS - 10, (2, 2)).tolist()]
            draw.line(points, fill=0, width=width)
        else:
            box = np.sort(rng.uniform(5, CANVAS - 5, (2, 2)), axis=0)
            if box[1, 0] - box[0, 0] < 20 or box[1, 1] - box[0, 1] < 20:
                continue
            start = float(rng.uniform(0, 360))
            draw.arc(
                [float(box[0, 0]), float(box[0, 1]), float(box[1, 0]), float(box[1, 1])],
                start,
                start + float(rng.uniform(60, 200)),
                fill=0,
                width=width,
            )
    return _gray(image)


def _fonts() -> list[str]:
    return sorted(path for pattern in _FONT_PATTERNS for path in glob.glob(pattern))


def _letters(rng: np.random.Generator, fonts: list[str]) -> np.ndarray:
    from PIL import ImageFont

    image, draw = _canvas()
    letter = LETTERS[int(rng.integers(len(LETTERS)))]
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont
    if fonts:
        font = ImageFont.truetype(fonts[int(rng.integers(len(fonts)))], size=100)
    else:  # Pillow >= 10.1 scales its default font
        font = ImageFont.load_default(size=100)
    draw.text((CANVAS / 2, CANVAS / 2), letter, fill=0, font=font, anchor="mm")
    return _gray(image)


def _photos(rng: np.random.Generator, photos: list[np.ndarray]) -> np.ndarray:
    photo = photos[int(rng.integers(len(photos)))]
    side = int(rng.integers(60, min(photo.shape[:2])))
    top = int(rng.integers(0, photo.shape[0] - side + 1))
    left = int(rng.integers(0, photo.shape[1] - side + 1))
    crop = photo[top : top + side, left : left + side]
    Image = _pillow()
    resized = Image.fromarray(crop).resize((CANVAS, CANVAS), Image.Resampling.BILINEAR)
    return _gray(resized)


def _sparse(rng: np.random.Generator) -> np.ndarray:
    image, draw = _canvas()
    kind = int(rng.integers(3))
    if kind == 0:  # one dot (a dot alone is scaled up to a disc), or a few anywhere
        for _ in range(int(rng.integers(1, 6))):
            x, y = rng.uniform(10, CANVAS - 10, 2)
            r = float(rng.uniform(3, 7))
            draw.ellipse([x - r, y - r, x + r, y + r], fill=0)
    elif kind == 1:  # a border
        width = int(rng.integers(3, 10))
        draw.rectangle([2, 2, CANVAS - 3, CANVAS - 3], outline=0, width=width)
    else:  # one horizontal line (a vertical one would be a fair "1")
        y = float(rng.uniform(30, CANVAS - 30))
        x0, x1 = sorted(rng.uniform(10, CANVAS - 10, 2).tolist())
        x1 = max(x1, x0 + 40)
        draw.line([(x0, y), (x1, y + float(rng.uniform(-8, 8)))], fill=0, width=8)
    return _gray(image)


def _sample_photos() -> list[np.ndarray]:
    """The JPEG photographs scikit-learn ships (what ``load_sample_images`` reads), in grey,
    read from its installed package without importing it (that takes seconds)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "the 'photos' family needs scikit-learn (its sample images): pip install scikit-learn"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "images"
    paths = sorted(folder.glob("*.jpg"))
    if not paths:
        raise ImportError(f"no sample photographs in {folder}: reinstall scikit-learn")
    Image = _pillow()
    photos = []
    for path in paths:
        with Image.open(path) as image:
            photos.append(np.asarray(image.convert("L"), dtype=np.uint8))
    return photos


def non_digits(family: str, count: int, seed: int = 0) -> np.ndarray:
    """``count`` pictures of ``family`` (see the module docstring), prepared as ``mlp
    predict`` prepares a picture.

    Returns:
        float32 array (count, 28, 28), values in [0, 1], white ink on black.

    Raises:
        ValueError: an unknown family or a negative count.
        ImportError: Pillow (or scikit-learn for ``photos``) is missing.
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown non-digit family {family!r}: expected one of {FAMILIES}")
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    rng = np.random.default_rng([seed, FAMILIES.index(family)])
    draw: Callable[[np.random.Generator], np.ndarray]
    if family == "letters":
        fonts = _fonts()
        draw = lambda r: _letters(r, fonts)  # noqa: E731
    elif family == "photos":
        photos = _sample_photos()
        draw = lambda r: _photos(r, photos)  # noqa: E731
    else:
        draw = {"noise": _noise, "strokes": _strokes, "sparse": _sparse}[family]
    from multilayer.errors import ImageError

    out = np.empty((count, 28, 28), dtype=np.float32)
    for index in range(count):
        # A picture the preparation calls blank never reaches a network (the app and mlp
        # predict answer "no digit found"): draw another, so every one measured does.
        for _ in range(100):
            try:
                out[index] = _prepare(draw(rng))
                break
            except ImageError:
                continue
        else:
            raise RuntimeError(f"could not draw a non-blank {family!r} picture")
    return out


FAMILIES = ("noise", "strokes", "letters", "photos", "sparse")
