"""Turn a user's picture of a digit into what an MNIST network sees.

This is the one implementation shared by the CLI (``mlp predict MODEL IMAGE...``) and the
web app's drawing canvas, so both see exactly the same pixels.

MNIST digits are not arbitrary 28x28 thumbnails. LeCun, Cortes and Burges describe them as
black-and-white NIST digits "size normalized to fit in a 20x20 pixel box while preserving
their aspect ratio" (which, through anti-aliasing, yields grey levels), then "centered in a
28x28 image by computing the center of mass of the pixels, and translating the image so as
to position this point at the center of the 28x28 field". Ink is white (1.0) on black
(0.0). A network trained on MNIST only works on inputs prepared the same way, so
:func:`to_mnist` repeats those steps on any grayscale picture:

1. decide the polarity (dark ink on light paper is inverted to white on black),
2. subtract the background level and normalise the contrast so the strongest ink is 1.0,
3. drop faint noise (paper texture, JPEG ringing) and crop to the bounding box of the ink,
4. resize so the longer side is 20 px, keeping the aspect ratio (Lanczos, anti-aliased),
5. paste into a black 28x28 field so the centre of mass lands on pixel (14, 14).

Entry points:

* :func:`load_image` -- decode a PNG/JPEG (or GIF, BMP, WebP, PPM/PGM) file, bytes or
  stream, or a ``.npy`` array, into grayscale float32 in [0, 1]; refuses oversized files,
  decompression bombs and anything undecodable with :class:`~multilayer.errors.ImageError`.
* :func:`to_mnist` -- the MNIST preprocessing above.
* :func:`preprocess` -- ``to_mnist(load_image(source))``.
* :func:`preprocess_pixels` -- validate 784 raw pixel values (e.g. from a JSON API) that are
  already an MNIST-like image; no recentring.

Pillow is an optional dependency (``multilayer[images]``), imported only when needed.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from multilayer.errors import ImageError

if TYPE_CHECKING:
    from types import ModuleType

    from PIL.Image import Image as PILImage

__all__ = [
    "MNIST_SIDE",
    "DIGIT_BOX",
    "load_image",
    "to_mnist",
    "preprocess",
    "preprocess_pixels",
]

#: Side of an MNIST image, in pixels.
MNIST_SIDE = 28
#: The digit's longer side is scaled to this many pixels (MNIST's 20x20 box).
DIGIT_BOX = 20
#: Where the centre of mass goes, as a (row, column) pixel index. Measured on the MNIST test
#: set: the mean centre of mass is (13.99, 14.01), never more than 0.5 px away from 14.
_CENTRE = 14.0

_DEFAULT_MAX_BYTES = 10_000_000
_DEFAULT_MAX_PIXELS = 25_000_000

#: The ink must differ from the background by at least this much (on a 0..1 scale) to count
#: as a digit. Below it an image is blank: stretching its contrast would only turn sensor
#: or JPEG noise into a fake digit.
_MIN_CONTRAST = 0.1
#: After contrast normalisation (strongest ink = 1.0), weaker ink is noise: paper texture,
#: shadows, JPEG ringing around strokes. It is zeroed so it neither widens the bounding box
#: nor moves the centre of mass.
_NOISE_LEVEL = 0.2

_NPY_MAGIC = b"\x93NUMPY"
#: Formats handed to Pillow. A whitelist, not "everything Pillow reads": some plugins are
#: risky on untrusted uploads (EPS runs Ghostscript; libtiff has a long CVE history and
#: prints its complaints about damaged files straight to stderr), and the rest are not
#: plausible digit pictures. MPO is how Pillow opens many phone-camera JPEGs.
_PILLOW_FORMATS = ("PNG", "JPEG", "MPO", "GIF", "BMP", "WEBP", "PPM")
_PILLOW_MISSING = "Reading images needs Pillow: pip install 'multilayer[images]'"


def _pillow() -> ModuleType:
    """Import ``PIL.Image`` on first use, with an actionable message if it is missing."""
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - Pillow is installed in the dev env
        raise ImportError(_PILLOW_MISSING) from exc
    return Image


# --------------------------------------------------------------------------- loading


def load_image(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO,
    *,
    max_bytes: int = _DEFAULT_MAX_BYTES,
    max_pixels: int = _DEFAULT_MAX_PIXELS,
    name: str | None = None,
) -> np.ndarray:
    """Read a picture into a grayscale array.

    Args:
        source: a path (``str`` or ``Path``), the file's bytes, or a binary stream (read
            from its current position). PNG and JPEG are supported, and also GIF, BMP,
            WebP and PPM/PGM; a ``.npy`` file (recognised by its magic bytes) holding a
            numeric (H, W) array or 784 pixel values of shape (784,), with values in
            [0, 1] or [0, 255] (a maximum above 1 means the 0..255 scale).
        max_bytes: refuse inputs larger than this many bytes (checked before reading all
            of a file or stream).
        max_pixels: refuse images whose width x height, as declared in their header,
            exceeds this; checked before any pixel is decoded (decompression bombs).
        name: what to call the input in error messages; defaults to the path, the stream's
            ``name``, or "the image data" for bytes. Useful for uploads.

    Returns:
        float32 array of shape (H, W), values in [0, 1], 0 = black, 1 = white. Colour is
        reduced to luma; 16-bit images keep their precision; palettes are resolved. Images
        with transparency are composited on a background that contrasts with their ink
        (see :func:`_composite`), so black or white strokes drawn on a transparent canvas
        both come out as a visible digit. JPEG EXIF orientation is applied.

    Raises:
        ImageError: the input is empty, too large (bytes or pixels), not a decodable image,
            truncated or damaged, has a zero dimension, or is a ``.npy`` array with the
            wrong shape, dtype or values.
        ImportError: Pillow is not installed and the input is not a ``.npy`` array.
        OSError: a path cannot be read (e.g. ``FileNotFoundError``).
    """
    data, name = _read_bounded(source, max_bytes=max_bytes, name=name)
    if not data:
        raise ImageError(f"{name} is empty (0 bytes)")
    if data.startswith(_NPY_MAGIC):
        return _load_npy(data, name=name, max_pixels=max_pixels)
    if name.lower().endswith(".npy"):
        raise ImageError(f"{name} is not a valid .npy file")
    return _decode_with_pillow(data, name=name, max_pixels=max_pixels)


def _read_bounded(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO,
    *,
    max_bytes: int,
    name: str | None,
) -> tuple[bytes, str]:
    """Return ``(data, name)``, never reading more than ``max_bytes + 1`` bytes."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        label = name or "the image data"
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        label = name or str(path)
        # Refuse from the size on disk first; the bounded read below still protects
        # against files that grow or special files whose size is unknown.
        size = path.stat().st_size
        if size > max_bytes:
            raise ImageError(_too_many_bytes(label, size, max_bytes))
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    elif hasattr(source, "read"):
        stream_name = getattr(source, "name", None)
        label = name or (stream_name if isinstance(stream_name, str) else "the image stream")
        data = source.read(max_bytes + 1)
        if not isinstance(data, bytes | bytearray):
            raise TypeError(f"{label} must be opened in binary mode, read() gave {type(data)}")
        data = bytes(data)
    else:
        raise TypeError(f"expected a path, bytes or a binary stream, got {type(source).__name__}")
    if len(data) > max_bytes:
        exact = isinstance(source, bytes | bytearray | memoryview)
        raise ImageError(_too_many_bytes(label, len(data), max_bytes, exact=exact))
    return data, label


