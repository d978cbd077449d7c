"""Tests for multilayer.data.images: user pictures -> MNIST-like 28x28 inputs."""

from __future__ import annotations

import gzip
import io
import os
import struct
import sys
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from multilayer.data.images import (
    load_image,
    preprocess,
    preprocess_pixels,
    to_mnist,
)
from multilayer.errors import ImageError

Image = pytest.importorskip("PIL.Image")
ImageDraw = pytest.importorskip("PIL.ImageDraw")

BLANK = "no digit found: the image is blank"


# --------------------------------------------------------------------------- helpers


def _mnist_dir() -> Path:
    env = os.environ.get("MULTILAYER_DATA")
    if env:
        return Path(env) / "mnist"
    return Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist"


@pytest.fixture(scope="module")
def mnist_digits() -> np.ndarray:
    """The first 50 MNIST test digits, uint8 (50, 28, 28); skips if MNIST is absent."""
    path = _mnist_dir() / "t10k-images-idx3-ubyte.gz"
    if not path.exists():
        pytest.skip(f"MNIST not found at {path}")
    raw = gzip.decompress(path.read_bytes())
    magic, count, rows, cols = struct.unpack(">IIII", raw[:16])
    assert (magic, rows, cols) == (2051, 28, 28)
    return np.frombuffer(raw, np.uint8, count=50 * 28 * 28, offset=16).reshape(50, 28, 28)


def _encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _npy(array: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, **options)
    return buffer.getvalue()


def _centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    rows, cols = np.mgrid[: image.shape[0], : image.shape[1]]
    mass = image.sum()
    return float((image * rows).sum() / mass), float((image * cols).sum() / mass)


def _ink_mask(size: tuple[int, int] = (240, 200)) -> np.ndarray:
    """A hand-drawn-looking '4': thick anti-aliased strokes, 1.0 = ink, off-centre."""
    scale = 4  # draw large, then downsample: anti-aliased edges like a canvas export
    width, height = size
    canvas = Image.new("L", (width * scale, height * scale), 0)
    draw = ImageDraw.Draw(canvas)
    strokes = [((60, 30), (30, 120), (120, 120)), ((100, 40), (100, 170))]
    for stroke in strokes:
        draw.line([(x * scale, y * scale) for x, y in stroke], fill=255, width=14 * scale)
    canvas = canvas.resize(size, Image.Resampling.BOX)
    return np.asarray(canvas, dtype=np.float32) / 255.0


def _patch_png_size(data: bytes, width: int, height: int) -> bytes:
    """Rewrite a PNG's IHDR to declare another size (with a valid CRC); pixels unchanged."""
    assert data[12:16] == b"IHDR"
    body = struct.pack(">II", width, height) + data[24:29]
    return data[:16] + body + struct.pack(">I", zlib.crc32(b"IHDR" + body)) + data[33:]


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """What the synthetic '4' must become: black ink on an opaque white page."""
    return preprocess(_encode(Image.fromarray(np.uint8(255 - 255 * _ink_mask()))))


# --------------------------------------------------------------------------- MNIST fidelity


@pytest.mark.parametrize(("fmt", "suffix"), [("PNG", ".png"), ("JPEG", ".jpg")])
def test_upscaled_mnist_digits_come_back_as_the_original(mnist_digits, tmp_path, fmt, suffix):
    """A real MNIST digit, photographed large with margins as dark ink on white paper,
    must be turned back into (nearly) the original 28x28 digit."""
    errors = []
    for i, digit in enumerate(mnist_digits):
        scale = (4, 6, 10)[i % 3]
        side = 28 * scale
        # Non-square pages, digit placed off-centre: preprocessing must find and centre it.
        page_size = (side + 60 + 7 * (i % 5), side + 20 + 11 * (i % 4))
        offset = (10 + 9 * (i % 5), 5 + 3 * (i % 4))
        upscaled = Image.fromarray(255 - digit).resize((side, side), Image.Resampling.BICUBIC)
        page = Image.new("L", page_size, 255)
        page.paste(upscaled, offset)
        path = tmp_path / f"digit{i}{suffix}"
        page.save(path, fmt, **({"quality": 90} if fmt == "JPEG" else {}))

        result = preprocess(path)

        assert result.shape == (28, 28)
        assert result.dtype == np.float32
        assert result.min() >= 0.0 and result.max() <= 1.0
        row, col = _centre_of_mass(result)
        assert abs(row - 14) <= 0.51 and abs(col - 14) <= 0.51, (i, row, col)
        errors.append(float(np.abs(result - digit / 255.0).mean()))

    # Measured: mean 0.024 (PNG and JPEG), worst digit 0.09. For scale, shifting an MNIST
    # digit by a single pixel costs 0.065 on average.
    assert np.mean(errors) < 0.035, np.mean(errors)
    assert max(errors) < 0.12, max(errors)


