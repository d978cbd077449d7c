"""The IDX reader and writer: round trips, and every kind of malformed file refused."""

from __future__ import annotations

import gzip
import io
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from multilayer.data.idx import IDX_DTYPES, read_idx, write_idx
from multilayer.errors import DataError

TYPES = "0x08 (uint8), 0x09 (int8), 0x0B (int16), 0x0C (int32), 0x0D (float32), 0x0E (float64)"
DTYPES = ["uint8", "int8", "int16", "int32", "float32", "float64"]
SHAPES = [(7,), (3, 5), (2, 3, 4), (2, 1, 3, 2), (0,), (4, 0, 2)]


def header(code: int, *dims: int, ndim: int | None = None) -> bytes:
    """IDX header bytes (``ndim`` overrides the dimension count byte)."""
    count = len(dims) if ndim is None else ndim
    return bytes([0, 0, code, count]) + struct.pack(f">{len(dims)}I", *dims)


def write_bytes(path: Path, data: bytes, compress: bool = False) -> Path:
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    return path


def sample(dtype: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "ui" else None
    if info is not None:
        array = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
        if array.size >= 2:  # the extremes are where byte-order mistakes show
            array.flat[:2] = [info.min, info.max]
        return array
    array = rng.standard_normal(shape).astype(dtype)
    if array.size >= 4:
        array.flat[:4] = [np.nan, np.inf, -np.inf, np.finfo(dtype).tiny]
    return array


# --- round trips -----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip_through_a_file(tmp_path, dtype, shape, suffix):
    array = sample(dtype, shape)
    path = tmp_path / f"data-idx{suffix}"
    write_idx(path, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")

    back = read_idx(path)
    assert back.dtype == np.dtype(dtype)  # native byte order
    assert back.dtype.isnative
    assert back.shape == shape
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable and back.flags.c_contiguous


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("compress", [False, True])
def test_round_trip_through_file_objects(dtype, compress):
    array = sample(dtype, (3, 4, 5))
    buffer = io.BytesIO()
    write_idx(buffer, array, compress=compress)
    buffer.seek(0)
    np.testing.assert_array_equal(read_idx(buffer), array)


def test_written_bytes_follow_the_format(tmp_path):
    path = tmp_path / "a.idx"
    write_idx(path, np.array([[1, -2]], dtype="<i2"))
    assert path.read_bytes() == header(0x0B, 1, 2) + b"\x00\x01\xff\xfe"
    write_idx(path, np.array([1.5], dtype=">f8"))  # any byte order in, big-endian out
    assert path.read_bytes() == header(0x0E, 1) + struct.pack(">d", 1.5)


def test_gzip_output_is_reproducible(tmp_path):
    array = sample("uint8", (10, 10))
    write_idx(tmp_path / "a.gz", array)
    write_idx(tmp_path / "b.gz", array)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()


def test_compression_is_recognised_by_content_not_name(tmp_path):
    array = sample("int32", (4, 3))
    write_idx(tmp_path / "plain.gz", array, compress=False)
    write_idx(tmp_path / "packed.idx", array, compress=True)
    np.testing.assert_array_equal(read_idx(tmp_path / "plain.gz"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "packed.idx"), array)


class ReadOnly:
    """A stream with nothing but read(): no seek, tell, readinto or name."""

    def __init__(self, data: bytes) -> None:
        self._buffer = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._buffer.read(n)


@pytest.mark.parametrize("compress", [False, True])
def test_reads_unseekable_streams(compress):
    array = sample("float32", (6, 2))
    buffer = io.BytesIO()
    write_idx(buffer, array, compress=compress)
    np.testing.assert_array_equal(read_idx(ReadOnly(buffer.getvalue())), array)


def test_reads_from_the_current_position_and_leaves_the_stream_open():
    buffer = io.BytesIO(b"junk" + header(0x08, 2) + b"\x01\x02")
    buffer.seek(4)
    np.testing.assert_array_equal(read_idx(buffer), [1, 2])
    assert not buffer.closed


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (
            np.zeros(3, dtype=bool),
            f"cannot write an array of dtype bool as IDX: expected one of {TYPES}",
        ),
        (
            np.zeros(3, dtype="u2"),
            f"cannot write an array of dtype uint16 as IDX: expected one of {TYPES}",
        ),
        (
            np.zeros(3, dtype="i8"),
            f"cannot write an array of dtype int64 as IDX: expected one of {TYPES}",
        ),
        (np.uint8(3), "cannot write a 0-dimensional array as IDX: expected 1 to 4 dimensions"),
        (
            np.zeros((1,) * 5, "u1"),
            "cannot write a 5-dimensional array as IDX: expected 1 to 4 dimensions",
        ),
    ],
)
def test_write_refuses_what_idx_cannot_hold(tmp_path, array, message):
    with pytest.raises(DataError) as excinfo:
        write_idx(tmp_path / "x.idx", array)
    assert str(excinfo.value) == message


# --- malformed files: each refused with its exact message ------------------------------