def _too_many_bytes(name: str, size: int, max_bytes: int, *, exact: bool = True) -> str:
    # A bounded read stops at max_bytes + 1, so then the true size is unknown.
    shown = f"{size:,} bytes" if exact else f"more than {max_bytes:,} bytes"
    return f"{name} is too large: {shown} (the limit is {max_bytes:,} bytes)"


def _too_many_pixels(name: str, width: int, height: int, max_pixels: int) -> str:
    return f"{name} is too large: {width}x{height} pixels (the limit is {max_pixels:,} pixels)"


def _decode_with_pillow(data: bytes, *, name: str, max_pixels: int) -> np.ndarray:
    """Decode image bytes with Pillow into grayscale float32 in [0, 1]."""
    with decoded_image(data, name=name, max_pixels=max_pixels, formats="PNG or JPEG") as img:
        return _to_gray(img, name=name)


@contextmanager
def decoded_image(data: bytes, *, name: str, max_pixels: int, formats: str) -> Iterator[PILImage]:
    """The image in ``data``, decoded by Pillow from a whitelist of formats and turned by its
    EXIF orientation, for the ``with`` body to convert. Its size is checked against
    ``max_pixels`` from the header, before anything is decoded; any failure, in the body
    too, is an `ImageError` naming ``name`` (``formats`` names what was expected, e.g.
    ``"PNG or JPEG"``).
    """
    Image = _pillow()
    Image.init()  # register every plugin so the whitelist below can be filtered
    whitelist = [f for f in _PILLOW_FORMATS if f in Image.OPEN]

    # Pillow signals a decompression bomb with a warning (above MAX_IMAGE_PIXELS) or an
    # error (above twice that): turn the warning into an error for this call. Its other
    # warnings are about metadata ("Corrupt EXIF data"), not pixels; they would only be
    # noise in the CLI's output and the web app's logs. On Python < 3.14 warning filters
    # are process-global, so a concurrent thread could briefly see these two filters.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # checked first
        try:
            img = Image.open(io.BytesIO(data), formats=whitelist)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageError(
                f"{name} is too large: it declares more pixels than Pillow's "
                f"decompression-bomb limit"
            ) from exc
        except Exception as exc:
            # Pillow raises many types on hostile input (UnidentifiedImageError, SyntaxError,
            # struct.error, ValueError...). Everything here comes from parsing untrusted
            # bytes, so all of it means "not an image we can read".
            raise ImageError(f"{name} is not a {formats} image") from exc

        with img:
            fmt = img.format or "image"
            width, height = img.size
            # The size comes from the header; nothing has been decoded yet.
            if width <= 0 or height <= 0:
                raise ImageError(f"{name} has no pixels: it is {width}x{height}")
            if width * height > max_pixels:
                raise ImageError(_too_many_pixels(name, width, height, max_pixels))
            try:
                img.load()
                yield _apply_exif_orientation(img)
            except ImageError:
                raise
            except Exception as exc:
                # Truncated files (OSError), corrupt streams (SyntaxError, ValueError,
                # zlib errors), and MemoryError from absurd chunk sizes all end here.
                raise ImageError(f"{name} is a truncated or damaged {fmt} image") from exc