def test_mnist_digit_as_npy_round_trips(mnist_digits):
    digit = mnist_digits[7]
    for array in (digit, digit.reshape(784), digit / np.float64(255)):
        result = preprocess(_npy(array))
        assert np.abs(result - digit / 255.0).mean() < 0.03


# --------------------------------------------------------------------------- to_mnist


def test_digit_is_scaled_to_a_20_pixel_box_keeping_aspect_ratio():
    # A tall 3:1 bar on white: the result must be 20 px tall and about 7 px wide.
    page = np.ones((400, 300), np.float32)
    page[50:350, 100:200] = 0.0
    result = to_mnist(page)
    rows = np.flatnonzero(result.max(axis=1) > 0.5)
    cols = np.flatnonzero(result.max(axis=0) > 0.5)
    assert rows[-1] - rows[0] + 1 == 20
    assert 6 <= cols[-1] - cols[0] + 1 <= 8
    assert _centre_of_mass(result) == pytest.approx((14, 14), abs=0.51)


def test_small_digit_is_scaled_up():
    page = np.zeros((100, 100), np.float32)
    page[40:45, 47:49] = 1.0  # a 5x2 px "1"
    result = to_mnist(page)
    assert (result.max(axis=1) > 0.5).sum() >= 19


def test_output_is_deterministic_and_input_untouched():
    gray = 1.0 - _ink_mask()
    before = gray.copy()
    first, second = to_mnist(gray), to_mnist(gray)
    assert np.array_equal(first, second)
    assert np.array_equal(gray, before)


def test_white_on_black_is_not_inverted(reference):
    white_on_black = _ink_mask()
    result = to_mnist(white_on_black)
    # Had it been inverted, the black page would be "ink" and fill the box.
    assert np.abs(result - reference).max() < 0.02
    assert np.array_equal(to_mnist(white_on_black, invert=False), result)


def test_dark_ink_on_dark_grey_paper_is_detected(reference):
    # Background 0.45 is darker than mid-grey, but the ink is darker still: it must be
    # inverted (a rule like "invert when the background is light" gets this wrong).
    page = 0.45 * (1.0 - _ink_mask())
    assert np.abs(to_mnist(page) - reference).max() < 0.02


def test_faint_ink_and_noisy_paper():
    rng = np.random.default_rng(0)
    mask = _ink_mask()
    clean = to_mnist(1.0 - mask)
    # Grey pencil (contrast 0.35) on off-white paper with texture noise.
    paper = 0.9 - 0.35 * mask + rng.normal(0, 0.02, mask.shape)
    noisy = to_mnist(np.clip(paper, 0, 1).astype(np.float32))
    assert np.abs(noisy - clean).mean() < 0.02


def test_invert_override_picks_the_polarity():
    # Grey page with a dark "4" on the left and a light bar on the right: auto-detection
    # cannot know which one is the digit, `invert` decides.
    mask = _ink_mask((200, 200))
    bar = np.zeros((200, 200), np.float32)
    bar[30:170, 90:110] = 1.0
    page = np.full((200, 420), 0.5, np.float32)
    page[:, :200] -= 0.5 * mask
    page[:, 220:] += 0.5 * bar

    dark_alone = np.full((200, 420), 0.5, np.float32)
    dark_alone[:, :200] -= 0.5 * mask
    light_alone = np.full((200, 420), 0.5, np.float32)
    light_alone[:, 220:] += 0.5 * bar

    assert np.allclose(to_mnist(page, invert=True), to_mnist(dark_alone), atol=1e-6)
    assert np.allclose(to_mnist(page, invert=False), to_mnist(light_alone), atol=1e-6)
    assert np.abs(to_mnist(page, invert=True) - to_mnist(page, invert=False)).mean() > 0.05


