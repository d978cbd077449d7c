"""Reading and writing the IDX format, the file format of MNIST and Fashion-MNIST.

An IDX file is a 4-byte magic number, one big-endian uint32 per dimension, then the
values in C order, big-endian::

    0x00 0x00 <dtype code> <number of dimensions>
    <dim 0> ... <dim n-1>          (uint32, big-endian)
    <prod(dims) * itemsize bytes>  (big-endian values)

Files may be gzip-compressed; the reader recognises gzip by its own magic bytes, so the
file name does not matter. The reader trusts nothing in a file: every inconsistency is a
``DataError`` naming the file, what was wrong and what was expected, and the size a
header declares is checked before any memory is allocated for it. Decompression is
bounded: at most the declared payload size plus one byte is ever decompressed, so a gzip
bomb costs neither memory nor time.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import struct
import zlib
from typing import BinaryIO, NoReturn

import numpy as np

from multilayer.errors import DataError

__all__ = ["IDX_DTYPES", "MAX_PAYLOAD_BYTES", "read_idx", "write_idx"]

#: IDX type code -> NumPy dtype (big-endian, as stored in the file).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

#: Largest payload ``read_idx`` accepts unless told otherwise (2 GiB).
MAX_PAYLOAD_BYTES = 2**31

_MAX_DIMS = 4
_GZIP_MAGIC = b"\x1f\x8b"
# Read in slices so that memory only grows as data actually arrives: a header may claim
# far more than the stream holds.
_CHUNK = 4 * 2**20
_TYPE_LIST = ", ".join(f"0x{code:02X} ({dt.name})" for code, dt in IDX_DTYPES.items())
# Errors the gzip module raises for a damaged stream (BadGzipFile is an OSError, so a
# real I/O error is deliberately not in this list).
_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)


def read_idx(
    source: str | os.PathLike[str] | BinaryIO, *, max_bytes: int = MAX_PAYLOAD_BYTES
) -> np.ndarray:
    """Read an IDX file, raw or gzip-compressed.

    Args:
        source: a path, or a binary file object positioned at the start of the IDX data
            (it is read from its current position and not closed).
        max_bytes: refuse files whose header declares a larger payload than this.

    Returns:
        An array of the shape the header declares (1 to 4 dimensions), in native byte
        order, with dtype uint8, int8, int16, int32, float32 or float64.

    Raises:
        DataError: the data is not a well-formed IDX file (bad magic number, unknown type
            code, 0 or more than 4 dimensions, truncated header or payload, bytes after the
            payload, declared size over ``max_bytes`` or larger than the file, corrupt
            gzip stream). The message starts with the file's name.
        OSError: the file cannot be opened or read (for example it does not exist).
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            return _read(f, os.fspath(source), max_bytes)
    return _read(source, _stream_label(source), max_bytes)


def write_idx(
    destination: str | os.PathLike[str] | BinaryIO,
    array: np.ndarray,
    *,
    compress: bool | None = None,
) -> None:
    """Write ``array`` as an IDX file.

    Args:
        destination: a path or a binary file object (written at its position, not closed).
        array: 1 to 4 dimensions, dtype uint8, int8, int16, int32, float32 or float64
            (any byte order; the file is big-endian as the format requires).
        compress: gzip the output. Default: True if ``destination`` is a path ending in
            ``.gz``, else False. The gzip header carries no name or timestamp, so equal arrays give
            equal files.

    Raises:
        DataError: the array's dtype, number of dimensions or a dimension cannot be
            represented in IDX.
    """
    array = np.asarray(array)
    code, stored = _idx_type_of(array.dtype)
    if not 1 <= array.ndim <= _MAX_DIMS:
        raise DataError(
            f"cannot write a {array.ndim}-dimensional array as IDX: expected 1 to {_MAX_DIMS} "
            "dimensions"
        )
    if any(d >= 2**32 for d in array.shape):
        raise DataError(f"cannot write shape {array.shape} as IDX: dimensions must be < 2**32")
    header = struct.pack(f">BBBB{array.ndim}I", 0, 0, code, array.ndim, *array.shape)
    payload = np.ascontiguousarray(array, dtype=stored)

    if isinstance(destination, (str, os.PathLike)):
        if compress is None:
            compress = os.fspath(destination).endswith(".gz")
        with open(destination, "wb") as f:
            _write(f, header, payload, compress)
    else:
        _write(destination, header, payload, bool(compress))


def _write(f: BinaryIO, header: bytes, payload: np.ndarray, compress: bool) -> None:
    if compress:
        with gzip.GzipFile(filename="", fileobj=f, mode="wb", mtime=0) as g:
            g.write(header)
            g.write(payload.data)
    else:
        f.write(header)
        f.write(payload.data)


def _idx_type_of(dtype: np.dtype) -> tuple[int, np.dtype]:
    """The IDX type code and big-endian storage dtype for ``dtype``."""
    for code, stored in IDX_DTYPES.items():
        if dtype.kind == stored.kind and dtype.itemsize == stored.itemsize:
            return code, stored
    raise DataError(f"cannot write an array of dtype {dtype} as IDX: expected one of {_TYPE_LIST}")


def _stream_label(f: object) -> str:
    name = getattr(f, "name", None)
    return os.fspath(name) if isinstance(name, (str, os.PathLike)) else "<stream>"


#: what the reader reads from: the caller's binary stream, or a gzip stream over it
_Stream = BinaryIO | gzip.GzipFile