def _apply_exif_orientation(img: PILImage) -> PILImage:
    """Rotate a phone photo the way it is displayed (EXIF orientation tag)."""
    from PIL import ImageOps

    try:
        orientation = img.getexif().get(0x0112, 1)  # 0x0112 = Orientation
    except Exception:
        # Junk EXIF is common in photos and says nothing about the pixels: ignore it
        # rather than refuse an otherwise good picture.
        return img
    if orientation in (2, 3, 4, 5, 6, 7, 8):
        return ImageOps.exif_transpose(img)
    return img


def _to_gray(img: PILImage, *, name: str) -> np.ndarray:
    """Convert a decoded Pillow image to float32 luma in [0, 1], shape (H, W)."""
    mode = img.mode
    if mode.startswith("I"):
        # 16-bit grayscale: PNG opens as "I;16", 16-bit PGM as "I" (rescaled by Pillow to
        # 0..65535). Keep the precision; convert("L") would clip at 255 instead of scaling.
        values = np.asarray(img, dtype=np.float32) / np.float32(65535.0)
        return np.clip(values, 0.0, 1.0, out=values)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    if has_alpha:
        rgba = img if mode == "RGBA" else img.convert("RGBA")
        # Pillow's RGBA -> L ignores alpha and computes the same luma as for RGB, in C.
        luma = _unit_float(rgba.convert("L"))
        alpha = _unit_float(rgba.getchannel("A"))
        return _composite(luma, alpha) if alpha.min() < 1.0 else luma
    if mode != "L":
        try:
            img = img.convert("L")
        except ValueError as exc:  # e.g. LAB: Pillow has no conversion for it
            raise ImageError(f"{name} uses an unsupported colour mode ({mode})") from exc
    return _unit_float(img)


def _unit_float(img: PILImage) -> np.ndarray:
    """8-bit Pillow image -> float32 array in [0, 1] (divided in place: big images)."""
    values = np.asarray(img, dtype=np.float32)
    if not values.flags.writeable:
        values = values.copy()
    values /= np.float32(255.0)
    return values