def test_forcing_the_wrong_polarity_finds_no_digit():
    with pytest.raises(ImageError, match=f"^{BLANK}$"):
        to_mnist(1.0 - _ink_mask(), invert=False)


@pytest.mark.parametrize(
    "gray",
    [
        np.ones((50, 60)),
        np.zeros((50, 60)),
        np.full((50, 60), 0.5),
        np.ones((1, 1)),
        # Sensor noise of a few grey levels on a white page is not a digit.
        np.clip(0.97 + np.random.default_rng(1).normal(0, 0.01, (80, 80)), 0, 1),
    ],
)
def test_blank_image_is_refused(gray):
    with pytest.raises(ImageError) as info:
        to_mnist(gray)
    assert str(info.value) == BLANK


@pytest.mark.parametrize(
    ("gray", "message"),
    [
        (
            np.zeros((2, 3, 3)),
            "expected a non-empty 2-D (H, W) grayscale array, got shape (2, 3, 3)",
        ),
        (np.zeros((0, 3)), "expected a non-empty 2-D (H, W) grayscale array, got shape (0, 3)"),
        (np.array([["a"]]), "expected a numeric grayscale array, got dtype <U1"),
        (np.array([[0.0, np.nan]]), "grayscale values must be finite, found NaN or infinity"),
        (
            np.array([[0, 255]], np.uint8),
            "grayscale values must be in [0, 1], got values from 0 to 255 "
            "(divide 0..255 images by 255)",
        ),
    ],
)
def test_to_mnist_validates_its_input(gray, message):
    with pytest.raises(ImageError) as info:
        to_mnist(gray)
    assert str(info.value) == message


# --------------------------------------------------------------------------- colour modes


def test_transparent_canvas_with_black_strokes(reference):
    # What a browser canvas exports: transparent (0, 0, 0, 0) background, black strokes
    # whose anti-aliased edges are partly transparent.
    alpha = np.uint8(np.round(255 * _ink_mask()))
    rgba = np.zeros((*alpha.shape, 4), np.uint8)
    rgba[..., 3] = alpha
    gray = load_image(_encode(Image.fromarray(rgba)))
    assert gray.min() == 0.0 and np.median(gray) == 1.0  # composited on white
    assert np.abs(preprocess(_encode(Image.fromarray(rgba))) - reference).max() < 0.02


def test_transparent_canvas_with_white_strokes(reference):
    alpha = np.uint8(np.round(255 * _ink_mask()))
    rgba = np.zeros((*alpha.shape, 4), np.uint8)
    rgba[..., :3] = 255 * (alpha > 0)[..., None]  # white strokes, transparent black elsewhere
    rgba[..., 3] = alpha
    assert np.abs(preprocess(_encode(Image.fromarray(rgba))) - reference).max() < 0.02


def test_grey_alpha_and_palette_transparency(reference):
    alpha = np.uint8(np.round(255 * _ink_mask()))
    la = Image.fromarray(np.stack([np.zeros_like(alpha), alpha], axis=-1), mode="LA")
    assert np.abs(preprocess(_encode(la)) - reference).max() < 0.02
    # Palette image whose background index is transparent (PNG tRNS / GIF transparency).
    binary = Image.fromarray(np.uint8(alpha > 127))  # index 1 = ink, 0 = background
    palette = binary.convert("P")
    palette.putpalette([255, 0, 0, 0, 0, 0])  # background colour red, ink black
    for fmt in ("PNG", "GIF"):
        result = preprocess(_encode(palette, fmt, transparency=0))
        assert np.abs(result - reference).mean() < 0.02, fmt