def _read(f: BinaryIO, label: str, max_bytes: int) -> np.ndarray:
    head = _read_up_to(f, 4)
    if head[:2] != _GZIP_MAGIC:
        # Uncompressed: the file size bounds what the header may declare.
        return _parse(f, head, label, max_bytes, _remaining_size(f))
    try:
        with gzip.GzipFile(fileobj=_Prepended(head, f), mode="rb") as g:
            return _parse(g, _read_up_to(g, 4), label, max_bytes, None)
    except _GZIP_ERRORS as exc:
        reason = str(exc) or type(exc).__name__
        raise DataError(
            f"{label}: corrupt gzip stream ({reason}): expected a complete gzip-compressed IDX file"
        ) from None


def _parse(
    f: _Stream, magic: bytes | bytearray, label: str, max_bytes: int, remaining: int | None
) -> np.ndarray:
    """Parse an IDX file whose 4 first bytes ``magic`` were already read from ``f``.

    ``remaining`` is the number of bytes left in ``f`` after the magic number, if known.
    """
    if len(magic) < 4:
        raise DataError(
            f"{label}: truncated IDX header: expected a 4-byte magic number, "
            f"found {len(magic)} bytes"
        )
    if magic[:2] != b"\0\0":
        raise DataError(
            f"{label}: not an IDX file: expected a magic number starting with two zero "
            f"bytes, found 0x{magic.hex().upper()}"
        )
    code, ndim = magic[2], magic[3]
    if code not in IDX_DTYPES:
        raise DataError(
            f"{label}: unknown IDX data type code 0x{code:02X}: expected one of {_TYPE_LIST}"
        )
    if not 1 <= ndim <= _MAX_DIMS:
        raise DataError(
            f"{label}: invalid number of IDX dimensions {ndim}: expected 1 to {_MAX_DIMS}"
        )
    raw_dims = _read_up_to(f, 4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise DataError(
            f"{label}: truncated IDX header: expected {4 * ndim} bytes for {ndim} dimensions, "
            f"found {len(raw_dims)}"
        )
    shape = struct.unpack(f">{ndim}I", raw_dims)
    dtype = IDX_DTYPES[code]
    expected = math.prod(shape) * dtype.itemsize  # Python int: cannot overflow

    if expected > max_bytes:
        raise DataError(
            f"{label}: IDX header declares shape {shape} of {dtype.name}, i.e. {expected} "
            f"bytes: expected at most {max_bytes} bytes"
        )
    if remaining is not None:
        remaining -= 4 * ndim
        if remaining != expected:
            _size_error(label, expected, shape, found=remaining)
        buffer = np.empty(expected, dtype=np.uint8)
        got = _read_into(f, buffer.data)
        if got != expected:  # the file changed under us
            _size_error(label, expected, shape, found=got)
        payload: np.ndarray | bytearray = buffer
    else:
        # Unknown length (gzip or pipe): never read more than one byte past the payload.
        payload = _read_up_to(f, expected + 1)
        if len(payload) != expected:
            _size_error(label, expected, shape, found=len(payload), exact=False)

    array = np.frombuffer(payload, dtype=dtype).reshape(shape)
    if dtype.byteorder == ">":
        # Native order makes every later operation faster; this copies once.
        return array.astype(dtype.newbyteorder("="))
    return array


def _size_error(
    label: str, expected: int, shape: tuple, found: int, exact: bool = True
) -> NoReturn:
    if found < expected:
        raise DataError(
            f"{label}: truncated IDX payload: expected {expected} bytes for shape {shape}, "
            f"found {found}"
        )
    found_text = str(found) if exact else f"more than {expected}"
    raise DataError(
        f"{label}: trailing data after IDX payload: expected exactly {expected} bytes for "
        f"shape {shape}, found {found_text}"
    )


def _read_up_to(f: _Stream, n: int) -> bytearray:
    """Read at most ``n`` bytes, fewer only at end of file; grows as data arrives."""
    out = bytearray()
    while len(out) < n:
        chunk = f.read(min(_CHUNK, n - len(out)))
        if not chunk:
            break
        out += chunk
    return out


def _read_into(f: _Stream, view: memoryview) -> int:
    """Fill ``view`` from ``f``; returns the number of bytes read (short at end of file)."""
    readinto = getattr(f, "readinto", None)
    done = 0
    while done < len(view):
        if readinto is not None:
            n = readinto(view[done : done + _CHUNK])
        else:
            data = f.read(min(_CHUNK, len(view) - done))
            n = len(data)
            view[done : done + n] = data
        if not n:
            break
        done += n
    return done


def _remaining_size(f: BinaryIO) -> int | None:
    """Bytes left in ``f`` from its position, or None if it cannot seek."""
    try:
        if not f.seekable():
            return None
        position = f.tell()
        end = f.seek(0, io.SEEK_END)
        f.seek(position)
    except (OSError, AttributeError, ValueError):
        return None
    return end - position


class _Prepended(io.RawIOBase):
    """A read-only stream yielding ``head`` then the rest of ``f``.

    Lets the reader look at a stream's first bytes (to spot gzip) without needing it to be
    seekable.
    """

    def __init__(self, head: bytes | bytearray, f: BinaryIO) -> None:
        self._head = bytes(head)
        self._f = f

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._f.read(len(view))
        view[: len(data)] = data
        return len(data)