MALFORMED = {
    "empty": (b"", "truncated IDX header: expected a 4-byte magic number, found 0 bytes"),
    "short magic": (
        b"\0\0\x08",
        "truncated IDX header: expected a 4-byte magic number, found 3 bytes",
    ),
    "wrong magic": (
        b"\x89PNG\r\n\x1a\n",
        "not an IDX file: expected a magic number starting with two zero bytes, found 0x89504E47",
    ),
    "half-zero magic": (
        b"\0\x01\x08\x01" + bytes(5),
        "not an IDX file: expected a magic number starting with two zero bytes, found 0x00010801",
    ),
    "wrong dtype code": (
        header(0x0A, 3) + bytes(3),
        f"unknown IDX data type code 0x0A: expected one of {TYPES}",
    ),
    "dtype code 0": (
        header(0x00, 3) + bytes(3),
        f"unknown IDX data type code 0x00: expected one of {TYPES}",
    ),
    "ndim 0": (header(0x08), "invalid number of IDX dimensions 0: expected 1 to 4"),
    "ndim 5": (
        header(0x08, 1, 1, 1, 1, 1) + b"\0",
        "invalid number of IDX dimensions 5: expected 1 to 4",
    ),
    "ndim 255": (header(0x08, ndim=255), "invalid number of IDX dimensions 255: expected 1 to 4"),
    "truncated dims": (
        header(0x08, 28, 28, ndim=3),
        "truncated IDX header: expected 12 bytes for 3 dimensions, found 8",
    ),
    "truncated payload": (
        header(0x08, 3, 4) + bytes(11),
        "truncated IDX payload: expected 12 bytes for shape (3, 4), found 11",
    ),
    "truncated float64": (
        header(0x0E, 2) + bytes(15),
        "truncated IDX payload: expected 16 bytes for shape (2,), found 15",
    ),
    "no payload": (
        header(0x0C, 5),
        "truncated IDX payload: expected 20 bytes for shape (5,), found 0",
    ),
    "over the limit": (
        header(0x08, 65536, 32769),
        "IDX header declares shape (65536, 32769) of uint8, i.e. 2147549184 bytes: "
        "expected at most 2147483648 bytes",
    ),
    "absurd": (
        header(0x0E, *[2**32 - 1] * 4),
        f"IDX header declares shape {(2**32 - 1,) * 4} of float64, "
        f"i.e. {8 * (2**32 - 1) ** 4} bytes: expected at most 2147483648 bytes",
    ),
}
# Only a raw file's size is known up front, so only there is the exact excess reported.
RAW_ONLY = {
    "trailing bytes": (
        header(0x08, 3) + bytes(5),
        "trailing data after IDX payload: expected exactly 3 bytes for shape (3,), found 5",
    ),
    "larger than the file": (
        header(0x08, 60000, 28, 28) + bytes(100),
        "truncated IDX payload: expected 47040000 bytes for shape (60000, 28, 28), found 100",
    ),
}
GZIP_ONLY = {
    "trailing bytes": (
        header(0x08, 3) + bytes(5),
        "trailing data after IDX payload: expected exactly 3 bytes for shape (3,), "
        "found more than 3",
    ),
    "larger than the stream": (
        header(0x08, 60000, 28, 28) + bytes(100),
        "truncated IDX payload: expected 47040000 bytes for shape (60000, 28, 28), found 100",
    ),
}


def cases(*tables: dict) -> list:
    return [pytest.param(*case, id=name) for table in tables for name, case in table.items()]


@pytest.mark.parametrize(("data", "message"), cases(MALFORMED, RAW_ONLY))
def test_malformed_raw_file_is_refused(tmp_path, data, message):
    path = write_bytes(tmp_path / "train-images-idx3-ubyte", data)
    with pytest.raises(DataError) as excinfo:
        read_idx(path)
    assert str(excinfo.value) == f"{path}: {message}"
    # The same bytes from a nameless stream.
    with pytest.raises(DataError) as excinfo:
        read_idx(io.BytesIO(data))
    assert str(excinfo.value) == f"<stream>: {message}"


@pytest.mark.parametrize(("data", "message"), cases(MALFORMED, GZIP_ONLY))
def test_malformed_gzip_file_is_refused(tmp_path, data, message):
    path = write_bytes(tmp_path / "train-images-idx3-ubyte.gz", data, compress=True)
    with pytest.raises(DataError) as excinfo:
        read_idx(path)
    assert str(excinfo.value) == f"{path}: {message}"


def test_unseekable_raw_stream_reports_trailing_data_without_its_size():
    with pytest.raises(DataError) as excinfo:
        read_idx(ReadOnly(header(0x08, 3) + bytes(5)))
    assert str(excinfo.value) == (
        "<stream>: trailing data after IDX payload: expected exactly 3 bytes for shape (3,), "
        "found more than 3"
    )


def test_max_bytes_can_be_lowered(tmp_path):
    path = tmp_path / "a.idx"
    write_idx(path, np.zeros((10, 10), dtype=np.int16))
    assert read_idx(path, max_bytes=200).shape == (10, 10)
    with pytest.raises(DataError) as excinfo:
        read_idx(path, max_bytes=199)
    assert str(excinfo.value) == (
        f"{path}: IDX header declares shape (10, 10) of int16, i.e. 200 bytes: expected at most "
        "199 bytes"
    )