def test_opaque_card_with_transparent_margins(reference):
    # Mostly opaque: the transparent margin takes the card's (white) colour.
    mask = _ink_mask()
    rgba = np.zeros((mask.shape[0] + 40, mask.shape[1] + 40, 4), np.uint8)
    rgba[20:-20, 20:-20, :3] = np.uint8(np.round(255 * (1 - mask)))[..., None]
    rgba[20:-20, 20:-20, 3] = 255
    assert np.abs(preprocess(_encode(Image.fromarray(rgba))) - reference).max() < 0.02


def test_colour_sixteen_bit_and_binary_images(reference):
    mask = _ink_mask()
    blue_pen = np.stack([255 - 200 * mask, 255 - 180 * mask, 255 - 40 * mask], -1)
    rgb = Image.fromarray(np.uint8(np.round(blue_pen)))
    assert np.abs(preprocess(_encode(rgb)) - reference).mean() < 0.02
    assert np.abs(preprocess(_encode(rgb, "JPEG", quality=85)) - reference).mean() < 0.02

    sixteen = Image.fromarray(np.uint16(np.round(65535 * (1 - mask))))
    png16 = _encode(sixteen)
    assert Image.open(io.BytesIO(png16)).mode.startswith("I;16")
    gray16 = load_image(png16)
    assert np.abs(gray16 - (1 - mask)).max() < 1e-4  # 16-bit precision kept, not clipped
    assert np.abs(preprocess(png16) - reference).max() < 0.02

    bilevel = Image.fromarray(mask < 0.5)  # mode "1": white paper, black ink
    assert np.abs(preprocess(_encode(bilevel)) - reference).mean() < 0.03


def test_jpeg_exif_orientation_is_applied(reference):
    upright = Image.fromarray(np.uint8(255 - 255 * _ink_mask()))
    stored = upright.rotate(90, expand=True)  # the camera stored it rotated...
    exif = Image.Exif()
    exif[0x0112] = 6  # ...and says "rotate 90 degrees clockwise to display"
    data = _encode(stored, "JPEG", quality=95, exif=exif)
    assert load_image(data).shape == (upright.height, upright.width)
    assert np.abs(preprocess(data) - reference).mean() < 0.02


def test_sixteen_bit_pgm_keeps_its_scale():
    # Pillow rescales a PGM with maxval 1000 to 0..65535 in mode "I".
    data = b"P5\n3 1\n1000\n" + np.array([0, 500, 1000], ">u2").tobytes()
    np.testing.assert_allclose(load_image(data), [[0.0, 0.5, 1.0]], atol=1e-4)


def test_corrupt_exif_is_ignored_quietly():
    page = Image.fromarray(np.uint8(255 - 255 * _ink_mask()))
    data = _encode(page, "JPEG", exif=b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\xff\xff")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's "Corrupt EXIF data" must not leak out
        gray = load_image(data)
    assert gray.shape == (page.height, page.width)


def test_sources_path_str_bytes_and_stream(tmp_path):
    data = _encode(Image.fromarray(np.uint8(255 - 255 * _ink_mask())))
    path = tmp_path / "digit.png"
    path.write_bytes(data)
    expected = preprocess(data)
    assert np.array_equal(preprocess(path), expected)
    assert np.array_equal(preprocess(str(path)), expected)
    assert np.array_equal(preprocess(bytearray(data)), expected)
    with path.open("rb") as stream:
        assert np.array_equal(preprocess(stream), expected)


# --------------------------------------------------------------------------- bad files


def test_text_file_renamed_png(tmp_path):
    path = tmp_path / "digit.png"
    path.write_text("this is not an image\n")
    with pytest.raises(ImageError) as info:
        load_image(path)
    assert str(info.value) == f"{path} is not a PNG or JPEG image"


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageError) as info:
        load_image(path)
    assert str(info.value) == f"{path} is empty (0 bytes)"


@pytest.mark.parametrize(("fmt", "suffix"), [("PNG", "png"), ("JPEG", "jpg")])
def test_truncated_image(tmp_path, fmt, suffix):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    data = _encode(Image.fromarray(noise), fmt)
    path = tmp_path / f"cut.{suffix}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError) as info:
        load_image(path)
    assert str(info.value) == f"{path} is a truncated or damaged {fmt} image"