def _composite(luma: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Flatten a transparent image onto the background that makes its ink visible.

    Drawing canvases export strokes on a fully transparent background, and the strokes
    may be black or white. Compositing on a fixed colour would erase one of those cases
    (white strokes on white), so the background is chosen from the opaque pixels:

    * mostly transparent image: the opaque pixels are the ink, so the background is the
      opposite of the ink's (alpha-weighted) lightness: white under dark strokes, black
      under light ones;
    * mostly opaque image (a photo or a card with transparent margins): the opaque pixels
      include the real background, so the transparent parts take their median lightness.
    """
    opaque = alpha >= 0.5
    if opaque.mean() > 0.5:
        background = float(np.median(luma[opaque]))
    else:
        weight = float(alpha.sum())
        if weight == 0.0:  # fully transparent: nothing drawn; to_mnist will call it blank
            background = 1.0
        else:
            ink = float((luma * alpha).sum()) / weight
            background = 1.0 if ink < 0.5 else 0.0
    gray = luma * alpha + np.float32(background) * (1.0 - alpha)
    return np.clip(gray, 0.0, 1.0, out=gray).astype(np.float32, copy=False)


def _load_npy(data: bytes, *, name: str, max_pixels: int) -> np.ndarray:
    """Read a ``.npy`` array of pixels, checking dtype and shape from the header first."""
    fp = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(fp)
        else:  # 3.0 only exists for structured dtypes with non-ASCII field names
            raise ValueError(f"unsupported .npy version {version}")
    except Exception as exc:
        # The header is a Python literal parsed from untrusted bytes; damaged ones raise
        # ValueError, SyntaxError, TypeError, tokenize.TokenError...
        raise ImageError(f"{name} is not a valid .npy file") from exc

    if dtype.hasobject:
        raise ImageError(
            f"{name} holds Python objects (dtype {dtype}), which are refused: expected a "
            f"numeric array"
        )
    _check_numeric_dtype(dtype, what=name)
    _check_pixel_shape(shape, what=name)
    pixels = math.prod(shape)  # Python ints: no overflow for absurd header shapes
    if pixels > max_pixels:
        height, width = shape if len(shape) == 2 else (1, pixels)
        raise ImageError(_too_many_pixels(name, width, height, max_pixels))

    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        raise ImageError(f"{name} is a truncated or damaged .npy file") from exc
    if array.shape == (MNIST_SIDE * MNIST_SIDE,):
        array = array.reshape(MNIST_SIDE, MNIST_SIDE)
    return _to_unit_range(array, prefix=f"{name}: ")


def _check_numeric_dtype(dtype: np.dtype, *, what: str) -> None:
    # Integers and real floats only: booleans, complex numbers, strings, dates and records
    # are not pixel intensities.
    if dtype.kind not in "iuf" or dtype.fields is not None or dtype.subdtype is not None:
        raise ImageError(
            f"{what}: expected a numeric (integer or float) array of pixel values, "
            f"got dtype {dtype}"
        )


def _check_pixel_shape(shape: tuple[int, ...], *, what: str) -> None:
    side = MNIST_SIDE * MNIST_SIDE
    if shape == (side,) or (len(shape) == 2 and min(shape) > 0):
        return
    raise ImageError(
        f"{what}: expected a 2-D (H, W) grayscale array or {side} pixel values of shape "
        f"({side},), got shape {tuple(shape)}"
    )


def _to_unit_range(values: np.ndarray, *, prefix: str) -> np.ndarray:
    """Validate numeric pixel values and scale them to float32 in [0, 1].

    The dtype must already be known to be numeric. Values must be finite and lie in
    [0, 1] or [0, 255]; a maximum above 1 selects the 0..255 scale (so an almost black
    0..255 image whose maximum is <= 1 is read as 0..1). ``prefix`` starts the messages.
    """
    as_float = values.astype(np.float64, copy=False)
    if not np.isfinite(as_float).all():
        raise ImageError(f"{prefix}pixel values must be finite, found NaN or infinity")
    low, high = float(as_float.min()), float(as_float.max())
    if low < 0 or high > 255:
        raise ImageError(
            f"{prefix}pixel values must be in [0, 1] or [0, 255], got values from "
            f"{low:g} to {high:g}"
        )
    scale = 255.0 if high > 1 else 1.0
    return (as_float / scale).astype(np.float32)


# --------------------------------------------------------------------------- MNIST


def to_mnist(gray: np.ndarray, *, invert: bool | None = None) -> np.ndarray:
    """Normalise a grayscale picture of one digit the way MNIST digits were made.

    Args:
        gray: 2-D array (H, W) of real numbers in [0, 1], 0 = black, as returned by
            :func:`load_image`. Any size; the digit may be anywhere in it.
        invert: ``None`` (default) decides the polarity from the picture: the background
            level is the median of the border pixels, and the ink is on whichever side of
            it the image strays furthest (dark ink on light paper is inverted, white
            strokes on black are kept). ``True`` forces "dark ink on a lighter
            background", ``False`` forces "light ink on a darker background".

    Returns:
        float32 array of shape (28, 28), values in [0, 1], white ink (1.0) on black
        (0.0): the ink's contrast is stretched so its strongest pixel is 1.0, faint noise
        is removed, the ink's bounding box is scaled so its longer side is 20 px (aspect
        ratio kept, Lanczos anti-aliasing), and the result is translated by whole pixels
        so its centre of mass is within half a pixel of (row 14, column 14), clipping at
        the borders if needed.

    Raises:
        ImageError: ``gray`` is not a 2-D array of finite numbers in [0, 1], or it has no
            ink: "no digit found: the image is blank".
    """
    image = _validate_gray(gray)
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    background = float(np.median(border))
    if invert is None:
        # Ink is whatever departs most from the background: this handles black ink on
        # grey paper as well as white chalk on a blackboard.
        invert = background - float(image.min()) > float(image.max()) - background
    if invert:
        np.subtract(np.float32(1.0), image, out=image)  # in place: image is our own copy
        background = 1.0 - background

    ink = image
    ink -= np.float32(background)
    np.clip(ink, 0.0, None, out=ink)
    peak = float(ink.max())
    if peak < _MIN_CONTRAST:
        raise ImageError("no digit found: the image is blank")
    ink /= np.float32(peak)
    ink[ink < _NOISE_LEVEL] = 0.0

    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]

    height, width = crop.shape
    scale = DIGIT_BOX / max(height, width)
    new_height = max(1, round(height * scale))
    new_width = max(1, round(width * scale))
    digit = _resize(crop, new_width, new_height)
    return _centre_of_mass_paste(digit)


def _validate_gray(gray: np.ndarray) -> np.ndarray:
    """Return ``gray`` as a float32 copy, or raise ImageError explaining what is wrong."""
    array = np.asarray(gray)
    if array.ndim != 2 or array.size == 0:
        raise ImageError(
            f"expected a non-empty 2-D (H, W) grayscale array, got shape {array.shape}"
        )
    if array.dtype.kind not in "iuf":
        raise ImageError(f"expected a numeric grayscale array, got dtype {array.dtype}")
    image = array.astype(np.float32)  # always a copy: the caller's array is not modified
    if not np.isfinite(image).all():
        raise ImageError("grayscale values must be finite, found NaN or infinity")
    low, high = float(image.min()), float(image.max())
    if low < 0 or high > 1:
        raise ImageError(
            f"grayscale values must be in [0, 1], got values from {low:g} to {high:g} "
            f"(divide 0..255 images by 255)"
        )
    return image


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Anti-aliased resize of a float image with Pillow's Lanczos filter."""
    Image = _pillow()
    resized = Image.fromarray(np.ascontiguousarray(image, dtype=np.float32)).resize(
        (width, height), Image.Resampling.LANCZOS
    )
    # Lanczos rings slightly below 0 and above 1 next to sharp edges.
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def _centre_of_mass_paste(digit: np.ndarray) -> np.ndarray:
    """Place ``digit`` in a black 28x28 field with its centre of mass at (14, 14)."""
    rows = np.arange(digit.shape[0], dtype=np.float64)
    cols = np.arange(digit.shape[1], dtype=np.float64)
    mass = float(digit.sum())
    if mass == 0.0:  # cannot happen after the contrast check, but never divide by zero
        raise ImageError("no digit found: the image is blank")
    com_row = float(digit.sum(axis=1) @ rows) / mass
    com_col = float(digit.sum(axis=0) @ cols) / mass
    # Whole-pixel translation, as MNIST did (its centres of mass are all within 0.5 px of
    # 14). floor(x + 0.5) rounds halves the same way everywhere, unlike round().
    top = int(np.floor(_CENTRE - com_row + 0.5))
    left = int(np.floor(_CENTRE - com_col + 0.5))

    out = np.zeros((MNIST_SIDE, MNIST_SIDE), dtype=np.float32)
    dst_top, dst_left = max(top, 0), max(left, 0)
    dst_bottom = min(top + digit.shape[0], MNIST_SIDE)
    dst_right = min(left + digit.shape[1], MNIST_SIDE)
    if dst_bottom > dst_top and dst_right > dst_left:
        out[dst_top:dst_bottom, dst_left:dst_right] = digit[
            dst_top - top : dst_bottom - top, dst_left - left : dst_right - left
        ]
    return out