GOOD = gzip.compress(header(0x08, 4, 4) + bytes(range(16)), mtime=0)
CORRUPT_GZIP = {
    "bad deflate data": (GOOD[:10] + b"\xff" * 8 + GOOD[18:], "invalid block type"),
    "truncated stream": (
        GOOD[:-12],
        "Compressed file ended before the end-of-stream marker was reached",
    ),
    "bad CRC": (GOOD[:-8] + bytes(4) + GOOD[-4:], "CRC check failed"),
    "bad length": (GOOD[:-4] + b"\xff\0\0\0", "Incorrect length of data produced"),
    "bad method": (GOOD[:2] + b"\x07" + GOOD[3:], "Unknown compression method"),
    "just the magic": (
        b"\x1f\x8b",
        "Compressed file ended before the end-of-stream marker was reached",
    ),
    "garbage after": (GOOD + b"garbage!", "Not a gzipped file (b'ga')"),
}


@pytest.mark.parametrize(("data", "reason"), cases(CORRUPT_GZIP))
def test_corrupt_gzip_is_a_data_error(tmp_path, data, reason):
    path = write_bytes(tmp_path / "t10k-labels-idx1-ubyte.gz", data)
    with pytest.raises(DataError) as excinfo:
        read_idx(path)
    message = str(excinfo.value)
    assert message.startswith(f"{path}: corrupt gzip stream (")
    assert message.endswith("): expected a complete gzip-compressed IDX file")
    assert reason in message


def gzip_bomb(idx_start: bytes, gigabytes: int) -> bytes:
    """A gzip stream starting with ``idx_start`` then ``gigabytes`` GB of zeros.

    Built from one compressed 16 MiB block of zeros repeated (a full flush makes every block
    independent), so it costs a few MB and milliseconds; it has no trailer, as a reader that
    stops in time never gets there.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    start = compressor.compress(idx_start) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(bytes(2**24)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return start + block * (gigabytes * 64)


def peak_memory_of_refusal(function) -> int:
    """Peak bytes allocated (as traced by tracemalloc) while ``function`` raises DataError."""
    tracemalloc.start()
    try:
        with pytest.raises(DataError):
            function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_gzip_bomb_with_a_small_header_stops_after_one_extra_byte(tmp_path):
    path = write_bytes(tmp_path / "bomb.gz", gzip_bomb(header(0x08, 10) + bytes(10), 4))
    assert path.stat().st_size < 5_000_000  # 4 GB once decompressed
    with pytest.raises(DataError) as excinfo:
        read_idx(path)
    assert str(excinfo.value) == (
        f"{path}: trailing data after IDX payload: expected exactly 10 bytes for shape (10,), "
        "found more than 10"
    )
    assert peak_memory_of_refusal(lambda: read_idx(path)) < 2_000_000


def test_gzip_claiming_a_big_payload_allocates_only_what_arrives(tmp_path):
    # 1 GB declared (under the limit), 100 bytes present: memory must follow the data.
    path = write_bytes(tmp_path / "liar.gz", header(0x08, 2**30) + bytes(100), compress=True)
    with pytest.raises(DataError) as excinfo:
        read_idx(path)
    assert str(excinfo.value) == (
        f"{path}: truncated IDX payload: expected 1073741824 bytes for shape (1073741824,), "
        "found 100"
    )
    assert peak_memory_of_refusal(lambda: read_idx(path)) < 10_000_000


def test_raw_file_claiming_more_than_its_size_allocates_nothing(tmp_path):
    path = write_bytes(tmp_path / "liar.idx", header(0x0E, 2**27) + bytes(100))
    assert peak_memory_of_refusal(lambda: read_idx(path)) < 1_000_000


# --- arbitrary input -------------------------------------------------------------------

valid_prefix = st.builds(
    lambda code, dims, rest: header(code, *dims) + rest,
    st.sampled_from(sorted(IDX_DTYPES) + [0x00, 0x0A, 0xFF]),
    st.lists(st.integers(0, 12) | st.integers(0, 2**32 - 1), min_size=0, max_size=5),
    st.binary(max_size=300),
)
maybe_gzipped = st.one_of(
    st.binary(max_size=300),
    valid_prefix,
    valid_prefix.map(lambda data: gzip.compress(data, mtime=0)),
    # a valid gzip stream, then damaged: cut short or one byte changed
    st.tuples(valid_prefix, st.integers(0, 10**6), st.integers(1, 255)).map(
        lambda t: damage(gzip.compress(t[0], mtime=0), t[1], t[2])
    ),
)


def damage(data: bytes, where: int, xor: int) -> bytes:
    i = where % len(data)
    return data[:i] if where % 2 else data[:i] + bytes([data[i] ^ xor]) + data[i + 1 :]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(maybe_gzipped)
def test_arbitrary_bytes_raise_only_data_error(data):
    for source in (io.BytesIO(data), ReadOnly(data)):
        try:
            array = read_idx(source)
        except DataError:
            continue
        assert isinstance(array, np.ndarray)
        assert 1 <= array.ndim <= 4