@pytest.mark.parametrize(
    "data", [b"\x00", b"GIF89a", b"\x89PNG\r\n\x1a\n", np.random.default_rng(0).bytes(64)]
)
def test_undecodable_bytes(data):
    with pytest.raises(ImageError) as info:
        load_image(data)
    assert str(info.value) == "the image data is not a PNG or JPEG image"


def test_zero_size_png_is_refused():
    data = _patch_png_size(_encode(Image.new("L", (1, 1))), 0, 10)
    with pytest.raises(ImageError, match="not a PNG or JPEG image"):
        load_image(data)


def test_stream_name_and_explicit_name_in_messages(tmp_path):
    path = tmp_path / "upload.bin"
    path.write_bytes(b"garbage")
    with path.open("rb") as stream, pytest.raises(ImageError) as info:
        load_image(stream)
    assert str(info.value) == f"{path} is not a PNG or JPEG image"
    with pytest.raises(ImageError) as info:
        load_image(io.BytesIO(b"garbage"))
    assert str(info.value) == "the image stream is not a PNG or JPEG image"
    with pytest.raises(ImageError) as info:
        load_image(b"garbage", name="canvas.png")
    assert str(info.value) == "canvas.png is not a PNG or JPEG image"


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / "nope.png")


def test_decompression_bomb_is_refused_before_decoding():
    # A real 1x1 PNG whose header claims 30000x30000: decoding would fail (only one
    # pixel of data), so getting the size error proves it was checked from the header.
    tiny = _encode(Image.new("L", (1, 1)))
    with pytest.raises(ImageError) as info:
        load_image(_patch_png_size(tiny, 30_000, 30_000))
    assert str(info.value) == (
        "the image data is too large: it declares more pixels than Pillow's "
        "decompression-bomb limit"
    )
    # Between Pillow's warning and error thresholds, with our limit raised: Pillow's
    # DecompressionBombWarning is turned into the same refusal.
    with pytest.raises(ImageError) as info:
        load_image(_patch_png_size(tiny, 10_000, 10_000), max_pixels=10**9)
    assert "decompression-bomb limit" in str(info.value)
    # Under Pillow's own limit but over ours (25 million by default).
    with pytest.raises(ImageError) as info:
        load_image(_patch_png_size(tiny, 6000, 5000))
    assert str(info.value) == (
        "the image data is too large: 6000x5000 pixels (the limit is 25,000,000 pixels)"
    )


def test_max_pixels_is_inclusive():
    data = _encode(Image.new("L", (100, 50), 255))
    assert load_image(data, max_pixels=5000).shape == (50, 100)
    with pytest.raises(ImageError, match=r"100x50 pixels \(the limit is 4,999 pixels\)$"):
        load_image(data, max_pixels=4999)
    with pytest.raises(ImageError, match=r"28x28 pixels \(the limit is 100 pixels\)$"):
        load_image(_npy(np.zeros((28, 28))), max_pixels=100)


def test_oversized_files_are_refused(tmp_path):
    data = _encode(Image.new("L", (100, 100), 255))
    path = tmp_path / "big.png"
    path.write_bytes(data)
    limit = len(data) - 1
    with pytest.raises(ImageError) as info:
        load_image(path, max_bytes=limit)
    assert str(info.value) == (
        f"{path} is too large: {len(data):,} bytes (the limit is {limit:,} bytes)"
    )
    # A stream is read at most max_bytes + 1 bytes, so its size is unknown.
    with pytest.raises(ImageError) as info:
        load_image(io.BytesIO(data), max_bytes=10)
    assert str(info.value) == (
        "the image stream is too large: more than 10 bytes (the limit is 10 bytes)"
    )
    with pytest.raises(ImageError) as info:
        load_image(data, max_bytes=limit)
    assert str(info.value) == (
        f"the image data is too large: {len(data):,} bytes (the limit is {limit:,} bytes)"
    )
    assert load_image(path, max_bytes=len(data)).shape == (100, 100)