def resize_to(gray: np.ndarray, height: int, width: int) -> np.ndarray:
    """A grayscale picture resized to exactly ``height`` x ``width`` (Lanczos), for models
    that take images other than MNIST's 28x28 digits: no cropping, centring or inversion,
    only the size changes (an image already of that size is returned as it is).

    Args:
        gray: 2-D array of real numbers in [0, 1], as returned by :func:`load_image`.

    Returns:
        float32 array of shape (height, width), values in [0, 1].

    Raises:
        ImageError: ``gray`` is not a 2-D array of finite numbers in [0, 1].
        ValueError: ``height`` or ``width`` is not positive.
    """
    if int(height) < 1 or int(width) < 1:
        raise ValueError(f"height and width must be positive, got {height}x{width}")
    image = _validate_gray(gray)
    if image.shape == (height, width):
        return image.astype(np.float32, copy=False)
    return _resize(image, int(width), int(height))


# --------------------------------------------------------------------------- one-shot


def preprocess(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO,
    *,
    invert: bool | None = None,
    max_bytes: int = _DEFAULT_MAX_BYTES,
    max_pixels: int = _DEFAULT_MAX_PIXELS,
    name: str | None = None,
) -> np.ndarray:
    """Load a picture and prepare it for an MNIST network: ``to_mnist(load_image(...))``.

    Args:
        source, max_bytes, max_pixels, name: as for :func:`load_image`.
        invert: as for :func:`to_mnist`.

    Returns:
        float32 array of shape (28, 28), values in [0, 1], white ink on black.

    Raises:
        ImageError: anything :func:`load_image` or :func:`to_mnist` refuses.
        ImportError: Pillow is missing and the source is not a ``.npy`` array.
        OSError: a path cannot be read.
    """
    gray = load_image(source, max_bytes=max_bytes, max_pixels=max_pixels, name=name)
    return to_mnist(gray, invert=invert)