def test_missing_pillow_gives_an_actionable_error(monkeypatch):
    png = _encode(Image.new("L", (4, 4)))
    monkeypatch.setitem(sys.modules, "PIL", None)  # makes `from PIL import ...` fail
    with pytest.raises(ImportError) as info:
        load_image(png)
    assert str(info.value) == "Reading images needs Pillow: pip install 'multilayer[images]'"
    # .npy arrays do not need Pillow to be loaded.
    assert load_image(_npy(np.zeros((3, 4)))).shape == (3, 4)


# --------------------------------------------------------------------------- .npy


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.array([[0, 128], [255, 3]], np.uint8), np.array([[0, 128], [255, 3]]) / 255),
        (np.array([[0.0, 0.5], [1.0, 0.25]]), np.array([[0.0, 0.5], [1.0, 0.25]])),
        (np.array([[0, 1], [1, 0]], np.int64), np.array([[0, 1], [1, 0]])),
        (np.arange(784, dtype=np.float32) / 783, (np.arange(784) / 783).reshape(28, 28)),
        (np.full(784, 200, np.int16), np.full((28, 28), 200 / 255)),
    ],
)
def test_npy_arrays_are_accepted(array, expected, tmp_path):
    path = tmp_path / "pixels.npy"
    path.write_bytes(_npy(array))
    gray = load_image(path)
    assert gray.dtype == np.float32
    np.testing.assert_allclose(gray, expected, atol=1e-6)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (
            np.zeros((28, 28, 3)),
            "expected a 2-D (H, W) grayscale array or 784 pixel values of shape (784,), "
            "got shape (28, 28, 3)",
        ),
        (
            np.zeros((1, 28, 28)),
            "expected a 2-D (H, W) grayscale array or 784 pixel values of shape (784,), "
            "got shape (1, 28, 28)",
        ),
        (
            np.zeros(783),
            "expected a 2-D (H, W) grayscale array or 784 pixel values of shape (784,), "
            "got shape (783,)",
        ),
        (
            np.zeros((0, 28)),
            "expected a 2-D (H, W) grayscale array or 784 pixel values of shape (784,), "
            "got shape (0, 28)",
        ),
        (
            np.zeros((28, 28), bool),
            "expected a numeric (integer or float) array of pixel values, got dtype bool",
        ),
        (
            np.zeros((28, 28), complex),
            "expected a numeric (integer or float) array of pixel values, got dtype complex128",
        ),
        (
            np.array([["a", "b"]]),
            "expected a numeric (integer or float) array of pixel values, got dtype <U1",
        ),
        (np.array([[0.0, np.nan]]), "pixel values must be finite, found NaN or infinity"),
        (np.array([[0.0, np.inf]]), "pixel values must be finite, found NaN or infinity"),
        (
            np.array([[0, 300]]),
            "pixel values must be in [0, 1] or [0, 255], got values from 0 to 300",
        ),
        (
            np.array([[-0.5, 1.0]]),
            "pixel values must be in [0, 1] or [0, 255], got values from -0.5 to 1",
        ),
    ],
)
def test_bad_npy_arrays_are_refused(array, message):
    with pytest.raises(ImageError) as info:
        load_image(_npy(array), name="x.npy")
    assert str(info.value) == f"x.npy: {message}"


def test_pickled_object_array_is_refused_without_unpickling():
    data = _npy(np.array([[1, "a"]], dtype=object), allow_pickle=True)
    with pytest.raises(ImageError) as info:
        load_image(data, name="evil.npy")
    assert str(info.value) == (
        "evil.npy holds Python objects (dtype object), which are refused: expected a numeric array"
    )


def test_damaged_npy_files():
    data = _npy(np.zeros((28, 28)))
    with pytest.raises(ImageError) as info:
        load_image(data[:-10], name="cut.npy")
    assert str(info.value) == "cut.npy is a truncated or damaged .npy file"
    with pytest.raises(ImageError) as info:
        load_image(data[:12], name="header.npy")
    assert str(info.value) == "header.npy is not a valid .npy file"
    with pytest.raises(ImageError) as info:
        load_image(b"not numpy at all", name="fake.npy")
    assert str(info.value) == "fake.npy is not a valid .npy file"


# --------------------------------------------------------------------------- raw pixels


def test_preprocess_pixels_accepts_both_scales_and_shapes():
    rng = np.random.default_rng(0)
    levels = rng.integers(0, 256, 784)
    expected = (levels / 255).reshape(28, 28)
    for values in (levels.tolist(), levels, levels.reshape(28, 28).tolist()):
        result = preprocess_pixels(values)
        assert result.dtype == np.float32 and result.shape == (28, 28)
        np.testing.assert_allclose(result, expected, atol=1e-6)
    np.testing.assert_allclose(preprocess_pixels((levels / 255).tolist()), expected, atol=1e-6)
    np.testing.assert_allclose(preprocess_pixels(levels, invert=True), 1 - expected, atol=1e-6)


def test_preprocess_pixels_does_not_recentre():
    values = np.zeros(784)
    values[0] = 255  # a single pixel in the top-left corner stays there
    result = preprocess_pixels(values)
    assert result[0, 0] == 1.0 and result.sum() == 1.0


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([0] * 783, "expected 784 pixel values (a 28x28 image), got 783"),
        (np.zeros(785), "expected 784 pixel values (a 28x28 image), got 785"),
        (np.zeros((28, 27)), "expected 784 pixel values (a 28x28 image), got shape (28, 27)"),
        ([[0] * 28] * 27 + [[0] * 27], "expected 784 pixel values (a 28x28 image) as numbers"),
        (["0"] * 784, "pixel values must be numbers, got dtype <U1"),
        ([None] * 784, "pixel values must be numbers, got dtype object"),
        ([True] * 784, "pixel values must be numbers, got dtype bool"),
        ([0.5] * 783 + [float("nan")], "pixel values must be finite, found NaN or infinity"),
        ([0.5] * 783 + [float("inf")], "pixel values must be finite, found NaN or infinity"),
        ([0] * 783 + [256], "pixel values must be in [0, 1] or [0, 255], got values from 0 to 256"),
        ([0] * 783 + [-1], "pixel values must be in [0, 1] or [0, 255], got values from -1 to 0"),
        (list(range(10**6)), "expected 784 pixel values (a 28x28 image), got 1000000"),
    ],
)
def test_preprocess_pixels_validation(values, message):
    with pytest.raises(ImageError) as info:
        preprocess_pixels(values)
    assert str(info.value) == message


# --------------------------------------------------------------------------- robustness


def _check_only_image_errors(data: bytes) -> None:
    try:
        result = preprocess(data, max_pixels=1_000_000)
    except ImageError:
        return
    assert result.shape == (28, 28) and result.dtype == np.float32
    assert np.isfinite(result).all() and result.min() >= 0.0 and result.max() <= 1.0


_FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,  # reproducible in CI
    database=None,  # and nothing written to .hypothesis/
)


@_FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_raise_only_image_error(data):
    _check_only_image_errors(data)


def _seed_files() -> list[bytes]:
    mask = _ink_mask((40, 40))
    gray = Image.fromarray(np.uint8(255 - 255 * mask))
    return [
        _encode(gray),
        _encode(gray, "JPEG"),
        _encode(gray.convert("RGBA")),
        _encode(gray, "GIF"),
        _encode(gray, "BMP"),
        _npy(mask),
    ]


_SEEDS = _seed_files()


@_FUZZ
@given(
    seed=st.sampled_from(_SEEDS),
    cut=st.integers(0, 4096),
    flips=st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), max_size=8),
)
def test_damaged_real_files_raise_only_image_error(seed, cut, flips):
    data = bytearray(seed[: max(1, len(seed) - cut % len(seed))])
    for position, value in flips:
        data[position % len(data)] = value
    _check_only_image_errors(bytes(data))


def test_a_large_picture_is_fast():
    # Measured at about 10 ms for PNG (40 ms for an RGBA canvas) on a 2-core CI machine;
    # the bound only guards against an accidental per-pixel Python loop.
    page = np.full((1000, 1000), 255, np.uint8)
    page[100:900, 300:700] = 255 - np.uint8(255 * _ink_mask((400, 800)))
    data = _encode(Image.fromarray(page))
    preprocess(data)  # warm up plugin registration
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        preprocess(data)
        best = min(best, time.perf_counter() - start)
    assert best < 0.5, best