def preprocess_pixels(
    values: Sequence[float] | Sequence[Sequence[float]] | np.ndarray,
    *,
    invert: bool = False,
) -> np.ndarray:
    """Validate 784 raw pixel values (e.g. from a JSON API) as a 28x28 image.

    The values are taken to be an MNIST-like image already (a 28x28 canvas, digit roughly
    20 px and centred): they are only validated and scaled, not cropped or recentred. Send
    a real picture through :func:`preprocess` instead when that is not the case.

    Args:
        values: 784 numbers in row-major order, flat (784,) or nested (28, 28); all in
            [0, 1] or all in [0, 255] (a maximum above 1 selects the 0..255 scale).
        invert: ``True`` if the values are dark ink on a light background; they are then
            flipped to MNIST's white on black.

    Returns:
        float32 array of shape (28, 28), values in [0, 1].

    Raises:
        ImageError: wrong number of values, non-numeric or non-finite values, or values
            outside [0, 255].
    """
    side = MNIST_SIDE * MNIST_SIDE
    # Check the length before converting, so a huge request body is refused cheaply.
    sized = not isinstance(values, np.ndarray) and hasattr(values, "__len__")
    if sized and len(values) not in (side, MNIST_SIDE):
        raise ImageError(f"expected {side} pixel values (a 28x28 image), got {len(values)}")
    try:
        array = np.asarray(values)
    except (ValueError, TypeError) as exc:  # ragged nesting, unconvertible objects
        raise ImageError(f"expected {side} pixel values (a 28x28 image) as numbers") from exc
    if array.shape not in ((side,), (MNIST_SIDE, MNIST_SIDE)):
        got = array.size if array.ndim == 1 else f"shape {array.shape}"
        raise ImageError(f"expected {side} pixel values (a 28x28 image), got {got}")
    if array.dtype.kind not in "iuf":
        raise ImageError(f"pixel values must be numbers, got dtype {array.dtype}")
    image = _to_unit_range(array.reshape(MNIST_SIDE, MNIST_SIDE), prefix="")
    return 1.0 - image if invert else image
